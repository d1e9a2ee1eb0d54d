"""Real documents for the format tests, written by the tests themselves: news pages with the usual
clutter of a news site and their metadata, PDF files (fpdf2, with Debian's DejaVu font so that
Vietnamese text is really in the text layer) and Word files (python-docx)."""
from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

import pytest

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

TITLE = "Hà Nội và Buenos Aires ký kết biên bản ghi nhớ hợp tác"
PARAGRAPHS = [
    "Chiều 20/11, đoàn đại biểu Thành phố Hà Nội do Bí thư Thành ủy Đinh Tiến Dũng dẫn đầu đã có "
    "buổi làm việc với lãnh đạo Thành phố Buenos Aires.",
    "Hai bên đã ký kết biên bản ghi nhớ về hợp tác trong các lĩnh vực văn hóa, du lịch, giáo dục và "
    "đào tạo giai đoạn 2023 - 2025.",
    "Bí thư Thành ủy nhấn mạnh quan hệ giữa Hà Nội và Buenos Aires còn nhiều tiềm năng phát triển, "
    "nhất là trong lĩnh vực quản lý đô thị và giao thông công cộng.",
]
CAPTION = "Bí thư Thành ủy Đinh Tiến Dũng phát biểu tại buổi làm việc. Ảnh: Minh Anh"
# Text of the clutter around the article; none of it may reach the index.
CLUTTER = ["Trang chủ", "Kinh tế", "Quảng cáo: Mua căn hộ giá rẻ", "Tin liên quan",
           "Giá vàng hôm nay tăng mạnh", "Bình luận", "Bài viết rất hay, cảm ơn tác giả",
           "Bản quyền thuộc về", "Đọc nhiều nhất"]


def news_page(title: str = TITLE, paragraphs: list[str] = PARAGRAPHS, *, url: str = "",
              published: str = "", author: str = "", site: str = "", meta: str = "og",
              caption: str = CAPTION) -> bytes:
    """A news page as a site serves it. ``meta``: ``og`` (og:/article: meta and a canonical
    link), ``jsonld`` (only a JSON-LD NewsArticle), ``time`` (only a ``<time>`` element and a
    byline), or ``none``."""
    e = html.escape
    head = [f"<title>{e(title)}{' | ' + e(site) if site else ''}</title>"]
    if meta == "og":
        head += [f'<meta property="og:title" content="{e(title)}">',
                 f'<meta property="og:site_name" content="{e(site)}">' if site else "",
                 f'<meta property="og:url" content="{e(url)}">' if url else "",
                 f'<link rel="canonical" href="{e(url)}">' if url else "",
                 f'<meta property="article:published_time" content="{published}T08:30:00+07:00">' if published else "",
                 f'<meta name="author" content="{e(author)}">' if author else ""]
    elif meta == "jsonld":
        record = {"@context": "https://schema.org", "@type": "NewsArticle", "headline": title,
                  "mainEntityOfPage": {"@type": "WebPage", "@id": url} if url else None,
                  "datePublished": f"{published}T08:30:00+07:00" if published else None,
                  "author": [{"@type": "Person", "name": author}] if author else None,
                  "publisher": {"@type": "Organization", "name": site} if site else None}
        head.append('<script type="application/ld+json">'
                    + json.dumps({k: v for k, v in record.items() if v}, ensure_ascii=False) + "</script>")
    byline = ""
    if meta == "time":
        y, m, d = published.split("-")
        byline = (f'<div class="byline"><span class="author">{e(author)}</span> '
                  f'<time datetime="{published}T08:30:00+07:00">{d}/{m}/{y} 08:30</time></div>')
    body = "\n".join(f"<p>{e(p)}</p>" for p in paragraphs[:1])
    if caption:
        body += (f'\n<figure class="image"><img src="/anh/1.jpg" alt="{e(caption[:30])}">'
                 f"<figcaption>{e(caption)}</figcaption></figure>")
    body += "\n" + "\n".join(f"<p>{e(p)}</p>" for p in paragraphs[1:])
    page = f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8">
{chr(10).join(h for h in head if h)}
<script>window.dataLayer = [{{"event": "pageview"}}];</script>
</head><body>
<header><nav class="menu"><ul><li><a href="/">Trang chủ</a></li><li><a href="/thoi-su">Thời sự</a></li>
<li><a href="/kinh-te">Kinh tế</a></li><li><a href="/van-hoa">Văn hóa</a></li></ul></nav></header>
<div class="ads banner"><a href="/qc">Quảng cáo: Mua căn hộ giá rẻ tại Hà Đông, liên hệ ngay hôm nay!</a></div>
<main><article class="detail">
<h1 class="title">{e(title)}</h1>
{byline}
<div class="content">
{body}
</div>
<div class="share"><a href="#">Facebook</a> <a href="#">Zalo</a></div>
</article>
<section class="related"><h3>Tin liên quan</h3><ul>
<li><a href="/x">Hà Nội tăng cường hợp tác với La Habana</a></li>
<li><a href="/y">Giá vàng hôm nay tăng mạnh</a></li></ul></section>
<aside class="most-read"><h3>Đọc nhiều nhất</h3><ol><li><a href="/z">Thời tiết Hà Nội cuối tuần</a></li></ol></aside>
<section id="comments" class="comments"><h3>Bình luận</h3>
<div class="comment"><p>Bài viết rất hay, cảm ơn tác giả đã chia sẻ thông tin bổ ích này.</p></div></section>
</main>
<footer><p>Bản quyền thuộc về Báo điện tử. Địa chỉ: 123 Phố Huế, Hà Nội.</p></footer>
</body></html>"""
    return page.encode("utf-8")


def cp1258(text: str) -> bytes:
    """Text in Windows-1258, the legacy Vietnamese code page: letters carry their shape marks
    (â, ơ, ư, …) precomposed, and tone marks follow them as combining characters."""
    import unicodedata

    out = []
    for char in text:
        base, *marks = unicodedata.normalize("NFD", char)
        shape = "".join(m for m in marks if m in "\u0302\u0306\u031b")
        out.append(unicodedata.normalize("NFC", base + shape) + "".join(m for m in marks if m not in shape))
    return "".join(out).encode("cp1258")


def write_pdf(path: Path, lines: list[str], *, title: str = "", author: str = "",
              created: dt.datetime | None = None, text: bool = True) -> Path:
    """A PDF written by fpdf2. With ``text=False`` a page with only a drawn picture: a scan's
    image without a text layer."""
    fpdf = pytest.importorskip("fpdf", reason="pip install -e '.[test]' (fpdf2)")
    if not DEJAVU.is_file():
        pytest.skip("Vietnamese PDF text needs Debian's fonts-dejavu-core (/usr/share/fonts/truetype/dejavu)")
    pdf = fpdf.FPDF()
    pdf.add_font("DejaVu", fname=str(DEJAVU))
    pdf.set_font("DejaVu", size=12)
    if title:
        pdf.set_title(title)
    if author:
        pdf.set_author(author)
    pdf.set_creation_date(created or dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc))
    pdf.add_page()
    if text:
        for line in lines:
            if line:
                pdf.multi_cell(0, 8, line)  # wraps long lines: several lines of the text layer
            pdf.ln(4)
    else:
        pdf.set_fill_color(120, 120, 120)
        pdf.rect(20, 20, 170, 120, style="F")  # the "scanned" page: graphics, no text
    data = bytes(pdf.output())
    if created is None:  # fpdf2 always writes one: renamed (same length, offsets kept), none is left
        data = data.replace(b"/CreationDate", b"/XreationDate")
    path.write_bytes(data)
    return path


def write_docx(path: Path, paragraphs: list[str], *, title: str = "", author: str = "",
               created: dt.datetime | None = None, heading: str = "", table: list[list[str]] | None = None) -> Path:
    docx = pytest.importorskip("docx", reason="pip install python-docx")
    document = docx.Document()
    properties = document.core_properties
    properties.title, properties.author = title, author
    if created is not None:
        properties.created = created
    if heading:
        document.add_heading(heading, level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table):
            for cell, value in zip(row.cells, values):
                cell.text = value
    document.save(str(path))
    if created is None:  # no creation date at all (python-docx's template has one from 2013)
        _drop_created(path)
    return path


def _drop_created(path: Path) -> None:
    import re
    import zipfile

    with zipfile.ZipFile(path) as source:
        items = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in items:
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"<dcterms:created[^>]*>[^<]*</dcterms:created>", b"", data)
            target.writestr(info, data)
