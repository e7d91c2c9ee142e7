#!/usr/bin/env bash
# Side by side, in one run against one redis-server: an L2 hit through MultiLayerCache (Redis layer only, 2 KB
# value, one client, no pipelining) versus `redis-benchmark -c 1 -t get -d 2000`, and CacheKit's pipelined bulk
# warm-up (batches of 128 SET PX, one pipeline each; BENCH_WARM_BATCH to vary) versus `redis-benchmark -c 1 -P 16 -t set -d 2000`.
# Starts its own redis-server on port 6393 (loopback, no persistence) and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
PORT=${BENCH_REDIS_PORT:-6393}
DIR=$(mktemp -d)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize yes --dir "$DIR" --pidfile "$DIR/pid" >/dev/null
trap 'redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
for _ in $(seq 1 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
swift build -c release --product cachekit-bench >&2
OURS=$("$(swift build -c release --show-bin-path)/cachekit-bench" compare/request-2kb.json --redis "redis://127.0.0.1:$PORT/0")
GET=$(redis-benchmark -p "$PORT" -c 1 -n 20000 -t get -d 2000 -q | grep -oE '[0-9.]+ requests per second' | grep -oE '^[0-9.]+')
SETP=$(redis-benchmark -p "$PORT" -c 1 -n 100000 -P 16 -t set -d 2000 -q | grep -oE '[0-9.]+ requests per second' | grep -oE '^[0-9.]+')
# The same pipelining with what a warm-up really writes: distinct keys (-r) and an expiry (PX), 2000-byte values.
VALUE=$(head -c 2000 /dev/zero | tr '\0' 'v')
SETPX=$(redis-benchmark -p "$PORT" -c 1 -n 100000 -P 16 -r 1000000 -q SET "k:__rand_int__" "$VALUE" PX 600000 | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | grep -oE '^[0-9.]+')
python3 - "$OURS" "$GET" "$SETP" "$SETPX" <<'PY'
import json, sys
ours, get, setp, setpx = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(f"L2 hit via MultiLayerCache: {ours['l2_hit_ops_per_s']:9.0f} ops/s ({ours['l2_hit_us']:.1f} µs)   redis-benchmark GET -c 1: {get:9.0f} ops/s   ratio {ours['l2_hit_ops_per_s']/get:.2f}x")
print(f"bulk warm-up (batches of {int(ours['warmup_batch'])}): {ours['warmup_sets_per_s']:9.0f} sets/s   redis-benchmark SET -c 1 -P 16: {setp:9.0f} ops/s   ratio {ours['warmup_sets_per_s']/setp:.2f}x")
print(f"  same against SET k:<random> <2000 B> PX 600000 -c 1 -P 16 (distinct keys with expiry, as a warm-up writes): {setpx:9.0f} ops/s   ratio {ours['warmup_sets_per_s']/setpx:.2f}x")
PY
