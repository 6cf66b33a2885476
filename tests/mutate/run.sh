#!/bin/sh
# The mutation run (make mutate): tests/mutate/README.md.
# Usage: run.sh BUILD_DIR   (a built tree: make tests has run in it)
# Env:   MUTANTS='glob ...'  only the mutants whose file names match one (default *)
#        MUTATE_TIMEOUT=s  seconds for one mutant's test run (default 240)
#        MUTATE_MIN=pct    the score below which the run fails (default 90)
#        MUTATE_KEEP=1     keep the scratch tree (its path is printed)
#        MUTATE_SUITES=filter  run this Criterion filter instead of each mutant's suites
#                          (to see which tests kill a mutant)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/tests/mutate
build=${1:?usage: run.sh BUILD_DIR}
case $build in /*) ;; *) build=$top/$build ;; esac
glob=${MUTANTS:-*}
tmo=${MUTATE_TIMEOUT:-240}
min=${MUTATE_MIN:-90}
jobs=$(nproc 2>/dev/null || echo 2)

[ -x "$build/tests/ferry-tests" ] || { echo "mutate: $build/tests/ferry-tests missing: make tests first" >&2; exit 2; }

# The scratch tree: the sources as they are now (tracked and new files, mtimes
# kept) and a copy of the build, so the first make there rebuilds nothing.
scratch=$(mktemp -d /tmp/ferry-mutate.XXXXXX)
cleanup() {
	if [ "${MUTATE_KEEP:-}" = 1 ]; then echo "mutate: scratch tree kept in $scratch"; else rm -rf "$scratch"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# (new files only from the source directories: build directories are not sources)
(cd "$top" && { git ls-files -z; git ls-files -oz --exclude-standard -- bpf daemon docs examples libclient tests; } |
	xargs -0 cp -p --parents -t "$scratch") || exit 2
cp -a "$build" "$scratch/bld" || exit 2

mk() { make -C "$scratch" --no-print-directory O=bld WERROR=1 -j"$jobs" tests >"$scratch/make.log" 2>&1; }
run_suites() { # $1: Criterion filter; output to $scratch/test.log
	(cd "$scratch" && FERRY_BUILD="$scratch/bld" timeout -k 10 "$tmo" bld/tests/ferry-tests \
		--filter "$1" >"$scratch/test.log" 2>&1)
}
field() { sed -n "s/^$1: *//p" "$2" | head -n 1; }

if ! mk; then cat "$scratch/make.log"; echo "mutate: the unmutated tree does not build" >&2; exit 2; fi

# The mutant files that the globs name (set -f: a glob is for mutants/, not the current directory).
mutants=$(set -f; for g in $glob; do
	set +f
	for m in "$here"/mutants/$g.mut; do [ -f "$m" ] && echo "$m"; done
done | sort -u)
[ -n "$mutants" ] || { echo "mutate: no mutant matches '$glob'" >&2; exit 2; }
suites_of() { if [ -n "${MUTATE_SUITES:-}" ]; then echo "$MUTATE_SUITES"; else field suites "$1"; fi; }
filters=$(for m in $mutants; do suites_of "$m"; done | sort -u)

# Each suite filter once on the unmutated tree: a kill must be the mutant's.
echo "mutate: baseline: the named suites on the unmutated tree"
echo "$filters" | while IFS= read -r f; do
	[ -n "$f" ] || continue
	if ! run_suites "$f"; then
		tail -n 30 "$scratch/test.log"
		echo "mutate: baseline fails on --filter '$f': fix that first" >&2
		exit 1
	fi
done || exit 2

killed=0 survived=0 equiv=0 bad=0 n=0 survivors= bads=
start=$(date +%s)
for m in $mutants; do
	name=$(basename "$m" .mut)
	file=$(field file "$m")
	suites=$(suites_of "$m")
	from=$(sed -n 's/^- //p' "$m")
	to=$(sed -n 's/^+ //p' "$m")
	eq=$(field equivalent "$m")
	n=$((n + 1))
	t0=$(date +%s)
	src=$scratch/$file
	if [ -z "$file" ] || [ -z "$suites" ] || [ ! -f "$src" ]; then
		echo "mutate: $name: ERROR (file: or suites: missing)"; bad=$((bad + 1)); bads="$bads $name"; continue
	fi
	cp "$src" "$scratch/orig"
	if ! FROM=$from TO=$to NTH=$(field nth "$m") python3 - "$src" <<'PY'
import os, sys
p = sys.argv[1]
lines = open(p).read().split('\n')
hits = [i for i, l in enumerate(lines) if l == os.environ['FROM']]
nth = int(os.environ['NTH'] or 0)
if (nth == 0 and len(hits) != 1) or len(hits) < max(nth, 1):
    sys.exit(1)
lines[hits[max(nth, 1) - 1]] = os.environ['TO']
open(p, 'w').write('\n'.join(lines))
PY
	then
		echo "mutate: $name: ERROR (the - line is not in $file, or not once without nth:)"
		bad=$((bad + 1)); bads="$bads $name"; continue
	fi
	if ! mk; then
		verdict="BUILD-FAILED"; bad=$((bad + 1)); bads="$bads $name"
		grep -m 3 'error' "$scratch/make.log" | sed 's/^/    /'
	elif run_suites "$suites"; then
		if [ -n "$eq" ]; then
			verdict="survived: equivalent ($eq)"; equiv=$((equiv + 1))
		else
			verdict="SURVIVED"; survived=$((survived + 1)); survivors="$survivors $name"
		fi
	else
		rc=$?
		verdict="killed"; [ "$rc" -ge 124 ] && verdict="killed (timeout)"
		if [ -n "$eq" ]; then
			verdict="$verdict, yet marked equivalent: ERROR"; bad=$((bad + 1)); bads="$bads $name"
		else
			killed=$((killed + 1))
		fi
	fi
	cp "$scratch/orig" "$src" # a new mtime: the next make rebuilds it
	echo "mutate: $name: $verdict  [$file; $suites; $(( $(date +%s) - t0 ))s]"
done
total=$((killed + survived))
[ "$total" -gt 0 ] || { echo "mutate: no mutant ran" >&2; exit 2; }
score=$((killed * 100 / total))
echo "mutate: $n mutants: $killed killed, $survived survived, $equiv equivalent, $bad errors; score $killed/$total = $score% in $(( $(date +%s) - start ))s"
[ -z "$survivors" ] || echo "mutate: survivors:$survivors (tests/mutate/README.md says why each is equivalent, or add a test)"
[ -z "$bads" ] || { echo "mutate: broken mutants:$bads" >&2; exit 1; }
[ "$score" -ge "$min" ] || { echo "mutate: score below $min%" >&2; exit 1; }
