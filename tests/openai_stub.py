"""A scripted chat server on 127.0.0.1 for tests: real HTTP, no model.

It speaks the two APIs the LLM answerer uses:

- OpenAI-compatible ``POST /v1/chat/completions``: one JSON object, or with ``"stream": true``
  server-sent events (``data: {chunk}`` in the ``chat.completion.chunk`` format, then
  ``data: [DONE]``);
- Ollama's ``POST /api/chat``: one JSON object, or with ``"stream": true`` (Ollama's default)
  one JSON object a line, the last with ``"done": true``.

Every request is recorded (path, headers with lower-case names, JSON body) for the test to inspect.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class StubChatServer:
    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.requests: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def pieces(self) -> list[str]:
        """The reply cut into word-sized chunks, as a model would stream it."""
        return re.findall(r"\s*\S+", self.reply)

    def __enter__(self) -> "StubChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(stub: StubChatServer):
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.0: the connection closes after each response, so a stream needs no framing.
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            stub.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
            if self.path == "/v1/chat/completions":
                self._openai(body)
            elif self.path == "/api/chat":
                self._ollama(body)
            else:
                self._send(404, "application/json", {"error": f"no route {self.path}"})

        def _openai(self, body: dict) -> None:
            base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": body.get("model", "")}
            if not body.get("stream"):
                self._send(200, "application/json", {
                    **base, "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": stub.reply}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                return
            self._start(200, "text/event-stream")
            chunk = {**base, "object": "chat.completion.chunk"}
            deltas = [{"role": "assistant", "content": ""}] + [{"content": p} for p in stub.pieces()]
            for delta in deltas:
                self._write("data: " + json.dumps(
                    {**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}) + "\n\n")
            self._write("data: " + json.dumps(
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n")
            self._write("data: [DONE]\n\n")

        def _ollama(self, body: dict) -> None:
            base = {"model": body.get("model", ""), "created_at": "2024-01-01T00:00:00Z"}
            done = {**base, "done": True, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 1}
            if body.get("stream") is False:
                self._send(200, "application/json",
                           {**done, "message": {"role": "assistant", "content": stub.reply}})
                return
            self._start(200, "application/x-ndjson")
            for piece in stub.pieces():
                self._write(json.dumps({**base, "done": False,
                                        "message": {"role": "assistant", "content": piece}}) + "\n")
            self._write(json.dumps({**done, "message": {"role": "assistant", "content": ""}}) + "\n")

        def _send(self, status: int, content_type: str, payload: dict) -> None:
            self._start(status, content_type)
            self._write(json.dumps(payload))

        def _start(self, status: int, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.end_headers()

        def _write(self, text: str) -> None:
            self.wfile.write(text.encode("utf-8"))
            self.wfile.flush()

        def log_message(self, *args) -> None:  # keep the test output clean
            pass

    return Handler
