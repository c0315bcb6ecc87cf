"""An HTTP proxy in front of the S3 (or GCS) test server that injects the faults a real object store or
network produces now and then, on demand: 503 SlowDown answers, connections reset before or in
the middle of a request body, and requests that reach the server but whose answer is lost.

It forwards every request byte for byte (the Host header too, so SigV4 signatures stay valid)
and counts what it saw. Rules say which requests fault: a method, a regular expression on the
path (and query), which occurrences, and the action. This is the one imitation in the S3 tests:
a real server cannot be made to lose an answer on purpose."""
import http.client
import re
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Rule:
    def __init__(self, action, method=None, path=None, every=1, first=0, times=None):
        """action: "503" (answer 503 SlowDown, not forwarded), "reset" (close the connection
        with an RST before forwarding), "reset-mid-body" (read half the body, then RST),
        "lose-answer" (forward, then RST instead of answering), "drop-param:NAME" (forward
        without the query parameter NAME: a server that ignores it), "drop-if-none-match"
        (forward without the If-None-Match header: a server that ignores the condition; only for
        servers that do not sign it in). Applies to requests matching
        method and the path regex: the occurrences k (1-based) with k > first and
        (k - first) % every == 0, at most `times` of them."""
        self.action, self.method, self.path = action, method, re.compile(path) if path else None
        self.every, self.first, self.times = every, first, times
        self.seen = 0
        self.fired = 0

    def matches(self, method, path):
        if self.method and method != self.method:
            return False
        if self.path and not self.path.search(path):
            return False
        self.seen += 1
        k = self.seen - self.first
        if k <= 0 or k % self.every or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class FaultProxy:
    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.rules = []
        self.lock = threading.Lock()
        self.requests = []  # (method, path) of every request received
        self.authorizations = []  # the Authorization header of each request that had one
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def reset(self):
                # SO_LINGER 0: close sends an RST, as a dropped connection does
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.close_connection = True

            def handle_any(self):
                with proxy.lock:
                    proxy.requests.append((self.command, self.path))
                    if self.headers.get("Authorization"):
                        proxy.authorizations.append(self.headers.get("Authorization"))
                    rule = next((r for r in proxy.rules if r.matches(self.command, self.path)), None)
                n = int(self.headers.get("Content-Length") or 0)
                if rule and rule.action == "reset-mid-body":
                    self.rfile.read(n // 2)
                    return self.reset()
                body = self.rfile.read(n) if n else b""
                if rule and rule.action == "reset":
                    return self.reset()
                if rule and rule.action == "503":
                    msg = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                           b'<Message>Please reduce your request rate.</Message></Error>')
                    self.send_response(503)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                path = self.path
                if rule and rule.action.startswith("drop-param:"):
                    name = rule.action.split(":", 1)[1]
                    base, _, query = path.partition("?")
                    kept = [p for p in query.split("&") if p and p.split("=", 1)[0] != name]
                    path = base + ("?" + "&".join(kept) if kept else "")
                up = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    up.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
                    for k, v in self.headers.items():
                        if rule and rule.action == "drop-if-none-match" and k.lower() == "if-none-match":
                            continue
                        up.putheader(k, v)
                    up.endheaders(body if body else None)
                    resp = up.getresponse()
                    data = resp.read()
                finally:
                    up.close()
                if rule and rule.action == "lose-answer":
                    return self.reset()
                self.send_response_only(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                        self.send_header(k, v)
                # a HEAD answer has no body but the object's length
                length = resp.getheader("Content-Length") if self.command == "HEAD" else None
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = handle_any

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that went away (the resets this proxy makes) is not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}"

    def add(self, rule):
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self):
        with self.lock:
            self.rules.clear()
            self.requests.clear()
            self.authorizations.clear()

    def count(self, method=None, path=None):
        rx = re.compile(path) if path else None
        with self.lock:
            return sum(1 for m, p in self.requests if (not method or m == method) and (not rx or rx.search(p)))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
