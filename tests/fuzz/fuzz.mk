# make fuzz: the libFuzzer harnesses of tests/fuzz/ and the BPF-side check,
# included by the top Makefile. Needs clang with its libFuzzer runtime
# (Debian: libclang-rt-14-dev); bpf_agree needs root (it says "skipped" otherwise).
#   make fuzz FUZZ_SECONDS=N   build, run each fuzzer N s (default 60; 0: the corpus once)
#                              on a copy of its corpus, then bpf_agree over the
#                              packet_parse corpus; fails on any finding (tests/fuzz/run.sh).
#                              Each fuzzer is a target of its own (fuzz-run-NAME): -j2 runs
#                              two at a time.
#   make fuzz-build            the harnesses, bpf_agree and seeds into $(O)/fuzz/
#   make fuzz-seeds            rewrites the generated seeds in tests/fuzz/corpus/ (seeds.c)
#   FUZZ_NAMES=cmdline         run only these fuzzers
#
# A harness links the ferry sources it needs, compiled with the fuzz flags into
# one archive (the linker takes only the objects a harness pulls in).

FUZZ_DIR     := $(O)/fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_NAMES   ?= packet_parse packet_roundtrip sockaddr_parse cmdline ring_read control_msg
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  := $(CFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -Itests/fuzz -MMD -MP

FUZZ_ALL      := packet_parse packet_roundtrip sockaddr_parse cmdline ring_read control_msg
FUZZ_BINS     := $(FUZZ_ALL:%=$(FUZZ_DIR)/%)
FUZZ_LIB_SRCS := $(wildcard libclient/src/*.c) $(filter-out daemon/main.c $(CTL_SRCS),$(wildcard daemon/*.c))
FUZZ_LIB_OBJS := $(FUZZ_LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB      := $(FUZZ_DIR)/libferry-fuzz.a
FUZZ_AGREE    := $(FUZZ_DIR)/bpf_agree
FUZZ_SEEDS    := $(FUZZ_DIR)/seeds

fuzz-build: $(FUZZ_BINS) $(FUZZ_AGREE) $(FUZZ_SEEDS)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC(fuzz) $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@

# The BPF object stays embedded (prog.c needs it); it is data, nothing to instrument.
$(FUZZ_LIB): $(FUZZ_LIB_OBJS) $(O)/daemon/bpf_blob.o
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(FUZZ_BINS): $(FUZZ_DIR)/%: $(FUZZ_DIR)/obj/tests/fuzz/%.o $(FUZZ_LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(DAEMON_LIBS)

# Not a fuzzer: a plain program run as root over the frames (BPF_PROG_TEST_RUN).
$(FUZZ_AGREE): tests/fuzz/bpf_agree.c tests/fuzz/fuzz.h $(DAEMON_A) $(LIB_A) $(wildcard daemon/*.h bpf/*.h) $(LIB_HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Itests/fuzz $(LDFLAGS) -o $@ $< $(DAEMON_A) $(LIB_A) $(DAEMON_LIBS)

$(FUZZ_SEEDS): tests/fuzz/seeds.c tests/fuzz/ring_ops.h tests/unit/bpf_frames.h $(O)/tests/lib/testutil.o $(LIB_HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Itests/unit $(LDFLAGS) -o $@ $< $(O)/tests/lib/testutil.o

# One target a fuzzer, so that make -jN runs N at a time (CI's -j2: two); each writes its
# own log, and the report at the end prints the findings and every fuzzer's figures.
FUZZ_RUNS := $(FUZZ_NAMES:%=fuzz-run-%)

$(FUZZ_RUNS): fuzz-run-%: $(FUZZ_DIR)/%
	$(Q)sh tests/fuzz/run.sh one $(FUZZ_DIR) $(FUZZ_SECONDS) $*

# bpf_agree reads the corpus packet_parse grew, so it waits for that run.
fuzz-agree: $(FUZZ_AGREE) $(filter fuzz-run-packet_parse,$(FUZZ_RUNS))
	$(Q)sh tests/fuzz/run.sh agree $(FUZZ_DIR)

fuzz: fuzz-build $(FUZZ_RUNS) fuzz-agree
	$(Q)sh tests/fuzz/run.sh report $(FUZZ_DIR) $(FUZZ_NAMES) bpf_agree

fuzz-seeds: $(FUZZ_SEEDS)
	$(Q)$(FUZZ_SEEDS) tests/fuzz/corpus

-include $(FUZZ_LIB_OBJS:.o=.d) $(FUZZ_ALL:%=$(FUZZ_DIR)/obj/tests/fuzz/%.d)

.PHONY: fuzz fuzz-build fuzz-seeds fuzz-agree $(FUZZ_RUNS)
