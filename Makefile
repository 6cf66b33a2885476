# ferry — one Makefile for the library, the daemon, the BPF object and the tests.
#   make            all (libferry .so/.a/.pc, ferryd, the BPF object, examples, tests)
#   make test       run the test suite (root for the namespace/XDP tests)
#   make check      ASan+UBSan build of everything, then the same tests
#   make valgrind   the unit and client tests under valgrind's memcheck
#   make test-all   what CI runs: test, check, tsan, every fuzzer 60 s (two at a time under -j2),
#                   soak DURATION=120, bench-quick
#   make mutate     the mutation run: each mutant of tests/mutate/ against its suites
#   make deps       install the Debian packages (apt-get)
#   make demo       run the embedded-default demo
#   make install    PREFIX=/usr/local DESTDIR= (make uninstall, the same variables, undoes it)
#   make deb        the Debian packages, into $(O)/deb/
#   make clean      V=1 shows commands; WERROR=1 turns warnings into errors

VERSION    := 0.1.0
SOVERSION  := 0
PREFIX     ?= /usr/local
DESTDIR    ?=
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
SBINDIR    ?= $(PREFIX)/sbin
BINDIR     ?= $(PREFIX)/bin
# /etc whatever PREFIX is: ferryd reads /etc/ferry/ferryd.conf by default, and the installed
# unit names $(SYSCONFDIR)/ferry/ferryd.conf, so another SYSCONFDIR works there too.
SYSCONFDIR ?= /etc
MANDIR     ?= $(PREFIX)/share/man
# systemd reads units from /usr/local/lib/systemd/system as well as /usr/lib/systemd/system, so
# the unit goes beside the rest of the install; a distribution passes its own (debian/rules).
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system

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

# The control thread's events, many at once (tests/stress/storm.sh), against the ASan
# build: ferryd stopped while clients come and go, reloads, queries and link changes
# pile up, then let go. Needs root.
storm:
	$(Q)$(MAKE) --no-print-directory O=build/san SANITIZE=1 daemon examples
	bash tests/stress/storm.sh build/san

# Valgrind's memcheck over every suite of tests/unit and libferry's client tests
# (tests/net/test_clients.c): tests/valgrind.sh says what it traces and what fails it.
# Not the install and deb suites: their work is make, cc and dpkg-buildpackage's, not ferry's.
empty :=
space := $(empty) $(empty)
open  := (
VALGRIND_SKIP   = install deb
VALGRIND_SUITES = $(filter-out $(VALGRIND_SKIP),$(sort $(shell sed -n -e 's/^Test$(open)\([a-z_0-9]*\),.*/\1/p' \
	-e 's/^ParameterizedTest$(open)[^,]*, *\([a-z_0-9]*\),.*/\1/p' tests/unit/*.c))) clients
VALGRIND_TESTS ?= --filter '@($(subst $(space),|,$(strip $(VALGRIND_SUITES:%=%/*))))'
valgrind: tests
	FERRY_BUILD=$(abspath $(O)) sh tests/valgrind.sh $(TESTS) $(VALGRIND_TESTS)

# The whole suite as CI runs it: plain, under ASan+UBSan, the event storm (ASan), the threaded tests under
# TSan, every fuzzer for 60 s, two at a time under CI's -j2 (tests/fuzz/README.md; a
# finding fails it), a 2-minute soak (tests/soak/README.md), then the bench harness (one
# short repetition: it fails on harness errors, not on figures).
test-all:
	$(Q)$(MAKE) --no-print-directory test
	$(Q)$(MAKE) --no-print-directory check
	$(Q)$(MAKE) --no-print-directory storm
	$(Q)$(MAKE) --no-print-directory tsan
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=60
	$(Q)$(MAKE) --no-print-directory soak DURATION=120
	$(Q)$(MAKE) --no-print-directory bench-quick

deps:
	sh tests/install-deps.sh

# The library alone (recvmmsg loop on loopback), then ferryd on a veth pair in
# two namespaces the script creates, with the echo handler.
demo: all
	$(O)/examples/udp-demo
	FERRY_BUILD=$(O) sh examples/ferryd-demo.sh $(DEMO_ARGS)

# ---- install, uninstall, deb ---------------------------------------------------
# The directories written into libferry.pc and the unit. This file is written only when one of
# them changes, so `make install PREFIX=/usr` after a plain `make` rewrites those two (and
# rebuilds nothing else) instead of installing them with the old paths, and an install from a
# build directory the installing user cannot write to works when nothing changed.
INSTALL_DIRS := $(O)/install-dirs
UNIT         := $(O)/ferryd.service

$(INSTALL_DIRS): FORCE
	@mkdir -p $(dir $@)
	@d='PREFIX=$(PREFIX) LIBDIR=$(LIBDIR) INCLUDEDIR=$(INCLUDEDIR) SBINDIR=$(SBINDIR) SYSCONFDIR=$(SYSCONFDIR)'; \
		[ "$$(cat $@ 2>/dev/null)" = "$$d" ] || { echo "$$d" > $@.$$$$ && mv -f $@.$$$$ $@; }
$(LIB_PC): $(INSTALL_DIRS)

# daemon/ferryd.service names /usr/sbin/ferryd and /etc/ferry/ferryd.conf: the installed one,
# $(SBINDIR)/ferryd and $(SYSCONFDIR)/ferry/ferryd.conf. Written whole, then renamed: two
# installs at once (the tests run in parallel) never copy half a unit.
$(UNIT): daemon/ferryd.service $(INSTALL_DIRS)
	@mkdir -p $(dir $@)
	$(Q)sed -e 's|/usr/sbin/|$(SBINDIR)/|g' -e 's|/etc/ferry/|$(SYSCONFDIR)/ferry/|g' $< > $@.$$$$ && mv -f $@.$$$$ $@

# Only what it installs, so a distribution's build needs no test framework. No owner is set, so
# no root is needed with DESTDIR. ferryd.conf itself is not installed, only the example: an
# install cannot tell an administrator's file from its own, so uninstall could not remove it
# safely (the .deb installs it, as a conffile dpkg keeps track of).
install: lib daemon $(UNIT)
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/ferry \
		$(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(SYSCONFDIR)/ferry \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(FERRYD) $(FERRYCTL) $(DESTDIR)$(SBINDIR)/
	install -m 0755 $(LIB_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libferry.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libferry.so.$(SOVERSION)
	ln -sf libferry.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libferry.so
	install -m 0644 $(LIB_A) $(DESTDIR)$(LIBDIR)/
	install -m 0644 $(LIB_PC) $(DESTDIR)$(LIBDIR)/pkgconfig/
	install -m 0644 $(LIB_HDRS) $(DESTDIR)$(INCLUDEDIR)/ferry/
	install -m 0644 $(UNIT) $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -m 0644 daemon/ferryd.conf.example $(DESTDIR)$(SYSCONFDIR)/ferry/
	install -m 0644 man/libferry.3 $(DESTDIR)$(MANDIR)/man3/
	install -m 0644 man/ferryd.conf.5 $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 man/ferryd.8 man/ferryctl.8 $(DESTDIR)$(MANDIR)/man8/
	$(if $(DESTDIR),,-ldconfig)

# Exactly what install put there. Directories stay unless they are ferry's own and empty (an
# administrator's ferryd.conf keeps $(SYSCONFDIR)/ferry).
uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/ferryd $(DESTDIR)$(SBINDIR)/ferryctl \
		$(DESTDIR)$(LIBDIR)/libferry.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libferry.so.$(SOVERSION) \
		$(DESTDIR)$(LIBDIR)/libferry.so $(DESTDIR)$(LIBDIR)/libferry.a $(DESTDIR)$(LIBDIR)/pkgconfig/libferry.pc \
		$(LIB_HDRS:libclient/include/%=$(DESTDIR)$(INCLUDEDIR)/%) \
		$(DESTDIR)$(SYSTEMDUNITDIR)/ferryd.service $(DESTDIR)$(SYSCONFDIR)/ferry/ferryd.conf.example \
		$(DESTDIR)$(MANDIR)/man3/libferry.3 $(DESTDIR)$(MANDIR)/man5/ferryd.conf.5 \
		$(DESTDIR)$(MANDIR)/man8/ferryd.8 $(DESTDIR)$(MANDIR)/man8/ferryctl.8
	for d in $(DESTDIR)$(INCLUDEDIR)/ferry $(DESTDIR)$(SYSCONFDIR)/ferry; do \
		[ ! -d $$d ] || rmdir --ignore-fail-on-non-empty $$d; done
	$(if $(DESTDIR),,-ldconfig)

# The packages ferryd, libferry0 and libferry-dev (debian/control), with their -dbgsym, in
# $(O)/deb/. dpkg-buildpackage runs in a copy of the sources, $(O)/deb/ferry-$(VERSION)/,
# and writes the .debs, .buildinfo and .changes beside it, in $(O)/deb/: the working tree
# gets no debian/tmp, debian/files or debian/.debhelper, nothing lands in its parent
# directory, and no build directory of ours (build*/, $(O)) is copied into the package's
# build. The environment is emptied (env -i) so that neither this make's variables
# (MAKEFLAGS: O=, SANITIZE=) nor the caller's CFLAGS reach the package's build, which takes
# Debian's hardening flags and WERROR=1 (debian/rules). The copy is removed on success.
DEB_DIR  := $(O)/deb
DEB_SRC  := $(DEB_DIR)/ferry-$(VERSION)
DEB_COPY := Makefile README.md bpf daemon debian docs libclient man

deb:
	@command -v dpkg-buildpackage >/dev/null || { echo "make deb: no dpkg-buildpackage (make deps installs it)" >&2; exit 1; }
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_SRC) && cp -R $(DEB_COPY) $(DEB_SRC)/
	cd $(DEB_SRC) && env -i PATH="$$PATH" HOME="$$HOME" DEB_BUILD_OPTIONS="$${DEB_BUILD_OPTIONS:-}" \
		dpkg-buildpackage -us -uc -b -Jauto
	rm -rf $(DEB_SRC)
	@ls -1 $(DEB_DIR)/*.deb

.PHONY: install uninstall deb FORCE

clean:
	rm -rf build

# make bench, make bench-quick: tests/bench/README.md
-include tests/bench/bench.mk
-include tests/fuzz/fuzz.mk
# make mutate: tests/mutate/README.md
-include tests/mutate/mutate.mk
# make soak DURATION=S: tests/soak/README.md
-include tests/soak/soak.mk

.PHONY: all lib bpf daemon examples tests test check storm tsan valgrind test-all deps demo install clean
.DELETE_ON_ERROR:
# Keep intermediate objects (examples), so make never deletes them after the tests run.
.SECONDARY:
