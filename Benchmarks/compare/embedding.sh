#!/usr/bin/env bash
# Local embedding latency, CacheKitEmbeddings (Swift + OpenBLAS) against the sentence-transformers library
# (PyTorch, CPU) on the same model, the same texts and the same machine, in one run: one 17-token query
# (batch 1) and 32 queries (batch 32), medians of 30 runs; CacheKit with its half-precision panel kernels (the
# default) and with OpenBLAS.
# ST_PYTHON: a python with sentence-transformers; default: a venv made here with torch (CPU) and the library.
set -euo pipefail
cd "$(dirname "$0")/.."
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
MODEL=${CACHEKIT_MODEL_DIR:-$(../scripts/fetch-model)}
if [ -z "${ST_PYTHON:-}" ]; then
  VENV="../.cache/cachekit/st-venv"
  [ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q 'torch==2.13.0+cpu' sentence-transformers; }
  ST_PYTHON="$VENV/bin/python"
fi
swift build -c release --product cachekit-bench >&2
OURS=$("$(swift build -c release --show-bin-path)/cachekit-bench" compare/request-2kb.json --embed "$MODEL")
THEIRS=$(HF_HUB_OFFLINE=1 "$ST_PYTHON" - "$MODEL" <<'PY'
import json, sys, time
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
query = "How do I reset the password of my account on the mobile app today?"
batch = [f"Question number {i}: how do I reset the password of my account today?" for i in range(32)]
model.encode([query])
def median(f):
    samples = []
    for _ in range(30):
        start = time.perf_counter(); f(); samples.append((time.perf_counter() - start) * 1000)
    return sorted(samples)[15]
print(json.dumps({"single_ms": median(lambda: model.encode([query], normalize_embeddings=True)),
                  "batch32_ms": median(lambda: model.encode(batch, batch_size=32, normalize_embeddings=True))}))
PY
)
python3 - "$OURS" "$THEIRS" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"one query ({int(o['tokens'])} tokens): CacheKit {o['single_ms']:.2f} ms   sentence-transformers {t['single_ms']:.2f} ms   ratio {t['single_ms']/o['single_ms']:.2f}x")
print(f"32 queries (batch 32):     CacheKit {o['batch32_ms']:.1f} ms ({o['batch32_per_query_ms']:.2f} ms/query)   sentence-transformers {t['batch32_ms']:.1f} ms   ratio {t['batch32_ms']/o['batch32_ms']:.2f}x")
if 'blas_single_ms' in o:
    print(f"same encoder with OpenBLAS products (same process): one query {o['blas_single_ms']:.2f} ms ({o['blas_single_ms']/o['single_ms']:.2f}x the panel kernels' time), batch 32 {o['blas_batch32_ms']:.1f} ms ({o['blas_batch32_ms']/o['batch32_ms']:.2f}x)")
PY
