"""Ingestion with the real e5 embedder and a real Chroma on disk."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from conftest import ARGENTINA, CUBA, SEED_CORPUS

from rag.index import IndexMismatchError, IndexMissingError, Store, VectorIndex, ingest

QUIET = {"progress": False, "log": lambda message: None}


def _ids_by_doc(settings, e5) -> dict[str, set[str]]:
    index = VectorIndex.open(settings, e5)
    try:
        by_doc: dict[str, set[str]] = {}
        for hit in index.passages():
            by_doc.setdefault(hit.doc_id, set()).add(hit.chunk_id)
        return by_doc
    finally:
        index.close()


def test_ingest_builds_a_searchable_index_and_reingest_embeds_nothing(corpus, settings, e5):
    first = ingest(settings, e5, **QUIET)
    assert sorted(first.added) == sorted([CUBA, ARGENTINA]) and first.ok
    assert first.chunks_added == first.chunks_total > 20
    assert first.sentences_embedded >= first.chunks_total  # every sentence once, overlaps not again

    manifest = Store(settings.store_dir).manifest()
    assert manifest["embedder"] == {"name": "e5-small-q4", "dimension": 384}
    assert set(manifest["articles"]) == {CUBA, ARGENTINA}

    second = ingest(settings, e5, **QUIET)
    assert sorted(second.unchanged) == sorted([CUBA, ARGENTINA])
    assert (second.added, second.updated, second.removed) == ([], [], [])
    assert second.sentences_embedded == 0 and second.chunks_added == 0
    assert second.generation == first.generation

    index = VectorIndex.open(settings, e5)
    try:
        assert len(index) == first.chunks_total
        hits = index.search("Hà Nội tặng La Habana bao nhiêu tấn gạo?", k=3)
        assert any("2000 tấn gạo" in h.text for h in hits)
        top = hits[0]
        assert top.doc_id == CUBA and top.url.startswith("https://laodongthudo.vn/")
        assert top.title.startswith("Tiếp tục thúc đẩy") and 0 < top.score <= 1
    finally:
        index.close()


def test_another_passage_size_chunks_the_unchanged_files_again(corpus, settings, e5):
    first = ingest(settings, e5, **QUIET)
    smaller = ingest(settings.with_(chunk_words=40), e5, **QUIET)
    # The files did not change, the chunking did: both articles are chunked again, their
    # sentences (the same ones) not embedded again.
    assert sorted(smaller.updated) == sorted([CUBA, ARGENTINA]) and smaller.chunks_total > first.chunks_total
    assert smaller.sentences_embedded == 0
    index = VectorIndex.open(settings.with_(chunk_words=40), e5)
    try:
        assert len(index) == smaller.chunks_total
    finally:
        index.close()


def test_editing_one_article_replaces_only_its_changed_passages(corpus, indexed, e5):
    settings = indexed
    before = _ids_by_doc(settings, e5)
    path = corpus / f"{CUBA}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("2000 tấn gạo", "3000 tấn gạo"), encoding="utf-8")

    report = ingest(settings, e5, **QUIET)
    assert report.updated == [CUBA] and report.unchanged == [ARGENTINA]
    after = _ids_by_doc(settings, e5)
    assert after[ARGENTINA] == before[ARGENTINA]
    replaced = before[CUBA] - after[CUBA]
    assert 1 <= len(replaced) <= 2 and report.chunks_added == len(after[CUBA] - before[CUBA])
    assert report.chunks_deleted == len(replaced)
    assert report.sentences_embedded == 1  # only the edited sentence

    index = VectorIndex.open(settings, e5)
    try:
        texts = " ".join(h.text for h in index.passages({"doc_id": CUBA}))
        assert "3000 tấn gạo" in texts and "2000 tấn gạo" not in texts
    finally:
        index.close()


def test_deleting_an_article_removes_its_passages(corpus, indexed, e5):
    settings = indexed
    (corpus / f"{ARGENTINA}.txt").unlink()
    report = ingest(settings, e5, **QUIET)
    assert report.removed == [ARGENTINA] and report.sentences_embedded == 0
    index = VectorIndex.open(settings, e5)
    try:
        assert index.passages({"doc_id": ARGENTINA}) == []
        assert {h.doc_id for h in index.passages()} == {CUBA}
        assert all(h.doc_id == CUBA for h in index.search("Đoàn làm việc ở Peru với ai?", k=5))
    finally:
        index.close()
    assert set(Store(settings.store_dir).manifest()["articles"]) == {CUBA}


def test_broken_files_are_reported_skipped_and_lose_nothing(corpus, indexed, e5):
    settings = indexed
    (corpus / "broken.txt").write_bytes(b"\xff\xfe\x00 not utf-8 \xc3\x28")
    (corpus / "new.md").write_text("---\ntitle: Đoàn Hà Nội thăm Lào\n---\nĐoàn đã tới Viêng Chăn ngày 4/5.\n",
                                   encoding="utf-8")
    # An article that was indexed before and whose file is now unreadable keeps its passages.
    (corpus / f"{ARGENTINA}.txt").write_bytes(b"\xc3\x28" * 10)

    report = ingest(settings, e5, **QUIET)
    assert not report.ok
    assert sorted(f.path for f in report.failed) == ["broken.txt", f"{ARGENTINA}.txt"]
    assert report.added == ["new"] and report.removed == []
    assert set(_ids_by_doc(settings, e5)) == {CUBA, ARGENTINA, "new"}


@pytest.mark.slow
def test_a_different_embedder_is_refused_until_rebuild(corpus, indexed, e5, minilm):
    settings = indexed
    with pytest.raises(IndexMismatchError, match=r"rag ingest --rebuild"):
        VectorIndex.open(settings, minilm)
    with pytest.raises(IndexMismatchError, match="e5-small-q4"):
        ingest(settings, minilm, **QUIET)

    report = ingest(settings, minilm, rebuild=True, **QUIET)
    assert sorted(report.added) == sorted([CUBA, ARGENTINA]) and report.chunks_added == report.chunks_total
    index = VectorIndex.open(settings, minilm)
    try:
        assert len(index) == report.chunks_total
        assert index.search("Cuba", k=1)[0].doc_id == CUBA
    finally:
        index.close()
    with pytest.raises(IndexMismatchError):
        VectorIndex.open(settings, e5)


def test_opening_a_missing_index_says_how_to_build_it(settings, e5):
    with pytest.raises(IndexMissingError, match="rag ingest"):
        VectorIndex.open(settings, e5)


@pytest.mark.slow
def test_an_ingest_killed_midway_leaves_the_old_index_usable_and_a_rerun_resumes(corpus, indexed, e5):
    settings = indexed
    old_manifest = Store(settings.store_dir).manifest()
    # A bigger change, so the kill lands while passages are being embedded.
    for n in range(3):
        text = (SEED_CORPUS / f"{ARGENTINA}.txt").read_text(encoding="utf-8")
        (corpus / f"copy-{n}.txt").write_text(f"Bản sao {n}: " + text.replace("Peru", f"Peru {n}"),
                                              encoding="utf-8")
    journal = settings.store_dir / ".pending-embeddings.sqlite"
    env = {**os.environ, "RAG_EMBED_BATCH": "2"}
    process = subprocess.Popen([sys.executable, "-m", "rag.cli", "ingest", "--quiet"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if _journal_rows(journal) >= 4:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the ingest finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_after = _journal_rows(journal)
    assert killed_after >= 4

    # The previous generation is still the live one, complete and searchable.
    assert Store(settings.store_dir).manifest() == old_manifest
    index = VectorIndex.open(settings, e5)
    try:
        assert {h.doc_id for h in index.passages()} == {CUBA, ARGENTINA}
        assert index.search("Ai dẫn đầu đoàn thăm Cuba?", k=1)[0].doc_id == CUBA
    finally:
        index.close()

    report = ingest(settings, e5, **QUIET)
    assert sorted(report.added) == ["copy-0", "copy-1", "copy-2"]
    assert report.sentences_resumed >= killed_after  # committed batches survive the kill
    assert not journal.exists()
    assert set(_ids_by_doc(settings, e5)) == {CUBA, ARGENTINA, "copy-0", "copy-1", "copy-2"}
    leftovers = [p.name for p in settings.store_dir.iterdir() if p.name.startswith(".staging")]
    assert leftovers == []


def _journal_rows(path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.1) as db:
            return db.execute("SELECT count(*) FROM vectors").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_an_articles_passages_come_by_their_ids_in_order(indexed, e5):
    index = VectorIndex.open(indexed, e5)
    try:
        article = index.article(CUBA)
        assert article == index.passages({"doc_id": CUBA})  # the same as a metadata filter, faster
        assert [h.position for h in article] == list(range(len(article))) and len(article) > 3
        assert index.article("no-such-article") == []
    finally:
        index.close()


def test_new_lexical_tokens_rebuild_the_bm25_index_and_embed_nothing(indexed, e5, monkeypatch):
    from rag import lexical

    live = Store(indexed.store_dir).current()
    assert ingest(indexed, e5, **QUIET).generation == live.name  # nothing changed: nothing written
    monkeypatch.setattr(lexical, "TOKENS_VERSION", "test")
    report = ingest(indexed, e5, **QUIET)
    assert report.generation != live.name and report.sentences_embedded == report.chunks_added == 0
    assert (report.added, report.updated, report.removed) == ([], [], [])
    manifest = Store(indexed.store_dir).manifest()
    assert all(lexical.LexicalIndex.is_current(indexed.store_dir / name / "terms") for name in manifest["segments"])
    assert ingest(indexed, e5, **QUIET).generation == report.generation
