#!/usr/bin/env bash
# The online audit on a replay built from GPTCache's pairs (data/gptcache/mock-pairs.json): every question is asked,
# then returns three times as paraphrases (its pair's paraphrase, and two wordings made from it and from the
# question), at random later points; twin questions (the same text under two ids) share one answer. The simulated
# upstream answers with the label, so the truth is known. Runs `cachekit replay --semantic memory` with the audit at
# AUDIT_RATE (default 0.1) and δ AUDIT_DELTA (default 0.02), and once without it, and prints both summaries: the audit's
# estimated precision next to the true one, the error rate of semantic hits in the second half (after warm-up), and
# the audit calls it cost.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(cd .. && pwd)
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements demo
export CACHEKIT_MODEL_DIR=${CACHEKIT_MODEL_DIR:-$(../scripts/fetch-model)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$ROOT/data/gptcache/mock-pairs.json" "$WORK/workload.jsonl" <<'PY'
import json, random, sys
pairs = json.load(open(sys.argv[1]))
random.seed(22)
label_of = {}
events = []
for i, pair in enumerate(pairs):
    label = label_of.setdefault(pair["origin"], f"answer-{i}")
    start = random.random() * 0.5
    events.append((start, pair["origin"], label))
    similar = pair["similar"]
    for text in (similar, "Quick question: " + similar, "I would like to know this. " + pair["origin"]):
        events.append((start + random.random() * (1 - start), text, label))
events.sort(key=lambda e: e[0])
with open(sys.argv[2], "w") as out:
    for _, text, label in events:
        request = {"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": text}]}
        out.write(json.dumps({"request": request, "label": label}) + "\n")
print(len(events), "requests", file=sys.stderr)
PY
(cd .. && swift build -c release --product cachekit >&2)
BIN="$(cd .. && swift build -c release --show-bin-path)/cachekit"
for rate in "${AUDIT_RATE:-0.1}" none; do
  if [ "$rate" = none ]; then extra=(); else extra=(--audit-rate "$rate" --audit-delta "${AUDIT_DELTA:-0.02}"); fi
  log "replay, audit ${rate}"
  "$BIN" replay "$WORK/workload.jsonl" --semantic memory --upstream-latency-ms 1 --json "${extra[@]}"
done
