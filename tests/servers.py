"""Real HTTP servers on loopback for the API and browser tests: the app of rag.api on uvicorn in
a thread, ``rag serve`` in a process of its own, and the demo intranet page (another origin)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from conftest import SEED_CORPUS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def rag_serve(port: int, log: Path, *args: str, env: dict | None = None, stop_seconds: float = 60):
    """``rag serve --port PORT ARGS`` in its own process (``env`` over this process's), its output
    appended to ``log``; yields the process. On exit it is stopped (SIGTERM) and waited for; when
    the body did not fail, its output must hold no traceback, and when it failed, the output is
    printed (pytest shows it with the failure)."""
    failed = False
    with open(log, "a+", encoding="utf-8") as out:
        start = out.tell()
        process = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port), *args],
                                   stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        try:
            yield process
        except BaseException:
            failed = True
            raise
        finally:
            ended = process.poll()  # None: still running
            process.terminate()
            try:
                process.wait(timeout=stop_seconds)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
            out.seek(start)
            output = out.read()
            if failed:
                state = "still running" if ended is None else f"had ended, exit code {ended}"
                print(f"rag serve {' '.join(args)} ({state}) wrote:\n{output}", file=sys.stderr)
    assert "Traceback" not in output, output


def seed_settings(root: Path, seed_store: Path, **changes):
    """Settings for a copy of the seed corpus and its index under ``root``."""
    from rag.settings import Settings

    shutil.copytree(SEED_CORPUS, root / "corpus")
    shutil.copytree(seed_store, root / "vectorstore")
    return Settings(corpus_dir=root / "corpus", store_dir=root / "vectorstore", **changes)


@contextmanager
def loaded_service(root: Path, seed_store: Path, embeddings, **changes):
    """A ``rag.api.Service`` on a copy of the seed corpus and index under ``root``, loaded."""
    from rag.api import Service

    service = Service(seed_settings(root, seed_store, **changes))
    service.load(embeddings=embeddings)
    try:
        yield service
    finally:
        service.close()


class LiveServer:
    """``create_app(settings, service)`` served by uvicorn on a free loopback port."""

    def __init__(self, settings, service, limiter=None, port: int | None = None) -> None:
        import uvicorn

        from rag.api import create_app, uvicorn_config

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service = service
        self.app = app = create_app(settings.with_(port=self.port), service, limiter)
        self.server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", self.port, log_level="warning",
                                                    timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.time() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.time() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class DemoPage:
    """The demo intranet page on its own port: another origin than the server's."""

    def __init__(self, server_url: str) -> None:
        from rag.api import serve_demo_page

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.origin = self.url
        self.httpd = serve_demo_page("127.0.0.1", self.port, server_url)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def http(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 60):
    """One request with http.client (any Host or Content-Length header, as sent):
    ``(status, headers with lower-case names, body bytes)``."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


class GradioSession:
    """The chat's Gradio calls as its page makes them, over real HTTP: join the queue with an
    event (``POST /gradio_api/queue/join``), then read the session's events
    (``GET /gradio_api/queue/data``, server-sent events)."""

    def __init__(self, url: str, headers: dict | None = None) -> None:
        import json
        import secrets

        self.url, self.headers = url, headers or {}
        self.session_hash = secrets.token_hex(5)
        self.fn_index = {}
        status, _, body = http(url, "GET", "/config", headers=self.headers)
        if status == 200:
            for dependency in json.loads(body)["dependencies"]:
                self.fn_index.setdefault(dependency["api_name"], dependency["id"])

    def join(self, fn_name: str, data: list, event_data=None, fn_index: int | None = None):
        """``(status, body as JSON)`` of the join."""
        import json

        payload = {"data": data, "event_data": event_data, "session_hash": self.session_hash,
                   "fn_index": self.fn_index[fn_name] if fn_index is None else fn_index, "trigger_id": None}
        status, _, body = http(self.url, "POST", "/gradio_api/queue/join", json.dumps(payload).encode(),
                               {"Content-Type": "application/json", **self.headers})
        return status, json.loads(body)

    def events(self, event_id: str) -> list[dict]:
        """The messages of one event, up to ``process_completed``."""
        import http.client
        import json
        from urllib.parse import urlsplit

        parts = urlsplit(self.url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        messages = []
        try:
            connection.request("GET", f"/gradio_api/queue/data?session_hash={self.session_hash}",
                               headers=self.headers)
            response = connection.getresponse()
            assert response.status == 200, (response.status, response.read())
            for line in response:
                if not line.startswith(b"data: "):
                    continue
                message = json.loads(line[6:])
                if message.get("event_id") == event_id:
                    messages.append(message)
                    if message.get("msg") == "process_completed":
                        return messages
        finally:
            connection.close()
        return messages

    def ask(self, question: str, fn_name: str = "respond") -> tuple[int, list[dict]]:
        status, joined = self.join(fn_name, [question, None])
        return status, (self.events(joined["event_id"]) if status == 200 else [joined])
