#!/usr/bin/env python3
"""A loopback OpenAI-compatible server for CacheKit's tests and demos (Python standard library only).

Answers deterministically, counts calls, and injects faults on request:
  POST /v1/chat/completions   JSON, or Server-Sent Events with "stream": true
  POST /v1/embeddings         deterministic unit vectors ("dimensions", default 8)
  POST /_control              {"mode": "429"|"500"|"400"|"malformed"|"truncate"|"slow"|"hang"|"latency"
                               |"error_then_done"|"error_then_done_split"|"no_finish"|"duplicate_index"|"huge"
                               |"huge_headers", "count": N, "retry_after": S (any text, e.g. "inf"),
                               "latency_ms": M, "delay_ms": D (per streamed chunk), "seconds": H, "bytes": B};
                              the next N chat/embedding calls get the fault
  GET  /_stats                {"chat_calls", "embedding_calls", "authorized_calls", "aborted_streams", "keys": {sha256
                               prefix of each API key seen: calls}}
A key starting with "sk-bad" is refused with 401 and OpenAI's message, which quotes the key's first and last
characters.
  POST /_reset                zeroes the counters and clears faults
Usage: fake-openai.py PORT   (binds 127.0.0.1; prints READY when listening)
"""
import hashlib, json, math, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"chat_calls": 0, "embedding_calls": 0, "authorized_calls": 0, "aborted_streams": 0, "keys": {}, "faults": []}


def take_fault():
    with LOCK:
        if STATE["faults"]:
            fault = STATE["faults"][0]
            fault["count"] -= 1
            if fault["count"] <= 0:
                STATE["faults"].pop(0)
            return fault
    return None


def answer_for(request):
    user = [m for m in request.get("messages", []) if m.get("role") == "user"]
    content = user[-1].get("content") if user else ""
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if p.get("type") == "text")
    return "answer to: " + (content or "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without NODELAY, Nagle + delayed ACK add 40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args):
        pass

    def send_json(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", "req_fake_%d" % STATE["chat_calls"])
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        if self.path == "/_stats":
            with LOCK:
                self.send_json(200, {k: v for k, v in STATE.items() if k != "faults"})
        else:
            self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})

    def do_POST(self):
        raw = self.read_body()
        if self.path == "/_control":
            fault = json.loads(raw or b"{}")
            fault.setdefault("count", 1)
            with LOCK:
                STATE["faults"].append(fault)
            return self.send_json(200, {"ok": True})
        if self.path == "/_reset":
            with LOCK:
                STATE.update(chat_calls=0, embedding_calls=0, authorized_calls=0, aborted_streams=0, keys={}, faults=[])
            return self.send_json(200, {"ok": True})
        kind = "chat" if self.path.startswith("/v1/chat/completions") else "embedding" if self.path.startswith("/v1/embeddings") else None
        if kind is None:
            return self.send_json(404, {"error": {"message": "unknown route", "type": "invalid_request_error"}})
        authorization = self.headers.get("Authorization", "")
        key = authorization[7:] if authorization.startswith("Bearer ") else self.headers.get("api-key", "")
        with LOCK:
            STATE[kind + "_calls"] += 1
            if authorization.startswith("Bearer "):
                STATE["authorized_calls"] += 1
            if key:
                seen = hashlib.sha256(key.encode()).hexdigest()[:16]
                STATE["keys"][seen] = STATE["keys"].get(seen, 0) + 1
        if key.startswith("sk-bad"):
            masked = key[:3] + "*" * max(len(key) - 7, 0) + key[-4:]
            return self.send_json(401, {"error": {"message": "Incorrect API key provided: %s. You can find your API key at https://platform.openai.com/account/api-keys." % masked,
                                                  "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}})
        fault = take_fault()
        mode = fault.get("mode") if fault else None
        if mode == "latency":
            time.sleep(fault.get("latency_ms", 100) / 1000)
        if mode == "hang":
            time.sleep(fault.get("seconds", 30))
            return
        if mode == "429":
            return self.send_json(429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error", "code": "rate_limit_exceeded"}},
                                  {"Retry-After": str(fault.get("retry_after", 1))})
        if mode == "huge_headers":
            self.send_response(200)
            for i in range(5000):
                self.send_header("x-filler-%d" % i, "y" * 40)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
            return
        if mode == "huge":
            size = int(fault.get("bytes", 40 << 20))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size + 20))
            self.end_headers()
            try:
                self.wfile.write(b'{"id": "x", "pad": "')
                block = b"x" * 65536
                for _ in range(size // 65536):
                    self.wfile.write(block)
                self.wfile.write(b"x" * (size % 65536))
            except (BrokenPipeError, ConnectionResetError):
                with LOCK:
                    STATE["aborted_streams"] += 1
            return
        if mode == "500":
            return self.send_json(500, {"error": {"message": "The server had an error", "type": "server_error"}})
        if mode == "400":
            return self.send_json(400, {"error": {"message": "Invalid value for 'temperature'", "type": "invalid_request_error", "param": "temperature"}})
        try:
            request = json.loads(raw)
        except ValueError:
            return self.send_json(400, {"error": {"message": "We could not parse the JSON body", "type": "invalid_request_error"}})
        if mode == "malformed":
            data = b'{"id": "chatcmpl-broken", "choices": [ {"index": 0, "message": '
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if kind == "embedding":
            self._mode = mode
            return self.embeddings(request)
        return self.chat(request, mode, fault or {})

    def embeddings(self, request):
        inputs = request.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        dimension = int(request.get("dimensions", 8))
        data = []
        for index, text in enumerate(inputs):
            digest = hashlib.sha256(text.encode()).digest()
            vector = [((digest[i % 32] + i) % 17) - 8.0 for i in range(dimension)]
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            data.append({"object": "embedding", "index": index, "embedding": [x / norm for x in vector]})
        if self._mode == "duplicate_index" and data:
            data = [dict(item, index=0) for item in data]
        self.send_json(200, {"object": "list", "data": data, "model": request.get("model", "fake-embed"),
                             "usage": {"prompt_tokens": sum(len(t.split()) for t in inputs), "total_tokens": sum(len(t.split()) for t in inputs)}})

    def chat(self, request, mode, fault):
        with LOCK:
            number = STATE["chat_calls"]
        text = answer_for(request)
        wants_tool = request.get("tool_choice") == "required" and request.get("tools")
        reasoning = "thinking about it" if request.get("reasoning_effort") else None
        prompt_tokens = 10 + sum(len(json.dumps(m)) for m in request.get("messages", [])) // 4
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 5 + len(text) // 4,
                 "total_tokens": prompt_tokens + 5 + len(text) // 4,
                 "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 3 if reasoning else 0}}
        message = {"role": "assistant", "content": None if wants_tool else text, "refusal": None}
        if reasoning:
            message["reasoning_content"] = reasoning
        if wants_tool:
            name = request["tools"][0]["function"]["name"]
            message["tool_calls"] = [{"id": "call_fake_1", "type": "function", "function": {"name": name, "arguments": json.dumps({"q": text})}}]
        finish = "tool_calls" if wants_tool else "stop"
        base = {"id": "chatcmpl-fake-%d" % number, "created": 1767225600, "model": request.get("model", "fake"), "system_fingerprint": "fp_fake"}
        if not request.get("stream"):
            body = dict(base, object="chat.completion", choices=[{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}], usage=usage)
            return self.send_json(200, body)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def send(raw):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()

        def event(payload):
            send(b"data: " + json.dumps(dict(base, object="chat.completion.chunk", **payload)).encode() + b"\n\n")

        try:
            send(b": keep-alive comment\n\n")
            event({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
            if reasoning:
                event({"choices": [{"index": 0, "delta": {"reasoning_content": reasoning}, "finish_reason": None}]})
            if wants_tool:
                call = message["tool_calls"][0]
                event({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}]}, "finish_reason": None}]})
                arguments = call["function"]["arguments"]
                for i in range(0, len(arguments), 7):
                    event({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments[i:i + 7]}}]}, "finish_reason": None}]})
            else:
                pieces = [text[i:i + 5] for i in range(0, len(text), 5)]
                for n, piece in enumerate(pieces):
                    if mode == "slow":
                        time.sleep(fault.get("delay_ms", 50) / 1000)
                    if mode in ("error_then_done", "error_then_done_split") and n == len(pieces) // 2:
                        # OpenAI reports a failure mid-stream as a data event holding an error object; here it is
                        # followed by [DONE] in the same write, or in the next one.
                        error = b'data: {"error": {"message": "The server had an error while processing your request", "type": "server_error"}}\n\n'
                        if mode == "error_then_done":
                            send(error + b"data: [DONE]\n\n")
                        else:
                            send(error)
                            send(b"data: [DONE]\n\n")
                        send(b"")
                        return
                    if mode == "truncate" and n == len(pieces) // 2:
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                    # A data field split over two lines is one event whose data is joined by a newline; JSON
                    # allows the newline as whitespace, so this exercises multi-line data.
                    payload = json.dumps(dict(base, object="chat.completion.chunk", choices=[{"index": 0, "delta": {"content": piece}, "finish_reason": None}]))
                    cut = payload.index('"choices"')
                    send(b"data: " + payload[:cut].encode() + b"\ndata: " + payload[cut:].encode() + b"\n\n")
            if mode != "no_finish":
                event({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
            if (request.get("stream_options") or {}).get("include_usage"):
                event({"choices": [], "usage": usage})
            send(b"data: [DONE]\n\n")
            send(b"")
        except (BrokenPipeError, ConnectionResetError):
            with LOCK:
                STATE["aborted_streams"] += 1


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    server.daemon_threads = True
    print("READY", flush=True)
    server.serve_forever()
