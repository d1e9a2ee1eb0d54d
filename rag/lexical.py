"""Lexical side of retrieval: BM25 over Vietnamese syllables.

Vietnamese words are runs of syllables ("Hà Nội", "đại biểu"), and users type with or without
diacritics. A passage is therefore indexed as:
- its syllables folded (lower case, no diacritics): ``ha``, ``noi`` — so ``ha noi`` finds ``Hà Nội``;
- adjacent folded syllables: ``ha_noi`` — a two-syllable word outranks its parts scattered apart;
- its syllables as written: ``~hà``, ``~nội`` — so a question typed with correct diacritics ranks
  exact matches above look-alikes (``tăng`` vs ``tặng``). Every syllable gets one, accented or
  not, so words with diacritics do not weigh more than ``Cuba`` or ``Peru``.

On XQuAD-vi (240 paragraphs, 1,190 questions, fused with dense sentences) this measured nDCG@10
97.4, against 97.2 without the exact syllables and 97.1 with them for accented words only.

Word segmentation was tried here and is not used for retrieval (``rag.question`` uses pyvi for
the unit a question counts): the folded bigrams already hold every two-syllable word, and a
segmenter's words only add the same evidence twice. Words segmented at ingest (and
per query) were added as extra tokens; hybrid retrieval, nDCG@10 on ViQuAD dev (2,285 questions)
/ XQuAD-vi, against 88.7 / 97.4 without:
- pyvi 0.1.1, multi-syllable words folded (``=dai_bieu``): 88.6 / 97.2 (dev hit@1 79.3 -> 79.1:
  50 questions changed their first passage, 22 for the better; dev contains 69.4 -> 69.8); as
  written (``=đại_biểu``): 88.6 / 97.3; both lost one of the seed corpus's answers (91.5 -> 90.4);
- folded words as bigram tokens (a bigram that is a word counts twice): 88.4 / 97.1;
- words instead of bigrams: 88.1 / 97.2, and the seed corpus's hit@1 fell from 98.9 to 97.9;
- words of three syllables or more only: 88.6 / 97.4 (dev: 1 question gained rank 1, 4 lost it);
- text segmented as written instead of lower-cased: the same on dev and XQuAD-vi (88.6 / 97.2),
  and the seed corpus kept that answer;
- underthesea 9.5.0 (Apache-2.0, its model ships in the wheel), folded words: 88.4 / 97.2.
BM25 alone on dev went from 85.5 to 84.8 with pyvi's words. pyvi segments about 1,500 dev
passages a second (570 a second on the 160,143 passages of ``benchmarks/scale.py``, 282 s on the
two shared cores) and its pickled CRF imports scikit-learn (+100 MiB); underthesea is 3 times slower.

BM25 is computed here rather than by ``bm25s`` (whose index bakes each token's IDF into every
stored score): an index generation is made of segments (rag.index), each with the token counts
of its passages (:class:`SegmentTerms`), written once; :class:`LexicalIndex` scores over the live
passages of all of them with their joint statistics (passages, mean length, document frequency),
so a generation of several segments ranks exactly as one BM25 index of its passages would
(Lucene's BM25, k1 = 1.5, b = 0.75, as ``bm25s`` computes it; tests/test_retrieval.py compares).
"""
from __future__ import annotations

import json
import math
import threading
from collections import Counter
from pathlib import Path
from typing import Iterable

import numpy as np

from .text import fold, near_spellings, words

_IDS = "chunk_ids.json"
_VOCAB = "vocab.json"
_COUNTS = "counts.npz"
_VERSION = "tokens_version"
#: Bump when :func:`tokens` changes: segments counted with other tokens are counted again at the
#: next ingest (passages and vectors are kept). Counts saved without the file were made by "1".
TOKENS_VERSION = "1"
K1, B = 1.5, 0.75
CACHED_POSTINGS = 10_000  # a token held by this many passages keeps its tf part between queries
CACHE_BYTES = 100 << 20  # their tf parts in all, at most (12 bytes a posting, or 4 a passage)
# A token held by this share of the passages or more keeps a tf part for every passage (0 where
# absent): adding one vector is several times faster than scattering a quarter of it, for at
# most 4/3 of the memory (at 10,000 articles BM25 took 3.6 / 8.1 ms p50 / p95, 1.9 / 3.5 so).
DENSE_SHARE = 0.25


def tokens(text: str) -> list[str]:
    exact = [w.lower() for w in words(text)]
    folded = [fold(w) for w in exact]
    bigrams = [f"{a}_{b}" for a, b in zip(folded, folded[1:])]
    return folded + bigrams + [f"~{w}" for w in exact]


class SegmentTerms:
    """Token counts of one segment's passages: each passage's length in tokens, and a sparse
    token × passage matrix of frequencies (column ``j`` of token ``vocab[j]``: passages
    ``docs[indptr[j]:indptr[j + 1]]`` with frequencies ``tfs[…]``)."""

    def __init__(self, chunk_ids: list[str], vocab: list[str], indptr: np.ndarray, docs: np.ndarray,
                 tfs: np.ndarray, lengths: np.ndarray) -> None:
        self.chunk_ids, self.vocab = chunk_ids, vocab
        self.column = {token: j for j, token in enumerate(vocab)}
        self.indptr, self.docs, self.tfs, self.lengths = indptr, docs, tfs, lengths

    def __len__(self) -> int:
        return len(self.chunk_ids)

    @classmethod
    def build(cls, passages: Iterable[tuple[str, str]]) -> "SegmentTerms":
        """The counts of ``(chunk_id, text)`` pairs, read once."""
        chunk_ids: list[str] = []
        vocab: dict[str, int] = {}
        cols, docs, tfs, lengths = [], [], [], []
        for doc, (chunk_id, text) in enumerate(passages):
            chunk_ids.append(chunk_id)
            ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens(text)), dtype=np.int32)
            unique, counts = np.unique(ids, return_counts=True)
            cols.append(unique)
            tfs.append(counts.astype(np.float32))
            docs.append(np.full(len(unique), doc, dtype=np.int32))
            lengths.append(len(ids))
        col = np.concatenate(cols) if cols else np.zeros(0, np.int32)
        order = np.argsort(col, kind="stable")  # by token, then passage
        indptr = np.zeros(len(vocab) + 1, dtype=np.int64)
        np.cumsum(np.bincount(col, minlength=len(vocab)), out=indptr[1:])
        return cls(chunk_ids, list(vocab), indptr,
                   (np.concatenate(docs) if docs else np.zeros(0, np.int32))[order],
                   (np.concatenate(tfs) if tfs else np.zeros(0, np.float32))[order],
                   np.asarray(lengths, dtype=np.int32))

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        np.savez(path / _COUNTS, indptr=self.indptr, docs=self.docs, tfs=self.tfs, lengths=self.lengths)
        (path / _VOCAB).write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        (path / _IDS).write_text(json.dumps(self.chunk_ids), encoding="utf-8")
        (path / _VERSION).write_text(TOKENS_VERSION, encoding="utf-8")

    @staticmethod
    def is_current(path: Path) -> bool:
        """Whether ``path`` holds counts made with today's :func:`tokens`."""
        if not (path / _COUNTS).is_file():
            return False
        version = path / _VERSION
        return (version.read_text(encoding="utf-8").strip() if version.is_file() else "1") == TOKENS_VERSION

    @classmethod
    def load(cls, path: Path) -> "SegmentTerms":
        with np.load(path / _COUNTS) as counts:
            arrays = {name: counts[name] for name in ("indptr", "docs", "tfs", "lengths")}
        return cls(json.loads((path / _IDS).read_text(encoding="utf-8")),
                   json.loads((path / _VOCAB).read_text(encoding="utf-8")), **arrays)

    def postings(self, token: str) -> tuple[np.ndarray, np.ndarray]:
        j = self.column.get(token)
        if j is None:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        return self.docs[self.indptr[j]:self.indptr[j + 1]], self.tfs[self.indptr[j]:self.indptr[j + 1]]


class LexicalIndex:
    """BM25 over the live passages of one or more segments: ``parts`` pairs each segment's
    :class:`SegmentTerms` with a mask of its live passages (None: all of them)."""

    def __init__(self, parts: list[tuple[SegmentTerms, np.ndarray | None]]) -> None:
        self.parts = [terms for terms, _ in parts]
        self._parts = [(terms, np.ones(len(terms), bool) if live is None else np.asarray(live, bool))
                       for terms, live in parts]
        self.chunk_ids = [cid for terms, _ in self._parts for cid in terms.chunk_ids]
        live_lengths = np.concatenate([terms.lengths[live] for terms, live in self._parts] or [np.zeros(0)])
        self.size = len(live_lengths)
        average = float(live_lengths.mean()) if self.size else 1.0
        # The length part of BM25's denominator, per passage (dead passages never score).
        self._norms = [np.float32(K1) * (np.float32(1 - B) + np.float32(B) * terms.lengths.astype(np.float32)
                                         / np.float32(average or 1.0)) for terms, _ in self._parts]
        # Each token's number of live passages in each part, counted once (a generation never changes).
        self._live_counts = [_live_counts(terms, live) for terms, live in self._parts]
        self._offsets = np.cumsum([0] + [len(terms) for terms, _ in self._parts])
        # Token -> its tf parts (:meth:`_impact`), for the tokens with the longest postings
        # (common syllables: most of a query's cost), oldest dropped first; their size in bytes.
        self._impacts: dict[str, tuple[np.ndarray, np.ndarray] | np.ndarray] = {}
        self._cached = 0
        self._cache_lock = threading.Lock()  # searches run on several threads (rag.retrieval)
        self._exact: frozenset[str] | None = None
        self._near: frozenset[str] | None = None

    @classmethod
    def build(cls, passages: Iterable[tuple[str, str]]) -> "LexicalIndex":
        """The index of ``(chunk_id, text)`` pairs, one segment."""
        return cls([(SegmentTerms.build(passages), None)])

    def save(self, path: Path) -> None:
        """Save an index of one segment."""
        [(terms, _)] = self._parts
        terms.save(path)

    is_current = staticmethod(SegmentTerms.is_current)

    @classmethod
    def load(cls, path: Path) -> "LexicalIndex":
        return cls([(SegmentTerms.load(path), None)])

    def _frequency(self, token: str) -> int:
        """In how many live passages ``token`` occurs."""
        return sum(int(counts[terms.column[token]]) for (terms, _), counts in zip(self._parts, self._live_counts)
                   if token in terms.column)

    def exact_words(self) -> frozenset[str]:
        """Every syllable of the live passages as written, lower-cased (built on first use)."""
        if self._exact is None:
            self._exact = frozenset(token[1:] for (terms, _), counts in zip(self._parts, self._live_counts)
                                    for token, count in zip(terms.vocab, counts.tolist())
                                    if count and token.startswith("~"))
        return self._exact

    def near_words(self) -> frozenset[str]:
        """:meth:`exact_words` of five letters or more with one letter dropped (built on first use),
        to recognise a name typed one letter off."""
        if self._near is None:
            self._near = frozenset(near_spellings(self.exact_words()))
        return self._near

    def knows_joined(self, word: str) -> bool:
        """Whether ``word`` is two adjacent syllables of the index written as one ("Superbowl")."""
        folded = fold(word)
        return any(self._frequency(f"{folded[:i]}_{folded[i:]}") for i in range(2, len(folded) - 1))

    def knows(self, word: str) -> bool:
        """Whether a word occurs anywhere in the index, as written (any case)."""
        return self._frequency(f"~{word.lower()}") > 0

    def knows_folded(self, syllables: list[str]) -> bool:
        """Whether each syllable occurs in the index, diacritics aside (a word typed without them)."""
        return all(self._frequency(fold(s)) for s in syllables)

    def knows_word(self, syllables: list[str]) -> bool:
        """Whether a word of one or more syllables ("hộ", "chiếu") occurs in the index: each
        syllable as written (any case), each two adjacent ones side by side (folded)."""
        folded = [fold(s) for s in syllables]
        return (all(self.knows(s) for s in syllables)
                and all(self._frequency(f"{a}_{b}") for a, b in zip(folded, folded[1:])))

    def _impact(self, token: str) -> tuple[np.ndarray, np.ndarray] | np.ndarray:
        """The tf part of BM25, ``tf / (tf + k1 (1 - b + b len / avg))``, of the live passages
        holding ``token``: their positions in :attr:`chunk_ids` and their tf parts, or (for a
        token in :data:`DENSE_SHARE` of the passages) every passage's, 0 where absent."""
        found = self._impacts.get(token)
        if found is not None:
            return found
        docs, impacts = [], []
        for (terms, live), norms, offset in zip(self._parts, self._norms, self._offsets):
            held, tfs = terms.postings(token)
            keep = live[held]
            held, tfs = held[keep], tfs[keep]
            docs.append(held.astype(np.intp) + offset)  # numpy indexes with intp: no cast per query
            impacts.append(tfs / (norms[held] + tfs))
        found = (np.concatenate(docs), np.concatenate(impacts))
        postings = len(found[0])
        if postings >= DENSE_SHARE * len(self.chunk_ids):
            dense = np.zeros(len(self.chunk_ids), np.float32)
            dense[found[0]] = found[1]
            found = dense
        size = _nbytes(found)
        if postings >= CACHED_POSTINGS and size <= CACHE_BYTES:
            with self._cache_lock:
                if token not in self._impacts:
                    while self._impacts and self._cached + size > CACHE_BYTES:
                        self._cached -= _nbytes(self._impacts.pop(next(iter(self._impacts))))
                    self._impacts[token] = found
                    self._cached += size
        return found

    def prepare(self) -> int:
        """Compute the tf parts of the tokens held by :data:`DENSE_SHARE` of the passages or more
        (the commonest syllables, in most questions) before the first questions need them;
        a server does it on a thread when it opens an index. Returns how many."""
        threshold = max(DENSE_SHARE * len(self.chunk_ids), CACHED_POSTINGS)  # kept: only those
        common = {token for (terms, _), counts in zip(self._parts, self._live_counts)
                  for token in np.asarray(terms.vocab, dtype=object)[counts * len(self._parts) >= threshold]}
        common = sorted((t for t in common if self._frequency(t) >= threshold), key=self._frequency, reverse=True)
        for token in common:
            self._impact(token)
        return len(common)

    def scores(self, query: str) -> np.ndarray:
        """The BM25 score of every passage (in :attr:`chunk_ids` order; 0 for dead ones)."""
        scores = np.zeros(len(self.chunk_ids), dtype=np.float32)
        for token, repeats in Counter(tokens(query)).items():
            frequency = self._frequency(token)
            if not frequency:
                continue
            weight = np.float32(repeats) * np.float32(math.log(1 + (self.size - frequency + 0.5) / (frequency + 0.5)))
            found = self._impact(token)
            if isinstance(found, np.ndarray):  # the same sums: 0 added where the token is absent
                scores += weight * found
            else:
                scores[found[0]] += weight * found[1]
        return scores

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """``(chunk_id, bm25 score)`` best first; only live passages sharing a term with the query
        (and, when ``allowed`` is given, only those passages)."""
        if not self.size or not tokens(query):
            return []
        scores = self.scores(query)
        if allowed is not None:
            scores = np.where([cid in allowed for cid in self.chunk_ids], scores, 0.0)
        matching = np.flatnonzero(scores > 0)  # index order
        return [(self.chunk_ids[i], float(scores[i])) for i in matching[best_first(scores[matching], k)]]


def _nbytes(impact: tuple[np.ndarray, np.ndarray] | np.ndarray) -> int:
    return impact.nbytes if isinstance(impact, np.ndarray) else impact[0].nbytes + impact[1].nbytes


def _live_counts(terms: SegmentTerms, live: np.ndarray) -> np.ndarray:
    """How many live passages hold each token of ``terms.vocab``."""
    if not len(terms.docs):
        return np.zeros(len(terms.vocab), np.int64)
    starts = np.minimum(terms.indptr[:-1], len(terms.docs) - 1)  # reduceat needs starts in range
    held = np.add.reduceat(live[terms.docs].view(np.uint8), starts, dtype=np.int64)
    return np.where(np.diff(terms.indptr) > 0, held, 0)


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first; equal scores in index order, also at the
    cut. (numpy's partition and sort order equal values differently from one CPU to another.)"""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # a value: the same on any CPU
    top = np.flatnonzero(scores >= kth)  # every index at least as high, in index order
    return top[np.argsort(-scores[top], kind="stable")][:k]
