# make soak: ferryd at the traffic ceiling for DURATION seconds, with clients
# attaching and dying and reloads all along, then every datagram, frame and
# kilobyte accounted for (tests/soak/README.md). Included by the top Makefile,
# after bench.mk (it uses bench's xdpgen). Needs root; prints a summary and
# one JSON line, also written to $(O)/soak.json; exits non-zero on failure.
#   make soak DURATION=120    seconds of traffic (default 120; CI runs 120)
#   SOAK_ARGS=...             passed to tests/soak/soak.py (--help)

DURATION ?= 120

soak: $(FERRYD) $(FERRYCTL) $(O)/examples/ferry-echo $(BENCH_DIR)/xdpgen
	FERRY_BUILD=$(abspath $(O)) /usr/bin/python3 tests/soak/soak.py --duration $(DURATION) \
		--out $(O)/soak.json $(SOAK_ARGS)

.PHONY: soak
