#!/bin/sh
# Runs the Criterion test binary. Under sanitizers (SANITIZE=1: ASan+UBSan,
# SANITIZE=thread: TSan) every report fails the run, even where Criterion
# counted the test as passed (a leak found at a worker's exit does not change
# its verdict), and reports of the processes the tests start (ferryd) count
# too: every process writes its reports into one directory, checked at the end.
# Usage: run-tests.sh BINARY [criterion options]
set -u
bin=$1
shift
if [ -z "${SANITIZE:-}" ]; then
	exec "$bin" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
rep=$(mktemp -d /tmp/ferry-sanitizers.XXXXXX)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:log_path=$rep/asan:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$rep/ubsan:${UBSAN_OPTIONS:-}"
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:log_path=$rep/tsan:${TSAN_OPTIONS:-}"
rcf=$rep.rc
trap 'rm -rf "$rep" "$rcf"' EXIT
{ "$bin" "$@"; echo $? >"$rcf"; } 2>&1
rc=$(cat "$rcf")
if [ -n "$(ls -A "$rep")" ]; then
	for f in "$rep"/*; do
		echo "==== $(basename "$f")"
		cat "$f"
	done
	echo "run-tests: FAILED: sanitizer reports above" >&2
	[ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
