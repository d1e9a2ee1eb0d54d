"""The answerer's sentence scorer: how likely each sentence of the retrieved passages is to hold
the answer, from a few dozen features, by a logistic regression learned from question sets.

Features are pure functions of the question, the sentence, its passage and the other
candidates (dense similarity, shares of the question's words, phrases and rare words the
sentence holds, passage rank, position, whether it gives the kind of fact asked for). The model
is a small JSON file in the package (``answer_model.json``), written by
``benchmarks/train_answerer.py``; scoring is one dot product, no library beyond numpy.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .question import person_by_verb, question_kind, short_answer
from .text import content_terms, fold, query_terms, words

MODEL_PATH = Path(__file__).with_name("answer_model.json")
KINDS = ("number", "date", "person", "place")

FEATURES = (
    "similarity", "similarity_gap", "passage_rank", "passage_score", "top_article",
    "overlap", "overlap_gap", "idf_overlap", "idf_overlap_gap", "bigram_overlap", "exact_overlap",
    "window_overlap", "first_sentence", "position", "log_chars", "new_words",
    *(f"kind_{k}" for k in KINDS), *(f"gives_{k}" for k in KINDS), "gives_by_verb", "has_digit",
    "passage_overlap", "passage_idf_overlap", "passage_window", "passage_similarity", "context_overlap",
)


@dataclass(frozen=True)
class Candidate:
    """A sentence of a retrieved passage: ``rank`` is its passage's (0 = best), ``index`` its
    place in the passage, ``similarity`` its e5 cosine with the question (0 without vectors)."""
    rank: int
    index: int
    count: int  # sentences in the passage
    sentence: str
    similarity: float
    passage_score: float
    doc_id: str


def _bigrams(tokens: Sequence[str]) -> set[str]:
    return {f"{a} {b}" for a, b in zip(tokens, tokens[1:])}


def _window_share(tokens: Sequence[str], terms: set[str], width: int = 12) -> float:
    """The largest share of ``terms`` found within ``width`` consecutive words: question words
    close together point at the clause that answers, scattered ones less so. One pass over the
    words that are terms (a window slides from one to the next)."""
    if not terms:
        return 0.0
    hits = [(i, t) for i, t in enumerate(tokens) if t in terms]
    counts: dict[str, int] = {}
    best = left = 0
    for i, term in hits:
        counts[term] = counts.get(term, 0) + 1
        while i - hits[left][0] >= width:
            gone = hits[left][1]
            counts[gone] -= 1
            if not counts[gone]:
                del counts[gone]
            left += 1
        best = max(best, len(counts))
    return best / len(terms)


def features(question: str, candidates: Sequence[Candidate]) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate."""
    if not candidates:
        return np.zeros((0, len(FEATURES)))
    terms = set(query_terms(question))  # folded; an English question's words in Vietnamese
    kind = question_kind(question)
    asked = set(content_terms(question))
    exact = {w.lower() for w in words(question)}
    question_bigrams = _bigrams([fold(w) for w in words(question)])
    folded = [[fold(w) for w in words(c.sentence)] for c in candidates]
    sets = [set(tokens) for tokens in folded]
    # Rare words weigh more: their inverse frequency among the candidate sentences.
    idf = {t: math.log((len(sets) + 1) / (1 + sum(t in s for s in sets))) + 1 for t in terms}
    idf_total = sum(idf.values()) or 1.0
    top_score = max(c.passage_score for c in candidates) or 1.0
    top_doc = min(candidates, key=lambda c: c.rank).doc_id
    # The passage around a sentence: the question's words it holds (sentences of one passage
    # are consecutive candidates), its best sentence similarity, and the sentence's neighbours.
    passages: dict[int, list[int]] = {}
    for i, c in enumerate(candidates):
        passages.setdefault(c.rank, []).append(i)
    passage_terms, passage_window, passage_similarity = {}, {}, {}
    for rank, members in passages.items():
        passage_terms[rank] = terms & set().union(*(sets[i] for i in members))
        passage_window[rank] = _window_share([t for i in members for t in folded[i]], terms, 24)
        passage_similarity[rank] = max(candidates[i].similarity for i in members)
    best_similarity = max(c.similarity for c in candidates)
    rows = []
    for i, (c, tokens, present) in enumerate(zip(candidates, folded, sets)):
        held = terms & present
        around = present.union(*(sets[j] for j in (i - 1, i + 1)
                                 if 0 <= j < len(candidates) and candidates[j].rank == c.rank))
        gives = {k: 0.0 for k in KINDS}
        if kind in gives:
            gives[kind] = float(bool(short_answer(kind, c.sentence, question)))
        by_verb = float(kind == "person" and bool(person_by_verb(c.sentence, question, asked)))
        rows.append([
            c.similarity, 0.0, 1.0 / (c.rank + 1), c.passage_score / top_score, float(c.doc_id == top_doc),
            len(held) / len(terms) if terms else 0.0, 0.0,
            sum(idf[t] for t in held) / idf_total, 0.0,
            len(question_bigrams & _bigrams(tokens)) / len(question_bigrams) if question_bigrams else 0.0,
            len(exact & {w.lower() for w in words(c.sentence)}) / len(exact) if exact else 0.0,
            _window_share(tokens, terms),
            float(c.index == 0), c.index / max(c.count - 1, 1), math.log1p(len(c.sentence)),
            len(present - terms) / max(len(present), 1),
            *(float(kind == k) for k in KINDS), *(gives[k] for k in KINDS), by_verb,
            float(any(ch.isdigit() for ch in c.sentence)),
            len(passage_terms[c.rank]) / len(terms) if terms else 0.0,
            sum(idf[t] for t in passage_terms[c.rank]) / idf_total,
            passage_window[c.rank], passage_similarity[c.rank] - best_similarity,
            len(terms & around) / len(terms) if terms else 0.0,
        ])
    matrix = np.asarray(rows, dtype=np.float64)
    for value, gap in (("similarity", "similarity_gap"), ("overlap", "overlap_gap"),
                       ("idf_overlap", "idf_overlap_gap")):
        column = FEATURES.index(value)
        matrix[:, FEATURES.index(gap)] = matrix[:, column] - matrix[:, column].max()
    return matrix


@dataclass(frozen=True)
class SentenceScorer:
    """A logistic regression over standardised :data:`FEATURES`, and the thresholds chosen with it."""
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    thresholds: dict  # "more": a further sentence's share of the best one's probability, …
    about: dict  # how it was trained and what it measured (written by the training script)

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        if not len(matrix):
            return np.zeros(0)
        z = ((matrix - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def as_dict(self) -> dict:
        return {"features": list(FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "thresholds": self.thresholds,
                "about": self.about}

    @classmethod
    def from_dict(cls, data: dict) -> "SentenceScorer":
        if list(data["features"]) != list(FEATURES):
            raise ValueError("The answer model was trained on other features: run benchmarks/train_answerer.py")
        return cls(np.asarray(data["mean"]), np.asarray(data["scale"]), np.asarray(data["coef"]),
                   float(data["intercept"]), dict(data["thresholds"]), dict(data.get("about", {})))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@lru_cache(maxsize=4)
def load_scorer(path: Path = MODEL_PATH) -> SentenceScorer:
    return SentenceScorer.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
