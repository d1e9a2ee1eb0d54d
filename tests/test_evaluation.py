import json
import math

import pytest
from conftest import ROOT, run_rag

from rag.evaluation import (Question, article_rank, hit_at, load_squad, ndcg_at, percentile,
                            reciprocal_rank)

XQUAD = ROOT.parent / "shared" / "benchmarks" / "xquad.vi.json"


def test_rank_metrics_by_hand():
    assert [hit_at(r, 3) for r in (1, 3, 4, None)] == [1, 1, 0, 0]
    assert [reciprocal_rank(r) for r in (1, 4, None)] == [1, 0.25, 0]
    assert ndcg_at(1) == 1 and ndcg_at(3) == pytest.approx(1 / math.log2(4)) == pytest.approx(0.5)
    assert ndcg_at(10) == pytest.approx(1 / math.log2(11)) and ndcg_at(11) == 0 and ndcg_at(None) == 0


def test_article_rank_counts_distinct_articles():
    assert article_rank(["a", "a", "b", "a", "c"], "c") == 3
    assert article_rank(["a", "b"], "z") is None


def test_percentile_nearest_rank():
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([], 95) == 0


def test_load_squad_one_article_per_paragraph(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps({"version": "1.1", "data": [{"title": "Hà_Nội", "paragraphs": [
        {"context": "Hà Nội là thủ đô.", "qas": [
            {"id": "q1", "question": "Thủ đô là gì?", "answers": [{"text": "Hà Nội", "answer_start": 0}]}]},
        {"context": "Hồ Gươm ở trung tâm.", "qas": [
            {"id": "q2", "question": "Hồ nào?", "answers": [], "is_impossible": True}]},
    ]}]}, ensure_ascii=False), encoding="utf-8")
    articles, questions = load_squad(path)
    assert [(a.doc_id, a.title) for a in articles] == [("Hà Nội-0", "Hà Nội"), ("Hà Nội-1", "Hà Nội")]
    assert questions == [Question("q1", "Thủ đô là gì?", ("Hà Nội",), "Hà Nội-0"),
                         Question("q2", "Hồ nào?", (), "Hà Nội-1")]


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
    assert "nDCG@10" in result.stdout and "questions" in result.stdout
    figures = json.loads((isolated / "out.json").read_text(encoding="utf-8"))
    assert figures["questions"] == asked and figures["retrieval"] == "hybrid"
    assert figures["ndcg@10"] > 0.9 and figures["hit@10"] >= figures["hit@1"] > 0.8

    again = run_rag("eval", "--squad", str(small))  # the cached index is reused: nothing embedded
    assert again.returncode == 0 and "Embedding" not in again.stderr
