#!/usr/bin/env bash
# `experiment serve` under load: req/s, p50 and p99 (wrk) of /sdk/v2/flags,
# /sdk/v2/vardata and OFREP bulk on testdata/flags.json (18 flags, a 13.6 kB
# body), testdata/bench/flags-100.json (170 kB) and flags-1.json (a 1.3 kB
# body), beside two baselines (a trivial net/http handler, and the server's
# own /healthz); idle and loaded RSS; and the time from an edit of the
# --flags file to the last of STREAMS stream clients having it.
#
# The server runs on core SERVER_CPU (default 0: GOMAXPROCS follows the
# affinity, so one P), wrk and the stream harness on LOAD_CPU (default 1).
# Each wrk case runs REPEAT times (default 3) for DURATION (default 5s) with
# CONNS connections (default 16); the median run is printed.
#
# Usage: scripts/bench-serve.sh            (needs wrk: apt-get install -y wrk)
#        REPEAT=5 CONNS=32 STREAMS=2000 scripts/bench-serve.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null; then
  echo "bench-serve: needs wrk: apt-get install -y wrk (Debian/Ubuntu), brew install wrk, or https://github.com/wg/wrk" >&2
  exit 1
fi
DURATION=${DURATION:-5s} CONNS=${CONNS:-16} REPEAT=${REPEAT:-3} STREAMS=${STREAMS:-10000}
SERVER_CPU=${SERVER_CPU:-0} LOAD_CPU=${LOAD_CPU:-1}
# Below the ephemeral range, which 10,000 client sockets use up to here.
PORT=${PORT:-23546} HELLO_PORT=${HELLO_PORT:-23547}
# Each stream is a socket on both sides: raise the soft limit to the hard one.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((STREAMS + 100)) ]; then
  echo "bench-serve: ulimit -n is $(ulimit -n), too low for $STREAMS streams; STREAMS=$(($(ulimit -n) - 100)) or raise the hard limit" >&2
  exit 1
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
# As the releases are built (.goreleaser.yaml): static, stripped.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/experiment" .
go build -o "$tmp/load" ./bench/serve

user=$(tr -d '\n' <testdata/user.json)
cat >"$tmp/vardata.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[$user]]
EOF
# Go's and the JVM's HTTP clients ask for gzip; Node's and Python's do not.
echo 'wrk.headers["Accept-Encoding"] = "gzip"' >"$tmp/gzip.lua"
cat >"$tmp/ofrep.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"context":{"targetingKey":"user-1","plan":"pro","country":"United States","platform":"iOS"}}]]
EOF

rss() { awk -v f="$2" '$1 == f":" { printf("%.1f MiB", $2 / 1024) }' "/proc/$1/status"; }

# serve FILE [ARGS...]: a server on a copy of FILE; sets $server.
serve() {
  cp "$1" "$tmp/flags.json"
  shift
  taskset -c "$SERVER_CPU" "$tmp/experiment" serve --flags "$tmp/flags.json" --listen "127.0.0.1:$PORT" "$@" 2>"$tmp/serve.log" &
  server=$!
  pids+=("$server")
  up "http://127.0.0.1:$PORT/readyz" "$tmp/serve.log"
}

# up URL LOG: waits for URL to answer 200, else shows LOG and fails.
up() {
  for _ in $(seq 100); do
    curl -sf "$1" >/dev/null && return
    sleep 0.1
  done
  cat "$2" >&2
  exit 1
}

stop() {
  kill "$server"
  wait "$server" 2>/dev/null || true
}

# bench NAME URL [LUA]: REPEAT wrk runs; prints the median run's figures.
bench() {
  local name=$1 url=$2 script=()
  [ $# -gt 2 ] && script=(-s "$3")
  for _ in $(seq "$REPEAT"); do
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" --latency "${script[@]}" "$url" |
      awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) } $1 == "Requests/sec:" { rps = $2 }
        $1 ~ /^Non-2xx/ { bad = $NF }
        END { printf("%.0f %.2f %.2f %d\n", rps, p50, p99, bad) }'
  done | sort -n | awk -v n="$REPEAT" -v name="$name" '
    { r[NR] = $0 } END { split(r[int((n + 1) / 2)], m, " ")
      printf("| %-40s | %7d | %6.2f ms | %6.2f ms |%s\n", name, m[1], m[2], m[3], m[4] ? " NON-2xx: " m[4] : "") }'
}

echo "experiment serve: server on CPU $SERVER_CPU, wrk -t1 -c$CONNS -d$DURATION on CPU $LOAD_CPU, median of $REPEAT"
echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3)"
echo
echo "| case | req/s | p50 | p99 |"
echo "|---|---:|---:|---:|"
taskset -c "$SERVER_CPU" "$tmp/load" hello -listen "127.0.0.1:$HELLO_PORT" 2>"$tmp/hello.log" &
pids+=($!)
up "http://127.0.0.1:$HELLO_PORT/" "$tmp/hello.log"
bench "baseline: trivial net/http handler" "http://127.0.0.1:$HELLO_PORT/"
kill "${pids[-1]}"

serve testdata/flags.json
sleep 1
idle=$(rss "$server" VmRSS)
curl -s -o /dev/null "http://127.0.0.1:$PORT/metrics" # what Prometheus does first
idle="$idle, after a /metrics scrape $(rss "$server" VmRSS)"
bench "GET /healthz" "http://127.0.0.1:$PORT/healthz"
bench "GET /sdk/v2/flags, flags.json (13.6 kB)" "http://127.0.0.1:$PORT/sdk/v2/flags"
bench "GET /sdk/v2/flags, flags.json, gzip (2.6 kB)" "http://127.0.0.1:$PORT/sdk/v2/flags" "$tmp/gzip.lua"
bench "POST /sdk/v2/vardata, flags.json (18)" "http://127.0.0.1:$PORT/sdk/v2/vardata?v=0" "$tmp/vardata.lua"
bench "POST /ofrep/v1/evaluate/flags, flags.json" "http://127.0.0.1:$PORT/ofrep/v1/evaluate/flags" "$tmp/ofrep.lua"
loaded="$(rss "$server" VmRSS) (peak $(rss "$server" VmHWM))"
stop

serve testdata/bench/flags-1.json
bench "GET /sdk/v2/flags, flags-1.json (1.3 kB)" "http://127.0.0.1:$PORT/sdk/v2/flags"
stop

serve testdata/bench/flags-100.json
idle100=$(rss "$server" VmRSS)
bench "GET /sdk/v2/flags, flags-100.json (170 kB)" "http://127.0.0.1:$PORT/sdk/v2/flags"
bench "POST /sdk/v2/vardata, flags-100.json (100)" "http://127.0.0.1:$PORT/sdk/v2/vardata?v=0" "$tmp/vardata.lua"
bench "POST /ofrep/v1/evaluate/flags, flags-100" "http://127.0.0.1:$PORT/ofrep/v1/evaluate/flags" "$tmp/ofrep.lua"
stop

echo
echo "RSS, flags.json: idle $idle, after the runs above $loaded; flags-100.json: idle $idle100"

# The file is checked every 50 ms here (1 s by default): the figure is the
# push, not the polling.
serve testdata/flags.json --file-check-interval 50ms
taskset -c "$LOAD_CPU" "$tmp/load" stream -addr "127.0.0.1:$PORT" -flags "$tmp/flags.json" -n "$STREAMS"
echo "RSS with $STREAMS streams: $(rss "$server" VmRSS) (peak $(rss "$server" VmHWM))"
stop
