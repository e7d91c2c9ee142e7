#!/usr/bin/env bash
# `cachekit serve` answering cached hits under wrk, next to the same load against the loopback upstream directly
# (the fake OpenAI server, which itself answers at once: no model latency). Starts both on ports 18096/18097.
# Needs wrk (apt install wrk). BENCH_SECONDS (default 8) per run, connections 1 and 8, one wrk thread.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN=${BENCH_SECONDS:-8}
source scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
start_release_serve 18096 18097
trap 'kill $SERVE_PIDS 2>/dev/null || true' EXIT
BODY=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" Benchmarks/compare/serve-hit.lua)
curl -sf -o /dev/null -H "Content-Type: application/json" -H "Authorization: Bearer sk-wrk" -d "$BODY" http://127.0.0.1:18097/v1/chat/completions
STATUS=$(curl -s -D - -o /dev/null -H "Content-Type: application/json" -H "Authorization: Bearer sk-wrk" -d "$BODY" http://127.0.0.1:18097/v1/chat/completions | tr -d '\r' | sed -n 's/^x-cachekit-status: //p')
echo "second request: x-cachekit-status $STATUS"
run() {
  wrk -t1 -c"$2" -d"${SECONDS_PER_RUN}s" --latency -s Benchmarks/compare/serve-hit.lua "$1" \
    | awk -v name="$3" -v c="$2" '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {bad=$NF}
        END {printf "%-34s c=%-2s %10s req/s   p50 %-9s p99 %-9s%s\n", name, c, rps, p50, p99, (bad ? "  non-2xx " bad : "")}'
}
for c in 1 8; do
  run http://127.0.0.1:18097/v1/chat/completions "$c" "cachekit serve, cached hit"
  run http://127.0.0.1:18096/v1/chat/completions "$c" "upstream directly (fake, no latency)"
done
