"""The ratings file is shared by every process that serves one store (the server, its workers,
other replicas on the machine): parallel ratings from several real processes all land in it."""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor

from rag.feedback import LIKE, FeedbackStore


def _rate(path: str, process: int) -> None:
    store = FeedbackStore(path)
    with ThreadPoolExecutor(10) as pool:
        list(pool.map(lambda n: store.add(f"Câu hỏi {process}-{n}", {"answer": "…"}, LIKE), range(50)))


def test_200_parallel_ratings_from_four_processes_are_200_rows(tmp_path):
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_rate, args=(str(tmp_path / "feedback.sqlite"), n)) for n in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    entries = FeedbackStore(tmp_path / "feedback.sqlite").entries()
    assert len(entries) == 200 and len({e.question for e in entries}) == 200
