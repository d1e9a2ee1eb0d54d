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

    evaluate = commands.add_parser("eval", help="measure retrieval on a question set")
    evaluate.add_argument("--squad", metavar="FILE", required=True,
                          help="SQuAD 1.1/2.0 JSON: its paragraphs are indexed (cached), its questions asked")
    evaluate.add_argument("--store", metavar="DIR", help="index folder for the set (default: a cache folder)")
    evaluate.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    evaluate.add_argument("--limit", type=int, metavar="N", help="ask only the first N questions")

    serve = commands.add_parser("serve", help="serve the chat, the HTTP API and the widget")
    _store_options(serve)
    serve.add_argument("--host", help="address to listen on (default: $RAG_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: $RAG_PORT or 7860)")
    serve.add_argument("--demo-port", type=int, metavar="PORT",
                       help="also serve a demo intranet page with the widget on this port (another origin, "
                            "added to the allowed origins)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `rag ask … | head` ends quietly
    settings = Settings.load(corpus_dir=getattr(args, "corpus", None), store_dir=args.store,
                             top_k=getattr(args, "top_k", None), host=getattr(args, "host", None),
                             port=getattr(args, "port", None), demo_port=getattr(args, "demo_port", None))
    from .embeddings import EmbeddingError
    from .index import StoreError

    try:
        if args.command == "ingest":
            return _ingest(settings, rebuild=args.rebuild, progress=not args.quiet)
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


def _ingest(settings: Settings, rebuild: bool, progress: bool) -> int:
    from .embeddings import make_embeddings
    from .index import ingest

    report = ingest(settings, make_embeddings(settings), rebuild=rebuild, progress=progress)
    print(report.summary())
    return EXIT_OK if report.ok else EXIT_FAILED_FILES


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
    lines = [answer.text]
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


def _eval(settings: Settings, args) -> int:
    import json
    from pathlib import Path

    from .embeddings import make_embeddings
    from .evaluation import evaluate_retrieval, squad_corpus
    from .index import VectorIndex, ingest
    from .retrieval import Retriever

    corpus, questions = squad_corpus(Path(args.squad))
    store = Path(args.store) if args.store else corpus.parent / f"store-{settings.embedding.replace('/', '_')}"
    settings = settings.with_(corpus_dir=corpus, store_dir=store)
    embeddings = make_embeddings(settings)
    report = ingest(settings, embeddings)
    if not report.ok:
        print(report.summary(), file=sys.stderr)
        return EXIT_FAILED_FILES
    index = VectorIndex.open(settings, embeddings)
    try:
        result = evaluate_retrieval(Retriever(index, settings.retrieval), questions[:args.limit])
    finally:
        index.close()
    print(f"{Path(args.squad).name}: {len(index.manifest['articles'])} articles, "
          f"retrieval={settings.retrieval}, embedding={settings.embedding}")
    print(result.table())
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"set": str(args.squad), "retrieval": settings.retrieval, "embedding": settings.embedding,
             **result.as_dict()}, indent=1), encoding="utf-8")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
