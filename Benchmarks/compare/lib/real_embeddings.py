# Real sentence embeddings for pgvector-real-embeddings.sh: GPTCache's 999 questions among templated support
# questions (ROWS in all), and the 999 paraphrases as queries, embedded with all-MiniLM-L6-v2 (normalized).
# Writes stored.tsv (id, vector) and queries.tsv (id, target id, vector) into OUT.
import itertools, json, random, sys
from sentence_transformers import SentenceTransformer
out, pairs_file, model_dir = sys.argv[1], sys.argv[2], sys.argv[3]
pairs = json.load(open(pairs_file))
origins = [p['origin'] for p in pairs]
similar = [p['similar'] for p in pairs]
verbs = ["reset", "change", "update", "delete", "export", "import", "share", "download", "upload", "rename", "archive",
         "restore", "sync", "connect", "disconnect", "enable", "disable", "configure", "cancel", "renew", "transfer",
         "verify", "recover", "merge", "split", "print", "schedule", "translate", "encrypt", "back up"]
objects = ["my password", "my email address", "the billing plan", "an invoice", "my profile photo", "a shared folder",
           "two-factor authentication", "the API key", "a team member", "my subscription", "the shipping address",
           "a payment method", "notification settings", "the default language", "a calendar event", "a project",
           "the dark mode", "my phone number", "a support ticket", "the data retention policy", "a custom domain",
           "the webhook", "an order", "a refund", "the time zone", "my username", "a saved search", "the workspace",
           "a recurring payment", "the audit log", "a backup", "a template", "a dashboard", "a report", "a label",
           "the storage quota", "a device", "a license", "a contract", "the tax ID", "a gift card", "a coupon",
           "the delivery date", "a wishlist", "a review", "a playlist", "a document", "a spreadsheet", "a video",
           "an attachment", "a contact", "a group chat", "a channel", "a bot", "an integration", "a password vault",
           "my security questions", "a login session", "the privacy settings", "a beta feature"]
places = ["in the mobile app", "on the website", "on Android", "on iPhone", "on Windows", "on a Mac", "in the admin console",
          "from the command line", "through the API", "in the desktop app", "on a Chromebook", "on Linux", "in Safari",
          "in Chrome", "in Firefox", "on my tablet", "on a shared computer", "for my whole team", "for a single user",
          "after the latest update", "without losing data", "in bulk", "for an old account", "while traveling",
          "on the enterprise plan", "on the free plan", "for a child account", "for a business account",
          "in a different region", "with a screen reader"]
forms = ["How do I {v} {o} {p}?", "Can I {v} {o} {p}?", "What happens when I {v} {o} {p}?", "Why can't I {v} {o} {p}?"]
filler = []
for f, v, o, p in itertools.product(forms, verbs, objects, places):
    filler.append(f.format(v=v, o=o, p=p))
random.seed(7)
random.shuffle(filler)
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 100_000
stored = origins + filler[: rows - len(origins)]
model = SentenceTransformer(model_dir, device='cpu')
emb = model.encode(stored, batch_size=256, normalize_embeddings=True, show_progress_bar=False)
q = model.encode(similar, batch_size=256, normalize_embeddings=True, show_progress_bar=False)
with open(f"{out}/stored.tsv", "w") as f:
    for i, v in enumerate(emb):
        f.write(f"{i}\t[{','.join(f'{x:.6f}' for x in v)}]\n")
with open(f"{out}/queries.tsv", "w") as f:
    for i, v in enumerate(q):
        f.write(f"{i}\t{i}\t[{','.join(f'{x:.6f}' for x in v)}]\n")
print(len(stored), len(similar))
