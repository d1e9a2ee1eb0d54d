"""The index a running service answers from, and how it moves to a new generation without a restart.

An ingest publishes a new generation by replacing the store's ``CURRENT`` (rag.index); a served
index never changes. :class:`LiveIndex` watches ``CURRENT`` (a thread reads it twice a second)
and, when it names another generation, opens that one beside the one in use, then swaps them.

- A request takes a :class:`Lease` on the live :class:`Generation` when it starts and answers
  wholly from it, however long it streams: no question is answered from two generations.
- A generation swapped out is closed when its last lease is released (reference counting), then
  its on-disk :class:`~rag.index.GenerationLease` goes and the store's generations that no
  process serves any more are removed (rag.index: shared ``flock`` per serving process).
- The embedder and Chroma are called one at a time under one lock (:class:`Serialized`), shared
  by every generation and by an ingest running in this process.
"""
from __future__ import annotations

import logging
import threading
from typing import Callable

from .settings import Settings

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.5  # how often CURRENT is read


class Serialized:
    """Calls into ``target`` one at a time under ``lock``; attributes named in ``nested`` are
    wrapped the same way (the index's embedder)."""

    def __init__(self, target, lock, nested: tuple[str, ...] = ()) -> None:
        self._target, self._lock, self._nested = target, lock, nested

    def __getattr__(self, name: str):
        value = getattr(self._target, name)
        if name in self._nested:
            return Serialized(value, self._lock)
        if not callable(value):
            return value

        def call(*args, **kwargs):
            with self._lock:
                return value(*args, **kwargs)
        return call

    def __len__(self) -> int:
        with self._lock:
            return len(self._target)


class Generation:
    """One opened index generation and its answerer; closed once retired and unused."""

    def __init__(self, settings: Settings, index, lock, on_closed: Callable[[], None] = lambda: None) -> None:
        from .llm import make_answerer
        from .retrieval import Retriever

        self.settings, self.index, self._on_closed = settings, index, on_closed
        # The BM25 index is read-only numpy (its cache has its own lock): not serialized, so BM25
        # runs beside the question's embedding (rag.retrieval).
        self.shared = Serialized(index, lock, nested=("embeddings",))
        self.info = {"articles": len(index.manifest.get("articles", {})), "passages": len(index),
                     "generation": index.path.name}
        self._answerer = make_answerer(settings, Retriever(self.shared, settings.retrieval))
        self._users, self._retired, self._closed = 0, False, False
        self._mutex = threading.Lock()

    @property
    def name(self) -> str:
        return self.index.path.name

    def answerer(self, filters=None):
        """The shared answerer, or one restricted to ``filters`` (a ``retrieval.Filters``)."""
        if filters is None or filters.where() is None:
            return self._answerer
        from .llm import make_answerer
        from .retrieval import Retriever

        return make_answerer(self.settings, Retriever(self.shared, self.settings.retrieval, filters=filters))

    def acquire(self) -> None:
        with self._mutex:
            if self._closed:
                raise RuntimeError(f"generation {self.name} is closed")
            self._users += 1

    def release(self) -> None:
        with self._mutex:
            self._users -= 1
            unused = self._retired and self._users == 0
        if unused:
            self.close()

    def retire(self) -> None:
        """No new request will use it: close it now, or when the last one releases it."""
        with self._mutex:
            self._retired = True
            unused = self._users == 0
        if unused:
            self.close()

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
        self.index.close()
        self._on_closed()


class Lease:
    """A request's hold on one generation (a context manager; :meth:`release` may be called more
    than once, and a lease dropped without it, e.g. by a stream never started, releases itself)."""

    def __init__(self, generation: Generation) -> None:
        generation.acquire()
        self.generation = generation
        self._held = True

    def answerer(self, filters=None):
        return self.generation.answerer(filters)

    def release(self) -> None:
        if self._held:
            self._held = False
            self.generation.release()

    def __enter__(self) -> "Lease":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


class LiveIndex:
    """The store's live generation, opened, and kept current by :meth:`update`."""

    def __init__(self, settings: Settings, embeddings, lock) -> None:
        self.settings, self.embeddings, self.lock = settings, embeddings, lock
        self._current: Generation | None = None
        self._mutex = threading.Lock()  # guards _current
        self._updating = threading.Lock()  # one update at a time
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def info(self) -> dict:
        current = self._current
        return dict(current.info) if current is not None else {}

    def lease(self) -> Lease:
        with self._mutex:
            if self._current is None:
                raise RuntimeError("no index is open")
            return Lease(self._current)

    def update(self) -> bool:
        """Serve the store's live generation, if it is not the one served. Returns whether it
        switched. The generation in use answers until the new one is open and ready."""
        from .index import VectorIndex, open_store

        with self._updating:
            current = open_store(self.settings).current()
            served = self._current
            if current is None or (served is not None and current.name == served.name):
                return False
            index = VectorIndex.open(self.settings, self.embeddings)
            if served is not None and index.path.name == served.name:
                index.close()
                return False
            index.lexical.near_words()  # built on first use: built here, not by a request
            generation = Generation(self.settings, index, self.lock, on_closed=self._removed_unused)
            with self._mutex:
                self._current = generation
            if served is not None:
                log.info("now serving %s (was %s)", generation.name, served.name)
                served.retire()
            return True

    def _removed_unused(self) -> None:
        """Once a generation is closed, the store's generations no process serves are removed
        (in a thread: a folder of gigabytes is not removed by a request)."""
        from .index import open_store

        threading.Thread(target=open_store(self.settings).remove_unused, name="remove-unused",
                         daemon=True).start()

    def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Check ``CURRENT`` every ``interval`` seconds in a thread, and switch when it changes."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.update()
                except Exception as exc:  # the generation in use keeps answering
                    log.warning("the new index generation could not be opened yet: %s", exc)

        self._watcher = threading.Thread(target=loop, name="watch-index", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        with self._mutex:
            current, self._current = self._current, None
        if current is not None:
            current.retire()
