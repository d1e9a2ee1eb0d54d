"""The gate in front of every route (rag.gate.Gate): the findings of issue 10, each replayed on
the real server on loopback over real HTTP, and a walk of the whole route table (the app's and
the mounted Gradio app's) that fails when a route answers without passing the gate."""
import json
import time

import pytest

from rag.gate import (ROUTE_RULES, RateLimiter, client_of, credential_kind, host_allowed, parse_hosts,
                     parse_proxies, route_rule, sign_token)

KEY = "s3cret-key"
RICE_QUESTION = "Hà Nội tặng La Habana bao nhiêu tấn gạo?"
BEARER = {"Authorization": f"Bearer {KEY}"}


# --------------------------------------------------------------------------- pure helpers


def test_hosts_default_to_the_bind_address_and_loopback_names():
    assert parse_hosts("", "127.0.0.1") == ("127.0.0.1", "localhost", "[::1]")
    assert parse_hosts("", "10.0.0.5") == ("10.0.0.5", "localhost", "127.0.0.1", "[::1]")
    assert parse_hosts("", "0.0.0.0") == ("*",) and parse_hosts("", "::") == ("*",)  # warned at start
    assert parse_hosts("Chat.Intranet.vn, 10.0.0.5:7860, ::1", "0.0.0.0") == ("chat.intranet.vn", "10.0.0.5", "[::1]")
    allowed = parse_hosts("", "127.0.0.1")
    assert host_allowed("127.0.0.1:7860", allowed) and host_allowed("LOCALHOST", allowed)
    assert host_allowed("[::1]:7860", allowed)
    assert not host_allowed("evil.test", allowed) and not host_allowed("evil.test:7860", allowed)
    assert not host_allowed("", allowed) and not host_allowed("127.0.0.1.evil.test", allowed)
    domain = parse_hosts("*.intranet.vn", "127.0.0.1")
    assert host_allowed("chat.intranet.vn", domain) and not host_allowed("intranet.vn.evil.test", domain)
    assert host_allowed("anything", parse_hosts("*", "127.0.0.1"))
    with pytest.raises(ValueError, match="RAG_ALLOWED_HOSTS"):
        parse_hosts("http://chat.intranet.vn/", "127.0.0.1")


def test_forwarded_for_counts_only_from_trusted_proxies_and_its_right_most_untrusted_address():
    assert client_of("127.0.0.1", "9.9.9.9", ()) == "127.0.0.1"  # no trusted proxy: the connection
    proxies = parse_proxies("127.0.0.1, 10.0.0.0/24")
    assert client_of("127.0.0.1", "9.9.9.9", proxies) == "9.9.9.9"
    assert client_of("127.0.0.1", "6.6.6.6, 9.9.9.9, 10.0.0.7", proxies) == "9.9.9.9"  # 6.6.6.6: the client's lie
    assert client_of("10.0.0.9", "", proxies) == "10.0.0.9"
    assert client_of("8.8.8.8", "9.9.9.9", proxies) == "8.8.8.8"  # not a proxy of ours
    with pytest.raises(ValueError, match="RAG_TRUSTED_PROXIES"):
        parse_proxies("proxy.intranet.vn")


def test_gate_settings_come_from_the_environment():
    from rag.settings import Settings

    settings = Settings.load(environ={"RAG_ALLOWED_HOSTS": "chat.intranet.vn", "RAG_TRUSTED_PROXIES": "10.0.0.1"})
    assert (settings.allowed_hosts, settings.trusted_proxies) == ("chat.intranet.vn", "10.0.0.1")
    assert Settings.load(environ={}).trusted_proxies == ""  # no proxy is believed by default


def test_credentials_are_told_apart():
    now = 1_700_000_000
    assert credential_kind(KEY, KEY, now, 600) == "key"
    assert credential_kind(sign_token(KEY, now + 60), KEY, now, 600) == "token"
    assert credential_kind(sign_token(KEY, now - 1), KEY, now, 600) == "expired"
    assert credential_kind(sign_token("other", now + 60), KEY, now, 600) == "wrong"
    assert credential_kind(sign_token(KEY, now + 86_400), KEY, now, 600) == "wrong"  # longer than any we mint
    assert credential_kind("", KEY, now, 600) == "none" and credential_kind("guess", KEY, now, 600) == "wrong"


def test_routes_not_listed_are_refused():
    assert route_rule("POST", "/gradio_api/upload").hidden  # editors only: 404 for anyone else
    assert route_rule("PUT", "/gradio_api/upload").access == "refused"
    assert route_rule("GET", "/gradio_api/file=/etc/passwd").access == "refused"
    assert route_rule("POST", "/gradio_api/call/respond").access == "refused"
    assert route_rule("GET", "/gradio_api/info").access == "refused"
    assert route_rule("GET", "/a-route-added-tomorrow").access == "refused"
    assert route_rule("POST", "/gradio_api/queue/join").charged and route_rule("POST", "/api/token").access == "key"
    assert all(pattern and rule.access != "refused" for _, pattern, rule in ROUTE_RULES)


# --------------------------------------------------------------------------- over HTTP


@pytest.fixture(scope="module")
def service(tmp_path_factory, seed_store, e5):
    from servers import loaded_service

    with loaded_service(tmp_path_factory.mktemp("gate"), seed_store, e5, rate_limit=0) as service:
        yield service


@pytest.fixture(scope="module")
def locked(service):
    """The server with RAG_API_KEY set and no rate limit."""
    from servers import LiveServer

    with LiveServer(service.settings.with_(api_key=KEY, token_ttl=600), service) as server:
        yield server


def served(service, limiter=None, **changes):
    from servers import LiveServer

    return LiveServer(service.settings.with_(**changes), service, limiter)


def ask_json(question: str = RICE_QUESTION) -> bytes:
    return json.dumps({"question": question}).encode()


def feedback_count(service) -> int:
    from rag.feedback import FeedbackStore

    return len(FeedbackStore.beside(service.settings.store_dir).entries())


def final_output(messages: list[dict]) -> list:
    (completed,) = [m for m in messages if m.get("msg") == "process_completed"]
    assert completed["success"], completed
    return completed["output"]["data"]


@pytest.mark.slow
def test_finding_1_the_key_guards_the_chat_its_answers_and_its_ratings(locked, service):
    """RAG_API_KEY set: Gradio's routes answered and stored without it. Now the chat needs the
    key (or a token, or the session cookie it sets), like the API."""
    from servers import GradioSession, http

    status, _, body = http(locked.url, "POST", "/gradio_api/call/respond",
                           json.dumps({"data": [RICE_QUESTION, []]}).encode(), {"Content-Type": "application/json"})
    assert status == 404 and json.loads(body)["error"] == "not_found"
    assert http(locked.url, "POST", "/gradio_api/call/respond", json.dumps({"data": [RICE_QUESTION, []]}).encode(),
                {"Content-Type": "application/json", **BEARER})[0] == 404  # not used by the chat: closed to all

    anonymous = GradioSession(locked.url)
    assert anonymous.fn_index == {}  # /config: 401 as well
    keyed = GradioSession(locked.url, BEARER)
    status, refusal = anonymous.join("respond", [RICE_QUESTION, None], fn_index=keyed.fn_index["respond"])
    assert status == 401 and refusal["error"] == "unauthorized" and "mã truy cập" in refusal["detail"]

    # With the key the same session answers, and a rating of the answer is stored ...
    status, messages = keyed.ask(RICE_QUESTION)
    assert status == 200 and "2000 tấn gạo" in json.dumps(final_output(messages), ensure_ascii=False)
    like = {"index": 1, "value": "2000 tấn gạo", "liked": True}
    before = feedback_count(service)
    stolen = GradioSession(locked.url)
    stolen.session_hash = keyed.session_hash  # even knowing the session's id
    status, _ = stolen.join("rate", [None], like, fn_index=keyed.fn_index["rate"])
    assert status == 401 and feedback_count(service) == before
    status, joined = keyed.join("rate", [None], like)
    assert status == 200 and final_output(keyed.events(joined["event_id"])) is not None
    assert feedback_count(service) == before + 1

    # ... and the chat page asks for the key once, then keeps a session cookie.
    status, headers, _ = http(locked.url, "GET", "/")
    assert status == 303 and headers["location"] == "/auth"
    status, _, page = http(locked.url, "GET", "/auth")
    assert status == 200 and "Mã truy cập" in page.decode() and 'action="/auth"' in page.decode()
    form = {"Content-Type": "application/x-www-form-urlencoded", "Origin": locked.url}
    status, headers, page = http(locked.url, "POST", "/auth", b"key=wrong", form)
    assert status == 401 and "Mã truy cập không đúng" in page.decode() and "set-cookie" not in headers
    status, headers, _ = http(locked.url, "POST", "/auth", f"key={KEY}".encode(), form)
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert cookie.startswith("rag_session=v1.") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert KEY not in cookie and "Max-Age" not in cookie and "expires" not in cookie.lower()  # a session cookie
    session = {"Cookie": cookie.split(";")[0]}
    status, _, page = http(locked.url, "GET", "/", headers=session)
    assert status == 200 and "gradio" in page.decode().lower()
    status, messages = GradioSession(locked.url, session).ask(RICE_QUESTION)
    assert status == 200 and "2000 tấn gạo" in json.dumps(final_output(messages), ensure_ascii=False)

    # /?token=<signed token> works too, and leaves the address; a forged one does not.
    token = sign_token(KEY, int(time.time()) + 300)
    status, headers, _ = http(locked.url, "GET", f"/?token={token}")
    assert status == 303 and headers["location"] == "/" and headers["set-cookie"].startswith(f"rag_session={token};")
    status, headers, page = http(locked.url, "GET", f"/?token={sign_token('guess', int(time.time()) + 300)}")
    assert status == 401 and "set-cookie" not in headers and "không hợp lệ" in page.decode()
    expired = {"Cookie": f"rag_session={sign_token(KEY, int(time.time()) - 1)}"}
    assert http(locked.url, "GET", "/", headers=expired)[1]["location"] == "/auth?expired=1"


@pytest.mark.slow
def test_finding_2_big_bodies_are_refused_while_reading_and_long_questions_are_not_kept(service):
    """64 MiB questions to Gradio were read, kept in the session and echoed. Now any body over
    64 KiB is refused from its Content-Length or, chunked, as soon as it passes 64 KiB; a
    question over 1000 characters is refused without being kept or echoed, and counts."""
    import http.client

    from servers import GradioSession, http as request

    with served(service, RateLimiter(4)) as server:
        session = GradioSession(server.url)
        payload = {"data": ["x" * (64 << 20), None], "fn_index": session.fn_index["respond"],
                   "session_hash": session.session_hash}
        # The declared size is refused before a byte of the body is read (none is sent here).
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.putrequest("POST", "/gradio_api/queue/join")
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(64 << 20))
        connection.endheaders()
        response = connection.getresponse()
        assert response.status == 413 and json.loads(response.read())["error"] == "request_too_large"
        connection.close()
        # Without Content-Length (chunked), reading stops past the limit.
        body = json.dumps({**payload, "data": ["x" * 100_000, None]}).encode()
        status, _, answer = request(server.url, "POST", "/gradio_api/queue/join", iter([body[i:i + 8192] for i in range(
            0, len(body), 8192)]), {"Content-Type": "application/json"})
        assert status == 413 and "64 KiB" in json.loads(answer)["message"]

        long_question = "Hà Nội tặng bao nhiêu tấn gạo? " * 100  # 3,100 characters: under 64 KiB
        for _ in range(2):
            status, messages = session.ask(long_question)
            assert status == 200
            text = json.dumps(messages, ensure_ascii=False)
            assert "Câu hỏi quá dài: tối đa 1000 ký tự." in text and long_question.strip() not in text
        status, messages = session.ask(RICE_QUESTION)  # the session kept nothing of the long ones
        assert status == 200 and "quá dài" not in json.dumps(final_output(messages), ensure_ascii=False)
        chat = final_output(messages)[0]
        assert len(chat) == 2 and "Hà Nội tặng La Habana" in json.dumps(chat[0], ensure_ascii=False)
        status, refusal = session.join("respond", [long_question, None])
        assert status == 429 and refusal["error"] == "rate_limited"  # each join counted: the chunked one too


@pytest.mark.slow
def test_finding_5_gradio_uploads_and_files_are_closed(locked):
    """Uploads were stored without a key, any size, and served back. Now Gradio's upload, file,
    info and API routes answer 404 with or without the key, and read nothing."""
    from servers import http

    boundary = "rag-test-boundary"
    upload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.bin\"\r\n"
              f"Content-Type: application/octet-stream\r\n\r\n").encode() + b"\0" * 1024 + f"\r\n--{boundary}--\r\n".encode()
    for headers in ({}, BEARER):
        form = {"Content-Type": f"multipart/form-data; boundary={boundary}", **headers}
        status, _, body = http(locked.url, "POST", "/gradio_api/upload", upload, form)
        assert status == 404 and json.loads(body)["error"] == "not_found"
        # 20 MiB announced: refused on the headers, the body is never read.
        assert http(locked.url, "POST", "/gradio_api/upload", None, {**form, "Content-Length": str(20 << 20)})[0] == 404
        for path in ("/gradio_api/file=/etc/hostname", "/gradio_api/file/etc/hostname", "/gradio_api/info",
                     "/gradio_api/openapi.json", "/gradio_api/upload_progress", "/gradio_api/proxy=http://x"):
            assert http(locked.url, "GET", path, headers=headers)[0] == 404, path


@pytest.mark.slow
def test_finding_9_forwarded_for_wrong_keys_and_token_requests_cannot_sidestep_the_limit(service):
    from servers import http

    ask = {"Content-Type": "application/json"}
    with served(service, RateLimiter(3)) as server:
        assert [http(server.url, "POST", "/api/ask", ask_json(), ask)[0] for _ in range(3)] == [200] * 3
        rotating = [http(server.url, "POST", "/api/ask", ask_json(), {**ask, "X-Forwarded-For": f"203.0.113.{n}"})[0]
                    for n in range(8)]
        assert rotating == [429] * 8  # no proxy is trusted: the header is ignored

    with served(service, RateLimiter(3), trusted_proxies="127.0.0.1") as server:
        behind = {**ask, "X-Forwarded-For": "198.51.100.7"}
        assert [http(server.url, "POST", "/api/ask", ask_json(), behind)[0] for _ in range(4)] == [200] * 3 + [429]
        # The proxy appends the real client; what the client wrote to the left proves nothing.
        spoofed = [http(server.url, "POST", "/api/ask", ask_json(),
                        {**ask, "X-Forwarded-For": f"203.0.113.{n}, 198.51.100.7"})[0] for n in range(4)]
        assert spoofed == [429] * 4
        assert http(server.url, "POST", "/api/ask", ask_json(), {**ask, "X-Forwarded-For": "198.51.100.8"})[0] == 200

    with served(service, RateLimiter(5), api_key=KEY) as server:
        guesses = [http(server.url, "POST", "/api/ask", ask_json(), {**ask, "Authorization": f"Bearer guess-{n}"})[0]
                   for n in range(200)]
        assert guesses[:5] == [401] * 5 and set(guesses[5:]) == {429}
        status, headers, body = http(server.url, "POST", "/auth", f"key={KEY}".encode(),
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 429 and int(headers["retry-after"]) > 0 and "thử quá nhiều lần" in body.decode()

    with served(service, RateLimiter(5), api_key=KEY) as server:
        minted = [http(server.url, "POST", "/api/token", b"{}", {**ask, **BEARER})[0] for _ in range(30)]
        assert minted[:5] == [200] * 5 and set(minted[5:]) == {429}


@pytest.mark.slow
def test_finding_9_requests_for_other_host_names_are_refused(service):
    """DNS rebinding: a page of evil.test whose name now points at 127.0.0.1 is refused."""
    from servers import http

    rebound = {"Host": "evil.test", "Origin": "http://evil.test", "Content-Type": "application/json"}
    with served(service) as server:
        for method, path in (("GET", "/"), ("POST", "/api/ask"), ("POST", "/gradio_api/queue/join"),
                             ("GET", "/healthz"), ("GET", "/embed")):
            status, headers, body = http(server.url, method, path, ask_json() if method == "POST" else None, rebound)
            assert status == 421 and json.loads(body)["error"] == "host_not_allowed", path
            assert "RAG_ALLOWED_HOSTS" in json.loads(body)["message"]
        assert http(server.url, "GET", "/healthz", headers={"Host": f"localhost:{server.port}"})[0] == 200
    with served(service, allowed_hosts="evil.test", allowed_origins="http://evil.test") as server:
        assert http(server.url, "POST", "/api/ask", ask_json(), rebound)[0] == 200  # the operator's choice
        assert http(server.url, "GET", "/healthz")[0] == 421  # 127.0.0.1 is no longer listed


# --------------------------------------------------------------------------- the route walk

# Routes anyone may get when RAG_API_KEY is set: no data, needed before a key is at hand.
# A route added here must be added to rag.gate.ROUTE_RULES as public too, and the other way round.
PUBLIC_ROUTES = {("GET", "/healthz"), ("GET", "/widget.js"), ("GET", "/widget/{name}"), ("GET", "/embed"),
                 ("GET", "/docs"), ("GET", "/docs/{name}"), ("GET", "/openapi.json"), ("HEAD", "/openapi.json"),
                 ("GET", "/auth"), ("POST", "/auth"), ("GET", "/admin"), ("POST", "/admin")}
# The app's routes for editors (RAG_ADMIN_KEY): refused without it (unset here: 403 admin_disabled).
ADMIN_ROUTES = {("POST", "/api/articles")}
# Gradio's routes the chat's page uses (tests/test_browser.py drives it); the rest must be closed.
CHAT_ROUTES = {("GET", "/"), ("HEAD", "/"), ("GET", "/config"), ("GET", "/config/"), ("GET", "/theme.css"),
               ("GET", "/gradio_api/theme.css"), ("GET", "/favicon.ico"), ("GET", "/assets/{path:path}"),
               ("GET", "/static/{path:path}"), ("GET", "/gradio_api/heartbeat/{session_hash}"),
               ("GET", "/gradio_api/queue/data"), ("POST", "/gradio_api/queue/join"),
               ("POST", "/gradio_api/run/{api_name}"), ("POST", "/gradio_api/cancel"), ("POST", "/gradio_api/reset")}
# The app's own routes that need the key.
API_ROUTES = {("POST", "/api/ask"), ("POST", "/api/ask/stream"), ("POST", "/api/feedback"), ("POST", "/api/token")} | {
    (method, "/api/{path:path}") for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")}


def route_table(app) -> list[tuple[str, str, bool]]:
    """Every ``(method, path template, is Gradio's)`` the app routes, the mounted Gradio app's included."""
    from fastapi.routing import _IncludedRouter
    from starlette.routing import Mount

    found = []

    def walk(routes, prefix: str, gradio: bool) -> None:
        for route in routes:
            if isinstance(route, _IncludedRouter):
                walk(route.effective_candidates(), prefix, gradio)
            elif isinstance(route, Mount):
                walk(route.app.routes, prefix + route.path, True)
            else:
                for method in sorted(getattr(route, "methods", None) or {"GET"}):
                    found.append((method, prefix + route.path, gradio))
    walk(app.routes, "", False)
    return found


CONCRETE = {"/widget/{name}": "/widget/embed.js", "/docs/{name}": "/docs/swagger-ui.css",
            "/gradio_api/run/{api_name}": "/gradio_api/run/predict"}


def concrete(template: str) -> str:
    import re

    return CONCRETE.get(template) or re.sub(r"\{[^}]+\}", "x", template)


def walk_violations(server) -> list[str]:
    """Each route probed over HTTP, without the key, with a foreign Host, and with a body over
    the limit; what did not meet its expectation."""
    from servers import http

    violations = []
    routes = route_table(server.app)
    own = {(m, p) for m, p, gradio in routes if not gradio}
    unlisted = own - PUBLIC_ROUTES - API_ROUTES - ADMIN_ROUTES
    violations += [f"{m} {p}: a route of the app that this test does not know: classify it" for m, p in unlisted]
    for method, template, gradio in routes:
        path, route = concrete(template), (method, template)
        expected = ("public" if route in PUBLIC_ROUTES else "guarded" if route in API_ROUTES | CHAT_ROUTES
                    else "admin" if route in ADMIN_ROUTES else "refused")
        status, headers, _ = http(server.url, method, path, b"{}" if method != "GET" and method != "HEAD" else None,
                                  {"Content-Type": "application/json"})
        if expected == "guarded" and status not in (401, 303):
            violations.append(f"{method} {template}: {status} without the key")
        if expected == "admin" and (status not in (401, 403) or http(server.url, method, path, b"{}", {
                "Content-Type": "application/json", **BEARER})[0] not in (401, 403)):
            violations.append(f"{method} {template}: {status} without the admin key")
        if expected == "refused" and status != 404:
            violations.append(f"{method} {template}: {status}, not refused")
        if expected == "public" and (status == 404 or status >= 500):
            violations.append(f"{method} {template}: {status}, though public")
        if expected == "refused" and http(server.url, method, path, None, BEARER)[0] != 404:
            violations.append(f"{method} {template}: not refused with the key")
        status = http(server.url, method, path, None, {"Host": "evil.test"})[0]
        if status != 421:
            violations.append(f"{method} {template}: {status} for Host: evil.test")
        if method in ("POST", "PUT", "PATCH", "DELETE") and expected != "refused":
            status = http(server.url, method, path, None, {**BEARER, "Content-Length": str(65 * 1024)})[0]
            if status != 413 and not (expected == "admin" and status in (401, 403)):
                violations.append(f"{method} {template}: {status} for a 65 KiB body")
    return violations


@pytest.mark.slow
def test_every_route_of_the_app_and_of_gradio_passes_the_gate(locked):
    table = route_table(locked.app)
    assert len([r for r in table if r[2]]) > 50  # Gradio's routes were found, not only ours
    assert ("POST", "/gradio_api/upload", True) in table and ("POST", "/api/ask", False) in table
    assert walk_violations(locked) == []
    from servers import http

    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", **BEARER}
    for path in ("/", "/gradio_api/queue/data"):  # no WebSocket route: every upgrade is refused
        assert http(locked.url, "GET", path, None, upgrade)[0] == 403


@pytest.mark.slow
def test_the_walk_catches_a_route_that_skips_the_gate(service, monkeypatch):
    """The walk is not vacuous: a new route that answers without the key, and a Gradio route
    opened in the rules without a reason, are both reported."""
    from servers import LiveServer

    import rag.gate as gate

    opened = gate._COMPILED_RULES + ((("GET", "POST"), __import__("re").compile(r"/leak|/gradio_api/info"),
                                       gate.Rule(gate.PUBLIC)),)
    monkeypatch.setattr(gate, "_COMPILED_RULES", opened)
    with LiveServer(service.settings.with_(api_key=KEY), service) as server:
        @server.app.get("/leak")
        def leak():
            return {"answer": "2000 tấn gạo"}
        server.app.router.routes.insert(0, server.app.router.routes.pop())  # before the chat's mount at /
        violations = walk_violations(server)
    assert any(v.startswith("GET /leak: a route of the app that this test does not know") for v in violations)
    assert any(v.startswith("GET /gradio_api/info:") and "not refused" in v for v in violations)


ADMIN_KEY = "editors-key"


@pytest.mark.slow
def test_the_upload_routes_open_to_editors_only_with_their_larger_body_limit(service):
    """RAG_ADMIN_KEY set: Gradio's upload route exists for editors only (404 for anyone else,
    the API key included), and editors alone may send bodies past 64 KiB, up to
    RAG_UPLOAD_MAX_BYTES + 64 KiB; the editors' session cookie (from /admin) counts as the key."""
    from servers import http

    boundary = "rag-test-boundary"

    def form(size: int) -> bytes:
        return (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.html\"\r\n"
                f"Content-Type: text/html\r\n\r\n").encode() + b"a" * size + f"\r\n--{boundary}--\r\n".encode()

    multipart = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    with served(service, api_key=KEY, admin_key=ADMIN_KEY, upload_max_bytes=200_000) as server:
        for headers in ({}, BEARER, {"Authorization": "Bearer wrong"}, {"Cookie": "rag_admin=v1.1.x"}):
            assert http(server.url, "POST", "/gradio_api/upload", form(1024), {**multipart, **headers})[0] == 404
        status, headers, body = http(server.url, "POST", "/admin", b"key=wrong",
                                     {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 401 and "set-cookie" not in headers and "Mã quản trị không đúng" in body.decode()
        status, headers, _ = http(server.url, "POST", "/admin", f"key={ADMIN_KEY}".encode(),
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"].split(";")[0]
        assert cookie.startswith("rag_admin=v1.") and ADMIN_KEY not in headers["set-cookie"]
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        editor = {"Cookie": cookie}
        status, _, body = http(server.url, "POST", "/gradio_api/upload", form(150_000), {**multipart, **editor})
        assert status == 200 and json.loads(body)[0].endswith("a.html")  # Gradio's own answer: the stored path
        status, _, body = http(server.url, "POST", "/gradio_api/upload", None,
                               {**multipart, **editor, "Content-Length": str(200_000 + 65 * 1024)})
        assert status == 413
        # The cookie is a session for the chat too (it needs no API key beside it); nothing else widens.
        assert http(server.url, "GET", "/", headers=editor)[0] == 200
        assert http(server.url, "POST", "/api/ask", b"x" * (65 * 1024),
                    {"Content-Type": "application/json", **editor})[0] == 413
        # The chat page never holds the admin key, for editors or anyone else.
        for headers in (editor, BEARER):
            page = http(server.url, "GET", "/", headers=headers)[2] + http(server.url, "GET", "/config", headers=headers)[2]
            assert ADMIN_KEY.encode() not in page
