"""Issue 10, careless and hostile input outside the web gate: secrets never written, feedback
validated and always exportable, question sets with nulls and unknown docs. Through the real CLI
and the real server on loopback."""
import json
import sqlite3

import pytest
from conftest import CUBA, run_rag
from hypothesis import given, settings as hypothesis_settings, strategies as st

from rag.feedback import DISLIKE, FeedbackStore, answer_summary, candidate_questions
from rag.settings import Settings, is_secret, masked

CUBA_QUESTION = "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?"


# --------------------------------------------------------------------------- secrets (pure)


def test_every_variable_named_for_a_secret_is_masked():
    for name in ("RAG_API_KEY", "RAG_LLM_API_KEY", "RAG_ADMIN_KEY", "RAG_TOKEN_TTL", "RAG_DB_PASSWORD",
                 "RAG_CLIENT_SECRET", "api_key"):
        assert is_secret(name) and masked(name, "s3cret") == "***"
    assert masked("RAG_API_KEY", "") == ""  # nothing set: nothing to hide, and the reader sees it unset
    assert not is_secret("RAG_RETRIEVAL") and masked("RAG_RETRIEVAL", "dense") == "dense"


def test_a_printed_settings_object_shows_no_key():
    shown = repr(Settings(api_key="k-123456", llm_api_key="llm-987654", top_k=5))
    assert "k-123456" not in shown and "llm-987654" not in shown
    assert "api_key=***" in shown and "top_k=5" in shown


@pytest.mark.slow
def test_eval_writes_no_key_in_its_report_json_or_output(indexed, isolated):
    questions = isolated / "set.jsonl"
    questions.write_text(json.dumps({"id": "rice", "question": "Hà Nội tặng La Habana bao nhiêu tấn gạo?",
                                     "answers": ["2000 tấn gạo"], "doc": CUBA}, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    result = run_rag("eval", "--qa", str(questions), "--json", "out.json", "--report", "out.md",
                     env={"RAG_API_KEY": "api-s3cret", "RAG_ADMIN_KEY": "admin-s3cret"})
    assert result.returncode == 0, result.stderr
    written = "".join((isolated / name).read_text(encoding="utf-8") for name in ("out.json", "out.md"))
    for secret in ("api-s3cret", "admin-s3cret"):
        assert secret not in written + result.stdout + result.stderr
    command = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["command"]
    assert "RAG_API_KEY='***'" in command and "RAG_ADMIN_KEY='***'" in command


# --------------------------------------------------------------------------- feedback


def test_odd_stored_rows_never_stop_an_export(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    store.add("Câu hỏi một?", {"citations": [1], "answer": {"x": 1}}, DISLIKE)  # what the old API let in
    store.add("Câu hỏi hai?", {"answer": "Hai [1]", "citations": "cuba", "abstained": "yes"}, DISLIKE)
    store.add("Câu hỏi ba?", {"answer": "Ba [1]", "citations": [{"n": 1, "doc_id": CUBA}, {"n": 2}]}, DISLIKE)
    with sqlite3.connect(store.path) as db:  # a row written by hand or by an older version
        db.execute("INSERT INTO feedback (created, rating, question, answer) VALUES ('x', -1, 'Câu bốn?', 'not json')")
        db.execute("INSERT INTO feedback (created, rating, question, answer) VALUES ('x', -1, 'Câu năm?', '[1, 2]')")
    lines = candidate_questions(store.entries())
    assert [line["question"] for line in lines] == ["Câu hỏi một?", "Câu hỏi hai?", "Câu hỏi ba?", "Câu bốn?",
                                                    "Câu năm?"]
    assert lines[0]["cited_docs"] == [] and lines[0]["answer_given"] == '{"x": 1}'
    assert lines[1]["cited_docs"] == [] and lines[1]["abstained"] is False
    assert lines[2]["cited_docs"] == [CUBA] and lines[3]["answer_given"] == "not json"
    json.dumps(lines, ensure_ascii=False).encode("utf-8")


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20))
@hypothesis_settings(max_examples=200, deadline=None)
def test_any_stored_answer_summarises_without_failing(answer):
    text, abstained, docs = answer_summary(answer if isinstance(answer, dict) else {"answer": answer})
    assert isinstance(text, str) and isinstance(abstained, bool) and all(isinstance(d, str) and d for d in docs)


def test_the_store_refuses_text_that_is_not_unicode(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    with pytest.raises(ValueError, match="not valid Unicode"):
        store.add("Câu hỏi?", {"answer": "\ud800"}, DISLIKE)
    assert store.entries() == []


@pytest.fixture(scope="module")
def server(tmp_path_factory, seed_store, e5):
    from servers import LiveServer, loaded_service

    with loaded_service(tmp_path_factory.mktemp("hostile"), seed_store, e5, rate_limit=0) as service, \
            LiveServer(service.settings, service) as live:
        yield live


def post(url: str, raw: bytes):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(url, data=raw, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            return response.status, response.headers.get("Content-Type", ""), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read().decode("utf-8", "replace")


@pytest.mark.slow
def test_feedback_takes_text_or_the_answer_shape_and_refuses_anything_else(server):
    url = server.url + "/api/feedback"
    # JSON's "\ud800" is a lone surrogate: it used to reach SQLite and answer a plain-text 500.
    for bad in ('{"question": "Q?", "answer": {"x": "\\ud800"}, "rating": 1}',
                '{"question": "Q?", "answer": {"citations": [1]}, "rating": -1}',
                '{"question": "Q?", "answer": "\\ud800", "rating": -1}',
                '{"question": "Q?", "answer": {"answer": "A", "citations": [{"n": "one", "doc_id": "x"}]}, "rating": 1}'):
        status, content_type, error = post(url, bad.encode())
        assert status == 422 and content_type == "application/json", (bad, status, error)
        assert json.loads(error)["error"] == "invalid_request" and "answer" in json.loads(error)["message"]

    status, _, answer = post(server.url + "/api/ask", json.dumps({"question": CUBA_QUESTION}).encode())
    assert status == 200, answer
    status, _, stored = post(url, json.dumps({"question": CUBA_QUESTION, "answer": answer, "rating": -1}).encode())
    assert status == 200 and stored["id"] >= 1
    status, _, text_only = post(url, json.dumps({"question": "Câu hỏi?", "answer": "Chỉ có chữ.", "rating": -1},
                                                ensure_ascii=False).encode())
    assert status == 200
    entries = {e.id: e for e in FeedbackStore.beside(server.service.settings.store_dir).entries()}
    assert entries[stored["id"]].answer["citations"][0]["doc_id"] == CUBA
    assert entries[text_only["id"]].answer == {"answer": "Chỉ có chữ.", "abstained": False, "citations": []}

    result = run_rag("eval", "--export-feedback", "out.jsonl",
                     env={"RAG_STORE_DIR": str(server.service.settings.store_dir)})
    assert result.returncode == 0, result.stderr
    assert "2 candidate questions" in result.stdout


# --------------------------------------------------------------------------- question sets


@pytest.mark.slow
def test_eval_takes_null_optional_fields_and_names_docs_the_index_lacks(indexed, isolated):
    questions = isolated / "set.jsonl"
    records = [{"id": "rice", "question": "Hà Nội tặng La Habana bao nhiêu tấn gạo?", "answers": ["2000 tấn gạo"],
                "doc": "ha-noi-la-habana", "type": None, "follows": None},  # a doc id with a typo
               {"id": "none", "question": "Thủ đô của Pháp là gì?", "answers": [], "doc": None, "type": None}]
    questions.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    result = run_rag("eval", "--qa", str(questions), "--json", "out.json")
    assert result.returncode == 0, result.stderr
    assert "warning: 1 question(s) name a \"doc\" that is no article of the index" in result.stderr
    assert "'ha-noi-la-habana' (rice)" in result.stderr
    runs = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["runs"]
    assert runs[0]["figures"]["questions"] == 2


@pytest.mark.slow
def test_a_rating_that_cannot_be_stored_is_a_clear_503(tmp_path, seed_store, e5):
    """The ratings file beside the index cannot be opened (here a folder stands in its place;
    a read-only index folder does the same): the API says so in its error shape, never a 500."""
    from servers import LiveServer, loaded_service

    from rag.feedback import FILE_NAME, FeedbackUnavailable

    with loaded_service(tmp_path, seed_store, e5, rate_limit=0) as service, \
            LiveServer(service.settings, service) as live:
        (service.settings.store_dir / FILE_NAME).mkdir()
        with pytest.raises(FeedbackUnavailable, match="Ratings cannot be stored"):
            FeedbackStore.beside(service.settings.store_dir).add("Câu hỏi?", {"answer": "A"}, DISLIKE)
        status, content_type, error = post(live.url + "/api/feedback", json.dumps(
            {"question": "Câu hỏi?", "answer": "Chỉ có chữ.", "rating": 1}, ensure_ascii=False).encode())
        answered, _, answer = post(live.url + "/api/ask", json.dumps({"question": CUBA_QUESTION}).encode())
    assert status == 503 and content_type == "application/json"
    assert json.loads(error)["error"] == "feedback_unavailable"
    assert answered == 200 and not answer["abstained"]  # answering is unaffected
