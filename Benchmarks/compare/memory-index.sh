#!/usr/bin/env bash
# The memory semantic index at N × 384 (default 100,000) against numpy brute force (X @ q, argmax) on the same
# vectors and near-duplicate queries, in one run: p50 per top-1 lookup, and recall@1 of the approximate path
# (sign-bit Hamming pass + exact re-rank of 256 candidates) against the exact scan.
set -euo pipefail
cd "$(dirname "$0")/.."
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
N=${BENCH_ROWS:-100000}
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
swift build -c release --product cachekit-bench >&2
OURS=$("$(swift build -c release --show-bin-path)/cachekit-bench" compare/request-2kb.json --memory-index "$N" "$DIR")
NUMPY=$(python3 - "$DIR" "$N" <<'PY'
import json, sys, time
import numpy as np
d, n = sys.argv[1], int(sys.argv[2])
X = np.fromfile(d + "/vectors.f32", dtype=np.float32).reshape(n, 384)
Q = np.fromfile(d + "/queries.f32", dtype=np.float32).reshape(-1, 384)
times = []
for q in Q:
    t = time.perf_counter(); int(np.argmax(X @ q)); times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"numpy_p50_ms": sorted(times)[len(times) // 2], "numpy": np.__version__}))
PY
)
python3 - "$OURS" "$NUMPY" <<'PY'
import json, sys
o, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{int(o['count'])} x {int(o['dimension'])}, {int(o['queries'])} near-duplicate queries (4% noise), top-1")
print(f"numpy {p['numpy']} brute force X @ q:   p50 {p['numpy_p50_ms']:.3f} ms")
print(f"CacheKit exact SIMD scan:          p50 {o['exact_p50_ms']:.3f} ms   ({p['numpy_p50_ms']/o['exact_p50_ms']:.1f}x numpy)")
print(f"CacheKit approximate (sign bits):  p50 {o['approximate_p50_ms']:.3f} ms   ({p['numpy_p50_ms']/o['approximate_p50_ms']:.1f}x numpy), recall@1 {o['recall_at_1']:.3f} vs exact")
print(f"memory per vector: {int(o['bytes_per_vector'])} bytes (float32 + sign bits), plus key and entry")
PY
