#!/usr/bin/env bash
# Semantic hits end to end on GPTCache's own benchmark data (data/gptcache/mock-pairs.json in this repository), GPTCache and
# CacheKit with the same embedding model (all-MiniLM-L6-v2), in one run: every origin stored with its own answer,
# every paraphrase looked up; latency per hit and correct / wrong / miss counts by pair id. CacheKit runs twice in one
# process, with its semantic guards and without, and times the guards alone.
# GPTCache 0.1.x: SBERT embedding (sentence-transformers, torch CPU) + FAISS + SQLite, SearchDistanceEvaluation, its
# default similarity threshold 0.8. (Its published figures use an ONNX albert model fetched from the Hugging Face hub,
# which this machine cannot reach; the same model on both sides also makes the comparison about the caches.)
# CacheKit: MultiLayerCache with memory L1 + local model + memory semantic index, threshold 0.71 and ambiguity
# margin 0.01 as `cachekit calibrate` chose them (BENCH_THRESHOLD / BENCH_MARGIN to change).
# GPT_PYTHON: a python with gptcache, faiss-cpu and sentence-transformers; default: a venv made here.
set -euo pipefail
cd "$(dirname "$0")/.."
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
MODEL=${CACHEKIT_MODEL_DIR:-$(../scripts/fetch-model)}
PAIRS=$(realpath "${PAIRS:-../data/gptcache/mock-pairs.json}")
if [ -z "${GPT_PYTHON:-}" ]; then
  VENV="$(cd .. && pwd)/.cache/cachekit/gptcache-venv"
  [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import gptcache, faiss, sqlalchemy, sentence_transformers" 2>/dev/null ||
    { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q gptcache faiss-cpu sqlalchemy 'torch==2.13.0+cpu' sentence-transformers; }
  GPT_PYTHON="$VENV/bin/python"
fi
swift build -c release --product cachekit-bench >&2
OURS=$("$(swift build -c release --show-bin-path)/cachekit-bench" compare/request-2kb.json --semantic "$PAIRS" "$MODEL")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
THEIRS=$(cd "$WORK" && HF_HUB_OFFLINE=1 "$GPT_PYTHON" - "$PAIRS" "$MODEL" <<'PY'
import json, sys, time
from gptcache import cache, Config, __version__
from gptcache.adapter.api import put, get
from gptcache.embedding import SBERT
from gptcache.manager import CacheBase, VectorBase, get_data_manager
from gptcache.processor.pre import get_prompt
from gptcache.similarity_evaluation.distance import SearchDistanceEvaluation
pairs = json.load(open(sys.argv[1]))
sbert = SBERT(sys.argv[2])
cache.init(pre_embedding_func=get_prompt, embedding_func=sbert.to_embeddings,
           data_manager=get_data_manager(CacheBase("sqlite"), VectorBase("faiss", dimension=sbert.dimension)),
           similarity_evaluation=SearchDistanceEvaluation(), config=Config(similarity_threshold=0.8))
for i, pair in enumerate(pairs):
    put(pair["origin"], f"pair-{i}-end")
latencies, correct, wrong, misses = [], 0, 0, 0
for i, pair in enumerate(pairs):
    start = time.perf_counter()
    answer = get(pair["similar"])
    elapsed = time.perf_counter() - start
    if answer is None:
        misses += 1
        continue
    latencies.append(elapsed * 1000)
    if answer == f"pair-{i}-end": correct += 1
    else: wrong += 1
latencies.sort()
print(json.dumps({"version": __version__, "correct": correct, "wrong": wrong, "misses": misses,
                  "hit_p50_ms": latencies[len(latencies) // 2], "hit_p95_ms": latencies[int(len(latencies) * 0.95)]}))
PY
)
python3 - "$OURS" "$THEIRS" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
def line(name, d):
    hits = d["correct"] + d["wrong"]; n = hits + d["misses"]
    return (f"{name}: {d['correct']} correct / {d['wrong']} wrong / {d['misses']} miss   hit rate {hits / n:.1%}   "
            f"precision {d['correct'] / max(hits, 1):.1%}   hit p50 {d['hit_p50_ms']:.2f} ms  p95 {d['hit_p95_ms']:.2f} ms")
g, n = o["all_guards"], o["no_guards"]
print(line(f"GPTCache {t['version']} (SBERT + FAISS + SQLite, threshold 0.8)", t))
print(line(f"CacheKit (L1 + local model + memory index, threshold {g['threshold']:.2f}, margin {g['margin']:.3f}, guards)", g))
print(line(f"CacheKit, the same without guards", n))
print(f"semantic hit latency ratio (p50): {t['hit_p50_ms'] / g['hit_p50_ms']:.1f}x faster")
print(f"guards: {o['guards_per_pair_p50_us']:.1f} us p50 ({o['guards_per_pair_p95_us']:.1f} us p95) per pair (the query's profile, "
      f"one stored question's, the verdict); hit p50 {g['hit_p50_ms']:.3f} ms with guards vs {n['hit_p50_ms']:.3f} ms without")
PY
