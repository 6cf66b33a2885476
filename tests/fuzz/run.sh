#!/bin/sh
# make fuzz: runs each fuzzer for SECONDS on a fresh copy of its committed
# corpus (tests/fuzz/corpus/NAME stays as it is), then bpf_agree over the
# packet_parse corpus the run grew. Prints each fuzzer's executions and
# coverage; exits 1 on any finding, naming the input that shows it.
#   run.sh FUZZ_DIR SECONDS NAME...     (SECONDS 0: each corpus once, no fuzzing)
set -u
dir=$1
secs=$2
shift 2
here=$(dirname "$0")
status=0
summary=""

max_len() {
	case $1 in
	sockaddr_parse) echo 256 ;;
	cmdline) echo 2048 ;;
	*) echo 4096 ;;
	esac
}

# One fuzzer: its options, then its working corpus (where new inputs go).
run_one() {
	set -- "$1" "$2" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$1")" -print_final_stats=1 \
		-artifact_prefix="$3/"
	[ -f "$here/$1.dict" ] && set -- "$@" -dict="$here/$1.dict"
	if [ "$secs" -eq 0 ]; then
		set -- "$@" -runs=0
	else
		set -- "$@" -max_total_time="$secs"
	fi
	bin=$dir/$1
	work=$2
	shift 2
	"$bin" "$@" "$work"
}

mkdir -p "$dir/logs"
for name in "$@"; do
	corpus=$here/corpus/$name
	work=$dir/work/$name
	found=$dir/findings/$name
	log=$dir/logs/$name.log
	rm -rf "$work" "$found"
	mkdir -p "$work" "$found"
	cp "$corpus"/* "$work"/
	echo "fuzz: $name: ${secs}s on $(ls "$work" | wc -l) inputs (log: $log)"
	run_one "$name" "$work" "$found" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -n 1)
	line=$(printf '  %-17s %10s runs %8s exec/s  %s' "$name" "${runs:-?}" "${eps:-?}" "${cov:-?}")
	if [ $rc -ne 0 ] || [ -n "$(ls "$found")" ]; then
		status=1
		echo "fuzz: $name: FINDING (exit $rc); the report:"
		grep -E -A30 '^==[0-9]+==|check failed|ERROR: libFuzzer|runtime error' "$log" | head -n 60
		for f in "$found"/*; do
			[ -e "$f" ] && echo "fuzz: $name: input: $f  (replay: $dir/$name $f)"
		done
		line="$line  FINDING"
	fi
	summary="$summary$line
"
done

# bpf_agree over what the packet_parse run grew (the committed seeds included), or the seeds alone.
frames=$here/corpus/packet_parse
[ -d "$dir/work/packet_parse" ] && frames=$dir/work/packet_parse
echo "fuzz: bpf_agree over $frames"
"$dir/bpf_agree" "$frames"
rc=$?
case $rc in
0) agree="agree" ;;
77) agree="skipped (not root)" ;;
*) agree="DISAGREE (exit $rc)"; status=1 ;;
esac

echo "fuzz: results (executions, libFuzzer's final coverage):"
printf '%s' "$summary"
echo "  bpf_agree: $agree"
[ $status -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: FAILED: findings above"
exit $status
