"""Real HTTP servers on loopback for the API and browser tests: the app of rag.api on uvicorn in
a thread, and the demo intranet page (another origin)."""
from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

from conftest import SEED_CORPUS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def seed_settings(root: Path, seed_store: Path, **changes):
    """Settings for a copy of the seed corpus and its index under ``root``."""
    from rag.settings import Settings

    shutil.copytree(SEED_CORPUS, root / "corpus")
    shutil.copytree(seed_store, root / "vectorstore")
    return Settings(corpus_dir=root / "corpus", store_dir=root / "vectorstore", **changes)


class LiveServer:
    """``create_app(settings, service)`` served by uvicorn on a free loopback port."""

    def __init__(self, settings, service, limiter=None, port: int | None = None) -> None:
        import uvicorn

        from rag.api import create_app

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.service = service
        app = create_app(settings.with_(port=self.port), service, limiter)
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
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
