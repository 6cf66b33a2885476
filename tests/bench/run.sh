#!/bin/bash
# make bench: ferry's receive paths side by side, against floors and baselines
# measured in the same run, on a veth pair between two namespaces this script
# creates (and removes on every exit path). Prints a table and writes JSON.
# Method and figures: tests/bench/README.md; the programs are in this directory.
#
# Usage (root): tests/bench/run.sh [--quick] [--reps N] [--out FILE] [--keep-logs DIR] [--steps LIST]
#   FERRY_BUILD  build directory with ferryd and bench/ (default: build)
#   FERRYD       the ferryd binary (default: $FERRY_BUILD/ferryd)
#   FERRY_ECHO   the consumer of the client rows (default: $FERRY_BUILD/examples/ferry-echo)
set -u -o pipefail

usage() {
	cat <<EOF
usage: $0 [--quick] [--reps N] [--out FILE] [--keep-logs DIR] [--steps LIST]
  --quick          one short repetition of every step: checks the harness, not the figures
  --steps LIST     only these of: sanity,ceiling,a,b,c,d (default all)
  --reps N         repetitions of figure (a) (default 5; quick 1)
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
FERRY_ECHO=${FERRY_ECHO:-$B/examples/ferry-echo}
HERE=$(cd "$(dirname "$0")" && pwd)

# ---- parameters ----------------------------------------------------------------
RATE_A=150000		# (a): offered rate, pps, below the ceiling
SIZE_A=18		# (a), (c): payload bytes
RTT_RATE=10000		# (c): requests per second
if [ $QUICK = 1 ]; then
	: "${REPS:=1}"
	COUNT_A=45000	# 0.3 s at RATE_A
	CEIL_S=0.5 B_REPS=1 B_S=0.2 C_REPS=1 C_S=0.4 C_WARM=0.1 CG_N=2000
	OUT=${OUT:-$B/bench-quick.json}
else
	# 5 repetitions of every figure in under 10 minutes on 2 cores (about 7 on a fully
	# busy machine: much of it goes into starting and stopping ferryd for each measurement)
	: "${REPS:=5}"
	COUNT_A=150000	# 1 s at RATE_A
	CEIL_S=2 B_REPS=5 B_S=0.4 C_REPS=5 C_S=1.5 C_WARM=0.2 CG_N=10000
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
CONS_PIDS=()	# the consumers (ferry-echo) of a client row, attached to RX_PID's ferryd
CTL=$T/ferryd.sock	# the control socket of the client rows' ferryd
FAILS=0

cleanup() {
	local pid
	trap - EXIT INT TERM HUP
	for pid in "${CONS_PIDS[@]}"; do { kill -KILL "$pid"; wait "$pid"; } 2>/dev/null; done
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

# The run time of a process, all its threads, in ns (schedstat: not cut to whole ticks).
# The two processes of a client row are split with it: a consumer's few ticks
# would be too coarse on their own.
proc_ns() {
	cat "/proc/$1"/task/*/schedstat 2>/dev/null | awk '{n += $1} END {printf "%.0f", n}'
}

# ---- receivers ---------------------------------------------------------------------
# The receivers of figures (a) and (b), in the order of each repetition.
RECEIVERS="xdp_count xdp_count_2q rxdrop recvmmsg_rx ferryd_xdp_1w ferryd_xdp_2w ferryd_socket"
# ferryd (xdp, 1 queue, 1 worker, --handler clients) handing bench4 to consumer
# processes, ferry-echo --count, pinned to ferryd's CPU: one consumer with the copy
# hand-off, one with zero-copy (where both binaries have the flags, client_rx_missing;
# otherwise the row says "n/a (not built)"), four with round-robin fan-out (one
# generator flow: hash fan-out would put it all on one client).
CLIENT_RX="ferryd_clients ferryd_clients_zc ferryd_clients4"
# Figure (a) again with busy polling where the receiver has it: the same socket
# options on the bare AF_XDP loop and the baseline socket as ferryd --busy-poll sets
# on its AF_XDP sockets (ferryd's socket mode has none; the consumer sleeps as ever).
BUSY_POLL="rxdrop_bp recvmmsg_rx_bp ferryd_xdp_1w_bp ferryd_clients_bp"
RECEIVERS_A="$RECEIVERS $CLIENT_RX $BUSY_POLL"
RECEIVERS_B="$RECEIVERS $CLIENT_RX"
# Those on the 2-queue pair fh1, fed on both queues (feed); xdp_count_2q is their floor.
ON_2Q="xdp_count_2q ferryd_xdp_2w"
FLOOR_2Q=xdp_count_2q
# A new receiver needs a case in rx_cmd (its command line) and in rx_count (where it
# reports what it received); the figures, ratios and JSON pick it up from the lists
# above (and ON_2Q, if it spreads over queues). One with consumer processes also
# needs a case in consumers.

# Why a client row cannot run with these binaries (nothing when it can): the zero-copy
# one needs ferryd's --client-zero-copy and ferry-echo's --zero-copy, found in their --help.
client_rx_missing() { # who
	[ -x "$FERRY_ECHO" ] || { echo "no ferry-echo at $FERRY_ECHO"; return; }
	"$FERRYD" --help 2>&1 | grep -q -- '--handler clients' || { echo "ferryd has no --handler clients"; return; }
	case $1 in
	*_zc)
		"$FERRYD" --help 2>&1 | grep -q -- '--client-zero-copy' || { echo "ferryd has no --client-zero-copy"; return; }
		"$FERRY_ECHO" --help 2>&1 | grep -q -- '--zero-copy' || echo "ferry-echo has no --zero-copy" ;;
	esac
}

rx_cmd() { # who [handler]
	local h=${2:-count}
	case $1 in
	xdp_count) echo "$BB/xdp_count -i fh0 --duration $RX_MAX" ;;
	xdp_count_2q) echo "$BB/xdp_count -i fh1 --duration $RX_MAX" ;;
	rxdrop) echo "$BB/rxdrop -i fh0 --duration $RX_MAX" ;;
	recvmmsg_rx) echo "$BB/recvmmsg_rx --bind $H4:$PORT --duration $RX_MAX" ;;
	rxdrop_bp) echo "$BB/rxdrop -i fh0 --busy-poll --duration $RX_MAX" ;;
	recvmmsg_rx_bp) echo "$BB/recvmmsg_rx --bind $H4:$PORT --busy-poll --duration $RX_MAX" ;;
	recvmmsg_rx6) echo "$BB/recvmmsg_rx --bind [$H6]:$PORT --duration $RX_MAX" ;;
	udpecho) echo "$BB/udpecho --bind $H4:$PORT --duration $RX_MAX" ;;
	ferryd_xdp | ferryd_socket)
		echo "$FERRYD --interface fh0 --mode ${1#ferryd_} --handler $h" \
			"--service bench4=$H4:$PORT --service bench6=[$H6]:$PORT" ;;
	ferryd_xdp_1w | ferryd_xdp_1w_bp)
		echo "$FERRYD --interface fh0 --mode xdp --handler $h --queues 1 --workers 1" \
			"--service bench4=$H4:$PORT --service bench6=[$H6]:$PORT" \
			"$([ "$1" = ferryd_xdp_1w_bp ] && echo --busy-poll)" ;;
	# both workers on the one CPU every receiver gets (rx_start): what the threads
	# cost, not what a second core would give (CPU 0 is the generators' and veth's)
	ferryd_xdp_2w)
		echo "$FERRYD --interface fh1 --mode xdp --handler $h --queues 2 --workers 2" \
			"--service bench4=$H4Q:$PORT --service bench6=[$H6Q]:$PORT" ;;
	# bench4 to the consumers cons_start attaches; nothing goes to bench6
	ferryd_clients | ferryd_clients_zc | ferryd_clients4 | ferryd_clients_bp | ferryd_client_echo)
		echo "$FERRYD --interface fh0 --mode xdp --handler clients --queues 1 --workers 1 --control $CTL" \
			"--service bench4=$H4:$PORT --service bench6=[$H6]:$PORT" \
			"$(case $1 in *_zc) echo --client-zero-copy bench4 ;; *4) echo --fanout bench4=round-robin ;;
				*_bp) echo --busy-poll ;; esac)" ;;
	*) return 1 ;;
	esac
}

# What a stopped receiver received, from its output.
rx_count() { # who out-file
	case $1 in
	ferryd_client*) cons_sum "${2%.out}" datagrams ;;
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
	for _ in $(seq 300); do
		if grep -q ': ready$' "$2.err" 2>/dev/null; then
			[ "$(consumers "$1")" = 0 ] || cons_start "$1" "$2" || break
			return 0
		fi
		kill -0 "$RX_PID" 2>/dev/null || break
		sleep 0.05
	done
	rx_stop "$2" >/dev/null
	return 1
}

# How many consumer processes a receiver has.
consumers() { # who
	case $1 in
	ferryd_clients4) echo 4 ;;
	ferryd_client*) echo 1 ;;
	*) echo 0 ;;
	esac
}

# The consumers of a client row: ferry-echo attached to bench4 through the control
# socket (--count: only counting; ferryd_client_echo: echoing through
# ferry_client_send), in the host namespace on ferryd's CPU (1), so that the row is
# ferryd and its consumers on one core, as every receiver has one. Waits until each
# is attached (ferryd has given every worker the session by then). Sets CONS_PIDS;
# consumer k logs to PREFIX.consK.{out,err}.
cons_start() { # who log-prefix
	local a=(--control "$CTL") k n
	n=$(consumers "$1")
	[ "$1" = ferryd_client_echo ] || a+=(--count)
	case $1 in *_zc) a+=(--zero-copy) ;; esac
	for k in $(seq "$n"); do
		ip netns exec "$H" taskset -c 1 "$FERRY_ECHO" "${a[@]}" bench4 >"$2.cons$k.out" 2>"$2.cons$k.err" &
		CONS_PIDS+=($!)
		for _ in $(seq 200); do
			grep -q 'attached to service' "$2.cons$k.err" 2>/dev/null && continue 2
			kill -0 "${CONS_PIDS[-1]}" 2>/dev/null || break
			sleep 0.05
		done
		return 1
	done
}

# A key of consumer k's last "ferry-echo ..." line.
cons_get() { # file key
	grep '^ferry-echo ' "$1" 2>/dev/null | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# The sum of a key over the consumers' lines; empty if one has none.
cons_sum() { # log-prefix key
	local f v t=0
	for f in "$1".cons*.out; do
		v=$(cons_get "$f" "$2")
		[ -n "$v" ] || return 0
		t=$((t + v))
	done
	[ -e "$1.cons1.out" ] && echo $t
}

# CPU of the consumers, all together: ticks (proc_ticks) or ns (proc_ns).
cons_cpu() { # proc_ticks|proc_ns
	local pid t=0
	for pid in "${CONS_PIDS[@]}"; do t=$((t + $("$1" "$pid"))); done
	echo $t
}

# SIGTERM, then wait (10 s at most). 0 if it exited 0 on its own.
stop_pid() { # pid
	local rc=0
	kill -TERM "$1" 2>/dev/null
	for _ in $(seq 500); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.02
	done
	if kill -0 "$1" 2>/dev/null; then
		kill -KILL "$1" 2>/dev/null
		rc=1
	fi
	wait "$1" 2>/dev/null || rc=1
	return $rc
}

# Stops the receiver; with consumers, first ferryd's counters of their sessions while
# they are still attached (SIGUSR1: a "client" line each, before the stats line), then
# the consumers (they print their counters), then ferryd. 0 if all exited 0 on their own.
rx_stop() { # log-prefix
	local rc=0 pid
	[ -n "$RX_PID" ] || return 1
	if [ ${#CONS_PIDS[@]} -gt 0 ]; then
		if kill -USR1 "$RX_PID" 2>/dev/null; then
			for _ in $(seq 100); do
				[ "$(client_lines "$1.out" | wc -l)" -ge ${#CONS_PIDS[@]} ] && break
				sleep 0.05
			done
		fi
		for pid in "${CONS_PIDS[@]}"; do stop_pid "$pid" || rc=1; done
		CONS_PIDS=()
	fi
	stop_pid "$RX_PID" || rc=1
	RX_PID=
	return $rc
}

# ferryd's lines of the consumers' sessions (service bench4), from the SIGUSR1 before
# they left: the last run of client lines (ferryd prints them before its stats line).
client_lines() { # ferryd-out-file
	awk '/^client .* service=bench4 / {if (!in_) n = 0; in_ = 1; l[++n] = $0; next} {in_ = 0}
		END {for (i = 1; i <= n; i++) print l[i]}' "$1" 2>/dev/null
}

# The consumers' counters against ferryd's for their sessions: one client line per
# consumer, each consumer's counters printed, ferryd's hand-off counters summed into
# one line (client_line=) for the report, the consumers' into consumer_line=.
# A missing line or consumer that received nothing (with several: the fan-out
# left one out) fails; drops do not (they are figures: a client's full ring,
# rx_dropped_full, is counted and reported). Adds to EXTRA.
client_check() { # who log-prefix step-name
	local n k cl sum cons v
	n=$(consumers "$1")
	cl=$(client_lines "$2.out")
	sum=$(echo "$cl" | awk '{for (i = 1; i <= NF; i++) if (split($i, kv, "=") == 2 && kv[2] ~ /^[0-9]+$/) t[kv[1]] += kv[2]}
		END {printf "sessions=%d", NR; for (k in t) if (k != "pid" && k != "uid") printf " %s=%d", k, t[k]}')
	cons=""
	for k in $(seq "$n"); do
		v=$(cons_get "$2.cons$k.out" datagrams)
		cons="$cons consumer$k=${v:-none}"
		[ -n "$v" ] || fail "$3" "consumer $k printed no counters" "$2.cons$k.err"
		[ "${v:-0}" -gt 0 ] || fail "$3" "consumer $k of $n received nothing" "$2.cons$k.err"
	done
	EXTRA+=("client_line=$sum" "consumer_line=${cons# } rx_dropped_full=$(cons_sum "$2" rx_dropped_full)")
	[ "$(echo "$cl" | grep -c .)" = "$n" ] ||
		fail "$3" "ferryd printed $(echo "$cl" | grep -c .) client lines for bench4, $n consumers" "$2.out"
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

# Those of the receivers given that these binaries can run; the others are recorded
# as n/a with the reason, once.
runnable() { # fig who...
	local fig=$1 who why
	shift
	for who in "$@"; do
		case $who in ferryd_client*)
			why=$(client_rx_missing "$who")
			if [ -n "$why" ]; then
				echo "bench: ($fig) $who: n/a, not built: $why" >&2
				record na - "$who" - "msg=not built: $why"
				continue
			fi ;;
		esac
		echo "$who"
	done
}

# Figure (a): CPU per packet at RATE_A. Machine-wide busy time over the run and the
# receiver's own CPU time; receivers interleaved within each repetition.
step_cpu() {
	local rep who l s0 s1 p0 p1 n0 n1 c0 c1 ct0 ct1 t0 t1 u0 u1 sent got rc hz list
	hz=$(getconf CLK_TCK)
	list=$(runnable a $RECEIVERS_A)
	for rep in $(seq "$REPS"); do
		for who in $list; do
			l=$T/a.$rep.$who
			rx_start "$who" "$l.rx" || { fail "cpu $who #$rep" "did not start" "$l.rx.err"; continue; }
			sleep 0.2 # settle: start-up work is not what we measure
			# a client row's own CPU is ferryd's and its consumers' (c*: the consumers' alone)
			ct0=$(cons_cpu proc_ticks) c0=$(cons_cpu proc_ns)
			u0=$(udp_counters) s0=$(cpu_ticks) p0=$(proc_ticks "$RX_PID") n0=$(proc_ns "$RX_PID") t0=$(date +%s%N)
			feed "$who" "$l.gen" $SIZE_A $RATE_A $COUNT_A $((COUNT_A / RATE_A * 2 + 5))
			rc=$?
			sleep 0.2 # what is queued drains
			s1=$(cpu_ticks) p1=$(proc_ticks "$RX_PID") n1=$(proc_ns "$RX_PID") t1=$(date +%s%N) u1=$(udp_counters)
			ct1=$(cons_cpu proc_ticks) c1=$(cons_cpu proc_ns)
			rx_stop "$l.rx" || fail "cpu $who #$rep" "receiver did not stop cleanly" "$l.rx.err"
			[ $rc = 0 ] || fail "cpu $who #$rep" "xdpgen failed" "$l.gen.err"
			sent=$(jget "$l.gen" sent) got=$(rx_count "$who" "$l.rx.out")
			EXTRA=()
			case $who in ferryd_*) ferryd_extra "$who" "$l.rx.out" "cpu $who #$rep" ;; esac
			case $who in ferryd_client*)
				EXTRA+=("consumers=$(consumers "$who")" "cons_ticks=$((ct1 - ct0))" "cons_sched_ns=$((c1 - c0))")
				client_check "$who" "$l.rx" "cpu $who #$rep" ;;
			esac
			record a "$rep" "$who" $SIZE_A "sent=${sent:-0}" "delivered=${got:-0}" "hz=$hz" \
				"wall_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')" \
				"$(echo "$s0 $s1" | awk '{printf "user=%d\tnice=%d\tsystem=%d\tidle=%d\tiowait=%d\tirq=%d\tsoftirq=%d\tsteal=%d",
					$9-$1, $10-$2, $11-$3, $12-$4, $13-$5, $14-$6, $15-$7, $16-$8}')" \
				"proc_ticks=$((p1 - p0 + ct1 - ct0))" "sched_ns=$((n1 - n0))" "$(udp_delta "$u0" "$u1")" "${EXTRA[@]}"
			[ -n "$got" ] && [ "$got" -gt 0 ] || fail "cpu $who #$rep" "nothing delivered" "$l.rx.err"
		done
	done
}

# Figure (b): delivered rate and loss at the ceiling (xdpgen unpaced).
step_ceiling_loss() {
	local rep size who l sent got u0 u1 list
	list=$(runnable b $RECEIVERS_B)
	for rep in $(seq $B_REPS); do
		for size in $B_SIZES; do
			for who in $list; do
				l=$T/b.$rep.$size.$who
				rx_start "$who" "$l.rx" || { fail "ceiling $who $size #$rep" "did not start" "$l.rx.err"; continue; }
				u0=$(udp_counters)
				feed "$who" "$l.gen" "$size" 0 0 $B_S ||
					fail "ceiling $who $size #$rep" "xdpgen failed" "$l.gen.err"
				sleep 0.2
				u1=$(udp_counters)
				rx_stop "$l.rx" || fail "ceiling $who $size #$rep" "receiver did not stop cleanly" "$l.rx.err"
				sent=$(jget "$l.gen" sent) got=$(rx_count "$who" "$l.rx.out")
				EXTRA=()
				case $who in
				ferryd_client*)
					# a client's full ring (ferryd's rx_client_full) is an explained drop
					ferryd_extra "$who" "$l.rx.out" "ceiling $who $size #$rep"
					EXTRA+=("consumers=$(consumers "$who")")
					client_check "$who" "$l.rx" "ceiling $who $size #$rep" ;;
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
# ferryd_client_echo: ferryd (xdp, 1 queue, 1 worker, --handler clients) handing
# bench4 to one ferry-echo that sends each datagram back through ferry_client_send.
ECHOES="udpecho ferryd_xdp ferryd_socket ferryd_client_echo"
step_rtt() {
	local rep who l k vals list
	list=$(runnable c $ECHOES)
	for rep in $(seq $C_REPS); do
		for who in $list; do
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
		"c_rate=$RTT_RATE" "cg_n=$CG_N" "receivers=$RECEIVERS" "receivers_a=$RECEIVERS_A" "receivers_b=$RECEIVERS_B" "busy_poll_sysctl=$(cat /proc/sys/net/core/busy_poll 2>/dev/null)" "echoes=$ECHOES" \
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
awk -F'\t' -v json="$OUT" -v md="${OUT%.json}.md" -f "$HERE/report.awk" "$RES" || fail report "report.awk failed"
echo "bench: wrote $OUT and ${OUT%.json}.md"
if [ $FAILS -gt 0 ]; then
	echo "bench: $FAILS step(s) FAILED" >&2
	exit 1
fi
exit 0
