"""Segments: the immutable parts an index generation is made of (rag.index).

A segment is a folder ``seg-NNNNNN/`` written once by the ingest that creates it and never
changed afterwards: ``chroma/`` (collections ``passages`` and ``sentences``, cosine space) and
``terms/`` (its passages' token counts for BM25, rag.lexical). A generation's manifest names its
segments and, for each article, the one segment it lives in (its *home*). An article updated or
removed stays in its old segment, dead: readers skip every passage and sentence found outside its
article's home.

Adding an article therefore writes a segment holding that article alone, however large the index:
the cost follows the article. So that segments stay few, an ingest also merges the newest
segments into its new one while the segment before them holds no more than twice their live
passages (:func:`to_merge`, Bentley and Saxe's logarithmic method): a passage is rewritten about
log₂(passages) times over the index's life, never re-embedded, and dead passages go with the merge.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np

from .chunking import Chunk

COLLECTION = "passages"
SENTENCES = "sentences"
CHROMA = "chroma"
TERMS = "terms"
SOURCE = "collection"  # in terms/: the id of the passages collection the counts were made from
WRITE_BATCH = 1000  # well under Chroma's max batch size
PREWARM_STEP = 4 << 20  # bytes of a file read ahead per hint (rag.segments.prewarm)


def client(path: Path):
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
    except ImportError as exc:  # pragma: no cover - depends on the install
        from .index import StoreError

        raise StoreError("The index needs chromadb: pip install chromadb") from exc
    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))


def collection(chroma, name: str = COLLECTION, create: bool = False):
    if create:
        return chroma.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    return chroma.get_collection(name, embedding_function=None)


class LocalSegment:
    """A segment's Chroma data in its own folder (the embedded store). A segment on a Chroma
    server is a ``rag.remote.RemoteSegment``: the same two collections, under the segment's name."""

    def __init__(self, folder: Path, create: bool = False) -> None:
        self.client = client(folder / CHROMA)
        self.passages = collection(self.client, COLLECTION, create)
        self.sentences = collection(self.client, SENTENCES, create)

    def close(self) -> None:
        self.client.close()


def files_to_prewarm(folder: Path, memory: int) -> list[Path]:
    """A segment's Chroma files, when together they take at most half of ``memory`` (bytes):
    more would only push one another, and everything else, out of the page cache."""
    try:
        files = sorted(p for p in (folder / CHROMA).rglob("*") if p.is_file())
        return files if sum(p.stat().st_size for p in files) <= memory // 2 else []
    except OSError:  # a private copy removed as its index closed: nothing to warm
        return []


def prewarm(folder: Path) -> int:
    """Have the kernel read a segment's Chroma files into the page cache (``posix_fadvise``
    hints: no copy into this process, no wait); returns the bytes asked for. A question reads a
    few dozen rows of the segment's SQLite file, scattered over it; on a cold cache (a service
    just started, a machine busy with other files) each was a disk read."""
    if not hasattr(os, "posix_fadvise"):
        return 0
    asked = 0
    for path in files_to_prewarm(folder, os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:  # removed meanwhile: nothing to warm
            continue
        try:  # a step at a time: one hint for a whole file reads only its first few MB
            size = os.fstat(fd).st_size
            for offset in range(0, size, PREWARM_STEP):
                os.posix_fadvise(fd, offset, PREWARM_STEP, os.POSIX_FADV_WILLNEED)
            asked += size
        finally:
            os.close(fd)
    return asked


def documents(source, batch: int = 5000) -> Iterator[tuple[str, str]]:
    """``(id, document)`` of every item of a Chroma collection, read a batch at a time."""
    offset = 0
    while True:
        got = source.get(include=["documents"], limit=batch, offset=offset)
        if not got["ids"]:
            return
        yield from zip(got["ids"], got["documents"])
        offset += len(got["ids"])


def batches(items: list, size: int = WRITE_BATCH) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def to_merge(sizes: list[int], new: int) -> int:
    """How many of the newest segments (live passages ``sizes``, oldest first) to merge into a
    new segment of ``new`` passages: while the segment before holds at most twice as many."""
    count, total = 0, new
    while count < len(sizes) and sizes[-1 - count] <= 2 * total:
        total += sizes[-1 - count]
        count += 1
    return count


def mean_vector(vectors: dict[str, np.ndarray], sentence_ids: list[str]) -> np.ndarray:
    mean = np.mean([vectors[sid] for sid in sentence_ids], axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def sentence_metadata(chunk: Chunk) -> dict:
    """A sentence's passage, and what filters need (article, outlet, date)."""
    meta = chunk.metadata()
    return {key: meta[key] for key in ("doc_id", "outlet", "date_num") if key in meta} | {"chunk_id": chunk.chunk_id}


class SegmentWriter:
    """Writes one new segment: passages of changed articles (from their chunks and sentence
    vectors) and rows copied as they are from the segments it merges."""

    def __init__(self, folder: Path, opener=LocalSegment) -> None:
        self.folder = folder
        folder.mkdir(parents=True)
        self._open = opener  # folder, create -> LocalSegment or rag.remote.RemoteSegment
        self._segment = opener(folder, create=True)
        self._passages, self._sentences = self._segment.passages, self._segment.sentences
        self._texts: dict[str, str] = {}  # chunk id -> text, for the token counts
        self.passages_written = 0
        self.sentences_written = 0

    def add_chunks(self, chunks: list[Chunk], vectors: dict[str, np.ndarray]) -> None:
        """Passages of changed articles; ``vectors`` holds each of their sentences' vectors. A
        sentence is stored once, labelled with its first passage where it is not the one repeated
        from the passage before."""
        for batch in batches(chunks):
            self._passages.add(ids=[c.chunk_id for c in batch],
                               embeddings=np.stack([mean_vector(vectors, c.sentence_ids()) for c in batch]),
                               documents=[c.text for c in batch], metadatas=[c.metadata() for c in batch])
        self._texts.update((c.chunk_id, c.text) for c in chunks)
        self.passages_written += len(chunks)
        home: dict[str, tuple[str, Chunk]] = {}
        for chunk in sorted(chunks, key=lambda c: (c.doc_id, c.position)):
            for i, (sid, text) in enumerate(zip(chunk.sentence_ids(), chunk.sentences)):
                if i >= chunk.overlap:
                    home.setdefault(sid, (text, chunk))
        rows = sorted(home.items())
        for batch in batches(rows):
            self._sentences.add(ids=[sid for sid, _ in batch],
                                embeddings=np.stack([vectors[sid] for sid, _ in batch]),
                                documents=[text for _, (text, _) in batch],
                                metadatas=[sentence_metadata(chunk) for _, (_, chunk) in batch])
        self.sentences_written += len(rows)

    def copy_from(self, source: Path, chunk_ids: list[str], sentence_ids: list[str]) -> None:
        """Rows of another segment, as they are (vectors, texts, metadata)."""
        chroma = self._open(source)
        try:
            for name, ids, target in ((COLLECTION, chunk_ids, self._passages),
                                      (SENTENCES, sentence_ids, self._sentences)):
                origin = chroma.passages if name == COLLECTION else chroma.sentences
                for batch in batches(ids):
                    got = origin.get(ids=batch, include=["embeddings", "documents", "metadatas"])
                    target.add(ids=got["ids"], embeddings=np.asarray(got["embeddings"], dtype=np.float32),
                               documents=got["documents"], metadatas=got["metadatas"])
                    if name == COLLECTION:
                        self._texts.update(zip(got["ids"], got["documents"]))
            self.passages_written += len(chunk_ids)
            self.sentences_written += len(sentence_ids)
        finally:
            chroma.close()

    def vectors(self, source: Path, sentence_ids: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors of sentences of another segment."""
        chroma = self._open(source)
        try:
            found = {}
            sentences = chroma.sentences
            for batch in batches(sentence_ids):
                got = sentences.get(ids=batch, include=["embeddings"])
                found.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
            return found
        finally:
            chroma.close()

    def finish(self) -> tuple[int, int]:
        """Write the token counts and close; ``(passages, sentences)`` as Chroma counts them."""
        from .lexical import SegmentTerms

        try:
            counts = self._passages.count(), self._sentences.count()
            order = sorted(self._texts)  # a fixed order: BM25 lists equal scores in it
            SegmentTerms.build((cid, self._texts[cid]) for cid in order).save(self.folder / TERMS)
            # Which collection the counts are of: a Chroma server's readers keep them as a cache.
            (self.folder / TERMS / SOURCE).write_text(str(self._passages.id), encoding="utf-8")
            return counts
        finally:
            self._segment.close()
