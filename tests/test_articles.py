"""Adding articles to the running service (``POST /api/articles``, rag.articles): real files
(news pages, a PDF without text), a real server on loopback, the real embedder and index; a
loopback news site for ``{"url": …}`` (allowed with ``RAG_FETCH_ALLOW_PRIVATE=1``)."""
import http.server
import json
import threading
from pathlib import Path

import pytest
from documents import news_page, write_pdf
from servers import http as request

pytestmark = pytest.mark.slow

ADMIN = "admin-key-for-tests"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
LIMIT = 100_000  # RAG_UPLOAD_MAX_BYTES of these tests

HANOI_SEOUL = ("Hà Nội và Seoul hợp tác về đường sắt đô thị", [
    "Sáng 5/9, đoàn đại biểu Thành phố Hà Nội do Chủ tịch UBND thành phố dẫn đầu đã làm việc với lãnh đạo "
    "Thành phố Seoul của Hàn Quốc.",
    "Hai bên ký thỏa thuận hợp tác phát triển đường sắt đô thị, theo đó Seoul cử 45 chuyên gia sang hỗ trợ "
    "Hà Nội vận hành tuyến metro số 3.",
    "Lãnh đạo Seoul khẳng định sẵn sàng chia sẻ kinh nghiệm quản lý giao thông công cộng với Thủ đô Hà Nội."])
SEOUL_QUESTION = "Seoul cử bao nhiêu chuyên gia sang hỗ trợ Hà Nội?"


def multipart(filename: str, data: bytes, field: str = "file") -> tuple[bytes, dict]:
    boundary = "rag-upload-boundary-7f3a"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def upload(server, filename: str, data: bytes, headers: dict | None = None):
    body, form = multipart(filename, data)
    status, _, answer = request(server.url, "POST", "/api/articles", body, {**form, **(headers or {})}, timeout=300)
    return status, json.loads(answer)


def ask(server, question: str) -> dict:
    status, _, body = request(server.url, "POST", "/api/ask", json.dumps({"question": question}).encode(),
                              {"Content-Type": "application/json"})
    assert status == 200, body
    return json.loads(body)


def corpus_files(settings) -> set[str]:
    root = Path(settings.corpus_dir)
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def generation(server) -> str:
    return json.loads(request(server.url, "GET", "/healthz")[2])["generation"]


@pytest.fixture(scope="module")
def service(tmp_path_factory, seed_store, e5):
    from servers import loaded_service

    with loaded_service(tmp_path_factory.mktemp("articles"), seed_store, e5, rate_limit=0, admin_key=ADMIN,
                        upload_max_bytes=LIMIT, fetch_allow_private="1") as service:
        yield service


@pytest.fixture(scope="module")
def server(service):
    from servers import LiveServer

    with LiveServer(service.settings, service) as live:
        yield live


def test_an_uploaded_page_is_answerable_at_once_and_a_second_copy_is_a_duplicate(server, service):
    title, paragraphs = HANOI_SEOUL
    page = news_page(title, paragraphs, url="https://hanoimoi.vn/ha-noi-seoul-duong-sat-do-thi-123.html",
                     published="2023-09-05", author="Minh Châu", site="Hà Nội Mới")
    before = generation(server)
    status, added = upload(server, "Hà Nội – Seoul đường sắt.html", page, ADMIN_HEADERS)
    assert status == 201, added
    assert added["title"] == title and added["date"] == "2023-09-05" and added["outlet"] == "Hà Nội Mới"
    assert added["author"] == "Minh Châu" and added["passages"] >= 1
    assert added["file"].startswith("uploads/ha-noi-seoul-duong-sat-") and added["file"].endswith(".html")
    assert (Path(service.settings.corpus_dir) / added["file"]).read_bytes() == page
    assert added["generation"] == generation(server) != before  # served as soon as the answer came

    answer = ask(server, SEOUL_QUESTION)
    assert "45 chuyên gia" in answer["answer"]
    cited = [c for c in answer["citations"] if c["doc_id"] == added["doc_id"]]
    assert cited and cited[0]["outlet"] == "Hà Nội Mới" and cited[0]["date"] == "2023-09-05"

    # The same page again, under another name, and with other clutter around it: nothing added.
    files, served = corpus_files(service.settings), generation(server)
    status, refused = upload(server, "ban-sao.htm", page.replace("Đọc nhiều nhất".encode(), "Xem nhiều".encode()), ADMIN_HEADERS)
    assert status == 409 and refused["error"] == "duplicate" and added["file"] in refused["message"]
    assert corpus_files(service.settings) == files and generation(server) == served


def test_without_the_admin_key_nothing_is_saved(server, service):
    page = news_page("Bài không được thêm", HANOI_SEOUL[1][:1] + ["Đoạn thứ hai của một bài viết không có mã quản trị "
                                                                   "nên không bao giờ được lưu vào kho bài viết."])
    files, served = corpus_files(service.settings), generation(server)
    status, refused = upload(server, "khong-ma.html", page)
    assert status == 401 and refused["error"] == "unauthorized"
    status, refused = upload(server, "sai-ma.html", page, {"Authorization": "Bearer not-the-key"})
    assert status == 403 and refused["error"] == "forbidden"
    # A key-sized body without the key is refused on its headers, before it is read.
    status, _, body = request(server.url, "POST", "/api/articles", None,
                              {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(LIMIT)})
    assert status == 401
    status, _, body = request(server.url, "POST", "/api/articles", json.dumps({"url": "http://127.0.0.1/"}).encode(),
                              {"Content-Type": "application/json"})
    assert status == 401
    assert corpus_files(service.settings) == files and generation(server) == served


def test_without_rag_admin_key_adding_articles_is_refused(service):
    from servers import LiveServer

    with LiveServer(service.settings.with_(admin_key=""), service) as off:
        files = corpus_files(service.settings)
        for headers in ({}, ADMIN_HEADERS):
            status, refused = upload(off, "a.html", news_page(), headers)
            assert status == 403 and refused["error"] == "admin_disabled" and "RAG_ADMIN_KEY" in refused["message"]
        status, _, page = request(off.url, "GET", "/admin")
        assert status == 403 and "RAG_ADMIN_KEY" in page.decode()
        assert corpus_files(service.settings) == files


def test_too_large_unsupported_and_unreadable_files_change_nothing(server, service, tmp_path):
    files, served = corpus_files(service.settings), generation(server)
    big = news_page("Bài quá dài", HANOI_SEOUL[1] * 20) + b"<!--" + b"x" * LIMIT + b"-->"
    assert LIMIT < len(big) < LIMIT + 64 * 1024
    status, refused = upload(server, "qua-lon.html", big, ADMIN_HEADERS)
    assert status == 413 and refused["error"] == "too_large" and "100,000" in refused["message"]
    status, refused = upload(server, "rat-lon.html", big + b"y" * 128 * 1024, ADMIN_HEADERS)
    assert status == 413 and refused["error"] == "request_too_large"  # past the gate's limit for editors

    for name in ("bai.exe", "bai.jsonl", "bai"):
        status, refused = upload(server, name, b"Hello", ADMIN_HEADERS)
        assert status == 415 and refused["error"] == "unsupported_type", name
        assert ".html, .htm, .pdf, .docx, .txt, .md" in refused["message"]
    scan = write_pdf(tmp_path / "scan.pdf", [], text=False).read_bytes()
    status, refused = upload(server, "ban-scan.pdf", scan, ADMIN_HEADERS)
    assert status == 422 and refused["error"] == "unreadable" and "no text layer" in refused["message"]
    status, refused = upload(server, "trang-trong.html", b"<html><body><nav>Menu</nav></body></html>", ADMIN_HEADERS)
    assert status == 422 and refused["error"] == "unreadable"
    status, refused = upload(server, "rong.txt", b"", ADMIN_HEADERS)
    assert status == 422
    assert corpus_files(service.settings) == files and generation(server) == served
    assert not list(Path(service.settings.corpus_dir).rglob(".*.tmp"))


class NewsSite(http.server.ThreadingHTTPServer):
    """One news page on loopback."""

    def __init__(self, page: bytes) -> None:
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                found = self.path == "/tin/ha-noi-osaka.html"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                body = site.page if found else b"Not found"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.page = page
        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True).start()


def test_a_link_is_fetched_saved_and_answerable_and_a_loopback_link_is_refused_without_the_setting(server, service):
    from rag.articles import Refused, add_url

    page = news_page("Hà Nội và Osaka trao đổi kinh nghiệm xử lý rác thải", [
        "Chiều 14/10, đoàn công tác của Thành phố Hà Nội đã thăm nhà máy xử lý rác thải Maishima của Thành phố Osaka.",
        "Phía Osaka cho biết nhà máy Maishima mỗi ngày đốt 900 tấn rác và phát điện cho khoảng 30.000 hộ dân.",
        "Hai thành phố thống nhất trao đổi chuyên gia về quản lý chất thải rắn trong hai năm tới."],
        published="2023-10-14", site="Kinh tế & Đô thị")
    site = NewsSite(page)
    try:
        url = site.url + "/tin/ha-noi-osaka.html"
        with pytest.raises(Refused, match="refused") as refused:  # before any connection: no embedder needed
            add_url(service.settings.with_(fetch_allow_private=""), None, url)
        assert refused.value.code == "fetch_failed"
        files = corpus_files(service.settings)
        status, _, body = request(server.url, "POST", "/api/articles", json.dumps({"url": url}).encode(),
                                  {"Content-Type": "application/json", **ADMIN_HEADERS}, timeout=300)
        added = json.loads(body)
        assert status == 201, added
        assert added["file"].startswith("web/127.0.0.1/ha-noi-osaka-") and added["url"] == url
        assert corpus_files(service.settings) == files | {added["file"]}
        assert "900 tấn" in ask(server, "Nhà máy Maishima mỗi ngày đốt bao nhiêu tấn rác?")["answer"]
        status, _, body = request(server.url, "POST", "/api/articles", json.dumps({"url": site.url + "/khong-co"}).encode(),
                                  {"Content-Type": "application/json", **ADMIN_HEADERS})
        assert status == 422 and json.loads(body)["error"] == "fetch_failed" and "404" in json.loads(body)["message"]
    finally:
        site.shutdown()
        site.server_close()


def test_concurrent_uploads_are_both_indexed(server, service):
    from rag.index import Store

    pages = {
        "praha.html": news_page("Hà Nội và Praha hợp tác bảo tồn di sản", [
            "Ngày 2/6, đoàn đại biểu Hà Nội đã làm việc với chính quyền Thủ đô Praha của Cộng hòa Séc.",
            "Praha đề nghị giúp Hà Nội trùng tu 12 công trình kiến trúc Pháp cổ trong khu phố cũ.",
            "Hai bên nhất trí tổ chức tuần văn hóa Praha tại Hà Nội vào mùa thu."]),
        "vien.txt": ("Hà Nội học tập Viên về nhà ở xã hội\n\nĐoàn công tác Thành phố Hà Nội đã tìm hiểu mô hình nhà ở "
                     "xã hội của Thủ đô Viên, nơi 220.000 căn hộ thuộc sở hữu của thành phố.\n\nLãnh đạo Viên sẵn "
                     "sàng chia sẻ kinh nghiệm quy hoạch khu dân cư cho Hà Nội.\n").encode("utf-8")}
    results = {}

    def send(name: str) -> None:
        results[name] = upload(server, name, pages[name], ADMIN_HEADERS)

    threads = [threading.Thread(target=send, args=(name,)) for name in pages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert all(status == 201 for status, _ in results.values()), results
    articles = Store(service.settings.store_dir).manifest()["articles"]
    assert {added["doc_id"] for _, added in results.values()} <= set(articles)
    assert "12 công trình" in ask(server, "Praha giúp Hà Nội trùng tu bao nhiêu công trình?")["answer"]
    assert "220.000" in ask(server, "Ở Viên có bao nhiêu căn hộ thuộc sở hữu thành phố?")["answer"]


def test_with_two_workers_the_article_is_answerable_by_both_at_once(indexed, isolated):
    """`rag serve --workers 2`: one worker indexes the upload; the answer comes once both serve it."""
    import os
    import subprocess
    import sys
    import time
    from types import SimpleNamespace

    from servers import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"

    server = SimpleNamespace(url=url)
    log = open(isolated / "serve.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port), "--workers", "2"],
                               stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "RAG_ADMIN_KEY": ADMIN, "RAG_RATE_LIMIT": "0"})
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if json.loads(request(url, "GET", "/healthz", timeout=10)[2]).get("status") == "ready":
                    break
            except OSError:
                pass
            time.sleep(0.2)
        text = ("Hà Nội và Viêng Chăn hợp tác giáo dục\n\nChiều 12/3, đoàn đại biểu thành phố Hà Nội đã đến thủ đô "
                "Viêng Chăn của Lào. Nhân dịp này, Hà Nội trao tặng Viêng Chăn 350 bộ máy tính cho các trường tiểu "
                "học.\n").encode("utf-8")
        status, added = upload(server, "vieng-chan.txt", text, ADMIN_HEADERS)
        assert status == 201, added
        for _ in range(6):  # the questions go to whichever worker is free: each must know the article
            assert "350 bộ máy tính" in ask(server, "Hà Nội tặng Viêng Chăn bao nhiêu bộ máy tính?")["answer"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.seek(0)
        print(log.read()[-3000:])


def test_the_chats_panel_action_refuses_anyone_but_an_editor(server, service):
    """The queue is open to every chat user: the panel's action itself checks the editors' cookie."""
    from servers import GradioSession

    from rag import ui

    files, served = corpus_files(service.settings), generation(server)
    session = GradioSession(server.url)
    status, joined = session.join("add_article", [None, "https://hanoimoi.vn/bai-bao.html"])
    assert status == 200
    (completed,) = [m for m in session.events(joined["event_id"]) if m.get("msg") == "process_completed"]
    assert completed["output"]["data"][0] == ui.ADD_NOT_EDITOR
    assert corpus_files(service.settings) == files and generation(server) == served


def test_upload_names_and_the_panels_message():
    from rag.articles import upload_name
    from rag.ui import added_message

    assert upload_name("C:\\Tài liệu\\Hà Nội – Seoul (bản lưu).HTML", b"x").startswith("uploads/ha-noi-seoul-ban-luu-")
    assert upload_name("../../etc/passwd.txt", b"x").startswith("uploads/passwd-")
    assert upload_name(".html", b"x").startswith("uploads/bai-viet-")
    message = added_message({"title": "Hội chợ <b>sách</b>", "outlet": "Báo *A*", "date": "2023-02-01",
                             "author": "", "passages": 3})
    assert message.startswith("Đã thêm bài viết **Hội chợ &lt;b&gt;sách&lt;/b&gt;** (Báo \\*A\\*, 01/02/2023): 3 đoạn")


def test_word_and_pdf_files_are_added_with_their_properties(server, service, tmp_path):
    import datetime as dt

    from documents import write_docx, write_pdf

    docx = write_docx(tmp_path / "ha-noi-paris.docx", [
        "Đoàn đại biểu Hà Nội đã làm việc với Thị trưởng Paris về hợp tác bảo tồn phố cổ.",
        "Paris đồng ý đào tạo 30 kiến trúc sư của Hà Nội về trùng tu công trình lịch sử."],
        title="Hà Nội và Paris hợp tác bảo tồn phố cổ", author="Lan Anh",
        created=dt.datetime(2023, 4, 18, tzinfo=dt.timezone.utc))
    status, added = upload(server, docx.name, docx.read_bytes(), ADMIN_HEADERS)
    assert status == 201, added
    assert (added["title"], added["date"], added["author"]) == ("Hà Nội và Paris hợp tác bảo tồn phố cổ", "2023-04-18",
                                                                "Lan Anh")
    assert "30 kiến trúc sư" in ask(server, "Paris đào tạo bao nhiêu kiến trúc sư cho Hà Nội?")["answer"]

    pdf = write_pdf(tmp_path / "ha-noi-berlin.pdf", [
        "Hà Nội và Berlin hợp tác về xe buýt điện",
        "Đoàn công tác Hà Nội đã thăm xưởng bảo dưỡng xe buýt điện của Berlin.",
        "Berlin cam kết chia sẻ kinh nghiệm vận hành 200 xe buýt điện với Hà Nội."], title="Hà Nội và Berlin hợp tác về xe buýt điện")
    status, added = upload(server, pdf.name, pdf.read_bytes(), ADMIN_HEADERS)
    assert status == 201 and added["title"] == "Hà Nội và Berlin hợp tác về xe buýt điện", added
    assert "200 xe buýt điện" in ask(server, "Berlin chia sẻ kinh nghiệm vận hành bao nhiêu xe buýt điện?")["answer"]
