import numpy as np
import pytest
from conftest import ARGENTINA, CUBA

from rag.lexical import LexicalIndex, best_first, tokens
from rag.retrieval import Retriever, cut_at_step, fused_order, reciprocal_rank_fusion, tied_ranks


def test_reciprocal_rank_fusion_by_hand():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60)
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 63, "d": 1 / 62})
    assert max(fused, key=fused.get) == "b"


def test_weighted_fusion_by_hand():
    fused = reciprocal_rank_fusion([["a", "b"], ["b", "a"]], k=5, weights=[1.0, 1.2])
    assert fused == pytest.approx({"a": 1 / 6 + 1.2 / 7, "b": 1 / 7 + 1.2 / 6})
    assert max(fused, key=fused.get) == "b"  # the second ranking weighs more: its first wins


def test_reciprocal_rank_fusion_with_shared_ranks_and_exact_ties():
    fused = reciprocal_rank_fusion([[("a", 1), ("b", 1), ("c", 3)], ["c", "a"]], k=60)
    assert fused == pytest.approx({"a": 1 / 61 + 1 / 62, "b": 1 / 61, "c": 1 / 63 + 1 / 61})
    # Ranks 1 and 2 against 2 and 1: the very same float, whichever ranking comes first.
    swapped = reciprocal_rank_fusion([["x", "y", "z"], ["y", "x", "z"]])
    assert swapped["x"] == swapped["y"]
    many = [[f"p{i}" for i in range(40)], [f"p{i}" for i in reversed(range(40))]]
    assert len(set(reciprocal_rank_fusion(many).values())) == 20


def test_tied_ranks_share_a_rank_within_a_step_and_list_ties_by_id():
    scores = [("a", 0.8001), ("d", 0.8102), ("c", 0.7981), ("b", 0.79996)]
    assert tied_ranks(scores, 1e-3) == [("d", 1), ("a", 2), ("b", 2), ("c", 4)]
    assert tied_ranks(scores, 1e-5) == [("d", 1), ("a", 2), ("b", 3), ("c", 4)]
    assert tied_ranks([], 1e-3) == []
    # What another CPU does: the same ranks for similarities moved by up to 1e-4.
    moved = [(item, score + delta) for (item, score), delta in zip(scores, (-1e-4, 1e-4, 1e-4, 1e-4))]
    assert tied_ranks(moved, 1e-3) == tied_ranks(scores, 1e-3)


def test_tied_ranks_do_not_move_with_noise_unless_a_score_crosses_a_step():
    rng = np.random.default_rng(0)
    step, noise, ids = 1e-3, 1e-4, [f"c{i:02d}" for i in range(10)]
    checked = 0
    for _ in range(200):
        scores = rng.uniform(0.80, 0.81, size=10)  # 10 similarities in 10 steps: ties and near ties
        moved = scores + rng.uniform(-noise, noise, size=10)
        if np.array_equal(np.round(scores / step), np.round(moved / step)):
            assert tied_ranks(zip(ids, moved), step) == tied_ranks(zip(ids, scores), step)
            checked += 1
    assert checked > 40


def test_cut_at_step_keeps_a_tie_at_the_cut_whole():
    scores = [0.9, 0.85, 0.8004, 0.8001, 0.7996, 0.7994, 0.7]
    assert cut_at_step(scores, 3, 1e-3) == 5  # 0.8004, 0.8001 and 0.7996 are all 0.800
    assert cut_at_step(scores, 2, 1e-3) == 2
    assert cut_at_step(scores, 7, 1e-3) == cut_at_step(scores, 9, 1e-3) == 7
    assert cut_at_step([], 3, 1e-3) == 0


def test_fused_order_breaks_ties_by_the_first_ranking_then_the_next_then_id():
    dense, lexical = [("x", 1), ("y", 2), ("u", 3), ("v", 3)], [("y", 1), ("x", 2), ("v", 3), ("u", 3), ("w", 5)]
    fused = reciprocal_rank_fusion([dense, lexical])
    assert fused["x"] == fused["y"] and fused["u"] == fused["v"]
    assert fused_order(fused, [dense, lexical]) == ["x", "y", "u", "v", "w"]
    assert fused_order(fused, [lexical, dense]) == ["y", "x", "u", "v", "w"]
    assert fused_order(fused) == ["x", "y", "u", "v", "w"]  # by id alone


def test_best_first_orders_equal_scores_by_index_also_at_the_cut():
    scores = np.array([1.0, 3.0, 3.0, 2.0, 3.0, 2.0])
    assert best_first(scores, 2).tolist() == [1, 2]
    assert best_first(scores, 4).tolist() == [1, 2, 4, 3]
    assert best_first(scores, 10).tolist() == [1, 2, 4, 3, 5, 0]
    assert best_first(scores, 0).tolist() == [] and best_first(np.array([]), 3).tolist() == []
    ties = np.full(1000, 0.5)
    assert best_first(ties, 5).tolist() == [0, 1, 2, 3, 4]


def test_lexical_search_lists_equal_scores_in_index_order():
    same = "Đoàn thăm Peru."
    index = LexicalIndex.build(zip(["b", "a", "c", "d"], [same, same, same, "Lima"]))
    assert [cid for cid, _ in index.search("Peru", k=2)] == ["b", "a"]
    assert [cid for cid, _ in index.search("Peru", k=5)] == ["b", "a", "c"]


def test_tokens_fold_pair_and_keep_exact_syllables():
    assert tokens("Hà Nội tặng gạo") == [
        "ha", "noi", "tang", "gao", "ha_noi", "noi_tang", "tang_gao", "~hà", "~nội", "~tặng", "~gạo"]


def test_lexical_search_ignores_diacritics_but_prefers_exact_ones():
    index = LexicalIndex.build(zip(["gift", "raise", "other"], [
        "Hà Nội tặng 2000 tấn gạo cho La Habana.",
        "Hà Nội tăng cường hợp tác với La Habana.",
        "Đoàn làm việc tại Peru."]))
    assert index.search("ha noi tang gao", k=3)[0][0] == "gift"
    assert [cid for cid, _ in index.search("tăng cường", k=3)][0] == "raise"
    assert [cid for cid, _ in index.search("tặng", k=3)][0] == "gift"
    assert index.search("Cuba", k=3) == []


def test_lexical_index_built_from_token_ids_scores_as_bm25_over_token_strings():
    import bm25s

    texts = ["Hà Nội tặng 2000 tấn gạo cho La Habana.", "Hà Nội tăng cường hợp tác với La Habana.",
             "Đoàn làm việc tại Peru.", "", "Tại Peru, đoàn làm việc với Arturo Ayala."]
    index = LexicalIndex.build(zip("abcde", texts))
    reference = bm25s.BM25()
    reference.index([tokens(t) for t in texts], show_progress=False)
    for query in ("ha noi tang gao", "Peru", "đoàn làm việc với", "tăng cường"):
        expected = {cid: float(x) for cid, x in zip("abcde", reference.get_scores(tokens(query))) if x > 0}
        assert dict(index.search(query, k=5)) == pytest.approx(expected)


def test_lexical_index_survives_save_and_load(tmp_path):
    index = LexicalIndex.build(zip(["a", "b"], ["Buenos Aires", "La Habana"]))
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded.search("habana", k=2) == index.search("habana", k=2) and loaded.chunk_ids == ["a", "b"]


def test_lexical_index_knows_a_word_by_its_syllables_as_written_and_side_by_side():
    index = LexicalIndex.build(zip(["a", "b"], ["Đoàn Phó Bí thư thăm Thủ đô", "Hộ tống chiếu cố"]))
    assert index.knows_word(["Phó", "Bí", "thư"]) and index.knows_word(["thủ", "đô"])
    assert not index.knows_word(["hộ", "chiếu"])  # each syllable is there, never side by side
    assert not index.knows_word(["phở"])  # the "Phó" of "Phó Bí thư" folds like it
    assert index.knows_word(["thăm"]) and not index.knows_word(["tham", "thủ"])
    # Typed without diacritics: each syllable folded, wherever it stands.
    assert index.knows_folded(["pho"]) and index.knows_folded(["thu", "ho"])
    assert not index.knows_folded(["hello"]) and not index.knows_folded(["thu", "hello"])


def test_lexical_index_knows_which_tokens_built_it(tmp_path, monkeypatch):
    from rag import lexical

    assert not LexicalIndex.is_current(tmp_path / "bm25")
    LexicalIndex.build(zip(["a"], ["La Habana"])).save(tmp_path / "bm25")
    assert LexicalIndex.is_current(tmp_path / "bm25")
    monkeypatch.setattr(lexical, "TOKENS_VERSION", "2")
    assert not LexicalIndex.is_current(tmp_path / "bm25")
    monkeypatch.setattr(lexical, "TOKENS_VERSION", "1")
    (tmp_path / "bm25" / "tokens_version").unlink()  # an index saved before the version was recorded
    assert LexicalIndex.is_current(tmp_path / "bm25")


@pytest.mark.parametrize("question, doc_id, fact", [
    ("ha noi tang la habana bao nhieu tan gao", CUBA, "2000 tấn gạo"),
    ("How many tonnes of rice did Hanoi give to Havana?", CUBA, "2000 tấn gạo"),
    ("Who did the delegation meet in Peru?", ARGENTINA, "Arturo Ayala"),
    ("Who led the Hanoi delegation to Cuba?", CUBA, "Nguyễn Thị Tuyến"),
    ("Tổng Bí thư Đảng Cộng sản Argentina là ai?", ARGENTINA, "Victor Gorodeki Kot"),
    ("Hà Nội và La Habana ký biên bản ghi nhớ năm nào?", CUBA, "2000 và 2005"),
])
def test_hybrid_search_reaches_the_passage_with_the_fact(indexed, e5, question, doc_id, fact):
    from rag.index import VectorIndex

    index = VectorIndex.open(indexed, e5)
    try:
        hits = Retriever(index).search(question, k=3)
        assert hits[0].doc_id == doc_id
        assert any(fact in hit.text for hit in hits), [h.text[:80] for h in hits]
        assert hits == sorted(hits, key=lambda h: -h.score)
    finally:
        index.close()


def test_each_side_alone_and_unknown_modes(indexed, e5):
    from rag.index import VectorIndex

    index = VectorIndex.open(indexed, e5)
    try:
        # Only the lexical side can match a syllable string; only the dense side an English paraphrase.
        assert Retriever(index, "lexical").search("Gorodeki", k=1)[0].doc_id == ARGENTINA
        assert Retriever(index, "lexical").search("rice tonnes", k=1) == []
        # ... unless the English question goes through the glossary: "rice" -> "gạo", "tonnes" -> "tấn"
        assert "2000 tấn gạo" in Retriever(index, "lexical").search("How many tonnes of rice did Hanoi give?", k=1)[0].text
        assert Retriever(index, "dense").search("rice tonnes given to Havana", k=1)[0].doc_id == CUBA
        with pytest.raises(ValueError, match="RAG_RETRIEVAL"):
            Retriever(index, "sparse")
    finally:
        index.close()


def test_bm25_beside_a_one_core_embedding_or_after_an_all_core_one_finds_the_same(indexed, e5, monkeypatch):
    from rag.index import VectorIndex

    index = VectorIndex.open(indexed, e5)
    questions = ["Who led the Hanoi delegation to Cuba?", "ha noi tang la habana bao nhieu tan gao",
                 "Tổng Bí thư Đảng Cộng sản Argentina là ai?"]
    try:
        found = {}
        for cores in (1, 2):
            monkeypatch.setattr(e5, "cores", cores)
            found[cores] = [Retriever(index).search(question, k=4) for question in questions]
        assert found[1] == found[2] and all(found[1])
    finally:
        index.close()


def test_near_duplicate_by_hand():
    from rag.retrieval import is_near_duplicate, shingles

    caption = "Cuộc hội đàm giữa Đoàn đại biểu thành phố Hà Nội và Thành ủy La Habana. (Ảnh: Minh Thu)"
    assert shingles("Hà Nội tặng gạo") == {("ha", "noi", "tang"), ("noi", "tang", "gao")}
    assert is_near_duplicate(shingles(caption), shingles(caption.upper().replace("Minh Thu", "M. Thu")))
    assert not is_near_duplicate(shingles(caption), shingles("Đoàn tới Peru và gặp Arturo Ayala tại Lima."))
    assert not is_near_duplicate(set(), set())


def test_a_syndicated_copy_is_not_returned_twice(corpus, indexed, e5):
    from rag.index import VectorIndex, ingest

    original = (corpus / f"{CUBA}.txt").read_text(encoding="utf-8")
    # The same story from another outlet: another title, source line and a lead of its own (a copy
    # of the very same text would be the same article, loaded once: issue 13), so its passages
    # share most of their text with the original's.
    copy = original.replace("Tiếp tục thúc đẩy", "Hà Nội và La Habana: tiếp tục thúc đẩy", 1).replace(
        "Nguồn LĐTĐ: https://laodongthudo.vn/", "Nguồn: https://hanoimoi.vn/").replace(
        "\n", "\nBáo Hà Nội Mới đăng lại bài viết của báo Lao Động Thủ Đô.\n", 1)
    (corpus / "ban-sao-hanoimoi.txt").write_text(copy, encoding="utf-8")
    ingest(indexed, e5, progress=False, log=lambda m: None)
    index = VectorIndex.open(indexed, e5)
    try:
        hits = Retriever(index).search("Hà Nội tặng La Habana bao nhiêu tấn gạo?", k=4)
        assert len(hits) == 4
        # Both outlets' copies of the top passage are in the index; only one is returned.
        twins = [h for h in index.passages() if h.text == hits[0].text]
        assert {h.doc_id for h in twins} == {CUBA, "ban-sao-hanoimoi"}
        assert len({h.text for h in hits}) == len(hits)
    finally:
        index.close()


def test_filters_where_by_hand():
    from rag.retrieval import Filters

    assert Filters().where() is None
    assert Filters(outlet="Nhân Dân").where() == {"outlet": "Nhân Dân"}
    assert Filters(doc_ids=("a", "b"), since="2022-11-01", until="2023-01-31").where() == {"$and": [
        {"doc_id": {"$in": ["a", "b"]}}, {"date_num": {"$gte": 20221101}}, {"date_num": {"$lte": 20230131}}]}
    with pytest.raises(ValueError, match="yyyy-mm-dd"):
        Filters(since="1/11/2022").where()


@pytest.fixture
def dated_index(corpus, settings, e5):
    """The seed corpus (undated) plus two dated articles from two outlets."""
    from rag.index import VectorIndex, ingest

    (corpus / "lao.md").write_text(
        "---\ntitle: Đoàn Hà Nội thăm Lào\nsource: Nhân Dân\ndate: 2023-05-04\n---\n"
        "Đoàn đại biểu thành phố Hà Nội đã thăm Viêng Chăn và tặng 500 tấn gạo.\n", encoding="utf-8")
    (corpus / "campuchia.md").write_text(
        "---\ntitle: Đoàn Hà Nội thăm Campuchia\nsource: Hà Nội Mới\ndate: 2022-10-01\n---\n"
        "Đoàn đại biểu thành phố Hà Nội đã thăm Phnôm Pênh và tặng 300 tấn gạo.\n", encoding="utf-8")
    ingest(settings, e5, progress=False, log=lambda m: None)
    index = VectorIndex.open(settings, e5)
    yield index
    index.close()


@pytest.mark.parametrize("filters, expected", [
    ({}, {"lao", "campuchia", CUBA, ARGENTINA}),
    ({"since": "2023-01-01"}, {"lao"}),
    ({"until": "2022-12-31"}, {"campuchia"}),
    ({"since": "2022-01-01", "until": "2023-12-31"}, {"lao", "campuchia"}),  # undated never match
    ({"outlet": "Hà Nội Mới"}, {"campuchia"}),
    ({"doc_ids": (CUBA, "lao")}, {CUBA, "lao"}),
])
def test_filters_restrict_both_sides_of_retrieval(dated_index, filters, expected):
    from rag.retrieval import Filters

    for mode in ("dense", "lexical", "hybrid"):
        hits = Retriever(dated_index, mode, filters=Filters(**filters)).search("Hà Nội tặng bao nhiêu tấn gạo?", k=8)
        assert hits and {h.doc_id for h in hits} <= expected, mode
    if len(expected) < 4:
        hybrid = Retriever(dated_index, filters=Filters(**filters)).search("tặng gạo", k=8)
        assert {h.doc_id for h in hybrid} == expected
