"""Live index updates: a running service follows each generation an ingest publishes, a request
answers wholly from the generation it started on, and a generation is removed only when no
process serves it (rag.live, rag.index's generation leases)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
from conftest import ARGENTINA, CUBA, run_rag
from servers import free_port, http, rag_serve

from rag.index import Store, VectorIndex, ingest

CUBA_QUESTION = "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?"
LAO_QUESTION = "Hà Nội tặng Viêng Chăn bao nhiêu bộ máy tính?"
LAO = "ha-noi-vieng-chan"
LAO_ARTICLE = """Đoàn đại biểu Hà Nội thăm Viêng Chăn

Chiều 12/3, đoàn đại biểu thành phố Hà Nội do Phó Chủ tịch UBND thành phố Trần Văn Minh dẫn đầu đã đến \
thủ đô Viêng Chăn của Lào. Nhân dịp này, Hà Nội trao tặng Viêng Chăn 350 bộ máy tính cho các trường tiểu \
học. Hai bên thống nhất mở đường bay thẳng giữa hai thủ đô vào năm sau.
"""
QUIET = {"progress": False, "log": lambda message: None}


def _cited(answer) -> set[str]:
    return {c.doc_id for c in answer.citations}


def test_a_request_keeps_its_generation_and_the_old_one_goes_when_released(indexed, corpus, e5):
    from rag.api import Service

    service = Service(indexed)
    service.load(embeddings=e5)
    try:
        first = service.info["generation"]
        lease = service.lease()  # a request that started before the ingest
        (corpus / f"{LAO}.txt").write_text(LAO_ARTICLE, encoding="utf-8")
        report = ingest(indexed, e5, **QUIET)
        assert (indexed.store_dir / first).is_dir(), "removed while a request still reads it"
        assert service._live.update() and service.info["generation"] == report.generation != first

        with service.lease() as live:  # a request that starts now sees the new article
            assert LAO in _cited(live.answerer().answer(LAO_QUESTION))
        old = lease.answerer().answer(LAO_QUESTION)  # the earlier request still reads the old one
        assert LAO not in _cited(old) and _cited(old) <= {CUBA, ARGENTINA}
        assert (indexed.store_dir / first).is_dir()
        lease.release()
        deadline = time.time() + 30  # removed in a thread once the last request released it
        while (indexed.store_dir / first).exists() and time.time() < deadline:
            time.sleep(0.05)
        assert not (indexed.store_dir / first).exists()
        assert service.answerer().answer(CUBA_QUESTION).short == "Nguyễn Thị Tuyến"
    finally:
        service.close()


def test_an_ingest_keeps_every_generation_a_reader_holds(indexed, corpus, e5):
    reader = VectorIndex.open(indexed, e5)  # as `rag ask` or a server in another process would
    try:
        (corpus / f"{LAO}.txt").write_text(LAO_ARTICLE, encoding="utf-8")
        second = ingest(indexed, e5, **QUIET).generation
        (corpus / f"{LAO}.txt").write_text(LAO_ARTICLE.replace("350", "360"), encoding="utf-8")
        third = ingest(indexed, e5, **QUIET).generation
        names = sorted(p.name for p in indexed.store_dir.glob("gen-*"))
        assert names == [reader.generation, third] and second not in names  # nobody served the second
        assert reader.search(CUBA_QUESTION, k=1)[0].doc_id == CUBA
    finally:
        reader.close()
    Store(indexed.store_dir).remove_unused()
    assert sorted(p.name for p in indexed.store_dir.glob("gen-*")) == [third]


def test_a_service_has_its_word_segmenter_loaded_before_the_first_question(indexed):
    # pyvi loads on first use in about 1.5 s: a request that paid it held every client of a fresh
    # server (and of each worker) that long. In a fresh interpreter: this one has loaded it already.
    code = ("import sys\nfrom rag.api import Service\nfrom rag.settings import Settings\n"
            "service = Service(Settings.load())\nservice.load(refresh=False)\n"
            "print('pyvi.ViTokenizer' in sys.modules)\nservice.close()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"]


def _post(url: str, body: dict, timeout: float = 60):
    status, _, raw = http(url, "POST", "/api/ask", json.dumps(body).encode(), {"Content-Type": "application/json"},
                          timeout=timeout)
    return status, json.loads(raw)


def _health(url: str):
    try:
        status, _, raw = http(url, "GET", "/healthz", timeout=10)
    except OSError:
        return 0, {}
    return status, json.loads(raw)


def _wait(predicate, seconds: float, what: str, process=None):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        assert process is None or process.poll() is None, "the server stopped"
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.slow
def test_a_running_server_answers_an_ingested_article_within_5_s_without_a_failed_request(indexed, corpus, isolated):
    # An article the index lacks: the server serves the index in place at once and adds it meanwhile.
    sentences = [f"Tại buổi làm việc thứ {n}, hai bên đã ký biên bản ghi nhớ số {n} về hợp tác đô thị." for n in range(60)]
    (corpus / "bien-ban.txt").write_text("Các biên bản ghi nhớ\n\n" + " ".join(sentences) + "\n", encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with rag_serve(port, isolated / "serve.log", env={"RAG_RATE_LIMIT": "0"}) as server:
        status, health = _wait(lambda: (lambda h: h if h[0] == 200 else None)(_health(url)), 120, "the index", server)
        assert health["generation"] == "gen-000001" and health["articles"] == 2  # before the ingest it runs
        _wait(lambda: _health(url)[1].get("generation") == "gen-000002", 120, "the corpus's article", server)
        assert _health(url)[1]["articles"] == 3

        failures, answered = [], [0]
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                try:
                    status, body = _post(url, {"question": CUBA_QUESTION})
                except Exception as exc:  # a dropped connection is a failed request too
                    failures.append(repr(exc))
                    continue
                if status != 200 or body.get("short") != "Nguyễn Thị Tuyến":
                    failures.append((status, body))
                answered[0] += 1

        clients = [threading.Thread(target=client) for _ in range(16)]
        for thread in clients:
            thread.start()
        try:
            (corpus / f"{LAO}.txt").write_text(LAO_ARTICLE, encoding="utf-8")
            before = answered[0]
            result = run_rag("ingest", "--quiet")
            finished = time.monotonic()
            assert result.returncode == 0, result.stderr
            assert "(index gen-000003)" in result.stdout and answered[0] > before

            def answers_it():
                status, body = _post(url, {"question": LAO_QUESTION})
                return status == 200 and LAO in {c["doc_id"] for c in body["citations"]} and "350" in body["answer"]

            _wait(answers_it, 5, "the new article to be answered", server)
            assert time.monotonic() - finished <= 5
            switched = answered[0]
            _wait(lambda: answered[0] > switched + 16, 60, "requests after the switch", server)
        finally:
            stop.set()
            for thread in clients:
                thread.join(timeout=60)
        assert failures == []
        assert _health(url)[1] == {"status": "ready", "articles": 4, "passages": _health(url)[1]["passages"],
                                   "generation": "gen-000003"}
        # The generations no process serves any more are gone; the live one stays.
        store = indexed.store_dir
        _wait(lambda: sorted(p.name for p in store.glob("gen-*")) == ["gen-000003"], 30, "old generations removed")
