"""The chat and the widget in a real browser: Debian's headless chromium driven by Playwright
(``executable_path``; never ``playwright install``), against the real service on loopback.

The corpus is the seed articles plus one whose title, outlet, link and text carry HTML and
scripts: they must show as text and never run. Screenshots go to test-artifacts/."""
import shutil

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CUBA_QUESTION = "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?"
CUBA_URL = "https://laodongthudo.vn/tiep-tuc-thuc-day-va-nang-cao-hieu-qua-hop-tac-giua-ha-noi-va-la-habana"
HOSTILE_ARTICLE = """---
title: 'Hội chợ <script>window.__xss = "title"</script> sách <b>mùa xuân</b>'
url: "javascript:window.__xss='url'"
source: 'Báo <img src=x onerror="window.__xss=1">'
date: '2023-02-01'
---
Hội chợ sách mùa xuân ở phố Đinh Lễ năm nay có 120 gian hàng <script>window.__xss = "body"</script> của các nhà xuất bản.

Ban tổ chức cho biết hội chợ mở cửa đến hết ngày 10/2 <img src=x onerror="window.__xss=2"> và đón nhiều độc giả nhỏ tuổi.
"""
HOSTILE_QUESTION = 'Hội chợ sách mùa xuân có bao nhiêu gian hàng? <img src=x onerror="window.__xss=3">'


@pytest.fixture(scope="module")
def site(tmp_path_factory, seed_store, e5):
    """The service (seed corpus + the hostile article) on loopback, a demo intranet page on an
    allowed origin and the same page on an origin that is not allowed."""
    from servers import DemoPage, LiveServer, free_port, seed_settings

    from rag.api import Service

    port = free_port()
    allowed, blocked = DemoPage(f"http://127.0.0.1:{port}"), DemoPage(f"http://127.0.0.1:{port}")
    settings = seed_settings(tmp_path_factory.mktemp("browser"), seed_store, rate_limit=0,
                             allowed_origins=allowed.origin)
    (settings.corpus_dir / "hoi-cho-sach.md").write_text(HOSTILE_ARTICLE, encoding="utf-8")
    service = Service(settings)
    service.load(embeddings=e5)
    assert service.info["articles"] == 3
    with LiveServer(settings, service, port=port) as server:
        yield {"server": server, "allowed": allowed, "blocked": blocked, "settings": settings}
    allowed.close()
    blocked.close()
    service.close()


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("The browser tests need Debian's chromium: apt-get install chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser):
    """A fresh browser context that records the URL of every request, of every frame."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN")
    context.requested = []
    context.on("request", lambda request: context.requested.append(request.url))
    context.set_default_timeout(30_000)
    yield context
    context.close()


def origins_of(urls: list[str]) -> set[str]:
    return {"/".join(url.split("/")[:3]) for url in urls if not url.startswith("data:")}


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


# --------------------------------------------------------------------------- the chat at /


def ask_chat(page, question: str):
    """Type a question, send it, and return the new answer's message once it is final."""
    answers = page.locator("#chat .message.bot")
    before = answers.count()
    page.locator("#question textarea").fill(question)
    page.locator("#question textarea").press("Enter")
    return wait_answer(page, before)


def wait_answer(page, before: int):
    answers = page.locator("#chat .message.bot")
    page.wait_for_function(
        """n => { const m = document.querySelectorAll('#chat .message.bot');
                  return m.length > n && !m[m.length - 1].innerText.includes('Đang tìm') &&
                         !m[m.length - 1].innerText.includes('▌'); }""", arg=before)
    return answers.nth(before)


def test_chat_answers_with_citations_and_sources_follow_ups_and_ratings(site, context):
    from rag.feedback import LIKE, FeedbackStore

    server = site["server"]
    page = context.new_page()
    page.goto(server.url + "/")
    # An example question from the empty chat is asked at once.
    page.get_by_text("Hà Nội tặng La Habana bao nhiêu tấn gạo?").click()
    assert "2000 tấn gạo" in wait_answer(page, 0).inner_text()
    page.get_by_role("button", name="Xóa cuộc trò chuyện").click()
    page.wait_for_function("() => document.querySelectorAll('#chat .message.bot').length === 0")
    assert "Nguồn của mỗi câu trả lời hiện ở đây" in page.locator("#sources").inner_text()

    answer = ask_chat(page, CUBA_QUESTION)
    text = answer.inner_text()
    assert text.startswith("Nguyễn Thị Tuyến.") and "[1]" in text and "bài gốc" in text
    assert answer.get_by_role("link", name="bài gốc").first.get_attribute("href").startswith(CUBA_URL)
    panel = page.locator("#sources")
    assert panel.locator("h3").inner_text() == "Nguồn"
    source = panel.locator(".rag-source").first
    assert source.locator(".rag-n").inner_text() == "[1]"
    assert source.locator("a").get_attribute("href").startswith(CUBA_URL)
    assert source.locator("a").inner_text().startswith("Tiếp tục thúc đẩy và nâng cao hiệu quả hợp tác")
    assert "Nguyễn Thị Tuyến" in source.locator("mark").inner_text()  # the answering sentence, highlighted
    screenshot(page, "chat.png")

    # A follow-up uses the conversation; the panel says how it was understood.
    follow_up = ask_chat(page, "Thế đoàn ấy đi từ ngày nào đến ngày nào?")
    assert "20-23/11" in follow_up.inner_text()
    assert "Câu hỏi được hiểu là" in panel.inner_text() and "Cuba" in panel.locator(".rag-note").inner_text()

    # Clicking an earlier answer shows its sources again; a like is stored with the answer.
    answer.click(position={"x": 12, "y": 12})  # on its first words: its centre may be a link to the article
    page.wait_for_function("() => !document.querySelector('#sources').innerText.includes('được hiểu là')")
    answer.hover()
    page.locator("#chat").get_by_role("button", name="Like", exact=True).first.click()
    store = FeedbackStore.beside(site["settings"].store_dir)
    page.wait_for_function("() => document.body.innerText.includes('Cảm ơn bạn đã góp ý')")
    liked = [e for e in store.entries() if e.question == CUBA_QUESTION]
    assert liked and liked[-1].rating == LIKE and liked[-1].answer["short"] == "Nguyễn Thị Tuyến"
    assert liked[-1].answer["citations"][0]["url"].startswith(CUBA_URL)

    assert origins_of(context.requested) == {server.url}  # no fonts, CDN or analytics elsewhere


def test_chat_shows_html_from_articles_and_users_as_text(site, context):
    page = context.new_page()
    page.goto(site["server"].url + "/")
    answer = ask_chat(page, HOSTILE_QUESTION)
    user_message = page.locator("#chat .message.user").last.inner_text()
    assert '<img src=x onerror="window.__xss=3">' in user_message
    assert "120 gian hàng" in answer.inner_text()
    assert '<script>window.__xss = "title"</script>' in answer.inner_text()  # the source's title, as text
    panel = page.locator("#sources").inner_text()
    assert '120 gian hàng <script>window.__xss = "body"</script>' in panel
    assert 'Báo <img src=x onerror="window.__xss=1">' in panel
    assert page.locator("#sources mark").inner_text().startswith("Hội chợ sách mùa xuân")
    assert page.locator('a[href^="javascript"]').count() == 0  # the article's javascript: link is not a link
    assert page.locator("#chat script, #sources script, #chat img[src=x], #sources img[src=x]").count() == 0
    assert page.evaluate("window.__xss") is None


def test_chat_with_a_key_asks_for_it_once_then_answers(site, context):
    """RAG_API_KEY set: the chat asks for the key (a plain page, nothing loaded from elsewhere),
    says when it is wrong, then keeps the session in an HttpOnly, SameSite=Strict cookie."""
    from servers import LiveServer

    settings = site["settings"].with_(api_key="s3cret-key")
    with LiveServer(settings, site["server"].service) as server:
        page = context.new_page()
        page.goto(server.url + "/")
        assert page.url == server.url + "/auth"
        assert "Trang hỏi đáp này cần mã truy cập" in page.locator("main").inner_text()
        page.get_by_label("Mã truy cập").fill("không phải mã")
        page.get_by_role("button", name="Vào trang hỏi đáp").click()
        page.get_by_text("Mã truy cập không đúng. Vui lòng thử lại.").wait_for()
        screenshot(page, "key-form.png")
        page.get_by_label("Mã truy cập").fill("s3cret-key")
        page.get_by_role("button", name="Vào trang hỏi đáp").click()
        page.wait_for_url(server.url + "/")
        assert ask_chat(page, CUBA_QUESTION).inner_text().startswith("Nguyễn Thị Tuyến.")
        (cookie,) = [c for c in context.cookies() if c["name"] == "rag_session"]
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] == -1  # a session cookie
        assert "s3cret-key" not in cookie["value"] and page.evaluate("document.cookie") == ""

        again = context.new_page()  # the same browser session: the key is not asked again
        again.goto(server.url + "/")
        assert "2000 tấn gạo" in ask_chat(again, "Hà Nội tặng La Habana bao nhiêu tấn gạo?").inner_text()
        assert origins_of(context.requested) == {server.url}


# --------------------------------------------------------------------------- the widget


def open_widget(page):
    page.locator("[data-rag-widget] .bubble").click()
    frame = page.frame_locator("[data-rag-widget] iframe")
    frame.locator("#question").wait_for()
    # The greeting too: ask_widget counts the bot's messages before asking, and a greeting drawn
    # after the count was taken for the answer (seen once in CI on a loaded machine).
    frame.locator(".msg.bot").first.wait_for()
    return frame


def ask_widget(frame, question: str):
    before = frame.locator(".msg.bot").count()
    frame.locator("#question").fill(question)
    frame.locator("#question").press("Enter")
    from playwright.sync_api import expect

    answer = frame.locator(".msg.bot").nth(before)
    expect(answer).to_have_attribute("aria-busy", "false", timeout=30_000)  # the final answer, or an error
    return answer


def test_widget_on_an_intranet_page_answers_with_numbered_sources(site, context):
    server, demo = site["server"], site["allowed"]
    page = context.new_page()
    page.goto(demo.url + "/")
    assert page.locator("[data-rag-widget] iframe").count() == 0  # nothing loads before it is opened
    frame = open_widget(page)
    assert frame.locator("#title").inner_text() == "Hỏi đáp chuyến thăm"
    assert "Bạn muốn biết gì" in frame.locator(".msg.bot").first.inner_text()  # data-greeting

    answer = ask_widget(frame, CUBA_QUESTION)
    assert answer.inner_text().startswith("Nguyễn Thị Tuyến.")
    citation = answer.locator("a.cite").first
    assert citation.inner_text() == "[1]"
    source = answer.locator(".sources li").first
    assert source.get_attribute("id") == citation.get_attribute("href")[1:]  # [1] leads to source 1
    link = source.locator("a.title")
    assert link.get_attribute("href").startswith(CUBA_URL) and link.get_attribute("target") == "_blank"
    assert "Lao Động Thủ Đô" in source.locator(".meta").inner_text()
    screenshot(page, "widget.png")
    source.locator("summary").click()
    assert "Nguyễn Thị Tuyến" in source.locator("mark").inner_text()

    answer.get_by_role("button", name="Hữu ích").click()
    answer.get_by_text("Cảm ơn bạn đã góp ý!").wait_for()
    frame.locator("#close").click()
    page.locator("[data-rag-widget] iframe").wait_for(state="hidden")

    assert origins_of(context.requested) == {demo.origin, server.url}


def test_widget_shows_html_as_text_and_takes_its_options(site, context):
    page = context.new_page()
    page.goto(site["allowed"].url + "/?lang=en&position=left&color=%23166534&open=true&title=" + "Q%26A <b>x</b>")
    frame = page.frame_locator("[data-rag-widget] iframe")
    frame.locator("#question").wait_for()  # data-open: open on load
    assert frame.locator("#title").inner_text() == "Q&A <b>x</b>"
    assert frame.locator("#question").get_attribute("placeholder") == "Type a question…"
    assert frame.locator("#send").inner_text() == "Send"
    assert frame.locator("header").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(22, 101, 52)"
    assert page.locator("[data-rag-widget] .bubble").bounding_box()["x"] < 100  # data-position="left"

    answer = ask_widget(frame, HOSTILE_QUESTION)
    assert '<img src=x onerror="window.__xss=3">' in frame.locator(".msg.user").last.inner_text()
    assert "120 gian hàng" in answer.inner_text() and answer.locator(".sources h2").text_content() == "Sources"
    answer.locator("summary").first.click()
    assert '<script>window.__xss = "body"</script>' in answer.inner_text()
    assert '<script>window.__xss = "title"</script>' in answer.locator(".sources .title").first.inner_text()
    assert answer.locator('a[href^="javascript"], script, img').count() == 0
    assert page.evaluate("window.__xss") is None
    assert frame.locator("body").evaluate("() => window.__xss") is None


def test_a_page_on_another_origin_can_neither_embed_the_chat_nor_call_the_api(site, context):
    server = site["server"]
    page = context.new_page()
    page.goto(site["blocked"].url + "/")
    with page.expect_console_message(lambda message: "frame-ancestors" in message.text) as refusal:
        page.locator("[data-rag-widget] .bubble").click()
    assert "The request has been blocked" in refusal.value.text and site["blocked"].origin not in refusal.value.text
    (embed,) = [frame for frame in page.frames if frame != page.main_frame]
    for _ in range(100):  # the refusal is logged before the frame shows Chromium's error page
        if embed.url.startswith("chrome-error://"):
            break
        page.wait_for_timeout(100)
    assert embed.url.startswith("chrome-error://") and embed.query_selector("#question") is None

    # A script of that page calling the API: the preflight fails, and a "simple" request that
    # skips the preflight is refused by the server (403) before anything is answered.
    result = page.evaluate("""url => fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                                 body: JSON.stringify({question: 'Ai?'})})
                                   .then(r => 'read ' + r.status, e => 'blocked: ' + e.message)""",
                           server.url + "/api/ask")
    assert result.startswith("blocked")
    with page.expect_response(server.url + "/api/ask") as response:
        page.evaluate("""url => fetch(url, {method: 'POST', mode: 'no-cors', body: '{"question": "Ai?"}'})
                                   .then(r => r.type)""", server.url + "/api/ask")
    assert response.value.status == 403


def test_api_docs_render_from_the_server_alone(site, context):
    server = site["server"]
    page = context.new_page()
    page.goto(server.url + "/docs")
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    assert {"/api/ask", "/api/ask/stream", "/healthz"} <= set(paths)
    assert origins_of(context.requested) == {server.url}  # Swagger UI's files come from this server


def test_widget_token_and_rate_limit_as_users_see_them(site, context):
    """A server with RAG_API_KEY and a limit of 2 questions a minute: the widget works with a
    signed token from its snippet, explains a missing one, and both surfaces explain the limit."""
    import time

    from servers import DemoPage, LiveServer, free_port

    from rag.gate import RateLimiter, sign_token

    service = site["server"].service
    port = free_port()
    demo = DemoPage(f"http://127.0.0.1:{port}")
    settings = site["settings"].with_(api_key="s3cret-key", allowed_origins=demo.origin)
    token = sign_token("s3cret-key", int(time.time()) + 600)
    try:
        with LiveServer(settings, service, RateLimiter(2), port=port) as server:
            page = context.new_page()
            page.goto(demo.url + "/?open=true")
            answer = ask_widget(page.frame_locator("[data-rag-widget] iframe"), CUBA_QUESTION)
            assert "Widget chưa được cấp quyền truy cập hoặc phiên đã hết hạn" in answer.inner_text()

            page.goto(demo.url + "/?open=true&token=" + token)
            frame = page.frame_locator("[data-rag-widget] iframe")
            assert ask_widget(frame, CUBA_QUESTION).inner_text().startswith("Nguyễn Thị Tuyến.")
            assert ask_widget(frame, "Hà Nội tặng La Habana bao nhiêu tấn gạo?").inner_text().startswith("2000 tấn gạo")
            limited = ask_widget(frame, CUBA_QUESTION).inner_text()
            assert limited.startswith("Bạn đã gửi quá nhiều câu hỏi trong thời gian ngắn. Vui lòng thử lại sau")

            # The chat, opened with the token: the gate refuses the question; Gradio shows why.
            chat = context.new_page()
            chat.goto(server.url + "/?token=" + token)
            chat.locator("#question textarea").fill(CUBA_QUESTION)
            chat.locator("#question textarea").press("Enter")
            chat.get_by_text("Bạn đã gửi quá nhiều câu hỏi trong thời gian ngắn. Vui lòng thử lại sau").wait_for()
            assert chat.locator("#chat .message.bot").count() == 0  # nothing asked, nothing kept
    finally:
        demo.close()


def test_widget_notes_when_the_llms_answer_was_replaced(tmp_path_factory, seed_store, e5, context):
    """With an LLM that echoes its prompt, the widget shows the extractive answer under a note
    saying why, in the page's language."""
    from openai_stub import StubChatServer, echo_prompt
    from servers import DemoPage, LiveServer, free_port, loaded_service

    from rag.answer import NOTES

    port = free_port()
    demo = DemoPage(f"http://127.0.0.1:{port}")
    with StubChatServer(echo_prompt) as model, loaded_service(
            tmp_path_factory.mktemp("browser-llm"), seed_store, e5, rate_limit=0, allowed_origins=demo.origin,
            llm="openai", llm_base_url=f"{model.url}/v1", llm_model="stub") as service, \
            LiveServer(service.settings, service, port=port):
        page = context.new_page()
        for lang, note in (("vi", NOTES["echo"]), ("en", "The language model repeated its instructions")):
            page.goto(demo.url + f"/?lang={lang}")
            answer = ask_widget(open_widget(page), "Hà Nội tặng La Habana bao nhiêu tấn gạo?")
            assert answer.locator(".note").inner_text().startswith(note)
            assert "2000 tấn gạo" in answer.inner_text() and "Bài báo:" not in answer.inner_text()
    demo.close()


# --------------------------------------------------------------------------- adding articles


def test_an_editor_adds_a_saved_page_in_the_panel_then_the_chat_answers_from_it(tmp_path_factory, seed_store, e5,
                                                                                 context, tmp_path):
    """RAG_ADMIN_KEY set: the "Thêm bài viết" panel is hidden from users; an editor signs in at
    /admin (the key becomes an HttpOnly session cookie, never part of a page), uploads a saved
    news page, sees what was indexed, and the chat answers from it with its source card."""
    from documents import news_page
    from servers import LiveServer, seed_settings

    from rag.api import Service

    admin_key = "editors-k3y"
    settings = seed_settings(tmp_path_factory.mktemp("browser-articles"), seed_store, rate_limit=0,
                             admin_key=admin_key, upload_max_bytes=200_000)
    service = Service(settings)
    service.load(embeddings=e5)
    title = "Hà Nội và Seoul hợp tác về đường sắt đô thị"
    saved = tmp_path / "Hà Nội - Seoul.html"
    saved.write_bytes(news_page(title, [
        "Sáng 5/9, đoàn đại biểu Thành phố Hà Nội do Chủ tịch UBND thành phố dẫn đầu đã làm việc với lãnh đạo "
        "Thành phố Seoul của Hàn Quốc.",
        "Hai bên ký thỏa thuận hợp tác phát triển đường sắt đô thị, theo đó Seoul cử 45 chuyên gia sang hỗ trợ "
        "Hà Nội vận hành tuyến metro số 3.",
        "Lãnh đạo Seoul khẳng định sẵn sàng chia sẻ kinh nghiệm quản lý giao thông công cộng với Thủ đô Hà Nội."],
        url="https://hanoimoi.vn/ha-noi-seoul-duong-sat-do-thi-123.html", published="2023-09-05",
        author="Minh Châu", site="Hà Nội Mới"))
    try:
        with LiveServer(settings, service) as server:
            page = context.new_page()
            page.set_default_timeout(120_000)  # indexing on a busy machine: waits are generous, never slept
            page.goto(server.url + "/")
            page.locator("#question textarea").wait_for()
            assert page.locator("#add-article").count() == 0 or not page.locator("#add-article").is_visible()
            assert page.get_by_text("Thêm bài viết").count() == 0 or not page.get_by_text("Thêm bài viết").first.is_visible()

            page.goto(server.url + "/admin")
            assert page.locator("h1").inner_text() == "Đăng nhập biên tập viên"
            page.locator("#key").fill("wrong")
            page.locator("button[type=submit]").click()
            assert "Mã quản trị không đúng" in page.locator(".error").inner_text()
            page.locator("#key").fill(admin_key)
            page.locator("button[type=submit]").click()
            page.wait_for_url(server.url + "/")
            (cookie,) = [c for c in context.cookies() if c["name"] == "rag_admin"]
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and admin_key not in cookie["value"]

            panel = page.locator("#add-article")
            panel.wait_for(state="visible")
            assert "Thêm bài viết" in panel.inner_text() and "Thả tệp vào đây" in panel.inner_text()
            assert "Drop File" not in panel.inner_text()
            page.locator("#article-file input[type=file]").set_input_files(str(saved))
            page.locator("#article-file").get_by_text("Hà Nội - Seoul.html").wait_for()
            page.locator("#add-article-button").click()
            page.wait_for_function("() => document.querySelector('#add-result').innerText.includes('Đã thêm bài viết')",
                                   timeout=300_000)
            result = page.locator("#add-result").inner_text()
            assert title in result and "Hà Nội Mới" in result and "05/09/2023" in result and "đoạn" in result
            assert len(list(settings.corpus_dir.glob("uploads/ha-noi-seoul-*.html"))) == 1
            screenshot(page, "add-article.png")

            answer = ask_chat(page, "Seoul cử bao nhiêu chuyên gia sang hỗ trợ Hà Nội?")
            assert "45 chuyên gia" in answer.inner_text() and "[1]" in answer.inner_text()
            source = page.locator("#sources .rag-source").first
            assert source.locator("a").inner_text() == title
            assert source.locator("a").get_attribute("href") == "https://hanoimoi.vn/ha-noi-seoul-duong-sat-do-thi-123.html"
            assert "Hà Nội Mới" in source.inner_text() and "05/09/2023" in source.inner_text()
            assert admin_key not in page.content()
            assert origins_of(context.requested) == {server.url}
    finally:
        service.close()
