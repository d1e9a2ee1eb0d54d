"""Kinds of questions a new user asks about the seed articles, each asked several ways (with and
without diacritics, in English), on the real seed index: the fact comes first and the cited
passage holds it; what the articles do not say, or nothing at all, is "not found"."""
import shutil

import pytest
from conftest import ARGENTINA, SEED_CORPUS

from rag.answer import NOT_FOUND, ExtractiveAnswerer
from rag.evaluation import lead_span, load_question_set
from rag.retrieval import Retriever

# Each kind of question asked several ways, and what the articles do not say (evalsets/README.md).
NEW_USER = load_question_set(SEED_CORPUS.parent / "evalsets" / "new-user.jsonl")


@pytest.fixture(scope="module")
def answerer(tmp_path_factory, seed_store, e5):
    from rag.index import VectorIndex
    from rag.settings import Settings

    store = tmp_path_factory.mktemp("seed-questions") / "vectorstore"
    shutil.copytree(seed_store, store)
    index = VectorIndex.open(Settings(corpus_dir=SEED_CORPUS, store_dir=store), e5)
    yield ExtractiveAnswerer(Retriever(index), top_k=4)
    index.close()


def history(answerer, asked) -> list[tuple[str, str]]:
    """A follow-up's conversation: the question it follows and the answer given to it."""
    if not asked.follows:
        return []
    first = next(q.question for q in NEW_USER if q.id == asked.follows)
    return [(first, answerer.answer(first).text)]


@pytest.mark.parametrize("asked", [q for q in NEW_USER if q.answers], ids=lambda q: q.id)
def test_the_fact_asked_for_leads_the_answer_and_its_passage_is_cited(answerer, asked):
    question, doc_id = asked.question, asked.doc
    answer = answerer.answer(question, history(answerer, asked))
    assert not answer.abstained, question
    lead = lead_span(answer)  # the short answer when there is one, else the sentence
    fact = next((fact for fact in asked.answers if fact.lower() in lead.lower()), None)
    assert fact, (question, answer.standalone, answer.short, answer.text)
    assert not lead.rstrip(" .").endswith((" ở", " tại", " của")), answer.text
    assert answer.citations[0].doc_id == doc_id and fact.lower() in answer.citations[0].text.lower()


@pytest.mark.parametrize("question", ["Đoàn đã làm việc với những ai ở Peru?", "Ở Peru, đoàn đã gặp những ai?"])
def test_who_all_names_everyone_the_verb_points_at(answerer, question):
    answer = answerer.answer(question)
    assert answer.short == "Arturo Ayala và Marco Medina", answer.text
    assert answer.citations[0].doc_id == ARGENTINA
    assert all(name in answer.citations[0].text for name in ("Arturo Ayala", "Marco Medina"))


@pytest.mark.parametrize("asked", [q for q in NEW_USER if not q.answers], ids=lambda q: q.id)
def test_what_the_articles_do_not_say_is_not_found(answerer, asked):
    question = asked.question
    answer = answerer.answer(question, history(answerer, asked))
    assert answer.abstained and answer.text == NOT_FOUND and answer.citations == (), (question, answer.text)
