import json

import pytest

from rag.feedback import DISLIKE, LIKE, FeedbackStore, candidate_questions


def _answer(text: str, doc: str = "cuba") -> dict:
    return {"answer": text, "abstained": False, "citations": [{"n": 1, "doc_id": doc, "text": "…"}]}


def test_ratings_survive_reopening_and_filter_by_kind(tmp_path):
    store = FeedbackStore.beside(tmp_path / "vectorstore")
    first = store.add("Ai dẫn đầu đoàn?", _answer("Nguyễn Thị Tuyến [1]"), LIKE)
    second = store.add("Bao nhiêu tấn gạo?", _answer("2000 tấn [1]"), DISLIKE, comment="thiếu đơn vị")
    assert second > first
    again = FeedbackStore(tmp_path / "vectorstore" / "feedback.sqlite")
    assert [e.rating for e in again.entries()] == [LIKE, DISLIKE]
    (disliked,) = again.entries(DISLIKE)
    assert disliked.question == "Bao nhiêu tấn gạo?" and disliked.comment == "thiếu đơn vị"
    assert disliked.answer["citations"][0]["doc_id"] == "cuba"


def test_missing_file_has_no_entries_and_bad_ratings_are_refused(tmp_path):
    store = FeedbackStore(tmp_path / "none" / "feedback.sqlite")
    assert store.entries() == []
    with pytest.raises(ValueError):
        store.add("q?", _answer("a"), 0)
    with pytest.raises(ValueError):
        store.add("  ", _answer("a"), LIKE)


def test_only_disliked_questions_become_candidates_once_each_without_gold_answers(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    store.add("Ai dẫn đầu đoàn?", _answer("Nguyễn Thị Tuyến [1]"), LIKE)
    store.add("Bao nhiêu tấn gạo?", _answer("2000 [1]"), DISLIKE)
    store.add("bao nhiêu tấn gạo? ", _answer("2000 [1]"), DISLIKE)  # the same question again
    lines = candidate_questions(store.entries())
    assert [line["question"] for line in lines] == ["Bao nhiêu tấn gạo?"]
    assert "answers" not in lines[0] and lines[0]["answer_given"] == "2000 [1]"
    assert lines[0]["cited_docs"] == ["cuba"] and lines[0]["id"].startswith("feedback-")
    json.dumps(lines, ensure_ascii=False)  # JSONL-ready
