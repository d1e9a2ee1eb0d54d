"""Evaluation: how well retrieval finds the article that answers each question.

Metric functions are pure and take the 1-based rank of the relevant article (``None`` when it
was not retrieved). SQuAD-style files become a corpus of one article per paragraph and a
question set; their index is kept in a cache folder, so a second run embeds nothing.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import Article

CUTOFFS = (1, 3, 5, 10)


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    doc: str = ""  # doc_id of the article that answers it


# --------------------------------------------------------------------------- metrics


def hit_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank is not None else 0.0


def ndcg_at(rank: int | None, k: int = 10) -> float:
    """nDCG@k with one relevant article: 1 / log2(rank + 1) within the cut-off."""
    return 1.0 / math.log2(rank + 1) if rank is not None and rank <= k else 0.0


def article_rank(doc_ids: list[str], relevant: str) -> int | None:
    """Rank of ``relevant`` among the distinct articles of a passage ranking."""
    seen: list[str] = []
    for doc_id in doc_ids:
        if doc_id not in seen:
            seen.append(doc_id)
            if doc_id == relevant:
                return len(seen)
    return None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class RetrievalReport:
    questions: int = 0
    hit: dict[int, float] = field(default_factory=dict)
    mrr: float = 0.0
    ndcg10: float = 0.0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0

    def table(self) -> str:
        rows = [("questions", f"{self.questions}")]
        rows += [(f"hit@{k}", f"{100 * v:.1f}") for k, v in self.hit.items()]
        rows += [("MRR", f"{100 * self.mrr:.1f}"), ("nDCG@10", f"{100 * self.ndcg10:.1f}"),
                 ("retrieval p50 ms", f"{self.latency_p50_ms:.1f}"),
                 ("retrieval p95 ms", f"{self.latency_p95_ms:.1f}")]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value:>8}" for name, value in rows)

    def as_dict(self) -> dict:
        return {"questions": self.questions, **{f"hit@{k}": v for k, v in self.hit.items()},
                "mrr": self.mrr, "ndcg@10": self.ndcg10,
                "latency_ms": {"p50": self.latency_p50_ms, "p95": self.latency_p95_ms}}


def evaluate_retrieval(retriever, questions: list[Question], depth: int = 10) -> RetrievalReport:
    ranks: list[int | None] = []
    latencies: list[float] = []
    for question in questions:
        started = time.perf_counter()
        hits = retriever.search(question.question, k=depth * 3)  # passages; several per article
        latencies.append(1000 * (time.perf_counter() - started))
        ranks.append(article_rank([h.doc_id for h in hits], question.doc))
    n = max(len(questions), 1)
    return RetrievalReport(
        questions=len(questions),
        hit={k: sum(hit_at(r, k) for r in ranks) / n for k in CUTOFFS},
        mrr=sum(reciprocal_rank(r) for r in ranks) / n,
        ndcg10=sum(ndcg_at(r, 10) for r in ranks) / n,
        latency_p50_ms=statistics.median(latencies) if latencies else 0.0,
        latency_p95_ms=percentile(latencies, 95),
    )


# --------------------------------------------------------------------------- SQuAD files


def load_squad(path: Path) -> tuple[list[Article], list[Question]]:
    """One article per paragraph (``<title>-<n>``) and its questions (SQuAD 1.1 / 2.0 layout)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
    articles, questions = [], []
    for entry in data:
        title = str(entry.get("title", "")).replace("_", " ").strip() or "Untitled"
        for n, paragraph in enumerate(entry["paragraphs"]):
            doc_id = f"{title}-{n}"
            articles.append(Article(doc_id=doc_id, title=title, text=paragraph["context"]))
            for qa in paragraph["qas"]:
                answers = () if qa.get("is_impossible") else tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                questions.append(Question(id=str(qa["id"]), question=qa["question"], answers=answers,
                                          doc=doc_id))
    return articles, questions


def squad_corpus(path: Path, cache_root: Path | None = None) -> tuple[Path, list[Question]]:
    """Write a SQuAD file's paragraphs as a JSONL corpus in a cache folder; return it and the questions."""
    raw = Path(path).read_bytes()
    cache_root = cache_root or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rag"
    folder = cache_root / f"squad-{Path(path).stem}-{hashlib.sha256(raw).hexdigest()[:12]}"
    articles, questions = load_squad(path)
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    target = corpus / "squad.jsonl"
    if not target.exists():
        lines = [json.dumps({"id": a.doc_id, "title": a.title, "text": a.text}, ensure_ascii=False)
                 for a in articles]
        tmp = target.with_suffix(".tmp")
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tmp.replace(target)
    # The JSONL loader prefixes ids with the file's stem.
    questions = [Question(q.id, q.question, q.answers, f"squad/{q.doc}") for q in questions]
    return corpus, questions
