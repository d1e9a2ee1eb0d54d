"""How the two rankings of hybrid retrieval are best fused: ``python benchmarks/fusion.py``.

For every answerable question of ViQuAD dev (the development set), XQuAD-vi and the corpus set,
the dense and the BM25 rankings are computed once (:meth:`rag.retrieval.Retriever.rankings`);
then each reciprocal-rank fusion setting (k, BM25's weight) is scored by how often a passage
holding a gold answer comes first and is among the first four (what the answerer reads), and how
often the first passage is the gold article's. Choose on dev; the other two are regression sets.
Nothing is asserted: these are figures to read and compare.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import evaluation, metrics  # noqa: E402
from rag.embeddings import make_embeddings  # noqa: E402
from rag.index import VectorIndex, ensure_index  # noqa: E402
from rag.retrieval import Retriever, fused_order, reciprocal_rank_fusion  # noqa: E402
from rag.settings import Settings  # noqa: E402

SETS = {"dev": ROOT.parent / "shared" / "benchmarks" / "viquad-dev.json",
        "xquad": ROOT.parent / "shared" / "benchmarks" / "xquad.vi.json",
        "corpus": ROOT / "evalsets" / "corpus.jsonl"}
GRID = [(k, w) for k in (60, 20, 10, 5) for w in (1.0, 1.2, 1.4, 1.6)]  # k = 60, 1.0: Cormack et al.


def rankings_of(name: str, path: Path, settings: Settings) -> list[dict]:
    """Each answerable question's two rankings, the passages' articles and the passages holding
    a gold answer."""
    if name == "corpus":
        questions = evaluation.load_question_set(path)
        settings = settings.with_(corpus_dir=ROOT / "corpus",
                                  store_dir=evaluation.cache_root() / f"train-corpus-{settings.embedding}")
    else:
        corpus, questions = evaluation.squad_corpus(path)
        settings = settings.with_(corpus_dir=corpus, store_dir=evaluation.squad_store(corpus, settings))
    embeddings = make_embeddings(settings)
    ensure_index(settings, embeddings, refresh=True, log=lambda message: print(message, file=sys.stderr))
    index = VectorIndex.open(settings, embeddings)
    retriever = Retriever(index, "hybrid")
    rows = []
    for question in questions:
        if not question.answers or question.follows:  # a follow-up is asked in its standalone form
            continue
        (dense, lexical), _ = retriever.rankings(question.question, retriever.candidates)
        hits = index.get(list({cid for cid, _ in dense} | {cid for cid, _ in lexical}))
        gold = {hit.chunk_id for hit in hits if metrics.contains_answer(hit.text, question.answers)}
        rows.append({"dense": dense, "lexical": lexical, "doc": question.doc, "gold": gold,
                     "docs": {hit.chunk_id: hit.doc_id for hit in hits}})
    index.close()
    return rows


def score(rows: list[dict], k: int, weight: float) -> tuple[float, float, float]:
    first = four = article = 0
    for row in rows:
        rankings = [row["dense"], row["lexical"]]
        order = fused_order(reciprocal_rank_fusion(rankings, k, [1.0, weight]), rankings)[:4]
        first += bool(order) and order[0] in row["gold"]
        four += bool(set(order) & row["gold"])
        article += bool(order) and row["docs"].get(order[0]) == row["doc"]
    return tuple(round(100 * n / max(len(rows), 1), 1) for n in (first, four, article))


def main() -> int:
    settings = Settings.load()
    data = {name: rankings_of(name, path, settings) for name, path in SETS.items()}
    print("passage holding the answer first / in the first four / first passage from the gold article, %")
    print(f"{'k':>3} {'bm25':>5}  " + "  ".join(f"{name} ({len(rows)})".ljust(20)
                                              for name, rows in data.items()))
    for k, weight in GRID:
        print(f"{k:>3} {weight:>5}  " + "  ".join(
            " / ".join(f"{v:.1f}" for v in score(rows, k, weight)).ljust(20) for rows in data.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
