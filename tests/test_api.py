"""The HTTP API: pure helpers (origins, tokens, rate limit, locking), then the real app on
uvicorn on loopback, asked over real HTTP, on a copy of the seed index."""
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from rag.api import Serialized
from rag.gate import (RateLimiter, bearer, credential_kind, frame_ancestors, origin_allowed, parse_origins,
                      sign_token, verify_token)
from rag.settings import Settings

CUBA_QUESTION = "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?"


# --------------------------------------------------------------------------- pure helpers


def test_origins_are_normalised_and_anything_but_an_origin_is_refused():
    assert parse_origins("") == ()
    assert parse_origins(" https://Intranet.Example.vn/ , http://10.0.0.5:8080,https://intranet.example.vn") == (
        "https://intranet.example.vn", "http://10.0.0.5:8080")
    assert parse_origins("https://a.vn,*") == ("*",)
    for bad in ("intranet.example.vn", "https://a.vn/page", "ftp://a.vn", "https://a.vn?x=1"):
        with pytest.raises(ValueError, match="RAG_ALLOWED_ORIGINS"):
            parse_origins(bad)


def test_same_host_and_listed_origins_are_allowed_others_not():
    allowed = ("https://intranet.example.vn",)
    assert origin_allowed("http://chat.local:7860", "chat.local:7860", ())  # the server's own pages
    assert origin_allowed("https://intranet.example.vn", "chat.local:7860", allowed)
    assert not origin_allowed("https://evil.example", "chat.local:7860", allowed)
    assert not origin_allowed("http://chat.local:7861", "chat.local:7860", allowed)  # another port
    assert origin_allowed("", "chat.local:7860", ())  # curl, a server: no Origin header
    assert origin_allowed("https://any.example", "chat.local", ("*",))
    assert frame_ancestors(()) == "frame-ancestors 'self'"
    assert frame_ancestors(allowed) == "frame-ancestors 'self' https://intranet.example.vn"
    assert frame_ancestors(("*",)) == "frame-ancestors *"


def test_signed_tokens_expire_and_cannot_be_forged_or_stretched():
    now = 1_700_000_000
    token = sign_token("k3y", now + 600)
    assert verify_token("k3y", token, now, max_ttl=3600)
    assert not verify_token("k3y", token, now + 601, max_ttl=3600)  # expired
    assert not verify_token("other", token, now, max_ttl=3600)  # another key
    forged = token.replace(str(now + 600), str(now + 900))  # a later expiry, the old signature
    assert not verify_token("k3y", forged, now, max_ttl=3600)
    assert not verify_token("k3y", sign_token("k3y", now + 86_400), now, max_ttl=3600)  # too long-lived
    assert not verify_token("k3y", "garbage", now, 3600) and not verify_token("", token, now, 3600)


def test_authorization_takes_the_key_or_a_valid_token():
    now = time.time()
    token = sign_token("k3y", int(now) + 60)

    def kind(authorization: str, key: str = "k3y") -> str:
        return credential_kind(bearer(authorization), key, now, 3600)

    assert kind("", key="") == "none"  # nothing sent (with no key configured the gate lets it pass)
    assert kind("Bearer k3y") == "key"
    assert kind(f"bearer {token}") == "token"
    assert kind("") == "none"
    assert kind("Bearer wrong") == "wrong"
    assert kind("Basic k3y") == "none"  # not a bearer credential


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_allows_a_burst_then_refills_evenly_per_client():
    clock = Clock()
    limiter = RateLimiter(3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(20.0)  # 3 a minute: one more every 20 s
    assert limiter.acquire("b") == 0.0  # another client is not affected
    clock.now += 19.0
    assert limiter.acquire("a") == pytest.approx(1.0)
    clock.now += 1.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0
    clock.now += 3600
    assert [limiter.acquire("a") for _ in range(4)][:3] == [0.0, 0.0, 0.0]  # never more than the burst


def test_rate_limit_zero_is_off_and_idle_clients_are_forgotten():
    assert all(RateLimiter(0).acquire("a") == 0.0 for _ in range(1000))
    clock = Clock()
    limiter = RateLimiter(60, clock=clock, max_clients=10)
    for n in range(11):
        limiter.acquire(f"client-{n}")
    clock.now += 120  # every bucket has refilled
    limiter.acquire("new")
    limiter.acquire("newer")
    assert len(limiter._buckets) <= 3


def test_serialized_calls_never_overlap():
    class Target:
        def __init__(self) -> None:
            self.inside, self.overlaps, self.calls = 0, 0, 0
            self.child = self

        def work(self) -> None:
            self.inside += 1
            self.overlaps += self.inside > 1
            time.sleep(0.002)
            self.calls += 1
            self.inside -= 1

    target = Target()
    wrapped = Serialized(target, threading.RLock(), nested=("child",))
    threads = [threading.Thread(target=lambda: [wrapped.child.work() if i % 2 else wrapped.work() for i in range(20)])
               for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert target.calls == 120 and target.overlaps == 0


def test_web_settings_come_from_the_environment():
    settings = Settings.load(environ={"RAG_ALLOWED_ORIGINS": "https://intranet.example.vn", "RAG_API_KEY": "k",
                                      "RAG_RATE_LIMIT": "0", "RAG_TOKEN_TTL": "600"})
    assert (settings.allowed_origins, settings.api_key, settings.rate_limit, settings.token_ttl) == (
        "https://intranet.example.vn", "k", 0, 600)
    assert Settings.load(environ={}).rate_limit > 0 and Settings.load(environ={}).allowed_origins == ""
    with pytest.raises(SystemExit, match="RAG_TOP_K"):
        Settings.load(environ={"RAG_TOP_K": "0"})  # 0 means "off" only where it can


# --------------------------------------------------------------------------- over HTTP


def request(url: str, body=None, *, method: str | None = None, headers: dict | None = None, raw=None):
    """``(status, headers, body as JSON or text)``; HTTP errors are returned, not raised."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    head = {"Content-Type": "application/json"} if data is not None else {}
    req = urllib.request.Request(url, data=data, method=method, headers={**head, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            status, head, content = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, content = error.code, error.headers, error.read()
    text = content.decode("utf-8")
    try:
        return status, head, json.loads(text)
    except ValueError:
        return status, head, text


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


@pytest.fixture(scope="module")
def service(tmp_path_factory, seed_store, e5):
    """A loaded service on a copy of the seed index, shared by the servers of this module."""
    from servers import loaded_service

    with loaded_service(tmp_path_factory.mktemp("api"), seed_store, e5, rate_limit=0,
                        allowed_origins="http://intranet.test:8080") as service:
        yield service


@pytest.fixture(scope="module")
def server(service):
    from servers import LiveServer

    with LiveServer(service.settings, service) as live:
        yield live


@pytest.mark.slow
def test_ask_returns_the_answer_with_its_cited_passage(server):
    status, headers, answer = request(server.url + "/api/ask", {"question": CUBA_QUESTION})
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert answer["short"] == "Nguyễn Thị Tuyến" and answer["answer"].startswith("Nguyễn Thị Tuyến.")
    assert "[1]" in answer["answer"] and not answer["abstained"]
    citation = answer["citations"][0]  # a second one may follow, for a second sentence
    assert all(f"[{c['n']}]" in answer["answer"] for c in answer["citations"])
    assert citation["n"] == 1 and citation["doc_id"] == "ha-noi-la-habana-hop-tac"
    assert citation["url"].startswith("https://laodongthudo.vn/tiep-tuc-thuc-day")
    assert citation["quote"] and citation["quote"] in citation["text"] and "Nguyễn Thị Tuyến" in citation["quote"]


@pytest.mark.slow
def test_stream_sends_sources_then_text_then_the_same_final_answer(server):
    question = "Hà Nội tặng La Habana bao nhiêu tấn gạo?"
    status, headers, text = request(server.url + "/api/ask/stream", {"question": question})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(text)
    names = [name for name, _ in events]
    assert names[0] == "sources" and names[-1] == "final" and "delta" in names and "error" not in names
    final = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "delta") == final["answer"]
    _, _, plain = request(server.url + "/api/ask", {"question": question})
    assert final["answer"] == plain["answer"] and final["short"] == "2000 tấn gạo"
    assert events[0][1]["citations"][0]["chunk_id"] == final["citations"][0]["chunk_id"]


@pytest.mark.slow
def test_follow_up_uses_the_history_and_filters_restrict_the_articles(server):
    history = [{"question": "Ai làm trưởng đoàn đại biểu thành phố Hà Nội thăm Cuba?",
                "answer": "Nguyễn Thị Tuyến. … [1]"}]
    _, _, answer = request(server.url + "/api/ask", {"question": "Thế đoàn ấy đi từ ngày nào đến ngày nào?",
                                                     "history": history})
    assert answer["standalone"] != answer["question"] and "Cuba" in answer["standalone"]
    assert "20-23/11" in answer["answer"]

    only_argentina = {"articles": ["thanh-uy-ha-noi-tham-argentina-peru"]}
    _, _, answer = request(server.url + "/api/ask", {"question": CUBA_QUESTION, "filters": only_argentina})
    passages = answer["citations"] + answer["related"]
    assert passages and {p["doc_id"] for p in passages} == {"thanh-uy-ha-noi-tham-argentina-peru"}
    assert "Nguyễn Thị Tuyến" not in answer["answer"]


@pytest.mark.slow
@pytest.mark.parametrize("body, status, code, message", [
    ({"question": ""}, 422, "empty_question", "The question is empty."),
    ({"question": "  \n "}, 422, "empty_question", "The question is empty."),
    ({"question": "x" * 1001}, 422, "question_too_long", "longer than 1000 characters"),
    ({}, 422, "missing_question", '"question" field'),
    ({"question": 42}, 422, "invalid_request", "question: must be a string"),
    ({"question": "Ai?", "lang": "vi"}, 422, "invalid_request", "lang: Extra inputs are not permitted"),
    ({"question": "Ai?", "filters": {"since": "21/11/2022"}}, 422, "invalid_filters", "use yyyy-mm-dd"),
    ({"question": "Ai?", "history": [{"question": "q"}]}, 422, "invalid_request", "history.0.answer: Field required"),
    (["Ai?"], 422, "invalid_request", "Send a JSON object"),
])
def test_bad_requests_get_a_clear_message(server, body, status, code, message):
    got_status, _, error = request(server.url + "/api/ask", body)
    assert (got_status, error["error"]) == (status, code) and message in error["message"]


@pytest.mark.slow
def test_malformed_and_oversized_bodies_are_refused(server):
    status, _, error = request(server.url + "/api/ask", raw='{"question": "Ai dẫn đầu'.encode())
    assert status == 400 and error["error"] == "malformed_json" and "not valid JSON" in error["message"]
    status, _, error = request(server.url + "/api/ask/stream", raw=b"question=Ai",
                               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 422 and "Content-Type: application/json" in error["message"]
    big = json.dumps({"question": "x" * 70_000}).encode()
    status, _, error = request(server.url + "/api/ask", raw=big)
    assert status == 413 and error["error"] == "request_too_large" and "64 KiB" in error["message"]
    chunks = iter([big[i:i + 8192] for i in range(0, len(big), 8192)])  # no Content-Length: chunked
    status, _, error = request(server.url + "/api/ask", raw=chunks)
    assert status == 413 and error["error"] == "request_too_large"


@pytest.mark.slow
def test_pages_of_other_origins_can_neither_call_nor_frame_unless_allowed(server):
    allowed, other = "http://intranet.test:8080", "http://evil.test"
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    status, headers, _ = request(server.url + "/api/ask", method="OPTIONS", headers={"Origin": allowed, **preflight})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == allowed
    status, headers, _ = request(server.url + "/api/ask", method="OPTIONS", headers={"Origin": other, **preflight})
    assert status == 400 and "Access-Control-Allow-Origin" not in headers
    # A "simple" request skips the preflight: it is refused before anything runs.
    status, headers, error = request(server.url + "/api/ask", raw=json.dumps({"question": CUBA_QUESTION}).encode(),
                                     headers={"Origin": other, "Content-Type": "text/plain"})
    assert status == 403 and error["error"] == "origin_not_allowed" and "RAG_ALLOWED_ORIGINS" in error["message"]
    status, headers, answer = request(server.url + "/api/ask", {"question": CUBA_QUESTION}, headers={"Origin": allowed})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == allowed and answer["short"]
    status, _, _ = request(server.url + "/api/ask", {"question": CUBA_QUESTION}, headers={"Origin": server.url})
    assert status == 200  # the embed page and the chat: same origin

    status, headers, page = request(server.url + "/embed")
    assert status == 200 and "<title>Hỏi đáp chuyến thăm</title>" in page
    csp = headers["Content-Security-Policy"]
    assert f"frame-ancestors 'self' {allowed}" in csp and "script-src 'self'" in csp and "default-src 'none'" in csp
    _, headers, _ = request(server.url + "/")
    assert headers["Content-Security-Policy"] == f"frame-ancestors 'self' {allowed}"


@pytest.mark.slow
def test_health_docs_and_widget_assets_are_served_locally(server):
    status, _, health = request(server.url + "/healthz")
    assert status == 200 and health == {"status": "ready", "articles": 2, "passages": 30, "generation": "gen-000001"}
    status, _, docs = request(server.url + "/docs")
    assert status == 200 and 'src="/docs/swagger-ui-bundle.js"' in docs and "cdn" not in docs
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert request(server.url + "/docs/" + asset)[0] == 200
    _, _, schema = request(server.url + "/openapi.json")
    assert {"/api/ask", "/api/ask/stream", "/api/feedback", "/api/token", "/healthz"} <= set(schema["paths"])
    assert "AskRequest" in schema["components"]["schemas"] and "AnswerOut" in schema["components"]["schemas"]
    status, headers, script = request(server.url + "/widget.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript") and "attachShadow" in script
    assert headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    for asset in ("embed.js", "embed.css"):
        assert request(server.url + "/widget/" + asset)[0] == 200
    assert request(server.url + "/widget/../api.py")[0] == 404
    status, _, error = request(server.url + "/api/token", {})
    assert status == 404 and error["error"] == "no_api_key"  # no key configured: no tokens needed
    # Under /api/, a wrong method or path gets the API's error shape, not the chat's 404 page.
    status, headers, error = request(server.url + "/api/ask")
    assert status == 405 and error["error"] == "method_not_allowed" and headers["Allow"] == "POST"
    status, _, error = request(server.url + "/api/answers", {"question": "?"})
    assert status == 404 and error["error"] == "not_found" and "/docs" in error["message"]


@pytest.mark.slow
def test_feedback_is_stored_beside_the_index(server, service):
    from rag.feedback import DISLIKE, FeedbackStore

    _, _, answer = request(server.url + "/api/ask", {"question": CUBA_QUESTION})
    status, _, stored = request(server.url + "/api/feedback", {"question": CUBA_QUESTION, "answer": answer,
                                                               "rating": -1, "comment": "thiếu chức vụ"})
    assert status == 200 and stored["id"] >= 1
    (entry,) = [e for e in FeedbackStore.beside(service.settings.store_dir).entries() if e.id == stored["id"]]
    assert entry.rating == DISLIKE and entry.question == CUBA_QUESTION and entry.comment == "thiếu chức vụ"
    assert entry.answer["citations"][0]["doc_id"] == "ha-noi-la-habana-hop-tac"
    status, _, error = request(server.url + "/api/feedback", {"question": CUBA_QUESTION, "answer": answer, "rating": 0})
    assert status == 422 and error["error"] == "invalid_request" and "rating" in error["message"]


@pytest.mark.slow
def test_parallel_questions_get_the_same_answers_as_one_at_a_time(server):
    questions = ["Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?", "Hà Nội tặng La Habana bao nhiêu tấn gạo?",
                 "Tổng Bí thư Đảng Cộng sản Argentina là ai?", "When did the Hanoi delegation visit Argentina and Peru?",
                 "bi thu thu nhat thanh uy la habana ten la gi", "Thủ tướng Cuba, người thăm Việt Nam ngày 28/9, tên là gì?"]
    expected = {q: request(server.url + "/api/ask", {"question": q})[2]["answer"] for q in questions}
    results: dict[str, list] = {q: [] for q in questions}

    def ask(question: str) -> None:
        for _ in range(3):
            path = "/api/ask/stream" if len(results[question]) % 2 else "/api/ask"
            status, _, body = request(server.url + path, {"question": question})
            answer = body["answer"] if path == "/api/ask" else sse_events(body)[-1][1]["answer"]
            results[question].append((status, answer))

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for question in questions:
        assert results[question] == [(200, expected[question])] * 3


@pytest.mark.slow
def test_rate_limit_answers_429_with_retry_after(service):
    from servers import LiveServer

    with LiveServer(service.settings, service, RateLimiter(3)) as limited:
        statuses = [request(limited.url + "/api/ask", {"question": CUBA_QUESTION})[0] for _ in range(3)]
        assert statuses == [200, 200, 200]
        status, headers, error = request(limited.url + "/api/ask/stream", {"question": CUBA_QUESTION})
        assert status == 429 and error["error"] == "rate_limited"
        assert 18 <= int(headers["Retry-After"]) <= 20 and "at most 3 a minute" in error["message"]
        assert request(limited.url + "/healthz")[0] == 200  # health checks are not limited


@pytest.mark.slow
def test_api_key_or_a_signed_token_is_needed_when_configured(service):
    from servers import LiveServer

    settings = service.settings.with_(api_key="s3cret-key", token_ttl=600)
    with LiveServer(settings, service) as locked:
        status, headers, error = request(locked.url + "/api/ask", {"question": CUBA_QUESTION})
        assert status == 401 and error["error"] == "unauthorized" and headers["WWW-Authenticate"] == "Bearer"
        key = {"Authorization": "Bearer s3cret-key"}
        assert request(locked.url + "/api/ask", {"question": CUBA_QUESTION}, headers=key)[0] == 200
        assert request(locked.url + "/api/token", {}, headers={"Authorization": "Bearer wrong"})[0] == 401
        status, _, minted = request(locked.url + "/api/token", {}, headers=key)
        assert status == 200 and 590 <= minted["expires"] - time.time() <= 600
        bearer = {"Authorization": f"Bearer {minted['token']}"}
        assert request(locked.url + "/api/ask/stream", {"question": CUBA_QUESTION}, headers=bearer)[0] == 200
        expired = sign_token("s3cret-key", int(time.time()) - 1)
        assert request(locked.url + "/api/ask", {"question": CUBA_QUESTION},
                       headers={"Authorization": f"Bearer {expired}"})[0] == 401
        assert request(locked.url + "/healthz")[0] == 200


@pytest.mark.slow
def test_service_answers_503_until_the_index_is_loaded(tmp_path, seed_store, e5):
    from servers import LiveServer, seed_settings

    from rag.api import Service

    settings = seed_settings(tmp_path, seed_store)
    service = Service(settings)
    with LiveServer(settings, service) as starting:
        status, _, health = request(starting.url + "/healthz")
        assert status == 503 and health["status"] == "loading"
        status, headers, error = request(starting.url + "/api/ask", {"question": CUBA_QUESTION})
        assert status == 503 and error["error"] == "not_ready" and headers["Retry-After"] == "5"
        assert request(starting.url + "/")[0] == 200  # the chat page is served meanwhile
        service.load(embeddings=e5)
        assert request(starting.url + "/healthz")[0] == 200
        assert request(starting.url + "/api/ask", {"question": CUBA_QUESTION})[2]["short"] == "Nguyễn Thị Tuyến"
    service.close()
