"""Issue 13, formats: saved web pages, PDF and Word files, built by the tests themselves, read by
the real loader and indexed by the real ingest; the same article twice is indexed once."""
from __future__ import annotations

import datetime as dt
import pytest
from documents import CAPTION, CLUTTER, PARAGRAPHS, TITLE, cp1258, news_page, write_docx, write_pdf
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from test_corpus_properties import check_single, load_one

from rag.corpus import ArticleError, canonical_url, load_corpus
from rag.formats import parse_html

URL = "https://laodongthudo.vn/ha-noi-va-buenos-aires-ky-ket-bien-ban-ghi-nho-150001.html"


def _only(result):
    assert not result.failures, result.failures
    [article] = result.articles
    return article


def _assert_body_only(article):
    assert article.paragraphs == PARAGRAPHS, article.text
    for clutter in CLUTTER + [CAPTION]:
        assert clutter not in article.text, clutter


# --------------------------------------------------------------------------- HTML


@pytest.mark.parametrize("meta", ["og", "jsonld"])
def test_a_saved_news_page_gives_its_body_and_metadata(tmp_path, meta):
    (tmp_path / "bai.html").write_bytes(news_page(url=URL, published="2022-11-21", author="Minh Anh",
                                                 site="Lao Động Thủ Đô", meta=meta))
    article = _only(load_corpus(tmp_path))
    assert (article.doc_id, article.title, article.url, article.outlet, article.date, article.author) == (
        "bai", TITLE, URL, "Lao Động Thủ Đô", "2022-11-21", "Minh Anh")
    _assert_body_only(article)  # no menu, ads, related links, comments, footer or caption


def test_a_page_dated_by_its_time_element_and_marked_with_the_address_it_was_saved_from(tmp_path):
    page = news_page(published="2022-11-19", author="Thu Hằng", meta="time")
    mark = f"<!-- saved from url=({len(URL):04d}){URL} -->\n".encode()
    (tmp_path / "trang.htm").write_bytes(mark + page)
    article = _only(load_corpus(tmp_path))
    assert (article.title, article.date, article.url, article.outlet) == (TITLE, "2022-11-19", URL, "Lao Động Thủ Đô")
    _assert_body_only(article)


def test_a_page_in_a_vietnamese_legacy_charset_is_read_by_its_meta_charset(tmp_path):
    page = news_page(url=URL, site="Lao Động Thủ Đô").decode("utf-8").replace('<meta charset="utf-8">',
                                                                            '<meta charset="windows-1258">')
    (tmp_path / "cu.html").write_bytes(cp1258(page))
    article = _only(load_corpus(tmp_path))
    assert (article.title, article.outlet) == (TITLE, "Lao Động Thủ Đô")
    assert article.paragraphs == PARAGRAPHS


def test_captions_are_always_dropped(tmp_path):
    """Whatever the markup of a caption (figcaption, a class naming it), it never enters the text."""
    caption_div = '<div class="PhotoCMS_Caption"><p>Toàn cảnh buổi hội đàm. Ảnh: TTXVN</p></div>'
    page = news_page(url=URL, site="Lao Động Thủ Đô").replace(b"</div>\n<div class=\"share\">",
                                                              caption_div.encode() + b"</div>\n<div class=\"share\">")
    (tmp_path / "a.html").write_bytes(page)
    article = _only(load_corpus(tmp_path))
    assert "Toàn cảnh buổi hội đàm" not in article.text and CAPTION not in article.text
    assert article.paragraphs == PARAGRAPHS


def test_a_page_without_article_text_fails_and_the_rest_loads(tmp_path):
    (tmp_path / "menu.html").write_bytes(b"<html><body><nav><a href='/'>Trang ch\xe1\xbb\xa7</a></nav></body></html>")
    (tmp_path / "rac.html").write_bytes(b"\x00\xff\xfe garbage")
    (tmp_path / "bai.html").write_bytes(news_page(url=URL, site="Lao Động Thủ Đô"))
    result = load_corpus(tmp_path)
    assert [a.doc_id for a in result.articles] == ["bai"]
    reasons = {f.path: f.reason for f in result.failures}
    assert set(reasons) == {"menu.html", "rac.html"}
    assert all("web page" in reason for reason in reasons.values()), reasons


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=3000),
                 st.text(max_size=2000).map(lambda t: f"<html><body><article><p>{t}</p></article></body></html>".encode(
                     "utf-8", "surrogatepass"))))
def test_any_bytes_as_a_page_load_or_fail_with_a_reason(data):
    try:
        article = parse_html(data, "x", "x.html")
    except ArticleError as exc:
        assert str(exc)
    else:
        assert article.title and article.text


PROPERTIES = hsettings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])


@PROPERTIES
@given(title=st.text(max_size=80), words=st.lists(st.text(min_size=1, max_size=30), min_size=0, max_size=60),
       author=st.text(max_size=30), published=st.dates().map(str) | st.just("2023-02-30") | st.text(max_size=12))
def test_any_metadata_and_text_in_a_page_give_a_clean_article_or_a_failure(title, words, author, published):
    """Whatever a page says in its metadata and paragraphs (control characters, an impossible
    date, any script), it loads as a clean article or fails with a reason; nothing raises."""
    page = news_page(title, [" ".join(words)] * 3, url=URL, published=published, author=author, site="Báo")
    result = load_one("a.html", page)
    check_single(result, "a.html")


@PROPERTIES
@given(st.sampled_from([".html", ".pdf", ".docx"]), st.binary(max_size=2000))
def test_any_bytes_under_a_document_suffix_give_an_article_or_a_failure(suffix, data):
    check_single(load_one("a" + suffix, data), "a" + suffix)


@pytest.fixture(scope="module")
def real_documents(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("documents")
    return {".pdf": write_pdf(folder / "a.pdf", [TITLE, *PARAGRAPHS], title=TITLE).read_bytes(),
            ".docx": write_docx(folder / "a.docx", PARAGRAPHS, heading=TITLE).read_bytes()}


@PROPERTIES
@given(suffix=st.sampled_from([".pdf", ".docx"]), flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)),
                                                                 min_size=1, max_size=8))
def test_damaged_pdf_and_word_files_give_an_article_or_a_failure(real_documents, suffix, flips):
    data = bytearray(real_documents[suffix])
    for where, value in flips:
        data[min(int(where * len(data)), len(data) - 1)] = value
    check_single(load_one("a" + suffix, bytes(data)), "a" + suffix)


# --------------------------------------------------------------------------- PDF and Word


def test_a_pdf_gives_its_vietnamese_text_and_properties(tmp_path):
    write_pdf(tmp_path / "bien-ban.pdf", [TITLE, *PARAGRAPHS], title="Biên bản ghi nhớ Hà Nội – Buenos Aires",
              author="Sở Ngoại vụ Hà Nội", created=dt.datetime(2022, 11, 21, 9, 0))
    article = _only(load_corpus(tmp_path))
    assert (article.title, article.date, article.author) == (
        "Biên bản ghi nhớ Hà Nội – Buenos Aires", "2022-11-21", "Sở Ngoại vụ Hà Nội")
    # The first paragraph is wrapped over two lines on the page: it is one paragraph again.
    assert article.paragraphs[-3:] == PARAGRAPHS


def test_a_pdf_without_properties_takes_its_first_line_and_a_date_in_its_text(tmp_path):
    write_pdf(tmp_path / "tin.pdf", [TITLE, "Hà Nội, ngày 21/11/2022", *PARAGRAPHS])
    article = _only(load_corpus(tmp_path))
    assert (article.title, article.date, article.author) == (TITLE, "2022-11-21", "")
    assert article.paragraphs[-3:] == PARAGRAPHS


def test_a_scanned_pdf_is_reported_not_indexed_empty_and_a_broken_one_too(tmp_path):
    write_pdf(tmp_path / "scan.pdf", [], text=False)
    (tmp_path / "hong.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF trailing junk")
    write_docx(tmp_path / "tot.docx", PARAGRAPHS, heading=TITLE)
    result = load_corpus(tmp_path)
    assert [a.doc_id for a in result.articles] == ["tot"]
    reasons = {f.path: f.reason for f in result.failures}
    assert reasons["scan.pdf"].startswith("the PDF has no text layer (1 page(s); a scanned document?)")
    assert reasons["hong.pdf"].startswith(("not a readable PDF", "the PDF has no text layer"))


def test_a_word_file_gives_its_properties_paragraphs_and_tables(tmp_path):
    write_docx(tmp_path / "bao-cao.docx", PARAGRAPHS, title="Báo cáo kết quả chuyến công tác",
               author="Văn phòng Thành ủy", created=dt.datetime(2022, 11, 25, 10, 0),
               heading=TITLE, table=[["Lĩnh vực", "Giai đoạn"], ["Văn hóa, du lịch", "2023 - 2025"]])
    article = _only(load_corpus(tmp_path))
    assert (article.title, article.date, article.author) == (
        "Báo cáo kết quả chuyến công tác", "2022-11-25", "Văn phòng Thành ủy")
    assert article.paragraphs == [TITLE, *PARAGRAPHS, "Lĩnh vực — Giai đoạn", "Văn hóa, du lịch — 2023 - 2025"]


def test_a_word_file_without_properties_takes_its_first_heading_else_its_name(tmp_path):
    write_docx(tmp_path / "a.docx", PARAGRAPHS, heading=TITLE)
    write_docx(tmp_path / "ghi-chu_chuyen-tham.docx", PARAGRAPHS[:1])
    by_id = {a.doc_id: a for a in load_corpus(tmp_path).articles}
    assert (by_id["a"].title, by_id["a"].date, by_id["a"].paragraphs) == (TITLE, "", PARAGRAPHS)
    assert by_id["ghi-chu_chuyen-tham"].title == "ghi chu chuyen tham"


def test_a_word_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "bom.docx", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"<" + b"a" * 210_000_000)  # about 200 KB packed
    assert (tmp_path / "bom.docx").stat().st_size < 1_000_000
    result = load_corpus(tmp_path)
    assert [str(f) for f in result.failures] == [
        "bom.docx: the Word file unpacks to 210,000,001 bytes, more than 200,000,000: refused"]


# --------------------------------------------------------------------------- the same article twice


def test_the_same_article_saved_twice_is_loaded_once(tmp_path):
    page = news_page(url=URL, published="2022-11-21", site="Lao Động Thủ Đô")
    (tmp_path / "a.html").write_bytes(page)
    (tmp_path / "b.html").write_bytes(page)  # the same page under another name
    # The page and its link: fetched later, with tracking parameters and another layout (JSON-LD).
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "c.html").write_bytes(news_page(
        url=URL.replace("https://", "http://www.") + "?utm_source=zalo", meta="jsonld", site="Lao Động Thủ Đô"))
    # The same text as a .txt someone pasted (no address): its normalised text decides.
    (tmp_path / "d.txt").write_text(TITLE + "\n\n" + "\n\n".join(p.upper() for p in PARAGRAPHS), encoding="utf-8")
    result = load_corpus(tmp_path)
    assert [a.source_path for a in result.articles] == ["a.html"]
    assert result.duplicates == [("b.html", "a.html"), ("d.txt", "a.html"), ("web/c.html", "a.html")]


@given(st.sampled_from(["http://", "https://", "HTTPS://www."]), st.sampled_from(["", "/", "#anchor"]),
       st.sampled_from(["", "?utm_source=fb", "?fbclid=1&utm_medium=x"]))
def test_canonical_urls_ignore_scheme_www_slash_fragment_and_tracking(scheme, tail, query):
    assert canonical_url(f"{scheme}laodongthudo.vn/bai-viet-1.html{tail if tail != '/' else ''}{query}") == \
        "laodongthudo.vn/bai-viet-1.html"
    assert canonical_url(f"{scheme}laodongthudo.vn/bai-viet-1.html?id=2") != canonical_url(
        f"{scheme}laodongthudo.vn/bai-viet-1.html?id=3")


# --------------------------------------------------------------------------- indexed, with metadata on its cards


def test_ingest_reports_per_format_and_cards_show_date_author_outlet_link(corpus, settings, e5):
    from rag.answer import ExtractiveAnswerer
    from rag.index import VectorIndex, ingest
    from rag.retrieval import Retriever
    from rag.ui import sources_html

    page = news_page(url=URL, published="2022-11-21", author="Minh Anh", site="Lao Động Thủ Đô")
    (corpus / "buenos-aires.html").write_bytes(page)
    (corpus / "buenos-aires-ban-sao.html").write_bytes(page)
    write_pdf(corpus / "scan.pdf", [], text=False)
    write_docx(corpus / "bao-cao.docx", ["Đoàn công tác của Thành phố Hà Nội đã trao tặng Thành phố Lima "
                                         "500 bộ sách về văn hóa Việt Nam trong chuyến thăm Peru."],
               title="Báo cáo chuyến thăm Peru", author="Văn phòng Thành ủy", created=dt.datetime(2022, 11, 26))
    report = ingest(settings, e5, progress=False, log=lambda m: None)
    assert not report.ok and [f.path for f in report.failed] == ["scan.pdf"]
    assert report.by_format() == {".docx": {"added": 1}, ".html": {"added": 1, "duplicate": 1},
                                  ".pdf": {"failed": 1}, ".txt": {"added": 2}}
    summary = report.summary()
    assert "By format: .docx 1 added; .html 1 added, 1 duplicate; .pdf 1 failed; .txt 2 added" in summary
    assert "duplicate (the same article as buenos-aires-ban-sao.html, indexed once) buenos-aires.html" in summary

    index = VectorIndex.open(settings, e5)
    try:
        answer = ExtractiveAnswerer(Retriever(index)).answer("Hà Nội và Buenos Aires ký kết hợp tác trong những lĩnh vực nào?")
    finally:
        index.close()
    cited = answer.citations[0]
    assert (cited.doc_id, cited.url, cited.outlet, cited.date, cited.author) == (
        "buenos-aires-ban-sao", URL, "Lao Động Thủ Đô", "2022-11-21", "Minh Anh")
    card = sources_html(answer.citations)
    for shown in ("Lao Động Thủ Đô", "21/11/2022", "Minh Anh", f'href="{URL}"'):
        assert shown in card

    # A re-ingest of the unchanged folder changes nothing and needs nothing but the files.
    again = ingest(settings, e5, progress=False, log=lambda m: None)
    assert (again.added, again.updated, again.removed, len(again.unchanged)) == ([], [], [], 4)


def test_a_copy_of_a_file_not_read_again_is_a_duplicate(corpus, settings, e5):
    """An ingest reads only changed files; a copy added later of an unchanged one is still
    recognised (by the keys remembered with the file), not indexed a second time."""
    import os
    import time

    from rag.index import ingest

    page = news_page(url=URL, published="2022-11-21", site="Lao Động Thủ Đô")
    (corpus / "a.html").write_bytes(page)
    past = time.time() - 60  # files changed within a second of an ingest are read again next time
    for path in corpus.rglob("*"):
        os.utime(path, (past, past))
    first = ingest(settings, e5, progress=False, log=lambda m: None)
    assert "a" in first.added
    # Read afresh, the copy would come first in path order and be the one kept.
    (corpus / "0-copy.html").write_bytes(page)
    later = ingest(settings, e5, progress=False, log=lambda m: None)
    assert (later.added, later.removed, later.duplicates) == ([], [], [("0-copy.html", "a.html")])
    assert later.by_format()[".html"] == {"unchanged": 1, "duplicate": 1}
