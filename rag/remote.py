"""The index on a Chroma server (``RAG_CHROMA_URL``), shared by replicas on several machines.

The same generations and segments as the embedded store (rag.index, rag.segments), kept on the
server instead of in the store folder:

- a segment ``seg-000005`` is the pair of collections ``seg-000005-passages`` and
  ``seg-000005-sentences``; it is never written again once a generation names it;
- the collection ``rag-meta`` holds ``CURRENT`` (the live generation's name), each generation's
  manifest (``manifest:gen-000007``), and the replicas' leases (``lease:…``).

A replica needs no file of another machine. Its own store folder holds a cache of each segment's
BM25 token counts, rebuilt from the segment's passages the first time it opens the segment and
valid as long as that collection exists (segments never change; the cache records the
collection's id). ``rag ingest`` keeps its resume journal and corpus-file fingerprints there too.

Leases: a file lock does not cross machines, so a replica serving a generation writes a lease
entry with the server's clock (``client.heartbeat()``) and renews it every
:data:`HEARTBEAT_SECONDS`; a lease not renewed for :data:`LEASE_SECONDS` has expired (its replica
died or lost the server). An ingest (the only writer; run one at a time) removes, when it starts
and when it publishes, every generation other than the live one that no unexpired lease names
and that stopped being live at least :data:`LEASE_SECONDS` ago (a replica that has just read
``CURRENT`` has that long to write its lease), then the segments no generation left names.
"""
from __future__ import annotations

import json
import logging
import shutil
import threading
import uuid
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

from .index import IndexMissingError, SegmentTerms, Store, StoreError
from .segments import COLLECTION, SENTENCES, SOURCE, TERMS, collection, documents

log = logging.getLogger(__name__)

META = "rag-meta"
CURRENT = "CURRENT"
HEARTBEAT_SECONDS = 10.0  # how often a replica renews its leases
LEASE_SECONDS = 60.0  # a lease not renewed for this long has expired
_DUMMY = [1.0]  # Chroma stores a vector with every entry: the metadata entries carry this one

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def http_client(url: str):
    """One ``chromadb.HttpClient`` per server and process."""
    with _clients_lock:
        if url not in _clients:
            try:
                import chromadb
                from chromadb.config import Settings as ChromaSettings
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise StoreError("The index needs chromadb: pip install chromadb") from exc
            parts = urlsplit(url if "://" in url else f"http://{url}")
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise StoreError(f"RAG_CHROMA_URL must look like http://host:port, not {url!r}")
            try:
                _clients[url] = chromadb.HttpClient(
                    host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 8000),
                    ssl=parts.scheme == "https", settings=ChromaSettings(anonymized_telemetry=False))
            except Exception as exc:
                raise StoreError(f"The Chroma server {url} cannot be reached: {exc}") from exc
        return _clients[url]


def segment_collection(segment: str, kind: str) -> str:
    return f"{segment.removeprefix('.staging-')}-{kind}"


class RemoteSegment:
    """A segment's two collections on the server (the counterpart of rag.segments.LocalSegment)."""

    def __init__(self, chroma, folder: Path, create: bool = False) -> None:
        self.client = chroma
        self.passages = collection(chroma, segment_collection(folder.name, COLLECTION), create)
        self.sentences = collection(chroma, segment_collection(folder.name, SENTENCES), create)

    def close(self) -> None:
        pass  # the process's one client stays open


class RemoteStore(Store):
    """rag.index.Store with the generations and segments on a Chroma server; ``root`` (the store
    folder) holds this machine's caches and the ingest's lock and journal."""

    remote = True

    def __init__(self, root: Path, url: str) -> None:
        super().__init__(root)
        self.url = url
        self.client = http_client(url)
        with _clients_lock:
            if (url, META) not in _clients:
                _clients[url, META] = self.client.get_or_create_collection(META, embedding_function=None)
            self.meta = _clients[url, META]

    # --------------------------------------------------------------- generations

    def _document(self, key: str) -> str | None:
        got = self.meta.get(ids=[key], include=["documents"])
        return got["documents"][0] if got["ids"] else None

    def current(self) -> Path | None:
        name = self._document(CURRENT)
        return self.root / name.strip() if name else None

    def read_manifest(self, generation: Path) -> dict:
        text = self._document(f"manifest:{generation.name}")
        if text is None:
            raise IndexMissingError(f"The generation {generation.name} is no longer on the Chroma server {self.url}")
        return json.loads(text)

    def writable(self) -> bool:
        return super().writable()  # the store folder, for the caches and the journal

    def next_name(self, kind: str) -> str:
        numbers = [int(name.rsplit("-", 1)[1]) for name in self._names() if name.startswith(f"{kind}-")]
        local = super().next_name(kind)
        return f"{kind}-{max([int(local.rsplit('-', 1)[1]) - 1, *numbers]) + 1:06d}"

    def _names(self) -> set[str]:
        """Generations and segments on the server."""
        got = self.meta.get(where={"kind": "generation"}, include=["metadatas"])
        names = {meta["name"] for meta in got["metadatas"]}
        names.update(c.name.rsplit("-", 1)[0] for c in self.client.list_collections() if c.name.startswith("seg-"))
        return names

    def publish(self, staged: Path, name: str) -> Path:
        manifest = (staged / "manifest.json").read_text(encoding="utf-8")
        self.meta.upsert(ids=[f"manifest:{name}"], embeddings=[_DUMMY], documents=[manifest],
                         metadatas=[{"kind": "generation", "name": name, "retired": 0.0}])
        previous = self._document(CURRENT)
        self.meta.upsert(ids=[CURRENT], embeddings=[_DUMMY], documents=[name], metadatas=[{"kind": "current"}])
        if previous and previous.strip() != name:
            self.meta.update(ids=[f"manifest:{previous.strip()}"],
                             metadatas=[{"kind": "generation", "name": previous.strip(), "retired": self.now()}])
        shutil.rmtree(staged, ignore_errors=True)
        return self.root / name

    def now(self) -> float:
        """The server's clock, in seconds: leases compare times of several machines."""
        return self.client.heartbeat() / 1e9

    # --------------------------------------------------------------- cleanup

    def remove_stale(self, keep: Iterable[Path]) -> None:
        """Unfinished local staging folders, then (the ingest holds the lock) the generations no
        unexpired lease names, the segments no generation names, and their local caches."""
        for path in self.root.glob(".staging-*"):
            shutil.rmtree(path, ignore_errors=True)
        keep = {p.name for p in keep if p is not None}
        current = self._document(CURRENT)
        keep.add((current or "").strip())
        now = self.now()
        leased = {m["generation"] for m in self.meta.get(where={"kind": "lease"}, include=["metadatas"])["metadatas"]
                  if m["beat"] > now - LEASE_SECONDS}
        generations = self.meta.get(where={"kind": "generation"}, include=["metadatas"])["metadatas"]
        # retired 0: published but never made live (an ingest stopped between the two writes)
        gone = [m["name"] for m in generations if m["name"] not in keep | leased
                and m["retired"] < now - LEASE_SECONDS]
        if gone:
            self.meta.delete(ids=[f"manifest:{name}" for name in gone])
            log.info("removed generations %s from %s", ", ".join(gone), self.url)
        expired = self.meta.get(where={"$and": [{"kind": "lease"}, {"beat": {"$lt": now - LEASE_SECONDS}}]})["ids"]
        if expired:
            self.meta.delete(ids=expired)
        named: set[str] = set()
        for manifest in self.meta.get(where={"kind": "generation"}, include=["documents"])["documents"]:
            named.update(json.loads(manifest).get("segments", []))
        for found in self.client.list_collections():
            segment = found.name.rsplit("-", 1)[0]
            if found.name.startswith("seg-") and segment not in named:
                self.client.delete_collection(found.name)
        for path in self.root.glob("seg-*"):
            if path.name not in named:
                shutil.rmtree(path, ignore_errors=True)

    def remove_unused(self) -> None:
        """Nothing: a replica only drops its lease; the next ingest removes what nobody serves."""

    # --------------------------------------------------------------- serving

    def serve(self, generation: Path) -> "RemoteLease | None":
        lease = RemoteLease(self, generation.name)
        if self._document(f"manifest:{generation.name}") is None:
            lease.release()
            return None
        return lease

    def open_segment(self, folder: Path, create: bool = False) -> RemoteSegment:
        return RemoteSegment(self.client, folder, create)

    def terms_current(self, segment: Path) -> bool:
        return True  # each reader checks (and rebuilds) its own cache

    def segment_terms(self, folder: Path, segment) -> SegmentTerms:
        """The cached counts of a segment, or counted from its passages and cached."""
        from .lexical import LexicalIndex

        cache = folder / TERMS
        source = str(segment.passages.id)
        try:
            if LexicalIndex.is_current(cache) and (cache / SOURCE).read_text(encoding="utf-8") == source:
                return SegmentTerms.load(cache)
        except OSError:
            pass
        rows = sorted(documents(segment.passages))  # the writer's order: BM25 lists equal scores in it
        terms = SegmentTerms.build(rows)
        try:
            tmp = folder.parent / f".cache-{folder.name}-{uuid.uuid4().hex}"
            terms.save(tmp / TERMS)
            (tmp / TERMS / SOURCE).write_text(source, encoding="utf-8")
            shutil.rmtree(cache, ignore_errors=True)
            folder.mkdir(parents=True, exist_ok=True)
            tmp.joinpath(TERMS).rename(cache)
            shutil.rmtree(tmp, ignore_errors=True)
        except OSError as exc:  # a cache only
            log.warning("the BM25 counts of %s could not be cached: %s", folder.name, exc)
        return terms


class RemoteLease:
    """A replica's hold on a generation: an entry on the server renewed every
    :data:`HEARTBEAT_SECONDS` by a thread, deleted by :meth:`release`."""

    def __init__(self, store: RemoteStore, generation: str) -> None:
        self.store, self.generation = store, generation
        self.key = f"lease:{uuid.uuid4().hex}"
        self._stop = threading.Event()
        self._beat()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{generation}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        self.store.meta.upsert(ids=[self.key], embeddings=[_DUMMY], documents=[self.generation],
                               metadatas=[{"kind": "lease", "generation": self.generation, "beat": self.store.now()}])

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self._beat()
            except Exception as exc:  # the server is away: the lease may expire meanwhile
                log.warning("the lease on %s could not be renewed: %s", self.generation, exc)

    def release(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self.store.meta.delete(ids=[self.key])
        except Exception as exc:  # it expires
            log.warning("the lease on %s could not be released: %s", self.generation, exc)
