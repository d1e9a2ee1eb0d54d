"""Stage 1: read articles from a folder, clean them, and describe them as :class:`Article` objects.

Supported files:
- ``.txt`` as received from news sites: title on the first line, body, photo captions, a source
  line (``Nguồn LĐTĐ: URL``, ``(TTXVN/Vietnam+)``, ``Theo …``) and sometimes an author line.
- ``.md`` with YAML front matter (``title``, ``url``, ``source``, ``date``, ``author``).
- ``.jsonl``: one article a line with the same fields plus ``text`` (and an optional ``id``).

A file (or JSONL line) that cannot be read is reported in :attr:`LoadResult.failures` and
skipped; the rest still loads.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from .text import normalize

SUPPORTED_SUFFIXES = (".txt", ".md", ".jsonl")


@dataclass(frozen=True)
class Article:
    doc_id: str
    title: str
    text: str  # cleaned body: paragraphs separated by blank lines, title not repeated
    url: str = ""
    outlet: str = ""
    date: str = ""  # ISO yyyy-mm-dd when known
    author: str = ""
    source_path: str = ""  # file (and line for JSONL) relative to the corpus folder

    @property
    def paragraphs(self) -> list[str]:
        return [p for p in self.text.split("\n\n") if p.strip()]

    def content_hash(self) -> str:
        """Changes whenever anything that ends up in the index changes."""
        payload = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class LoadFailure:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadResult:
    articles: list[Article] = field(default_factory=list)
    failures: list[LoadFailure] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files of an unsupported type


class ArticleError(ValueError):
    """An article that cannot be used (empty, no title, bad front matter, …)."""


# --------------------------------------------------------------------------- loading


def load_corpus(corpus_dir: Path) -> LoadResult:
    corpus_dir = Path(corpus_dir)
    result = LoadResult()
    if not corpus_dir.is_dir():
        result.failures.append(LoadFailure(str(corpus_dir), "corpus folder not found"))
        return result
    seen: dict[str, str] = {}
    for path in sorted(p for p in corpus_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(corpus_dir).as_posix()
        if any(part.startswith(".") for part in path.relative_to(corpus_dir).parts):
            continue
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            result.ignored.append(rel)
            continue
        try:
            raw = path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            result.failures.append(LoadFailure(rel, f"not valid UTF-8 ({exc.reason} at byte {exc.start})"))
            continue
        except OSError as exc:
            result.failures.append(LoadFailure(rel, f"cannot be read ({exc.strerror or exc})"))
            continue
        if path.suffix.lower() == ".jsonl":
            items = _parse_jsonl(raw, rel, result.failures)
        else:
            try:
                parse = parse_markdown if path.suffix.lower() == ".md" else parse_txt
                items = [parse(raw, doc_id=rel.rsplit(".", 1)[0], source_path=rel)]
            except ArticleError as exc:
                result.failures.append(LoadFailure(rel, str(exc)))
                continue
        for article in items:
            if article.doc_id in seen:
                result.failures.append(LoadFailure(
                    article.source_path, f"duplicate article id {article.doc_id!r} (also in {seen[article.doc_id]})"))
                continue
            seen[article.doc_id] = article.source_path
            result.articles.append(article)
    return result


def _parse_jsonl(raw: str, rel: str, failures: list[LoadFailure]) -> list[Article]:
    articles = []
    for number, line in enumerate(raw.split("\n"), start=1):
        if not line.strip():
            continue
        where = f"{rel}:{number}"
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ArticleError("expected a JSON object")
            text = record.get("text")
            if not isinstance(text, str):
                raise ArticleError("missing 'text'")
            doc_id = str(record.get("id") or record.get("url") or _short_hash(record.get("title") or text))
            articles.append(_build(
                title=record.get("title"), body=text, doc_id=f"{rel.rsplit('.', 1)[0]}/{doc_id}",
                source_path=where, url=record.get("url"), outlet=record.get("source") or record.get("outlet"),
                date=record.get("date"), author=record.get("author"),
            ))
        except json.JSONDecodeError as exc:
            failures.append(LoadFailure(where, f"invalid JSON ({exc.msg})"))
        except ArticleError as exc:
            failures.append(LoadFailure(where, str(exc)))
    return articles


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)


def parse_markdown(raw: str, doc_id: str, source_path: str = "") -> Article:
    import yaml  # light, but only needed for Markdown

    raw = normalize(raw)
    meta: dict = {}
    match = _FRONT_MATTER.match(raw)
    if match:
        try:
            meta = yaml.safe_load(match.group(1)) or {}
        except yaml.YAMLError as exc:
            raise ArticleError(f"invalid YAML front matter ({str(exc).splitlines()[0]})") from None
        if not isinstance(meta, dict):
            raise ArticleError("front matter must be a mapping of fields")
        raw = raw[match.end():]
    title = meta.get("title")
    heading = re.match(r"\s*#\s+(.+)\n", raw)
    if heading:
        title = title or heading.group(1)
        raw = raw[heading.end():]
    return _build(title=title, body=raw, doc_id=doc_id, source_path=source_path, url=meta.get("url"),
                  outlet=meta.get("source") or meta.get("outlet"), date=meta.get("date"),
                  author=meta.get("author"))


def parse_txt(raw: str, doc_id: str, source_path: str = "") -> Article:
    lines = normalize(raw).split("\n")
    while lines and not lines[0]:
        lines.pop(0)
    if not lines:
        raise ArticleError("empty file")
    title, body = lines[0], lines[1:]
    body = _drop_trailing_boilerplate(body)
    url = outlet = author = ""
    # The source line is the last non-empty one; an author line may stand just above it.
    tail = [i for i, line in enumerate(body) if line]
    if tail:
        source = _parse_source_line(body[tail[-1]])
        if source is not None:
            outlet, url = source
            body[tail[-1]] = ""
            if len(tail) > 1 and _looks_like_author(body[tail[-2]]):
                author, body[tail[-2]] = body[tail[-2]], ""
    date = _find_date(lines[:4] + lines[-4:])
    return _build(title=title, body="\n".join(body), doc_id=doc_id, source_path=source_path,
                  url=url, outlet=outlet, date=date, author=author)


# --------------------------------------------------------------------------- cleaning

_BOILERPLATE = re.compile(
    r"^(tin cùng chuyên mục|tin liên quan|tin khác|xem thêm|bài liên quan|bình luận|"
    r"ý kiến bạn đọc|chia sẻ bài viết|đọc tiếp)\b", re.I)
# "<alt text> ảnh 2Đoàn đại biểu …": an image's alt text glued to its caption.
_GLUED_CAPTION = re.compile(r"^(?P<alt>.{5,300}?)\s+ảnh\s*(?P<n>\d{1,3})(?=[^\W\d_])")
_KNOWN_OUTLETS = {
    "laodongthudo.vn": "Lao Động Thủ Đô",
    "vietnamplus.vn": "Vietnam+",
    "hanoimoi.vn": "Hà Nội Mới",
    "baotintuc.vn": "Báo Tin tức",
    "nhandan.vn": "Nhân Dân",
    "vnexpress.net": "VnExpress",
}


def _drop_trailing_boilerplate(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        if _BOILERPLATE.match(line) and len(line) < 40:
            return lines[:i]
    return lines


def clean_body(body: str, title: str = "") -> str:
    """Paragraphs separated by one blank line; glued captions split; repeated lines dropped."""
    paragraphs: list[str] = []
    seen: set[str] = set()
    for line in normalize(body).split("\n"):
        line = line.strip()
        if not line:
            continue
        match = _GLUED_CAPTION.match(line)
        if match:
            line = line[match.end():].strip()
        if line == title or line in seen:
            continue  # the title repeated in the body, or a caption printed twice
        seen.add(line)
        paragraphs.append(line)
    return "\n\n".join(paragraphs)


_SOURCE_URL = re.compile(r"^(?:nguồn|theo|source)\s*(?P<label>[^:]{0,60}?)\s*:\s*(?P<url>https?://\S+)\s*$", re.I)
_SOURCE_PAREN = re.compile(r"^\((?:theo\s+|nguồn:?\s*)?(?P<label>[^()]{2,60})\)$", re.I)
_SOURCE_THEO = re.compile(r"^(?:theo|nguồn:?)\s+(?P<label>[^.]{2,60})$", re.I)
_BARE_URL = re.compile(r"^(?P<url>https?://\S+)$")


def _parse_source_line(line: str) -> tuple[str, str] | None:
    """``(outlet, url)`` from a source line, or None when the line is body text."""
    if m := _SOURCE_URL.match(line):
        url = m.group("url")
        return _outlet_for(url) or m.group("label").strip(), url
    if m := _BARE_URL.match(line):
        return _outlet_for(m.group("url")), m.group("url")
    if m := _SOURCE_PAREN.match(line):
        if re.search(r"\b(ảnh|photo)\b", line, re.I):
            return None  # a photo credit, not a source
        return m.group("label").strip(), ""
    if m := _SOURCE_THEO.match(line):
        return m.group("label").strip(), ""
    return None


def _outlet_for(url: str) -> str:
    host = urlparse(url).hostname or ""
    host = host.removeprefix("www.")
    return _KNOWN_OUTLETS.get(host, "")


def _looks_like_author(line: str) -> bool:
    words = line.split()
    return (1 < len(words) <= 5 and not re.search(r"[.,;:!?()/\d]", line)
            and all(w[0].isupper() for w in words))


_DATE_DMY = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b")
_DATE_ISO = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")


def _find_date(lines: list[str]) -> str:
    """A full date on the first or last lines (where sites print the publication date)."""
    for line in lines:
        if m := _DATE_ISO.search(line):
            candidate = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
        elif m := _DATE_DMY.search(line):
            candidate = (int(m.group(3)), int(m.group(2)), int(m.group(1)))
        else:
            continue
        try:
            return dt.date(*candidate).isoformat()
        except ValueError:
            continue
    return ""


def _as_date(value) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    found = _find_date([str(value)])
    if not found:
        raise ArticleError(f"unreadable date {value!r} (use yyyy-mm-dd)")
    return found


def _build(*, title, body: str, doc_id: str, source_path: str, url=None, outlet=None, date=None,
           author=None) -> Article:
    title = normalize(str(title or "")).strip()
    if not title:
        raise ArticleError("no title")
    text = clean_body(body, title)
    if not text:
        raise ArticleError("no article text")
    return Article(
        doc_id=normalize(doc_id), title=title, text=text, url=str(url or "").strip(),
        outlet=normalize(str(outlet or "")).strip(), date=_as_date(date),
        author=normalize(str(author or "")).strip(), source_path=source_path,
    )


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
