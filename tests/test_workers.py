"""`rag serve --workers 2`: one HTTP process, two answering processes (rag.workers), served for
real on loopback: the same answers, one rate limit per client, every rating stored, and a new
generation picked up by both workers without a restart."""
from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import run_rag
from servers import GradioSession, free_port, http, rag_serve

from rag.feedback import FeedbackStore

QUESTIONS = ["Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?", "Hà Nội tặng La Habana bao nhiêu tấn gạo?",
             "Who did the delegation meet in Peru?", "Đoàn Thành ủy Hà Nội thăm những nước nào?"]
LAO_QUESTION = "Hà Nội tặng Viêng Chăn bao nhiêu bộ máy tính?"
LAO_TEXT = ("Đoàn đại biểu Hà Nội thăm Viêng Chăn\n\nChiều 12/3, đoàn đại biểu thành phố Hà Nội đã đến thủ đô "
            "Viêng Chăn của Lào. Nhân dịp này, Hà Nội trao tặng Viêng Chăn 350 bộ máy tính cho các trường tiểu học.\n")


def _post(url: str, path: str, body: dict, headers: dict | None = None):
    status, response_headers, raw = http(url, "POST", path, json.dumps(body).encode(),
                                         {"Content-Type": "application/json", **(headers or {})})
    return status, response_headers, json.loads(raw)


def _wait(predicate, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _health(url: str) -> dict:
    try:
        return json.loads(http(url, "GET", "/healthz", timeout=10)[2])
    except OSError:
        return {}


@pytest.mark.slow
def test_two_workers_answer_as_one_process_and_share_limit_ratings_and_generations(indexed, corpus, isolated):
    from rag.api import Service

    single = Service(indexed)
    single.load(refresh=False)
    try:
        expected = {q: single.answerer().answer(q).as_dict() for q in QUESTIONS}
    finally:
        single.close()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = isolated / "serve.log"
    with rag_serve(port, log, "--workers", "2", env={"RAG_RATE_LIMIT": "5"}) as server:
        _wait(lambda: _health(url).get("status") == "ready", 180, "the server")
        workers = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) >= 2  # the answering processes (and multiprocessing's helper)

        # Each question as one process answers it; the limit is the client's, whichever worker answers.
        for n, question in enumerate(QUESTIONS):
            status, _, answer = _post(url, "/api/ask", {"question": question})
            assert status == 200, answer
            assert {k: v for k, v in answer.items() if k != "timings_ms"} == \
                   {k: v for k, v in expected[question].items() if k != "timings_ms"}
        # The chat (Gradio's queue: a join, then the session's events) answers through a worker too.
        status, messages = GradioSession(url).ask(QUESTIONS[1])
        assert status == 200 and "2000 tấn gạo" in json.dumps(messages[-1]["output"], ensure_ascii=False)
        statuses = [_post(url, "/api/ask", {"question": QUESTIONS[0]})[0] for _ in range(3)]
        assert statuses == [429] * 3  # 5 a minute in all (4 + the chat's), not 5 per worker
    _wait(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in workers), 30, "the workers to end with the server")

    # Without a rate limit: 200 parallel ratings, and an ingest both workers follow.
    with rag_serve(port, log, "--workers", "2", env={"RAG_RATE_LIMIT": "0"}):
        _wait(lambda: _health(url).get("status") == "ready", 180, "the server")
        before = len(FeedbackStore.beside(indexed.store_dir).entries())
        rating = {"question": QUESTIONS[0], "answer": expected[QUESTIONS[0]], "rating": 1}
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda n: _post(url, "/api/feedback", {**rating, "comment": str(n)})[0], range(200)))
        assert statuses == [200] * 200
        assert len(FeedbackStore.beside(indexed.store_dir).entries()) == before + 200

        generation = _health(url)["generation"]
        (corpus / "ha-noi-vieng-chan.txt").write_text(LAO_TEXT, encoding="utf-8")
        result = run_rag("ingest", "--quiet")
        assert result.returncode == 0, result.stderr
        _wait(lambda: _health(url).get("generation", generation) != generation, 30, "both workers to switch")
        answers = [_post(url, "/api/ask", {"question": LAO_QUESTION})[2] for _ in range(4)]
        assert all("350" in a["answer"] and a["citations"][0]["doc_id"] == "ha-noi-vieng-chan" for a in answers)
