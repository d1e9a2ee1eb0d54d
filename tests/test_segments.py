"""Generations made of segments (rag.segments): an ingest writes only what changed, nothing
published is written again, and an index of several segments answers as one index would."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import ARGENTINA, CUBA, SEED_CORPUS

from rag.index import Store, VectorIndex, ingest
from rag.lexical import LexicalIndex, SegmentTerms, tokens
from rag.segments import to_merge

QUIET = {"progress": False, "log": lambda message: None}
LAO = "ha-noi-vieng-chan"
LAO_TEXT = ("Đoàn đại biểu Hà Nội thăm Viêng Chăn\n\nChiều 12/3, đoàn đại biểu thành phố Hà Nội đã đến thủ đô "
            "Viêng Chăn của Lào. Nhân dịp này, Hà Nội trao tặng Viêng Chăn 350 bộ máy tính cho các trường tiểu học.\n")
QUESTIONS = ["Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?", "Hà Nội tặng La Habana bao nhiêu tấn gạo?",
             "Who did the delegation meet in Peru?", "ha noi tang vieng chan bao nhieu may tinh"]


def _listing(folder):
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file())


def test_merging_follows_the_logarithmic_method():
    assert to_merge([], 16) == 0
    assert to_merge([160_000], 16) == 0  # a large base is left alone
    assert to_merge([160_000, 16], 16) == 1  # two alike become one
    assert to_merge([160_000, 48], 16) == 0
    assert to_merge([160_000, 48, 16], 16) == 2  # 16 + 16, then 48 <= 2 * 32
    assert to_merge([100, 40], 30) == 2


@pytest.mark.parametrize("cached", ["no", "sparse", "dense"])
def test_bm25_over_segments_with_dead_passages_equals_bm25_over_the_live_ones(cached, monkeypatch):
    import bm25s

    from rag import lexical

    if cached != "no":  # every token's tf part kept between queries, two postings at most: evictions too
        monkeypatch.setattr(lexical, "CACHED_POSTINGS", 1)
        monkeypatch.setattr(lexical, "CACHE_BYTES", 24)  # two postings, or the 5 passages' vector
        monkeypatch.setattr(lexical, "DENSE_SHARE", 0.0 if cached == "dense" else 2.0)

    first = ["Hà Nội tặng 2000 tấn gạo cho La Habana.", "Hà Nội tăng cường hợp tác với La Habana.", "Đoàn tới Peru."]
    second = ["Tại Peru, đoàn làm việc với Arturo Ayala.", "Hà Nội tặng Viêng Chăn máy tính, máy tính bảng."]
    index = LexicalIndex([(SegmentTerms.build(zip("abc", first)), [True, False, True]),
                          (SegmentTerms.build(zip("de", second)), None)])
    plain = LexicalIndex([(part, mask) for part, mask in zip(index.parts, ([True, False, True], None))])
    live = {"a": first[0], "c": first[2], "d": second[0], "e": second[1]}
    reference = bm25s.BM25()
    reference.index([tokens(t) for t in live.values()], show_progress=False)
    for query in ("ha noi tang", "Peru Peru", "hợp tác La Habana", "máy tính", "Viêng Chăn") * 2:
        expected = {cid: float(x) for cid, x in zip(live, reference.get_scores(tokens(query))) if x > 0}
        assert dict(index.search(query, k=5)) == pytest.approx(expected, rel=1e-5)
        with monkeypatch.context() as uncached:  # the very same float32 sums as without a cache
            uncached.setattr(lexical, "CACHED_POSTINGS", 10**9)
            assert index.scores(query).tolist() == plain.scores(query).tolist()
    kept = list(index._impacts.values())
    assert index._cached <= (24 if cached != "no" else 0) and bool(kept) == (cached != "no")
    assert all(isinstance(v, np.ndarray) == (cached == "dense") for v in kept)
    assert index.knows("Peru") and not index.knows("cường") and "arturo" in index.exact_words()


def test_bm25_searched_from_several_threads_at_once_gives_the_same_results(monkeypatch):
    """The server lets BM25 run beside the embedding (rag.live.Serialized leaves it out), so
    searches meet in the tf-part cache, which keeps evicting here."""
    from concurrent.futures import ThreadPoolExecutor

    from rag import lexical

    monkeypatch.setattr(lexical, "CACHED_POSTINGS", 1)
    monkeypatch.setattr(lexical, "CACHE_BYTES", 400)  # a few tokens' tf parts, sparse or dense
    texts = [f"Đoàn {i} thăm Peru, Cuba và Lào; Hà Nội tặng {i} tấn gạo." for i in range(40)]
    queries = ["Peru", "ha noi tang gao", "Cuba Lào", "đoàn thăm", "3 tấn", "Viêng Chăn"] * 50
    expected = {q: LexicalIndex.build(zip(map(str, range(40)), texts)).search(q, 10) for q in set(queries)}
    index = LexicalIndex.build(zip(map(str, range(40)), texts))
    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(lambda q: index.search(q, 10), queries))
    assert found == [expected[q] for q in queries] and 0 < index._cached <= 400


def test_prepared_bm25_holds_the_common_tokens_dense_and_ranks_as_before(monkeypatch):
    from rag import lexical

    monkeypatch.setattr(lexical, "CACHED_POSTINGS", 2)
    monkeypatch.setattr(lexical, "DENSE_SHARE", 0.5)
    texts = [f"Đoàn {i} thăm Peru và Cuba; Hà Nội tặng {i} tấn gạo." for i in range(8)] + ["Viêng Chăn, Lào."] * 4
    plain = LexicalIndex.build(zip(map(str, range(12)), texts))
    prepared = LexicalIndex.build(zip(map(str, range(12)), texts))
    assert prepared.prepare() == len(prepared._impacts) > 0
    held = {token: prepared._frequency(token) for token in prepared._impacts}
    assert all(isinstance(v, np.ndarray) for v in prepared._impacts.values())
    assert min(held.values()) >= 6 and "peru" in held and "vieng" not in held  # 8 of 12, 4 of 12
    for query in ("ha noi tang gao", "Peru", "Viêng Chăn", "đoàn 3"):
        assert prepared.search(query, 5) == plain.search(query, 5)


def test_a_segments_files_are_read_ahead_when_they_fit_in_memory(tmp_path):
    from rag.segments import CHROMA, files_to_prewarm, prewarm

    (tmp_path / CHROMA / "hnsw").mkdir(parents=True)
    (tmp_path / CHROMA / "chroma.sqlite3").write_bytes(b"x" * 3000)
    (tmp_path / CHROMA / "hnsw" / "data_level0.bin").write_bytes(b"y" * 1000)
    assert [p.name for p in files_to_prewarm(tmp_path, 8000)] == ["chroma.sqlite3", "data_level0.bin"]
    assert files_to_prewarm(tmp_path, 7999) == []  # more than half the memory: left alone
    assert prewarm(tmp_path) == 4000
    assert prewarm(tmp_path / "gone") == 0


def test_an_added_article_is_a_segment_of_its_own_and_nothing_published_changes(indexed, corpus, e5, tmp_path):
    store = indexed.store_dir
    before = Store(store).manifest()
    [base] = before["segments"]
    published = _listing(store / base)
    (corpus / f"{LAO}.txt").write_text(LAO_TEXT, encoding="utf-8")
    report = ingest(indexed, e5, **QUIET)
    after = Store(store).manifest()
    [kept, added] = after["segments"]
    assert kept == base and _listing(store / base) == published  # read, never written
    assert after["articles"][LAO]["segment"] == added and after["articles"][CUBA]["segment"] == base
    index = VectorIndex.open(indexed, e5)
    try:
        assert len(index) == report.chunks_total and index._segments[added][3][0] == len(after["articles"][LAO]["chunks"])
        incremental = {q: [(h.chunk_id, h.doc_id) for h in index.search(q, k=4)] + index.lexical_search(q, k=4)
                       for q in QUESTIONS}
    finally:
        index.close()

    # The same corpus indexed from scratch: the same rankings, the same BM25 scores.
    scratch = indexed.with_(store_dir=tmp_path / "scratch")
    ingest(scratch, e5, **QUIET)
    index = VectorIndex.open(scratch, e5)
    try:
        for question, found in incremental.items():
            expected = [(h.chunk_id, h.doc_id) for h in index.search(question, k=4)] + index.lexical_search(question, k=4)
            assert found[:4] == expected[:4]
            assert dict(found[4:]) == pytest.approx(dict(expected[4:]), rel=1e-5)
    finally:
        index.close()


def test_small_segments_are_searched_in_memory_as_chroma_searches_them(indexed, corpus, e5, monkeypatch):
    from rag import index as index_module

    (corpus / f"{LAO}.txt").write_text(LAO_TEXT, encoding="utf-8")
    monkeypatch.setattr("rag.index.to_merge", lambda sizes, new: 0)  # three segments, one with dead rows
    ingest(indexed, e5, **QUIET)
    cuba = corpus / f"{CUBA}.txt"
    cuba.write_text(cuba.read_text(encoding="utf-8").replace("2000 tấn gạo", "3000 tấn gạo"), encoding="utf-8")
    ingest(indexed, e5, **QUIET)
    vectors = [e5.embed_query(q) for q in QUESTIONS + ["Hà Nội tặng La Habana 2000 tấn gạo"]]

    def nearest(small: int) -> list:
        monkeypatch.setattr(index_module, "SMALL_SEGMENT", small)
        index = VectorIndex.open(indexed, e5)
        try:
            assert len(index._segments) == 3 and len(index._small) == (3 if small else 0)
            return [index.sentence_search_vector(v, k=12) for v in vectors]
        finally:
            index.close()

    in_memory, chroma = nearest(10_000), nearest(0)
    for mine, theirs in zip(in_memory, chroma):
        assert [(cid, sid) for cid, sid, _ in mine] == [(cid, sid) for cid, sid, _ in theirs]
        assert [sim for *_, sim in mine] == pytest.approx([sim for *_, sim in theirs], abs=1e-5)
    index = VectorIndex.open(indexed, e5)
    try:  # the dead sentence is found by neither; its live passage is
        texts = {cid: index.get([cid])[0].text for row in in_memory for cid, _, _ in row}
        assert any("3000 tấn gạo" in t for t in texts.values()) and not any("2000 tấn" in t for t in texts.values())
    finally:
        index.close()


def test_an_updated_article_leaves_its_old_passages_dead_then_merged_away(indexed, corpus, e5, monkeypatch):
    (corpus / f"{LAO}.txt").write_text(LAO_TEXT, encoding="utf-8")
    ingest(indexed, e5, **QUIET)  # a small segment beside the seed's
    path = corpus / f"{LAO}.txt"
    path.write_text(LAO_TEXT.replace("350 bộ", "360 bộ"), encoding="utf-8")
    report = ingest(indexed, e5, **QUIET)
    assert report.updated == [LAO] and report.sentences_embedded == 1  # the changed sentence only
    manifest = Store(indexed.store_dir).manifest()
    assert manifest["segments"] == ["seg-000001", "seg-000003"]  # the first Lao segment merged away
    assert sorted(p.name for p in indexed.store_dir.glob("seg-*")) == manifest["segments"]

    # The seed's segment is not merged here (as a large one would not be): Cuba's old passages stay in it.
    monkeypatch.setattr("rag.index.to_merge", lambda sizes, new: 0)
    path = corpus / f"{CUBA}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("2000 tấn gạo", "3000 tấn gạo"), encoding="utf-8")
    ingest(indexed, e5, **QUIET)
    index = VectorIndex.open(indexed, e5)
    try:
        # Dead, they are never found.
        assert index._segments["seg-000001"][3][0] > len(index.manifest["articles"][ARGENTINA]["chunks"])
        [hit] = index.search("Hà Nội tặng La Habana bao nhiêu tấn gạo?", k=1)
        assert "3000 tấn gạo" in hit.text
        texts = [h.text for h in index.passages()]
        assert len(texts) == len(index) and not any("2000 tấn gạo" in t for t in texts)
        assert [h.doc_id for h in index.passages({"doc_id": CUBA})] == [CUBA] * len(index.article(CUBA))
        assert all("2000 tấn" not in index.get([cid])[0].text for cid, _ in index.lexical_search("2000 tấn gạo", 10))
        assert "360" in index.search("Hà Nội tặng Viêng Chăn bao nhiêu bộ máy tính?", k=1)[0].text
    finally:
        index.close()


def test_an_index_made_before_segments_is_served_and_rewritten_without_embedding(corpus, settings, seed_store, e5):
    """The layout of earlier versions: one Chroma folder in the generation, format 1."""
    manifest = json.loads((seed_store / "gen-000001" / "manifest.json").read_text(encoding="utf-8"))
    [segment] = manifest.pop("segments")
    manifest["format"] = 1
    for entry in manifest["articles"].values():
        del entry["segment"]
    old = settings.store_dir / "gen-000001"
    shutil.copytree(seed_store / segment / "chroma", old / "chroma")
    (old / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    (settings.store_dir / "CURRENT").write_text("gen-000001\n", encoding="utf-8")

    index = VectorIndex.open(settings, e5)
    try:
        assert index.search(QUESTIONS[0], k=1)[0].doc_id == CUBA and index.lexical_search("Arturo Ayala", 1)
    finally:
        index.close()
    report = ingest(settings, e5, **QUIET)
    assert report.sentences_embedded == 0 and report.generation == "gen-000002"
    assert not old.exists() and Store(settings.store_dir).manifest()["format"] == 2
    assert SEED_CORPUS.is_dir()


def test_an_ingest_reads_only_new_and_changed_files(indexed, corpus, e5, monkeypatch):
    import os

    from rag import corpus as corpus_module

    past = 1_600_000_000 * 10**9
    for path in corpus.iterdir():
        os.utime(path, ns=(past, past))
    assert ingest(indexed, e5, **QUIET).unchanged  # nothing to do, and the files are remembered
    read = []
    load_file = corpus_module._load_file
    monkeypatch.setattr(corpus_module, "_load_file", lambda path, rel, *rest: read.append(rel) or load_file(path, rel, *rest))
    (corpus / f"{LAO}.txt").write_text(LAO_TEXT, encoding="utf-8")
    report = ingest(indexed, e5, **QUIET)
    assert read == [f"{LAO}.txt"] and report.added == [LAO] and sorted(report.unchanged) == sorted([CUBA, ARGENTINA])

    read.clear()
    path = corpus / f"{CUBA}.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("2000 tấn gạo", "3000 tấn gạo"), encoding="utf-8")
    report = ingest(indexed, e5, **QUIET)
    assert f"{CUBA}.txt" in read and f"{ARGENTINA}.txt" not in read and report.updated == [CUBA]
    assert ingest(indexed.with_(max_article_bytes=4_000_000), e5, **QUIET).generation == report.generation
    assert f"{ARGENTINA}.txt" in read  # another size limit: every file read again
