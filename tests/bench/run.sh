#!/bin/bash
# make bench: ferry's receive paths side by side, against floors and baselines
# measured in the same run, on a veth pair between two namespaces this script
# creates (and removes on every exit path). Prints a table and writes JSON.
# Method and figures: tests/bench/README.md; the programs are in this directory.
#
# Usage (root): tests/bench/run.sh [--quick] [--reps N] [--out FILE] [--keep-logs DIR] [--steps LIST]
#   FERRY_BUILD  build directory with ferryd and bench/ (default: build)
#   FERRYD       the ferryd binary (default: $FERRY_BUILD/ferryd)
set -u -o pipefail

usage() {
	cat <<EOF
usage: $0 [--quick] [--reps N] [--out FILE] [--keep-logs DIR] [--steps LIST]
  --quick          one short repetition of every step: checks the harness, not the figures
  --steps LIST     only these of: sanity,ceiling,a,b,c,d (default all)
  --reps N         repetitions of figure (a) (default 7; quick 1)
  --out FILE       the JSON (default \$FERRY_BUILD/bench.json, quick: bench-quick.json)
  --keep-logs DIR  copy every program's output there
EOF
}

QUICK=0 REPS='' OUT='' KEEP='' STEPS="sanity ceiling a b c d"
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--steps) STEPS=${2:?}; STEPS=${STEPS//,/ }; shift ;;
	--reps) REPS=${2:?}; shift ;;
	--out) OUT=${2:?}; shift ;;
	--keep-logs) KEEP=${2:?}; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
	shift
done

for s in $STEPS; do
	case $s in sanity | ceiling | a | b | c | d) ;; *) echo "bench: unknown step '$s'" >&2; usage >&2; exit 2 ;; esac
done

B=$(cd "${FERRY_BUILD:-build}" 2>/dev/null && pwd) || { echo "bench: no build directory ${FERRY_BUILD:-build}" >&2; exit 1; }
BB=$B/bench
FERRYD=${FERRYD:-$B/ferryd}
HERE=$(cd "$(dirname "$0")" && pwd)

# ---- parameters ----------------------------------------------------------------
RATE_A=150000		# (a): offered rate, pps, below the ceiling
SIZE_A=18		# (a), (c): payload bytes
RTT_RATE=10000		# (c): requests per second
if [ $QUICK = 1 ]; then
	: "${REPS:=1}"
	COUNT_A=75000	# 0.5 s at RATE_A
	CEIL_S=1 B_REPS=1 B_S=0.5 C_REPS=1 C_S=0.5 C_WARM=0.1 CG_N=2000
	OUT=${OUT:-$B/bench-quick.json}
else
	: "${REPS:=7}"
	COUNT_A=600000	# 4 s at RATE_A
	CEIL_S=3 B_REPS=3 B_S=2 C_REPS=3 C_S=3 C_WARM=0.25 CG_N=10000
	OUT=${OUT:-$B/bench.json}
fi
B_SIZES="18 1472"
RX_MAX=120		# no receiver runs longer than this, whatever happens to the script

# ---- namespaces ------------------------------------------------------------------
H=ferryb-$$-host	# the receivers: fh0, 198.18.0.1, 2001:2::1 (fh1: 198.18.1.1, 2001:2:0:1::1), CPU 1
P=ferryb-$$-peer	# the generators: fp0, 198.18.0.2, 2001:2::2 (fp1: 198.18.1.2, 2001:2:0:1::2), CPU 0
H4=198.18.0.1 P4=198.18.0.2 H6=2001:2::1 P6=2001:2::2
# The 2-queue pair fh1 <-> fp1, only for the receivers that spread over queues and
# their floor (ON_2Q); every other receiver runs on fh0 <-> fp0 (one queue) as before.
H4Q=198.18.1.1 P4Q=198.18.1.2 H6Q=2001:2:0:1::1 P6Q=2001:2:0:1::2
PORT=9000
T=$(mktemp -d /tmp/ferry-bench.XXXXXX)
RES=$T/results.tsv	# one line per measurement: fig rep who size key=value...
RX_PID=
FAILS=0

cleanup() {
	local pid
	trap - EXIT INT TERM HUP
	[ -n "$RX_PID" ] && { kill -KILL "$RX_PID"; wait "$RX_PID"; } 2>/dev/null
	for ns in "$H" "$P"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
	[ -n "$KEEP" ] && mkdir -p "$KEEP" && cp -r "$T"/. "$KEEP"/ 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Namespaces of runs that died without cleaning up: their script is gone.
sweep() {
	local ns pid owner
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^ferryb-[0-9]+-(host|peer)$'); do
		owner=${ns#ferryb-}
		owner=${owner%%-*}
		if kill -0 "$owner" 2>/dev/null && grep -qa 'run.sh' "/proc/$owner/cmdline" 2>/dev/null; then
			continue # a bench running right now
		fi
		echo "bench: removing $ns, left by a run that died"
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns del "$ns" 2>/dev/null
	done
}

# A veth pair between the namespaces, with addresses and static neighbours; prints the
# host side's MAC. queues > 1: that many RX and TX queues on both sides (on veth, a
# frame sent on the peer's TX queue q arrives on the host's RX queue q).
mkpair() { # host-if peer-if queues host4 peer4 host6 peer6
	local hi=$1 pi=$2 q=$3 h4=$4 p4=$5 h6=$6 p6=$7 hq=() pq=() hmac pmac
	[ "$q" -gt 1 ] && hq=(numtxqueues "$q" numrxqueues "$q") && pq=("${hq[@]}")
	ip -n "$H" link add "$hi" "${hq[@]}" type veth peer name "$pi" netns "$P" "${pq[@]}" &&
		ip -n "$H" addr add "$h4/24" dev "$hi" && ip -n "$P" addr add "$p4/24" dev "$pi" &&
		ip -n "$H" addr add "$h6/64" dev "$hi" nodad && ip -n "$P" addr add "$p6/64" dev "$pi" nodad &&
		ip -n "$H" link set "$hi" up && ip -n "$P" link set "$pi" up || return 1
	hmac=$(ip netns exec "$H" cat "/sys/class/net/$hi/address") &&
		pmac=$(ip netns exec "$P" cat "/sys/class/net/$pi/address") || return 1
	# static neighbours: no resolution in any measurement
	ip -n "$H" neigh replace "$p4" lladdr "$pmac" dev "$hi" nud permanent &&
		ip -n "$P" neigh replace "$h4" lladdr "$hmac" dev "$pi" nud permanent &&
		ip -n "$H" neigh replace "$p6" lladdr "$pmac" dev "$hi" nud permanent &&
		ip -n "$P" neigh replace "$h6" lladdr "$hmac" dev "$pi" nud permanent || return 1
	# the peer's stack completes UDP checksums itself, as a NIC's sender would
	ip netns exec "$P" "$BB/txcsum_off" "$pi" >/dev/null || return 1
	echo "$hmac"
}

setup() {
	ip netns add "$H" && ip netns add "$P" &&
		ip -n "$H" link set lo up && ip -n "$P" link set lo up || return 1
	HMAC=$(mkpair fh0 fp0 1 $H4 $P4 $H6 $P6) &&
		HMAC2Q=$(mkpair fh1 fp1 2 $H4Q $P4Q $H6Q $P6Q)
}

# ---- recording ---------------------------------------------------------------------
record() { # fig rep who size key=value...
	local IFS=$'\t'
	echo "$*" >>"$RES"
}

fail() { # step, message [, log file]
	FAILS=$((FAILS + 1))
	echo "bench: FAILED: $1: $2" >&2
	if [ -n "${3:-}" ] && [ -s "$3" ]; then tail -n 5 "$3" | sed 's/^/bench:   | /' >&2; fi
	record fail - "$1" - "msg=$2"
}

# A field of a program's one-line JSON summary.
jget() { # file key
	sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" "$1" 2>/dev/null | tail -n 1
}

# The same, 0 when missing (for arithmetic).
jnum() { # file key
	local v
	v=$(jget "$1" "$2")
	echo "${v:-0}"
}

# A counter from ferryd's last stats line.
sget() { # file key
	grep '^stats ' "$1" 2>/dev/null | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# rx_packets of each worker ("worker N rx_packets=..." after the last stats line), comma-separated.
worker_rx() { # file
	awk '/^stats / {s = ""} /^worker / {for (i = 3; i <= NF; i++) if ($i ~ /^rx_packets=/)
		s = s (s == "" ? "" : ",") substr($i, 12)} END {print s}' "$1" 2>/dev/null
}

# What to record of a ferryd beyond its count: the stats line; with several workers
# each one's share, and a failure unless every worker received. Sets EXTRA.
ferryd_extra() { # who out-file step-name
	local wrx n
	EXTRA=("ferryd_stats=$(grep '^stats ' "$2" | tail -n 1)")
	case $1 in *_2w) n=2 ;; *) return 0 ;; esac
	wrx=$(worker_rx "$2")
	EXTRA+=("workers_rx=$wrx")
	[ "$(echo "$wrx" | awk -F, '{for (i = 1; i <= NF; i++) if ($i + 0 > 0) k++} END {print (k == NF ? k : -1)}')" = $n ] ||
		fail "$3" "expected $n workers that each received; rx_packets per worker: '$wrx'" "$2"
}

# Machine-wide /proc/stat: user nice system idle iowait irq softirq steal (ticks).
cpu_ticks() {
	awk '/^cpu / {print $2, $3, $4, $5, $6, $7, $8, $9; exit}' /proc/stat
}

# utime + stime of a process, in ticks.
proc_ticks() {
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
	s=${s##*) }
	echo "$s" | awk '{print $12 + $13}'
}

# ---- receivers ---------------------------------------------------------------------
# The receivers of figures (a) and (b), in the order of each repetition.
RECEIVERS="xdp_count xdp_count_2q rxdrop recvmmsg_rx ferryd_xdp_1w ferryd_xdp_2w ferryd_socket"
# Those on the 2-queue pair fh1, fed on both queues (feed); xdp_count_2q is their floor.
ON_2Q="xdp_count_2q ferryd_xdp_2w"
FLOOR_2Q=xdp_count_2q
# Joining here once they exist:
#   ferryd_xdp_busypoll  the same with --busy-poll, and every receiver again busy-polling
#   ferryd_client_copy   ferryd -> one libferry client, copy hand-off over the shm rings
#   ferryd_client_zc     the same, zero-copy hand-off
#   ferryd_4clients      ferryd -> four libferry clients
# Each needs a case in rx_cmd (its command line) and in rx_count (where it reports
# what it received); the figures, ratios and JSON pick it up from RECEIVERS (and
# ON_2Q, if it spreads over queues).

rx_cmd() { # who [handler]
	local h=${2:-count}
	case $1 in
	xdp_count) echo "$BB/xdp_count -i fh0 --duration $RX_MAX" ;;
	xdp_count_2q) echo "$BB/xdp_count -i fh1 --duration $RX_MAX" ;;
	rxdrop) echo "$BB/rxdrop -i fh0 --duration $RX_MAX" ;;
	recvmmsg_rx) echo "$BB/recvmmsg_rx --bind $H4:$PORT --duration $RX_MAX" ;;
	recvmmsg_rx6) echo "$BB/recvmmsg_rx --bind [$H6]:$PORT --duration $RX_MAX" ;;
	udpecho) echo "$BB/udpecho --bind $H4:$PORT --duration $RX_MAX" ;;
	ferryd_xdp | ferryd_socket)
		echo "$FERRYD --interface fh0 --mode ${1#ferryd_} --handler $h" \
			"--service bench4=$H4:$PORT --service bench6=[$H6]:$PORT" ;;
	ferryd_xdp_1w)
		echo "$FERRYD --interface fh0 --mode xdp --handler $h --queues 1 --workers 1" \
			"--service bench4=$H4:$PORT --service bench6=[$H6]:$PORT" ;;
	# both workers on the one CPU every receiver gets (rx_start): what the threads
	# cost, not what a second core would give (CPU 0 is the generators' and veth's)
	ferryd_xdp_2w)
		echo "$FERRYD --interface fh1 --mode xdp --handler $h --queues 2 --workers 2" \
			"--service bench4=$H4Q:$PORT --service bench6=[$H6Q]:$PORT" ;;
	*) return 1 ;;
	esac
}

# What a stopped receiver received, from its output.
rx_count() { # who out-file
	case $1 in
	ferryd_*) sget "$2" handler_datagrams ;;
	*) jget "$2" received ;;
	esac
}

# Starts a receiver on CPU 1 in the host namespace, bpffs mounted (ip netns exec
# gives each command a fresh /sys), and waits for its "ready". Sets RX_PID.
rx_start() { # who log-prefix [handler]
	local cmd
	cmd=$(rx_cmd "$1" "${3:-}") || return 1
	# shellcheck disable=SC2086 # cmd is a word list on purpose
	ip netns exec "$H" sh -c 'mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf; exec taskset -c 1 "$@"' \
		sh $cmd >"$2.out" 2>"$2.err" &
	RX_PID=$!
	for _ in $(seq 150); do
		grep -q ': ready$' "$2.err" 2>/dev/null && return 0
		kill -0 "$RX_PID" 2>/dev/null || break
		sleep 0.1
	done
	rx_stop "$2" >/dev/null
	return 1
}

# SIGTERM, then wait (10 s at most). 0 if it exited 0 on its own.
rx_stop() { # log-prefix
	local rc=0
	[ -n "$RX_PID" ] || return 1
	kill -TERM "$RX_PID" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$RX_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$RX_PID" 2>/dev/null; then
		kill -KILL "$RX_PID" 2>/dev/null
		rc=1
	fi
	wait "$RX_PID" 2>/dev/null || rc=1
	RX_PID=
	return $rc
}

# ---- generators (CPU 0, peer namespace) -----------------------------------------------
xdpgen() { # json-file args...
	local out=$1
	shift
	ip netns exec "$P" taskset -c 0 "$BB/xdpgen" -i fp0 --dst-mac "$HMAC" "$@" >"$out" 2>"$out.err"
}

# The offered load of a figure for receiver who: xdpgen into the pair the receiver is
# on. On the 2-queue pair, one xdpgen per queue (both on CPU 0), each with half the
# rate and count and its own source port; the JSON file then gets one line with
# their sums (sent, driver_drops) and the longer duration. rate 0 = unpaced,
# count 0 = no count.
feed() { # who json-file size rate count duration
	local who=$1 out=$2 size=$3 rate=$4 count=$5 dur=$6 q r c rc=0 pids=() a=()
	case " $ON_2Q " in *" $who "*) ;; *)
		[ "$rate" != 0 ] && a+=(--rate "$rate")
		[ "$count" != 0 ] && a+=(--count "$count")
		xdpgen "$out" --src $P4:9001 --dst $H4:$PORT --size "$size" "${a[@]}" --duration "$dur"
		return ;;
	esac
	for q in 0 1; do
		r=$((q ? rate - rate / 2 : rate / 2)) c=$((q ? count - count / 2 : count / 2))
		ip netns exec "$P" taskset -c 0 "$BB/xdpgen" -i fp1 --dst-mac "$HMAC2Q" --queue $q \
			--src $P4Q:$((9001 + q)) --dst $H4Q:$PORT --size "$size" --rate "$r" --count "$c" --duration "$dur" \
			>"$out.q$q" 2>"$out.q$q.err" &
		pids+=($!)
	done
	for q in 0 1; do wait "${pids[$q]}" || rc=1; done
	cat "$out.q0.err" "$out.q1.err" >"$out.err"
	printf '{"prog":"xdpgen","queues":2,"sent":%d,"sent_q0":%d,"sent_q1":%d,"driver_drops":%d,"duration_s":%s}\n' \
		$(($(jnum "$out.q0" sent) + $(jnum "$out.q1" sent))) "$(jnum "$out.q0" sent)" "$(jnum "$out.q1" sent)" \
		$(($(jnum "$out.q0" driver_drops) + $(jnum "$out.q1" driver_drops))) \
		"$(awk -v a="$(jnum "$out.q0" duration_s)" -v b="$(jnum "$out.q1" duration_s)" 'BEGIN {print (a > b ? a : b)}')" >"$out"
	return $rc
}

gen_in_peer() { # json-file program args...
	local out=$1 prog=$2
	shift 2
	ip netns exec "$P" taskset -c 0 "$BB/$prog" "$@" >"$out" 2>"$out.err"
}

# ---- steps --------------------------------------------------------------------------

# Every frame of both generators arrives with valid checksums: the host's
# stack verifies them (InCsumErrors would count a bad one) and must deliver all.
step_sanity() {
	local l=$T/sanity n=2000 sent=0 got csum0 csum1 s
	csum0=$(udp_csum_errors)
	rx_start recvmmsg_rx "$l.rx" || { fail sanity "recvmmsg_rx did not start" "$l.rx.err"; return; }
	xdpgen "$l.x4" --src $P4:9001 --dst $H4:$PORT --rate 20000 --count $n || fail sanity "xdpgen IPv4" "$l.x4.err"
	gen_in_peer "$l.u4" udpgen --dst $H4:$PORT --rate 20000 --count $n || fail sanity "udpgen IPv4" "$l.u4.err"
	sleep 0.2
	rx_stop "$l.rx" || fail sanity "recvmmsg_rx did not stop cleanly" "$l.rx.err"
	got=$(jget "$l.rx.out" received)
	for s in x4 u4; do sent=$((sent + $(jnum "$l.$s" sent))); done
	rx_start recvmmsg_rx6 "$l.rx6" || { fail sanity "recvmmsg_rx (IPv6) did not start" "$l.rx6.err"; return; }
	xdpgen "$l.x6" --src "[$P6]:9001" --dst "[$H6]:$PORT" --rate 20000 --count $n --size 1452 || fail sanity "xdpgen IPv6" "$l.x6.err"
	gen_in_peer "$l.u6" udpgen --dst "[$H6]:$PORT" --rate 20000 --count $n || fail sanity "udpgen IPv6" "$l.u6.err"
	sleep 0.2
	rx_stop "$l.rx6" || fail sanity "recvmmsg_rx (IPv6) did not stop cleanly" "$l.rx6.err"
	got=$((${got:-0} + $(jnum "$l.rx6.out" received)))
	for s in x6 u6; do sent=$((sent + $(jnum "$l.$s" sent))); done
	csum1=$(udp_csum_errors)
	record sanity 1 checksums - "sent=$sent" "received=$got" "csum_errors=$((csum1 - csum0))"
	[ "$got" = "$sent" ] && [ "$sent" = $((4 * n)) ] || fail sanity "sent $sent (of $((4 * n))), received $got"
	[ $((csum1 - csum0)) = 0 ] || fail sanity "$((csum1 - csum0)) UDP checksum errors on the host"
}

# The host namespace's UDP counters, IPv4 + IPv6: InDatagrams RcvbufErrors InCsumErrors.
udp_counters() {
	ip netns exec "$H" awk '
		/^Udp: / && $2 ~ /^[0-9]/ {i += $2; r += $6; c += $8}
		/^Udp6InDatagrams/ {i += $2} /^Udp6RcvbufErrors/ {r += $2} /^Udp6InCsumErrors/ {c += $2}
		END {print i + 0, r + 0, c + 0}' /proc/net/snmp /proc/net/snmp6
}

# key=value deltas of two udp_counters readings.
udp_delta() { # before after
	echo "$1 $2" | awk '{printf "udp_in=%d\tudp_rcvbuf_errors=%d\tudp_csum_errors=%d", $4 - $1, $5 - $2, $6 - $3}'
}

udp_csum_errors() {
	ip netns exec "$H" awk '/^Udp: / && $2 ~ /^[0-9]/ {n += $8} /^Udp6InCsumErrors/ {n += $2} END {print n + 0}' \
		/proc/net/snmp /proc/net/snmp6
}

# The ceiling: what the XDP count-and-drop program sees from each generator unpaced.
step_ceiling() {
	local gen l sent got dur
	for gen in xdpgen udpgen; do
		l=$T/ceiling.$gen
		rx_start xdp_count "$l.rx" || { fail ceiling "xdp_count did not start" "$l.rx.err"; continue; }
		if [ $gen = xdpgen ]; then
			xdpgen "$l.gen" --src $P4:9001 --dst $H4:$PORT --size $SIZE_A --duration $CEIL_S
		else
			gen_in_peer "$l.gen" udpgen --dst $H4:$PORT --size $SIZE_A --duration $CEIL_S
		fi || fail ceiling "$gen" "$l.gen.err"
		sleep 0.2
		rx_stop "$l.rx" || fail ceiling "xdp_count did not stop cleanly" "$l.rx.err"
		sent=$(jget "$l.gen" sent) got=$(jget "$l.rx.out" received) dur=$(jget "$l.gen" duration_s)
		record ceiling 1 $gen $SIZE_A "sent=${sent:-0}" "delivered=${got:-0}" "gen_s=${dur:-0}" \
			"driver_drops=$(jget "$l.gen" driver_drops)"
		[ -n "$got" ] && [ "$got" -gt 0 ] || fail ceiling "$gen: nothing delivered"
	done
}

# Figure (a): CPU per packet at RATE_A. Machine-wide busy time over the run and the
# receiver's own CPU time; receivers interleaved within each repetition.
step_cpu() {
	local rep who l s0 s1 p0 p1 t0 t1 u0 u1 sent got rc hz
	hz=$(getconf CLK_TCK)
	for rep in $(seq "$REPS"); do
		for who in $RECEIVERS; do
			l=$T/a.$rep.$who
			rx_start "$who" "$l.rx" || { fail "cpu $who #$rep" "did not start" "$l.rx.err"; continue; }
			sleep 0.3 # settle: start-up work is not what we measure
			u0=$(udp_counters) s0=$(cpu_ticks) p0=$(proc_ticks "$RX_PID") t0=$(date +%s%N)
			feed "$who" "$l.gen" $SIZE_A $RATE_A $COUNT_A $((COUNT_A / RATE_A * 2 + 5))
			rc=$?
			sleep 0.2 # what is queued drains
			s1=$(cpu_ticks) p1=$(proc_ticks "$RX_PID") t1=$(date +%s%N) u1=$(udp_counters)
			rx_stop "$l.rx" || fail "cpu $who #$rep" "receiver did not stop cleanly" "$l.rx.err"
			[ $rc = 0 ] || fail "cpu $who #$rep" "xdpgen failed" "$l.gen.err"
			sent=$(jget "$l.gen" sent) got=$(rx_count "$who" "$l.rx.out")
			EXTRA=()
			case $who in ferryd_*) ferryd_extra "$who" "$l.rx.out" "cpu $who #$rep" ;; esac
			record a "$rep" "$who" $SIZE_A "sent=${sent:-0}" "delivered=${got:-0}" "hz=$hz" \
				"wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')" \
				"$(echo "$s0 $s1" | awk '{printf "user=%d\tnice=%d\tsystem=%d\tidle=%d\tiowait=%d\tirq=%d\tsoftirq=%d\tsteal=%d",
					$9-$1, $10-$2, $11-$3, $12-$4, $13-$5, $14-$6, $15-$7, $16-$8}')" \
				"proc_ticks=$((p1 - p0))" "$(udp_delta "$u0" "$u1")" "${EXTRA[@]}"
			[ -n "$got" ] && [ "$got" -gt 0 ] || fail "cpu $who #$rep" "nothing delivered" "$l.rx.err"
		done
	done
}

# Figure (b): delivered rate and loss at the ceiling (xdpgen unpaced).
step_ceiling_loss() {
	local rep size who l sent got u0 u1
	for rep in $(seq $B_REPS); do
		for size in $B_SIZES; do
			for who in $RECEIVERS; do
				l=$T/b.$rep.$size.$who
				rx_start "$who" "$l.rx" || { fail "ceiling $who $size #$rep" "did not start" "$l.rx.err"; continue; }
				u0=$(udp_counters)
				feed "$who" "$l.gen" "$size" 0 0 $B_S ||
					fail "ceiling $who $size #$rep" "xdpgen failed" "$l.gen.err"
				sleep 0.3
				u1=$(udp_counters)
				rx_stop "$l.rx" || fail "ceiling $who $size #$rep" "receiver did not stop cleanly" "$l.rx.err"
				sent=$(jget "$l.gen" sent) got=$(rx_count "$who" "$l.rx.out")
				EXTRA=()
				case $who in
				ferryd_*) ferryd_extra "$who" "$l.rx.out" "ceiling $who $size #$rep" ;;
				rxdrop) EXTRA=("rx_dropped=$(jget "$l.rx.out" rx_dropped)" "rx_ring_full=$(jget "$l.rx.out" rx_ring_full)"
					"rx_fill_ring_empty=$(jget "$l.rx.out" rx_fill_ring_empty)") ;;
				esac
				record b "$rep" "$who" "$size" "sent=${sent:-0}" "delivered=${got:-0}" \
					"gen_s=$(jget "$l.gen" duration_s)" "driver_drops=$(jget "$l.gen" driver_drops)" \
					"$(udp_delta "$u0" "$u1")" "${EXTRA[@]}"
				[ -n "$got" ] && [ "$got" -gt 0 ] || fail "ceiling $who $size #$rep" "nothing delivered" "$l.rx.err"
			done
		done
	done
}

# Figure (c): round trips at RTT_RATE through each echo server.
ECHOES="udpecho ferryd_xdp ferryd_socket"
# Joining here once it exists: ferryd_client_echo (ferryd -> one libferry client that echoes).
step_rtt() {
	local rep who l k vals
	for rep in $(seq $C_REPS); do
		for who in $ECHOES; do
			l=$T/c.$rep.$who
			rx_start "$who" "$l.rx" echo || { fail "rtt $who #$rep" "did not start" "$l.rx.err"; continue; }
			gen_in_peer "$l.probe" rttprobe --dst $H4:$PORT --rate $RTT_RATE --size $SIZE_A --duration $C_S \
				--warmup $C_WARM || fail "rtt $who #$rep" "rttprobe failed" "$l.probe.err"
			rx_stop "$l.rx" || fail "rtt $who #$rep" "server did not stop cleanly" "$l.rx.err"
			vals=()
			for k in sent received lost recorded min_us mean_us p50_us p90_us p99_us p999_us max_us; do
				vals+=("$k=$(jget "$l.probe" $k)")
			done
			record c "$rep" "$who" $SIZE_A "${vals[@]}"
		done
	done
}

# Figure (d): user-space instructions per datagram (callgrind): (Ir at 2N - Ir at N) / N
# removes the fixed costs. The recvmmsg loops on loopback in the host namespace;
# ferryd's AF_XDP RX path (afxdp_rx), its dispatcher handing datagrams to one
# client session (dispatcher) and the client's loop on that session (client_loop)
# in xdpcost, on synthetic frames, no network socket.
step_instructions() {
	local loop n l ir vals cmd
	if ! command -v valgrind >/dev/null; then
		echo "bench: figure (d) skipped: valgrind is not installed" >&2
		record skip - instructions - "msg=valgrind not installed"
		return
	fi
	for loop in ferry ferry-nosrc bare afxdp_rx dispatcher client_loop; do
		vals=()
		for n in $CG_N $((2 * CG_N)); do
			l=$T/d.$loop.$n
			case $loop in
			afxdp_rx) cmd=(--toggle-collect=ferryd_xq_rx_batch "$BB/xdpcost" --count $n) ;;
			dispatcher) cmd=(--toggle-collect=ferryd_dispatch_cb "$BB/xdpcost" --handler clients --count $n) ;;
			client_loop) cmd=(--toggle-collect=ferry_client_recvmmsg_loop --toggle-collect=xdpcost_feed
				"$BB/xdpcost" --handler clients --count $n) ;;
			*) cmd=(--toggle-collect=measure_loop "$BB/loopcost" --loop $loop --count $n) ;;
			esac
			if ! ip netns exec "$H" valgrind --tool=callgrind --callgrind-out-file="$l.cg" "${cmd[@]}" \
				>"$l.out" 2>"$l.err"; then
				fail "instructions $loop $n" "callgrind run failed: ${cmd[*]##*/}" "$l.err"
				continue 2
			fi
			ir=$(sed -n 's/^summary: \([0-9]*\).*/\1/p' "$l.cg")
			vals+=("ir_$n=${ir:-0}")
		done
		record d 1 "$loop" $SIZE_A "n=$CG_N" "${vals[@]}"
	done
}

system_facts() {
	local model ferryd_desc ferryd_desc2 rxbind
	model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
	ferryd_desc=$(grep -h 'AF_XDP on fh0' "$T"/a.1.ferryd_xdp_1w.rx.err 2>/dev/null | head -n 1 | sed 's/^ferryd: [a-z]*: //')
	ferryd_desc2=$(grep -h 'AF_XDP on fh1' "$T"/a.1.ferryd_xdp_2w.rx.err 2>/dev/null | head -n 1 | sed 's/^ferryd: [a-z]*: //')
	rxbind=$(jget "$T/a.1.rxdrop.rx.out" bind)
	record sys - - - "kernel=$(uname -r)" "cpu_model=${model:-unknown}" "cpus=$(nproc)" \
		"xdp_mode=native" "xsk_bind=${rxbind:-unknown}" "ferryd_describe=${ferryd_desc:-unknown}" \
		"ferryd_describe_2w=${ferryd_desc2:-unknown}" \
		"git=$(git -C "$HERE" describe --always --dirty 2>/dev/null || echo unknown)" \
		"generator_cpu=0" "receiver_cpu=1" "interface=veth" "background_busy_pct=$BG_PCT"
	record param - - - "quick=$QUICK" "reps=$REPS" "rate_a=$RATE_A" "count_a=$COUNT_A" "size_a=$SIZE_A" \
		"ceiling_s=$CEIL_S" "b_reps=$B_REPS" "b_s=$B_S" "b_sizes=$B_SIZES" "c_reps=$C_REPS" "c_s=$C_S" \
		"c_rate=$RTT_RATE" "cg_n=$CG_N" "receivers=$RECEIVERS" "echoes=$ECHOES" \
		"receivers_2q=$ON_2Q" "floor_2q=$FLOOR_2Q"
}

# ---- main -------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "bench: needs root (namespaces, XDP)" >&2; exit 1; }
for p in xdpgen udpgen xdp_count rxdrop recvmmsg_rx udpecho rttprobe loopcost txcsum_off xdp_count.bpf.o rxdrop.bpf.o; do
	[ -e "$BB/$p" ] || { echo "bench: $BB/$p missing: run make bench" >&2; exit 1; }
done
[ -x "$FERRYD" ] || { echo "bench: no ferryd at $FERRYD" >&2; exit 1; }

START=$(date +%s)
sweep
echo "bench: namespaces $H and $P, veth fh0 <-> fp0 (1 queue), fh1 <-> fp1 (2 queues: $ON_2Q);" \
	"generators on CPU 0, receivers on CPU 1"
setup || { fail setup "creating the namespaces and the veth pair"; exit 1; }

run_step() { # id name function
	local t0
	case " $STEPS " in *" $1 "*) ;; *) return ;; esac
	shift
	t0=$(date +%s)
	echo "bench: $1"
	"$2"
	echo "bench: $1 done in $(($(date +%s) - t0)) s"
}
# The machine-wide figures assume nothing else runs: say how busy it was before we started.
background() {
	local s0 s1 t=1
	[ $QUICK = 1 ] && t=0.5
	s0=$(cpu_ticks)
	sleep $t
	s1=$(cpu_ticks)
	BG_PCT=$(echo "$s0 $s1" | awk '{b = ($9-$1)+($10-$2)+($11-$3)+($14-$6)+($15-$7); a = b + ($12-$4)+($13-$5);
		printf "%.0f", (a > 0 ? 100 * b / a : 0)}')
	echo "bench: machine busy before the run: $BG_PCT% of all CPUs"
	[ "$BG_PCT" -le 10 ] || echo "bench: WARNING: the machine is not idle; machine-wide CPU figures will be noisy" >&2
}
background
run_step sanity "sanity: checksums and counts of both generators, IPv4 and IPv6" step_sanity
run_step ceiling "ceiling: unpaced generators into the XDP count-and-drop program" step_ceiling
run_step a "(a) CPU per packet at $RATE_A pps, $REPS repetitions" step_cpu
run_step b "(b) delivered rate and loss at the ceiling, $B_REPS repetitions" step_ceiling_loss
run_step c "(c) round trips at $RTT_RATE requests/s, $C_REPS repetitions" step_rtt
run_step d "(d) instructions per datagram (callgrind)" step_instructions
system_facts
record time - - - "elapsed_s=$(($(date +%s) - START))" "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"

mkdir -p "$(dirname "$OUT")"
awk -F'\t' -v json="$OUT" -f "$HERE/report.awk" "$RES" || fail report "report.awk failed"
echo "bench: wrote $OUT"
if [ $FAILS -gt 0 ]; then
	echo "bench: $FAILS step(s) FAILED" >&2
	exit 1
fi
exit 0
