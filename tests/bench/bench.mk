# make bench / make bench-quick: the benchmark harness (tests/bench/), included
# by the top Makefile. Builds the bench programs and XDP objects into
# $(O)/bench/, then runs tests/bench/run.sh, which prints a table and writes
# $(O)/bench.json ($(O)/bench-quick.json for the smoke run), with $(O)/ferryd and
# $(O)/examples/ferry-echo (the consumer of the client rows). Needs root.
#   make bench          every figure, repeated (under 10 minutes on 2 cores)
#   make bench-quick    one short repetition of everything: checks the harness, not the figures
#   BENCH_ARGS=...      passed to run.sh (run.sh --help)

BENCH_DIR    := $(O)/bench
BENCH_COMMON := $(addprefix $(BENCH_DIR)/,bench.o)
BENCH_SOCK   := $(addprefix $(BENCH_DIR)/,udpsock.o)
BENCH_XDP    := $(addprefix $(BENCH_DIR)/,xdp_load.o)
BENCH_HDRS   := $(wildcard tests/bench/*.h) $(LIB_HDRS)

BENCH_NAMES := xdpgen udpgen xdp_count rxdrop recvmmsg_rx udpecho rttprobe loopcost txcsum_off
BENCH_PROGS := $(BENCH_NAMES:%=$(BENCH_DIR)/%)
BENCH_BPF   := $(BENCH_DIR)/xdp_count.bpf.o $(BENCH_DIR)/rxdrop.bpf.o
BENCH_C_OBJS := $(patsubst tests/bench/%.c,$(BENCH_DIR)/%.o,$(filter-out %.bpf.c,$(wildcard tests/bench/*.c)))

# Programs that link ferryd's own objects (figure d): libferryd.a before libferry.a.
BENCH_DAEMON_NAMES := xdpcost
BENCH_DAEMON_PROGS := $(BENCH_DAEMON_NAMES:%=$(BENCH_DIR)/%)

bench-progs: $(BENCH_PROGS) $(BENCH_DAEMON_PROGS) $(BENCH_BPF)

$(BENCH_C_OBJS): $(BENCH_DIR)/%.o: tests/bench/%.c $(BENCH_HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -Itests/bench -c $< -o $@

$(BENCH_BPF): $(BENCH_DIR)/%.bpf.o: tests/bench/%.bpf.c $(wildcard tests/bench/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BPF     $<")
	$(Q)$(CLANG) $(BPF_CFLAGS) -Itests/bench -c $< -o $@

# Each program: its own object, the shared one(s) it needs, libferry (address parsing, the loop).
$(BENCH_PROGS): $(BENCH_DIR)/%: $(BENCH_DIR)/%.o $(BENCH_COMMON) $(LIB_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIB_A) $(DAEMON_LIBS)

$(BENCH_DAEMON_PROGS): $(BENCH_DIR)/%: $(BENCH_DIR)/%.o $(BENCH_COMMON) $(BENCH_DIR)/udpframe.o $(DAEMON_A) $(LIB_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(DAEMON_A) $(LIB_A) $(DAEMON_LIBS)

$(BENCH_DIR)/xdpgen: $(BENCH_DIR)/udpframe.o
$(BENCH_DIR)/xdp_count $(BENCH_DIR)/rxdrop: $(BENCH_XDP)
$(BENCH_DIR)/recvmmsg_rx $(BENCH_DIR)/udpecho $(BENCH_DIR)/loopcost: $(BENCH_SOCK)
$(BENCH_DIR)/rttprobe: $(BENCH_SOCK) $(BENCH_DIR)/hist.o

# ferry-echo: the consumer of the client rows of figure (a)
BENCH_CONSUMER := $(O)/examples/ferry-echo

bench: bench-progs $(FERRYD) $(BENCH_CONSUMER)
	FERRY_BUILD=$(abspath $(O)) bash tests/bench/run.sh $(BENCH_ARGS)

bench-quick: bench-progs $(FERRYD) $(BENCH_CONSUMER)
	FERRY_BUILD=$(abspath $(O)) bash tests/bench/run.sh --quick $(BENCH_ARGS)

.PHONY: bench bench-quick bench-progs
