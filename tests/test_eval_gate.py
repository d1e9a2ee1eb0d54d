"""CI gate: the corpus question set, run by the real `rag eval` on a copy of the seed corpus, must
meet these minimums (percentages, as `rag eval` prints them).

They sit just under what the current answerer measures, with about one question of slack each
(one of the 94 answerable questions is 1.1 points, one of the 16 unanswerable ones 6.3 points),
so a regression of two questions fails CI. Raise them when the answerer improves: run
`rag eval --qa evalsets/corpus.jsonl` and set each one a question below the new figure.
"""
import json

import pytest
from conftest import ROOT, run_rag

from rag.answer import NOT_FOUND

QUESTION_SET = ROOT / "evalsets" / "corpus.jsonl"

# Measured with the extractive answerer (RAG_LLM=none), hybrid retrieval, e5-small-q4, passages
# of 160 words: hit@1 98.9, hit@5 100, contains 92.6 (folded 92.6, with a cited passage holding
# the answer 92.6; some cited passage holds it: 93.6), the answer first 84.0, F1 57.5, EM 46.8,
# citation precision 86.2, cited 100, abstention precision 80.0 (16 of 20), recall 100 (16 of 16).
CORPUS_GATE = {
    "hit@1": 97.8,
    "hit@5": 98.9,
    "contains": 91.5,
    "leads": 83.0,
    "contains_folded": 91.5,
    "contains_cited": 91.5,
    "cited_gold": 92.6,
    "f1": 56.4,
    "em": 45.7,
    "citation_precision": 85.2,
    "cited": 98.9,
    "abstain_precision": 76.1,
    "abstain_recall": 93.7,
}


@pytest.mark.slow
def test_the_corpus_question_set_meets_the_ci_minimums(indexed, isolated):
    minimums = [f"--min={name}={value}" for name, value in CORPUS_GATE.items()]
    result = run_rag("eval", "--qa", str(QUESTION_SET), *minimums, "--json", "out.json", "--report", "out.md",
                     "--plot", "out.png", "--ragas", "ragas.jsonl")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "below threshold" not in result.stderr

    report = json.loads((isolated / "out.json").read_text(encoding="utf-8"))
    (run,) = report["runs"]
    figures = run["figures"]
    assert (figures["questions"], figures["answerable"], figures["unanswerable"]) == (110, 94, 16)
    assert run["settings"]["retrieval"] == "hybrid" and run["settings"]["llm"] == "none"
    assert len(run["questions"]) == 110 and {"follow-up", "unanswerable", "english"} <= set(run["by_type"])
    follow_up = next(q for q in run["questions"] if q["id"] == "arg-peru-meet-1")
    assert follow_up["standalone"]  # asked with the history of the question it follows

    # The terminal table names metrics as --min takes them; the Markdown report can be pasted.
    assert "  contains " in result.stdout and "By question type (A):" in result.stdout
    markdown = (isolated / "out.md").read_text(encoding="utf-8")
    command = markdown.split("```bash\n")[1].split("\n```")[0]  # the variables set, then the command
    assert command.startswith("RAG_CORPUS_DIR=") and f" rag eval --qa {QUESTION_SET} --min" not in command
    assert f" rag eval --qa {QUESTION_SET}" in command and "| `contains` | " in markdown
    assert "<summary>By question type (A)</summary>" in markdown and "| unanswerable | 16 |" in markdown
    assert (isolated / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rows = [json.loads(line) for line in (isolated / "ragas.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 110 and all(set(r) == {"question", "answer", "contexts", "ground_truth"} for r in rows)
    assert all(r["contexts"] and all(isinstance(c, str) and c for c in r["contexts"]) for r in rows)
    assert sum(r["ground_truth"] == NOT_FOUND for r in rows) == 16


# The external benchmarks of ../shared/benchmarks, each gated on all its questions:
# - XQuAD-vi (240 paragraphs as articles, 1,190 questions), a regression set never trained on:
#   measured nDCG@10 97.7 and `contains` / `contains_cited` 86.2 with the learned sentence scorer
#   (85.5 with the hand-tuned rules before it, tuned on this set), `cited_gold` 93.4; the minimums
#   sit about five questions under.
# - ViQuAD 1.0 dev (515 lower-cased Wikipedia paragraphs as articles, 2,285 questions), the
#   development set the scorer is trained on: measured nDCG@10 89.4, `contains` /
#   `contains_cited` 77.7 (77.7 out of fold; 75.9 before a full stop between a number's digits
#   ended no sentence, 69.4 with the hand-tuned rules), `cited_gold` 85.2 (85.6 out of fold);
#   the minimums sit about 12 questions under.
BENCHMARKS = ROOT.parent / "shared" / "benchmarks"
SQUAD_GATES = [
    ("xquad.vi.json", 1190, {"ndcg@10": 97.3, "contains_cited": 85.9, "contains": 85.9, "cited_gold": 93.0}),
    ("viquad-dev.json", 2285, {"ndcg@10": 88.9, "contains_cited": 77.2, "contains": 77.2, "cited_gold": 84.7}),
]


@pytest.mark.slow
@pytest.mark.parametrize("name, questions, gate", SQUAD_GATES, ids=[name for name, _, _ in SQUAD_GATES])
def test_benchmark_answers_meet_the_ci_minimums(isolated, name, questions, gate):
    if not (BENCHMARKS / name).is_file():
        pytest.skip(f"needs ../shared/benchmarks/{name} beside the project")
    minimums = [f"--min={metric}={value}" for metric, value in gate.items()]
    result = run_rag("eval", "--squad", str(BENCHMARKS / name), *minimums, "--json", "out.json", timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["runs"]
    assert run["figures"]["questions"] == questions and run["figures"]["unanswerable"] == 0
    assert max(len(q["answer"]) for q in run["questions"]) <= 400


# Questions off the articles' topic: ViQuAD dev's 2,285 questions about Wikipedia paragraphs,
# asked of the seed corpus (two articles on Hà Nội's delegations), where none has an answer.
# Measured 88.0 % answered "not found" (70.2 % before the unknown-words floor, 85.2 % before half
# the words vouched for a sentence under the similarity floor only in English or without
# diacritics); the minimum sits about 12 questions under.
OFF_TOPIC_MIN = 87.4


@pytest.mark.slow
def test_questions_off_the_articles_topic_are_not_answered(indexed, isolated):
    from rag.evaluation import load_squad

    if not (BENCHMARKS / "viquad-dev.json").is_file():
        pytest.skip("needs ../shared/benchmarks/viquad-dev.json beside the project")
    _, questions = load_squad(BENCHMARKS / "viquad-dev.json")
    lines = [json.dumps({"id": q.id, "question": q.question, "answers": []}, ensure_ascii=False)
             for q in questions]
    (isolated / "off-topic.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_rag("eval", "--qa", "off-topic.jsonl", f"--min=abstain_recall={OFF_TOPIC_MIN}",
                     "--json", "out.json", timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    (run,) = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["runs"]
    assert run["figures"]["questions"] == run["figures"]["unanswerable"] == 2285
    answered = [q for q in run["questions"] if not q["abstained"]]
    assert all(q["citations"] for q in answered)  # what is still answered is cited, as any answer
