"""A minimal OpenAI-compatible chat-completions server on 127.0.0.1 for the captioner tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ChatServer:
    """A minimal OpenAI chat-completions endpoint. ``script`` lists what the next requests get:
    an int status, ``("sleep", seconds)`` before answering, or ``"ok"``; then ``"ok"`` forever."""

    def __init__(self, script=(), delay: float = 0.0):
        self.script = list(script)
        self.delay = delay
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    step = server.script.pop(0) if server.script else "ok"
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    if isinstance(step, tuple):
                        threading.Event().wait(step[1])
                        step = "ok"
                    threading.Event().wait(server.delay)
                finally:
                    # Out of flight before the reply goes: once the client has it, it may send the
                    # next request at once, and that one must not find this one still counted.
                    with server.lock:
                        server.in_flight -= 1
                if step == "ok":
                    text = body["messages"][0]["content"][-1]["text"]
                    payload = {"choices": [{"message": {"role": "assistant", "content": f"caption of: {text}"}}]}
                    self._send(200, json.dumps(payload).encode())
                elif step == "garbage":
                    self._send(200, b"<html>not json</html>")
                else:
                    self._send(step, b'{"error": {"message": "scripted failure"}}')

            def _send(self, status, data):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
