"""The chat in the browser (Gradio, mounted at ``/`` by rag.api). It only renders what the
answerer yields: the answer streams into the conversation with its ``[n]`` citations and a short
list of sources; the panel beside it shows each cited passage with the answering sentence
highlighted (the closest passages, marked "related", when the articles do not answer).

Corpus and user text is always escaped: it shows as text, never as HTML or Markdown. Works on an
intranet: system fonts only (no web fonts), no analytics, no share button, no run history.
"""
# No ``from __future__ import annotations``: Gradio reads the handlers' annotations (gr.Request,
# gr.LikeData) to know what to pass, and gradio is imported inside build_blocks.
import html
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
    parts = [markdown_text(answer.text)]
    sources = answer.related if answer.abstained else answer.citations
    if sources:
        lines = ["**Các đoạn liên quan:**" if answer.abstained else "**Nguồn:**"]
        for c in sources:
            details = ", ".join(x for x in (c.outlet, format_date(c.date)) if x)
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
    outlet and date, and the passage with the answering sentence highlighted."""
    if not citations:
        return f'<div class="rag-sources"><h3>{html.escape(heading)}</h3><p class="rag-note">Không có đoạn nào.</p></div>'
    items = []
    for c in citations:
        title = html.escape(c.title or "Không có tiêu đề")
        url = safe_url(c.url)
        if url:
            title = f'<a href="{html.escape(url, quote=True)}" target="_blank" rel="noopener noreferrer">{title}</a>'
        meta = " · ".join(html.escape(x) for x in (c.outlet, format_date(c.date)) if x)
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


# --------------------------------------------------------------------------- the Gradio app


def build_blocks(settings: Settings, service, limiter):
    """The chat page; ``service`` supplies the answerer once the index is loaded, ``limiter``
    is the rate limit shared with the HTTP API."""
    try:
        import gradio as gr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("The chat needs gradio: pip install 'gradio>=6'") from exc

    from .schemas import MAX_QUESTION_CHARS
    from .feedback import DISLIKE, LIKE, FeedbackStore

    feedback = FeedbackStore.beside(settings.store_dir)

    def refusal(question: str, client: str) -> str:
        if len(question) > MAX_QUESTION_CHARS:
            return TOO_LONG.format(limit=MAX_QUESTION_CHARS)
        if service.state == "failed":
            return FAILED.format(error=service.error)
        if not service.ready:
            return NOT_READY
        wait = limiter.acquire(client)
        return RATE_LIMITED.format(seconds=max(1, round(wait + 0.5))) if wait else ""

    def respond(question: str, turns: list, request: gr.Request):
        question = (question or "").strip()
        if not question:
            yield chat_messages(turns), gr.skip(), turns, ""
            return
        notice = refusal(question, request.client.host if request and request.client else "unknown")
        if notice:
            turns = turns + [{"question": question, "answer": None, "notice": notice}]
            yield chat_messages(turns), gr.skip(), turns, ""
            return
        history = [(t["question"], t["answer"].text) for t in turns if t.get("answer")]
        yield chat_messages(turns, (question, SEARCHING)), gr.skip(), turns, ""
        text = ""
        try:
            for event in service.answerer().stream(question, history):
                if isinstance(event, Sources):
                    yield gr.skip(), sources_html(event.citations, "Các đoạn đã tìm thấy"), turns, gr.skip()
                elif isinstance(event, TextDelta):
                    # A preview (an LLM's tokens): the final answer replaces it.
                    text += event.text
                    yield chat_messages(turns, (question, markdown_text(text) + " ▌")), gr.skip(), turns, gr.skip()
                elif isinstance(event, Final):
                    turns = turns + [{"question": question, "answer": event.answer}]
                    yield chat_messages(turns), answer_panel(event.answer), turns, gr.skip()
        except Exception:
            import logging

            logging.getLogger(__name__).exception("answering failed")
            turns = turns + [{"question": question, "answer": None, "notice": ANSWER_FAILED}]
            yield chat_messages(turns), gr.skip(), turns, gr.skip()

    def rate(turns: list, data: gr.LikeData, request: gr.Request):
        turn = turn_at(turns, data.index)
        if turn is None or not turn.get("answer") or data.liked not in (True, False):
            return
        if limiter.acquire(request.client.host if request and request.client else "unknown"):
            gr.Warning(RATE_LIMITED.format(seconds=60))
            return
        feedback.add(turn["question"], turn["answer"].as_dict(), LIKE if data.liked else DISLIKE)
        gr.Info(THANKS)

    def pick_example(data: gr.SelectData) -> str:
        return data.value["text"]

    def show_sources(turns: list, data: gr.SelectData):
        turn = turn_at(turns, data.index)
        return answer_panel(turn["answer"]) if turn and turn.get("answer") else gr.skip()

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
        outputs = [chatbot, panel, turns, question]
        question.submit(respond, [question, turns], outputs, api_visibility="private", concurrency_limit=4,
                        show_progress="hidden")
        chatbot.example_select(pick_example, None, question, queue=False).then(
            respond, [question, turns], outputs, api_visibility="private", concurrency_limit=4, show_progress="hidden")
        chatbot.like(rate, [turns], None, api_visibility="private")
        chatbot.select(show_sources, [turns], panel, api_visibility="private", queue=False)
        clear.click(lambda: ([], EMPTY_PANEL, [], ""), None, outputs, api_visibility="private", queue=False)
        chatbot.clear(lambda: (EMPTY_PANEL, []), None, [panel, turns], api_visibility="private", queue=False)
    return blocks


def mount_options() -> dict:
    """How rag.api mounts the chat: system fonts (the default theme fetches Google Fonts), no
    footer links, no run history, no PWA or MCP endpoints."""
    import gradio as gr

    theme = gr.themes.Default(font=["system-ui", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
                              font_mono=["ui-monospace", "Consolas", "Menlo", "monospace"])
    return {"theme": theme, "css": CSS, "footer_links": [], "run_history": False, "pwa": False,
            "mcp_server": False, "ssr_mode": False, "show_error": False, "enable_monitoring": False}
