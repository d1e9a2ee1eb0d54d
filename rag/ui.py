"""The chat in the browser (Gradio). It only renders what the pipeline returns.

Works on an intranet: system fonts only (no web fonts fetched), no analytics, no share link.
"""
from __future__ import annotations

import html
import os
import sys

from .answer import Answer, Citation, Final, TextDelta
from .settings import Settings

TITLE = "Hỏi đáp về các chuyến thăm của đoàn Hà Nội"
DESCRIPTION = ("Đặt câu hỏi về các chuyến thăm và làm việc ở nước ngoài của đoàn đại biểu thành phố Hà Nội. "
               "Mỗi câu trả lời dẫn nguồn đoạn văn và bài báo gốc.")
EXAMPLES = [
    "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?",
    "Hà Nội tặng La Habana bao nhiêu tấn gạo?",
    "Tại Peru, đoàn đã làm việc với những ai?",
]
def render_answer(answer: Answer) -> str:
    """Markdown: the answer, then each cited passage with its article and a link to the original."""
    parts = [_escape(answer.text)]
    sources = answer.related if answer.abstained else answer.citations
    if sources:
        parts.append("**Các đoạn gần nhất:**" if answer.abstained else "**Nguồn:**")
        parts += [_render_citation(c) for c in sources]
    return "\n\n".join(parts)


def _render_citation(citation: Citation) -> str:
    details = ", ".join(x for x in (citation.outlet, citation.date) if x)
    source = f"*{_escape(citation.title)}*" + (f" ({_escape(details)})" if details else "")
    if citation.url:
        source += f" — [bài gốc]({citation.url})"
    text = _escape(citation.text)
    if citation.quote:
        text = text.replace(_escape(citation.quote), f"**{_escape(citation.quote)}**")
    return f"**[{citation.n}]** {source}\n\n> {text}"


def _escape(text: str) -> str:
    # Article text is shown as text: no HTML, no Markdown links or emphasis of its own.
    escaped = html.escape(text, quote=False)
    for ch in "\\*_[]`#":
        escaped = escaped.replace(ch, "\\" + ch)
    return escaped


def build_app(settings: Settings, answerer):
    try:
        import gradio as gr
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit("The chat needs gradio: pip install 'gradio>=6'") from exc

    def respond(message: str, history: list):
        # Deltas are a preview (an LLM's tokens); the final answer replaces them, since citation
        # checks may have changed it.
        text = ""
        for event in answerer.stream(message, _turns(history)):
            if isinstance(event, TextDelta):
                text += event.text
                yield _escape(text)
            elif isinstance(event, Final):
                yield render_answer(event.answer)

    return gr.ChatInterface(
        respond, title=TITLE, description=DESCRIPTION, examples=EXAMPLES, run_examples_on_click=True,
        cache_examples=False, analytics_enabled=False, flagging_mode="never",
        textbox=gr.Textbox(placeholder="Nhập câu hỏi…", submit_btn="Gửi", stop_btn=False),
        chatbot=gr.Chatbot(label="Trả lời", sanitize_html=True),
        api_name="ask",
    )


def _turns(history: list) -> list[tuple[str, str]]:
    """Gradio's messages as ``(question, answer text)`` pairs, for follow-up questions."""
    turns, question = [], None
    for message in history:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            continue
        if message.get("role") == "user":
            question = content
        elif message.get("role") == "assistant" and question is not None:
            turns.append((question, content.replace("\\", "")))  # undo Markdown escaping
            question = None
    return turns


def serve(settings: Settings) -> None:
    """Bring the index up to date (building it on first run), then serve the chat."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    from .embeddings import make_embeddings
    from .index import VectorIndex, ensure_index
    from .llm import make_answerer
    from .retrieval import Retriever

    embeddings = make_embeddings(settings)
    ensure_index(settings, embeddings, refresh=True)
    retriever = Retriever(VectorIndex.open(settings, embeddings), settings.retrieval)
    app = build_app(settings, make_answerer(settings, retriever))
    print(f"Chat: http://{settings.host}:{settings.port}/", file=sys.stderr, flush=True)
    theme = gr.themes.Default(font=["system-ui", "Segoe UI", "Roboto", "sans-serif"],
                              font_mono=["ui-monospace", "Consolas", "monospace"])
    app.launch(server_name=settings.host, server_port=settings.port, share=False, show_error=True,
               theme=theme, footer_links=[])
