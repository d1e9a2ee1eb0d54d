"""Replicas on a shared Chroma server (RAG_CHROMA_URL, rag.remote), for real on loopback: a
`chroma run` server started and stopped by the test, `rag ingest` through it, two `rag serve`
replicas each with its own store folder, a new article answered by both without a restart."""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import CUBA, run_rag
from servers import free_port, http, rag_serve
from test_live import CUBA_QUESTION, LAO, LAO_ARTICLE, LAO_QUESTION, QUIET

ARGENTINA_QUESTION = "Đoàn đại biểu Thành ủy Hà Nội thăm những nước nào ở Mỹ Latinh?"


def _wait(predicate, seconds: float, what: str, processes=()):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        for process in processes:
            assert process.poll() is None, f"{what}: a process stopped"
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def chroma_server(tmp_path):
    """``chroma run --path DIR --port P`` on loopback; its URL. Stopped after the test."""
    chroma = Path(sys.executable).with_name("chroma")
    port = free_port()
    log = open(tmp_path / "chroma.log", "w+")
    server = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "chroma-db"), "--host", "127.0.0.1",
                               "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        try:
            return http(url, "GET", "/api/v2/heartbeat", timeout=5)[0] == 200
        except OSError:
            return False

    try:
        _wait(up, 60, "the Chroma server", [server])
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _ask(url: str, question: str) -> dict:
    status, _, raw = http(url, "POST", "/api/ask", json.dumps({"question": question}).encode(),
                          {"Content-Type": "application/json"})
    assert status == 200, raw
    body = json.loads(raw)
    body.pop("timings_ms")  # the one field two replicas may not share
    return body


def _health(url: str) -> dict:
    try:
        status, _, raw = http(url, "GET", "/healthz", timeout=10)
    except OSError:
        return {}
    return json.loads(raw) if status == 200 else {}


def test_two_replicas_share_the_index_on_a_chroma_server_and_follow_an_ingest(corpus, isolated, chroma_server):
    shared = {"RAG_CHROMA_URL": chroma_server, "RAG_RATE_LIMIT": "0"}
    ingested = run_rag("ingest", "--quiet", env={**shared, "RAG_STORE_DIR": str(isolated / "ingest-store")})
    assert ingested.returncode == 0, ingested.stderr
    assert "(index gen-000001)" in ingested.stdout
    # Nothing of the index is in the ingest's store folder but caches: the replicas never see it anyway.
    assert not list((isolated / "ingest-store").glob("gen-*"))

    with contextlib.ExitStack() as stack:
        replicas = []
        for n in (1, 2):
            port = free_port()
            # Its own store folder, and no corpus: the replica has no file of the ingest's machine.
            env = {**shared, "RAG_STORE_DIR": str(isolated / f"replica-{n}"),
                   "RAG_CORPUS_DIR": str(isolated / "no-corpus-here")}
            process = stack.enter_context(rag_serve(port, isolated / f"replica-{n}.log", "--workers", "1", env=env))
            replicas.append((f"http://127.0.0.1:{port}", process))
        processes = [process for _, process in replicas]
        for url, _ in replicas:
            _wait(lambda: _health(url).get("status") == "ready", 180, "a replica", processes)
            assert _health(url)["generation"] == "gen-000001" and _health(url)["articles"] == 2
        for question in (CUBA_QUESTION, ARGENTINA_QUESTION, LAO_QUESTION):
            first, second = (_ask(url, question) for url, _ in replicas)
            assert first == second, question
        cuba = _ask(replicas[0][0], CUBA_QUESTION)
        assert cuba["short"] == "Nguyễn Thị Tuyến" and CUBA in {c["doc_id"] for c in cuba["citations"]}
        assert LAO not in {c["doc_id"] for c in _ask(replicas[0][0], LAO_QUESTION)["citations"]}
        for n in (1, 2):  # each replica counted the BM25 side from the server and cached it
            assert sorted(p.name for p in (isolated / f"replica-{n}").iterdir()) == ["seg-000001"]

        (corpus / f"{LAO}.txt").write_text(LAO_ARTICLE, encoding="utf-8")
        ingested = run_rag("ingest", "--quiet", env={**shared, "RAG_STORE_DIR": str(isolated / "ingest-store")})
        finished = time.monotonic()
        assert ingested.returncode == 0, ingested.stderr
        assert "(index gen-000002)" in ingested.stdout

        def answers_it(url):
            body = _ask(url, LAO_QUESTION)
            return LAO in {c["doc_id"] for c in body["citations"]} and "350" in body["answer"] and body

        answers = [_wait(lambda: answers_it(url), 30, "the new article", processes) for url, _ in replicas]
        seconds = time.monotonic() - finished
        assert answers[0] == answers[1]
        for url, _ in replicas:
            assert _health(url)["generation"] == "gen-000002" and _health(url)["articles"] == 3
            assert _ask(url, CUBA_QUESTION)["short"] == "Nguyễn Thị Tuyến"
        print(f"both replicas answered the new article {seconds:.1f} s after the ingest")


def test_a_generation_a_replica_serves_stays_on_the_server_until_its_lease_goes(corpus, settings, e5,
                                                                              chroma_server, monkeypatch):
    from rag import remote
    from rag.index import VectorIndex, ingest

    monkeypatch.setattr(remote, "LEASE_SECONDS", 2.0)
    monkeypatch.setattr(remote, "HEARTBEAT_SECONDS", 0.3)
    remote_settings = settings.with_(chroma_url=chroma_server)
    first = ingest(remote_settings, e5, **QUIET).generation
    store = remote.RemoteStore(settings.store_dir, chroma_server)

    def generations():
        return sorted(m["name"] for m in store.meta.get(where={"kind": "generation"})["metadatas"])

    def segments():
        return sorted({c.name for c in store.client.list_collections() if c.name.startswith("seg-")})

    # A replica elsewhere (its own store folder) serving the first generation.
    reader = VectorIndex.open(remote_settings.with_(store_dir=settings.store_dir.parent / "reader"), e5)
    try:
        (corpus / f"{LAO}.txt").write_text(LAO_ARTICLE, encoding="utf-8")
        second = ingest(remote_settings, e5, **QUIET).generation
        (corpus / f"{LAO}.txt").write_text(LAO_ARTICLE.replace("350", "360"), encoding="utf-8")
        third = ingest(remote_settings, e5, **QUIET).generation
        assert generations() == [first, second, third]  # the second was live a moment ago
        time.sleep(2.5)  # past the lease time: the reader's lease was renewed meanwhile
        assert ingest(remote_settings, e5, **QUIET).generation == third  # nothing changed; it cleans up
        assert generations() == [first, third]
        assert reader.generation == first and reader.search(CUBA_QUESTION, k=1)[0].doc_id == CUBA
        assert LAO not in {hit.doc_id for hit in reader.search(LAO_QUESTION, k=4)}
    finally:
        reader.close()
    ingest(remote_settings, e5, **QUIET)
    assert generations() == [third]
    live = set(store.read_manifest(store.current())["segments"])
    assert segments() == sorted(f"{name}-{kind}" for name in live for kind in ("passages", "sentences"))
    assert sorted(p.name for p in settings.store_dir.glob("seg-*")) == sorted(live)  # the caches follow
