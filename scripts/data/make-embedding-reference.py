#!/usr/bin/env python3
"""Writes Tests/CacheKitEmbeddingsTests/Fixtures/minilm-reference.json: all-MiniLM-L6-v2 vectors computed by the
sentence-transformers library, the reference CacheKitEmbeddings must match (cosine >= 0.9999 each).

Run once with the library installed (pip install 'torch==2.13.0+cpu' sentence-transformers):
  CACHEKIT_MODEL_DIR=$(scripts/fetch-model) python3 scripts/data/make-embedding-reference.py
The product itself uses no Python; this only makes the test fixture.
"""
import json, os, pathlib
from sentence_transformers import SentenceTransformer

SENTENCES = [
    "", "a", "Hi!", "What is the capital of France?", "How do I reset my password?",
    "How can I change my account password?", "The quick brown fox jumps over the lazy dog.",
    "Café crème brûlée à la française, s'il vous plaît.", "Ünïcödé àccents shöuld be strîpped.",
    "naïve résumé façade coöperate", "东京是日本的首都。", "我喜欢吃寿司和拉面", "日本語の文章もトークナイズできますか？",
    "한국어 문장도 있습니다.", "Ёлки-палки, это по-русски!", "Αυτό είναι ελληνικά.", "مرحبا بالعالم",
    "emoji 😀🚀🔥 in the middle 👍🏽", "🙂", "Punctuation!!! ??? ... ,,, ;;; :::", "(parentheses) [brackets] {braces} <angles>",
    "e-mail: someone@example.com, URL: https://example.com/path?q=1&b=2", "C++ vs C# vs F# vs Objective-C",
    "snake_case_identifier and camelCaseIdentifier and SCREAMING_CASE", "Numbers: 3.14159, 2,718, 1e-9, -42, 100%",
    "Dates like 2026-11-26T14:49:50Z and 11/26/2026", "   leading and trailing whitespace   ", "tabs\tand\nnewlines\r\nmixed",
    "ALL CAPS SENTENCE SHOULD LOWERCASE", "MiXeD CaSe WoRdS", "antidisestablishmentarianism supercalifragilisticexpialidocious",
    "unbelievably unrecognizable counterproductive", "don't won't can't shouldn't it's", "Mr. Smith went to Washington D.C. on Jan. 5th.",
    "SELECT * FROM users WHERE id = 1; DROP TABLE users;--", "<script>alert('xss')</script>", "{\"json\": [1, 2, 3], \"ok\": true}",
    "def f(x): return x ** 2  # python", "The mitochondria is the powerhouse of the cell.", "Transformers is a state-of-the-art library.",
    "Hugging Face Hub is a platform to host Git-based models, datasets, and Spaces.", "¿Dónde está la biblioteca?", "Zürich, München, Köln",
    "ﬁ ligature and ﬀ ligature", "non-breaking\u00a0space and zero\u200bwidth", "control\u0007char and \u0000 null",
    "repeated repeated repeated repeated repeated words", "What time does the train to Lyon leave tomorrow morning?",
    "I forgot my password, how do I reset it?", "When is my monthly invoice issued?",
    " ".join(["This sentence is long enough to exceed the maximum sequence length of two hundred and fifty six tokens."] * 12),
    " ".join(f"token{i}" for i in range(400)),
]

def main():
    model = SentenceTransformer(os.environ["CACHEKIT_MODEL_DIR"], device="cpu")
    vectors = model.encode(SENTENCES, normalize_embeddings=True, batch_size=16)
    tokens = [model.tokenizer(s, truncation=True, max_length=model.max_seq_length)["input_ids"] for s in SENTENCES]
    out = pathlib.Path(__file__).resolve().parents[2] / "Tests/CacheKitEmbeddingsTests/Fixtures/minilm-reference.json"
    out.write_text(json.dumps([{"text": s, "input_ids": t, "vector": [round(float(x), 7) for x in v]} for s, t, v in zip(SENTENCES, tokens, vectors)]))
    print(f"wrote {len(SENTENCES)} reference vectors to {out}")

if __name__ == "__main__":
    main()
