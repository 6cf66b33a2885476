#!/bin/sh
# Proves libferry.so exports exactly the public API: the FERRY_API functions
# declared in the public headers = the version script's list = the dynamic
# symbols the .so defines. Prints one line and exits non-zero on a mismatch.
set -eu
so=$1 map=$2 incdir=$3
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
# FERRY_API declarations may wrap: take the ferry_ identifier right before
# the first '(' of each (the macro's own definition has none and drops out).
cat "$incdir"/*.h | tr '\n' ' ' | grep -o 'FERRY_API [^;(#]*[^A-Za-z0-9_]ferry_[A-Za-z0-9_]*[[:space:]]*(' |
	sed -E 's/.*[^A-Za-z0-9_](ferry_[A-Za-z0-9_]+)[[:space:]]*\($/\1/' | sort -u > "$t/headers"
sed -n '/global:/,/local:/p' "$map" | grep -o 'ferry_[A-Za-z0-9_]*' | sort -u > "$t/map"
nm -D --defined-only "$so" | awk '$2 == "T" || $2 == "W" { sub(/@.*/, "", $3); print $3 }' | sort -u > "$t/so"
if ! diff -u "$t/headers" "$t/map" >&2; then
	echo "check-abi: FAILED: headers (-) and $map (+) differ" >&2
	exit 1
fi
if ! diff -u "$t/headers" "$t/so" >&2; then
	echo "check-abi: FAILED: headers (-) and the symbols of $so (+) differ" >&2
	exit 1
fi
echo "check-abi: $(wc -l < "$t/so") exported symbols of $(basename "$so") = the FERRY_API functions of the headers"
