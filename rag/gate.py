"""The one gate in front of every route of the web service (rag.api): which routes exist and who
may use them (:data:`ROUTE_RULES`), allowed ``Host`` names and origins, clients behind trusted
proxies, the API key and the tokens signed with it, the chat's session cookie, the per-client
rate limit and the body limit. :class:`Gate` is the ASGI middleware that applies them; the rest
are pure functions with unit tests (tests/test_api.py, tests/test_gate.py).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from .settings import Settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


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


def from_trusted_proxy(address: str, proxies: tuple) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_of(peer: str, forwarded_for: str, proxies: tuple) -> str:
    """The client a request comes from: the connection's address, or, when that is a trusted
    proxy, the right-most address of ``X-Forwarded-For`` that is not a trusted proxy (the ones
    to its left were written by the client and prove nothing)."""
    if not from_trusted_proxy(peer, proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not from_trusted_proxy(hop, proxies):
            return hop[:64]
    return hops[0][:64] if hops else peer


# --------------------------------------------------------------------------- the gate

PUBLIC, CLIENT, KEY, ADMIN, REFUSED = "public", "client", "key", "admin", "refused"
SESSION_COOKIE = "rag_session"
#: The editors' session in the browser: a token signed with ``RAG_ADMIN_KEY`` (set by ``/admin``).
ADMIN_COOKIE = "rag_admin"


@dataclass(frozen=True)
class Rule:
    #: ``public``: anyone; ``client``: the key, a token or the chat's session cookie when
    #: ``RAG_API_KEY`` is set; ``key``: the key itself; ``admin``: ``RAG_ADMIN_KEY`` (or the
    #: editors' session cookie), refused when it is unset, with a body limit of
    #: ``RAG_UPLOAD_MAX_BYTES`` + 64 KiB; ``refused``: 404 whatever the key.
    access: str
    #: Takes one unit of the client's rate limit (questions, ratings, tokens, key attempts).
    charged: bool = False
    #: For ``admin`` routes: 404 without the admin credential, as if the route did not exist.
    hidden: bool = False


_READ = ("GET", "HEAD")
_ANY = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
#: Every route the server answers, by method and path (a regular expression of the whole path);
#: the first match wins and anything else is refused: a route added to the app or to Gradio is
#: closed until it is listed here (tests/test_gate.py walks the route table against this).
ROUTE_RULES: tuple[tuple[tuple[str, ...], str, Rule], ...] = (
    # No data and needed before any key: health checks, the widget's files, the docs, the key form.
    (_READ, r"/healthz|/widget\.js|/widget/[^/]+|/embed|/docs|/docs/[^/]+|/openapi\.json|/auth|/admin", Rule(PUBLIC)),
    (("POST",), r"/auth|/admin", Rule(PUBLIC, charged=True)),
    # The HTTP API; other paths under /api/ get the API's own 404 and 405 answers.
    (("POST",), r"/api/ask|/api/ask/stream|/api/feedback", Rule(CLIENT, charged=True)),
    (("POST",), r"/api/token", Rule(KEY, charged=True)),
    (("POST",), r"/api/articles", Rule(ADMIN, charged=True)),
    (_ANY, r"/api/.*", Rule(CLIENT)),
    # The chat (Gradio), and only the routes its page uses: no uploads, files, API info or calls.
    (_READ, r"/|/config/?|/theme\.css|/gradio_api/theme\.css|/favicon\.ico|/assets/.+|/static/.+", Rule(CLIENT)),
    (_READ, r"/gradio_api/heartbeat/[^/]+|/gradio_api/queue/data", Rule(CLIENT)),
    (("POST",), r"/gradio_api/queue/join", Rule(CLIENT, charged=True)),  # a question or a rating
    (("POST",), r"/gradio_api/run/predict|/gradio_api/cancel|/gradio_api/reset", Rule(CLIENT)),
    # The file of the chat's "Thêm bài viết" panel: editors only; for anyone else it does not exist.
    (("POST",), r"/gradio_api/upload", Rule(ADMIN, hidden=True)),
    (_READ, r"/gradio_api/upload_progress", Rule(ADMIN, hidden=True)),
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
    (else 404); an editors' route (``admin``) has ``RAG_ADMIN_KEY`` or the editors' session cookie
    (else 401/403, or 404 for a hidden one); the body is within :data:`MAX_BODY_BYTES` (editors'
    routes: ``RAG_UPLOAD_MAX_BYTES`` + 64 KiB) by its Content-Length (else 413); a
    wrong key or token takes a unit of the client's rate limit (429 once it is spent); the key, a
    token or the session cookie is there when ``RAG_API_KEY`` is set (else 401, or the key form
    for the chat page); a charged route takes a unit (else 429); then the body is read, at most
    that limit (else 413), and handed on. Every response gets ``nosniff`` and
    ``frame-ancestors``."""

    def __init__(self, app, settings: Settings, limiter: RateLimiter, origins: tuple[str, ...]) -> None:
        self.app, self.limiter, self.origins = app, limiter, origins
        self.key, self.ttl = settings.api_key, settings.token_ttl
        self.admin_key = settings.admin_key
        self.admin_limit = settings.upload_max_bytes + MAX_BODY_BYTES  # the file and the form around it
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
        if callable(passed):  # the gate's own answer (the session cookie from ?token=)
            return await passed(send_with_headers)
        limit = passed
        body = await _read_body(receive, limit)
        if body is None:
            return await self.refuse(scope, headers, _too_large(limit), send_with_headers)
        if body is _DISCONNECTED:
            return None
        return await self.app(scope, _replay(body, receive), send_with_headers)

    def client(self, scope, headers: dict[str, str]) -> str:
        peer = scope["client"][0] if scope.get("client") else "unknown"
        return client_of(peer, headers.get("x-forwarded-for", ""), self.proxies)

    def check(self, scope, headers: dict[str, str]):
        """The body limit of a request that may go on (or the gate's own answer, a callable);
        raises :class:`Refusal` otherwise."""
        method, path = scope["method"], scope["path"]
        host, origin = headers.get("host", ""), headers.get("origin", "")
        if not host_allowed(host, self.hosts):
            raise Refusal(421, "host_not_allowed", f"This server does not answer for the host {host!r}: "
                          "add it to RAG_ALLOWED_HOSTS.", "Máy chủ không phục vụ địa chỉ này.")
        if method not in ("GET", "HEAD", "OPTIONS") and not origin_allowed(origin, host, self.origins):
            raise Refusal(403, "origin_not_allowed", f"Requests from {origin} are not allowed: add it to "
                          "RAG_ALLOWED_ORIGINS.", "Trang này không được phép gửi yêu cầu tới máy chủ.")
        if method == "OPTIONS" and "access-control-request-method" in headers:
            return MAX_BODY_BYTES  # a CORS preflight: answered by the CORS middleware, with headers only
        rule = route_rule(method, path)
        if rule.access == REFUSED:
            raise Refusal(404, "not_found", f"No route {method} {path}.", "Không có trang này.")
        client = self.client(scope, headers)
        now = time.time()
        # An editor: RAG_ADMIN_KEY (on the admin routes) or the editors' session cookie (anywhere).
        admin_credential = (bearer(headers.get("authorization", "")) if rule.access == ADMIN else "") \
            or _cookie(headers, ADMIN_COOKIE)
        admin = credential_kind(admin_credential, self.admin_key, now, self.ttl) if self.admin_key else "none"
        editor = admin in ("key", "token")
        if rule.access == ADMIN and not editor:
            self.refuse_admin(rule, admin, client, method, path)
        limit = self.admin_limit if rule.access == ADMIN else MAX_BODY_BYTES
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > limit:
            raise _too_large(limit)
        query_token = _query_token(scope) if path == "/" and method in _READ else ""
        credential = bearer(headers.get("authorization", "")) or query_token or _cookie(headers, SESSION_COOKIE)
        kind = credential_kind(credential, self.key, now, self.ttl) if self.key and not editor else "none"
        if kind == "wrong":  # guessing keys costs like asking
            self.charge(client)
        if self.key and not editor and rule.access != PUBLIC and not (
                kind == "key" or (kind == "token" and rule.access == CLIENT)):
            self.refuse_credential(rule, kind, method, path, bool(query_token))
        if rule.charged:
            self.charge(client)
        if query_token and self.key:
            return self.session_redirect(scope, headers, query_token)
        return limit

    def refuse_admin(self, rule: Rule, admin: str, client: str, method: str, path: str) -> None:
        """An admin route without the admin key or the editors' session cookie."""
        if admin == "wrong":  # guessing the admin key costs like asking
            self.charge(client)
        if rule.hidden:
            raise Refusal(404, "not_found", f"No route {method} {path}.", "Không có trang này.")
        if not self.admin_key:
            raise Refusal(403, "admin_disabled", "Adding articles is turned off on this server: set RAG_ADMIN_KEY "
                          "to allow it.", "Máy chủ chưa bật chức năng thêm bài viết (RAG_ADMIN_KEY).")
        if admin == "wrong":
            raise Refusal(403, "forbidden", "The admin key is wrong.", "Mã quản trị không đúng.")
        raise Refusal(401, "unauthorized", "This needs 'Authorization: Bearer <RAG_ADMIN_KEY>'.",
                      "Cần đăng nhập quản trị tại /admin.", {"WWW-Authenticate": "Bearer"})

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
        forwarded = from_trusted_proxy(peer, self.proxies) and headers.get("x-forwarded-proto", "") == "https"
        return scope.get("scheme") == "https" or forwarded

    async def refuse(self, scope, headers: dict[str, str], refusal: Refusal, send) -> None:
        head = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in refusal.headers.items()]
        origin = headers.get("origin", "")
        if origin and ("*" in self.origins or origin.lower() in self.origins):
            head += [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]
        path = scope.get("path", "")
        if path in ("/", "/auth", "/admin") and refusal.status in (401, 429):  # a person at a key form
            from . import ui

            message = ui.KEY_RATE_LIMITED.format(seconds=refusal.headers.get("Retry-After", "60")) \
                if refusal.code == "rate_limited" else refusal.detail
            body = ui.key_page(message, admin=path == "/admin").encode("utf-8")
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


def session_cookie(token: str, secure: bool = False, name: str = SESSION_COOKIE) -> str:
    """The chat's session (or, named :data:`ADMIN_COOKIE`, the editors'): the signed token, out of
    reach of scripts (HttpOnly), never sent with requests from other sites (SameSite=Strict), gone
    when the browser closes."""
    return f"{name}={token}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


def is_editor(cookie_header: str, settings: Settings, now: float | None = None) -> bool:
    """Whether a request's ``Cookie`` header holds a valid editors' session (a token signed with
    ``RAG_ADMIN_KEY``); always False when it is unset."""
    if not settings.admin_key:
        return False
    token = _cookie({"cookie": cookie_header or ""}, ADMIN_COOKIE)
    return credential_kind(token, settings.admin_key, time.time() if now is None else now,
                           settings.token_ttl) in ("key", "token")


def _too_large(limit: int) -> Refusal:
    shown = f"{limit // 1024} KiB" if limit < 1024 * 1024 else f"{limit / 1_000_000:.1f} MB"
    return Refusal(413, "request_too_large", f"The request body is over {shown}.", f"Yêu cầu quá lớn: tối đa {shown}.")


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
