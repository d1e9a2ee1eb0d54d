"""A scripted chat server on 127.0.0.1 for tests: real HTTP, no model.

It speaks the two APIs the LLM answerer uses:

- OpenAI-compatible ``POST /v1/chat/completions``: one JSON object, or with ``"stream": true``
  server-sent events (``data: {chunk}`` in the ``chat.completion.chunk`` format, then
  ``data: [DONE]``);
- Ollama's ``POST /api/chat``: one JSON object, or with ``"stream": true`` (Ollama's default)
  one JSON object a line, the last with ``"done": true``.

Every request is recorded (path, headers with lower-case names, JSON body) for the test to inspect.

It honours ``max_tokens`` (one streamed piece a token, ``finish_reason: "length"``) and can
misbehave as weak or overloaded models do:

- ``reply`` may be a function of the request body: :func:`echo_prompt` repeats the prompt (as a
  small model does), :func:`citing` cites the passage of the prompt holding a phrase, or one that
  does not hold it (the right fact with the wrong ``[n]``);
- ``endless=True``: the reply again and again, ignoring ``max_tokens``, until the client hangs up
  (then :attr:`StubChatServer.disconnected` is set);
- ``first_token_delay``: seconds before the response starts (a model loading or a queue);
  ``delay``: seconds between pieces.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def prompt_of(body: dict) -> str:
    """The user message of a chat request (the numbered passages and the question)."""
    return next((m["content"] for m in reversed(body.get("messages", [])) if m.get("role") == "user"), "")


def echo_prompt(body: dict) -> str:
    """The reply of a model that repeats its prompt instead of answering."""
    return prompt_of(body)


def passages_of(body: dict) -> dict[int, str]:
    """The passages ``[n] Bài báo: …`` of the prompt, by number."""
    blocks = re.split(r"\n\n(?=\[\d+\] Bài báo: )", prompt_of(body).split("\n\nCâu hỏi: ")[0])
    return {int(m.group(1)): block for block in blocks if (m := re.match(r"\[(\d+)\] Bài báo: ", block))}


def citing(template: str, needle: str, wrong: bool = False):
    """A reply function: ``template`` with ``{n}`` the number of the passage that holds
    ``needle`` (or, ``wrong=True``, of the first that does not)."""
    def reply(body: dict) -> str:
        passages = passages_of(body)
        n = next(n for n, text in sorted(passages.items()) if (needle in text) != wrong)
        return template.format(n=n)
    return reply


class StubChatServer:
    def __init__(self, reply, endless: bool = False, first_token_delay: float = 0.0, delay: float = 0.0) -> None:
        self.reply = reply
        self.endless, self.first_token_delay, self.delay = endless, first_token_delay, delay
        self.disconnected = threading.Event()  # a client hung up while a reply was streaming
        self.requests: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def text(self, body: dict) -> str:
        return self.reply(body) if callable(self.reply) else self.reply

    def pieces(self, body: dict | None = None) -> list[str]:
        """The reply cut into word-sized chunks, as a model would stream it."""
        return re.findall(r"\s*\S+", self.text(body or {}))

    def stream(self, body: dict):
        """The pieces to stream and the finish reason: ``max_tokens`` honoured, unless endless."""
        pieces = self.pieces(body)
        if self.endless:
            def forever():
                yield from pieces
                again = [" " + pieces[0].lstrip()] + pieces[1:] if pieces else [" "]
                while True:
                    yield from again
            return forever(), "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or body.get("options", {}).get("num_predict")
        if limit and len(pieces) > limit:
            return pieces[:limit], "length"
        return pieces, "stop"

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
            time.sleep(stub.first_token_delay)
            try:
                if self.path == "/v1/chat/completions":
                    self._openai(body)
                elif self.path == "/api/chat":
                    self._ollama(body)
                else:
                    self._send(404, "application/json", {"error": f"no route {self.path}"})
            except (BrokenPipeError, ConnectionResetError):
                stub.disconnected.set()

        def _openai(self, body: dict) -> None:
            base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": body.get("model", "")}
            if not body.get("stream"):
                self._send(200, "application/json", {
                    **base, "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": stub.text(body)}}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
                return
            self._start(200, "text/event-stream")
            chunk = {**base, "object": "chat.completion.chunk"}
            pieces, finish = stub.stream(body)
            self._write("data: " + json.dumps({**chunk, "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}) + "\n\n")
            for piece in pieces:
                time.sleep(stub.delay)
                self._write("data: " + json.dumps(
                    {**chunk, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}) + "\n\n")
            self._write("data: " + json.dumps(
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}) + "\n\n")
            self._write("data: [DONE]\n\n")

        def _ollama(self, body: dict) -> None:
            base = {"model": body.get("model", ""), "created_at": "2024-01-01T00:00:00Z"}
            done = {**base, "done": True, "done_reason": "stop", "prompt_eval_count": 1, "eval_count": 1}
            if body.get("stream") is False:
                self._send(200, "application/json",
                           {**done, "message": {"role": "assistant", "content": stub.text(body)}})
                return
            self._start(200, "application/x-ndjson")
            for piece in stub.stream(body)[0]:
                time.sleep(stub.delay)
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
