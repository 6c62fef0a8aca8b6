#!/bin/sh
# Runs every benchmark ROUNDS times (default 5), each round all of them in
# turn, so that the official SDK and ours are measured interleaved under the
# same machine load; then prints the medians side by side with benchstat and
# cmd/ratios. All run in one process, as a service holds both its data and
# the SDK: run alone, with a heap of a few megabytes, the official SDK
# collects garbage far more often and looks up to twice as slow.
#
#   ./run.sh                      # all benchmarks, 5 rounds
#   BENCH=Evaluate ROUNDS=3 ./run.sh
set -eu
cd "$(dirname "$0")"
rounds=${ROUNDS:-5}
out=${OUT:-bench.txt}
go test -c -o official.test .
: >"$out"
for i in $(seq "$rounds"); do
	echo "round $i of $rounds" >&2
	./official.test -test.run '^$' -test.bench "${BENCH:-.}" -test.benchtime "${BENCHTIME:-1s}" >>"$out"
done
rm -f official.test
go run golang.org/x/perf/cmd/benchstat@latest -col /impl "$out"
echo
go run ./cmd/ratios "$out"
