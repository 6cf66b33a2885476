#!/bin/sh
# make valgrind: the Criterion binary under valgrind's memcheck.
#
# Criterion runs every test in a fresh exec of the binary, so exec'd children
# are traced (--trace-children=yes), and so is every fork of the binary (the
# client and peer processes of the client tests). Not traced: ferryd, and the
# shells and ip/ethtool that build namespaces. ferryd is checked by ASan,
# UBSan and TSan (make check, make tsan); under valgrind it would run 20-50x
# slower than the tests' bursts and timeouts allow, and valgrind does not know
# its AF_XDP and BPF syscalls.
#
# Every process writes its own log; any error in any of them (an invalid
# access, an uninitialised value used, a definite or indirect leak) fails the
# run, whatever Criterion made of the test. tests/valgrind.supp holds the
# third-party noise, each entry saying why.
# Usage: valgrind.sh BINARY [criterion options]
set -u
bin=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
logs=$(mktemp -d /tmp/ferry-valgrind.XXXXXX)
trap 'rm -rf "$logs"' EXIT
trap 'exit 130' INT TERM
# the client tests pace their bursts for clients that run under valgrind
export FERRY_TEST_VALGRIND=1
valgrind --tool=memcheck --trace-children=yes \
	--trace-children-skip='*/ferryd,*/sh,*/dash,*/bash,*/ip,*/ethtool,*/bpftool' \
	--leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
	--error-exitcode=99 --read-inline-info=no --suppressions="$here/valgrind.supp" \
	--log-file="$logs/vg.%p" "$bin" --jobs 1 "$@"
rc=$?
# a fork that exec'd a program not traced (ferryd, ip, a shell) leaves a log without a summary
n=$(grep -l 'ERROR SUMMARY:' "$logs"/vg.* 2>/dev/null | wc -l)
bad=$(grep -l 'ERROR SUMMARY: [1-9]' "$logs"/vg.* 2>/dev/null)
for f in $bad; do
	echo "==== $(basename "$f")"
	cat "$f"
done
if [ -n "$bad" ]; then
	echo "valgrind: FAILED: errors in $(echo "$bad" | wc -l) of $n processes (above)" >&2
	[ "$rc" -ne 0 ] || rc=1
else
	echo "valgrind: $n processes checked, no errors, no definite or indirect leaks"
fi
exit "$rc"
