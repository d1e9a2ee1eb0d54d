"""Stage 4: the persisted index (Chroma) and incremental ingestion.

Layout of the store folder::

    vectorstore/
      CURRENT                 name of the live generation, replaced atomically
      gen-000007/chroma/      Chroma PersistentClient folder (cosine space)
      gen-000007/manifest.json  embedder, chunker, and each article's hash and chunk ids
      gen-000007/bm25/        the lexical (BM25) index of the same passages, and the version of its
                              tokens (a new version rebuilds it at the next ingest, nothing re-embedded)
      .pending-embeddings.sqlite  vectors of an ingest that has not finished (resume journal)
      .lock                   held by the one ingest that may run at a time

Each distinct sentence of an article is embedded once (collection ``sentences``); a passage's
vector (collection ``passages``) is the normalised mean of its sentences' vectors. Sentences are
what questions match best (one fact each), passages what answers cite and show; the overlap
between passages costs no extra embedding.

An ingest never writes to the live generation: it copies it, applies the changes to the copy and
then points ``CURRENT`` at the copy. A crash or ``kill -9`` at any moment leaves the previous
generation live and intact; vectors already computed wait in the journal, so a re-run resumes
instead of starting over. Unchanged articles are recognised by their hash and never re-embedded.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .chunking import CHUNKER_VERSION, Chunk, chunk_article, sentence_id, split_at_ends
from .corpus import LoadFailure, load_corpus
from .lexical import LexicalIndex
from .settings import Settings

COLLECTION = "passages"
SENTENCES = "sentences"
MANIFEST_FORMAT = 1
_CURRENT = "CURRENT"
_JOURNAL = ".pending-embeddings.sqlite"
_WRITE_BATCH = 1000  # well under Chroma's max batch size
_LEXICAL = "bm25"


class StoreError(RuntimeError):
    """Base class for index problems the user can act on."""


class IndexMissingError(StoreError):
    pass


class IndexMismatchError(StoreError):
    pass


class ReadOnlyStoreError(StoreError):
    """The store folder may not be written by this process: the index in place can only be read."""


class CorpusError(StoreError):
    """The corpus folder cannot refresh the index (missing, or nothing in it to index)."""


class CorpusMissingError(CorpusError):
    pass


class EmptyCorpusError(CorpusError):
    """Indexing the corpus would leave an empty index, and that was not asked for."""

    def __init__(self, message: str, failed: list[LoadFailure]) -> None:
        super().__init__(message)
        self.failed = failed


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with its article's metadata.

    ``score`` ranks hits of one search: cosine similarity from dense search, the fused
    reciprocal-rank score from hybrid retrieval."""
    chunk_id: str
    doc_id: str
    text: str
    title: str
    score: float
    position: int = 0
    url: str = ""
    outlet: str = ""
    date: str = ""
    author: str = ""
    sentences: tuple[str, ...] = ()  # the passage's sentences, exactly as embedded

    def sentence_ids(self) -> list[str]:
        return [sentence_id(self.doc_id, s) for s in self.sentences]


@dataclass
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[LoadFailure] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (source path, source path kept)
    sources: dict[str, str] = field(default_factory=dict)  # doc id -> source path, for the per-format line
    chunks_added: int = 0  # new passages written (their sentences may have been embedded before)
    sentences_embedded: int = 0
    sentences_resumed: int = 0  # of those, taken from the journal of an interrupted ingest
    chunks_deleted: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    generation: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [
            f"Articles: {len(self.added)} added, {len(self.updated)} updated, {len(self.removed)} removed, "
            f"{len(self.unchanged)} unchanged, {len(self.failed)} failed",
            f"Passages: {self.chunks_added} new ({self.sentences_embedded} sentences embedded"
            + (f", {self.sentences_resumed} of them by an interrupted run" if self.sentences_resumed else "")
            + f"), {self.chunks_deleted} deleted, {self.chunks_total} in the index",
            f"Time: {self.seconds:.1f} s" + (f" (index {self.generation})" if self.generation else ""),
        ]
        if by_format := self.by_format():
            lines.append("By format: " + "; ".join(
                f"{suffix} " + ", ".join(f"{n} {what}" for what, n in counts.items()) for suffix, counts in by_format.items()))
        lines += [f"FAILED {failure}" for failure in self.failed]
        lines += [f"duplicate (the same article as {kept}, indexed once) {path}" for path, kept in self.duplicates]
        lines += [f"ignored (unsupported file type) {path}" for path in self.ignored]
        return "\n".join(lines)

    def by_format(self) -> dict[str, dict[str, int]]:
        """``{".html": {"added": 2, "duplicate": 1}, …}``: what each file type added and skipped."""
        def suffix(path: str) -> str:
            return Path(path.split(":", 1)[0]).suffix.lower() or "(none)"

        counts: dict[str, dict[str, int]] = {}
        groups = [("added", [self.sources.get(d, "") for d in self.added]),
                  ("updated", [self.sources.get(d, "") for d in self.updated]),
                  ("unchanged", [self.sources.get(d, "") for d in self.unchanged]),
                  ("removed", [self.sources.get(d, "") for d in self.removed]),
                  ("failed", [f.path for f in self.failed]),
                  ("duplicate", [path for path, _ in self.duplicates]),
                  ("ignored", self.ignored)]
        for what, paths in groups:
            for path in paths:
                if path:
                    group = counts.setdefault(suffix(path), {})
                    group[what] = group.get(what, 0) + 1
        return dict(sorted(counts.items()))


# --------------------------------------------------------------------------- store folder


class Store:
    """The store folder: which generation is live, its manifest, the ingest lock."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def current(self) -> Path | None:
        try:
            name = (self.root / _CURRENT).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        path = self.root / name
        return path if (path / "manifest.json").is_file() else None

    def manifest(self) -> dict | None:
        current = self.current()
        if current is None:
            return None
        return json.loads((current / "manifest.json").read_text(encoding="utf-8"))

    @contextlib.contextmanager
    def lock(self, log: Callable[[str], None]) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log("Another ingest is running on this store; waiting for it to finish…")
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield  # the OS releases the lock if this process dies

    def writable(self) -> bool:
        """Whether this process may write the store folder (create it, when it does not exist yet)."""
        path = self.root
        while not path.exists():
            if path.parent == path:
                return False
            path = path.parent
        return os.access(path, os.W_OK | os.X_OK)

    def next_generation_name(self) -> str:
        numbers = [int(p.name[4:]) for p in self.root.glob("gen-*") if p.name[4:].isdigit()]
        return f"gen-{max(numbers, default=0) + 1:06d}"

    def publish(self, staged: Path, name: str) -> Path:
        """Make ``staged`` the live generation, atomically."""
        final = self.root / name
        os.replace(staged, final)
        tmp = self.root / f".{_CURRENT}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(name + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.root / _CURRENT)
        _fsync_dir(self.root)
        return final

    def remove_stale(self, keep: Iterable[Path]) -> None:
        """Delete unfinished staging folders and generations older than the ones kept."""
        keep = {p.resolve() for p in keep if p is not None}
        for path in list(self.root.glob("gen-*")) + list(self.root.glob(".staging-*")):
            if path.resolve() not in keep:
                shutil.rmtree(path, ignore_errors=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- resume journal


class EmbeddingJournal:
    """Sentence vectors computed by an ingest not yet published (SQLite, one commit a batch)."""

    def __init__(self, path: Path, embedder: str) -> None:
        self.path = path
        self.embedder = embedder
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (embedder TEXT, chunk_id TEXT, "
                         "vector BLOB, PRIMARY KEY (embedder, chunk_id))")

    def get(self, ids: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            rows = self._db.execute(
                f"SELECT chunk_id, vector FROM vectors WHERE embedder = ? AND chunk_id IN "
                f"({','.join('?' * len(part))})", [self.embedder, *part])
            found.update({cid: np.frombuffer(blob, dtype=np.float32) for cid, blob in rows})
        return found

    def put(self, ids: list[str], vectors: np.ndarray) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(self.embedder, sid, vec.astype(np.float32).tobytes()) for sid, vec in zip(ids, vectors)])

    def discard(self) -> None:
        self._db.close()
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        self._db.close()


# --------------------------------------------------------------------------- chroma helpers


def _client(path: Path):
    try:
        import chromadb
        from chromadb.config import Settings as ChromaSettings
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise StoreError("The index needs chromadb: pip install chromadb") from exc
    return chromadb.PersistentClient(path=str(path), settings=ChromaSettings(anonymized_telemetry=False))


def _collection(client, name: str = COLLECTION, create: bool = False):
    if create:
        return client.get_or_create_collection(
            name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
    return client.get_collection(name, embedding_function=None)


def _documents(collection, batch: int = 5000) -> Iterator[tuple[str, str]]:
    """``(id, document)`` of every item of a Chroma collection, read a batch at a time."""
    offset = 0
    while True:
        got = collection.get(include=["documents"], limit=batch, offset=offset)
        if not got["ids"]:
            return
        yield from zip(got["ids"], got["documents"])
        offset += len(got["ids"])


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --------------------------------------------------------------------------- ingestion


def _embedder_identity(embeddings) -> dict:
    return {"name": embeddings.name, "dimension": embeddings.dimension}


def _check_embedder(manifest: dict, embeddings, store: Path) -> None:
    built = manifest["embedder"]
    if built != _embedder_identity(embeddings):
        raise IndexMismatchError(
            f"The index in {store} was built with the embedder '{built['name']}' "
            f"({built['dimension']} dimensions), but the configured embedder is "
            f"'{embeddings.name}' ({embeddings.dimension} dimensions). "
            f"Run `rag ingest --rebuild` to re-embed the corpus with the configured embedder.")


def ingest(settings: Settings, embeddings, *, rebuild: bool = False, allow_empty: bool = False,
           progress: bool = True, log: Callable[[str], None] | None = None) -> IngestReport:
    """Bring the index in ``settings.store_dir`` in line with ``settings.corpus_dir``.

    A corpus without a single article does not empty an index (or build an empty one) unless
    ``allow_empty``: :class:`EmptyCorpusError`, and the index in place stays as it is."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    store = Store(settings.store_dir)
    report = IngestReport()
    if not store.writable():
        raise ReadOnlyStoreError(
            f"The index folder {store.root} is read-only for this process: the index cannot be "
            f"{'updated' if store.current() is not None else 'built'}. Run `rag ingest` as a user who may "
            f"write it (an index in place can still be served).")
    with store.lock(log):
        current = store.current()
        store.remove_stale(keep=_kept_generations(store, current))
        old = None if rebuild else store.manifest()
        if old is not None:
            _check_embedder(old, embeddings, store.root)
        old_articles: dict = old["articles"] if old else {}

        if not Path(settings.corpus_dir).is_dir():
            raise CorpusMissingError(
                f"Corpus folder not found: {settings.corpus_dir}. Put the articles (.txt, .md, .jsonl, .html, "
                f".pdf, .docx) there, or point --corpus / RAG_CORPUS_DIR at their folder.")
        loaded = load_corpus(settings.corpus_dir, settings.max_article_bytes)
        report.failed, report.ignored, report.duplicates = loaded.failures, loaded.ignored, loaded.duplicates
        report.sources = {a.doc_id: a.source_path for a in loaded.articles}
        chunker = f"{CHUNKER_VERSION}:{settings.chunk_words}"

        new_articles: dict[str, dict] = {}
        new_chunks: dict[str, Chunk] = {}  # chunks of added or updated articles
        for article in loaded.articles:
            digest = f"{article.content_hash()}:{chunker}"
            previous = old_articles.get(article.doc_id)
            if previous is not None and previous["hash"] == digest:
                report.unchanged.append(article.doc_id)
                new_articles[article.doc_id] = previous
                continue
            (report.updated if previous else report.added).append(article.doc_id)
            chunks = chunk_article(article, settings.chunk_words)
            new_chunks.update((c.chunk_id, c) for c in chunks)
            new_articles[article.doc_id] = {
                "hash": digest, "chunks": [c.chunk_id for c in chunks],
                "sentences": sorted({sid for c in chunks for sid in c.sentence_ids()}),
                "source": article.source_path, "title": article.title}
        # An article whose file failed to load keeps its indexed version: a broken file loses nothing.
        failed_files = {f.path.split(":", 1)[0] for f in loaded.failures}
        for doc_id, entry in old_articles.items():
            if doc_id in new_articles:
                continue
            if entry["source"].split(":", 1)[0] in failed_files:
                new_articles[doc_id] = entry
            else:
                report.removed.append(doc_id)
                report.sources[doc_id] = entry["source"]
        if not new_articles and not allow_empty and (old_articles or old is None):
            raise EmptyCorpusError(_empty_corpus_message(settings, loaded.failures, len(old_articles)),
                                   loaded.failures)

        old_ids = {cid for entry in old_articles.values() for cid in entry["chunks"]}
        live_ids = {cid for entry in new_articles.values() for cid in entry["chunks"]}
        old_sids = {sid for entry in old_articles.values() for sid in entry["sentences"]}
        live_sids = {sid for entry in new_articles.values() for sid in entry["sentences"]}
        report.chunks_total = len(live_ids)
        up_to_date = current is not None and LexicalIndex.is_current(current / _LEXICAL)
        if old is not None and up_to_date and not (report.added or report.updated or report.removed):
            report.generation = current.name if current else ""
            report.seconds = time.perf_counter() - started
            return report

        # Each sentence of a changed article, with its home: the first passage where it is not the
        # sentence repeated from the passage before.
        home: dict[str, tuple[str, Chunk]] = {}
        for chunk in sorted(new_chunks.values(), key=lambda c: (c.doc_id, c.position)):
            for i, (sid, text) in enumerate(zip(chunk.sentence_ids(), chunk.sentences)):
                if i >= chunk.overlap:
                    home.setdefault(sid, (text, chunk))
        to_embed = [(sid, text) for sid, (text, _) in home.items() if sid not in old_sids]
        to_write = [c for cid, c in new_chunks.items() if cid not in old_ids]
        to_relabel = [c for cid, c in new_chunks.items() if cid in old_ids]  # same text, new position
        to_delete = sorted(old_ids - live_ids)
        sentences_to_delete = sorted(old_sids - live_sids)
        journal = EmbeddingJournal(store.root / _JOURNAL, embeddings.name)
        vectors = _embed_with_journal(to_embed, embeddings, journal, settings.embed_batch, progress, log, report)

        log("Writing a new index generation…")
        name = store.next_generation_name()
        staged = store.root / f".staging-{name}"
        if current is not None and old is not None:
            _copy_files(current, staged)  # writable even where the live generation's files are not
        else:
            staged.mkdir(parents=True)
        client = _client(staged / "chroma")
        try:
            passages = _collection(client, COLLECTION, create=True)
            sentences = _collection(client, SENTENCES, create=True)
            # Vectors of unchanged sentences that new passages reuse.
            reused = sorted({sid for c in to_write for sid in c.sentence_ids()} - set(vectors))
            for batch in _batches(reused, _WRITE_BATCH):
                got = sentences.get(ids=batch, include=["embeddings"])
                vectors.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
            for batch in _batches(to_delete, _WRITE_BATCH):
                passages.delete(ids=batch)
            for batch in _batches(sentences_to_delete, _WRITE_BATCH):
                sentences.delete(ids=batch)
            for batch in _batches(to_write, _WRITE_BATCH):
                passages.upsert(ids=[c.chunk_id for c in batch],
                                embeddings=np.stack([_mean_vector(vectors, c.sentence_ids()) for c in batch]),
                                documents=[c.text for c in batch], metadatas=[c.metadata() for c in batch])
            for batch in _batches(to_relabel, _WRITE_BATCH):
                passages.update(ids=[c.chunk_id for c in batch], metadatas=[c.metadata() for c in batch])
            # Every sentence of a changed article is (re)labelled with the passage it now belongs to.
            homes = sorted(home.items())
            for batch in _batches([(sid, t, c) for sid, (t, c) in homes if sid not in old_sids], _WRITE_BATCH):
                sentences.upsert(ids=[sid for sid, _, _ in batch],
                                 embeddings=np.stack([vectors[sid] for sid, _, _ in batch]),
                                 documents=[t for _, t, _ in batch],
                                 metadatas=[_sentence_metadata(c) for _, _, c in batch])
            for batch in _batches([(sid, c) for sid, (_, c) in homes if sid in old_sids], _WRITE_BATCH):
                sentences.update(ids=[sid for sid, _ in batch],
                                 metadatas=[_sentence_metadata(c) for _, c in batch])
            count, sentence_count = passages.count(), sentences.count()
            LexicalIndex.build(_documents(passages)).save(staged / _LEXICAL)
        finally:
            client.close()
        if (count, sentence_count) != (len(live_ids), len(live_sids)):
            raise StoreError(f"Internal error: the new index holds {count} passages and {sentence_count} "
                             f"sentences, expected {len(live_ids)} and {len(live_sids)}")
        manifest = {"format": MANIFEST_FORMAT, "embedder": _embedder_identity(embeddings),
                    "chunker": chunker, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "articles": new_articles}
        (staged / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1),
                                              encoding="utf-8")
        published = store.publish(staged, name)
        journal.discard()
        store.remove_stale(keep=[published, current])
        report.chunks_added = len(to_write)
        report.chunks_deleted = len(to_delete)
        report.generation = name
        report.seconds = time.perf_counter() - started
        return report


def _empty_corpus_message(settings: Settings, failures: list[LoadFailure], indexed: int) -> str:
    found = (f"No article in {settings.corpus_dir} could be loaded ({len(failures)} failed)" if failures else
             f"The corpus folder {settings.corpus_dir} holds no articles (.txt, .md, .jsonl, .html, .pdf, "
             ".docx)")
    if indexed:
        return (f"{found}: indexing it would remove all {indexed} articles from the index. The index is "
                f"unchanged; run `rag ingest --allow-empty` to empty it.")
    return f"{found}: there is nothing to index. Add articles, or run `rag ingest --allow-empty` to build an empty index."


def _sentence_metadata(chunk: Chunk) -> dict:
    """A sentence's passage, and what filters need (article, outlet, date)."""
    meta = chunk.metadata()
    return {key: meta[key] for key in ("doc_id", "outlet", "date_num") if key in meta} | {"chunk_id": chunk.chunk_id}


def _mean_vector(vectors: dict[str, np.ndarray], sentence_ids: list[str]) -> np.ndarray:
    mean = np.mean([vectors[sid] for sid in sentence_ids], axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def ensure_index(settings: Settings, embeddings, *, refresh: bool = False, keep_serving: bool = False,
                 log: Callable[[str], None] | None = None) -> IngestReport | None:
    """Build the index when it is missing; with ``refresh``, also bring it up to date.

    An index in a read-only store is left as it is (a note says so). With ``keep_serving`` (the
    chat), an index in place also stays in use when the corpus cannot refresh it (its folder is
    missing or holds no articles): a warning says why, and nothing is lost."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    store = Store(settings.store_dir)
    current = store.current()
    if current is not None and not refresh:
        return None
    if current is not None and not store.writable():
        log(f"note: the index folder {store.root} is read-only for this process: the index in place "
            f"({current.name}) is used as it is, not refreshed from {settings.corpus_dir}")
        return None
    if current is None:
        log(f"No index in {settings.store_dir} yet: building it from {settings.corpus_dir}…")
    try:
        report = ingest(settings, embeddings, log=log)
    except CorpusError as exc:
        if not keep_serving or current is None:
            raise
        log(f"warning: the index was not refreshed: {exc}")
        return None
    log(report.summary())
    return report


def _kept_generations(store: Store, current: Path | None) -> list[Path]:
    """The live generation and the one before it (a running app may still have it open)."""
    if current is None:
        return []
    older = sorted((p for p in store.root.glob("gen-*") if p.name < current.name), key=lambda p: p.name)
    return [current] + older[-1:]


def _embed_with_journal(sentences: list[tuple[str, str]], embeddings, journal: EmbeddingJournal,
                        batch_size: int, progress: bool, log: Callable[[str], None],
                        report: IngestReport) -> dict[str, np.ndarray]:
    """``sentence id -> vector`` for ``(id, text)`` pairs, resuming from the journal."""
    try:
        vectors = journal.get([sid for sid, _ in sentences])
        report.sentences_resumed = len(vectors)
        report.sentences_embedded = len(sentences)
        missing = [(sid, text) for sid, text in sentences if sid not in vectors]
        if not missing:
            return vectors
        log(f"Embedding {len(missing)} sentences with {embeddings.name}"
            + (f" ({len(vectors)} already done by an interrupted run)" if vectors else "") + "…")
        from tqdm import tqdm

        with tqdm(total=len(missing), unit="sentence", disable=not progress, file=sys.stderr,
                  mininterval=0.5) as bar:
            for batch in _batches(missing, batch_size):
                batch_vectors = np.asarray(embeddings.embed_documents([text for _, text in batch]),
                                           dtype=np.float32)
                journal.put([sid for sid, _ in batch], batch_vectors)
                vectors.update(zip((sid for sid, _ in batch), batch_vectors))
                bar.update(len(batch))
        return vectors
    finally:
        journal.close()


# --------------------------------------------------------------------------- reading


def _hit(chunk_id: str, text: str, meta: dict, score: float) -> Hit:
    return Hit(chunk_id=chunk_id, doc_id=meta["doc_id"], text=text, title=meta["title"], score=score,
               position=int(meta.get("position", 0)), url=meta.get("url", ""), outlet=meta.get("outlet", ""),
               date=meta.get("date", ""), author=meta.get("author", ""),
               sentences=split_at_ends(text, meta.get("sentence_ends", "")))


class VectorIndex:
    """The live generation, opened for search."""

    def __init__(self, path: Path, manifest: dict, embeddings,
                 log: Callable[[str], None] | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self.embeddings = embeddings
        chroma = path / "chroma"
        #: True when the generation may not be written by this process (a read-only store): Chroma
        #: writes to its database even to read it, so a private copy of it is opened instead.
        self.read_only = not _writable_tree(chroma)
        self._cleanup = None
        if self.read_only:
            copy = Path(tempfile.mkdtemp(prefix="rag-index-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, copy, True)
            chroma = _copy_files(chroma, copy / "chroma")
            (log or _stderr)(f"note: the index {path} is read-only for this process: it is served from a "
                             f"private copy ({copy}) and cannot be updated")
        self._client = _client(chroma)
        self._collection = _collection(self._client, COLLECTION)
        self._sentences = _collection(self._client, SENTENCES)
        # A published generation never changes, so its sizes are read once.
        self._count, self._sentence_count = self._collection.count(), self._sentences.count()
        self.lexical = LexicalIndex.load(path / _LEXICAL)

    @classmethod
    def open(cls, settings: Settings, embeddings, log: Callable[[str], None] | None = None) -> "VectorIndex":
        store = Store(settings.store_dir)
        current = store.current()
        if current is None:
            raise IndexMissingError(f"No index in {store.root}. Run `rag ingest` to build it from "
                                    f"{settings.corpus_dir}.")
        manifest = json.loads((current / "manifest.json").read_text(encoding="utf-8"))
        _check_embedder(manifest, embeddings, store.root)
        return cls(current, manifest, embeddings, log=log)

    def __len__(self) -> int:
        return self._count

    def search(self, query: str, k: int = 4, where: dict | None = None) -> list[Hit]:
        """Dense passage search (cosine similarity of the passage vectors)."""
        if not query.strip():
            return []
        return self.search_vector(self.embeddings.embed_query(query), k, where)

    def search_vector(self, vector, k: int = 4, where: dict | None = None) -> list[Hit]:
        n = len(self)
        if n == 0:
            return []
        result = self._collection.query(query_embeddings=[vector], n_results=min(k, n), where=where,
                                        include=["documents", "metadatas", "distances"])
        return [_hit(chunk_id, text, meta, 1.0 - float(distance))
                for chunk_id, text, meta, distance in zip(result["ids"][0], result["documents"][0],
                                                          result["metadatas"][0], result["distances"][0])]

    def sentence_search_vector(self, vector, k: int = 10, where: dict | None = None) -> list[tuple[str, str, float]]:
        """The sentences closest to a query vector: ``(chunk_id of its passage, sentence, similarity)``."""
        n = self._sentence_count
        if n == 0:
            return []
        result = self._sentences.query(query_embeddings=[vector], n_results=min(k, n), where=where,
                                       include=["documents", "metadatas", "distances"])
        return [(meta["chunk_id"], text, 1.0 - float(distance))
                for text, meta, distance in zip(result["documents"][0], result["metadatas"][0],
                                                result["distances"][0])]

    def sentence_vectors(self, sentence_ids: list[str]) -> dict[str, np.ndarray]:
        if not sentence_ids:
            return {}
        got = self._sentences.get(ids=list(dict.fromkeys(sentence_ids)), include=["embeddings"])
        return dict(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))

    def lexical_search(self, query: str, k: int = 4, where: dict | None = None) -> list[tuple[str, float]]:
        if where is None:
            return self.lexical.search(query, k)
        allowed = set(self._collection.get(where=where, include=[])["ids"])
        return self.lexical.search(query, k, allowed=allowed)

    def get(self, chunk_ids: list[str]) -> list[Hit]:
        """Stored passages by id, in the order asked."""
        if not chunk_ids:
            return []
        result = self._collection.get(ids=list(chunk_ids), include=["documents", "metadatas"])
        found = {cid: _hit(cid, text, meta, 0.0)
                 for cid, text, meta in zip(result["ids"], result["documents"], result["metadatas"])}
        return [found[cid] for cid in chunk_ids if cid in found]

    def article(self, doc_id: str) -> list[Hit]:
        """An article's passages in order, fetched by the ids its manifest lists (a lookup by id,
        ten times faster than a metadata filter at 10,000 articles)."""
        entry = self.manifest["articles"].get(doc_id)
        if entry is None:
            return []
        return sorted(self.get(entry["chunks"]), key=lambda h: h.position)

    def passages(self, where: dict | None = None) -> list[Hit]:
        """Stored passages (all, or those matching a Chroma ``where``), in article order."""
        result = self._collection.get(where=where, include=["documents", "metadatas"])
        hits = [_hit(cid, text, meta, 0.0)
                for cid, text, meta in zip(result["ids"], result["documents"], result["metadatas"])]
        return sorted(hits, key=lambda h: (h.doc_id, h.position))

    def as_vectorstore(self):
        """The same collection as a LangChain ``VectorStore`` (for retrievers and chains)."""
        from langchain_chroma import Chroma

        return Chroma(client=self._client, collection_name=COLLECTION, embedding_function=self.embeddings,
                      create_collection_if_not_exists=False)

    def close(self) -> None:
        self._client.close()
        if self._cleanup is not None:
            self._cleanup()


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _writable_tree(path: Path) -> bool:
    """Whether this process may write ``path`` and every folder and file in it."""
    for folder, _, files in os.walk(path):
        if not all(os.access(os.path.join(folder, name), os.W_OK) for name in [".", *files]):
            return False
    return True


def _copy_files(source: Path, target: Path) -> Path:
    """A writable copy of a folder tree (contents only: a read-only source's modes are not kept)."""
    for folder, _, files in os.walk(source):
        here = target / Path(folder).relative_to(source)
        here.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(os.path.join(folder, name), here / name)
    return target
