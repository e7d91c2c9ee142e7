#!/usr/bin/env bash
# The upstream side, in one run against the loopback OpenAI-compatible server (scripts/lib/fake-openai.py on
# 127.0.0.1:18095): OpenAIClient's own per-request time against curl on the same endpoint (one curl process,
# reused connection), and a cache hit through MultiLayerCache against the direct upstream call. p50 of 300.
set -euo pipefail
cd "$(dirname "$0")/.."
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
PORT=${BENCH_OPENAI_PORT:-18095}
python3 ../scripts/lib/fake-openai.py "$PORT" >/dev/null 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do curl -s "http://127.0.0.1:$PORT/_stats" >/dev/null 2>&1 && break; sleep 0.1; done
swift build -c release --product cachekit-bench >&2
OURS=$("$(swift build -c release --show-bin-path)/cachekit-bench" compare/request-2kb.json --openai "http://127.0.0.1:$PORT/v1")
CONFIG=$(mktemp)
for i in $(seq 1 300); do
  printf 'url = "http://127.0.0.1:%s/v1/chat/completions"\nrequest = "POST"\nheader = "Content-Type: application/json"\nheader = "Authorization: Bearer sk-bench"\ndata = "@compare/request-2kb.json"\noutput = "/dev/null"\nwrite-out = "%%{time_total}\\n"\n' "$PORT"
  [ "$i" -lt 300 ] && echo "next"
done > "$CONFIG"
CURL=$(curl -s -K "$CONFIG" | sort -n | awk '{a[NR]=$1} END {print a[int(NR/2)+1]*1000}')
rm -f "$CONFIG"
python3 - "$OURS" "$CURL" <<'PY'
import json, sys
o, curl = json.loads(sys.argv[1]), float(sys.argv[2])
print(f"direct upstream call: OpenAIClient {o['direct_p50_ms']:.3f} ms   curl (same endpoint, reused connection) {curl:.3f} ms   client overhead {o['direct_p50_ms'] - curl:+.3f} ms")
print(f"cache hit through MultiLayerCache: {o['hit_p50_ms']:.3f} ms   vs the direct call: {o['direct_p50_ms'] / o['hit_p50_ms']:.0f}x faster")
PY
