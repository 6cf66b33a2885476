#!/bin/sh
# make fuzz, in three steps that fuzz.mk runs as separate targets, so that
# under make -jN the fuzzers run N at a time:
#   run.sh one FUZZ_DIR SECONDS NAME   one fuzzer for SECONDS on a fresh copy of its
#                                      committed corpus (tests/fuzz/corpus/NAME stays as
#                                      it is); its output goes to logs/NAME.log, its
#                                      figures and verdict to results/NAME. Exits 0 even
#                                      on a finding, so the other fuzzers still run.
#                                      (SECONDS 0: the corpus once, no fuzzing)
#   run.sh agree FUZZ_DIR              bpf_agree over the packet_parse corpus the run grew
#   run.sh report FUZZ_DIR NAME...     the report of each finding, then every fuzzer's
#                                      executions and coverage; exits 1 on any finding,
#                                      naming the input that shows it.
set -u
mode=$1
dir=$2
here=$(dirname "$0")

max_len() {
	case $1 in
	sockaddr_parse) echo 256 ;;
	cmdline) echo 2048 ;;
	*) echo 4096 ;;
	esac
}

# One fuzzer: its options, then its working corpus (where new inputs go).
fuzz_one() {
	set -- "$1" "$2" "$3" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$1")" -print_final_stats=1 \
		-artifact_prefix="$4/"
	[ -f "$here/$1.dict" ] && set -- "$@" -dict="$here/$1.dict"
	if [ "$3" -eq 0 ]; then
		set -- "$@" -runs=0
	else
		set -- "$@" -max_total_time="$3"
	fi
	bin=$dir/$1
	work=$2
	shift 3
	"$bin" "$@" "$work"
}

one() {
	secs=$1
	name=$2
	corpus=$here/corpus/$name
	work=$dir/work/$name
	found=$dir/findings/$name
	log=$dir/logs/$name.log
	res=$dir/results/$name
	rm -rf "$work" "$found" "$res"
	mkdir -p "$work" "$found" "$dir/logs" "$dir/results"
	cp "$corpus"/* "$work"/
	echo "fuzz: $name: ${secs}s on $(ls "$work" | wc -l) inputs (log: $log)"
	fuzz_one "$name" "$work" "$secs" "$found" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9]*/[0-9a-zA-Z]*' "$log" | tail -n 1)
	line=$(printf '%-17s %10s runs %8s exec/s  %s' "$name" "${runs:-?}" "${eps:-?}" "${cov:-?}")
	if [ $rc -ne 0 ] || [ -n "$(ls "$found")" ]; then
		echo "fuzz: $name: FINDING (exit $rc): $(ls "$found"/* 2>/dev/null | head -n 1)"
		printf '%s  FINDING (exit %s)\n' "$line" "$rc" >"$res"
	else
		echo "fuzz: $name: done"
		printf '%s\n' "$line" >"$res"
	fi
}

agree() {
	frames=$here/corpus/packet_parse
	[ -d "$dir/work/packet_parse" ] && frames=$dir/work/packet_parse
	mkdir -p "$dir/results"
	echo "fuzz: bpf_agree over $frames"
	"$dir/bpf_agree" "$frames"
	rc=$?
	case $rc in
	0) echo "bpf_agree: agree" ;;
	77) echo "bpf_agree: skipped (not root)" ;;
	*) echo "bpf_agree: DISAGREE (exit $rc)  FINDING" ;;
	esac >"$dir/results/bpf_agree"
}

report() {
	status=0
	for name in "$@"; do
		res=$dir/results/$name
		if [ ! -f "$res" ]; then
			echo "fuzz: $name: no result (the run did not finish)"
			status=1
			continue
		fi
		grep -q FINDING "$res" || continue
		status=1
		[ "$name" = bpf_agree ] && continue
		echo "==== fuzz: $name: FINDING; the report ($dir/logs/$name.log):"
		grep -E -A30 '^==[0-9]+==|check failed|ERROR: libFuzzer|runtime error' "$dir/logs/$name.log" | head -n 60
		for f in "$dir/findings/$name"/*; do
			[ -e "$f" ] && echo "fuzz: $name: input: $f  (replay: $dir/$name $f)"
		done
	done
	echo "fuzz: results (executions, libFuzzer's final coverage):"
	for name in "$@"; do
		[ -f "$dir/results/$name" ] && sed 's/^/  /' "$dir/results/$name"
	done
	[ $status -eq 0 ] && echo "fuzz: no findings" || echo "fuzz: FAILED: findings above"
	return $status
}

case $mode in
one) one "$3" "$4" ;;
agree) agree ;;
report)
	shift 2
	report "$@"
	;;
*)
	echo "usage: run.sh one|agree|report FUZZ_DIR ..." >&2
	exit 2
	;;
esac
