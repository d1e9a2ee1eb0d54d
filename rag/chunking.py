"""Stage 2: split an :class:`Article` into sentence-aware passages (:class:`Chunk`).

Passages hold a few whole sentences (at most ``max_words`` words; multilingual-e5-small reads
512 tokens, a Vietnamese syllable is about 1.5 of its tokens, so the default stays far below) and
repeat the previous passage's last sentence, so a fact split across a boundary is still found
whole. A sentence is only cut when it alone is longer than a passage.

Chunk ids are derived from the article id and the passage text: re-ingesting unchanged text gives
the same ids, and an edit changes only the ids of the passages it touches.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .corpus import Article
from .text import split_sentences, words

# Bump when the chunking rules change, so ingestion re-chunks every article.
CHUNKER_VERSION = "1"


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

    def embedding_text(self) -> str:
        """What the embedder reads: the title gives short passages their context."""
        return f"{self.title}\n{self.text}"

    def metadata(self) -> dict:
        """Chroma metadata (no ``None`` values; dates also as ``yyyymmdd`` ints for range filters)."""
        meta = {"doc_id": self.doc_id, "position": self.position, "title": self.title,
                "url": self.url, "outlet": self.outlet, "date": self.date, "author": self.author}
        if self.date:
            meta["date_num"] = int(self.date.replace("-", ""))
        return meta


def chunk_article(article: Article, max_words: int = 110) -> list[Chunk]:
    pieces: list[str] = []
    for paragraph in article.paragraphs:
        for sentence in split_sentences(paragraph):
            pieces.extend(_split_long(sentence, max_words))
    texts = _pack(pieces, max_words)
    chunks, seen = [], set()
    for position, text in enumerate(texts):
        # The id covers what is embedded (title + text), so a new title means new vectors.
        chunk_id = _chunk_id(article.doc_id, f"{article.title}\n{text}")
        while chunk_id in seen:  # the same passage twice in one article
            chunk_id = _chunk_id(article.doc_id, f"{article.title}\n{text}\x00{position}")
        seen.add(chunk_id)
        chunks.append(Chunk(chunk_id=chunk_id, doc_id=article.doc_id, position=position, text=text,
                            title=article.title, url=article.url, outlet=article.outlet,
                            date=article.date, author=article.author))
    return chunks


def _pack(sentences: list[str], max_words: int) -> list[str]:
    """Greedy packing of whole sentences, each passage starting with its predecessor's last."""
    passages: list[str] = []
    current: list[str] = []
    size = 0
    for sentence in sentences:
        n = len(words(sentence))
        if current and size + n > max_words:
            passages.append(" ".join(current))
            overlap = current[-1]
            overlap_size = len(words(overlap))
            # Keep the overlap only when it leaves room for the new sentence.
            current, size = ([overlap], overlap_size) if overlap_size + n <= max_words else ([], 0)
        current.append(sentence)
        size += n
    if current:
        passages.append(" ".join(current))
    return passages


def _split_long(sentence: str, max_words: int) -> list[str]:
    """A sentence longer than a passage is cut at clause marks, else between words."""
    tokens = sentence.split()
    if len(words(sentence)) <= max_words:
        return [sentence]
    parts, current = [], []
    for token in tokens:
        current.append(token)
        at_clause = token.endswith((",", ";", ":"))
        if len(current) >= max_words or (at_clause and len(current) >= max_words * 2 // 3):
            parts.append(" ".join(current))
            current = []
    if current:
        parts.append(" ".join(current))
    return parts


def _chunk_id(doc_id: str, text: str) -> str:
    return hashlib.sha1(f"{doc_id}\x00{text}".encode("utf-8")).hexdigest()[:20]
