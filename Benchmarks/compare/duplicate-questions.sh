#!/usr/bin/env bash
# A duplicate-question replay of the kind issue #22 describes, built here and never tuned on: 1,000 support
# questions asked and cached, then, shuffled, 1,000 duplicates of them (other wordings of the same question) and
# 500 unrelated questions that differ from a cached one in exactly one part (the operation, the object or the place),
# so that the right answer for them is a miss. Runs `cachekit replay --semantic memory` at the CLI's defaults
# (threshold 0.85, every guard; THRESHOLD to change), then with `--guards none`, and prints precision and recall of
# semantic hits.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(cd .. && pwd)
source ../scripts/lib/common.sh
ensure_swift
ensure_requirements demo
export CACHEKIT_MODEL_DIR=${CACHEKIT_MODEL_DIR:-$(../scripts/fetch-model)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 - "$WORK/workload.jsonl" <<'PY'
import itertools, json, random, sys
random.seed(2212)
verbs = ["reset", "change", "update", "delete", "export", "import", "share", "download", "upload", "rename", "archive",
         "restore", "enable", "disable", "cancel", "renew", "transfer", "verify", "recover", "connect", "disconnect",
         "lock", "unlock", "add", "remove", "print", "schedule", "translate", "encrypt", "decrypt"]
objects = ["my password", "my email address", "the billing plan", "an invoice", "my profile photo", "a shared folder",
           "two-factor authentication", "the API key", "a team member", "my subscription", "the shipping address",
           "a payment method", "notification settings", "the default language", "a calendar event", "a project",
           "dark mode", "my phone number", "a support ticket", "a custom domain", "the webhook", "an order",
           "a refund", "the time zone", "my username", "a saved search", "a backup", "a template", "a dashboard",
           "a report", "a contact", "a device", "a license", "a coupon", "a playlist", "a document", "a spreadsheet"]
places = ["in the mobile app", "on the website", "on Android", "on an iPhone", "on Windows", "on a Mac",
          "in the admin console", "through the API", "in Chrome", "in Firefox", "for my whole team",
          "for a single user", "on the free plan", "on the enterprise plan", "from the command line"]
def cached_form(v, o, p): return f"How do I {v} {o} {p}?"
duplicate_forms = [
    lambda v, o, p: f"What is the way to {v} {o} {p}?",
    lambda v, o, p: f"Can you tell me how to {v} {o} {p}?",
    lambda v, o, p: f"How can I {v} {o} {p}?",
    lambda v, o, p: f"{p[0].upper() + p[1:]}, how do I {v} {o}?",
    lambda v, o, p: f"I need to {v} {o} {p}. How do I do that?",
    lambda v, o, p: f"What are the steps to {v} {o} {p}?",
]
combos = list(itertools.product(verbs, objects, places))
random.shuffle(combos)
cached = combos[:1000]
cached_set = set(cached)
unrelated = []
for v, o, p in cached:
    if len(unrelated) == 500: break
    part = random.randrange(3)
    for _ in range(20):
        other = (random.choice(verbs), o, p) if part == 0 else (v, random.choice(objects), p) if part == 1 else (v, o, random.choice(places))
        if other not in cached_set and other not in unrelated:
            unrelated.append(other)
            break
def line(text, label):
    return json.dumps({"request": {"model": "gpt-4o-mini", "temperature": 0, "messages": [{"role": "user", "content": text}]}, "label": label})
rows = [line(cached_form(*c), f"q{i}") for i, c in enumerate(cached)]
asks = [line(random.choice(duplicate_forms)(*c), f"q{i}") for i, c in enumerate(cached)]
asks += [line(random.choice([cached_form] + duplicate_forms)(*u), f"u{j}") for j, u in enumerate(unrelated)]
random.shuffle(asks)
open(sys.argv[1], "w").write("\n".join(rows + asks) + "\n")
print(f"{len(rows)} cached, {len(cached)} duplicates, {len(unrelated)} unrelated", file=sys.stderr)
PY
(cd .. && swift build -c release --product cachekit >&2)
BIN="$(cd .. && swift build -c release --show-bin-path)/cachekit"
for guards in all none; do
  OUT=$("$BIN" replay "$WORK/workload.jsonl" --semantic memory --threshold "${THRESHOLD:-0.85}" --guards "$guards" --upstream-latency-ms 1 --json)
  python3 - "$guards" "$OUT" <<'PY'
import json, sys
d = json.loads(sys.argv[2])
hits, right, wrong = d["semantic_hits"], d["semantic_correct"], d["semantic_wrong"]
print(f"guards {sys.argv[1]}: {hits} semantic hits, {right} right, {wrong} wrong: precision {right / max(hits, 1):.1%}, "
      f"duplicates served their own answer {right}/1000 ({right / 10:.1f} %)")
PY
done
