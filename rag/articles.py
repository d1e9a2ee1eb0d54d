"""Adding one article to a running service: a file an editor uploads, or a link to fetch
(``POST /api/articles`` and the chat's "Thêm bài viết" panel, rag.api and rag.ui).

The article goes through the same code as ``rag ingest``: it is read in memory first
(rag.corpus / rag.formats), compared with the corpus for duplicates (:func:`rag.corpus.same_key`),
then, holding the store's ingest lock (the one ``rag ingest`` takes, so concurrent uploads and
ingests run one after the other), written under ``corpus/`` and indexed incrementally
(:func:`rag.index.ingest`). Anything refused before the file is written changes nothing; a failure
after it is written removes the file again, and the index is only replaced once a new generation
is complete, so a failed upload leaves neither a file in ``corpus/`` nor a changed index.
"""
from __future__ import annotations

import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from .settings import Settings

#: File types an editor may upload (``.jsonl`` is for operators: many articles in one file).
UPLOAD_SUFFIXES = (".html", ".htm", ".pdf", ".docx", ".txt", ".md")
#: Folder of the corpus where uploaded files are kept (fetched pages go to ``web/``, as with
#: ``rag ingest --url``).
UPLOAD_FOLDER = "uploads"


class Refused(Exception):
    """Why an article was not added: an HTTP status, a code, a message in English (the API) and
    one in Vietnamese (the chat)."""

    def __init__(self, status: int, code: str, message: str, detail: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail

    def as_dict(self) -> dict:
        return {"error": self.code, "message": self.message, "detail": self.detail}


@dataclass(frozen=True)
class Added:
    """What was indexed."""
    doc_id: str
    file: str  # path in the corpus folder
    title: str
    date: str
    outlet: str
    author: str
    url: str
    passages: int
    generation: str

    def as_dict(self) -> dict:
        return {"status": "added", **asdict(self)}


def upload_name(filename: str, data: bytes) -> str:
    """Where an uploaded file is kept in the corpus folder: ``uploads/<name>-<hash>.<suffix>``
    (ASCII, from the file's own name; the same bytes always give the same file)."""
    from .text import fold

    stem, suffix = _split(filename)
    slug = re.sub(r"[^a-z0-9]+", "-", fold(stem).lower()).strip("-")[:60] or "bai-viet"
    return f"{UPLOAD_FOLDER}/{slug}-{hashlib.sha256(data).hexdigest()[:8]}{suffix.lower()}"


def _split(filename: str) -> tuple[str, str]:
    """``(stem, suffix)`` of the last part of a file name as a browser or curl sends it (a
    Windows path included); ``.html`` is a suffix without a stem."""
    name = os.path.basename((filename or "").replace("\\", "/"))
    stem, dot, suffix = name.rpartition(".")
    return (stem, dot + suffix) if dot else (name, "")


def check_upload(filename: str, size: int, settings: Settings) -> str:
    """The suffix of an acceptable upload; :class:`Refused` for another type or a file too large."""
    suffix = _split(filename)[1].lower()
    if suffix not in UPLOAD_SUFFIXES:
        shown = suffix or "(none)"
        raise Refused(415, "unsupported_type", f"Files of type {shown} cannot be added: use one of "
                      f"{', '.join(UPLOAD_SUFFIXES)}.", f"Không nhận tệp loại {shown}: chỉ nhận "
                      f"{', '.join(UPLOAD_SUFFIXES)}.")
    limit = min(settings.upload_max_bytes, settings.max_article_bytes)
    if size > limit:
        raise Refused(413, "too_large", f"The file is {size:,} bytes, more than the limit of {limit:,} "
                      "(RAG_UPLOAD_MAX_BYTES).", f"Tệp quá lớn: {size:,} byte, tối đa {limit:,} byte.")
    if size == 0:
        raise Refused(422, "unreadable", "The file is empty.", "Tệp trống.")
    return suffix


def add_file(settings: Settings, embeddings, filename: str, data: bytes, log=None) -> Added:
    """Add an uploaded file's article to the corpus and the index (see the module)."""
    check_upload(filename, len(data), settings)
    return _add(settings, embeddings, upload_name(filename, data), data, log)


def add_url(settings: Settings, embeddings, url: str, log=None) -> Added:
    """Fetch a page (rag.fetch: the same checks as ``rag ingest --url``), then add it."""
    from .fetch import FetchError, fetch, parse_allowance, stored_page

    url = (url or "").strip()
    if not url:
        raise Refused(422, "missing_url", "Give a file or {\"url\": \"https://…\"}.",
                      "Hãy chọn một tệp hoặc nhập đường dẫn bài báo.")
    try:
        parse_allowance(settings.fetch_allow_private)
        page = fetch(url, allow_private=settings.fetch_allow_private, timeout=settings.fetch_timeout,
                     max_bytes=min(settings.upload_max_bytes, settings.max_article_bytes))
    except FetchError as exc:
        raise Refused(422, "fetch_failed", f"{url}: {exc}", f"Không lấy được trang {url}: {exc}") from None
    except ValueError as exc:  # a malformed RAG_FETCH_ALLOW_PRIVATE
        raise Refused(500, "fetch_failed", str(exc), f"Không lấy được trang: {exc}") from None
    rel, data = stored_page(page)
    return _add(settings, embeddings, rel, data, log)


def _add(settings: Settings, embeddings, rel: str, data: bytes, log) -> Added:
    from .corpus import ArticleError, load_corpus, parse_file_bytes, same_key
    from .index import Store, corpus_reader, ingest

    log = log or (lambda message: None)
    try:
        article = parse_file_bytes(data, rel)
    except ArticleError as exc:
        raise Refused(422, "unreadable", f"Nothing to index: {exc}", f"Không đọc được bài viết: {exc}") from None
    except Exception as exc:  # a parser's own error on a broken file
        raise Refused(422, "unreadable", f"The file cannot be read ({type(exc).__name__}).",
                      "Không đọc được tệp này (tệp hỏng hoặc sai định dạng).") from None
    corpus, store = Path(settings.corpus_dir), Store(settings.store_dir)
    if not corpus.is_dir():
        raise Refused(503, "no_corpus", f"The corpus folder {corpus} is missing.", "Không có thư mục bài viết.")
    if not store.writable():
        raise Refused(503, "read_only", f"The index folder {store.root} is read-only.",
                      "Máy chủ không ghi được chỉ mục.")
    target = corpus / rel
    with store.lock(log):
        _, known_files, known = corpus_reader(settings, store, store.manifest())
        loaded = load_corpus(corpus, settings.max_article_bytes, known=known)
        keys: dict[str, str] = {}
        for rel_kept in loaded.kept:
            for doc_keys in known_files[rel_kept]["keys"].values():
                keys.update((key, rel_kept) for key in doc_keys if key not in keys)
        for other in loaded.articles:
            keys.update((key, other.source_path) for key in same_key(other) if key not in keys)
        first = next((keys[key] for key in same_key(article) if key in keys), None)
        if first is not None or target.exists():
            first = first or rel
            raise Refused(409, "duplicate", f"The same article is already in the corpus as {first}: "
                          "nothing was added.", f"Bài viết này đã có trong kho ({first}), không thêm lại.")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.tmp"  # hidden: never read as an article
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
            report = ingest(settings, embeddings, progress=False, log=log, locked=True)
        except BaseException:
            tmp.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
            raise
        if article.doc_id not in report.added:  # not expected: it was read and compared above
            target.unlink(missing_ok=True)
            why = next((f.reason for f in report.failed if f.path.split(":", 1)[0] == rel), "not indexed")
            raise Refused(422, "unreadable", f"Nothing indexed: {why}", f"Không đưa được bài viết vào chỉ mục: {why}")
        entry = (store.manifest() or {}).get("articles", {}).get(article.doc_id, {})
    return Added(doc_id=article.doc_id, file=rel, title=article.title, date=article.date, outlet=article.outlet,
                 author=article.author, url=article.url, passages=len(entry.get("chunks", [])),
                 generation=report.generation)
