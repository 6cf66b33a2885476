#!/bin/sh
# Runs ferryd on its embedded default: a veth pair between two network
# namespaces this script creates (198.18.0.1 / 2001:2::1 on the ferryd side,
# .2 / ::2 on the peer side), services on port 7777 handed to a consumer
# process (ferry-echo, attached through ferryd's control socket, sending
# every datagram back), then pings it from the peer with udp-ping, prints
# the consumer's and ferryd's counters and cleans up everything
# (namespaces, XDP program, processes, socket) on every exit path.
# Usage (root): examples/ferryd-demo.sh [--mode auto|xdp|socket] [more ferryd flags]
set -eu
B=${FERRY_BUILD:-build}
H=ferrydemo-host
P=ferrydemo-peer
DIR=$(mktemp -d /tmp/ferryd-demo.XXXXXX)
LOG=$DIR/ferryd.log
CLOG=$DIR/ferry-echo.log
CTL=$DIR/ferryd.sock
PID=
CPID=

stop() { # PID: SIGTERM, a while, then SIGKILL
	if [ -n "$1" ] && kill -0 "$1" 2>/dev/null; then
		kill -TERM "$1" 2>/dev/null || true
		for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$1" 2>/dev/null || break; sleep 0.2; done
		kill -KILL "$1" 2>/dev/null || true
	fi
}

cleanup() {
	trap - EXIT INT TERM
	for c in $CPID; do stop "$c"; done
	stop "$PID"
	ip netns del "$H" 2>/dev/null || true
	ip netns del "$P" 2>/dev/null || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

[ "$(id -u)" -eq 0 ] || { echo "ferryd-demo: needs root (namespaces, XDP)" >&2; exit 1; }
# A demo that crashed earlier may have left its namespaces.
ip netns del "$H" 2>/dev/null || true
ip netns del "$P" 2>/dev/null || true

echo "== creating namespaces $H and $P joined by veth fh0 <-> fp0"
ip netns add "$H"
ip netns add "$P"
ip -n "$H" link add fh0 type veth peer name fp0 netns "$P"
ip -n "$H" link set lo up
ip -n "$P" link set lo up
ip -n "$H" addr add 198.18.0.1/24 dev fh0
ip -n "$P" addr add 198.18.0.2/24 dev fp0
ip -n "$H" addr add 2001:2::1/64 dev fh0 nodad
ip -n "$P" addr add 2001:2::2/64 dev fp0 nodad
ip -n "$H" link set fh0 up
ip -n "$P" link set fp0 up
# The peer finishes its UDP checksums itself, as a sender behind a NIC does
# (veth would hand over unfinished ones, which XDP leaves to the kernel).
ip netns exec "$P" ethtool -K fp0 tx off >/dev/null

echo "== starting ferryd in $H: services demo4 198.18.0.1:7777 and demo6 [2001:2::1]:7777, for clients"
ip netns exec "$H" "$B/ferryd" --interface fh0 --control "$CTL" \
	--service demo4=198.18.0.1:7777 --service demo6='[2001:2::1]:7777' "$@" >"$LOG" 2>&1 &
PID=$!
i=0
until grep -q "ready" "$LOG"; do
	i=$((i + 1))
	if [ $i -gt 100 ] || ! kill -0 "$PID" 2>/dev/null; then
		cat "$LOG"
		echo "ferryd-demo: ferryd did not become ready" >&2
		exit 1
	fi
	sleep 0.1
done
shown=$(wc -l <"$LOG")
sed 's/^/   | /' "$LOG"

echo "== attaching ferry-echo to demo4 and demo6 (two consumer processes, shared-memory rings)"
"$B/examples/ferry-echo" --control "$CTL" demo4 >"$CLOG" 2>&1 &
CPID=$!
"$B/examples/ferry-echo" --control "$CTL" demo6 >"$CLOG.6" 2>&1 &
CPID="$CPID $!"
i=0
until [ "$(grep -c "attached" "$CLOG" "$CLOG.6" | awk -F: '{s += $2} END {print s}')" -eq 2 ]; do
	i=$((i + 1))
	if [ $i -gt 50 ]; then
		cat "$CLOG" "$CLOG.6"
		echo "ferryd-demo: ferry-echo did not attach" >&2
		exit 1
	fi
	sleep 0.1
done

echo "== from $P: udp-ping, IPv4 and IPv6, small and full-size datagrams"
rc=0
ip netns exec "$P" "$B/examples/udp-ping" 198.18.0.1:7777 1000 18 || rc=1
ip netns exec "$P" "$B/examples/udp-ping" '[2001:2::1]:7777' 1000 1472 || rc=1

echo "== the consumers' counters (SIGTERM)"
for c in $CPID; do kill -TERM "$c"; done
for c in $CPID; do wait "$c" || rc=1; done
CPID=
grep -h "^ferry-echo " "$CLOG" "$CLOG.6" | sed 's/^/   | /'

echo "== ferryd's counters (SIGUSR1), then SIGTERM"
kill -USR1 "$PID"
sleep 0.3
kill -TERM "$PID"
wait "$PID" || rc=1
PID=
tail -n +$((shown + 1)) "$LOG" | sed 's/^/   | /'
[ $rc -eq 0 ] && echo "== demo OK" || echo "== demo FAILED"
exit $rc
