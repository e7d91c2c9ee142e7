#!/usr/bin/env bash
# CacheKit's L1 hit end to end (key + lookup through MultiLayerCache) against GPTCache's exact-match hit
# (`gptcache.adapter.api.get` after `cache.init(pre_embedding_func=get_prompt)`: its in-memory map data manager, no
# embedding) on the same 2 KB request, in one run; and end to end with the answer returned: CacheKit's
# `completion(for:upstream:)` (parsed response) against GPTCache's OpenAI adapter (`openai.ChatCompletion.create`, as
# its README uses it, exact match on the last message). GPTCache comes from PyPI into a venv (GPT_PYTHON to reuse one).
set -euo pipefail
cd "$(dirname "$0")/.."
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
if [ -z "${GPT_PYTHON:-}" ]; then
  VENV="$(cd .. && pwd)/.cache/cachekit/gptcache-venv"
  [ -x "$VENV/bin/python" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q gptcache; }
  GPT_PYTHON="$VENV/bin/python"
fi
swift build -c release --product cachekit-bench >&2
OURS=$("$(swift build -c release --show-bin-path)/cachekit-bench" compare/request-2kb.json)
# GPTCache's map data manager writes data_map.txt into the working folder at exit: run it in a scratch folder.
REQUEST="$PWD/compare/request-2kb.json"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
THEIRS=$(cd "$WORK" && "$GPT_PYTHON" - "$REQUEST" <<'PY'
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
api_ns = sorted(runs)[3]

# GPTCache as its README uses it: the OpenAI adapter (`openai.ChatCompletion.create` through gptcache), exact match
# on the last message (its default pre-embedding), the in-memory map; a hit returns an OpenAI-shaped response.
import os
os.environ.setdefault("OPENAI_API_KEY", "sk-not-used-on-a-hit")
from gptcache.adapter import openai as gpt_openai
from gptcache.processor.pre import last_content
request = json.load(open(sys.argv[1]))
from gptcache import Config
# Token counting off: it needs tiktoken's encodings from the network, and without it GPTCache's hit is only faster.
cache.init(pre_embedding_func=last_content, config=Config(enable_token_counter=False))
cache.import_data(questions=[request["messages"][-1]["content"]], answers=["cached answer " * 100])
kwargs = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
first = gpt_openai.ChatCompletion.create(**kwargs)
assert first.get("gptcache") is True, first
n, runs = 5000, []
for _ in range(7):
    t = time.perf_counter()
    for _ in range(n): gpt_openai.ChatCompletion.create(**kwargs)
    runs.append((time.perf_counter() - t) / n * 1e9)
print(json.dumps({"gptcache_exact_hit_ns": api_ns, "gptcache_adapter_hit_ns": sorted(runs)[3], "version": __version__}))
PY
)
python3 - "$OURS" "$THEIRS" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"exact hit, 2 KB request: CacheKit L1 (lookup, key included) {o['l1_hit_lookup_ns']/1000:.2f} µs   "
      f"GPTCache {t['version']} get() {t['gptcache_exact_hit_ns']/1000:.2f} µs   ratio {t['gptcache_exact_hit_ns']/o['l1_hit_lookup_ns']:.1f}x")
print(f"exact hit end to end, response returned: CacheKit completion() {o['l1_hit_completion_ns']/1000:.2f} µs   "
      f"GPTCache openai adapter ChatCompletion.create {t['gptcache_adapter_hit_ns']/1000:.2f} µs   "
      f"ratio {t['gptcache_adapter_hit_ns']/o['l1_hit_completion_ns']:.1f}x")
PY
