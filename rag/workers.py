"""Answering in several processes: ``rag serve --workers N`` (``RAG_WORKERS``).

One process serves HTTP on the port (uvicorn: the API, the chat, the widget, the gate and the
ratings) and N worker processes answer. Each worker is a :class:`rag.api.Service` of its own: it
opens the index, follows each new generation (rag.live) and answers a question wholly from one
generation. Questions go on one shared queue, so the next free worker takes the next question;
the events of its answer come back on one results queue, which a thread of the server process
hands to the request waiting for them.

Why not N uvicorn processes sharing the port: the Gradio chat keeps each session's queue and
state in the process that served its first request, and the kernel spreads one page's requests
over the processes. With one HTTP process the rate limit per client and the ratings file need no
sharing either; the HTTP side costs a few percent of a question's time, the answering is spread.
"""
from __future__ import annotations

import itertools
import logging
import os
import queue
import sys
import threading

from .settings import Settings

log = logging.getLogger(__name__)

DONE = "done"
ANSWER_TIMEOUT = 600  # seconds a request waits for its worker before failing


def _work(settings: Settings, tasks, results) -> None:
    """A worker process: open the index, then answer tasks until ``None`` comes."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core each: N workers share the machine's
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    from .api import Service

    service = Service(settings)
    try:
        service.load(refresh=False)
    except BaseException as exc:
        results.put((None, "failed", (os.getpid(), str(exc) or type(exc).__name__)))
        return
    service.watch()
    results.put((None, "info", (os.getpid(), service.info)))
    threading.Thread(target=_report, args=(service, results), daemon=True).start()
    while True:
        task = tasks.get()
        if task is None:
            break
        task_id, kind, payload = task
        try:
            if kind == "refresh":
                service.refresh()
            elif kind == "add":
                from .articles import Refused

                try:
                    results.put((task_id, "event", ("added", service.add_article(*payload))))
                except Refused as refused:
                    results.put((task_id, "event", ("refused", (refused.status, refused.code, refused.message,
                                                                refused.detail))))
            else:
                question, history, filters = payload
                # A worker that started after an ingest opened the generation before it, and its
                # watcher may not have switched yet: a question is answered from the live one.
                try:
                    service.follow()
                except Exception as exc:  # the generation in use keeps answering
                    log.warning("the new index generation could not be opened yet: %s", exc)
                with service.lease() as live:
                    for event in live.answerer(filters).stream(question, history):
                        results.put((task_id, "event", event))
            results.put((task_id, DONE, None))
        except Exception as exc:
            log.exception("answering failed")
            results.put((task_id, "error", f"{type(exc).__name__}: {exc}"))
    service.close()


def _exit_with_parent(parent: int) -> None:
    """End this worker when the server process is gone, however it ended (uvicorn re-raises the
    SIGTERM it caught once it has shut down, so the server's own cleanup may never run)."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def _report(service, results) -> None:
    """Tell the server process which generation this worker serves, whenever it changes."""
    import time

    reported = service.info
    while True:
        time.sleep(0.2)
        if service.info != reported:
            reported = service.info
            results.put((None, "info", (os.getpid(), reported)))


class WorkerService:
    """:class:`rag.api.Service`'s interface, answered by ``workers`` processes."""

    def __init__(self, settings: Settings, workers: int) -> None:
        import multiprocessing

        self.settings, self.workers = settings, workers
        self.state, self.error = "loading", ""
        self._context = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited threads
        self._tasks, self._results = self._context.Queue(), self._context.Queue()
        self._processes = []
        self._infos: dict[int, dict] = {}
        self._waiting: dict[int, queue.Queue] = {}
        self._ids = itertools.count(1)
        self._first = threading.Event()
        self._mutex = threading.Lock()
        threading.Thread(target=self._read_results, name="worker-results", daemon=True).start()

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    @property
    def info(self) -> dict:
        """The oldest generation a worker serves (each worker switches on its own)."""
        infos = list(self._infos.values())
        return dict(min(infos, key=lambda i: i["generation"])) if infos else {}

    def _start(self) -> None:
        process = self._context.Process(target=_work, args=(self.settings, self._tasks, self._results),
                                        name=f"rag-worker-{len(self._processes) + 1}", daemon=True)
        process.start()
        self._processes.append(process)

    def load(self, refresh: bool = True) -> None:
        """Start the first worker (it builds the index when there is none), then the others."""
        self._start()
        while not self._first.wait(0.5) and self._processes[0].is_alive():
            pass
        if not self._infos:
            self.state, self.error = "failed", self.error or "the worker process stopped"
            raise RuntimeError(self.error)
        self.state = "ready"
        for _ in range(self.workers - 1):
            self._start()
        if refresh:
            self.refresh()

    def refresh(self) -> None:
        """One worker brings the index up to date with the corpus; the others answer meanwhile."""
        for _ in self._submit("refresh", None):
            pass

    def add_article(self, filename: str = "", data: bytes = b"", url: str = "") -> dict:
        """One worker adds the article (rag.api.Service.add_article); this returns once every
        worker serves the new generation (each switches within a second on its own)."""
        import time

        from .articles import Refused

        outcome = None
        for event in self._submit("add", (filename, data, url)):
            outcome = event
        if outcome is None:
            raise RuntimeError("no worker added the article")
        kind, value = outcome
        if kind == "refused":
            raise Refused(*value)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                info.get("generation", "") < value["generation"] for info in list(self._infos.values())):
            time.sleep(0.1)
        return value

    def watch(self) -> None:
        """Each worker watches the store itself."""

    def lease(self) -> "_Lease":
        return _Lease(self)

    def answerer(self, filters=None) -> "RemoteAnswerer":
        return RemoteAnswerer(self, filters)

    def _submit(self, kind: str, payload):
        task_id = next(self._ids)
        events: queue.Queue = queue.Queue()
        with self._mutex:
            self._waiting[task_id] = events
        try:
            self._tasks.put((task_id, kind, payload))
            while True:
                try:
                    status, value = events.get(timeout=ANSWER_TIMEOUT)
                except queue.Empty:
                    raise RuntimeError("no worker answered in time") from None
                if status == DONE:
                    return
                if status == "error":
                    raise RuntimeError(value)
                yield value
        finally:
            with self._mutex:
                self._waiting.pop(task_id, None)

    def _read_results(self) -> None:
        while True:
            try:
                task_id, status, value = self._results.get()
            except (EOFError, OSError):
                return
            if task_id is None:
                pid, detail = value
                if status == "info":
                    self._infos[pid] = detail
                elif self.ready:  # a later worker: the others answer on
                    print(f"warning: a worker process could not start: {detail}", file=sys.stderr, flush=True)
                else:
                    self.error = detail  # the first worker: rag serve reports it and stops
                self._first.set()
                continue
            with self._mutex:
                events = self._waiting.get(task_id)
            if events is not None:
                events.put((status, value))

    def close(self) -> None:
        for _ in self._processes:
            self._tasks.put(None)
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()


class RemoteAnswerer:
    """The answerer's ``answer`` and ``stream``, run by a worker process."""

    def __init__(self, service: WorkerService, filters=None) -> None:
        self.service, self.filters = service, filters

    def stream(self, question: str, history=()):
        yield from self.service._submit("ask", (question, list(history), self.filters))

    def answer(self, question: str, history=()):
        from .answer import Final

        for event in self.stream(question, history):
            if isinstance(event, Final):
                return event.answer
        raise RuntimeError("the worker sent no answer")


class _Lease:
    """Each worker holds its own lease on the generation it answers from: nothing to hold here."""

    def __init__(self, service: WorkerService) -> None:
        self.service = service

    def answerer(self, filters=None) -> RemoteAnswerer:
        return RemoteAnswerer(self.service, filters)

    def release(self) -> None:
        pass

    def __enter__(self) -> "_Lease":
        return self

    def __exit__(self, *exc) -> None:
        pass
