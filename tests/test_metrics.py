"""Scoring functions of `rag eval`, with expectations computed by hand."""
import math
import unicodedata

import pytest

from rag.metrics import (abstention_scores, article_rank, best_exact_match, best_f1, contains_answer,
                         exact_match, folded_key, hit_at, is_english, mean, ndcg_at, parse_thresholds,
                         passage_rank, percentile, reciprocal_rank, share, squad_normalize, strict_key,
                         strip_citations, token_f1, unmet)


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def test_rank_metrics_by_hand():
    assert [hit_at(r, 3) for r in (1, 3, 4, None)] == [1, 1, 0, 0]
    assert [reciprocal_rank(r) for r in (1, 4, None)] == [1, 0.25, 0]
    assert ndcg_at(1) == 1 and ndcg_at(3) == pytest.approx(1 / math.log2(4)) == pytest.approx(0.5)
    assert ndcg_at(10) == pytest.approx(1 / math.log2(11)) and ndcg_at(11) == 0 and ndcg_at(None) == 0


def test_article_rank_counts_distinct_articles():
    assert article_rank(["a", "a", "b", "a", "c"], "c") == 3
    assert article_rank(["a", "b"], "z") is None


def test_passage_rank_is_the_first_passage_holding_a_gold_answer():
    passages = ["Đoàn thăm Peru.", "Hà Nội tặng 12000 tấn gạo.", "Hà Nội tặng 2000 TẤN GẠO."]
    assert passage_rank(passages, ["2000 tấn gạo"]) == 3  # "12000 tấn gạo" is not "2000 tấn gạo"
    assert passage_rank(passages, ["peru", "2000 tấn"]) == 1
    assert passage_rank(passages, ["Cuba"]) is None


def test_strict_key_normalises_unicode_case_and_spaces_but_keeps_diacritics():
    assert strict_key(nfd("Hà  Nội\n")) == strict_key("HÀ NỘI") == "hà nội"
    assert strict_key(nfd("Hà Nội")) == unicodedata.normalize("NFC", "hà nội")  # NFD in, NFC out
    assert strict_key("Lào") != strict_key("lao")
    assert strict_key("ĐẢNG") == "đảng"


def test_folded_key_drops_diacritics_and_d_stroke():
    assert folded_key("Đà Nẵng") == "da nang"
    assert folded_key(nfd("ĐỒNG CHÍ")) == "dong chi"
    assert folded_key("Lào") == folded_key("lao") == "lao"


def test_containment_strict_and_folded():
    text = "2000 tấn gạo. [1]"
    assert contains_answer(text, ["2000 TẤN GẠO"])
    assert contains_answer(nfd("Bà Ngô Thị Thanh Hằng dẫn đầu"), ["Ngô Thị Thanh Hằng"])  # NFD answer text
    assert contains_answer("Bà Ngô Thị Thanh Hằng dẫn đầu", [nfd("ngô thị thanh hằng")])  # NFD gold answer
    # Diacritics: strict keeps them, folded drops them (Đ -> d).
    assert not contains_answer("Dang Cong san Cuba", ["Đảng Cộng sản Cuba"])
    assert contains_answer("Dang Cong san Cuba", ["Đảng Cộng sản Cuba"], folded=True)
    assert not contains_answer("Đoàn thăm Lao", ["Lào"]) and contains_answer("Đoàn thăm Lao", ["Lào"], folded=True)
    # Whole words only; any one accepted answer is enough; no answer never matches.
    assert not contains_answer("12000 tấn gạo", ["2000 tấn"]) and not contains_answer("Cubas", ["Cuba"])
    assert contains_answer("thăm Cuba.", ["Peru", "Cuba"])
    assert not contains_answer("anything", []) and not contains_answer("anything", ["  "])


def test_strip_citations():
    assert strip_citations("2000 tấn gạo [1].") == "2000 tấn gạo."
    assert strip_citations("a [1, 2] b [3-4]") == "a b"
    assert strip_citations("năm [2022] không") == "năm không"  # any bracketed number: a citation
    assert strip_citations("[a] stays") == "[a] stays"


def test_squad_normalisation_adapted_to_vietnamese():
    assert squad_normalize("Hà Nội, Việt Nam!") == "hà nội việt nam"
    assert squad_normalize(nfd("HÀ NỘI")) == squad_normalize("hà nội") == unicodedata.normalize("NFC", "hà nội")
    assert squad_normalize("“Hợp tác” – 30/10…") == "hợp tác 3010"  # Unicode punctuation too
    assert squad_normalize("an ninh lương thực") == "an ninh lương thực"  # "an" is Vietnamese
    assert squad_normalize("The Cuban side", english=True) == "cuban side"
    assert squad_normalize("The Cuban side") == "the cuban side"


def test_token_f1_and_exact_match_by_hand():
    # 3 predicted tokens, 2 gold, 2 in common: P = 2/3, R = 1, F1 = 2PR / (P + R) = 0.8
    assert token_f1("2000 tấn gạo", "2000 tấn") == pytest.approx(0.8)
    # P = 1, R = 3/4: F1 = 1.5 / 1.75 = 6/7
    assert token_f1("Nguyễn Thị Tuyến", "bà Nguyễn Thị Tuyến") == pytest.approx(6 / 7)
    # repeated tokens count once each: common = min counts = 2, P = 2/3, R = 1
    assert token_f1("hà hà nội", "hà nội") == pytest.approx(0.8)
    assert token_f1(nfd("HÀ NỘI."), "Hà Nội") == 1.0
    assert token_f1("Lào", "Lao") == 0.0  # diacritics are kept
    assert token_f1("", "Hà Nội") == 0.0 and token_f1("", "") == 1.0
    assert token_f1("the Cuban side", "Cuban side", english=True) == 1.0
    assert exact_match("  2000 Tấn!", "2000 tấn") == 1.0 and exact_match("2000 tấn gạo", "2000 tấn") == 0.0
    golds = ["2000 tấn gạo", "2000 tấn"]
    assert best_f1("2000 tấn", golds) == 1.0 and best_exact_match("2000 tấn", golds) == 1.0
    assert best_f1("gạo", golds) == pytest.approx(0.5)  # P = 1, R = 1/3 against the first gold
    assert best_f1("x", []) == 0.0


def test_is_english_looks_for_vietnamese_letters():
    assert is_english(["Denver Broncos", "1990"])
    assert not is_english(["Denver Broncos", "Hà Nội"])
    assert not is_english(["Đông"])  # đ alone marks Vietnamese
    assert is_english([])


def test_aggregates():
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([], 95) == 0
    assert share(1, 4) == 0.25 and share(0, 0) is None
    assert mean([1, 2]) == 1.5 and mean([]) is None


def test_abstention_precision_and_recall_by_hand():
    abstained = [True, True, False, True, False]
    unanswerable = [True, False, False, True, True]
    precision, recall = abstention_scores(abstained, unanswerable)
    assert precision == pytest.approx(2 / 3)  # 3 abstentions, 2 on unanswerable questions
    assert recall == pytest.approx(2 / 3)  # 3 unanswerable questions, 2 abstained on
    assert abstention_scores([False, False], [False, True]) == (None, 0.0)
    assert abstention_scores([True], [False]) == (0.0, None)


def test_thresholds_parse_and_report_the_metric_that_fails():
    valid = ["contains", "hit@5", "abstain_recall"]
    assert parse_thresholds(["contains=70", "hit@5=90.5%"], valid) == {"contains": 70.0, "hit@5": 90.5}
    with pytest.raises(ValueError, match="unknown metric 'recall'; valid metrics: contains, hit@5, abstain_recall"):
        parse_thresholds(["recall=5"], valid)
    for bad in ("contains", "contains=high", "contains=101"):
        with pytest.raises(ValueError, match="--min"):
            parse_thresholds([bad], valid)

    figures = {"contains": 0.766, "abstain_recall": None, "hit@5": 1.0}
    assert unmet(figures, {"contains": 76.6, "hit@5": 100}) == []  # compared as printed
    assert unmet(figures, {"contains": 77}) == ["contains = 76.6, below the minimum 77"]
    assert unmet(figures, {"abstain_recall": 50}) == ["abstain_recall: not measured on this set (needs at least 50)"]
