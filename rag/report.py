"""Rendering of ``rag eval`` results: the terminal table, JSON, a Markdown report, a PNG chart and
RAGAS rows. One or two runs (``--vs``): side by side, with the difference B - A.

Shares are printed as percentages with one decimal, lengths in characters, latencies in ms;
"–" marks a figure with nothing to measure (e.g. abstention recall on a set without unanswerable
questions). matplotlib is imported only by :func:`plot`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

from .evaluation import UNTYPED, Run, describe, metric

INSTALL_HINT = "pip install -e '.[eval]'"
SECTIONS = [
    ("set", ["questions", "answerable", "unanswerable"]),
    ("retrieval (answerable questions)", ["hit@1", "hit@3", "hit@5", "hit@10", "mrr", "ndcg@10"]),
    ("answers (answerable questions)", ["contains", "leads", "contains_folded", "contains_cited", "cited_gold", "f1",
                                        "em", "chars_mean", "chars_p95"]),
    ("citations", ["citation_precision", "cited"]),
    ("abstention", ["abstained", "abstain_precision", "abstain_recall"]),
]
# Columns of the tables by question type: (metric, header).
BY_TYPE = [("questions", "n"), ("hit@1", "hit@1"), ("hit@5", "hit@5"), ("mrr", "MRR"),
           ("contains", "contains"), ("contains_folded", "folded"), ("f1", "F1"), ("em", "EM"),
           ("citation_precision", "cit.prec"), ("abstained", "not found"), ("total_p50_ms", "p50 ms")]
# The Markdown report's tables by type: every figure but the per-stage latencies.
FULL_BY_TYPE = [("questions", "n"), ("hit@1", "hit@1"), ("hit@3", "hit@3"), ("hit@5", "hit@5"),
                ("hit@10", "hit@10"), ("mrr", "MRR"), ("ndcg@10", "nDCG@10"), ("contains", "contains"),
                ("leads", "leads"), ("contains_folded", "folded"), ("f1", "F1"), ("em", "EM"), ("chars_mean", "chars"),
                ("chars_p95", "chars p95"), ("citation_precision", "cit.prec"), ("cited", "cited"),
                ("abstained", "not found"), ("abstain_precision", "abst.prec"), ("abstain_recall", "abst.rec"),
                ("total_p50_ms", "p50 ms"), ("total_p95_ms", "p95 ms")]
PLOTTED = ["hit@1", "hit@5", "mrr", "contains", "contains_folded", "f1", "em", "citation_precision",
           "cited", "abstain_precision", "abstain_recall"]


def value(name: str, figure) -> str:
    if figure is None:
        return "–"
    unit = metric(name).unit
    if unit == "share":
        return f"{100 * figure:.1f}"
    if unit == "ms":
        return f"{figure:.1f}"
    return f"{figure:.0f}" if unit == "chars" else str(figure)


def delta(name: str, a, b) -> str:
    if a is None or b is None:
        return ""
    unit = metric(name).unit
    if unit == "share":
        return f"{100 * (b - a):+.1f}"
    if unit == "ms":
        return f"{b - a:+.1f}"
    return f"{b - a:+.0f}" if b != a else ""


def _latency_names(runs: Sequence[Run]) -> list[str]:
    names = [n for run in runs for n in run.figures() if n.endswith("_ms")]
    return sorted(dict.fromkeys(names), key=lambda n: (n.startswith("total_"), names.index(n)))


def sections(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    return SECTIONS + [("latency (ms)", _latency_names(runs))]


def configurations(runs: Sequence[Run]) -> list[str]:
    """ "A: RAG_RETRIEVAL=hybrid  (retrieval=hybrid, embedding=…, llm=none, top_k=4)" per run."""
    lines = []
    for letter, run in zip("AB", runs):
        settings = describe(run.settings)
        shown = ", ".join(f"{k}={settings[k]}" for k in ("retrieval", "embedding", "llm", "top_k"))
        lines.append(f"{letter}: {run.label}  ({shown})")
    return lines


def _rows(runs: Sequence[Run]) -> list[tuple[str, list[str]]]:
    """(section title, None) and (metric name, cells) rows of the overall table."""
    figures = [run.figures() for run in runs]
    rows = []
    for title, names in sections(runs):
        rows.append((title, None))
        for name in names:
            cells = [value(name, f.get(name)) for f in figures]
            if len(runs) == 2:
                cells.append(delta(name, figures[0].get(name), figures[1].get(name)))
            rows.append((name, cells))
    return rows


def _by_type_rows(run: Run, columns=BY_TYPE) -> list[list[str]]:
    groups = run.by_type()
    order = sorted(groups, key=lambda t: (t == UNTYPED, -groups[t]["questions"], t))
    return [[name] + [value(col, groups[name].get(col)) for col, _ in columns] for name in order]


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    return "\n".join(line.rstrip() for line in lines)


def terminal(set_name: str, runs: Sequence[Run]) -> str:
    """The overall table (metric names as ``--min`` takes them), then one table by type per run
    when the set has several types."""
    header = ["metric"] + ["AB"[i] for i in range(len(runs))] + (["B - A"] if len(runs) == 2 else [])
    body = []
    for name, cells in _rows(runs):
        body.append([f"{name}:" if cells is None else f"  {name}"] + (cells or [""] * (len(header) - 1)))
    parts = [f"{set_name}", *configurations(runs), "", _text_table(header, body)]
    for letter, run in zip("AB", runs):
        if len(run.by_type()) > 1:
            parts += ["", f"By question type ({letter}):",
                      _text_table(["type"] + [h for _, h in BY_TYPE], _by_type_rows(run))]
    return "\n".join(parts)


def markdown(set_name: str, runs: Sequence[Run], command: str) -> str:
    """A Markdown report: the command, the configurations, the overall table and the tables by
    type (folded). Paste it as is into the README."""
    lines = [f"### `{set_name}`", "", f"```bash\n{command}\n```", ""]
    lines += [f"- {c}" for c in configurations(runs)] + [""]
    header = ["metric"] + ["AB"[i] for i in range(len(runs))] + (["B − A"] if len(runs) == 2 else [])
    lines += ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for name, cells in _rows(runs):
        if cells is None:
            lines.append(f"| *{name}* |" + " |" * (len(header) - 1))
        else:
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    for letter, run in zip("AB", runs):
        if len(run.by_type()) > 1:
            lines += ["", f"<details><summary>By question type ({letter})</summary>", "",
                      "| type | " + " | ".join(h for _, h in FULL_BY_TYPE) + " |",
                      "|---" + "|---:" * len(FULL_BY_TYPE) + "|"]
            lines += ["| " + " | ".join(row) + " |" for row in _by_type_rows(run, FULL_BY_TYPE)]
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def as_json(set_name: str, runs: Sequence[Run], command: str) -> dict:
    """Everything: per run the settings, the figures (shares in 0..1), the figures by type and
    each question with its answer and scores."""
    return {"set": set_name, "command": command, "runs": [{
        "label": run.label, "overrides": run.overrides, "settings": describe(run.settings),
        "figures": run.figures(), "by_type": run.by_type(),
        "questions": [{**score, "question": o.question.question, "standalone": o.answer.standalone,
                       "answers": list(o.question.answers), "doc": o.question.doc, "answer": o.answer.text,
                       "short": o.answer.short, "cited_docs": [c.doc_id for c in o.answer.citations]}
                      for o, score in zip(run.outcomes, run.scores)],
    } for run in runs]}


def ragas_rows(run: Run) -> list[dict]:
    """RAGAS dataset rows: ``question`` (a follow-up in its standalone form, since the judge sees
    no history), ``answer``, ``contexts`` (the cited passages, or the retrieved ones shown with
    "not found") and ``ground_truth`` (the first gold answer, or the "not found" sentence)."""
    from .answer import NOT_FOUND

    rows = []
    for outcome in run.outcomes:
        answer = outcome.answer
        rows.append({"question": answer.standalone or outcome.question.question, "answer": answer.text,
                     "contexts": [c.text for c in (answer.citations or answer.related)],
                     "ground_truth": outcome.question.answers[0] if outcome.question.answers else NOT_FOUND})
    return rows


def write(outputs: dict, set_name: str, runs: Sequence[Run], command: str) -> list:
    """Write the files asked for (``outputs``: json, report, plot, ragas -> path); with two runs
    the RAGAS rows of B go to ``<name>-vs.jsonl``. Returns the paths written."""
    import json

    written = []
    if "json" in outputs:
        outputs["json"].write_text(json.dumps(as_json(set_name, runs, command), ensure_ascii=False, indent=1),
                                   encoding="utf-8")
        written.append(outputs["json"])
    if "report" in outputs:
        outputs["report"].write_text(markdown(set_name, runs, command), encoding="utf-8")
        written.append(outputs["report"])
    if "plot" in outputs:
        plot(runs, outputs["plot"], Path(set_name).name)
        written.append(outputs["plot"])
    if "ragas" in outputs:
        first = outputs["ragas"]
        for run, path in zip(runs, [first, first.with_name(f"{first.stem}-vs{first.suffix}")]):
            path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ragas_rows(run)),
                            encoding="utf-8")
            written.append(path)
    return written


def require_matplotlib() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise ImportError(f"--plot needs matplotlib: {INSTALL_HINT}")


def plot(runs: Sequence[Run], path, title: str) -> None:
    """A PNG: the main shares per configuration, and answer containment by question type."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    overall, by_type = figure.subplots(1, 2, width_ratios=[3, 2])
    width = 0.8 / len(runs)
    for i, run in enumerate(runs):
        figures = run.figures()
        xs = [x + i * width for x in range(len(PLOTTED))]
        bars = overall.bar(xs, [100 * (figures.get(n) or 0) for n in PLOTTED], width, label=f"{'AB'[i]}: {run.label}")
        overall.bar_label(bars, fmt="%.0f", fontsize=7)
    overall.set_xticks([x + width * (len(runs) - 1) / 2 for x in range(len(PLOTTED))], PLOTTED,
                       rotation=35, ha="right")
    overall.set_ylim(0, 105)
    overall.set_ylabel("%")
    overall.set_title(title)
    overall.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncols=len(runs), frameon=False)
    groups = [run.by_type() for run in runs]
    types = [t for t in sorted(groups[0], key=lambda t: (t == UNTYPED, t)) if groups[0][t]["answerable"]]
    for i, group in enumerate(groups):
        ys = [y + i * width for y in range(len(types))]
        by_type.barh(ys, [100 * (group.get(t, {}).get("contains") or 0) for t in types], width,
                     label="AB"[i])
    by_type.set_yticks([y + width * (len(runs) - 1) / 2 for y in range(len(types))], types)
    by_type.invert_yaxis()
    by_type.set_xlim(0, 100)
    by_type.set_title("contains (answerable questions) by type")
    figure.savefig(path, dpi=110)

