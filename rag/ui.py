"""The chat in the browser (Gradio). It only renders what the pipeline returns.

Works on an intranet: system fonts only (no web fonts fetched), no analytics, no share link.
"""
from __future__ import annotations

import html
import os
import sys

from .index import Hit
from .settings import Settings

TITLE = "Hỏi đáp về các chuyến thăm của đoàn Hà Nội"
DESCRIPTION = ("Đặt câu hỏi về các chuyến thăm và làm việc ở nước ngoài của đoàn đại biểu thành phố Hà Nội. "
               "Mỗi câu trả lời dẫn nguồn đoạn văn và bài báo gốc.")
EXAMPLES = [
    "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?",
    "Hà Nội tặng La Habana bao nhiêu tấn gạo?",
    "Tại Peru, đoàn đã làm việc với những ai?",
]
NOT_FOUND = "Không tìm thấy thông tin này trong các bài báo."


def render_hits(hits: list[Hit]) -> str:
    """Markdown for the passages found, numbered, each with its article and link."""
    if not hits:
        return NOT_FOUND
    parts = ["Các đoạn văn liên quan nhất trong các bài báo:"]
    for n, hit in enumerate(hits, start=1):
        details = ", ".join(x for x in (hit.outlet, hit.date) if x)
        source = f"*{_escape(hit.title)}*" + (f" ({_escape(details)})" if details else "")
        if hit.url:
            source += f" — [bài gốc]({hit.url})"
        parts.append(f"**[{n}]** {_escape(hit.text)}\n\n> {source}")
    return "\n\n".join(parts)


def _escape(text: str) -> str:
    # Article text is shown as text: no HTML, no Markdown links or emphasis of its own.
    escaped = html.escape(text, quote=False)
    for ch in "*_[]`#":
        escaped = escaped.replace(ch, "\\" + ch)
    return escaped


def build_app(settings: Settings, retriever):
    try:
        import gradio as gr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit("The chat needs gradio: pip install 'gradio>=6'") from exc

    def respond(message: str, history: list) -> str:
        return render_hits(retriever.search(message, k=settings.top_k))

    return gr.ChatInterface(
        respond, title=TITLE, description=DESCRIPTION, examples=EXAMPLES, run_examples_on_click=True,
        cache_examples=False, analytics_enabled=False, flagging_mode="never",
        textbox=gr.Textbox(placeholder="Nhập câu hỏi…", submit_btn="Gửi", stop_btn=False),
        chatbot=gr.Chatbot(label="Trả lời", sanitize_html=True),
        api_name="ask",
    )


def serve(settings: Settings) -> None:
    """Bring the index up to date (building it on first run), then serve the chat."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from .embeddings import make_embeddings
    from .index import VectorIndex, ensure_index
    from .retrieval import Retriever

    embeddings = make_embeddings(settings)
    ensure_index(settings, embeddings, refresh=True)
    app = build_app(settings, Retriever(VectorIndex.open(settings, embeddings), settings.retrieval))
    print(f"Chat: http://{settings.host}:{settings.port}/", file=sys.stderr, flush=True)
    theme = gr.themes.Default(font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
                              font_mono=["ui-monospace", "Consolas", "monospace"])
    app.launch(server_name=settings.host, server_port=settings.port, share=False, show_error=True,
               theme=theme, footer_links=[])
