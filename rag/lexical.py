"""Lexical side of retrieval: BM25 (``bm25s``) over Vietnamese syllables.

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

The index lives inside each index generation and is rebuilt with it, so it never drifts from Chroma.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from .text import fold, near_spellings, words

_IDS = "chunk_ids.json"
_VERSION = "tokens_version"
#: Bump when :func:`tokens` changes: an index built with other tokens has its BM25 side rebuilt at
#: the next ingest (passages and vectors are kept). An index without the file was built by "1".
TOKENS_VERSION = "1"


def tokens(text: str) -> list[str]:
    exact = [w.lower() for w in words(text)]
    folded = [fold(w) for w in exact]
    bigrams = [f"{a}_{b}" for a, b in zip(folded, folded[1:])]
    return folded + bigrams + [f"~{w}" for w in exact]


class LexicalIndex:
    def __init__(self, retriever, chunk_ids: list[str]) -> None:
        self._retriever = retriever
        self.chunk_ids = chunk_ids
        self._exact: frozenset[str] | None = None
        self._near: frozenset[str] | None = None

    @classmethod
    def build(cls, passages: Iterable[tuple[str, str]]) -> "LexicalIndex":
        """The index of ``(chunk_id, text)`` pairs, read once. Each passage's tokens become
        numbers as it is read (the same BM25 scores as from token strings): at 10,000 articles
        (160,390 passages) the ingest's peak memory fell from 7.8 to 3.1 GiB."""
        import bm25s
        from bm25s.tokenization import Tokenized

        chunk_ids: list[str] = []
        vocab: dict[str, int] = {}
        token_ids = []
        for chunk_id, text in passages:
            chunk_ids.append(chunk_id)
            token_ids.append(np.fromiter((vocab.setdefault(t, len(vocab)) for t in tokens(text)), dtype=np.int32))
        retriever = bm25s.BM25()
        if chunk_ids:
            retriever.index(Tokenized(ids=token_ids, vocab=vocab), show_progress=False)
        return cls(retriever, chunk_ids)

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        if self.chunk_ids:
            self._retriever.save(str(path), show_progress=False)
        (path / _IDS).write_text(json.dumps(self.chunk_ids), encoding="utf-8")
        (path / _VERSION).write_text(TOKENS_VERSION, encoding="utf-8")

    @staticmethod
    def is_current(path: Path) -> bool:
        """Whether ``path`` holds an index built with today's :func:`tokens`."""
        if not (path / _IDS).is_file():
            return False
        version = path / _VERSION
        return (version.read_text(encoding="utf-8").strip() if version.is_file() else "1") == TOKENS_VERSION

    @classmethod
    def load(cls, path: Path) -> "LexicalIndex":
        import bm25s

        chunk_ids = json.loads((path / _IDS).read_text(encoding="utf-8"))
        retriever = bm25s.BM25.load(str(path), show_progress=False) if chunk_ids else None
        return cls(retriever, chunk_ids)

    def exact_words(self) -> frozenset[str]:
        """Every syllable of the index as written, lower-cased (built on first use)."""
        if self._exact is None:
            vocab = self._retriever.vocab_dict if self._retriever is not None else {}
            self._exact = frozenset(t[1:] for t in vocab if t.startswith("~"))
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
        return self._retriever is not None and any(
            f"{folded[:i]}_{folded[i:]}" in self._retriever.vocab_dict for i in range(2, len(folded) - 1))

    def knows(self, word: str) -> bool:
        """Whether a word occurs anywhere in the index, as written (any case)."""
        return self._retriever is not None and f"~{word.lower()}" in self._retriever.vocab_dict

    def search(self, query: str, k: int, allowed: set[str] | None = None) -> list[tuple[str, float]]:
        """``(chunk_id, bm25 score)`` best first; only passages sharing a term with the query
        (and, when ``allowed`` is given, only those passages)."""
        query_tokens = tokens(query)
        if not self.chunk_ids or not query_tokens:
            return []
        scores = self._retriever.get_scores(query_tokens)
        if allowed is not None:
            scores = np.where([cid in allowed for cid in self.chunk_ids], scores, 0.0)
        matching = np.flatnonzero(scores > 0)  # index order
        return [(self.chunk_ids[i], float(scores[i])) for i in matching[best_first(scores[matching], k)]]


def best_first(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first; equal scores in index order, also at the
    cut. (numpy's partition and sort order equal values differently from one CPU to another.)"""
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]  # a value: the same on any CPU
    top = np.flatnonzero(scores >= kth)  # every index at least as high, in index order
    return top[np.argsort(-scores[top], kind="stable")][:k]
