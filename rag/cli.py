"""The ``rag`` command: ``rag ingest``, ``rag ask``, ``rag serve``.

Heavy libraries are imported inside the commands, so ``rag --help`` stays fast.
"""
from __future__ import annotations

import argparse
import signal
import sys
import textwrap

from .settings import Settings

EXIT_OK, EXIT_FAILED_FILES, EXIT_ERROR = 0, 1, 2


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", metavar="DIR", help="articles folder (default: $RAG_CORPUS_DIR or corpus/)")
    parser.add_argument("--store", metavar="DIR", help="index folder (default: $RAG_STORE_DIR or vectorstore/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="Question answering over the articles on Hà Nội's official visits.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser("ingest", help="index the corpus (only what changed is embedded)")
    _store_options(ingest)
    ingest.add_argument("--rebuild", action="store_true",
                        help="re-embed everything (needed after changing RAG_EMBEDDING)")
    ingest.add_argument("--quiet", action="store_true", help="no progress bar")
    ingest.add_argument("--allow-empty", action="store_true",
                        help="index a corpus without articles even if that empties the index (refused otherwise)")
    ingest.add_argument("--url", action="append", default=[], metavar="URL",
                        help="first fetch this web page into the corpus folder (repeatable; stored under web/)")
    ingest.add_argument("--urls", metavar="FILE", help="first fetch the web pages listed in FILE, one link a line")

    ask = commands.add_parser("ask", help="answer a question, citing the passages")
    _store_options(ask)
    ask.add_argument("question", nargs="?", help="the question (omit with --jsonl)")
    ask.add_argument("--article", action="append", default=[], metavar="DOC_ID",
                     help="only this article (repeatable); ids as in `rag ingest`'s manifest")
    ask.add_argument("--outlet", default="", help="only articles from this outlet")
    ask.add_argument("--since", default="", metavar="YYYY-MM-DD", help="only articles dated on or after")
    ask.add_argument("--until", default="", metavar="YYYY-MM-DD", help="only articles dated on or before")
    output = ask.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    output.add_argument("--jsonl", action="store_true",
                        help="read one question a line from stdin, print one JSON object a line")
    ask.add_argument("-k", "--top-k", type=int, metavar="N",
                     help="passages to draw the answer from (default: $RAG_TOP_K or 4)")

    evaluate = commands.add_parser(
        "eval", help="measure retrieval and answer accuracy on a question set",
        description="Ask every question of a set as the chat does and report retrieval, answer, "
                    "citation, abstention and latency figures (see the README's \"Evaluation\").",
        epilog=f"exit codes: {EXIT_OK} done; {EXIT_FAILED_FILES} paragraphs of a --squad file could not be "
               f"indexed; {EXIT_ERROR} an error (bad input, a missing folder, …); {EXIT_BELOW_MIN} a --min "
               "minimum not met")
    source = evaluate.add_mutually_exclusive_group(required=True)
    source.add_argument("--qa", metavar="FILE",
                        help="question set (JSONL, see evalsets/README.md), asked over the corpus and its index")
    source.add_argument("--squad", metavar="FILE",
                        help="SQuAD 1.1/2.0 JSON: its paragraphs are indexed (cached), its questions asked")
    source.add_argument("--export-feedback", metavar="OUT.jsonl",
                        help="write the disliked answers recorded beside the index as candidate questions")
    evaluate.add_argument("--corpus", metavar="DIR", help="articles folder for --qa (default: $RAG_CORPUS_DIR or corpus/)")
    evaluate.add_argument("--store", metavar="DIR", help="index folder (default: $RAG_STORE_DIR or vectorstore/; "
                                                         "for --squad a cache folder per embedder)")
    evaluate.add_argument("--limit", type=int, metavar="N", help="ask only the first N questions")
    evaluate.add_argument("--vs", action="append", default=[], metavar="RAG_VAR=VALUE",
                          help="also run a second configuration, the current one with this setting changed "
                               "(repeatable), e.g. --vs RAG_RETRIEVAL=dense; shown side by side")
    evaluate.add_argument("--min", action="append", default=[], metavar="METRIC=VALUE",
                          help=f"fail with exit code {EXIT_BELOW_MIN} when METRIC (a percentage, as printed) "
                               "is below VALUE (repeatable), e.g. --min contains=70")
    evaluate.add_argument("--json", metavar="OUT", help="write every figure and answer as JSON")
    evaluate.add_argument("--report", metavar="OUT.md", help="write a Markdown report")
    evaluate.add_argument("--plot", metavar="OUT.png", help=f"write a chart (needs matplotlib: {_PLOT_HINT})")
    evaluate.add_argument("--ragas", metavar="OUT.jsonl",
                          help="write question, answer, contexts, ground_truth rows for RAGAS")

    serve = commands.add_parser("serve", help="serve the chat, the HTTP API and the widget")
    _store_options(serve)
    serve.add_argument("--host", help="address to listen on (default: $RAG_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $RAG_PORT or 7860)")
    serve.add_argument("--demo-port", type=int, metavar="PORT",
                       help="also serve a demo intranet page with the widget on this port (another origin, "
                            "added to the allowed origins)")
    serve.add_argument("--workers", type=int, metavar="N",
                       help="processes that answer (default: $RAG_WORKERS, or one per core; 1: answer in "
                            "the web process itself)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGPIPE") and args.command != "serve":
        # `rag ask … | head` ends quietly. Not the server: a client that hangs up while it is
        # written to (a chat tab closed, Gradio's event stream) would end the whole process; with
        # SIGPIPE ignored, as Python leaves it, the write fails and only that request ends.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    settings = Settings.load(corpus_dir=getattr(args, "corpus", None), store_dir=args.store,
                             top_k=getattr(args, "top_k", None), host=getattr(args, "host", None),
                             port=getattr(args, "port", None), demo_port=getattr(args, "demo_port", None),
                             workers=getattr(args, "workers", None))
    from .embeddings import EmbeddingError
    from .index import StoreError

    try:
        if args.command == "ingest":
            return _ingest(settings, rebuild=args.rebuild, progress=not args.quiet, allow_empty=args.allow_empty,
                           urls=args.url, url_file=args.urls)
        if args.command == "ask":
            if args.jsonl == bool(args.question):
                print("error: give a question, or --jsonl and questions on stdin", file=sys.stderr)
                return EXIT_ERROR
            return _ask(settings, args)
        if args.command == "eval":
            return _eval(settings, args)
        if args.command == "serve":
            from .api import serve

            return serve(settings)
    except (StoreError, EmbeddingError, ValueError, ImportError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; the previous index is still in place", file=sys.stderr)
        return 130
    return EXIT_ERROR


def _ingest(settings: Settings, rebuild: bool, progress: bool, allow_empty: bool = False,
            urls: list[str] = (), url_file: str | None = None) -> int:
    from .embeddings import make_embeddings
    from .index import EmptyCorpusError, ingest

    fetch_failed = False
    if urls or url_file:
        from pathlib import Path

        from .fetch import fetch_to_corpus, read_url_list

        links = list(urls) + (read_url_list(Path(url_file)) if url_file else [])
        for result in fetch_to_corpus(links, settings):
            print(result, flush=True)
            fetch_failed = fetch_failed or bool(result.error)
    try:
        report = ingest(settings, make_embeddings(settings), rebuild=rebuild, progress=progress,
                        allow_empty=allow_empty)
    except EmptyCorpusError as exc:
        for failure in exc.failed:  # why nothing could be loaded
            print(f"FAILED {failure}")
        raise
    print(report.summary())
    return EXIT_OK if report.ok and not fetch_failed else EXIT_FAILED_FILES


def _ask(settings: Settings, args) -> int:
    import json

    from .embeddings import make_embeddings
    from .index import VectorIndex, ensure_index
    from .llm import make_answerer
    from .retrieval import Filters, Retriever

    filters = Filters(tuple(args.article), args.outlet, args.since, args.until)
    filters.where()  # a malformed date is an error before anything is loaded
    embeddings = make_embeddings(settings)
    ensure_index(settings, embeddings)
    index = VectorIndex.open(settings, embeddings)
    try:
        answerer = make_answerer(settings, Retriever(index, settings.retrieval, filters=filters))
        if args.jsonl:
            for line in sys.stdin:
                if line.strip():
                    print(json.dumps(answerer.answer(line.strip()).as_dict(), ensure_ascii=False), flush=True)
            return EXIT_OK
        answer = answerer.answer(args.question)
    finally:
        index.close()
    if args.json:
        print(json.dumps(answer.as_dict(), ensure_ascii=False, indent=1))
    else:
        print(_render_answer(answer))
    return EXIT_OK


def _render_answer(answer) -> str:
    lines = [f"({answer.note})", answer.text] if answer.note else [answer.text]
    sources = answer.related if answer.abstained else answer.citations
    if sources:
        lines.append("\nCác đoạn gần nhất:" if answer.abstained else "\nNguồn:")
    for citation in sources:
        details = " · ".join(x for x in (citation.outlet, citation.date, citation.url) if x)
        lines.append(f"[{citation.n}] {citation.title}")
        if details:
            lines.append(f"    {details}")
        lines.append(textwrap.indent(textwrap.fill(citation.text, width=100), "    "))
    return "\n".join(lines)


EXIT_BELOW_MIN = 3  # `rag eval --min`: a threshold was not met
_PLOT_HINT = "pip install -e '.[eval]'"


def _eval(settings: Settings, args) -> int:
    import os
    from pathlib import Path

    from . import evaluation, report
    from .metrics import parse_thresholds, unmet

    if args.export_feedback:
        return _export_feedback(settings, Path(args.export_feedback))
    # Everything the user typed is checked before a model loads: a long run is never lost to a typo.
    thresholds = parse_thresholds(args.min, evaluation.GATES)
    overrides = evaluation.parse_overrides(args.vs)
    outputs = {name: Path(getattr(args, name)) for name in ("json", "report", "plot", "ragas") if getattr(args, name)}
    for path in outputs.values():
        if not path.parent.is_dir():
            raise ValueError(f"Cannot write {path}: folder {path.parent} does not exist")
    if "plot" in outputs:
        report.require_matplotlib()
    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit must be at least 1")

    configurations = [settings]
    if overrides:
        flags = {"corpus_dir": args.corpus, "store_dir": args.store}  # the variables named in --vs win
        try:
            configurations.append(Settings.load({**os.environ, **overrides},
                                                **{k: v for k, v in flags.items() if f"RAG_{k.upper()}" not in overrides}))
        except SystemExit as exc:  # a malformed number
            raise ValueError(f"--vs: {exc}") from None
    from .llm import make_chat_model
    from .retrieval import MODES

    for configuration in configurations:  # a mistake in B shows now, not after A has run
        if configuration.retrieval not in MODES:
            raise ValueError(f"Unknown retrieval mode {configuration.retrieval!r} (RAG_RETRIEVAL): "
                             f"use one of {', '.join(MODES)}")
        make_chat_model(configuration)  # an unknown RAG_LLM or a missing RAG_LLM_MODEL raises
    if args.squad:
        if "RAG_CORPUS_DIR" in overrides:
            raise ValueError("--squad: the set's paragraphs are the corpus; RAG_CORPUS_DIR cannot change")
        corpus, questions = evaluation.squad_corpus(Path(args.squad))
        given = [Path(args.store) if args.store else None] * len(configurations)
        if "RAG_STORE_DIR" in overrides:
            given[1] = configurations[1].store_dir
        configurations = [c.with_(corpus_dir=corpus, store_dir=store or evaluation.squad_store(corpus, c))
                          for c, store in zip(configurations, given)]
        set_name = args.squad
    else:
        questions = evaluation.load_question_set(Path(args.qa))
        set_name = args.qa
    questions = questions[:args.limit]
    evaluation.check_stores(configurations)

    labels = ["current settings"]
    if overrides:
        labels = [" ".join(f"{k}={evaluation.shown(k, evaluation.setting_value(c, k))}" for k in overrides)
                  for c in configurations]
    shown = {k: evaluation.shown(k, v) for k, v in overrides.items()}
    runs = _eval_runs(list(zip(configurations, labels, [{}, shown])), questions, squad=bool(args.squad))
    if runs is None:
        return EXIT_FAILED_FILES

    print(report.terminal(f"{set_name}: {len(questions)} questions", runs))
    for path in report.write(outputs, set_name, runs, _eval_command(args)):
        print(f"wrote {path}", file=sys.stderr)

    failures = unmet(runs[0].figures(), thresholds)
    for failure in failures:
        print(f"below threshold: {failure}", file=sys.stderr)
    return EXIT_BELOW_MIN if failures else EXIT_OK


def _eval_command(args) -> str:
    """The command that reproduces the figures (outputs left out), for the reports: with the
    ``RAG_*`` variables set, every secret (key, token, password) masked."""
    import os
    import shlex

    from .evaluation import shown

    variables = [f"{k}={shlex.quote(shown(k, v))}" for k, v in sorted(os.environ.items()) if k.startswith("RAG_") and v]
    words = ["--qa" if args.qa else "--squad", args.qa or args.squad]
    for flag, value in (("--corpus", args.corpus), ("--store", args.store), ("--limit", args.limit)):
        words += [flag, str(value)] if value else []
    for spec in args.vs:
        name, _, value = spec.partition("=")
        words += ["--vs", f"{name}={shown(name, value)}"]
    return " ".join(variables + ["rag eval"] + [shlex.quote(w) for w in words])


def _eval_runs(configurations, questions, squad: bool):
    """One run per configuration; embedders and indexes are loaded once and shared. None when a
    SQuAD corpus could not be indexed."""
    from .embeddings import make_embeddings
    from .evaluation import QueryVectors, run_set, unknown_docs
    from .index import VectorIndex, ensure_index

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    embedders, indexes, runs = {}, {}, []
    try:
        for settings, label, overrides in configurations:
            key = (settings.embedding, settings.query_prefix, settings.passage_prefix)
            if key not in embedders:
                embedders[key] = QueryVectors(make_embeddings(settings))
            store = (str(settings.store_dir), key)
            if store not in indexes:
                built = ensure_index(settings, embedders[key], refresh=True, log=log)
                if squad and built is not None and not built.ok:
                    return None
                indexes[store] = VectorIndex.open(settings, embedders[key])
                missing = unknown_docs(questions, indexes[store].manifest.get("articles", {}))
                if missing:
                    named = "; ".join(f"{doc!r} ({', '.join(ids[:3])}{', …' if len(ids) > 3 else ''})"
                                      for doc, ids in list(missing.items())[:10])
                    log(f"warning: {sum(map(len, missing.values()))} question(s) name a \"doc\" that is no article "
                        f"of the index in {settings.store_dir}, so their article-level retrieval counts as a miss: "
                        f"{named}{' …' if len(missing) > 10 else ''}")
            log(f"Asking {len(questions)} questions ({label})…")
            runs.append(run_set(settings, indexes[store], questions, label, overrides, progress=True))
    finally:
        for index in indexes.values():
            index.close()
    return runs


def _export_feedback(settings: Settings, out) -> int:
    import json

    from .feedback import FeedbackStore, candidate_questions

    if not out.parent.is_dir():
        raise ValueError(f"Cannot write {out}: folder {out.parent} does not exist")
    store = FeedbackStore.beside(settings.store_dir)
    entries = store.entries()
    lines = candidate_questions(entries)
    out.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    print(f"{len(lines)} candidate questions (disliked answers, each question once) from {len(entries)} "
          f"ratings in {store.path} written to {out}. Add each one's gold \"answers\" (or [] when the "
          "articles do not answer it) before adding it to a question set.")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
