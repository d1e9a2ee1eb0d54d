"""The chat in the browser (Gradio, mounted at ``/`` by rag.api). It only renders what the
answerer yields: the answer streams into the conversation with its ``[n]`` citations and a short
list of sources; the panel beside it shows each cited passage with the answering sentence
highlighted (the closest passages, marked "related", when the articles do not answer).

Corpus and user text is always escaped: it shows as text, never as HTML or Markdown. Works on an
intranet: system fonts only (no web fonts), no analytics, no share button, no run history.
"""
# No ``from __future__ import annotations``: Gradio reads the handlers' annotations (gr.SelectData,
# gr.LikeData) to know what to pass, and gradio is imported inside build_blocks.
import contextlib
import html
import logging
import os
import re
from urllib.parse import urlsplit

from .answer import Answer, Citation, Final, Sources, TextDelta
from .settings import Settings

TITLE = "Hỏi đáp về các chuyến thăm của đoàn Hà Nội"
DESCRIPTION = ("Đặt câu hỏi về các chuyến thăm và làm việc ở nước ngoài của đoàn đại biểu thành phố Hà Nội. "
               "Mỗi câu trả lời dẫn nguồn đoạn văn và bài báo gốc; câu hỏi tiếp theo có thể dựa vào câu trước.")
# Questions from the seed corpus's question set (evalsets/corpus.jsonl), with and without
# diacritics and in English; tests/test_ui.py checks that each gets its gold answer.
EXAMPLES = [
    "Ai làm trưởng đoàn đại biểu thành phố Hà Nội thăm Cuba?",
    "Hà Nội tặng La Habana bao nhiêu tấn gạo?",
    "Tổng Bí thư Đảng Cộng sản Argentina là ai?",
    "bi thu thu nhat thanh uy la habana ten la gi",
    "When did the Hanoi delegation visit Argentina and Peru?",
]
EMPTY_PANEL = ('<div class="rag-sources rag-empty"><h3>Nguồn</h3><p>Nguồn của mỗi câu trả lời hiện ở đây: tên '
               'bài báo, cơ quan báo chí, ngày đăng, đường dẫn tới bài gốc và đoạn trích, trong đó câu chứa '
               'câu trả lời được tô sáng. Bấm vào một câu trả lời cũ để xem lại nguồn của nó.</p></div>')
SEARCHING = "Đang tìm câu trả lời…"
NOT_READY = "Hệ thống đang chuẩn bị chỉ mục các bài báo (lần chạy đầu tiên mất vài phút). Vui lòng thử lại sau ít phút."
FAILED = "Không mở được chỉ mục các bài báo: {error}"
RATE_LIMITED = "Bạn đã gửi quá nhiều câu hỏi trong thời gian ngắn. Vui lòng thử lại sau {seconds} giây."
TOO_LONG = "Câu hỏi quá dài: tối đa {limit} ký tự."
ANSWER_FAILED = "Đã có lỗi khi trả lời câu hỏi này. Vui lòng thử lại."
THANKS = "Cảm ơn bạn đã góp ý!"
FEEDBACK_FAILED = "Không lưu được góp ý của bạn (máy chủ không ghi được dữ liệu). Câu trả lời không bị ảnh hưởng."
MAX_CHAT_TURNS = 50  # turns a chat session keeps (and shows); older ones are dropped
# The key form, when the server has RAG_API_KEY (rag.api's gate sends the chat page there).
KEY_WRONG = "Mã truy cập không đúng. Vui lòng thử lại."
KEY_EXPIRED = "Phiên làm việc đã hết hạn. Vui lòng nhập lại mã truy cập."
KEY_TOKEN_WRONG = "Đường dẫn chứa mã không hợp lệ hoặc đã hết hạn. Vui lòng nhập mã truy cập."
KEY_RATE_LIMITED = "Bạn đã thử quá nhiều lần trong thời gian ngắn. Vui lòng thử lại sau {seconds} giây."
KEY_FORM = (html.escape(TITLE), "Trang hỏi đáp này cần mã truy cập. Hãy nhập mã do người quản trị cung cấp; trình "
            "duyệt sẽ ghi nhớ phiên làm việc cho đến khi bạn đóng trình duyệt hoặc phiên hết hạn.",
            "/auth", "Mã truy cập", "Vào trang hỏi đáp")
# The editors' sign-in (/admin), with RAG_ADMIN_KEY.
ADMIN_FORM = ("Đăng nhập biên tập viên", "Nhập mã quản trị để thêm bài viết vào kho từ trang hỏi đáp (khung "
              "“Thêm bài viết”). Trình duyệt ghi nhớ phiên đăng nhập cho đến khi bạn đóng trình duyệt hoặc "
              "phiên hết hạn; mã quản trị không được lưu trong trang.",
              "/admin", "Mã quản trị", "Đăng nhập")
# The "Thêm bài viết" panel, shown to editors signed in at /admin.
ADD_TITLE = "Thêm bài viết"
ADD_HELP = ("Chọn tệp bài báo đã lưu (.html, .htm), PDF, Word (.docx), .txt hoặc .md, hoặc dán đường dẫn bài báo, "
            "rồi bấm “Thêm vào kho bài viết”. Bài viết được lưu vào kho và trả lời được ngay.")
ADD_NOTHING = "Hãy chọn một tệp hoặc nhập đường dẫn bài báo."
ADD_NOT_EDITOR = "Phiên đăng nhập biên tập viên đã hết hạn hoặc chưa đăng nhập. Vui lòng đăng nhập lại tại /admin."
ADD_FAILED = "Không thêm được bài viết: {reason}"
ADD_ERROR = "Đã có lỗi khi thêm bài viết. Kho bài viết và chỉ mục không thay đổi."
# Gradio's own words on the file box, in Vietnamese (Gradio ships no Vietnamese; given for "en"
# too, the language it falls back to).
GRADIO_WORDS = {"upload_text.drop_file": "Thả tệp vào đây", "common.or": "hoặc",
                "upload_text.click_to_upload": "Bấm để chọn tệp", "common.clear": "Xóa", "common.upload": "Tải lên",
                "file.uploading": "Đang tải lên…", "common.download": "Tải xuống", "common.remove": "Bỏ"}
ADMIN_WRONG = "Mã quản trị không đúng. Vui lòng thử lại."
ADMIN_OFF = "Máy chủ chưa bật chức năng thêm bài viết: người vận hành cần đặt RAG_ADMIN_KEY."

CSS = """
.rag-sources h3 { margin: 0 0 .5rem; font-size: 1.05rem; }
.rag-sources .rag-note { margin: 0 0 .75rem; color: var(--body-text-color-subdued); }
.rag-sources ol { list-style: none; margin: 0; padding: 0; }
.rag-source { margin: 0 0 1rem; padding: .75rem; border: 1px solid var(--border-color-primary);
  border-radius: 8px; }
.rag-source .rag-n { font-weight: 700; margin-right: .25rem; }
.rag-source .rag-title { font-weight: 600; }
.rag-source .rag-meta { margin: .25rem 0 .5rem; font-size: .9em; color: var(--body-text-color-subdued); }
.rag-source blockquote { margin: 0; padding: 0 0 0 .75rem; border-left: 3px solid var(--border-color-accent);
  white-space: pre-wrap; }
.rag-source mark { background: #fde68a; color: #1f2937; padding: 0 .1em; border-radius: 2px; }
"""


# --------------------------------------------------------------------------- rendering (pure)


def safe_url(url: str) -> str:
    """``url`` when it is a plain http(s) address, else "" (no ``javascript:`` links)."""
    url = (url or "").strip()
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc and not re.search(r"\s", url) else ""


def format_date(date: str) -> str:
    """``2022-11-21`` as Vietnamese readers write it, ``21/11/2022``; anything else unchanged."""
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", date or "")
    return f"{match.group(3)}/{match.group(2)}/{match.group(1)}" if match else (date or "")


def highlight(passage: str, quote: str) -> str:
    """The passage as HTML text with the answering sentence in ``<mark>``."""
    start = passage.find(quote) if quote else -1
    if start < 0:
        return html.escape(passage)
    end = start + len(quote)
    return (html.escape(passage[:start]) + "<mark>" + html.escape(quote) + "</mark>"
            + html.escape(passage[end:]))


def markdown_text(text: str) -> str:
    """Text shown literally by Gradio's Markdown: no HTML, links, emphasis or headings of its own."""
    escaped = html.escape(text, quote=False)
    for ch in "\\`*_[]#|~":
        escaped = escaped.replace(ch, "\\" + ch)
    return escaped


def render_answer(answer: Answer) -> str:
    """The chat bubble (Markdown): the answer with its ``[n]`` marks, then one line a source
    linking the original article. The passages themselves are in the sources panel."""
    parts = [f"*{markdown_text(answer.note)}*"] if answer.note else []
    parts.append(markdown_text(answer.text))
    sources = answer.related if answer.abstained else answer.citations
    if sources:
        lines = ["**Các đoạn liên quan:**" if answer.abstained else "**Nguồn:**"]
        for c in sources:
            details = ", ".join(x for x in (c.outlet, c.author, format_date(c.date)) if x)
            line = f"\\[{c.n}\\] {markdown_text(c.title or 'Không có tiêu đề')}" + (
                f" ({markdown_text(details)})" if details else "")
            url = safe_url(c.url)
            if url:
                line += f" — [bài gốc]({url.replace('(', '%28').replace(')', '%29')})"
            lines.append(line)
        parts.append("  \n".join(lines))
    return "\n\n".join(parts)


def sources_html(citations: tuple[Citation, ...], heading: str = "Nguồn", note: str = "") -> str:
    """The sources panel: for each passage its number, the article's title linking the original,
    outlet, author and date, and the passage with the answering sentence highlighted."""
    if not citations:
        return f'<div class="rag-sources"><h3>{html.escape(heading)}</h3><p class="rag-note">Không có đoạn nào.</p></div>'
    items = []
    for c in citations:
        title = html.escape(c.title or "Không có tiêu đề")
        url = safe_url(c.url)
        if url:
            title = f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{title}</a>'
        meta = " · ".join(html.escape(x) for x in (c.outlet, c.author, format_date(c.date)) if x)
        items.append(f'<li class="rag-source"><div><span class="rag-n">[{c.n}]</span><span class="rag-title">{title}'
                     f'</span></div>' + (f'<div class="rag-meta">{meta}</div>' if meta else "")
                     + f"<blockquote>{highlight(c.text, c.quote)}</blockquote></li>")
    note_html = f'<p class="rag-note">{html.escape(note)}</p>' if note else ""
    return f'<div class="rag-sources"><h3>{html.escape(heading)}</h3>{note_html}<ol>{"".join(items)}</ol></div>'


def answer_panel(answer: Answer) -> str:
    """The panel for an answer: its sources, or the related passages when it abstained; a
    follow-up question shows how it was understood."""
    understood = (f"Câu hỏi được hiểu là: “{answer.standalone}”."
                  if answer.standalone and answer.standalone != answer.question else "")
    if answer.abstained:
        note = "Các bài báo không có câu trả lời; đây là những đoạn gần nhất với câu hỏi."
        return sources_html(answer.related, "Các đoạn liên quan", " ".join(filter(None, (understood, note))))
    return sources_html(answer.citations, "Nguồn", understood)


def chat_messages(turns: list[dict], pending: tuple[str, str] | None = None) -> list[dict]:
    """Gradio messages for the turns (each ``{"question", "answer": Answer | None, "notice"}``),
    strictly alternating user / assistant so that message ``i`` belongs to turn ``i // 2``."""
    messages = []
    for turn in turns:
        reply = render_answer(turn["answer"]) if turn.get("answer") else markdown_text(turn.get("notice", ""))
        messages += [{"role": "user", "content": markdown_text(turn["question"])},
                     {"role": "assistant", "content": reply}]
    if pending:
        messages += [{"role": "user", "content": markdown_text(pending[0])},
                     {"role": "assistant", "content": pending[1]}]
    return messages


def turn_at(turns: list[dict], index) -> dict | None:
    """The turn a chat message (Gradio's index, an int or a tuple) belongs to."""
    index = index[0] if isinstance(index, (list, tuple)) else index
    return turns[index // 2] if isinstance(index, int) and 0 <= index // 2 < len(turns) else None


def added_message(added: dict) -> str:
    """What the panel says once an article is indexed (Markdown; the article's text escaped)."""
    facts = [markdown_text(added["outlet"]) if added.get("outlet") else "",
             format_date(added["date"]) if added.get("date") else "chưa rõ ngày đăng",
             f"tác giả {markdown_text(added['author'])}" if added.get("author") else ""]
    return (f"Đã thêm bài viết **{markdown_text(added['title'])}** ({', '.join(f for f in facts if f)}): "
            f"{added['passages']} đoạn đã được đưa vào chỉ mục. Bạn có thể đặt câu hỏi về bài này ngay.")


def key_page(message: str = "", admin: bool = False) -> str:
    """The page that asks for the access key once (then the browser keeps a session cookie):
    no script, system fonts, nothing loaded from elsewhere. ``admin``: the editors' sign-in
    (``/admin``, ``RAG_ADMIN_KEY``), which opens the chat with its "Thêm bài viết" panel."""
    error = f'<p class="error" role="alert">{html.escape(message)}</p>' if message else ""
    heading, intro, action, label, button = ADMIN_FORM if admin else KEY_FORM
    return f"""<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{label} — {html.escape(TITLE)}</title>
<style>
body {{ margin: 0; min-height: 100vh; display: flex; align-items: center; justify-content: center;
  font-family: system-ui, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; background: #f3f4f6; color: #111827; }}
main {{ background: #fff; padding: 2rem; border-radius: 12px; box-shadow: 0 4px 20px rgba(0,0,0,.08);
  width: min(26rem, calc(100vw - 2rem)); box-sizing: border-box; }}
h1 {{ font-size: 1.25rem; margin: 0 0 .5rem; }}
p {{ margin: 0 0 1rem; line-height: 1.5; }}
label {{ display: block; font-weight: 600; margin-bottom: .25rem; }}
input {{ width: 100%; box-sizing: border-box; padding: .6rem; font: inherit; border: 1px solid #9ca3af; border-radius: 6px; }}
button {{ margin-top: 1rem; width: 100%; padding: .6rem; font: inherit; font-weight: 600; color: #fff;
  background: #b91c1c; border: 0; border-radius: 6px; cursor: pointer; }}
.error {{ color: #b91c1c; font-weight: 600; }}
</style>
</head>
<body>
<main>
<h1>{heading}</h1>
<p>{intro}</p>
{error}
<form method="post" action="{action}">
<label for="key">{label}</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">{button}</button>
</form>
</main>
</body>
</html>
"""


# --------------------------------------------------------------------------- the Gradio app


def build_blocks(settings: Settings, service):
    """The chat page; ``service`` supplies the answerer once the index is loaded. rag.api's gate
    guards it: the key, and the rate limit shared with the HTTP API (each question or rating
    joins Gradio's queue, and each join counts)."""
    try:
        import gradio as gr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("The chat needs gradio: pip install 'gradio>=6'") from exc

    from .articles import UPLOAD_SUFFIXES, Refused, check_upload
    from .gate import is_editor
    from .schemas import MAX_QUESTION_CHARS
    from .feedback import DISLIKE, LIKE, FeedbackStore, FeedbackUnavailable

    feedback = FeedbackStore.beside(settings.store_dir)

    def refusal() -> str:
        if service.state == "failed":
            return FAILED.format(error=service.error)
        return "" if service.ready else NOT_READY

    def respond(question: str, turns: list):
        question = question.strip() if isinstance(question, str) else ""
        turns = turns if isinstance(turns, list) else []
        if not question:
            yield chat_messages(turns), gr.skip(), turns, ""
            return
        if len(question) > MAX_QUESTION_CHARS:
            # Neither kept nor echoed back: a warning, and the chat as it was.
            gr.Warning(TOO_LONG.format(limit=MAX_QUESTION_CHARS))
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        notice = refusal()
        if notice:
            turns = (turns + [{"question": question, "answer": None, "notice": notice}])[-MAX_CHAT_TURNS:]
            yield chat_messages(turns), gr.skip(), turns, ""
            return
        history = [(t["question"], t["answer"].text) for t in turns if t.get("answer")]
        yield chat_messages(turns, (question, SEARCHING)), gr.skip(), turns, ""
        text = ""
        try:
            with service.lease() as live:  # the whole answer from one index generation
                for event in live.answerer().stream(question, history):
                    if isinstance(event, Sources):
                        yield gr.skip(), sources_html(event.citations, "Các đoạn đã tìm thấy"), turns, gr.skip()
                    elif isinstance(event, TextDelta):
                        # A preview (an LLM's tokens): the final answer replaces it.
                        text += event.text
                        yield chat_messages(turns, (question, markdown_text(text) + " ▌")), gr.skip(), turns, gr.skip()
                    elif isinstance(event, Final):
                        turns = (turns + [{"question": question, "answer": event.answer}])[-MAX_CHAT_TURNS:]
                        yield chat_messages(turns), answer_panel(event.answer), turns, gr.skip()
        except Exception:
            logging.getLogger(__name__).exception("answering failed")
            turns = (turns + [{"question": question, "answer": None, "notice": ANSWER_FAILED}])[-MAX_CHAT_TURNS:]
            yield chat_messages(turns), gr.skip(), turns, gr.skip()

    def rate(turns: list, data: gr.LikeData):
        turn = turn_at(turns, data.index)
        if turn is None or not turn.get("answer") or data.liked not in (True, False):
            return
        try:
            feedback.add(turn["question"], turn["answer"].as_dict(), LIKE if data.liked else DISLIKE)
        except FeedbackUnavailable as exc:
            logging.getLogger(__name__).warning("%s", exc)
            gr.Warning(FEEDBACK_FAILED)
            return
        gr.Info(THANKS)

    def pick_example(data: gr.SelectData) -> str:
        return data.value["text"]

    def show_sources(turns: list, data: gr.SelectData):
        turn = turn_at(turns, data.index)
        return answer_panel(turn["answer"]) if turn and turn.get("answer") else gr.skip()

    def editor(request) -> bool:
        return request is not None and is_editor(request.headers.get("cookie", ""), settings)

    def show_adder(request: gr.Request):
        return gr.update(visible=editor(request))

    def add_article(path, url: str, request: gr.Request):
        """The panel's article, added by the service; the answer, then the panel emptied."""
        url = url.strip() if isinstance(url, str) else ""
        try:
            if not editor(request):  # the gate lets any chat user join the queue: checked here
                return ADD_NOT_EDITOR, gr.skip(), gr.skip()
            if not path and not url:
                return ADD_NOTHING, gr.skip(), gr.skip()
            if path:
                check_upload(os.path.basename(path), os.path.getsize(path), settings)  # before reading it
                with open(path, "rb") as handle:
                    data = handle.read()
                added = service.add_article(os.path.basename(path), data)
            else:
                added = service.add_article(url=url)
        except Refused as refused:
            return ADD_FAILED.format(reason=markdown_text(refused.detail)), gr.skip(), gr.skip()
        except Exception:
            logging.getLogger(__name__).exception("adding an article failed")
            return ADD_ERROR, gr.skip(), gr.skip()
        finally:
            if path:  # Gradio's copy of the upload: the corpus keeps the article
                with contextlib.suppress(OSError):
                    os.remove(path)
        return added_message(added), None, ""

    with gr.Blocks(title=TITLE, analytics_enabled=False) as blocks:
        gr.Markdown(f"# {TITLE}\n{DESCRIPTION}")
        turns = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Hội thoại", height=560, buttons=["copy"], feedback_options=("Like", "Dislike"),
                    latex_delimiters=[], sanitize_html=True, elem_id="chat",
                    placeholder="Hỏi bằng tiếng Việt (có hoặc không dấu) hoặc tiếng Anh. Chọn một câu hỏi mẫu:",
                    examples=[{"text": q} for q in EXAMPLES])
                question = gr.Textbox(placeholder="Nhập câu hỏi…", show_label=False, max_length=MAX_QUESTION_CHARS,
                                      submit_btn="Gửi", elem_id="question", autofocus=True)
                clear = gr.Button("Xóa cuộc trò chuyện", variant="secondary", size="sm")
            with gr.Column(scale=2):
                panel = gr.HTML(EMPTY_PANEL, elem_id="sources", js_on_load=None)
                # Editors only (signed in at /admin): hidden for everyone else, and each use checked.
                with gr.Accordion(ADD_TITLE, open=True, visible=False, elem_id="add-article") as adder:
                    gr.Markdown(ADD_HELP)
                    article_file = gr.File(label="Tệp bài viết", file_types=list(UPLOAD_SUFFIXES), type="filepath",
                                           elem_id="article-file")
                    article_url = gr.Textbox(label="Hoặc đường dẫn bài báo", placeholder="https://…",
                                             elem_id="article-url", max_length=2000)
                    add_button = gr.Button("Thêm vào kho bài viết", variant="primary", elem_id="add-article-button")
                    add_result = gr.Markdown(elem_id="add-result")
        outputs = [chatbot, panel, turns, question]
        question.submit(respond, [question, turns], outputs, api_visibility="private", concurrency_limit=4,
                        show_progress="hidden")
        chatbot.example_select(pick_example, None, question, queue=False, api_visibility="private").then(
            respond, [question, turns], outputs, api_visibility="private", concurrency_limit=4, show_progress="hidden")
        chatbot.like(rate, [turns], None, api_visibility="private")
        chatbot.select(show_sources, [turns], panel, api_visibility="private", queue=False)
        clear.click(lambda: ([], EMPTY_PANEL, [], ""), None, outputs, api_visibility="private", queue=False)
        chatbot.clear(lambda: (EMPTY_PANEL, []), None, [panel, turns], api_visibility="private", queue=False)
        add_button.click(add_article, [article_file, article_url], [add_result, article_file, article_url],
                         api_visibility="private", concurrency_limit=1, show_progress="minimal")
        blocks.load(show_adder, None, adder, api_visibility="private", queue=False)
    # Queued events (questions, ratings) only through the queue, whose joins the gate counts;
    # never through /gradio_api/run/predict.
    blocks.queue(api_open=False)
    return blocks


def mount_options() -> dict:
    """How rag.api mounts the chat: system fonts (the default theme fetches Google Fonts), no
    footer links, no run history, no PWA or MCP endpoints."""
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
                              font_mono=["ui-monospace", "Consolas", "Menlo", "monospace"])
    return {"theme": theme, "css": CSS, "footer_links": [], "run_history": False, "pwa": False,
            "mcp_server": False, "ssr_mode": False, "show_error": False, "enable_monitoring": False,
            "i18n": gr.I18n(en=GRADIO_WORDS, vi=GRADIO_WORDS)}
