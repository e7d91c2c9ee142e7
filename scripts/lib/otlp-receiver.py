#!/usr/bin/env python3
"""A minimal OTLP/HTTP+JSON trace receiver for the tracing example: accepts POST /v1/traces, keeps every span's
name and attributes, and answers GET /spans with them as JSON. Loopback only; for tests, not a collector."""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

spans = []
lock = threading.Lock()


def value_of(v):
    for kind in ("stringValue", "boolValue", "intValue", "doubleValue"):
        if kind in v:
            return v[kind]
    return None


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        try:
            document = json.loads(body)
        except ValueError:
            self.send_response(400)
            self.end_headers()
            return
        found = []
        for resource in document.get("resourceSpans", []):
            for scope in resource.get("scopeSpans", []):
                for span in scope.get("spans", []):
                    attributes = {a["key"]: value_of(a.get("value", {})) for a in span.get("attributes", [])}
                    found.append({"name": span.get("name"), "traceId": span.get("traceId"), "parentSpanId": span.get("parentSpanId", ""), "attributes": attributes})
        with lock:
            spans.extend(found)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def do_GET(self):
        with lock:
            payload = json.dumps(spans).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
