# ferry — one Makefile for the library, the daemon, the BPF object and the tests.
#   make            all (libferry .so/.a/.pc, ferryd, the BPF object, examples, tests)
#   make test       run the test suite (root for the namespace/XDP tests)
#   make check      ASan+UBSan build of everything, then the same tests
#   make deps       install the Debian packages (apt-get)
#   make demo       run the embedded-default demo
#   make install    PREFIX=/usr/local DESTDIR=
#   make clean      V=1 shows commands; WERROR=1 turns warnings into errors

VERSION    := 0.1.0
SOVERSION  := 0
PREFIX     ?= /usr/local
DESTDIR    ?=
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin

CC      ?= cc
CLANG   ?= clang
O       ?= build
SANITIZE ?=

ifeq ($(V),1)
Q :=
else
Q := @
endif

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	  -Wno-unused-parameter -fno-strict-aliasing -D_GNU_SOURCE \
	  -Ilibclient/include -Idaemon -Ibpf -Itests/lib -DFERRY_VERSION='"$(VERSION)"'
ifeq ($(WERROR),1)
CFLAGS += -Werror
endif
ifeq ($(SANITIZE),thread)
# TSan does not model fences (GCC says so, -Wtsan); the orderings they give
# are between atomic accesses, which it does see, so it reports no race.
CFLAGS  += -fsanitize=thread -fno-omit-frame-pointer -Wno-tsan
LDFLAGS += -fsanitize=thread
else ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

PKGS_DAEMON := libxdp libbpf libmnl libsystemd inih
DAEMON_LIBS := $(shell pkg-config --libs $(PKGS_DAEMON) 2>/dev/null || echo -lxdp -lbpf -lmnl -lsystemd -linih) -lpthread
# ferryctl reads ferryd's JSON answers with jansson (README: dependencies); so do the tests
JSON_LIBS   := $(shell pkg-config --libs jansson 2>/dev/null || echo -ljansson)
TEST_LIBS   := -lcriterion -lpthread $(JSON_LIBS)

# ---- libferry --------------------------------------------------------------
LIB_SRCS := $(wildcard libclient/src/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(O)/%.o)
LIB_PIC  := $(LIB_SRCS:%.c=$(O)/pic/%.o)
LIB_HDRS := $(wildcard libclient/include/ferry/*.h)
LIB_MAP  := libclient/src/libferry.map
LIB_SO   := $(O)/lib/libferry.so.$(VERSION)
LIB_A    := $(O)/lib/libferry.a
LIB_PC   := $(O)/lib/libferry.pc

# ---- BPF ---------------------------------------------------------------------
BPF_OBJ    := $(O)/bpf/ferry.bpf.o
BPF_CFLAGS := -target bpf -O2 -g -Wall -Ibpf -I/usr/include/$(shell $(CC) -dumpmachine)

# ---- ferryd, ferryctl ---------------------------------------------------------
CTL_SRCS    := daemon/ferryctl.c daemon/ferryctl_show.c
DAEMON_SRCS := $(filter-out daemon/main.c $(CTL_SRCS),$(wildcard daemon/*.c))
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(O)/%.o) $(O)/daemon/bpf_blob.o
DAEMON_A    := $(O)/lib/libferryd.a
FERRYD      := $(O)/ferryd
FERRYCTL    := $(O)/ferryctl

# ---- examples ----------------------------------------------------------------
EXAMPLE_SRCS := $(wildcard examples/*.c)
EXAMPLES     := $(EXAMPLE_SRCS:examples/%.c=$(O)/examples/%)

# ---- tests -------------------------------------------------------------------
TEST_SRCS := $(wildcard tests/unit/*.c tests/net/*.c tests/lib/*.c)
STRESS    := $(O)/tests/workers-stress
TEST_OBJS := $(TEST_SRCS:%.c=$(O)/%.o)
TESTS     := $(O)/tests/ferry-tests
# Criterion options for `make test`, e.g. TEST_ARGS='--filter udp_loops/*'
TEST_ARGS ?=

all: lib bpf daemon examples tests $(STRESS)

lib: $(LIB_SO) $(LIB_A) $(LIB_PC)
bpf: $(BPF_OBJ)
daemon: $(FERRYD) $(FERRYCTL)
examples: $(EXAMPLES)
tests: $(TESTS)

$(O)/%.o: %.c $(LIB_HDRS) $(wildcard libclient/src/*.h daemon/*.h bpf/*.h tests/lib/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(O)/pic/%.o: %.c $(LIB_HDRS) $(wildcard libclient/src/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC(pic) $<")
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(LIB_SO): $(LIB_PIC) $(LIB_MAP)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,-soname,libferry.so.$(SOVERSION) \
		-Wl,--version-script=$(LIB_MAP) -Wl,--no-undefined -o $@ $(LIB_PIC)
	$(Q)ln -sf libferry.so.$(VERSION) $(O)/lib/libferry.so.$(SOVERSION)
	$(Q)ln -sf libferry.so.$(SOVERSION) $(O)/lib/libferry.so

$(LIB_A): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIB_PC): libclient/libferry.pc.in Makefile
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

$(BPF_OBJ): bpf/ferry.bpf.c $(wildcard bpf/*.h)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BPF     $<")
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# The BPF object is embedded in ferryd, so the binary needs no path to find it.
$(O)/daemon/bpf_blob.o: daemon/bpf_blob.S $(BPF_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -c -DFERRY_BPF_OBJ='"$(BPF_OBJ)"' $< -o $@

$(DAEMON_A): $(DAEMON_OBJS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(FERRYD): $(O)/daemon/main.o $(DAEMON_A) $(LIB_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(DAEMON_LIBS)

# ferryctl takes only prom.o (the exposition format) from the daemon's archive.
$(FERRYCTL): $(CTL_SRCS:%.c=$(O)/%.o) $(DAEMON_A)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(JSON_LIBS)

$(O)/examples/%: $(O)/examples/%.o $(LIB_A)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $^

$(TESTS): $(TEST_OBJS) $(DAEMON_A) $(LIB_A) $(FERRYD) $(FERRYCTL) $(BPF_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(TEST_OBJS) $(DAEMON_A) $(LIB_A) $(DAEMON_LIBS) $(TEST_LIBS)

# The engine with worker threads, driven hard and checked without Criterion (which TSan cannot run).
$(STRESS): $(O)/tests/stress/workers_stress.o $(O)/tests/lib/netns.o $(DAEMON_A) $(LIB_A) $(BPF_OBJ)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(O)/tests/stress/workers_stress.o $(O)/tests/lib/netns.o $(DAEMON_A) $(LIB_A) $(DAEMON_LIBS)

# The ABI check first, so Criterion's synthesis line is the last one printed.
# The tests find ferryd through FERRY_BUILD.
test: all
	$(Q)sh tests/check-abi.sh $(LIB_SO) $(LIB_MAP) libclient/include/ferry
	FERRY_BUILD=$(abspath $(O)) SANITIZE=$(SANITIZE) sh tests/run-tests.sh $(TESTS) $(TEST_ARGS)

check:
	$(Q)$(MAKE) --no-print-directory O=build/san SANITIZE=1 test

# ThreadSanitizer: ferryd and the in-process worker stress built with it, run by the
# tests that start workers (Criterion itself cannot run under TSan: its test binary is
# the plain one, pointed at the TSan build through FERRY_BUILD).
TSAN_TESTS ?= --filter '@(ferryd_workers/*|xdp_multiqueue/ferryd*|clients/*|clients_hostile/*|ferryctl/*)'
tsan: tests
	$(Q)$(MAKE) --no-print-directory O=build/tsan SANITIZE=thread daemon build/tsan/tests/workers-stress
	FERRY_BUILD=$(abspath build/tsan) SANITIZE=thread sh tests/run-tests.sh $(TESTS) $(TSAN_TESTS)

# The whole suite as CI runs it: plain, under ASan+UBSan, the threaded tests under TSan, a 2-minute soak.
test-all:
	$(Q)$(MAKE) --no-print-directory test
	$(Q)$(MAKE) --no-print-directory check
	$(Q)$(MAKE) --no-print-directory tsan
	$(Q)$(MAKE) --no-print-directory soak DURATION=120

deps:
	sh tests/install-deps.sh

# The library alone (recvmmsg loop on loopback), then ferryd on a veth pair in
# two namespaces the script creates, with the echo handler.
demo: all
	$(O)/examples/udp-demo
	FERRY_BUILD=$(O) sh examples/ferryd-demo.sh $(DEMO_ARGS)

install: all
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/ferry $(DESTDIR)$(SBINDIR)
	install -m 0644 $(LIB_HDRS) $(DESTDIR)$(INCLUDEDIR)/ferry/
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libferry.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libferry.so.$(SOVERSION)
	ln -sf libferry.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libferry.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 0644 $(LIB_PC) $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 0755 $(FERRYD) $(FERRYCTL) $(DESTDIR)$(SBINDIR)/

clean:
	rm -rf build

# make bench, make bench-quick: tests/bench/README.md
-include tests/bench/bench.mk
-include tests/fuzz/fuzz.mk
# make soak DURATION=S: tests/soak/README.md
-include tests/soak/soak.mk

.PHONY: all lib bpf daemon examples tests test check tsan test-all deps demo install clean
.DELETE_ON_ERROR:
# Keep intermediate objects (examples), so make never deletes them after the tests run.
.SECONDARY:
