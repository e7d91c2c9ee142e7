"""The official `openai` Python package against `cachekit serve` in front of the loopback test upstream.

Usage: openai_sdk_test.py PROXY_BASE_URL UPSTREAM_BASE_URL   (both ending in /v1)
Exits non-zero on the first failed check; prints one line per check.
"""
import json, sys, urllib.request

import openai

proxy, upstream = sys.argv[1], sys.argv[2]
root = upstream.rsplit("/v1", 1)[0]


def control(body):
    request = urllib.request.Request(root + "/_control", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()


def stats():
    return json.loads(urllib.request.urlopen(root + "/_stats").read())


def check(condition, message):
    if not condition:
        print("FAIL:", message)
        sys.exit(1)
    print("ok:", message)


client = openai.OpenAI(base_url=proxy, api_key="sk-sdk-test-one", max_retries=0)
other = openai.OpenAI(base_url=proxy, api_key="sk-sdk-test-two", max_retries=0)
messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is the capital of Norway?"}]
before = stats()["chat_calls"]

first = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, temperature=0)
second = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, temperature=0)
check(first.headers["x-cachekit-status"] == "MISS", "first request is a MISS")
check(second.headers["x-cachekit-status"] == "HIT-L1", "the repeated request is a HIT-L1")
check(len(first.headers["x-cachekit-key"]) == 64, "x-cachekit-key is a 64-hex-digit key")
parsed_first, parsed_second = first.parse(), second.parse()
check(parsed_first.choices[0].message.content == parsed_second.choices[0].message.content, "the SDK parses the cached answer identically")
check(parsed_second.usage is not None and parsed_second.usage.prompt_tokens > 0, "usage survives the cache")
check(stats()["chat_calls"] == before + 1, "one upstream call for two requests")

isolated = other.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, temperature=0)
check(isolated.headers["x-cachekit-status"] == "MISS", "another API key is another tenant: MISS")

# Streaming through the SDK, a miss and then a hit replayed as chunks.
stream_messages = [{"role": "user", "content": "Name three fjords."}]
for expected in ("MISS", "HIT-L1"):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=stream_messages, temperature=0, stream=True)
    check(raw.headers["x-cachekit-status"] == expected, f"streamed request is {expected}")
    text = "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    check(text.startswith("answer to: Name three fjords."), f"the SDK assembles the streamed text ({expected})")

# Request controls.
refreshed = client.chat.completions.with_raw_response.create(
    model="gpt-4o-mini", messages=messages, temperature=0, extra_headers={"Cache-Control": "no-cache"})
check(refreshed.headers["x-cachekit-status"] == "REFRESH", "Cache-Control: no-cache refreshes")
bypass = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, temperature=0.9)
check(bypass.headers["x-cachekit-status"] == "BYPASS", "a non-deterministic request bypasses the cache")

# Errors the SDK must parse.
try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[])
    check(False, "an empty messages list is refused")
except openai.BadRequestError as error:
    check(error.status_code == 400 and "messages" in str(error), "400 with an OpenAI-style error body")
try:
    client.post("/nope", cast_to=object, body={})
    check(False, "an unknown route is refused")
except openai.NotFoundError as error:
    check(error.status_code == 404, "404 for an unknown route, parsed by the SDK")
control({"mode": "500", "count": 10})
try:
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "upstream is down"}], temperature=0)
    check(False, "a failing upstream is reported")
except openai.APIStatusError as error:
    check(error.status_code == 502 and "upstream" in error.message, "502 with a clear message when the upstream fails")
urllib.request.urlopen(urllib.request.Request(root + "/_reset", data=b"{}", headers={"Content-Type": "application/json"})).read()

embedding = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
check(len(embedding.data) == 2 and len(embedding.data[0].embedding) > 0, "embeddings are forwarded and parsed")
print("all SDK checks passed")
