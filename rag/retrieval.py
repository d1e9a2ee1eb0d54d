"""Stage 5: hybrid retrieval — two rankings of passages fused by reciprocal rank.

- dense: each passage ranked by its best sentence (e5 vectors) — paraphrases, English questions;
- lexical: BM25 over Vietnamese syllables — names, numbers, questions typed without diacritics.

Reciprocal-rank fusion needs no calibration between the two scores. Measured on XQuAD-vi
(article-level nDCG@10): passage vectors 94.5, best sentence 95.7, BM25 94.9, best sentence +
BM25 97.4; adding the passage-vector ranking as a third made it worse (96.8-97.1).

Embedding the question is most of a question's time. An embedder on one core (each worker of
``rag serve --workers N``) leaves the other free, so BM25 runs on a thread meanwhile (a C call
holds no lock Python needs): a question costs the longer of the two, not their sum (at 10,000
articles about 22 and 5 ms), also in the server, whose lock (``rag.live.Serialized``) leaves BM25
out. An embedder on every core (one process: ``rag ask``, ``rag eval``) embeds in about 13 ms and
BM25 follows it: beside it, BM25 would slow it down.

Stable across machines: another CPU's arithmetic (AVX-512, another BLAS) moves a cosine similarity
by up to about 1e-4, and the best sentences' similarities are often closer than that. So both
rankings compare scores in steps (:func:`tied_ranks`): scores in one step share a rank, and a
ranking is cut after the whole step its last place falls in. Fused scores are correctly rounded
sums, so equal ranks give equal scores; their ties go by the dense rank, the lexical rank, then
chunk id. A similarity can still cross a step's boundary: the narrower the step, the more
often. Steps of 0.001 left the far places of the dense ranking (10th to 20th, where similarities
crowd) moving by a place or two under a move of 1e-4, which is enough to swap two passages whose
fused scores are close; with passages of 160 words, 8 of 40 nudges changed an answer of the
corpus set (0 of 40 with steps of 0.005, and the same figures on the three question sets;
tests/test_stability.py).
"""
from __future__ import annotations

import dataclasses
import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from .index import Hit, VectorIndex
from .text import fold, is_english, query_terms, words

# Fusion tuned on ViQuAD dev (benchmarks/fusion.py): with Cormack et al.'s k = 60 and equal
# weights, a passage holding the answer came first for 72.2 % of the questions and in the first
# four for 88.4 %; with k = 5 and BM25 weighing 1.2, 73.3 % and 89.8 %.
RRF_K = 5  # damps the weight of the very first ranks
LEXICAL_WEIGHT = 1.2  # BM25's ranking against the dense one's 1.0
SIMILARITY_STEP = 5e-3  # cosine similarities of sentences compared in steps of this size (above)
BM25_STEP = 1e-3  # BM25 scores too (float32 sums: a few 1e-6 apart from one CPU to another)
NEAR_DUPLICATE = 0.8  # Jaccard similarity of word 3-grams above which two passages say the same


def shingles(text: str, n: int = 3) -> set[tuple[str, ...]]:
    tokens = [fold(w) for w in words(text)]
    return {tuple(tokens[i:i + n]) for i in range(max(len(tokens) - n + 1, 1))}


def is_near_duplicate(a: set, b: set, threshold: float = NEAR_DUPLICATE) -> bool:
    """Jaccard similarity of two shingle sets: the same caption twice, a syndicated copy."""
    return bool(a or b) and len(a & b) / len(a | b) >= threshold


def tied_ranks(scores, step: float) -> list[tuple[str, int]]:
    """``(id, rank)`` best first for ``(id, score)`` pairs compared in steps of ``step``: ids whose
    scores round to the same multiple of ``step`` share the best rank of their group (1, 2, 2, 4)
    and are listed by id. Moving the scores by much less than ``step`` changes nothing unless one
    crosses a step's boundary."""
    graded = sorted((-round(score / step), item) for item, score in scores)
    ranked, rank, previous = [], 0, None
    for position, (grade, item) in enumerate(graded, start=1):
        if grade != previous:
            rank, previous = position, grade
        ranked.append((item, rank))
    return ranked


def cut_at_step(scores: list[float], depth: int, step: float) -> int:
    """How many of ``scores`` (best first) to keep: ``depth``, and every later one in the same
    step as the last kept (a tie is all in or all out)."""
    if len(scores) <= depth:
        return len(scores)
    last = round(scores[depth - 1] / step)
    keep = depth
    while keep < len(scores) and round(scores[keep] / step) >= last:
        keep += 1
    return keep


def reciprocal_rank_fusion(rankings: list[list], k: int = RRF_K, weights=None) -> dict[str, float]:
    """``id -> sum of weight / (k + rank)`` over the rankings (weights 1.0 unless given). A
    ranking lists ids best first (ranks 1, 2, …), or ``(id, rank)`` pairs where tied ids share a
    rank (:func:`tied_ranks`). Sums are correctly rounded (``math.fsum``): the same ranks give the
    very same score in any order."""
    parts: dict[str, list[float]] = {}
    for ranking, weight in zip(rankings, weights or [1.0] * len(rankings)):
        for position, entry in enumerate(ranking, start=1):
            item, rank = entry if isinstance(entry, tuple) else (entry, position)
            parts.setdefault(item, []).append(weight / (k + rank))
    return {item: math.fsum(values) for item, values in parts.items()}


def fused_order(fused: dict[str, float], rankings: list[list] = ()) -> list[str]:
    """Ids by fused score, best first. Equal scores (ranks 1 and 2 in one ranking, 2 and 1 in the
    other) by their rank in the first ranking, then in the next, …, then by id."""
    ranks = [dict(entry if isinstance(entry, tuple) else (entry, position)
                  for position, entry in enumerate(ranking, start=1)) for ranking in rankings]
    return sorted(fused, key=lambda item: (-fused[item], *(r.get(item, math.inf) for r in ranks), item))


MODES = ("hybrid", "dense", "lexical")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _in_background(function, *args) -> Future:
    """Run ``function`` on a thread: BM25 runs while the question is embedded, which holds no
    lock Python needs (a C call), so a question takes the longer of the two, not their sum."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rag-bm25")
    return _pool.submit(function, *args)


@dataclass(frozen=True)
class Filters:
    """Restrict retrieval to some articles, an outlet, or a date range (``yyyy-mm-dd``, inclusive).
    An article without a date never matches a date range."""
    doc_ids: tuple[str, ...] = ()
    outlet: str = ""
    since: str = ""
    until: str = ""

    def where(self) -> dict | None:
        """The Chroma ``where`` clause (the same keys exist on passages and sentences)."""
        clauses = []
        if self.doc_ids:
            clauses.append({"doc_id": {"$in": list(self.doc_ids)}})
        if self.outlet:
            clauses.append({"outlet": self.outlet})
        if self.since:
            clauses.append({"date_num": {"$gte": _date_number(self.since)}})
        if self.until:
            clauses.append({"date_num": {"$lte": _date_number(self.until)}})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _date_number(value: str) -> int:
    import datetime as dt

    try:
        return int(dt.date.fromisoformat(value).strftime("%Y%m%d"))
    except ValueError:
        raise ValueError(f"Invalid date {value!r}: use yyyy-mm-dd") from None


@dataclass(frozen=True)
class Retrieval:
    hits: list[Hit]
    query_vector: list[float] | None  # None when the dense side was not used


class Retriever:
    """Passages for a question; ``mode`` keeps one side only, to measure what each contributes."""

    def __init__(self, index: VectorIndex, mode: str = "hybrid", candidates: int = 30,
                 filters: Filters | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"Unknown retrieval mode {mode!r} (RAG_RETRIEVAL): use one of {', '.join(MODES)}")
        self.index = index
        self.mode = mode
        self.candidates = candidates
        self.where = filters.where() if filters else None

    def search(self, query: str, k: int = 4) -> list[Hit]:
        return self.retrieve(query, k).hits

    def rankings(self, query: str, depth: int) -> tuple[list[list[tuple[str, int]]], list[float] | None]:
        """The dense and/or lexical rankings of passages (``(id, rank)`` pairs, the mode's), each
        about ``depth`` long, and the question's vector (None without the dense side)."""
        rankings, vector, lexical = [], None, None
        if self.mode == "hybrid" and getattr(self.index.embeddings, "cores", 1) < 2:
            lexical = _in_background(self._lexical_ranking, query, depth)
        if self.mode in ("hybrid", "dense"):
            vector = self.index.embeddings.embed_query(query)
            # Twice the depth, to see the whole step the last place falls in (the same below).
            matches = self.index.sentence_search_vector(vector, k=2 * depth, where=self.where)
            matches.sort(key=lambda match: -match[2])
            matches = matches[:cut_at_step([sim for _, _, sim in matches], depth, SIMILARITY_STEP)]
            best: dict[str, float] = {}  # each passage ranked by its best sentence
            for cid, _, similarity in matches:
                best[cid] = max(similarity, best.get(cid, similarity))
            rankings.append(tied_ranks(best.items(), SIMILARITY_STEP))
        if self.mode in ("hybrid", "lexical"):
            rankings.append(lexical.result() if lexical else self._lexical_ranking(query, depth))
        return rankings, vector

    def retrieve(self, query: str, k: int = 4) -> Retrieval:
        if not query.strip():
            return Retrieval([], None)
        rankings, vector = self.rankings(query, max(self.candidates, k))
        weights = [1.0, LEXICAL_WEIGHT] if len(rankings) == 2 else None
        fused = reciprocal_rank_fusion(rankings, weights=weights)
        ranked = fused_order(fused, rankings)[:3 * k]  # room to drop duplicates
        hits, kept = [], []
        for hit in self.index.get(ranked):
            marks = shingles(hit.text)
            if any(is_near_duplicate(marks, other) for other in kept):
                continue
            kept.append(marks)
            hits.append(dataclasses.replace(hit, score=fused[hit.chunk_id]))
            if len(hits) == k:
                break
        return Retrieval(hits, vector)

    def _lexical_ranking(self, query: str, depth: int) -> list[tuple[str, int]]:
        # An English question meets the Vietnamese passages' words through the glossary.
        lexical_query = " ".join(query_terms(query)) if is_english(query) else query
        if self.where is None:  # straight to BM25, which needs no lock (rag.live.Serialized)
            scores = self.index.lexical.search(lexical_query, 2 * depth)
        else:  # the filter reads passages from Chroma
            scores = self.index.lexical_search(lexical_query, k=2 * depth, where=self.where)
        scores = scores[:cut_at_step([score for _, score in scores], depth, BM25_STEP)]
        return tied_ranks(scores, BM25_STEP)
