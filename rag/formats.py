"""Stage 1, documents as editors have them: saved web pages (``.html``/``.htm``), PDF and Word
(``.docx``) files, each read into an :class:`~rag.corpus.Article`.

- **HTML**: the main text is extracted by trafilatura (made for news pages: menus, related links,
  comments, ads and footers are left out); title, date, author, outlet and canonical URL come
  from the page's own metadata (``og:``/``article:`` meta, JSON-LD ``NewsArticle``, ``<time>``,
  ``<link rel="canonical">``). A page saved by a browser, or fetched by ``rag ingest --url``,
  starts with ``<!-- saved from url=(N)URL -->``: that address is the fallback URL. Photo
  captions (``<figcaption>`` and elements whose class names a caption) are always dropped: a
  caption describes a picture the reader of a passage cannot see, and left in, it would be
  glued to the paragraph before it.
- **PDF**: the text layer (pypdf). A PDF without one (a scan) is an error, never an empty
  article. Lines are joined back into paragraphs.
- **DOCX**: paragraphs and tables in document order (python-docx).

For PDF and DOCX the title and date come from the document's properties when present; else the
title is the first heading (DOCX) or first line (PDF), then the file's name, and the date a full
date in the first or last lines. The libraries are imported when a file needs them.
"""
from __future__ import annotations

import io
import re
from pathlib import PurePosixPath
from urllib.parse import urlparse

from .corpus import KNOWN_OUTLETS, Article, ArticleError, _build, _find_date
from .text import normalize

SUFFIXES = (".html", ".htm", ".pdf", ".docx")


def parse_document(suffix: str, data: bytes, doc_id: str, source_path: str) -> Article:
    """The article in a file of one of :data:`SUFFIXES` (its bytes)."""
    if suffix in (".html", ".htm"):
        return parse_html(data, doc_id, source_path)
    if suffix == ".pdf":
        return parse_pdf(data, doc_id, source_path)
    if suffix == ".docx":
        return parse_docx(data, doc_id, source_path)
    raise ArticleError(f"unsupported file type {suffix}")


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ArticleError(f"reading this file needs {package}: pip install {package}") from None


# --------------------------------------------------------------------------- HTML

#: Fewest words of main text a web page must give to be an article.
MIN_PAGE_WORDS = 15
_SAVED_FROM = re.compile(rb"<!--\s*saved from url=\(\d+\)\s*(https?://[^\s>]+?)\s*-->", re.I)
# Photo captions, dropped consistently: <figcaption> and any element whose class names a caption.
_CAPTIONS = ["//figcaption",
             "//*[contains(translate(@class, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), 'caption')]"]


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]{2,40})""", re.I)


def _decode_page(data: bytes) -> str | bytes:
    """A page's text: UTF-8, else the charset its ``<meta>`` declares (``windows-1258``, …); else the
    bytes, for trafilatura to guess."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    match = _META_CHARSET.search(data[:4096])
    if match:
        try:
            return data.decode(match.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass
    return data


def saved_from(data: bytes) -> str:
    """The address in a ``<!-- saved from url=(N)URL -->`` mark near the start of a page."""
    match = _SAVED_FROM.search(data[:4096])
    return match.group(1).decode("ascii", "replace") if match else ""


def parse_html(data: bytes, doc_id: str, source_path: str = "") -> Article:
    trafilatura = _require("trafilatura", "trafilatura")
    fallback_url = saved_from(data)
    try:
        document = trafilatura.bare_extraction(
            _decode_page(data), url=fallback_url or None, with_metadata=True, include_comments=False,
            include_images=False, include_tables=True, favor_precision=True, prune_xpath=_CAPTIONS,
            date_extraction_params={"extensive_search": False, "original_date": True,
                                    "outputformat": "%Y-%m-%d"})
    except ArticleError:
        raise
    except Exception as exc:  # lxml and trafilatura raise many kinds on malformed input
        raise ArticleError(f"not a readable web page ({type(exc).__name__})") from None
    found = len((document.text or "").split()) if document is not None else 0
    if found < MIN_PAGE_WORDS:  # a menu or a title alone is not an article
        raise ArticleError(f"no article text found in the web page ({found} word{'' if found == 1 else 's'} "
                           f"outside menus, links and comments; at least {MIN_PAGE_WORDS} needed)")
    url = document.url or _jsonld_url(data) or fallback_url
    if url and not re.match(r"https?://", url):
        url = fallback_url
    host = (urlparse(url).hostname or "").removeprefix("www.") if url else ""
    outlet = document.sitename or ""
    if not outlet or outlet.removeprefix("www.") == host or "." in outlet and " " not in outlet:
        outlet = KNOWN_OUTLETS.get(host, outlet or host)
    title = document.title or _stem_title(source_path)
    return _build(title=title, body=document.text, doc_id=doc_id, source_path=source_path, url=url,
                  outlet=outlet, date=_valid_date(document.date), author=document.author or "")


_JSONLD = re.compile(rb"<script[^>]+application/ld\+json[^>]*>(.*?)</script>", re.I | re.S)
_ARTICLE_TYPES = {"NewsArticle", "Article", "ReportageNewsArticle", "AnalysisNewsArticle", "BlogPosting"}


def _jsonld_url(data: bytes) -> str:
    """The address a JSON-LD ``NewsArticle`` gives itself (``url`` or ``mainEntityOfPage``)."""
    import json

    for match in _JSONLD.finditer(data[:2_000_000]):
        try:
            found = json.loads(match.group(1).decode("utf-8", "replace"))
        except (ValueError, RecursionError):
            continue
        items = found if isinstance(found, list) else [found]
        items += [x for item in list(items) if isinstance(item, dict) for x in item.get("@graph", []) or []]
        for item in items:
            if not isinstance(item, dict):
                continue
            kind = item.get("@type")
            kinds = set(kind) if isinstance(kind, list) else {kind}
            if not kinds & _ARTICLE_TYPES:
                continue
            page = item.get("mainEntityOfPage")
            for value in (item.get("url"), page.get("@id") if isinstance(page, dict) else page):
                if isinstance(value, str) and re.match(r"https?://", value):
                    return value
    return ""


def _valid_date(value) -> str:
    """A date the metadata gave, when it is a real one (else none: a page's odd date never fails it)."""
    return _find_date([str(value)]) if value else ""


# --------------------------------------------------------------------------- PDF

_PLACEHOLDER_TITLES = re.compile(r"^(untitled|microsoft word - .*|document\d*|doc\d*|.*\.(docx?|pdf))$", re.I)
_SENTENCE_END = re.compile(r"[.!?…:;\"”’)]$")


def parse_pdf(data: bytes, doc_id: str, source_path: str = "") -> Article:
    pypdf = _require("pypdf", "pypdf")
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:
                raise ArticleError("the PDF is encrypted (password-protected): refused") from None
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
        meta_title, meta_author = _text(info.get("/Title")), _text(info.get("/Author"))
        created = info.creation_date if hasattr(info, "creation_date") else None
    except ArticleError:
        raise
    except Exception as exc:
        raise ArticleError(f"not a readable PDF ({type(exc).__name__}: {str(exc)[:120]})") from None
    lines = [line.strip() for page in pages for line in normalize(page).split("\n")]
    lines = [line for line in lines if not re.fullmatch(r"(trang\s*)?\d{1,4}(\s*/\s*\d{1,4})?", line, re.I)]
    if not any(lines):
        raise ArticleError(f"the PDF has no text layer ({len(pages)} page(s); a scanned document?): "
                           "nothing to index — run OCR on it first")
    content = [line for line in lines if line]
    title = meta_title if meta_title and not _PLACEHOLDER_TITLES.match(meta_title) else ""
    if not title and len(content[0]) <= 200:
        title = content[0]
    if content[0] == title:  # the title line is not the start of the first paragraph
        lines = lines[lines.index(title) + 1:]
    body = _reflow(lines)
    date = created.date().isoformat() if created else _find_date(content[:4] + content[-4:])
    return _build(title=title or _stem_title(source_path), body=body, doc_id=doc_id,
                  source_path=source_path, date=date, author=meta_author)


def _reflow(lines: list[str]) -> str:
    """Lines of a PDF page joined back into paragraphs. A paragraph ends at a blank line, at a
    short line (well short of the page's full lines: a heading, a dateline, the last line of a
    paragraph), and at a line ending a sentence followed by one that starts with a capital."""
    full = max((len(line) for line in lines), default=0)
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if current and (not line or len(current[-1]) < 0.7 * full
                        or _SENTENCE_END.search(current[-1]) and line[:1].isupper()):
            paragraphs.append(" ".join(current))
            current = []
        if line:
            current.append(line)
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(paragraphs)


def _text(value) -> str:
    return normalize(str(value)).strip() if value else ""


# --------------------------------------------------------------------------- DOCX


#: Largest unpacked size of a Word file's parts (a .docx is a zip: a "zip bomb" stops here).
MAX_DOCX_UNPACKED = 200_000_000


def parse_docx(data: bytes, doc_id: str, source_path: str = "") -> Article:
    import zipfile

    docx = _require("docx", "python-docx")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:  # sizes as declared; reading never passes them
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise ArticleError(f"not a readable Word (.docx) file ({type(exc).__name__}: {str(exc)[:120]})") from None
    if unpacked > MAX_DOCX_UNPACKED:
        raise ArticleError(f"the Word file unpacks to {unpacked:,} bytes, more than {MAX_DOCX_UNPACKED:,}: refused")
    try:
        document = docx.Document(io.BytesIO(data))
        properties = document.core_properties
        meta_title, meta_author, created = properties.title, properties.author, properties.created
        blocks = list(_docx_blocks(document))
    except Exception as exc:
        raise ArticleError(f"not a readable Word (.docx) file ({type(exc).__name__}: {str(exc)[:120]})") from None
    blocks = [(style, normalize(text).strip()) for style, text in blocks]
    blocks = [(style, text) for style, text in blocks if text]
    if not blocks:
        raise ArticleError("the Word file has no text")
    title = _text(meta_title)
    if not title:
        heading = next((i for i, (style, _) in enumerate(blocks) if style.startswith(("title", "heading"))), None)
        if heading is not None:
            title = blocks.pop(heading)[1]
    date = created.date().isoformat() if created else ""
    texts = [text for _, text in blocks]
    date = date or _find_date(texts[:4] + texts[-4:])
    return _build(title=title or _stem_title(source_path), body="\n".join(texts), doc_id=doc_id,
                  source_path=source_path, date=date, author=_text(meta_author))


def _docx_blocks(document):
    """``(style name in lower case, text)`` of each paragraph, and of each table row (its cells
    joined), in document order."""
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):
            for row in block.rows:
                cells = list(dict.fromkeys(cell.text.strip() for cell in row.cells if cell.text.strip()))
                if cells:
                    yield "table", " — ".join(cells)
        else:
            yield (block.style.name if block.style is not None else "").lower(), block.text


def _stem_title(source_path: str) -> str:
    """A title from a file name: ``bien-ban_ghi-nho.pdf`` -> ``bien ban ghi nho``."""
    stem = PurePosixPath(source_path.split(":", 1)[0]).stem
    return re.sub(r"[-_]+", " ", stem).strip()
