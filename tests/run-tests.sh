#!/bin/sh
# Runs the Criterion test binary. Under sanitizers (SANITIZE=1) a report from
# ASan, LSan or UBSan fails the run even where Criterion counted the test as
# passed (a leak found at a worker's exit does not change its verdict).
# Usage: run-tests.sh BINARY [criterion options]
set -u
bin=$1
shift
if [ -z "${SANITIZE:-}" ]; then
	exec "$bin" "$@"
fi
here=$(cd "$(dirname "$0")" && pwd)
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
log=$(mktemp /tmp/ferry-tests.XXXXXX)
rcf=$log.rc
trap 'rm -f "$log" "$rcf"' EXIT
{ "$bin" "$@"; echo $? >"$rcf"; } 2>&1 | tee "$log"
rc=$(cat "$rcf")
if grep -Eq 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$log"; then
	echo "run-tests: FAILED: sanitizer reports above" >&2
	[ "$rc" -ne 0 ] || rc=1
fi
exit "$rc"
