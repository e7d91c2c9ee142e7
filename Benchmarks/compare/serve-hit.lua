-- wrk script: the same deterministic chat request every time (a cache hit after the first).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-wrk"
wrk.body = '{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"system","content":"You are the support assistant of Acme Cloud. Answer in at most three sentences."},{"role":"user","content":"How do I rotate my API key?"}]}'
