#!/bin/bash
# SPDX-License-Identifier: MIT
#
# make storm: the control thread's events, many at once. Each round ferryd is
# stopped (SIGSTOP) while a random handful of things happen to it: clients
# attach, are killed or told to end, the configuration changes and a reload
# is asked (SIGHUP or ferryctl), ferryctl asks for stats, the interface goes
# down and up, SIGUSR1; then it goes on (SIGCONT) and finds them all pending
# together, in one turn of its event loop, while traffic of every size runs to
# its services. That is how each re-entrancy bug of ferryd's control thread
# was found (an operation that waits for the workers runs the event loop, and
# another started inside it); this keeps looking.
#
# Fails when ferryd dies, reports a sanitizer error (run it with the ASan
# build: make storm does), or does not exit 0 at the end (every frame
# accounted for). Needs root; says SKIPPED otherwise.
#
# Usage: storm.sh BUILD_DIR   (ferryd, ferryctl and examples/ferry-echo there)
#   STORM_ROUNDS=N   rounds per pass (default 20); two passes: one queue (the
#                    worker on the control thread) and two (two worker threads)
#   STORM_SEED=N     the random choices (default: from the clock; printed)
set -u
B=$(cd "${1:?usage: storm.sh BUILD_DIR}" && pwd)
ROUNDS=${STORM_ROUNDS:-20}
SEED=${STORM_SEED:-$(($(date +%s) % 32768))}
PFX=ferry-storm
H=$PFX-$$-h
P=$PFX-$$-p
D=$(mktemp -d /tmp/$PFX-$$.XXXXXX)
FP=""
fail=0

if [ "$(id -u)" -ne 0 ]; then
	echo "storm: SKIPPED: needs root (network namespaces, XDP)"
	exit 0
fi

# the clients themselves (not the timeout wrapping each), and everything of ours, wrappers too
clients() { pgrep -f "^$B/examples/ferry-echo --control $D/ctl.sock"; }
ours() { pgrep -f "(ferry-echo|ferryctl) --(control|socket) $D/ctl.sock"; }
cleanup() {
	[ -n "$FP" ] && kill -KILL "$FP" 2>/dev/null && wait "$FP" 2>/dev/null
	ours | xargs -r kill -KILL 2>/dev/null
	ip netns del "$H" 2>/dev/null
	ip netns del "$P" 2>/dev/null
	rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# leftovers of a run that died: namespaces whose shell is gone
for ns in $(ip netns list | awk '{print $1}' | grep "^$PFX-"); do
	pid=${ns#"$PFX"-}
	pid=${pid%-*}
	kill -0 "$pid" 2>/dev/null || ip netns del "$ns" 2>/dev/null
done

ferryd_log() { cat "$D/ferryd.log"; }
bad_report() { grep -q "ERROR: AddressSanitizer\|ERROR: LeakSanitizer\|runtime error:" "$D/ferryd.log"; }

# A random configuration: service a always, b and c mostly, each with a random
# fanout and hand-off, now and then at another port (a readdressed service).
write_conf() {
	{
		printf '[daemon]\ninterface = fh0\nqueues = %s\n' "$1"
		for s in a b c; do
			[ "$s" != a ] && [ $((RANDOM % 4)) -eq 0 ] && continue
			port=$((9000 + $(printf %d "'$s") - 97))
			[ $((RANDOM % 5)) -eq 0 ] && port=$((port + 10))
			printf '[service %s]\nlisten = 198.18.0.1:%s\n' "$s" "$port"
			case $((RANDOM % 3)) in
			0) echo "fanout = hash" ;;
			1) echo "fanout = round-robin" ;;
			2) echo "fanout = all" ;;
			esac
			[ $((RANDOM % 2)) -eq 0 ] && echo "hand-off = zero-copy"
		done
	} >"$D/cur.conf.new"
	mv "$D/cur.conf.new" "$D/cur.conf"
}

a_service() { echo "a b c" | cut -d' ' -f$((RANDOM % 3 + 1)); }

start_client() {
	local zc=""
	[ $((RANDOM % 2)) -eq 0 ] && zc=--zero-copy
	ip netns exec "$H" timeout 60 "$B/examples/ferry-echo" --control "$D/ctl.sock" --quiet $zc "$(a_service)" \
		>/dev/null 2>&1 &
}

# Up to n datagrams to each port a service may have, sizes 1..1400; 2 s at most.
send() {
	ip netns exec "$P" timeout 5 python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 2
for i in range($1):
    for p in (9000, 9001, 9002, 9010, 9011, 9012):
        s.sendto(b'x' * (i % 1400 + 1), ('198.18.0.1', p))
    if time.time() > end:
        break
" >/dev/null 2>&1
}

# One pass: ferryd with q queues, ROUNDS rounds. Returns non-zero on a failure.
pass() {
	local q=$1 round
	ip netns add "$H" && ip netns add "$P" || return 1
	ip -n "$H" link add fh0 numtxqueues "$q" numrxqueues "$q" type veth peer name fh1 numtxqueues "$q" \
		numrxqueues "$q" netns "$P" || return 1
	ip -n "$H" addr add 198.18.0.1/24 dev fh0
	ip -n "$H" link set fh0 up
	ip -n "$H" link set lo up
	ip -n "$P" addr add 198.18.0.2/24 dev fh1
	ip -n "$P" link set fh1 up
	# whole checksums from the peer: its datagrams take the AF_XDP path, not the kernel's
	ip netns exec "$P" ethtool -K fh1 tx off >/dev/null 2>&1
	write_conf "$q"
	ip netns exec "$H" "$B/ferryd" --config "$D/cur.conf" --control "$D/ctl.sock" --run-dir "$D/run" \
		>"$D/ferryd.log" 2>&1 &
	FP=$!
	for _ in $(seq 300); do
		grep -q "ferryd: ready" "$D/ferryd.log" 2>/dev/null && break
		kill -0 "$FP" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q "ferryd: ready" "$D/ferryd.log"; then
		echo "storm: queues $q: ferryd did not start"
		return 1
	fi
	for round in $(seq "$ROUNDS"); do
		for _ in $(seq $((RANDOM % 4))); do start_client; done
		sleep "0.$((RANDOM % 4))"
		send 200 &
		kill -STOP "$FP"
		for _ in $(seq $((RANDOM % 6 + 1))); do
			case $((RANDOM % 9)) in
			0 | 1) clients | shuf -n 1 | xargs -r kill -KILL 2>/dev/null ;;
			2) write_conf "$q"; kill -HUP "$FP" ;;
			3) write_conf "$q"
			   ip netns exec "$H" timeout 20 "$B/ferryctl" --socket "$D/ctl.sock" reload >/dev/null 2>&1 & ;;
			4) ip netns exec "$H" timeout 20 "$B/ferryctl" --socket "$D/ctl.sock" --json stats >/dev/null 2>&1 & ;;
			5) ip -n "$H" link set fh0 down; ip -n "$H" link set fh0 up ;;
			6) kill -USR1 "$FP" ;;
			7) start_client ;;
			8) clients | shuf -n 1 | xargs -r kill -TERM 2>/dev/null ;;
			esac
		done
		sleep 0.05
		kill -CONT "$FP"
		sleep "0.$((RANDOM % 5 + 2))"
		if ! kill -0 "$FP" 2>/dev/null; then
			echo "storm: queues $q: ferryd died in round $round"
			return 1
		fi
		if bad_report; then
			echo "storm: queues $q: a sanitizer report in round $round"
			return 1
		fi
	done
	clients | xargs -r kill -TERM 2>/dev/null
	for _ in $(seq 50); do [ -z "$(clients)" ] && break; sleep 0.1; done
	kill -TERM "$FP"
	wait "$FP"
	local rc=$?
	FP=""
	wait # the senders, clients and ferryctl left: each bounded by its timeout
	echo "storm: queues $q: $ROUNDS rounds, $(grep -c 'attached to service' "$D/ferryd.log") sessions," \
		"$(grep -c 'reload: ' "$D/ferryd.log") reloads; ferryd exit $rc"
	if [ "$rc" -ne 0 ] || bad_report; then
		return 1
	fi
	ip netns del "$H"
	ip netns del "$P"
	return 0
}

export ASAN_OPTIONS="detect_leaks=1:${ASAN_OPTIONS:-}"
TESTS=$(cd "$(dirname "$0")/.." && pwd)
export LSAN_OPTIONS="suppressions=$TESTS/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:${UBSAN_OPTIONS:-}"
echo "storm: seed $SEED, $ROUNDS rounds with one queue, then with two"
# The shell's own noise (a killed job's "Killed") into a file, shown on a failure.
exec 2>"$D/shell.log"
RANDOM=$SEED
for q in 1 2; do
	if ! pass "$q"; then
		echo "---- ferryd's log"
		ferryd_log | tail -n 200
		echo "---- the script's stderr"
		tail -n 50 "$D/shell.log"
		fail=1
		break
	fi
done
if [ "$fail" -ne 0 ]; then
	echo "storm: FAILED (seed $SEED: STORM_SEED=$SEED reproduces the choices, not the timing)"
	exit 1
fi
echo "storm: PASSED"
