"""Train the extractive answerer's sentence scorer and write ``rag/answer_model.json``.

    python benchmarks/train_answerer.py                 # train, report out-of-fold figures, write the model
    python benchmarks/train_answerer.py --dry-run       # the figures only

Data: the development set (ViQuAD dev, ``../shared/benchmarks/viquad-dev.json``) and the corpus
question set (``evalsets/corpus.jsonl``). Each question is retrieved as the chat retrieves it
(``RAG_TOP_K`` passages); every sentence of those passages is a training row, labelled by whether
it holds a gold answer. Rows are split into five folds **by article**, so no fold is scored by a
model that saw questions about its article. The figures printed (and stored in the model file)
are out-of-fold: each question answered by the real :class:`rag.answer.ExtractiveAnswerer` with
the model that did not see it, scored by ``rag eval``'s own scoring. XQuAD-vi is not trained on:
measure it with ``rag eval`` afterwards, as a regression set.

The thresholds (how close to the best sentence's probability a further sentence must be to be
added, and whether it may come from another article) are chosen on the same out-of-fold answers.

A second, smaller logistic regression chooses among a sentence's numbers the one a "bao nhiêu"
question without a unit asks for (``rag.scoring.NUMBER_FEATURES``): trained on the numbers of
the retrieved sentences that hold a gold answer of a number question, by the same folds; it
prints how often the chooser of the fold that left a sentence out picks a gold number, against
the sentence's first number (what answered before it).
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import evaluation, metrics  # noqa: E402
from rag.answer import ExtractiveAnswerer  # noqa: E402
from rag.embeddings import make_embeddings  # noqa: E402
from rag.index import VectorIndex, ensure_index  # noqa: E402
from rag.retrieval import Retriever  # noqa: E402
from rag.question import question_kind  # noqa: E402
from rag.scoring import FEATURES, MODEL_PATH, NUMBER_FEATURES, SentenceScorer, number_features  # noqa: E402
from rag.text import fold, words  # noqa: E402
from rag.settings import Settings  # noqa: E402

FOLDS = 5
C = 1.0  # inverse regularisation of the logistic regression
# Weighting corpus-set questions 5 or 20 times measured the same out of fold (dev 73.6-73.8, corpus 89.4).
WEIGHTS = {"dev": 1.0, "corpus": 1.0}
MORE = (0.05, 0.1, 0.12, 0.15, 0.2, 0.3)  # candidate values of thresholds["more"]
MAX_CHARS_MEAN = 300  # longer answers hold the span more often but bury it: not longer than before
REPORTED = ("contains", "contains_cited", "cited_gold", "f1", "citation_precision", "chars_mean", "abstained")


class CachedRetriever(Retriever):
    """A retriever that answers a repeated query from memory: each fold's answerer retrieves the
    same questions again."""

    def __init__(self, inner: Retriever) -> None:
        self.__dict__.update(inner.__dict__)
        self._memo: dict = {}

    def retrieve(self, query: str, k: int = 4):
        if (query, k) not in self._memo:
            self._memo[(query, k)] = super().retrieve(query, k)
        return self._memo[(query, k)]


def fold_of(name: str, doc: str) -> int:
    return int(hashlib.sha256(f"{name}:{doc}".encode()).hexdigest(), 16) % FOLDS


def open_set(name: str, settings: Settings):
    """(retriever, questions, open index) of one question set, its index built if needed:
    ``dev``, ``xquad``, ``corpus``, ``new-user`` (asked of the seed corpus as ``corpus``), or
    ``off-topic``: dev's questions asked of the seed corpus, where none has an answer."""
    if name in ("dev", "xquad"):
        benchmark = {"dev": "viquad-dev.json", "xquad": "xquad.vi.json"}[name]
        corpus, questions = evaluation.squad_corpus(ROOT.parent / "shared" / "benchmarks" / benchmark)
        settings = settings.with_(corpus_dir=corpus, store_dir=evaluation.squad_store(corpus, settings))
    else:
        if name == "off-topic":
            _, asked = evaluation.squad_corpus(ROOT.parent / "shared" / "benchmarks" / "viquad-dev.json")
            questions = [dataclasses.replace(q, answers=(), doc="", type="unanswerable") for q in asked]
        else:  # "corpus" or "new-user"
            questions = evaluation.load_question_set(ROOT / "evalsets" / f"{name}.jsonl")
        settings = settings.with_(corpus_dir=ROOT / "corpus",
                                  store_dir=evaluation.cache_root() / f"train-corpus-{settings.embedding}")
    embeddings = make_embeddings(settings)
    ensure_index(settings, embeddings, refresh=True, log=lambda message: print(message, file=sys.stderr))
    index = VectorIndex.open(settings, embeddings)
    return CachedRetriever(Retriever(index, settings.retrieval)), questions, index


def prior_scorer() -> SentenceScorer:
    """Before any training: the dense similarity alone orders the sentences."""
    coef = np.zeros(len(FEATURES))
    coef[FEATURES.index("similarity")] = 1.0
    return SentenceScorer(np.zeros(len(FEATURES)), np.ones(len(FEATURES)), coef, 0.0,
                          {"more": 0.0, "same_article": True}, {})


def rows(answerer: ExtractiveAnswerer, outcomes) -> list[tuple[np.ndarray, np.ndarray]]:
    """(features, labels) per answerable question, retrieved as the answerer retrieved it."""
    data = []
    for outcome in outcomes:
        question = outcome.question
        asked = outcome.answer.standalone or question.question
        retrieval = answerer.retriever.retrieve(asked, k=answerer.top_k)
        candidates, matrix = answerer.candidate_features(asked, retrieval.hits, retrieval.query_vector)
        labels = np.array([metrics.contains_answer(c.sentence, question.answers) for c in candidates], dtype=int)
        data.append((matrix, labels))
    return data


def names_answer(span: str, answers) -> bool:
    """Whether a number's span is a gold answer: holds one, or most of one."""
    found = " ".join(fold(w) for w in words(span))
    golds = [" ".join(fold(w) for w in words(a)) for a in answers]
    return bool(found) and any(g in found or (found in g and len(found) >= len(g) / 2) for g in golds)


def number_rows(answerer: ExtractiveAnswerer, outcomes) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """For each answerable question that asks "bao nhiêu" (none for the others), each retrieved
    sentence holding a gold answer that is one of its numbers: the numbers' features, and which
    of them is a gold answer."""
    data = []
    for outcome in outcomes:
        asked, answers = outcome.answer.standalone or outcome.question.question, outcome.question.answers
        sentences = []
        if question_kind(asked) == "number":
            for hit in answerer.retriever.retrieve(asked, k=answerer.top_k).hits:
                for sentence in hit.sentences:
                    if metrics.contains_answer(sentence, answers):
                        spans, matrix = number_features(sentence, asked)
                        labels = np.array([names_answer(span, answers) for span in spans], dtype=int)
                        if labels.any():
                            sentences.append((matrix, labels))
        data.append(sentences)
    return data


def fit_numbers(sentences: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """A logistic regression telling the number that answers from the others of its sentence."""
    from sklearn.linear_model import LogisticRegression

    x = np.vstack([m for m, _ in sentences])
    y = np.concatenate([labels for _, labels in sentences])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=C, max_iter=5000).fit((x - mean) / scale, y)
    return {"features": list(NUMBER_FEATURES), "mean": mean.tolist(), "scale": scale.tolist(),
            "coef": model.coef_[0].tolist(), "intercept": float(model.intercept_[0])}


def fit(data: list[tuple[np.ndarray, np.ndarray, float]], thresholds: dict) -> SentenceScorer:
    """A logistic regression on ``(features, labels, weight)`` per question."""
    from sklearn.linear_model import LogisticRegression

    data = [d for d in data if len(d[0])]
    x = np.vstack([m for m, _, _ in data])
    y = np.concatenate([labels for _, labels, _ in data])
    w = np.concatenate([np.full(len(labels), weight) for _, labels, weight in data])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=C, max_iter=5000).fit((x - mean) / scale, y, sample_weight=w)
    return SentenceScorer(mean, scale, model.coef_[0], float(model.intercept_[0]), dict(thresholds), {})


def collect(settings: Settings) -> dict:
    """Each set's questions, retriever, and training rows with their folds."""
    sets = {}
    for name in ("dev", "corpus"):
        retriever, questions, index = open_set(name, settings)
        answerer = ExtractiveAnswerer(retriever, top_k=settings.top_k, scorer=prior_scorer())
        # The prior answers give follow-ups their standalone form (asked with the answer before).
        outcomes = evaluation.ask_all(answerer, retriever, questions)
        answerable = [o for o in outcomes if o.question.answers]
        data = rows(answerer, answerable)
        folds = [fold_of(name, o.question.doc or o.question.id) for o in answerable]
        sets[name] = dict(retriever=retriever, questions=questions, index=index, data=data, folds=folds,
                          answerable=answerable, numbers=number_rows(answerer, answerable))
        print(f"{name}: {len(questions)} questions, {sum(len(m) for m, _ in data)} sentences", file=sys.stderr)

    return sets


def fold_models(sets: dict, thresholds: dict) -> list[SentenceScorer]:
    """One model per fold, each trained on the other folds of every set."""
    return [dataclasses.replace(
        fit([(*d, WEIGHTS[name]) for name, s in sets.items() for d, f in zip(s["data"], s["folds"]) if f != k],
            thresholds),
        number=fit_numbers([sentence for s in sets.values() for sentences, f in zip(s["numbers"], s["folds"])
                            if f != k for sentence in sentences]))
        for k in range(FOLDS)]


def numbers_out_of_fold(sets: dict, models: list[SentenceScorer]) -> dict[str, dict]:
    """Of each set's sentences holding a gold number, how many the number chooser of the fold that
    left them out answers with it, against taking the sentence's first number."""
    figures = {}
    for name, s in sets.items():
        found = [(labels[int(np.argmax(models[fold].number_scores(matrix)))], labels[0])
                 for sentences, fold in zip(s["numbers"], s["folds"]) for matrix, labels in sentences]
        figures[name] = {"chosen": int(sum(c for c, _ in found)), "first": int(sum(f for _, f in found)),
                         "sentences": len(found)}
    return figures


def out_of_fold(sets: dict, models: list[SentenceScorer], settings: Settings) -> dict[str, dict]:
    """Each set's figures, every question answered by the model of the fold that left it out."""
    figures = {}
    for name, s in sets.items():
        fold_by_id = {o.question.id: f for o, f in zip(s["answerable"], s["folds"])}
        by_id = {q.id: q for q in s["questions"]}
        outcomes = []
        for k, model in enumerate(models):
            held_out = {q.id for q in s["questions"] if fold_by_id.get(q.id, fold_of(name, q.id)) == k}
            asked = set(held_out)
            for qid in held_out:  # a follow-up is asked after the questions it follows
                while by_id[qid].follows in by_id:
                    qid = by_id[qid].follows
                    asked.add(qid)
            answerer = ExtractiveAnswerer(s["retriever"], top_k=settings.top_k, scorer=model)
            run = evaluation.ask_all(answerer, s["retriever"], [q for q in s["questions"] if q.id in asked])
            outcomes += [o for o in run if o.question.id in held_out]
        figures[name] = evaluation.summarise([evaluation.score(o) for o in outcomes])
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="report the figures, do not write the model")
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args()
    started = time.time()
    settings = Settings.load()
    sets = collect(settings)
    models = fold_models(sets, {"more": MORE[0], "same_article": True})
    trials = []
    for same_article in (True, False):
        for more in MORE:
            thresholds = {"more": more, "same_article": same_article}
            for model in models:
                model.thresholds.update(thresholds)
            figures = out_of_fold(sets, models, settings)
            trials.append((thresholds, figures))
            print(f"{thresholds}: " + "  ".join(
                f"{name} contains {100 * f['contains']:.1f} cited_gold {100 * f['cited_gold']:.1f} "
                f"chars {f['chars_mean']:.0f}" for name, f in figures.items()), file=sys.stderr)
    # The development set decides, among answers no longer on average than MAX_CHARS_MEAN.
    thresholds, figures = max((t for t in trials if t[1]["dev"]["chars_mean"] <= MAX_CHARS_MEAN),
                              key=lambda t: (round(t[1]["dev"]["contains"], 3), t[1]["corpus"]["contains"]))
    final = fit([(*d, WEIGHTS[name]) for name, s in sets.items() for d in s["data"]], thresholds)
    numbers = numbers_out_of_fold(sets, models)
    for name, f in numbers.items():
        print(f"{name} numbers (out of fold): a gold number chosen in {f['chosen']} of {f['sentences']} sentences "
              f"holding one ({f['first']} taking the first)")
    report = {name: {k: round(100 * f[k], 1) if k != "chars_mean" else round(f[k]) for k in REPORTED}
              for name, f in figures.items()}
    about = {"trained_on": {name: {"questions": len(s["questions"]), "answerable": len(s["answerable"]),
                                   "sentences": int(sum(len(m) for m, _ in s["data"]))} for name, s in sets.items()},
             "folds": f"{FOLDS}, by article", "out_of_fold": report, "numbers_out_of_fold": numbers, "C": C,
             "settings": {"embedding": settings.embedding, "retrieval": settings.retrieval, "top_k": settings.top_k},
             "command": "python benchmarks/train_answerer.py"}
    final = SentenceScorer(final.mean, final.scale, final.coef, final.intercept, thresholds, about,
                           fit_numbers([sentence for s in sets.values() for sentences in s["numbers"]
                                        for sentence in sentences]))
    print(f"chosen thresholds: {thresholds}")
    for name, f in report.items():
        print(f"{name} (out of fold): " + ", ".join(f"{k} {v}" for k, v in f.items()))
    for feature, weight in sorted(zip(FEATURES, final.coef), key=lambda p: -abs(p[1])):
        print(f"  {feature:>18} {weight:+.3f}")
    if not args.dry_run:
        final.save(args.out)
        print(f"wrote {args.out}")
    for s in sets.values():
        s["index"].close()
    print(f"{time.time() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
