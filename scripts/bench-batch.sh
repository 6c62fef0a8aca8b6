#!/usr/bin/env bash
# Batch throughput: N users (default 100000) x a flag set (default
# testdata/bench/flags-100.json) through `experiment evaluate --users -o jsonl`.
# Prints users per second. Usage: scripts/bench-batch.sh [N] [FLAGS]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
flags=${2:-testdata/bench/flags-100.json}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/experiment" .
awk -v n="$n" 'BEGIN {
  split("pro free enterprise", plans, " "); split("United States,Germany,France,India,Brazil", countries, ",")
  split("iOS Android Web", platforms, " ")
  for (i = 1; i <= n; i++) {
    printf("{\"user_id\":\"user-%d\",\"device_id\":\"%08x-d9cb-469f-a165-%012d\",\"country\":\"%s\",\"platform\":\"%s\",\"version\":\"%d.%d.%d\",\"os\":\"iOS 17.1\",\"user_properties\":{\"plan\":\"%s\",\"age\":%d,\"tags\":[\"alpha\",\"beta\"],\"app_version\":\"1.2.3\",\"email\":\"u%d@example.com\",\"beta_tester\":%s},\"groups\":{\"org id\":[\"%d\"]},\"group_properties\":{\"org id\":{\"%d\":{\"plan\":\"enterprise\",\"seats\":%d}}}}\n",
      i, i * 2654435761 % 4294967296, i, countries[i % 5 + 1], platforms[i % 3 + 1], i % 4, i % 10, i % 7,
      plans[i % 3 + 1], 18 + i % 60, i, (i % 2 ? "true" : "false"), i % 100, i % 100, i % 500)
  }
}' > "$tmp/users.jsonl"
start=$(date +%s.%N)
lines=$("$tmp/experiment" evaluate --flags "$flags" --users "$tmp/users.jsonl" -o jsonl 2>/dev/null | wc -l)
end=$(date +%s.%N)
awk -v n="$lines" -v s="$start" -v e="$end" -v f="$flags" 'BEGIN {
  t = e - s; printf("%d users x %s in %.2f s: %.0f users/s\n", n, f, t, n / t) }'
