"""`rag eval` as users run it: the real command in a subprocess (the CI gate is in test_eval_gate.py)."""
import json

import pytest
from conftest import CUBA, ROOT, run_rag

from rag.evaluation import load_question_set

QUESTION_SET = ROOT / "evalsets" / "corpus.jsonl"
XQUAD = ROOT.parent / "shared" / "benchmarks" / "xquad.vi.json"


def _set(path, records):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return str(path)


def test_input_errors_are_reported_before_anything_loads(isolated):
    """Nothing is indexed or asked: each mistake exits 2 with a message naming it."""
    result = run_rag("eval", "--qa", str(QUESTION_SET), "--min", "recall=80")
    assert result.returncode == 2 and "unknown metric 'recall'; valid metrics: hit@1, hit@3" in result.stderr
    assert "abstain_recall" in result.stderr and "Traceback" not in result.stderr

    result = run_rag("eval", "--qa", str(QUESTION_SET), "--vs", "retrieval=dense")
    assert result.returncode == 2 and "use VARIABLE=VALUE with one of RAG_CORPUS_DIR" in result.stderr

    for bad, message in (("RAG_RETRIEVAL=fuzzy", "Unknown retrieval mode 'fuzzy'"), ("RAG_TOP_K=many", "RAG_TOP_K"),
                         ("RAG_LLM=openai", "RAG_LLM=openai needs RAG_LLM_MODEL")):
        result = run_rag("eval", "--qa", str(QUESTION_SET), "--vs", bad)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr

    result = run_rag("eval", "--qa", str(QUESTION_SET), "--json", str(isolated / "no-such-folder" / "out.json"))
    assert result.returncode == 2 and "does not exist" in result.stderr

    # Another embedder cannot share the index: the other configuration needs its own store.
    result = run_rag("eval", "--qa", str(QUESTION_SET), "--vs", "RAG_EMBEDDING=sentence-transformers:/models/x")
    assert result.returncode == 2 and "--vs RAG_STORE_DIR=DIR" in result.stderr

    broken = _set(isolated / "broken.jsonl", [{"id": "a", "question": "Ai?"}])
    result = run_rag("eval", "--qa", broken)
    assert result.returncode == 2 and "line 1: no \"answers\"" in result.stderr

    result = run_rag("eval")
    assert result.returncode == 2 and "one of the arguments --qa --squad --export-feedback is required" in result.stderr
    assert not (isolated / "vectorstore").exists()


def test_export_feedback_writes_disliked_questions_as_candidates(isolated, settings):
    from rag.feedback import DISLIKE, LIKE, FeedbackStore

    store = FeedbackStore.beside(settings.store_dir)
    store.add("Ai dẫn đầu đoàn?", {"answer": "Nguyễn Thị Tuyến [1]", "citations": []}, LIKE)
    store.add("Hà Nội tặng bao nhiêu tấn gạo?", {"answer": "Không tìm thấy", "abstained": True, "citations": []},
              DISLIKE, comment="có trong bài")
    result = run_rag("eval", "--export-feedback", "candidates.jsonl")
    assert result.returncode == 0, result.stderr
    assert "1 candidate questions" in result.stdout and "from 2 ratings" in result.stdout
    (line,) = (isolated / "candidates.jsonl").read_text(encoding="utf-8").splitlines()
    candidate = json.loads(line)
    assert candidate["question"] == "Hà Nội tặng bao nhiêu tấn gạo?" and candidate["abstained"]
    assert candidate["comment"] == "có trong bài"
    # A candidate counts only once a reviewer has written its gold answers.
    with pytest.raises(ValueError, match="no \"answers\""):
        load_question_set(isolated / "candidates.jsonl")


@pytest.mark.slow
def test_vs_runs_two_configurations_side_by_side_and_an_unmet_minimum_exits_3(indexed, isolated):
    questions = _set(isolated / "set.jsonl", [
        {"id": "rice", "question": "Hà Nội tặng La Habana bao nhiêu tấn gạo?", "answers": ["2000 tấn gạo"],
         "doc": CUBA, "type": "number"},
        # a gold answer no article holds: a grounded answer can never contain it
        {"id": "steel", "question": "Hà Nội tặng La Habana bao nhiêu tấn thép?", "answers": ["999 tấn thép"],
         "doc": CUBA, "type": "number"},
        {"id": "why", "question": "Món quà đó nhằm chia sẻ khó khăn về vấn đề gì?", "answers": ["an ninh lương thực"],
         "doc": CUBA, "type": "follow-up", "follows": "rice"},
    ])
    result = run_rag("eval", "--qa", questions, "--vs", "RAG_RETRIEVAL=dense", "--min", "contains=90",
                     "--min", "abstain_recall=50", "--json", "out.json", "--report", "out.md")
    assert result.returncode == 3, result.stderr
    assert "below threshold: contains = " in result.stderr and ", below the minimum 90" in result.stderr
    assert "below threshold: abstain_recall: not measured on this set" in result.stderr
    assert "A: RAG_RETRIEVAL=hybrid" in result.stdout and "B: RAG_RETRIEVAL=dense" in result.stdout
    assert "B - A" in result.stdout.splitlines()[4]  # the header of the side-by-side table

    runs = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["runs"]
    assert [r["settings"]["retrieval"] for r in runs] == ["hybrid", "dense"]
    assert runs[1]["overrides"] == {"RAG_RETRIEVAL": "dense"} and runs[0]["overrides"] == {}
    assert all(r["figures"]["questions"] == 3 and r["figures"]["abstain_recall"] is None for r in runs)
    assert all(r["figures"]["contains"] <= 2 / 3 for r in runs)  # "999 tấn thép" is never in an answer
    markdown = (isolated / "out.md").read_text(encoding="utf-8")
    assert "rag eval --qa" in markdown and "--vs RAG_RETRIEVAL=dense" in markdown and "| metric | A | B | B − A |" in markdown


@pytest.mark.slow
def test_vs_an_llm_answerer_scores_the_models_answers_through_the_same_code_path(indexed, isolated):
    from openai_stub import StubChatServer

    questions = _set(isolated / "set.jsonl", [
        {"id": "rice", "question": "Hà Nội tặng La Habana bao nhiêu tấn gạo?", "answers": ["2000 tấn gạo"],
         "doc": CUBA, "type": "number"}])
    with StubChatServer("Hà Nội tặng La Habana 2000 tấn gạo [1].") as server:
        result = run_rag("eval", "--qa", questions, "--vs", "RAG_LLM=openai", "--vs", f"RAG_LLM_BASE_URL={server.url}/v1",
                         "--vs", "RAG_LLM_MODEL=stub", "--vs", "RAG_LLM_API_KEY=s3cret", "--json", "out.json",
                         "--ragas", "ragas.jsonl", "--report", "out.md")
        asked = [r for r in server.requests if r["path"] == "/v1/chat/completions"]
    assert result.returncode == 0, result.stderr
    assert asked[0]["headers"]["authorization"] == "Bearer s3cret"  # used, but never printed or written
    written = [(isolated / name).read_text(encoding="utf-8") for name in ("out.json", "out.md")]
    assert "s3cret" not in result.stdout + "".join(written) and "RAG_LLM_API_KEY=***" in written[1]
    extractive, llm = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["runs"]
    assert len(asked) == 1 and llm["settings"]["llm"] == "openai" and extractive["settings"]["llm"] == "none"
    (answer,) = llm["questions"]
    assert answer["answer"] == "Hà Nội tặng La Habana 2000 tấn gạo [1]." and answer["short"] == ""
    # No short answer: F1 compares the text without "[1]": 8 tokens, 3 in common: P = 3/8, R = 1, F1 = 6/11
    assert answer["contains"] and answer["f1"] == pytest.approx(6 / 11)
    assert "generate_p50_ms" in llm["figures"] and "generate_p50_ms" not in extractive["figures"]
    (row,) = [json.loads(line) for line in (isolated / "ragas-vs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert row["answer"] == answer["answer"] and "2000 tấn gạo" in row["contexts"][0]


@pytest.mark.slow
def test_squad_vs_another_embedder_gets_its_own_cached_index(isolated, minilm_path):
    squad = isolated / "tiny.json"
    squad.write_text(json.dumps({"version": "v2.0", "data": [{"title": "Hà_Nội", "paragraphs": [
        {"context": "Hà Nội tặng La Habana 2000 tấn gạo để chia sẻ khó khăn về an ninh lương thực.", "qas": [
            {"id": "q1", "question": "Hà Nội tặng La Habana bao nhiêu tấn gạo?",
             "answers": [{"text": "2000 tấn gạo", "answer_start": 22}]},
            {"id": "q2", "question": "Hà Nội tặng Peru bao nhiêu tấn thép?", "answers": [], "is_impossible": True}]},
        {"context": "Đoàn đại biểu thành phố thăm Argentina và Peru từ ngày 19 đến 30/10.", "qas": [
            {"id": "q3", "question": "Đoàn thăm Argentina khi nào?",
             "answers": [{"text": "từ ngày 19 đến 30/10", "answer_start": 46}]}]},
    ]}]}, ensure_ascii=False), encoding="utf-8")
    other = f"RAG_EMBEDDING=sentence-transformers:{minilm_path}"
    result = run_rag("eval", "--squad", str(squad), "--vs", other, "--json", "out.json")
    assert result.returncode == 0, result.stderr
    runs = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["runs"]
    assert [r["settings"]["embedding"] for r in runs] == ["e5-small-q4", f"sentence-transformers:{minilm_path}"]
    stores = {r["settings"]["store_dir"] for r in runs}
    assert len(stores) == 2 and all(str(isolated / "cache" / "rag") in s for s in stores)
    assert all((r["figures"]["answerable"], r["figures"]["unanswerable"]) == (2, 1) for r in runs)

    again = run_rag("eval", "--squad", str(squad), "--vs", other)  # both cached: nothing embedded
    assert again.returncode == 0 and "Embedding" not in again.stderr


@pytest.mark.slow
def test_eval_squad_end_to_end_on_a_slice_of_xquad(isolated):
    if not XQUAD.exists():
        pytest.skip("../shared/benchmarks/xquad.vi.json is not beside the project")
    data = json.loads(XQUAD.read_text(encoding="utf-8"))
    data["data"] = data["data"][:2]  # the same code path on two articles, quicker
    asked = sum(len(p["qas"]) for entry in data["data"] for p in entry["paragraphs"])
    small = isolated / "xquad-small.json"
    small.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")

    result = run_rag("eval", "--squad", str(small), "--json", str(isolated / "out.json"))
    assert result.returncode == 0, result.stderr
    assert "ndcg@10" in result.stdout and "contains" in result.stdout
    (run,) = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["runs"]
    figures = run["figures"]
    assert figures["questions"] == figures["answerable"] == asked and run["settings"]["retrieval"] == "hybrid"
    assert figures["ndcg@10"] > 0.9 and figures["hit@10"] >= figures["hit@1"] > 0.8
    assert figures["contains"] > 0.5 and 0 < figures["f1"] < 1 and figures["abstain_recall"] is None

    again = run_rag("eval", "--squad", str(small))  # the cached index is reused: nothing embedded
    assert again.returncode == 0 and "Embedding" not in again.stderr


@pytest.mark.slow
def test_vs_rag_llm_none_compares_a_configured_llm_with_the_extractive_answerer(indexed, isolated):
    """With an LLM configured in the environment, --vs RAG_LLM=none runs the extractive answerer
    as B (the LLM's other settings stay, unused)."""
    from openai_stub import StubChatServer

    questions = _set(isolated / "set.jsonl", [
        {"id": "rice", "question": "Hà Nội tặng La Habana bao nhiêu tấn gạo?", "answers": ["2000 tấn gạo"],
         "doc": CUBA, "type": "number"}])
    env = {"RAG_LLM": "openai", "RAG_LLM_MODEL": "stub", "RAG_LLM_API_KEY": "s3cret"}
    with StubChatServer("Hà Nội tặng La Habana 2000 tấn gạo [1].") as server:
        env["RAG_LLM_BASE_URL"] = f"{server.url}/v1"
        result = run_rag("eval", "--qa", questions, "--vs", "RAG_LLM=none", "--json", "out.json", env=env)
        asked = [r for r in server.requests if r["path"] == "/v1/chat/completions"]
    assert result.returncode == 0, result.stderr
    assert "A: RAG_LLM=openai" in result.stdout and "B: RAG_LLM=none" in result.stdout
    assert len(asked) == 1  # by A only
    llm, extractive = json.loads((isolated / "out.json").read_text(encoding="utf-8"))["runs"]
    assert (llm["settings"]["llm"], extractive["settings"]["llm"]) == ("openai", "none")
    (a,), (b,) = llm["questions"], extractive["questions"]
    assert (a["answerer"], a["reason"], a["answer"]) == ("llm", "", "Hà Nội tặng La Habana 2000 tấn gạo [1].")
    assert (b["answerer"], b["reason"], b["short"]) == ("extractive", "", "2000 tấn gạo")
    assert "s3cret" not in result.stdout + result.stderr
