"""The evaluation question set ``evalsets/corpus.jsonl`` is well formed and grounded in the corpus.

Every gold answer of an answerable question must occur verbatim (Unicode NFC, case-folded) in its
article: in the text the loader produces, or in the raw file (the loader strips the source and
author lines, which outlet/author/URL questions rely on). The minimum counts per kind of question
are checked too. ``_problems`` collects every defect, so a failure lists all of them at once.
"""
from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from rag.corpus import load_corpus
from rag.text import normalize

ROOT = Path(__file__).resolve().parent.parent
QUESTION_SET = ROOT / "evalsets" / "corpus.jsonl"
CORPUS_DIR = ROOT / "corpus"

TYPES = {
    "who", "what", "when", "where", "how-many", "official-name", "date", "number", "outlet",
    "author", "no-diacritics", "english", "paraphrase", "both-articles", "follow-up", "unanswerable",
}
REQUIRED = ("id", "question", "answers", "type")
MINIMUMS = {"total": 60, "unanswerable": 12, "no-diacritics": 8, "english": 8, "follow-up": 3,
            "both-articles": 4, "paraphrase": 8}


def _key(text: str) -> str:
    """NFC, single spaces, case-folded: how answers and article texts are compared."""
    return normalize(text).casefold()


def _article_texts(corpus_dir: Path = CORPUS_DIR) -> dict[str, str]:
    """doc_id -> searchable text: the loaded article (title + body) and its raw file."""
    result = load_corpus(corpus_dir)
    texts = {a.doc_id: _key(a.title + "\n" + a.text) for a in result.articles}
    for doc_id in list(texts):
        for suffix in (".txt", ".md"):
            raw = corpus_dir / f"{doc_id}{suffix}"
            if raw.is_file():
                texts[doc_id] += "\n" + _key(raw.read_text(encoding="utf-8-sig"))
    return texts


def _read_lines(path: Path = QUESTION_SET) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _problems(lines: list[str], texts: dict[str, str]) -> list[str]:
    problems: list[str] = []
    records: list[dict] = []
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
        missing = [f for f in REQUIRED if f not in record]
        if missing:
            problems.append(f"line {number}: missing {missing}")
            continue
        record["_line"] = number
        records.append(record)

    seen: dict[str, int] = {}
    for r in records:
        where = f"line {r['_line']} ({r['id']!r})"
        if not isinstance(r["id"], str) or not r["id"].strip():
            problems.append(f"{where}: empty id")
        elif r["id"] in seen:
            problems.append(f"{where}: id already used on line {seen[r['id']]}")
        else:
            seen[r["id"]] = r["_line"]
        if not isinstance(r["question"], str) or not r["question"].strip():
            problems.append(f"{where}: empty question")
        if r["type"] not in TYPES:
            problems.append(f"{where}: unknown type {r['type']!r}")
        answers = r["answers"]
        if not isinstance(answers, list) or not all(isinstance(a, str) and a.strip() for a in answers):
            problems.append(f"{where}: answers must be a list of non-empty strings")
            continue
        doc = r.get("doc") or ""
        if not answers:
            if doc:
                problems.append(f"{where}: an unanswerable question names a doc ({doc!r})")
            if r["type"] not in ("unanswerable", "follow-up"):
                problems.append(f"{where}: no answers but type {r['type']!r}")
            continue
        if r["type"] == "unanswerable":
            problems.append(f"{where}: type 'unanswerable' but it has answers")
        if doc not in texts:
            problems.append(f"{where}: unknown doc {doc!r}")
            continue
        for answer in answers:
            if _key(answer) not in texts[doc]:
                problems.append(f"{where}: answer {answer!r} is not in the text of {doc!r}")
        if r["type"] == "no-diacritics" and not r["question"].isascii():
            problems.append(f"{where}: a no-diacritics question has non-ASCII letters")

    order = {r["id"]: i for i, r in enumerate(records)}
    for i, r in enumerate(records):
        if "follows" in r:
            target = r["follows"]
            if target not in order:
                problems.append(f"line {r['_line']} ({r['id']!r}): follows unknown id {target!r}")
            elif order[target] >= i:
                problems.append(f"line {r['_line']} ({r['id']!r}): follows {target!r}, which comes later")
        elif r["type"] == "follow-up":
            problems.append(f"line {r['_line']} ({r['id']!r}): type follow-up without 'follows'")

    counts = Counter(r["type"] for r in records)
    counts["total"] = len(records)
    counts["unanswerable"] = sum(1 for r in records if r["answers"] == [])
    counts["follow-up"] = sum(1 for r in records if r.get("follows") in order)
    for kind, minimum in MINIMUMS.items():
        if counts[kind] < minimum:
            problems.append(f"only {counts[kind]} {kind} questions (at least {minimum} wanted)")
    return problems


@pytest.fixture(scope="module")
def texts() -> dict[str, str]:
    return _article_texts()


def test_corpus_articles_load():
    texts = _article_texts()
    assert {"thanh-uy-ha-noi-tham-argentina-peru", "ha-noi-la-habana-hop-tac"} <= set(texts)


def test_question_set_is_well_formed_and_grounded(texts):
    problems = _problems(_read_lines(), texts)
    assert problems == [], "\n".join(problems)


def test_both_articles_are_covered():
    docs = Counter(json.loads(line).get("doc") for line in _read_lines() if line.strip())
    for doc_id in ("thanh-uy-ha-noi-tham-argentina-peru", "ha-noi-la-habana-hop-tac"):
        assert docs[doc_id] >= 20, f"only {docs[doc_id]} questions on {doc_id}"


def test_answers_match_despite_case_and_decomposed_unicode(texts):
    line = json.dumps({"id": "x", "question": "q", "type": "number", "doc": "ha-noi-la-habana-hop-tac",
                       "answers": [unicodedata.normalize("NFD", "2000 TẤN GẠO")]}, ensure_ascii=False)
    assert not [p for p in _problems([line], texts) if "not in the text" in p]


def test_author_and_url_answers_are_found_in_the_raw_file(texts):
    line = json.dumps({"id": "x", "question": "q", "type": "author", "doc": "ha-noi-la-habana-hop-tac",
                       "answers": ["Hoàng Phúc", "laodongthudo.vn"]}, ensure_ascii=False)
    assert not [p for p in _problems([line], texts) if "not in the text" in p]


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r["answers"].append("3000 tấn gạo"), "is not in the text"),
    (lambda r: r.update(doc="no-such-article"), "unknown doc"),
    (lambda r: r.pop("question"), "missing"),
    (lambda r: r.update(type="trivia"), "unknown type"),
    (lambda r: r.update(type="unanswerable"), "type 'unanswerable' but it has answers"),
])
def test_a_broken_question_is_reported(texts, mutate, expected):
    lines = _read_lines()
    record = json.loads(lines[0])
    mutate(record)
    lines[0] = json.dumps(record, ensure_ascii=False)
    assert any(expected in p for p in _problems(lines, texts))


def test_duplicate_ids_bad_follow_ups_and_low_counts_are_reported(texts):
    lines = _read_lines()
    first = json.loads(lines[0])
    orphan = dict(json.loads(lines[1]), id="orphan", follows="never-defined", type="follow-up")
    early = dict(json.loads(lines[1]), id="early", follows=json.loads(lines[-1])["id"], type="follow-up")
    problems = _problems(lines + [json.dumps(first, ensure_ascii=False), json.dumps(orphan, ensure_ascii=False)],
                         texts)
    assert any("id already used" in p for p in problems)
    assert any("follows unknown id" in p for p in problems)
    assert any("which comes later" in p for p in _problems([json.dumps(early, ensure_ascii=False)] + lines, texts))
    assert any("questions (at least" in p for p in _problems(lines[:10], texts))


def test_the_off_topic_set_loads_and_answers_nothing():
    from rag.evaluation import load_question_set

    questions = load_question_set(ROOT / "evalsets" / "off-topic.jsonl")
    assert len(questions) == 40 and len({q.id for q in questions}) == 40
    assert all(not q.answers and not q.doc and q.type == "off-topic" for q in questions)


def test_the_new_user_set_is_grounded(texts):
    from rag.evaluation import load_question_set

    questions = load_question_set(ROOT / "evalsets" / "new-user.jsonl")
    ungrounded = [(q.id, a) for q in questions for a in q.answers if _key(a) not in texts.get(q.doc, "")]
    assert len(questions) >= 70 and ungrounded == []
    assert all(bool(q.doc) == bool(q.answers) for q in questions)
