"""Property tests of the corpus loader (Hypothesis): whatever a file holds, loading it never
raises; each file (each non-blank JSONL line) gives an article or a failure naming it."""
import datetime as dt
import json
import re
import tempfile
import unicodedata
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings, strategies as st

from rag.corpus import ArticleError, load_corpus, parse_markdown, parse_txt

# No deadline: a slow example on a busy machine is not a failure (no timing assertions).
PROPERTIES = settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def load_one(name: str, data: bytes):
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, name).write_bytes(data)
        return load_corpus(Path(folder))


def check_article(article) -> None:
    assert article.title.strip() and article.text.strip()
    for value in (article.doc_id, article.title, article.text, article.url, article.outlet, article.author):
        value.encode("utf-8")  # no lone surrogates
        assert not CONTROL.search(value)
    assert unicodedata.is_normalized("NFC", article.title) and unicodedata.is_normalized("NFC", article.text)
    if article.date:
        dt.date.fromisoformat(article.date)


def check_single(result, name: str) -> None:
    """A .txt or .md file: one article, or one failure naming the file."""
    assert len(result.articles) + len(result.failures) == 1, result
    for article in result.articles:
        check_article(article)
        assert article.source_path == name
    for failure in result.failures:
        assert failure.path == name and failure.reason


def blank(line: bytes) -> bool:
    try:
        return not line.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False


@PROPERTIES
@given(data=st.binary(max_size=3000), suffix=st.sampled_from([".txt", ".md"]))
@example(data=b"---\ntitle: x\ndate: 2023-02-30\n---\nbody", suffix=".md")
@example(data=b"\xff\xfe\x00T\x00", suffix=".txt")
def test_any_bytes_in_a_text_or_markdown_file(data, suffix):
    check_single(load_one("a" + suffix, data), "a" + suffix)


@PROPERTIES
@given(text=st.text(max_size=2000), suffix=st.sampled_from([".txt", ".md"]))
def test_any_text_in_a_text_or_markdown_file(text, suffix):
    check_single(load_one("a" + suffix, text.encode("utf-8", "surrogatepass")), "a" + suffix)


@PROPERTIES
@given(data=st.binary(max_size=3000))
@example(data=b'{"title": "\\ud800", "text": "x"}\n[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]\n')
def test_any_bytes_in_a_jsonl_file(data):
    result = load_one("b.jsonl", data)
    lines = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    assert len(result.articles) + len(result.failures) == sum(not blank(line) for line in lines)
    for article in result.articles:
        check_article(article)
    for failure in result.failures:
        assert re.fullmatch(r"b\.jsonl:\d+", failure.path) and failure.reason


# Front matter from the characters that matter to YAML (anchors, aliases, tags, flow and block
# collections, quotes, comments, dates that do not exist), and from real YAML of any shape.
YAML_PIECES = st.sampled_from(list("abc :-[]{}&*!|>'\"#?,%@`\n\t 0123456789.\\") + [
    "title: ", "date: ", "2023-02-30", "2023-05-04", "&a ", "*a", "!!binary ", "!!python/object ", "<<: ",
    "  ", "- ", "à", "Hà Nội", "\u00a0", "\ufeff", "~", "null", "1e999", "0x", "9" * 30])
YAML_TEXT = st.lists(YAML_PIECES, max_size=60).map("".join)
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | st.dates()
           | st.datetimes())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=30)
FIELDS = st.dictionaries(st.sampled_from(["title", "url", "source", "outlet", "date", "author", "x"]),
                         VALUES, max_size=6)


def markdown_outcome(front_matter: str):
    raw = f"---\n{front_matter}\n---\n# Tiêu đề\n\nNội dung bài.\n"
    try:
        article = parse_markdown(raw, doc_id="a", source_path="a.md")
    except ArticleError as exc:
        assert str(exc)
        return None
    check_article(article)
    return article


@PROPERTIES
@given(front_matter=YAML_TEXT)
@example(front_matter="a: &a [x, x]\nb: [*a, *a]\ntitle: *a")
@example(front_matter="title: " + "[" * 100 + "]" * 100)
def test_any_front_matter_gives_an_article_or_an_article_error(front_matter):
    markdown_outcome(front_matter)


@PROPERTIES
@given(fields=FIELDS)
def test_real_yaml_of_any_shape_gives_an_article_or_an_article_error(fields):
    article = markdown_outcome(yaml.safe_dump(fields, allow_unicode=True))
    title = fields.get("title")
    if isinstance(title, (list, dict)):
        assert article is None  # a list or mapping is never taken as text
    if article is not None and isinstance(fields.get("date"), dt.date):
        assert article.date == fields["date"].isoformat()[:10]


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                      max_size=4),
                           max_leaves=30)
RECORDS = st.dictionaries(st.sampled_from(["id", "title", "text", "url", "source", "date", "author"]),
                          JSON_VALUES, max_size=7)


@PROPERTIES
@given(records=st.lists(RECORDS | JSON_VALUES, max_size=5))
def test_any_json_records_give_an_article_or_a_failure_each(records):
    data = "\n".join(json.dumps(r, ensure_ascii=bool(i % 2)) for i, r in enumerate(records)).encode("utf-8")
    result = load_one("c.jsonl", data)
    assert len(result.articles) + len(result.failures) == len(records)
    for article in result.articles:
        check_article(article)


@pytest.mark.parametrize("parse", [parse_txt, parse_markdown])
@PROPERTIES
@given(text=st.text(max_size=1000))
def test_parsers_raise_nothing_but_article_error(parse, text):
    try:
        check_article(parse(text, doc_id="x"))
    except ArticleError:
        pass
