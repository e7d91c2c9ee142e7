#!/usr/bin/env bash
# CacheKit's L1 hit end to end (key + lookup through MultiLayerCache) against GPTCache's exact-match hit
# (`gptcache.adapter.api.get` after `cache.init(pre_embedding_func=get_prompt)`: its in-memory map data manager, no
# embedding) on the same 2 KB request, in one run. GPTCache comes from PyPI into a venv (GPT_PYTHON to reuse one).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${GPT_PYTHON:-}" ]; then
  VENV="../.cache/cachekit/gptcache-venv"
  [ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q gptcache; }
  GPT_PYTHON="$VENV/bin/python"
fi
swift build -c release --product cachekit-bench >&2
OURS=$("$(swift build -c release --show-bin-path)/cachekit-bench" compare/request-2kb.json)
THEIRS=$("$GPT_PYTHON" - compare/request-2kb.json <<'PY'
import json, sys, time
from gptcache import cache, __version__
from gptcache.adapter.api import put, get
from gptcache.processor.pre import get_prompt
prompt = json.dumps(json.load(open(sys.argv[1])), sort_keys=True)
cache.init(pre_embedding_func=get_prompt)
put(prompt, "cached answer " * 100)
assert get(prompt) is not None
n, runs = 20000, []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(n): get(prompt)
    runs.append((time.perf_counter() - t) / n * 1e9)
print(json.dumps({"gptcache_exact_hit_ns": sorted(runs)[3], "version": __version__}))
PY
)
python3 - "$OURS" "$THEIRS" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"exact hit, 2 KB request: CacheKit L1 (lookup, key included) {o['l1_hit_lookup_ns']/1000:.2f} µs   "
      f"GPTCache {t['version']} get() {t['gptcache_exact_hit_ns']/1000:.2f} µs   ratio {t['gptcache_exact_hit_ns']/o['l1_hit_lookup_ns']:.1f}x")
PY
