"""Stage 4: the persisted index (Chroma) and incremental ingestion.

Layout of the store folder::

    vectorstore/
      CURRENT                 name of the live generation, replaced atomically
      gen-000007/manifest.json  embedder, chunker, the generation's segments, and each article's
                              hash, passage and sentence ids and segment
      gen-000007/segments.json  the same segments, for the cleanup
      seg-000005/chroma/      a segment (rag.segments): Chroma, collections passages and sentences
      seg-000005/terms/       its passages' token counts for BM25 (rag.lexical)
      .pending-embeddings.sqlite  vectors of an ingest that has not finished (resume journal)
      .corpus-files.json      the corpus files the last ingest read, by size, time and inode: the
                              next one reads only new and changed files
      .lock                   held by the one ingest that may run at a time

Each distinct sentence of an article is embedded once (collection ``sentences``); a passage's
vector (collection ``passages``) is the normalised mean of its sentences' vectors. Sentences are
what questions match best (one fact each), passages what answers cite and show; the overlap
between passages costs no extra embedding.

Nothing published is ever written again. An ingest writes the added and updated articles into a
new segment (merging the newest small segments into it, see rag.segments), then a new generation
that names it beside the segments kept, then points ``CURRENT`` at it: adding one article costs
the article, not the index. A crash or ``kill -9`` at any moment leaves the previous generation
live and intact; vectors already computed wait in the journal, so a re-run resumes instead of
starting over. Unchanged articles are recognised by their hash and never re-embedded.

Every process that reads a generation (a server, ``rag ask``) holds a shared ``flock`` on its
``manifest.json`` (:class:`GenerationLease`); a generation other than the live one is removed by
whoever gets the exclusive lock on it — the ingest when it starts and when it publishes, a server
when it stops serving one — so nothing a process still reads is ever deleted; then the segments
no generation left names.
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
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from .chunking import CHUNKER_VERSION, Chunk, chunk_article, sentence_id, split_at_ends
from .corpus import PARSER_VERSION, LoadFailure, load_corpus
from .lexical import LexicalIndex, SegmentTerms
from .segments import (CHROMA, COLLECTION, SENTENCES, TERMS, SegmentWriter, batches, documents, prewarm,
                       to_merge)
from .settings import Settings

MANIFEST_FORMAT = 2  # 2: segments; 1: one Chroma folder in the generation's own folder
_CURRENT = "CURRENT"
_JOURNAL = ".pending-embeddings.sqlite"
_SEGMENTS = "segments.json"
_FILES = ".corpus-files.json"  # the corpus files read by the last ingest, by fingerprint
#: A segment with at most this many sentences has them searched in memory, exactly: asking Chroma
#: costs about a millisecond a call however small the segment, and each article added makes one.
SMALL_SEGMENT = 10_000


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


def open_store(settings: Settings) -> "Store":
    """The store folder, or with ``chroma_url`` the index on a Chroma server (rag.remote)."""
    if settings.chroma_url:
        from .remote import RemoteStore

        return RemoteStore(settings.store_dir, settings.chroma_url)
    return Store(settings.store_dir)


class Store:
    """The store folder: which generation is live, its manifest, the ingest lock."""

    remote = False  # rag.remote.RemoteStore: the index is on a Chroma server

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def read_manifest(self, generation: Path) -> dict:
        return json.loads((generation / "manifest.json").read_text(encoding="utf-8"))

    def open_segment(self, folder: Path, create: bool = False):
        """A segment's collections (rag.segments.LocalSegment)."""
        from .segments import LocalSegment

        return LocalSegment(folder, create)

    def terms_current(self, segment: Path) -> bool:
        """Whether a segment's BM25 counts were made with today's tokens."""
        return LexicalIndex.is_current(segment / TERMS)

    def segment_terms(self, folder: Path, segment) -> SegmentTerms:
        """A segment's BM25 counts (``segment``: its opened collections)."""
        if (folder / TERMS).is_dir():
            return SegmentTerms.load(folder / TERMS)
        # A generation made before segments: counted once here (the next ingest writes them).
        return SegmentTerms.build(documents(segment.passages))

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
        return self.read_manifest(current)

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

    def next_name(self, kind: str) -> str:
        """The next ``gen-NNNNNN`` or ``seg-NNNNNN`` (numbers are never reused)."""
        numbers = [int(p.name.rsplit("-", 1)[1]) for pattern in (f"{kind}-*", f".staging-{kind}-*")
                   for p in self.root.glob(pattern) if p.name.rsplit("-", 1)[1].isdigit()]
        return f"{kind}-{max(numbers, default=0) + 1:06d}"

    def known_files(self, key: str) -> dict:
        """The corpus files the last ingest read, by fingerprint (``remember_files``), if it read
        them with the same ``key`` (parser version, size limit, corpus folder)."""
        try:
            cache = json.loads((self.root / _FILES).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return cache.get("files", {}) if isinstance(cache, dict) and cache.get("key") == key else {}

    def remember_files(self, key: str, files: dict) -> None:
        tmp = self.root / f"{_FILES}.tmp"
        tmp.write_text(json.dumps({"key": key, "files": files}, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.root / _FILES)

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
        """Delete unfinished staging folders (only the ingest holding :meth:`lock` calls this) and
        the generations no process serves (:meth:`remove_unused`)."""
        for path in self.root.glob(".staging-*"):
            shutil.rmtree(path, ignore_errors=True)
        self._remove_unused(keep)

    def remove_unused(self) -> None:
        """Delete the generations other than the live one that no process serves, unless an
        ingest is running (it cleans up when it finishes). Called by a server that has just
        stopped serving an old generation; does nothing in a store it may not write."""
        if not self.writable():
            return
        with open(self.root / ".lock", "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            self._remove_unused([self.current()])

    def _remove_unused(self, keep: Iterable[Path]) -> None:
        keep = {p.resolve() for p in keep if p is not None}
        for path in self.root.glob("gen-*"):
            if path.resolve() not in keep:
                _remove_if_unserved(path)
        named = set()
        for path in self.root.glob("gen-*"):
            try:
                named.update(json.loads((path / _SEGMENTS).read_text(encoding="utf-8")))
            except FileNotFoundError:
                pass  # made before segments, or being removed
            except (OSError, ValueError):
                return  # unreadable: keep every segment
        for path in self.root.glob("seg-*"):
            if path.name not in named:
                shutil.rmtree(path, ignore_errors=True)

    def serve(self, generation: Path) -> "GenerationLease | None":
        """A shared lock on ``generation`` for as long as this process reads it (see
        :class:`GenerationLease`); None when the generation was removed meanwhile."""
        try:
            handle = open(generation / "manifest.json", "rb")
        except FileNotFoundError:
            return None
        fcntl.flock(handle, fcntl.LOCK_SH)  # waits while a cleanup is removing it
        if not _same_file(handle, generation / "manifest.json"):
            handle.close()  # removed while we waited
            return None
        return GenerationLease(generation, handle)


class GenerationLease:
    """Who serves a generation: each process reading one holds a shared ``flock`` on its
    ``manifest.json``, and a generation is deleted only by whoever gets the exclusive lock on it.
    The kernel drops a dead process's locks, so a crash never pins a generation, and nothing
    expires under a slow but living server."""

    def __init__(self, generation: Path, handle) -> None:
        self.generation, self._handle = generation, handle

    def release(self) -> None:
        if not self._handle.closed:
            self._handle.close()


def _same_file(handle, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _remove_if_unserved(generation: Path) -> None:
    """Delete ``generation`` when no process holds a :class:`GenerationLease` on it."""
    try:
        handle = open(generation / "manifest.json", "rb")
    except FileNotFoundError:  # never finished: nobody can serve it
        shutil.rmtree(generation, ignore_errors=True)
        return
    except OSError:
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # served
        # The manifest goes first: a server waiting for the lock then sees the generation gone.
        try:
            (generation / "manifest.json").unlink(missing_ok=True)
        except OSError:
            return  # a read-only generation is left whole
        shutil.rmtree(generation, ignore_errors=True)


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


def chunker_of(settings: Settings) -> str:
    """What passages depend on besides an article's text: the chunker's rules and target size."""
    return f"{CHUNKER_VERSION}:{settings.chunk_words}"


def corpus_reader(settings: Settings, store: "Store", old: dict | None):
    """``(files key, files remembered, known)``: what the last ingest remembered of the corpus
    files it read, and the ``known`` callback of :func:`rag.corpus.load_corpus` that recognises
    a file unchanged since then (its articles, failures and keys as they were)."""
    # The chunker is part of the key: a file read under other chunking settings is read again,
    # so its articles are chunked anew (a changed RAG_CHUNK_WORDS took no effect on unchanged files).
    files_key = (f"{PARSER_VERSION}:{settings.max_article_bytes}:{chunker_of(settings)}:"
                 f"{os.path.realpath(settings.corpus_dir)}")
    known_files = store.known_files(files_key) if old is not None else {}
    old_articles: dict = old["articles"] if old else {}

    def known(rel: str, mark: list):
        """A file unchanged since the last ingest: its articles are those indexed then."""
        entry = known_files.get(rel)
        if entry is None or entry["stat"] != mark or not all(d in old_articles for d in entry["articles"]) \
                or "keys" not in entry:
            return None
        return entry["articles"], [LoadFailure(*failure) for failure in entry["failures"]], entry["keys"]

    return files_key, known_files, known


def ingest(settings: Settings, embeddings, *, rebuild: bool = False, allow_empty: bool = False,
           progress: bool = True, log: Callable[[str], None] | None = None, locked: bool = False) -> IngestReport:
    """Bring the index in ``settings.store_dir`` in line with ``settings.corpus_dir``.

    A corpus without a single article does not empty an index (or build an empty one) unless
    ``allow_empty``: :class:`EmptyCorpusError`, and the index in place stays as it is. ``locked``:
    the caller holds the store's ingest lock already (:meth:`Store.lock`; rag.articles)."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    started = time.perf_counter()
    store = open_store(settings)
    report = IngestReport()
    if not store.writable():
        raise ReadOnlyStoreError(
            f"The index folder {store.root} is read-only for this process: the index cannot be "
            f"{'updated' if store.current() is not None else 'built'}. Run `rag ingest` as a user who may "
            f"write it (an index in place can still be served).")
    with (contextlib.nullcontext() if locked else store.lock(log)):
        current = store.current()
        store.remove_stale(keep=[current])
        old = None if rebuild else store.manifest()
        if old is not None:
            _check_embedder(old, embeddings, store.root)
        old_articles: dict = old["articles"] if old else {}

        if not Path(settings.corpus_dir).is_dir():
            raise CorpusMissingError(
                f"Corpus folder not found: {settings.corpus_dir}. Put the articles (.txt, .md, .jsonl, .html, "
                f".pdf, .docx) there, or point --corpus / RAG_CORPUS_DIR at their folder.")
        checked = time.time_ns()
        files_key, known_files, known = corpus_reader(settings, store, old)

        loaded = load_corpus(settings.corpus_dir, settings.max_article_bytes, known=known)
        report.failed, report.ignored, report.duplicates = loaded.failures, loaded.ignored, loaded.duplicates
        report.sources = {a.doc_id: a.source_path for a in loaded.articles}
        chunker = chunker_of(settings)

        new_articles: dict[str, dict] = {}
        new_chunks: dict[str, Chunk] = {}  # chunks of added or updated articles
        for doc_ids in loaded.kept.values():
            for doc_id in doc_ids:
                report.unchanged.append(doc_id)
                report.sources[doc_id] = old_articles[doc_id]["source"]
                new_articles[doc_id] = old_articles[doc_id]
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
        report.chunks_total = len(live_ids)
        old_segments = segments_of(old, current) if old is not None else []
        # Everything is rewritten (nothing re-embedded) into one segment when the index was made
        # before segments, or its token counts by other tokens.
        rewrite = bool(old_segments) and (old.get("format", 1) < MANIFEST_FORMAT or not all(
            store.terms_current(path) for path in old_segments.values()))
        # Files read (or recognised) now, by fingerprint: the next ingest reads only the others. A
        # file changed less than a second before this ingest started may change again unseen.
        files = {rel: known_files[rel] for rel in loaded.kept}
        files.update((rel, {"stat": mark, "articles": doc_ids, "failures": [[f.path, f.reason] for f in failed],
                            "keys": keys})
                     for rel, (mark, doc_ids, failed, keys) in loaded.files.items() if mark[1] < checked - 1_000_000_000)
        if old is not None and not rewrite and not (report.added or report.updated or report.removed):
            store.remember_files(files_key, files)
            report.generation = current.name if current else ""
            report.seconds = time.perf_counter() - started
            return report

        # Each sentence of a changed article, with its text; those not in the index are embedded.
        sentences = {sid: text for c in new_chunks.values() for sid, text in zip(c.sentence_ids(), c.sentences)}
        to_embed = [(sid, text) for sid, text in sentences.items() if sid not in old_sids]
        journal = EmbeddingJournal(store.root / _JOURNAL, embeddings.name)
        vectors = _embed_with_journal(to_embed, embeddings, journal, settings.embed_batch, progress, log, report)

        # The segments kept as they are, and those merged into the new one (see rag.segments).
        changed = set(report.added) | set(report.updated)
        live = {name: 0 for name in old_segments}
        for doc_id, entry in new_articles.items():
            if doc_id not in changed:
                live[home_of(entry, current)] += len(entry["chunks"])
        kept = [name for name in old_segments if live[name]]
        merged = len(kept) if rewrite else to_merge([live[n] for n in kept], len(new_chunks))
        kept, merging = kept[:len(kept) - merged], kept[len(kept) - merged:]

        name = store.next_name("seg")
        log(f"Writing index segment {name}"
            + (f" (merging {', '.join(merging)})" if merging else "") + "…")
        staged = store.root / f".staging-{name}"
        writer = SegmentWriter(staged, opener=store.open_segment)
        try:
            # Vectors of unchanged sentences of updated articles, from their article's segment.
            for doc_id in report.updated:
                wanted = [sid for sid in new_articles[doc_id]["sentences"] if sid not in vectors]
                if wanted:
                    vectors.update(writer.vectors(old_segments[home_of(old_articles[doc_id], current)], wanted))
            writer.add_chunks(sorted(new_chunks.values(), key=lambda c: (c.doc_id, c.position)), vectors)
            for source in merging:
                entries = [e for d, e in new_articles.items() if d not in changed and home_of(e, current) == source]
                writer.copy_from(old_segments[source], [cid for e in entries for cid in e["chunks"]],
                                 [sid for e in entries for sid in e["sentences"]])
        finally:
            count, sentence_count = writer.finish()
        expected = sum(len(e["chunks"]) for d, e in new_articles.items()
                       if d in changed or home_of(e, current) in merging)
        expected_sentences = sum(len(e["sentences"]) for d, e in new_articles.items()
                                 if d in changed or home_of(e, current) in merging)
        if (count, sentence_count) != (expected, expected_sentences):
            raise StoreError(f"Internal error: the new segment holds {count} passages and {sentence_count} "
                             f"sentences, expected {expected} and {expected_sentences}")
        os.replace(staged, store.root / name)
        for doc_id, entry in new_articles.items():
            if doc_id in changed or home_of(entry, current) in merging:
                new_articles[doc_id] = {**entry, "segment": name}
            else:
                new_articles[doc_id] = {**entry, "segment": home_of(entry, current)}

        generation = store.next_name("gen")
        staged = store.root / f".staging-{generation}"
        staged.mkdir()
        manifest = {"format": MANIFEST_FORMAT, "embedder": _embedder_identity(embeddings),
                    "chunker": chunker, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "segments": kept + [name], "articles": new_articles}
        (staged / _SEGMENTS).write_text(json.dumps(kept + [name]), encoding="utf-8")
        (staged / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
        published = store.publish(staged, generation)
        store.remember_files(files_key, files)
        journal.discard()
        store.remove_stale(keep=[published])
        report.chunks_added = len(set(new_chunks) - old_ids)
        report.chunks_deleted = len(old_ids - live_ids)
        report.generation = generation
        report.seconds = time.perf_counter() - started
        return report


def segments_of(manifest: dict, generation: Path) -> dict[str, Path]:
    """``name -> folder`` of a generation's segments, oldest first. A generation made before
    segments (manifest format 1) is one segment: its own folder."""
    if manifest.get("format", 1) < 2:
        return {generation.name: generation}
    return {name: generation.parent / name for name in manifest["segments"]}


def home_of(entry: dict, generation: Path) -> str:
    """The segment an article lives in (in a format-1 generation, the generation itself)."""
    return entry.get("segment", generation.name)


def _empty_corpus_message(settings: Settings, failures: list[LoadFailure], indexed: int) -> str:
    found = (f"No article in {settings.corpus_dir} could be loaded ({len(failures)} failed)" if failures else
             f"The corpus folder {settings.corpus_dir} holds no articles (.txt, .md, .jsonl, .html, .pdf, "
             ".docx)")
    if indexed:
        return (f"{found}: indexing it would remove all {indexed} articles from the index. The index is "
                f"unchanged; run `rag ingest --allow-empty` to empty it.")
    return f"{found}: there is nothing to index. Add articles, or run `rag ingest --allow-empty` to build an empty index."


def ensure_index(settings: Settings, embeddings, *, refresh: bool = False, keep_serving: bool = False,
                 log: Callable[[str], None] | None = None) -> IngestReport | None:
    """Build the index when it is missing; with ``refresh``, also bring it up to date.

    An index in a read-only store is left as it is (a note says so). With ``keep_serving`` (the
    chat), an index in place also stays in use when the corpus cannot refresh it (its folder is
    missing or holds no articles): a warning says why, and nothing is lost."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    store = open_store(settings)
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
            for batch in batches(missing, batch_size):
                batch_vectors = np.asarray(embeddings.embed_documents([text for _, text in batch]),
                                           dtype=np.float32)
                journal.put([sid for sid, _ in batch], batch_vectors)
                vectors.update(zip((sid for sid, _ in batch), batch_vectors))
                bar.update(len(batch))
        return vectors
    finally:
        journal.close()


# --------------------------------------------------------------------------- reading


class _SentenceMatrix:
    """A small segment's sentences in memory: ids, metadata and vectors (unit length)."""

    def __init__(self, sentences) -> None:
        got = sentences.get(include=["embeddings", "metadatas"])
        order = sorted(range(len(got["ids"])), key=got["ids"].__getitem__)  # fixed order for equal similarities
        self.ids = [got["ids"][i] for i in order]
        self.metas = [got["metadatas"][i] for i in order]
        self.vectors = np.asarray(got["embeddings"], dtype=np.float32)[order] if order else np.zeros((0, 0), np.float32)

    def nearest(self, vector: np.ndarray, k: int, live) -> list[tuple[str, None, dict, float]]:
        """The ``k`` live sentences most similar to ``vector``: ``(id, None, metadata, cosine)``."""
        if not self.ids:
            return []
        similarities = self.vectors @ vector
        rows = []
        for i in np.argsort(-similarities, kind="stable"):
            if live(self.metas[i]):
                rows.append((self.ids[i], None, self.metas[i], float(similarities[i])))
                if len(rows) == k:
                    break
        return rows


def _hit(chunk_id: str, text: str, meta: dict, score: float) -> Hit:
    return Hit(chunk_id=chunk_id, doc_id=meta["doc_id"], text=text, title=meta["title"], score=score,
               position=int(meta.get("position", 0)), url=meta.get("url", ""), outlet=meta.get("outlet", ""),
               date=meta.get("date", ""), author=meta.get("author", ""),
               sentences=split_at_ends(text, meta.get("sentence_ends", "")))


class VectorIndex:
    """The live generation, opened for search: its segments' Chroma collections and BM25 counts,
    each passage and sentence read from its article's segment only (rag.segments)."""

    def __init__(self, path: Path, manifest: dict, embeddings,
                 log: Callable[[str], None] | None = None, store: Store | None = None) -> None:
        self.path = path
        self.manifest = manifest
        self.embeddings = embeddings
        store = store or Store(path.parent)
        folders = segments_of(manifest, path)
        #: True when the generation may not be written by this process (a read-only store): Chroma
        #: writes to its database even to read it, so a private copy of it is opened instead.
        self.read_only = not store.remote and not all(_writable_tree(folder / CHROMA) for folder in folders.values())
        self._cleanup = None
        self._lease: GenerationLease | None = None
        chromas = {name: folder / CHROMA for name, folder in folders.items()}
        if self.read_only:
            copy = Path(tempfile.mkdtemp(prefix="rag-index-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, copy, True)
            chromas = {name: _copy_files(chroma, copy / name / CHROMA) for name, chroma in chromas.items()}
            (log or _stderr)(f"note: the index {path} is read-only for this process: it is served from a "
                             f"private copy ({copy}) and cannot be updated")
        # Where each article, passage and sentence lives.
        self._home = {doc_id: home_of(entry, path) for doc_id, entry in manifest["articles"].items()}
        self._chunk_home = {cid: self._home[d] for d, e in manifest["articles"].items() for cid in e["chunks"]}
        self._sentence_home = {sid: self._home[d] for d, e in manifest["articles"].items() for sid in e["sentences"]}
        self._count, self._sentence_count = len(self._chunk_home), len(self._sentence_home)
        self._segments: dict[str, tuple] = {}  # name -> (opened segment, passages, sentences, sizes)
        try:
            for name, chroma in chromas.items():
                opened = store.open_segment(chroma.parent)
                passages, sentences = opened.passages, opened.sentences
                self._segments[name] = (opened, passages, sentences, (passages.count(), sentences.count()))
            self._small = {name: _SentenceMatrix(segment[2]) for name, segment in self._segments.items()
                           if segment[3][1] <= SMALL_SEGMENT}
            self.lexical = LexicalIndex([(store.segment_terms(folder, self._segments[name][0]), None)
                                         for name, folder in folders.items()])
        except BaseException:
            self.close()
            raise
        self.lexical = LexicalIndex([(terms, np.fromiter((self._chunk_home.get(cid) == name for cid in terms.chunk_ids),
                                                           bool, len(terms.chunk_ids)))
                                     for name, terms in zip(folders, self.lexical.parts)])
        # Ready for the first questions: files read ahead, the commonest BM25 tf parts computed.
        # At 10,000 articles, after other work had filled the page cache, benchmarks/scale.py
        # measured p95 53 ms without this against 40 with it.
        warm = [] if store.remote else [chroma.parent for chroma in chromas.values()]
        threading.Thread(target=_prepare, args=(warm, self.lexical), name="rag-prepare", daemon=True).start()

    @classmethod
    def open(cls, settings: Settings, embeddings, log: Callable[[str], None] | None = None) -> "VectorIndex":
        """The live generation, held (:class:`GenerationLease`) until :meth:`close`."""
        store = open_store(settings)
        for _ in range(100):  # a new generation may replace the one just read: read CURRENT again
            current = store.current()
            if current is None:
                raise IndexMissingError(f"No index in {store.root}. Run `rag ingest` to build it from "
                                        f"{settings.corpus_dir}.")
            lease = store.serve(current)
            if lease is not None:
                break
        else:  # pragma: no cover - a hundred generations published while opening one
            raise StoreError(f"The index in {store.root} changed too often to be opened")
        try:
            manifest = store.read_manifest(current)
            _check_embedder(manifest, embeddings, store.root)
            index = cls(current, manifest, embeddings, log=log, store=store)
        except BaseException:
            lease.release()
            raise
        index._lease = lease
        return index

    def __len__(self) -> int:
        return self._count

    def _live(self, name: str, meta: dict) -> bool:
        return self._home.get(meta.get("doc_id")) == name

    def _query(self, which: int, vector, k: int, where: dict | None,
               documents: bool = True) -> list[tuple[str, str | None, dict, float]]:
        """The ``k`` live items of every segment closest to ``vector``, closest first: ``(id,
        document, metadata, similarity)``; the document is None unless ``documents``. A segment
        is asked again for more while dead items crowd out live ones."""
        include = ["documents", "metadatas", "distances"] if documents else ["metadatas", "distances"]
        vector = np.asarray(vector, dtype=np.float32)
        found = []
        for name, segment in self._segments.items():
            if which == 2 and not documents and where is None and name in self._small:
                found.extend(self._small[name].nearest(vector, k, lambda meta: self._live(name, meta)))
                continue
            size = segment[3][which - 1]
            n = min(k, size)
            while n > 0:
                result = segment[which].query(query_embeddings=vector[None, :], n_results=n, where=where,
                                              include=include)
                texts = result["documents"][0] if documents else [None] * len(result["ids"][0])
                rows = [(i, d, m, 1.0 - float(x)) for i, d, m, x in zip(
                    result["ids"][0], texts, result["metadatas"][0], result["distances"][0])
                    if self._live(name, m)]
                if len(rows) >= k or n >= size or len(result["ids"][0]) < n:
                    break
                n = min(size, n * 4)
            found.extend(rows[:k] if n > 0 else [])
        found.sort(key=lambda row: -row[3])  # stable: segments in order on equal similarities
        return found[:k]

    def search(self, query: str, k: int = 4, where: dict | None = None) -> list[Hit]:
        """Dense passage search (cosine similarity of the passage vectors)."""
        if not query.strip():
            return []
        return self.search_vector(self.embeddings.embed_query(query), k, where)

    def search_vector(self, vector, k: int = 4, where: dict | None = None) -> list[Hit]:
        if len(self) == 0:
            return []
        return [_hit(cid, text, meta, score) for cid, text, meta, score in self._query(1, vector, k, where)]

    def sentence_search_vector(self, vector, k: int = 10, where: dict | None = None) -> list[tuple[str, str, float]]:
        """The sentences closest to a query vector: ``(chunk_id of its passage, sentence id, similarity)``."""
        if self._sentence_count == 0:
            return []
        return [(meta["chunk_id"], sid, score) for sid, _, meta, score in self._query(2, vector, k, where, False)]

    def _by_home(self, ids: list[str], homes: dict[str, str]) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for item in dict.fromkeys(ids):
            if item in homes:
                grouped.setdefault(homes[item], []).append(item)
        return grouped

    def sentence_vectors(self, sentence_ids: list[str]) -> dict[str, np.ndarray]:
        found = {}
        for name, ids in self._by_home(sentence_ids, self._sentence_home).items():
            got = self._segments[name][2].get(ids=ids, include=["embeddings"])
            found.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
        return found

    def lexical_search(self, query: str, k: int = 4, where: dict | None = None) -> list[tuple[str, float]]:
        if where is None:
            return self.lexical.search(query, k)
        allowed = {hit.chunk_id for hit in self.passages(where)}
        return self.lexical.search(query, k, allowed=allowed)

    def get(self, chunk_ids: list[str]) -> list[Hit]:
        """Stored passages by id, in the order asked."""
        found = {}
        for name, ids in self._by_home(chunk_ids, self._chunk_home).items():
            result = self._segments[name][1].get(ids=ids, include=["documents", "metadatas"])
            found.update((cid, _hit(cid, text, meta, 0.0))
                         for cid, text, meta in zip(result["ids"], result["documents"], result["metadatas"]))
        return [found[cid] for cid in chunk_ids if cid in found]

    def article(self, doc_id: str) -> list[Hit]:
        """An article's passages in order, fetched by the ids its manifest lists (a lookup by id,
        ten times faster than a metadata filter at 10,000 articles)."""
        return self.articles([doc_id]).get(doc_id, [])

    def articles(self, doc_ids: list[str]) -> dict[str, list[Hit]]:
        """The passages of several articles, in order, read at once."""
        entries = {doc: self.manifest["articles"][doc] for doc in doc_ids if doc in self.manifest["articles"]}
        found: dict[str, list[Hit]] = {doc: [] for doc in entries}
        for hit in self.get([cid for entry in entries.values() for cid in entry["chunks"]]):
            found[hit.doc_id].append(hit)
        return {doc: sorted(hits, key=lambda h: h.position) for doc, hits in found.items()}

    def passages(self, where: dict | None = None) -> list[Hit]:
        """Stored passages (all, or those matching a Chroma ``where``), in article order."""
        hits = []
        for name, segment in self._segments.items():
            result = segment[1].get(where=where, include=["documents", "metadatas"])
            hits.extend(_hit(cid, text, meta, 0.0) for cid, text, meta in
                        zip(result["ids"], result["documents"], result["metadatas"]) if self._live(name, meta))
        return sorted(hits, key=lambda h: (h.doc_id, h.position))

    def as_vectorstore(self):
        """The passages as a LangChain ``VectorStore`` (for retrievers and chains), for an index
        of one segment (the store's newest segments are merged by the next ingests)."""
        from langchain_chroma import Chroma

        if len(self._segments) != 1:
            raise StoreError("as_vectorstore needs an index of one segment")
        [(opened, passages, *_)] = self._segments.values()
        return Chroma(client=opened.client, collection_name=passages.name, embedding_function=self.embeddings,
                      create_collection_if_not_exists=False)

    @property
    def generation(self) -> str:
        return self.path.name

    def close(self) -> None:
        for opened, *_ in self._segments.values():
            opened.close()
        self._segments = {}
        if self._cleanup is not None:
            self._cleanup()
        if self._lease is not None:
            self._lease.release()


def _prepare(segments: list[Path], lexical: LexicalIndex) -> None:
    for folder in segments:
        prewarm(folder)
    lexical.prepare()


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
