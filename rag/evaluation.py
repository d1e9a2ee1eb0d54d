"""Evaluation: every question of a set asked through the answerer the chat uses, then scored.

- Question sets are JSONL (``evalsets/README.md``) or SQuAD 1.1 / 2.0 JSON, whose paragraphs
  become a corpus of one article each, indexed once in a cache folder (a second run embeds nothing).
- :func:`ask_all` asks ``answerer.stream(question, history)`` (the UI's call) and keeps the
  ``Final`` answer; a follow-up gets the history of the question it follows. The same retriever
  then ranks 30 passages for the question as retrieved (a follow-up's standalone form): the
  retrieval figures.
- :func:`score` and :func:`summarise` turn answers into figures with the pure functions of
  :mod:`rag.metrics`; :mod:`rag.report` renders them.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Sequence

from . import metrics as m
from .corpus import Article
from .settings import Settings, masked

RANK_DEPTH = 30  # passages ranked for the retrieval figures (several per article)
UNTYPED = "(no type)"
# Settings that change what an index holds: two configurations differing in one need two stores.
INDEX_FIELDS = ("corpus_dir", "embedding", "query_prefix", "passage_prefix", "chunk_words")


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]  # empty: the articles do not answer it
    doc: str = ""  # doc_id of the article that answers it
    type: str = ""
    follows: str = ""  # id of the earlier question this follow-up continues


@dataclass(frozen=True)
class Metric:
    """A figure of :func:`summarise`; what each one means is in the README ("Evaluation")."""
    name: str
    unit: str  # "share" (0..1, printed as a percentage), "count", "chars" or "ms"

    @property
    def gate(self) -> bool:
        """Usable with ``--min``: a share where higher is better."""
        return self.unit == "share" and self.name != "abstained"


METRICS = [Metric(name, "count") for name in ("questions", "answerable", "unanswerable")] + [
    Metric(name, "share") for name in (*(f"hit@{k}" for k in m.CUTOFFS), "mrr", "ndcg@10", "contains",
                                       "leads", "contains_folded", "contains_cited", "cited_gold", "f1", "em")] + [
    Metric("chars_mean", "chars"), Metric("chars_p95", "chars")] + [
    Metric(name, "share") for name in ("citation_precision", "cited", "abstained", "abstain_precision",
                                       "abstain_recall")]
GATES = [metric.name for metric in METRICS if metric.gate]


def metric(name: str) -> Metric:
    """The metric named ``name``; latencies are ``<stage>_p50_ms`` / ``<stage>_p95_ms`` (ms)."""
    return next((x for x in METRICS if x.name == name), Metric(name, "ms"))


# --------------------------------------------------------------------------- question sets


def load_question_set(path: Path) -> list[Question]:
    """The questions of a JSONL set; every defect is listed with its line number (ValueError)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise ValueError(f"Question set not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path} is not UTF-8 text ({exc.reason})") from None
    problems: list[str] = []
    questions: list[Question] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        if "answers" not in record:
            problems.append(f"line {number}: no \"answers\" (write the gold answers, or [] when the "
                            "articles do not answer it)")
            continue
        qid, question, answers = record.get("id"), record.get("question"), record["answers"]
        text_fields = ["" if record.get(k) is None else record[k] for k in ("doc", "type", "follows")]
        if not isinstance(qid, str) or not qid.strip():
            problems.append(f"line {number}: \"id\" must be a non-empty string")
        elif qid in seen:
            problems.append(f"line {number}: id {qid!r} is used twice")
        elif not isinstance(question, str) or not question.strip():
            problems.append(f"line {number}: \"question\" must be a non-empty string")
        elif not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            problems.append(f"line {number}: \"answers\" must be a list of non-empty strings")
        elif not all(isinstance(x, str) for x in text_fields):
            problems.append(f"line {number}: \"doc\", \"type\" and \"follows\" must be strings (or null)")
        elif text_fields[2] and text_fields[2] not in seen:
            problems.append(f"line {number}: follows {text_fields[2]!r}, which is not an earlier question")
        else:
            seen.add(qid)
            questions.append(Question(qid, question.strip(), tuple(answers), *text_fields))
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise ValueError(f"{path}: {len(problems)} problem(s) in the question set:\n  {shown}")
    if not questions:
        raise ValueError(f"{path}: no questions")
    return questions


def unknown_docs(questions: Sequence[Question], article_ids) -> dict[str, list[str]]:
    """The ``doc`` values that name no article of the index, each with the ids of its questions:
    their article-level retrieval can only count as a miss."""
    known = set(article_ids)
    missing: dict[str, list[str]] = {}
    for question in questions:
        if question.doc and question.doc not in known:
            missing.setdefault(question.doc, []).append(question.id)
    return missing


def load_squad(path: Path) -> tuple[list[Article], list[Question]]:
    """One article per paragraph (``<title>-<n>``) and its questions (SQuAD 1.1 / 2.0 layout);
    an ``is_impossible`` question has no answers and the type ``unanswerable``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
        articles, questions = [], []
        for entry in data:
            title = str(entry.get("title", "")).replace("_", " ").strip() or "Untitled"
            for n, paragraph in enumerate(entry["paragraphs"]):
                doc_id = f"{title}-{n}"
                articles.append(Article(doc_id=doc_id, title=title, text=paragraph["context"]))
                for qa in paragraph["qas"]:
                    impossible = bool(qa.get("is_impossible"))
                    answers = () if impossible else tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                    questions.append(Question(id=str(qa["id"]), question=qa["question"], answers=answers,
                                              doc=doc_id, type="unanswerable" if impossible else ""))
    except FileNotFoundError:
        raise ValueError(f"SQuAD file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a SQuAD 1.1/2.0 JSON file ({type(exc).__name__}: {exc})") from None
    return articles, questions


def cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag"


def squad_corpus(path: Path, root: Path | None = None) -> tuple[Path, list[Question]]:
    """Write a SQuAD file's paragraphs as a JSONL corpus in a cache folder; return it and the questions."""
    raw = Path(path).read_bytes()
    folder = (root or cache_root()) / f"squad-{Path(path).stem}-{hashlib.sha256(raw).hexdigest()[:12]}"
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
    questions = [Question(q.id, q.question, q.answers, f"squad/{q.doc}", q.type) for q in questions]
    return corpus, questions


def squad_store(corpus: Path, settings: Settings) -> Path:
    """The cached index of a SQuAD corpus for these settings: one per embedder (and per chunk size
    or prefixes, when not the defaults), so ``--vs RAG_EMBEDDING=…`` never rebuilds the other."""
    name = f"store-{settings.embedding.replace('/', '_')}"
    extra = (settings.query_prefix, settings.passage_prefix, settings.chunk_words)
    if extra != ("", "", Settings.chunk_words):
        name += "-" + hashlib.sha256(repr(extra).encode()).hexdigest()[:8]
    return corpus.parent / name


# --------------------------------------------------------------------------- configurations


def parse_overrides(specs: Sequence[str]) -> dict[str, str]:
    """``["RAG_RETRIEVAL=dense"]`` -> ``{"RAG_RETRIEVAL": "dense"}``; only settings variables."""
    valid = [f"RAG_{name.upper()}" for name in Settings.__dataclass_fields__]
    overrides = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or name.strip() not in valid:
            raise ValueError(f"--vs {spec!r}: use VARIABLE=VALUE with one of {', '.join(valid)}")
        overrides[name.strip()] = value.strip()
    return overrides


def check_stores(configurations: Sequence[Settings]) -> None:
    """Two configurations that need different indexes must not share a store (ValueError)."""
    for i, a in enumerate(configurations):
        for b in configurations[i + 1:]:
            if Path(a.store_dir).resolve() != Path(b.store_dir).resolve():
                continue
            differ = [f"RAG_{f.upper()}" for f in INDEX_FIELDS if getattr(a, f) != getattr(b, f)]
            if differ:
                raise ValueError(
                    f"{' and '.join(differ)} change what the index holds, but both configurations would "
                    f"use the index in {a.store_dir}. Give the other one its own: add "
                    f"--vs RAG_STORE_DIR=DIR (built there from the corpus on first use).")


def shown(variable: str, value: str) -> str:
    """A variable's value as printed in tables and reports: never a key, token or password."""
    return masked(variable, value)


def setting_value(settings: Settings, variable: str) -> str:
    return str(getattr(settings, variable.removeprefix("RAG_").lower()))


def describe(settings: Settings) -> dict:
    """The settings a reader needs to reproduce a run."""
    return {"retrieval": settings.retrieval, "embedding": settings.embedding, "llm": settings.llm,
            "llm_model": settings.llm_model, "top_k": settings.top_k, "chunk_words": settings.chunk_words,
            "corpus_dir": str(settings.corpus_dir), "store_dir": str(settings.store_dir)}


# --------------------------------------------------------------------------- asking


class QueryVectors:
    """Wraps an embedder: every query is embedded as usual and the last vector is remembered, so
    the ranking search for the retrieval figures (inside :meth:`reuse`) does not embed the same
    question a second time. The answerer's own calls, and their timings, are unchanged."""

    def __init__(self, embeddings) -> None:
        self.inner = embeddings
        self._last: tuple[str, list[float]] | None = None
        self._reusing = False

    def embed_query(self, text: str) -> list[float]:
        if self._reusing and self._last and self._last[0] == text:
            return self._last[1]
        vector = self.inner.embed_query(text)
        self._last = (text, vector)
        return vector

    @contextmanager
    def reuse(self):
        self._reusing = True
        try:
            yield
        finally:
            self._reusing = False

    def __getattr__(self, name):  # name, dimension, embed_documents
        return getattr(self.inner, name)


@dataclass(frozen=True)
class Outcome:
    question: Question
    answer: object  # rag.answer.Answer
    rank: int | None  # of the relevant article (or passage) among those ranked; None: not found
    total_ms: float


def ask_all(answerer, retriever, questions: Sequence[Question], progress: bool = False) -> list[Outcome]:
    """Each question through ``answerer.stream`` as the chat asks it, consumed until ``Final``."""
    from tqdm import tqdm

    from .answer import Final

    done: dict[str, tuple[tuple, object]] = {}  # id -> (history it was asked with, answer)
    outcomes = []
    # disable=None: a progress bar only on a terminal.
    for question in tqdm(questions, unit="question", disable=None if progress else True, mininterval=1.0,
                         file=sys.stderr):
        history: tuple = ()
        if question.follows in done:
            earlier, previous = done[question.follows]
            history = (*earlier, (previous.question, previous.text))
        started = time.perf_counter()
        final = None
        for event in answerer.stream(question.question, list(history)):
            if isinstance(event, Final):
                final = event.answer
        total_ms = 1000 * (time.perf_counter() - started)
        if final is None:
            raise RuntimeError(f"The answerer gave no final answer to {question.id!r}")
        done[question.id] = (history, final)
        rank = None
        if question.answers:
            embeddings = retriever.index.embeddings
            with embeddings.reuse() if isinstance(embeddings, QueryVectors) else nullcontext():
                hits = retriever.search(final.standalone or question.question, k=RANK_DEPTH)
            rank = (m.article_rank([h.doc_id for h in hits], question.doc) if question.doc
                    else m.passage_rank([h.text for h in hits], question.answers))
        outcomes.append(Outcome(question, final, rank, total_ms))
    return outcomes


@dataclass
class Run:
    """One configuration's answers to the set, and their figures."""
    label: str
    settings: Settings
    outcomes: list[Outcome]
    english: bool = False  # SQuAD normalisation drops English articles
    overrides: dict = field(default_factory=dict)

    @cached_property
    def scores(self) -> list[dict]:
        return [score(o, self.english) for o in self.outcomes]

    def figures(self) -> dict:
        return summarise(self.scores)

    def by_type(self) -> dict[str, dict]:
        groups: dict[str, list[dict]] = {}
        for s in self.scores:
            groups.setdefault(s["type"], []).append(s)
        return {name: summarise(group) for name, group in groups.items()}


def run_set(settings: Settings, index, questions: Sequence[Question], label: str = "",
            overrides: dict | None = None, progress: bool = False) -> Run:
    from .llm import make_answerer
    from .retrieval import Retriever

    retriever = Retriever(index, settings.retrieval)
    retriever.search("Hà Nội", k=1)  # the first search loads the index files: not a latency a user sees twice
    outcomes = ask_all(make_answerer(settings, retriever), retriever, questions, progress)
    english = m.is_english(a for q in questions for a in q.answers)
    return Run(label, settings, outcomes, english, dict(overrides or {}))


# --------------------------------------------------------------------------- scoring


def answer_span(answer) -> str:
    """What F1 and EM compare: the short answer, else the answer text without ``[n]``; "" for
    "not found"."""
    if answer.abstained:
        return ""
    return answer.short or m.strip_citations(answer.text)


def lead_span(answer) -> str:
    """What the answer states first: its short answer, else its text up to the first ``[n]``;
    "" for "not found"."""
    if answer.abstained:
        return ""
    return answer.short or answer.text.split(" [")[0]


def cited_text(citation) -> str:
    """What a reader sees of a cited passage: its text, and its article's title, outlet, link
    and byline."""
    return "\n".join((citation.text, citation.title, citation.outlet, citation.url, citation.author))


def score(outcome: Outcome, english: bool = False) -> dict:
    """One question's scores (JSON-ready); answer scores only for answerable questions."""
    q, a = outcome.question, outcome.answer
    result = {"id": q.id, "type": q.type or UNTYPED, "answerable": bool(q.answers), "rank": outcome.rank,
              "abstained": a.abstained, "chars": len(a.text), "citations": len(a.citations),
              "answerer": a.answerer, "reason": a.reason, "timings_ms": {**a.timings_ms, "total": outcome.total_ms}}
    if q.answers:
        span = answer_span(a)
        result.update(
            contains=m.contains_answer(a.text, q.answers), leads=m.contains_answer(lead_span(a), q.answers),
            contains_folded=m.contains_answer(a.text, q.answers, True),
            f1=m.best_f1(span, q.answers, english), em=m.best_exact_match(span, q.answers, english),
            supported=sum(m.contains_answer(cited_text(c), q.answers) for c in a.citations))
        result["contains_cited"] = result["contains"] and result["supported"] > 0
    return result


def summarise(scores: Sequence[dict]) -> dict:
    """The figures of a list of :func:`score` results: shares in 0..1 (None when nothing to
    measure), lengths in characters, latencies in ms."""
    answerable = [s for s in scores if s["answerable"]]
    given = [s for s in scores if not s["abstained"]]
    given_answerable = [s for s in given if s["answerable"]]
    ranks = [s["rank"] for s in answerable]
    figures = {"questions": len(scores), "answerable": len(answerable),
               "unanswerable": len(scores) - len(answerable)}
    for k in m.CUTOFFS:
        figures[f"hit@{k}"] = m.mean([m.hit_at(r, k) for r in ranks])
    figures["mrr"] = m.mean([m.reciprocal_rank(r) for r in ranks])
    figures["ndcg@10"] = m.mean([m.ndcg_at(r, 10) for r in ranks])
    for name in ("contains", "leads", "contains_folded", "contains_cited", "f1", "em"):
        figures[name] = m.mean([float(s[name]) for s in answerable])
    figures["cited_gold"] = m.mean([float(s["supported"] > 0) for s in answerable])
    lengths = [s["chars"] for s in given]
    figures["chars_mean"] = m.mean(lengths)
    figures["chars_p95"] = m.percentile(lengths, 95) if lengths else None
    figures["citation_precision"] = m.share(sum(s["supported"] for s in given_answerable),
                                            sum(s["citations"] for s in given_answerable))
    figures["cited"] = m.share(sum(1 for s in given if s["citations"]), len(given))
    figures["abstained"] = m.share(len(scores) - len(given), len(scores))
    figures["abstain_precision"], figures["abstain_recall"] = m.abstention_scores(
        [s["abstained"] for s in scores], [not s["answerable"] for s in scores])
    stages = list(dict.fromkeys(stage for s in scores for stage in s["timings_ms"] if stage != "total"))
    for stage in stages + ["total"]:
        values = [s["timings_ms"][stage] for s in scores if stage in s["timings_ms"]]
        figures[f"{stage}_p50_ms"] = m.percentile(values, 50)
        figures[f"{stage}_p95_ms"] = m.percentile(values, 95)
    return figures
