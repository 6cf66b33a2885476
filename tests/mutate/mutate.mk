# make mutate: the mutation run of tests/mutate/ (tests/mutate/README.md), included
# by the top Makefile. Builds the tests in $(O), then, in a scratch copy of the tree
# and of $(O), applies each mutant of tests/mutate/mutants/ alone, rebuilds and runs
# only the suites it names; prints killed/survived per mutant and the score.
#   make mutate MUTANTS='*send*'     only these mutants (a glob on the file names)
#   MUTATE_TIMEOUT=240 MUTATE_MIN=90  seconds per mutant's tests; the score to reach
# Needs root for the suites on namespaces and XDP, as make test does.

mutate: tests
	$(Q)sh tests/mutate/run.sh $(O)

.PHONY: mutate
