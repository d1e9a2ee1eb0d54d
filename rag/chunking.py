"""Stage 2: split an :class:`Article` into sentence-aware passages (:class:`Chunk`).

Passages hold whole sentences, packed up to a target size in words (Vietnamese syllables; one is
about 1.2 multilingual-e5-small tokens), and repeat the previous passage's last sentence, so a
fact split across a boundary is still found whole. News sentences are long (often 80-100 words),
so the target is soft: a passage may exceed it to keep sentences whole, up to ``MAX_WORDS``,
far below the model's 512 tokens. Only a sentence longer than that is cut, at clause marks.

Chunk ids are derived from the article id and the passage text: re-ingesting unchanged text gives
the same ids, and an edit changes only the ids of the passages it touches.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .corpus import Article
from .settings import Settings
from .text import split_sentences, words

# Bump when the chunking rules change, so ingestion re-chunks every article.
CHUNKER_VERSION = "5"
# Hard cap for one passage, in words: about 350 e5 tokens, safely under the model's 512.
MAX_WORDS = 300


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    position: int  # 0-based order within the article
    text: str
    title: str
    url: str = ""
    outlet: str = ""
    date: str = ""
    author: str = ""
    sentences: tuple[str, ...] = ()  # the passage's sentences; ``text`` joins them
    overlap: int = 0  # how many leading sentences repeat the previous passage (0 or 1)

    def sentence_ids(self) -> list[str]:
        """Ids of the passage's sentences: one per distinct sentence of the article."""
        return [sentence_id(self.doc_id, s) for s in self.sentences]

    def metadata(self) -> dict:
        """Chroma metadata (no ``None`` values; dates also as ``yyyymmdd`` ints for range filters)."""
        meta = {"doc_id": self.doc_id, "position": self.position, "title": self.title,
                "url": self.url, "outlet": self.outlet, "date": self.date, "author": self.author,
                "sentence_ends": sentence_ends(self.sentences)}
        if self.date:
            meta["date_num"] = int(self.date.replace("-", ""))
        return meta


def chunk_article(article: Article, target_words: int = Settings.chunk_words) -> list[Chunk]:
    pieces: list[str] = []
    for paragraph in article.paragraphs:
        for sentence in split_sentences(paragraph):
            pieces.extend(_split_long(sentence, MAX_WORDS))
    chunks, seen = [], set()
    for position, (sentences, overlap) in enumerate(_pack(pieces, target_words, MAX_WORDS)):
        text = " ".join(sentences)
        # The id covers the title too: metadata shown with a passage belongs to its identity.
        chunk_id = _chunk_id(article.doc_id, f"{article.title}\n{text}")
        while chunk_id in seen:  # the same passage twice in one article
            chunk_id = _chunk_id(article.doc_id, f"{article.title}\n{text}\x00{position}")
        seen.add(chunk_id)
        chunks.append(Chunk(chunk_id=chunk_id, doc_id=article.doc_id, position=position, text=text,
                            title=article.title, url=article.url, outlet=article.outlet,
                            date=article.date, author=article.author, sentences=tuple(sentences),
                            overlap=overlap))
    return chunks


def _pack(sentences: list[str], target: int, limit: int) -> list[tuple[list[str], int]]:
    """Greedy packing of whole sentences up to ``target`` words; each passage after the first
    starts with its predecessor's last sentence, unless that would pass ``limit``.
    Returns ``(sentences, overlap)`` pairs, ``overlap`` counting the repeated leading sentence."""
    passages: list[tuple[list[str], int]] = []
    current: list[str] = []
    size = fresh = 0  # fresh: sentences not carried over from the previous passage
    for sentence in sentences:
        n = len(words(sentence))
        if fresh and size + n > target:
            passages.append((current, len(current) - fresh))
            overlap = current[-1]
            overlap_size = len(words(overlap))
            current, size = ([overlap], overlap_size) if overlap_size + n <= limit else ([], 0)
            fresh = 0
        current.append(sentence)
        size += n
        fresh += 1
    if fresh:
        passages.append((current, len(current) - fresh))
    return passages


def _split_long(sentence: str, limit: int) -> list[str]:
    """A sentence longer than ``limit`` words is cut at clause marks, else between words."""
    if len(words(sentence)) <= limit:
        return [sentence]
    parts, current = [], []
    for token in sentence.split():
        current.append(token)
        at_clause = token.endswith((",", ";", ":"))
        if len(current) >= limit or (at_clause and len(current) >= limit * 2 // 3):
            parts.append(" ".join(current))
            current = []
    if current:
        parts.append(" ".join(current))
    return parts


def sentence_ends(sentences) -> str:
    """Where each sentence ends in the joined passage text, e.g. ``"95,180"`` (Chroma metadata
    holds no lists); :func:`split_at_ends` recovers the exact sentences."""
    ends, position = [], -1
    for sentence in sentences:
        position += len(sentence) + 1
        ends.append(str(position))
    return ",".join(ends)


def split_at_ends(text: str, ends: str) -> tuple[str, ...]:
    if not ends:
        return (text,)
    sentences, start = [], 0
    for end in map(int, ends.split(",")):
        sentences.append(text[start:end])
        start = end + 1
    return tuple(sentences)


def sentence_id(doc_id: str, sentence: str) -> str:
    return _chunk_id(doc_id, f"sentence\x00{sentence}")


def _chunk_id(doc_id: str, text: str) -> str:
    return hashlib.sha1(f"{doc_id}\x00{text}".encode("utf-8")).hexdigest()[:20]
