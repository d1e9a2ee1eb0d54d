"""Stage 1: read articles from a folder, clean them, and describe them as :class:`Article` objects.

Supported files:
- ``.txt`` as received from news sites: title on the first line, body, photo captions, a source
  line (``Nguồn LĐTĐ: URL``, ``(TTXVN/Vietnam+)``, ``Theo …``) and sometimes an author line.
- ``.md`` with YAML front matter (``title``, ``url``, ``source``, ``date``, ``author``).
- ``.jsonl``: one article a line with the same fields plus ``text`` (and an optional ``id``).
- ``.html``/``.htm`` (saved or fetched web pages), ``.pdf`` and ``.docx``: read by :mod:`rag.formats`.

The same article saved twice (two file names, a page and its link) is loaded once: the first in
path order is kept, the others are listed in :attr:`LoadResult.duplicates` (see :func:`same_key`).

A file (or JSONL line) that cannot be read is reported in :attr:`LoadResult.failures` and
skipped; the rest still loads.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urlparse

import yaml

from .settings import Settings
from .text import normalize

SUPPORTED_SUFFIXES = (".txt", ".md", ".jsonl", ".html", ".htm", ".pdf", ".docx")
#: Read as bytes and handed to :mod:`rag.formats`.
DOCUMENT_SUFFIXES = (".html", ".htm", ".pdf", ".docx")


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
    #: Files read, ``rel -> (fingerprint, doc ids, failures of its lines, each article's
    #: :func:`same_key`)``; and files not read
    #: again because ``known`` recognised them, ``rel -> doc ids`` (see :func:`load_corpus`).
    files: dict[str, tuple[list, list[str], list[LoadFailure], dict[str, list[str]]]] = field(default_factory=dict)
    kept: dict[str, list[str]] = field(default_factory=dict)
    #: ``(source path, source path of the article kept)`` of articles loaded twice
    duplicates: list[tuple[str, str]] = field(default_factory=list)


class ArticleError(ValueError):
    """An article that cannot be used (empty, no title, bad front matter, …)."""


# --------------------------------------------------------------------------- loading

#: Default of ``RAG_MAX_ARTICLE_BYTES``: a file (a line of a ``.jsonl``) larger than this is refused.
#: News articles are a few tens of KB; 5 MB leaves room for long ones and keeps a stray dump out.
DEFAULT_MAX_ARTICLE_BYTES: int = Settings.max_article_bytes
#: Deepest nesting of lists and mappings accepted in YAML front matter or a JSON line (articles
#: are flat; the limit keeps deeply nested input from exhausting the parser's recursion).
MAX_NESTING = 20
#: Largest YAML front matter accepted, in characters (a handful of fields fit in a few hundred).
MAX_FRONT_MATTER_CHARS = 64 * 1024
#: Bump when parsing changes what an article holds: files recognised by their fingerprint are
#: read again (see :func:`load_corpus`'s ``known``).
PARSER_VERSION = "2"


def load_corpus(corpus_dir: Path, max_article_bytes: int = DEFAULT_MAX_ARTICLE_BYTES,
                known: Callable[[str, list], tuple[list[str], list[LoadFailure], dict[str, list[str]]] | None]
                | None = None) -> LoadResult:
    """Every article under ``corpus_dir``. Nothing in a file raises: each problem (encoding, YAML,
    JSON, nesting, size, a symbolic link leaving the folder, …) is that file's (or JSONL line's)
    :class:`LoadFailure`, and the other files still load.

    Symbolic links: a link whose target lies inside the corpus folder is read like the file it
    points to; one that leads outside (``passwd.txt -> /etc/passwd``) is refused. Linked folders
    are never walked into (their files, when inside the corpus, are read where they are).
    Hidden files and folders (``.name``) are skipped.

    ``known(rel, fingerprint)`` may recognise a file read before (its size, modification time
    and inode: :func:`fingerprint`) and return its article ids, failures and each article's
    :func:`same_key` as they were: the file is then not read again (``result.kept``), so an ingest
    that adds one file to a large corpus reads that file only.

    The same article twice (:func:`same_key`: its canonical URL or its normalised text) is loaded
    once (``result.duplicates``)."""
    corpus_dir = Path(corpus_dir)
    result = LoadResult()
    if not corpus_dir.is_dir():
        result.failures.append(LoadFailure(str(corpus_dir), "corpus folder not found"))
        return result
    root = Path(os.path.realpath(corpus_dir))
    seen: dict[str, str] = {}
    loaded: list[tuple[Article, bool]] = []  # (article, read through a symbolic link)
    taken: dict[str, str] = {}  # same_key -> source of the articles of files not read again
    read: dict[str, tuple[list, list[str], list[LoadFailure]]] = {}
    for rel, path in _corpus_files(corpus_dir, root, result):
        suffix = path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            result.ignored.append(rel)
            continue
        mark = fingerprint(path, root)
        recognised = known(rel, mark) if known is not None and mark is not None else None
        if recognised is not None and not any(doc_id in seen for doc_id in recognised[0]):
            seen.update((doc_id, rel) for doc_id in recognised[0])
            result.kept[rel] = list(recognised[0])
            result.failures.extend(recognised[1])
            taken.update((key, rel) for keys in recognised[2].values() for key in keys)
            continue
        line_failures: list[LoadFailure] = []
        try:
            items = _load_file(path, rel, root, max_article_bytes, line_failures)
        except ArticleError as exc:
            result.failures.append(LoadFailure(rel, str(exc)))
            continue
        except Exception as exc:  # anything else in one file is that file's failure, never the corpus's
            result.failures.append(LoadFailure(rel, f"cannot be loaded ({_describe(exc)})"))
            continue
        result.failures.extend(line_failures)
        duplicates = False
        for article in items:
            if article.doc_id in seen:
                duplicates = True
                result.failures.append(LoadFailure(
                    article.source_path, f"duplicate article id {article.doc_id!r} (also in {seen[article.doc_id]})"))
                continue
            seen[article.doc_id] = article.source_path
            loaded.append((article, path.is_symlink()))
        if mark is not None and not duplicates:
            read[rel] = (mark, [a.doc_id for a in items], line_failures)
    result.articles, result.duplicates = _without_duplicates(loaded, taken)
    # A file is remembered (not read again while unchanged) when all its articles were kept.
    keys = {a.doc_id: same_key(a) for a in result.articles}
    for rel, (mark, doc_ids, failures) in read.items():
        if all(doc_id in keys for doc_id in doc_ids):
            result.files[rel] = (mark, doc_ids, failures, {doc_id: keys[doc_id] for doc_id in doc_ids})
    return result


def _without_duplicates(loaded: list[tuple[Article, bool]], taken: dict[str, str] | None = None
                        ) -> tuple[list[Article], list[tuple[str, str]]]:
    """The articles, each once (:func:`same_key`), in path order, and ``(source path, source path
    kept)`` of the others. Of the same article, a file is kept over a symbolic link to it, then the
    first in path order; ``taken`` (key -> source path) holds the articles of files not read again,
    which stay."""
    order = sorted(range(len(loaded)), key=lambda i: (loaded[i][1], i))
    same: dict[str, str] = dict(taken or {})
    kept, duplicates = set(), []
    for i in order:
        article = loaded[i][0]
        keys = same_key(article)
        first = next((same[k] for k in keys if k in same), None)
        if first is not None:
            duplicates.append((article.source_path, first))
            continue
        same.update(dict.fromkeys(keys, article.source_path))
        kept.add(i)
    articles = [article for i, (article, _) in enumerate(loaded) if i in kept]
    return articles, sorted(duplicates)


def fingerprint(path: Path, root: Path) -> list | None:
    """``[size, modification time (ns), inode, device]`` of the file ``path`` is (or links to)
    inside ``root``; None for anything else."""
    try:
        target = os.path.realpath(path)
        info = os.stat(target)
    except OSError:
        return None
    if not _inside(root, target) or not stat.S_ISREG(info.st_mode):
        return None
    return [info.st_size, info.st_mtime_ns, info.st_ino, info.st_dev]


def _corpus_files(corpus_dir: Path, root: Path, result: LoadResult) -> list[tuple[str, Path]]:
    """``(path relative to the corpus, path)`` of every non-hidden file, in path order; refused
    folder links and unreadable folders go to ``result.failures``."""
    found: list[tuple[tuple[str, ...], Path]] = []

    def unreadable(error: OSError) -> None:
        rel = Path(error.filename).relative_to(corpus_dir).as_posix() if error.filename else str(corpus_dir)
        result.failures.append(LoadFailure(rel, f"folder cannot be read ({error.strerror or error})"))

    for folder, dirs, files in os.walk(corpus_dir, onerror=unreadable):  # never follows linked folders
        base = Path(folder)
        for name in list(dirs):
            if name.startswith("."):
                dirs.remove(name)
            elif (base / name).is_symlink():
                if not _inside(root, os.path.realpath(base / name)):
                    rel = (base / name).relative_to(corpus_dir).as_posix()
                    result.failures.append(LoadFailure(rel, "symbolic link to a folder outside the corpus "
                                                            "folder: refused"))
        for name in files:
            if name.startswith("."):
                continue
            rel = (base / name).relative_to(corpus_dir)
            if not _is_utf8(rel.as_posix()):
                shown = rel.as_posix().encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                result.failures.append(LoadFailure(shown, "file name is not valid UTF-8: rename the file"))
                continue
            found.append((rel.parts, base / name))
    return [("/".join(parts), path) for parts, path in sorted(found, key=lambda item: item[0])]


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
        return True
    except UnicodeEncodeError:  # os.walk gives undecodable bytes of a name as lone surrogates
        return False


def _inside(root: Path, real: str) -> bool:
    return Path(real) == root or Path(real).is_relative_to(root)


def _load_file(path: Path, rel: str, root: Path, limit: int, failures: list[LoadFailure]) -> list[Article]:
    with _open_article_file(path, root, limit) as handle:
        if path.suffix.lower() == ".jsonl":
            return _parse_jsonl(handle, rel, limit, failures)
        data = handle.read(limit + 1)
    if len(data) > limit:  # the file grew since it was measured
        raise ArticleError(_too_large(len(data), limit, "file"))
    return [parse_file_bytes(data, rel)]


def parse_file_bytes(data: bytes, rel: str) -> Article:
    """The article in the bytes of one file (not ``.jsonl``) that is, or will be, ``rel`` in the
    corpus folder: its id is ``rel`` without its suffix. Raises :class:`ArticleError`."""
    suffix = Path(rel).suffix.lower()
    if suffix in DOCUMENT_SUFFIXES:
        from .formats import parse_document

        return parse_document(suffix, data, doc_id=rel.rsplit(".", 1)[0], source_path=rel)
    raw = _decode(data.removeprefix(b"\xef\xbb\xbf"))
    parse = parse_markdown if suffix == ".md" else parse_txt
    return parse(raw, doc_id=rel.rsplit(".", 1)[0], source_path=rel)


@contextlib.contextmanager
def _open_article_file(path: Path, root: Path, limit: int) -> Iterator:
    """``path`` opened for reading (binary) after checking that it is, or links to, a regular file
    inside ``root`` no larger than ``limit`` bytes (JSONL files: any size, each line is checked)."""
    link = path.is_symlink()
    target = os.path.realpath(path)
    if not _inside(root, target):
        raise ArticleError("symbolic link leading outside the corpus folder: refused" if link else
                           "outside the corpus folder: refused")
    try:
        # O_NOFOLLOW: the file cannot be swapped for a link after the check above; O_NONBLOCK: a
        # named pipe does not hang the ingest (it is refused below as not a regular file).
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ArticleError("broken symbolic link" if link else "vanished while being read") from None
    except OSError as exc:
        raise ArticleError(f"cannot be read ({exc.strerror or exc})") from None
    handle = os.fdopen(fd, "rb")
    with handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArticleError("not a regular file")
        opened = _opened_path(fd)
        if opened is not None and not _inside(root, opened):  # a folder on the way was swapped for a link
            raise ArticleError("outside the corpus folder: refused")
        if path.suffix.lower() != ".jsonl" and info.st_size > limit:
            raise ArticleError(_too_large(info.st_size, limit, "file"))
        os.set_blocking(fd, True)
        yield handle


def _opened_path(fd: int) -> str | None:
    """Where an open file really is (Linux), or None when the system does not tell."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _too_large(size: int, limit: int, what: str) -> str:
    return (f"{what} too large: {size:,} bytes, more than the limit of {limit:,} "
            f"(RAG_MAX_ARTICLE_BYTES)")


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ArticleError(f"not valid UTF-8 ({exc.reason} at byte {exc.start})") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    message = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _lines(handle, limit: int) -> Iterator[tuple[int, bytes | int]]:
    """``(line number, bytes)`` of a binary file, reading at most ``limit`` bytes of a line at a
    time; a longer line is skipped and comes as its size (an ``int``), so memory stays bounded."""
    number = 0
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit and not line.endswith(b"\n"):
            size = len(line)
            while line and not line.endswith(b"\n"):
                line = handle.readline(1 << 20)
                size += len(line)
            yield number, size
            continue
        yield number, line


def _parse_jsonl(handle, rel: str, limit: int, failures: list[LoadFailure]) -> list[Article]:
    articles = []
    for number, line in _lines(handle, limit):
        where = f"{rel}:{number}"
        try:
            if isinstance(line, int):
                raise ArticleError(_too_large(line, limit, "line"))
            if number == 1:
                line = line.removeprefix(b"\xef\xbb\xbf")
            text_line = _decode(line)
            if not text_line.strip():
                continue
            articles.append(_jsonl_article(text_line, rel, where))
        except ArticleError as exc:
            failures.append(LoadFailure(where, str(exc)))
        except Exception as exc:  # one line's problem, never the file's
            failures.append(LoadFailure(where, f"cannot be loaded ({_describe(exc)})"))
    return articles


def _jsonl_article(line: str, rel: str, where: str) -> Article:
    depth = json_depth(line)
    if depth > MAX_NESTING:
        raise ArticleError(f"nested too deeply ({depth} levels of lists or objects; at most {MAX_NESTING})")
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ArticleError(f"invalid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise ArticleError("expected a JSON object")
    text = record.get("text")
    if not isinstance(text, str):
        raise ArticleError("missing 'text'")
    key = _field(record, "id") or _field(record, "url") or _short_hash(_field(record, "title") or text)
    return _build(
        title=_field(record, "title"), body=text, doc_id=f"{rel.rsplit('.', 1)[0]}/{key}", source_path=where,
        url=_field(record, "url"), outlet=_field(record, "source") or _field(record, "outlet"),
        date=_field(record, "date"), author=_field(record, "author"))


# A JSON string, escapes included (the "unrolled loop": linear, even when the string is unterminated).
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def json_depth(text: str) -> int:
    """How deeply the lists and objects of a JSON text nest, counted without parsing it (so without
    recursion): brackets outside strings. Malformed JSON may count high; it fails to parse anyway."""
    depth = deepest = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if match.group() in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.S)


class FrontMatterLoader(yaml.SafeLoader):
    """YAML for front matter: the safe subset, without anchors and aliases (an alias bomb cannot
    grow), nested at most :data:`MAX_NESTING` levels (no recursion blow-up), and with dates kept
    as text, so a date like ``2023-02-30`` is this file's error, reported by :func:`_as_date`."""

    _depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise ArticleError(f"YAML anchors and aliases (&, *) are not allowed in front matter "
                               f"(its line {event.start_mark.line + 1})")
        if self._depth >= MAX_NESTING:
            raise ArticleError(f"front matter nested too deeply (more than {MAX_NESTING} levels)")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


FrontMatterLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def parse_front_matter(text: str) -> dict:
    """The fields of YAML front matter (without its ``---`` lines); :class:`ArticleError` when it is
    not a mapping or not acceptable YAML."""
    if len(text) > MAX_FRONT_MATTER_CHARS:
        raise ArticleError(f"front matter too large ({len(text):,} characters; at most {MAX_FRONT_MATTER_CHARS:,})")
    try:
        meta = yaml.load(text, Loader=FrontMatterLoader)
    except yaml.YAMLError as exc:
        raise ArticleError(f"invalid YAML front matter ({str(exc).splitlines()[0]})") from None
    except RecursionError:
        raise ArticleError("front matter nested too deeply") from None
    if meta is None:
        return {}
    if not isinstance(meta, dict):
        raise ArticleError("front matter must be a mapping of fields")
    return meta


def parse_markdown(raw: str, doc_id: str, source_path: str = "") -> Article:
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    meta: dict = {}
    match = _FRONT_MATTER.match(raw)
    if match:  # parsed before normalising, which would strip the indentation YAML relies on
        meta = parse_front_matter(match.group(1))
        raw = raw[match.end():]
    raw = normalize(raw)
    title = _field(meta, "title")
    heading = re.match(r"\s*#\s+(.+)\n", raw)
    if heading:
        title = title or heading.group(1)
        raw = raw[heading.end():]
    return _build(title=title, body=raw, doc_id=doc_id, source_path=source_path, url=_field(meta, "url"),
                  outlet=_field(meta, "source") or _field(meta, "outlet"), date=_field(meta, "date"),
                  author=_field(meta, "author"))


def _field(record: dict, name: str):
    """A metadata field: text, a number or nothing; a list or mapping is an error."""
    value = record.get(name)
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise ArticleError(f"field {name!r} must be text, not {type(value).__name__}")


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
KNOWN_OUTLETS = {
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
    return KNOWN_OUTLETS.get(host, "")


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
        raise ArticleError(f"unreadable date {str(value)[:40]!r} (use a real date, yyyy-mm-dd)")
    return found


# Control characters (NUL, escape sequences, …) never belong in an article; tab and line ends do.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean_text(value) -> str:
    text = _CONTROL.sub("", str(value or ""))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON escape like "\ud800"
        raise ArticleError("text holds characters that are not valid Unicode (lone surrogates)") from None
    return text


def _build(*, title, body: str, doc_id: str, source_path: str, url=None, outlet=None, date=None,
           author=None) -> Article:
    title, body, doc_id, url, outlet, author = map(_clean_text, (title, body, doc_id, url, outlet, author))
    title = normalize(title).strip()
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


def _short_hash(text) -> str:
    return hashlib.sha1(str(text).encode("utf-8", "surrogatepass")).hexdigest()[:12]


# --------------------------------------------------------------------------- duplicates

_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|zarsrc|ref|source)$", re.I)


def canonical_url(url: str) -> str:
    """An address reduced to what names the article: no scheme, ``www.``, default port, fragment,
    tracking parameters or trailing slash, host in lower case. Empty for anything but http(s)."""
    from urllib.parse import parse_qsl, urlencode

    parts = urlparse(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.hostname.lower().removeprefix("www.")
    port = f":{parts.port}" if parts.port not in (None, 80, 443) else ""
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)])
    return f"{host}{port}{parts.path.rstrip('/') or '/'}" + (f"?{query}" if query else "")


def same_key(article: Article) -> list[str]:
    """What makes two articles the same one: their canonical URL, and their text normalised (case,
    diacritics, punctuation and spacing ignored). Either shared means a duplicate."""
    from .text import fold

    keys = []
    if url := canonical_url(article.url):
        keys.append("url:" + url)
    folded = " ".join(re.findall(r"\w+", fold(article.text).lower()))
    keys.append("text:" + hashlib.sha256(folded.encode("utf-8", "surrogatepass")).hexdigest())
    return keys
