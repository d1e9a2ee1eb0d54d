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
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from .question import (YEAR, asked_unit, holds_unit, number_spans, person_by_verb, question_kind,
                       short_answer)
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


# What tells the number that answers "bao nhiêu" among a sentence's numbers.
NUMBER_FEATURES = ("first", "last", "order", "asked_within_3", "asked_within_6", "asked_distance", "unit_after",
                   "unit_before", "year", "percent", "digits", "length", "asked_after", "asked_before",
                   "percent_asked", "place")


def number_features(sentence: str, question: str) -> tuple[list[str], np.ndarray]:
    """The numbers of ``sentence`` (dates left out) and one row of :data:`NUMBER_FEATURES` each:
    where it stands, how close the question's words are, whether the unit asked is next to it,
    whether it is a year or a percentage."""
    found = number_spans(sentence)
    asked, unit = set(content_terms(question)), set(asked_unit(question))
    tokens = [fold(w) for w in words(sentence)]
    percent_asked = "phan tram" in fold(question) or "%" in question
    rows = []
    for i, (start, end, span) in enumerate(found):
        before, after = [fold(w) for w in words(sentence[:start])], [fold(w) for w in words(sentence[end:])]
        at = len(before)
        distance = min([abs(j - at) for j, token in enumerate(tokens) if token in asked] or [20])
        rows.append([
            i == 0, i == len(found) - 1, i / max(len(found) - 1, 1),
            *(len(asked & set(before[-n:] + after[:n])) / max(len(asked), 1) for n in (3, 6)),
            min(distance, 20) / 20, bool(unit) and holds_unit(after[:3], unit),
            bool(unit) and any(w in unit for w in before[-3:]), bool(YEAR.fullmatch(span)), "%" in span,
            any(ch.isdigit() for ch in span), len(span) / 10, bool(after) and after[0] in asked,
            bool(before) and before[-1] in asked, percent_asked and "%" in span, at / max(len(tokens), 1),
        ])
    matrix = np.asarray(rows, dtype=np.float64).reshape(len(found), len(NUMBER_FEATURES))
    return [span for _, _, span in found], matrix


@dataclass(frozen=True)
class SentenceScorer:
    """A logistic regression over standardised :data:`FEATURES`, and the thresholds chosen with it."""
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    thresholds: dict  # "more": a further sentence's share of the best one's probability, …
    about: dict  # how it was trained and what it measured (written by the training script)
    number: dict = field(default_factory=dict)  # over NUMBER_FEATURES: mean, scale, coef, intercept

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        if not len(matrix):
            return np.zeros(0)
        z = ((matrix - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def best_number(self, sentence: str, question: str) -> str:
        """The number of ``sentence`` most likely to be the one ``question`` asks for (the first
        of equals); "" when it gives none."""
        spans, matrix = number_features(sentence, question)
        if not spans or not self.number:
            return spans[0] if spans else ""
        return spans[int(np.argmax(self.number_scores(matrix)))]

    def number_scores(self, matrix: np.ndarray) -> np.ndarray:
        """The number chooser's score (a logit) of each row of :data:`NUMBER_FEATURES`."""
        n = self.number
        return ((matrix - np.asarray(n["mean"])) / np.asarray(n["scale"])) @ np.asarray(n["coef"]) + n["intercept"]

    def as_dict(self) -> dict:
        return {"features": list(FEATURES), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept, "thresholds": self.thresholds,
                "number": self.number, "about": self.about}

    @classmethod
    def from_dict(cls, data: dict) -> "SentenceScorer":
        if list(data["features"]) != list(FEATURES):
            raise ValueError("The answer model was trained on other features: run benchmarks/train_answerer.py")
        number = dict(data.get("number", {}))
        if number and list(number["features"]) != list(NUMBER_FEATURES):
            raise ValueError("The answer model's number chooser was trained on other features: "
                             "run benchmarks/train_answerer.py")
        return cls(np.asarray(data["mean"]), np.asarray(data["scale"]), np.asarray(data["coef"]),
                   float(data["intercept"]), dict(data["thresholds"]), dict(data.get("about", {})), number)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


@lru_cache(maxsize=4)
def load_scorer(path: Path = MODEL_PATH) -> SentenceScorer:
    return SentenceScorer.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
