"""The answerer's sentence scorer: pure features, the shipped model, and the words it relies on."""
import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rag.evaluation import summarise
from rag.question import asked_unit, holds_unit, needs_short_answer, short_answer
from rag.scoring import (FEATURES, MODEL_PATH, NUMBER_FEATURES, Candidate, SentenceScorer, _window_share, features,
                         load_scorer, number_features)
from rag.text import segment_words

QUESTION = "Hà Nội tặng La Habana bao nhiêu tấn gạo?"
RICE = "Hà Nội tặng La Habana 2000 tấn gạo để chia sẻ khó khăn về an ninh lương thực."
TALKS = "Đoàn đã có cuộc hội đàm với Thành ủy La Habana."


def candidates(*sentences, rank=0):
    return [Candidate(rank, i, len(sentences), s, 0.85 - 0.01 * i, 0.03, "cuba") for i, s in enumerate(sentences)]


def column(matrix, name):
    return matrix[:, FEATURES.index(name)]


def test_features_describe_each_sentence_against_the_question_and_the_others():
    matrix = features(QUESTION, candidates(RICE, TALKS))
    assert matrix.shape == (2, len(FEATURES)) and np.isfinite(matrix).all()
    assert column(matrix, "overlap")[0] > column(matrix, "overlap")[1]
    assert column(matrix, "overlap_gap")[0] == 0 and column(matrix, "overlap_gap")[1] < 0
    assert column(matrix, "similarity_gap").max() == 0
    assert list(column(matrix, "kind_number")) == [1, 1] and list(column(matrix, "gives_number")) == [1, 0]
    assert list(column(matrix, "first_sentence")) == [1, 0] and list(column(matrix, "has_digit")) == [1, 0]
    assert features(QUESTION, []).shape == (0, len(FEATURES))


def test_passage_features_see_the_sentences_around_a_candidate():
    # Two passages: the rice sentence alone, and the talks sentence with a neighbour naming rice.
    found = [Candidate(0, 0, 1, RICE, 0.85, 0.03, "cuba"),
             Candidate(1, 0, 2, TALKS, 0.80, 0.02, "cuba"), Candidate(1, 1, 2, "Gạo đã tới.", 0.70, 0.02, "cuba")]
    matrix = features(QUESTION, found)
    # The talks sentence lacks "gạo", its neighbour (and so its passage) holds it.
    assert column(matrix, "passage_overlap")[1] > column(matrix, "overlap")[1]
    assert column(matrix, "context_overlap")[1] > column(matrix, "overlap")[1]
    # A passage's similarity is its best sentence's, against the best of all.
    assert list(column(matrix, "passage_similarity").round(6)) == [0.0, -0.05, -0.05]
    # Sentences of one passage share its columns.
    assert column(matrix, "passage_window")[1] == column(matrix, "passage_window")[2]


def test_features_are_a_function_of_their_inputs_alone():
    found = candidates(RICE, TALKS)
    assert np.array_equal(features(QUESTION, found), features(QUESTION, found))
    # A sentence's word columns do not depend on the order of the candidates.
    order_free = [FEATURES.index(n) for n in ("overlap", "idf_overlap", "bigram_overlap", "exact_overlap",
                                               "window_overlap", "gives_number")]
    reordered = [Candidate(0, i, 2, c.sentence, c.similarity, c.passage_score, c.doc_id)
                 for i, c in enumerate(found[::-1])]
    assert np.array_equal(features(QUESTION, found)[0, order_free], features(QUESTION, reordered)[1, order_free])


@given(st.lists(st.sampled_from("abcdefg"), max_size=40), st.sets(st.sampled_from("abcdefg")),
       st.integers(min_value=1, max_value=15))
def test_window_share_is_the_best_window_of_consecutive_words(tokens, terms, width):
    windows = [set(tokens[start:start + width]) for start in range(max(len(tokens) - width + 1, 1))]
    expected = max(len(terms & window) for window in windows) / len(terms) if terms else 0.0
    assert _window_share(tokens, terms, width) == expected


def test_window_share_counts_question_words_close_together():
    tokens = "a b c x x x x x x x x x x x x x x d".split()
    assert _window_share(tokens, {"a", "b", "c", "d"}, width=5) == 0.75
    assert _window_share([], {"a"}) == 0.0 and _window_share(tokens, set()) == 0.0


def test_the_shipped_model_loads_scores_and_round_trips(tmp_path):
    scorer = load_scorer()
    assert scorer.about["out_of_fold"]["dev"]["contains"] > 70 and 0 <= scorer.thresholds["more"] < 1
    probabilities = scorer.probabilities(features(QUESTION, candidates(RICE, TALKS)))
    assert probabilities.shape == (2,) and ((0 < probabilities) & (probabilities < 1)).all()
    assert probabilities[0] > probabilities[1]  # the sentence giving the tonnage
    path = tmp_path / "model.json"
    scorer.save(path)
    again = SentenceScorer.from_dict(json.loads(path.read_text(encoding="utf-8")))
    assert np.array_equal(again.coef, scorer.coef) and again.thresholds == scorer.thresholds
    assert again.number == scorer.number and len(scorer.number["coef"]) == len(NUMBER_FEATURES)
    assert json.loads(MODEL_PATH.read_text(encoding="utf-8"))["features"] == list(FEATURES)


POPULATION = "Thành phố năm 2010 có 3 trường đại học và dân số 2,5 triệu người, tăng 4 % so với năm 2000."


def test_number_features_describe_each_number_but_dates():
    spans, matrix = number_features(POPULATION, "Dân số của thành phố là bao nhiêu?")
    assert [span.split()[0] for span in spans] == ["3", "2,5", "4"]  # "năm 2010", "năm 2000": dates
    assert matrix.shape == (3, len(NUMBER_FEATURES)) and np.isfinite(matrix).all()
    near = matrix[:, NUMBER_FEATURES.index("asked_within_3")]
    assert near[1] > near[0] and matrix[2, NUMBER_FEATURES.index("percent")] == 1
    assert number_features("Không có con số nào.", "Bao nhiêu?")[1].shape == (0, len(NUMBER_FEATURES))
    spans, _ = number_features("Ngày 21 tháng 9 năm 1792, 300 đại biểu họp.", "Bao nhiêu đại biểu?")
    assert [span.split()[0] for span in spans] == ["300"]  # a date written in words is no number


def test_the_number_model_answers_with_its_most_likely_number_the_first_of_equals():
    scorer, n = load_scorer(), len(NUMBER_FEATURES)
    percent = {**scorer.number, "mean": [0.0] * n, "scale": [1.0] * n, "intercept": 0.0,
               "coef": [float(f == "percent") for f in NUMBER_FEATURES]}
    question = "Dân số của thành phố là bao nhiêu?"
    assert dataclasses.replace(scorer, number=percent).best_number(POPULATION, question).startswith("4 %")
    flat = {**percent, "coef": [0.0] * n}
    assert dataclasses.replace(scorer, number=flat).best_number(POPULATION, question).startswith("3 trường")


def test_the_shipped_number_model_beat_the_first_number_out_of_fold():
    dev = load_scorer().about["numbers_out_of_fold"]["dev"]
    assert dev["sentences"] > 100 and dev["chosen"] > dev["first"]


def test_without_a_number_model_the_first_number_answers():
    scorer = load_scorer()
    bare = SentenceScorer(scorer.mean, scorer.scale, scorer.coef, scorer.intercept, scorer.thresholds, {})
    assert bare.best_number(POPULATION, "Dân số của thành phố là bao nhiêu?").startswith("3 trường")
    assert bare.best_number("Không có con số nào.", "Bao nhiêu?") == ""


def test_a_model_of_other_features_is_refused():
    data = load_scorer().as_dict()
    data["features"] = data["features"][:-1]
    with pytest.raises(ValueError, match="train_answerer"):
        SentenceScorer.from_dict(data)
    data = load_scorer().as_dict()
    data["number"]["features"] = data["number"]["features"][:-1]
    with pytest.raises(ValueError, match="train_answerer"):
        SentenceScorer.from_dict(data)


def test_words_of_several_syllables_are_one_unit():
    assert segment_words("Hà Nội tặng bao nhiêu đô la?").split()[-2:] == ["đô_la", "?"]
    assert segment_words("ha noi tang bao nhieu do la") == "ha noi tang bao nhieu do la"  # no diacritics: as is
    assert asked_unit("Hà Nội tặng La Habana bao nhiêu đô la?") == ["do la", "usd"]
    assert asked_unit("How much rice did Hanoi give to Havana?") == ["gao"]  # through the glossary
    assert holds_unit(["trieu", "do", "la"], {"do la"}) and not holds_unit(["thu", "do"], {"do la"})
    assert short_answer("number", "Hợp tác giữa hai Thủ đô.", "Hà Nội tặng bao nhiêu đô la?") == ""
    assert short_answer("number", "Trường đã giảm 230 triệu USD cổ phần.", "Giảm bao nhiêu cổ phần?") == "230 triệu USD"


def test_only_some_kinds_of_question_need_the_fact_itself():
    assert needs_short_answer("number", "Bao nhiêu tấn gạo?")
    assert needs_short_answer("person", "Tổng Bí thư Đảng Cộng sản Peru là ai?")
    assert not needs_short_answer("person", "Ai dẫn đầu đoàn?")
    assert needs_short_answer("date", "Ký năm nào?") and not needs_short_answer("date", "Đoàn thăm Cuba khi nào?")


def test_places_are_those_closest_to_the_question_words_and_not_already_named():
    sentence = ("Đoàn khảo sát du lịch ở Buenos Aires; tới đặt vòng hoa tại Tượng đài Chủ tịch Hồ Chí Minh.")
    assert short_answer("place", sentence, "Ở Buenos Aires, đoàn đặt vòng hoa ở đâu?") == "Tượng đài Chủ tịch Hồ Chí Minh"


def test_cited_gold_counts_answers_whose_citations_hold_the_gold():
    base = {"answerable": True, "abstained": False, "rank": 1, "chars": 10, "citations": 1, "timings_ms": {},
            "contains": False, "leads": False, "contains_folded": False, "contains_cited": False, "f1": 0.0, "em": 0.0}
    figures = summarise([{**base, "supported": 1}, {**base, "supported": 0}])
    assert figures["cited_gold"] == 0.5 and figures["contains"] == 0.0
