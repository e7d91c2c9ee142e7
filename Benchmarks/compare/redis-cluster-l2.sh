#!/usr/bin/env bash
# The same comparison as redis-l2.sh, through a Redis Cluster (3 primaries + 3 replicas on loopback ports from 6450,
# started here and stopped afterwards): an L2 hit through MultiLayerCache on a `redis+cluster://` client versus
# `redis-benchmark --cluster -c 1 -t get -d 2000`, and the bulk warm-up (batches of 128 entries, routed by slot and
# pipelined per node) versus `redis-benchmark --cluster -c 1 -P 16` SETs of distinct keys with an expiry (the
# `{tag}` in the key is redis-benchmark's placeholder for routing in cluster mode).
set -euo pipefail
cd "$(dirname "$0")/.."
export CACHEKIT_STATE_DIR=${CACHEKIT_STATE_DIR:-$(mktemp -d)}
export CACHEKIT_TEST_REDIS_CLUSTER_PORT=${BENCH_REDIS_CLUSTER_PORT:-6450}
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
trap stop_redis_cluster EXIT
start_redis_cluster
PORT=$REDIS_CLUSTER_PORT
swift build -c release --product cachekit-bench >&2
OURS=$("$(swift build -c release --show-bin-path)/cachekit-bench" compare/request-2kb.json --redis "$CACHEKIT_REDIS_CLUSTER_URL")
GET=$(redis-benchmark --cluster -p "$PORT" -c 1 -n 20000 -t get -d 2000 -q | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | grep -oE '^[0-9.]+')
VALUE=$(head -c 2000 /dev/zero | tr '\0' 'v')
SETPX=$(redis-benchmark --cluster -p "$PORT" -c 1 -n 100000 -P 16 -r 1000000 -q SET "k:{tag}:__rand_int__" "$VALUE" PX 600000 | tr '\r' '\n' | grep -oE '[0-9.]+ requests per second' | tail -1 | grep -oE '^[0-9.]+')
python3 - "$OURS" "$GET" "$SETPX" <<'PY'
import json, sys
ours, get, setpx = json.loads(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"cluster L2 hit via MultiLayerCache: {ours['l2_hit_ops_per_s']:9.0f} ops/s ({ours['l2_hit_us']:.1f} µs)   redis-benchmark --cluster GET -c 1: {get:9.0f} ops/s   ratio {ours['l2_hit_ops_per_s']/get:.2f}x")
print(f"cluster bulk warm-up (batches of {int(ours['warmup_batch'])}): {ours['warmup_sets_per_s']:9.0f} sets/s   redis-benchmark --cluster SET k:<random> <2000 B> PX -c 1 -P 16: {setpx:9.0f} ops/s   ratio {ours['warmup_sets_per_s']/setpx:.2f}x")
PY
