import json
import unicodedata

from conftest import ARGENTINA, CUBA, SEED_CORPUS

from rag.corpus import clean_body, load_corpus, parse_txt


def _by_id(result):
    return {a.doc_id: a for a in result.articles}


def test_seed_articles_load_with_their_metadata():
    result = load_corpus(SEED_CORPUS)
    assert result.failures == [] and result.ignored == []
    articles = _by_id(result)
    cuba, argentina = articles[CUBA], articles[ARGENTINA]

    assert cuba.title == "Tiếp tục thúc đẩy và nâng cao hiệu quả hợp tác giữa Hà Nội và La Habana"
    assert cuba.url == ("https://laodongthudo.vn/tiep-tuc-thuc-day-va-nang-cao-hieu-qua-hop-tac-giua-"
                        "ha-noi-va-la-habana-149123.html")
    assert cuba.outlet == "Lao Động Thủ Đô"
    assert cuba.author == "Hoàng Phúc"
    assert "Nguồn LĐTĐ" not in cuba.text and "Hoàng Phúc" not in cuba.text

    assert argentina.title == "Đoàn Thành ủy Hà Nội thăm và làm việc tại Argentina, Peru"
    assert argentina.outlet == "TTXVN/Vietnam+"
    assert argentina.url == "" and argentina.author == ""


def test_cleaning_drops_boilerplate_duplicate_captions_and_glued_alt_text():
    articles = _by_id(load_corpus(SEED_CORPUS))
    argentina, cuba = articles[ARGENTINA].text, articles[CUBA].text
    assert "Tin cùng chuyên mục" not in argentina
    assert "ảnh 1" not in argentina and "ảnh 2" not in argentina
    # The caption that was glued to the image's alt text is now a paragraph of its own.
    assert ("Phó Bí thư Thường trực Thành ủy Hà Nội Ngô Thị Thanh Hằng làm việc với Tổng Vụ trưởng"
            in articles[ARGENTINA].paragraphs[1])
    caption = "Cuộc hội đàm giữa Đoàn đại biểu thành phố Hà Nội và Thành ủy La Habana. (Ảnh: Minh Thu)"
    assert cuba.count(caption) == 1
    assert unicodedata.is_normalized("NFC", cuba)


def test_clean_body_rules():
    body = "Tiêu đề ảnh 1Chú thích ảnh.\n\nMột câu.\nMột câu.\n\n\nTiêu đề"
    assert clean_body(body, title="Tiêu đề") == "Chú thích ảnh.\n\nMột câu."


def test_nfd_file_loads_like_nfc(tmp_path):
    text = (SEED_CORPUS / f"{CUBA}.txt").read_text(encoding="utf-8")
    (tmp_path / "nfd").mkdir()
    (tmp_path / "nfc").mkdir()
    (tmp_path / "nfd" / "a.txt").write_text(unicodedata.normalize("NFD", text), encoding="utf-8")
    (tmp_path / "nfc" / "a.txt").write_text(text, encoding="utf-8")
    [a], [b] = load_corpus(tmp_path / "nfd").articles, load_corpus(tmp_path / "nfc").articles
    assert (a.title, a.text, a.author, a.outlet) == (b.title, b.text, b.author, b.outlet)
    # In one folder they are the same article, loaded once.
    (tmp_path / "nfc" / "b.txt").write_text(unicodedata.normalize("NFD", text), encoding="utf-8")
    both = load_corpus(tmp_path / "nfc")
    assert [x.source_path for x in both.articles] == ["a.txt"] and both.duplicates == [("b.txt", "a.txt")]


def test_markdown_front_matter(tmp_path):
    (tmp_path / "visit.md").write_text(
        "---\ntitle: Đoàn Hà Nội thăm Lào\nurl: https://example.vn/lao\nsource: Hà Nội Mới\n"
        "date: 2023-05-04\nauthor: Minh Anh\n---\n\nĐoàn đã tới Viêng Chăn.\n\nHai bên hội đàm.\n",
        encoding="utf-8")
    (article,) = load_corpus(tmp_path).articles
    assert (article.doc_id, article.title, article.url, article.outlet, article.date, article.author) == (
        "visit", "Đoàn Hà Nội thăm Lào", "https://example.vn/lao", "Hà Nội Mới", "2023-05-04", "Minh Anh")
    assert article.paragraphs == ["Đoàn đã tới Viêng Chăn.", "Hai bên hội đàm."]


def test_markdown_heading_gives_the_title_when_front_matter_has_none(tmp_path):
    (tmp_path / "a.md").write_text("---\nsource: Nhân Dân\n---\n# Tiêu đề bài\n\nNội dung.\n", encoding="utf-8")
    (article,) = load_corpus(tmp_path).articles
    assert article.title == "Tiêu đề bài" and article.text == "Nội dung." and article.outlet == "Nhân Dân"


def test_jsonl_articles_and_a_broken_line(tmp_path):
    lines = [
        json.dumps({"id": "lao-2023", "title": "Thăm Lào", "text": "Đoàn tới Lào.", "date": "04/05/2023",
                    "source": "Nhân Dân", "url": "https://example.vn/lao"}, ensure_ascii=False),
        "{not json",
        json.dumps({"title": "Không có nội dung"}, ensure_ascii=False),
        json.dumps({"title": "Thăm Campuchia", "text": "Đoàn tới Phnôm Pênh.", "url": "https://example.vn/cam"},
                   ensure_ascii=False),
    ]
    (tmp_path / "batch.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_corpus(tmp_path)
    assert [a.title for a in result.articles] == ["Thăm Lào", "Thăm Campuchia"]
    lao = result.articles[0]
    assert (lao.doc_id, lao.date, lao.outlet) == ("batch/lao-2023", "2023-05-04", "Nhân Dân")
    assert result.articles[1].doc_id == "batch/https://example.vn/cam"
    assert [str(f) for f in result.failures] == [
        "batch.jsonl:2: invalid JSON (Expecting property name enclosed in double quotes)",
        "batch.jsonl:3: missing 'text'",
    ]


def test_bad_files_are_reported_and_skipped(tmp_path):
    (tmp_path / "good.txt").write_text("Tiêu đề\n\nNội dung bài.\n", encoding="utf-8")
    (tmp_path / "utf16.txt").write_bytes("Tiêu đề\n\nHà Nội".encode("utf-16"))
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    (tmp_path / "bad.md").write_text("---\ntitle: [unclosed\n---\nx\n", encoding="utf-8")
    (tmp_path / "notes.docx").write_bytes(b"PK\x03\x04")  # a truncated Word file
    (tmp_path / "notes.doc").write_bytes(b"\xd0\xcf\x11\xe0")  # old Word: not supported
    (tmp_path / ".hidden.txt").write_text("x\ny", encoding="utf-8")
    result = load_corpus(tmp_path)
    assert [a.doc_id for a in result.articles] == ["good"]
    reasons = {f.path: f.reason for f in result.failures}
    assert set(reasons) == {"utf16.txt", "empty.txt", "bad.md", "notes.docx"}
    assert reasons["notes.docx"].startswith("not a readable Word (.docx) file")
    assert reasons["utf16.txt"].startswith("not valid UTF-8")
    assert reasons["empty.txt"] == "empty file"
    assert reasons["bad.md"].startswith("invalid YAML front matter")
    assert result.ignored == ["notes.doc"]


def test_source_line_variants():
    assert parse_txt("T\n\nA.\n\nTheo Nhân Dân", "x").outlet == "Nhân Dân"
    article = parse_txt("T\n\nA.\n\nNguồn: https://www.vietnamplus.vn/bai-viet", "x")
    assert (article.outlet, article.url) == ("Vietnam+", "https://www.vietnamplus.vn/bai-viet")
    # A photo credit at the end is not a source line.
    assert parse_txt("T\n\nA.\n\n(Ảnh: Minh Thu)", "x").outlet == ""


def test_publication_date_from_the_first_lines():
    assert parse_txt("Tiêu đề\nThứ Hai, 21/11/2022 10:30\n\nNội dung.", "x").date == "2022-11-21"
    assert parse_txt("Tiêu đề\n\nNgày 21/11, đoàn tới.", "x").date == ""
