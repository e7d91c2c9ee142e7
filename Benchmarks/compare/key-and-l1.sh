#!/usr/bin/env bash
# Side by side, in one run: CacheKit's key computation and L1 hit versus Python's canonical JSON + SHA-256 on the
# same 2 KB request, and a Swift Dictionary lookup on a 32-byte key. Prints the figures and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements benchmarks
REQUEST=compare/request-2kb.json
swift build -c release --product cachekit-bench >&2
SWIFT_JSON=$("$(swift build -c release --show-bin-path)/cachekit-bench" "$REQUEST")
PY_JSON=$(python3 - "$REQUEST" <<'PY'
import hashlib, json, sys, timeit
request = json.load(open(sys.argv[1]))
body = {k: v for k, v in request.items() if k not in ("stream", "stream_options")}
doc = {"request": body, "scope": {"namespace": "default", "tenant": "default", "version": "1"}, "v": 1}
def key():
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()).digest()
n = 20000
runs = sorted(timeit.repeat(key, number=n, repeat=7))
print(json.dumps({"python_key_ns": runs[3] / n * 1e9}))
PY
)
python3 - "$SWIFT_JSON" "$PY_JSON" <<'PY'
import json, platform, sys
s, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
print(f"request: {int(s['request_bytes'])} canonical bytes")
print(f"key (canonical JSON + SHA-256):   CacheKit {s['key_ns']/1000:7.2f} µs   Python {p['python_key_ns']/1000:7.2f} µs   ratio {p['python_key_ns']/s['key_ns']:.1f}x faster")
print(f"L1 hit, lookup end to end:        {s['l1_hit_lookup_ns']/1000:7.2f} µs hot, {s['l1_hit_lookup_random_of_10k_ns']/1000:.2f} µs random of 10k requests (key alone {s['key_random_of_10k_ns']/1000:.2f} µs)")
print(f"L1 hit, completion() incl. parse: {s['l1_hit_completion_ns']/1000:7.2f} µs")
print(f"Dictionary<Digest256> lookup:     hot {s['dictionary_hot_ns']:.0f} ns, random of 10k {s['dictionary_random_ns']:.0f} ns   (L1 lookup / random dict = {s['l1_hit_lookup_ns']/s['dictionary_random_ns']:.1f}x)")
PY
