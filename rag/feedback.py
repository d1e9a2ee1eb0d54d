"""Likes and dislikes on answers, kept in SQLite next to the index (``<store>/feedback.sqlite``).

The chat and the HTTP API record a rating with the question, the answer and its citations exactly
as shown; ``rag eval --export-feedback`` turns the disliked ones into candidate questions for a
question set. The file lives beside the index generations, so rebuilding the index keeps it.
"""
from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "feedback.sqlite"
LIKE, DISLIKE = 1, -1
MAX_COMMENT = 2000

_SCHEMA = """CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created TEXT NOT NULL,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,      -- the Answer as JSON (Answer.as_dict())
    comment TEXT NOT NULL DEFAULT ''
)"""


@dataclass(frozen=True)
class Feedback:
    id: int
    created: str  # ISO 8601, UTC
    rating: int  # LIKE (+1) or DISLIKE (-1)
    question: str
    answer: dict  # Answer.as_dict(): answer text, citations, abstained, …
    comment: str = ""


class FeedbackUnavailable(RuntimeError):
    """The ratings file cannot be written (a read-only index folder, a full disk, …)."""


class FeedbackStore:
    """Ratings in one SQLite file; each call opens its own connection (safe across threads)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @classmethod
    def beside(cls, store_dir: Path) -> "FeedbackStore":
        return cls(Path(store_dir) / FILE_NAME)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute(_SCHEMA)
        return db

    def add(self, question: str, answer: dict, rating: int, comment: str = "") -> int:
        """Record a rating; returns its id. ``answer`` is ``Answer.as_dict()``."""
        if rating not in (LIKE, DISLIKE):
            raise ValueError("rating must be 1 (like) or -1 (dislike)")
        if not question.strip():
            raise ValueError("the rated question is empty")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        record = json.dumps(answer, ensure_ascii=False)
        for text in (question, record, comment):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("the rating holds text that is not valid Unicode (a lone surrogate)") from None
        try:
            db = self._connect()
            try:
                with db:
                    cursor = db.execute(
                        "INSERT INTO feedback (created, rating, question, answer, comment) VALUES (?, ?, ?, ?, ?)",
                        (created, rating, question, record, comment[:MAX_COMMENT]))
                return int(cursor.lastrowid)
            finally:
                db.close()
        except (sqlite3.Error, OSError) as exc:
            raise FeedbackUnavailable(f"Ratings cannot be stored in {self.path}: {exc}") from None

    def entries(self, rating: int | None = None) -> list[Feedback]:
        """All ratings (or only likes / dislikes), oldest first; none when the file does not exist."""
        if not self.path.is_file():
            return []
        db = self._connect()
        try:
            query = "SELECT id, created, rating, question, answer, comment FROM feedback"
            rows = db.execute(query + (" WHERE rating = ?" if rating is not None else "") + " ORDER BY id",
                              (rating,) if rating is not None else ())
            return [Feedback(id=r[0], created=r[1], rating=r[2], question=r[3], answer=_stored_answer(r[4]),
                             comment=r[5]) for r in rows]
        finally:
            db.close()


def _stored_answer(raw) -> dict:
    """A stored answer as a dict, whatever an older version or a hand edit left in the row."""
    try:
        answer = json.loads(raw)
    except (TypeError, ValueError):
        return {"answer": str(raw)}
    return answer if isinstance(answer, dict) else {"answer": answer}


def answer_summary(answer: dict) -> tuple[str, bool, list[str]]:
    """``(text, abstained, cited doc ids)`` of a stored answer; fields of the wrong shape count
    as missing, so one odd row never stops an export."""
    text = answer.get("answer", "")
    citations = answer.get("citations")
    docs = [c.get("doc_id") for c in citations if isinstance(c, dict)] if isinstance(citations, list) else []
    return (text if isinstance(text, str) else json.dumps(text, ensure_ascii=False),
            answer.get("abstained") is True, list(dict.fromkeys(d for d in docs if isinstance(d, str) and d)))


def candidate_questions(entries: list[Feedback]) -> list[dict]:
    """Disliked answers as question-set lines for a reviewer to complete.

    They carry no ``answers`` field on purpose: the question-set loader refuses a line without
    one, so a candidate cannot be counted until someone writes its gold answer (or ``[]`` for a
    question the articles do not answer). What the chatbot said is kept for the reviewer."""
    seen: set[str] = set()
    lines = []
    for entry in entries:
        if entry.rating != DISLIKE or entry.question.strip().lower() in seen:
            continue
        seen.add(entry.question.strip().lower())
        text, abstained, docs = answer_summary(entry.answer)
        lines.append({
            "id": f"feedback-{entry.id}",
            "question": entry.question,
            "type": "feedback",
            "answer_given": text,
            "abstained": abstained,
            "cited_docs": docs,
            "comment": entry.comment,
            "rated": entry.created,
        })
    return lines
