from rag.answer import Answer, Citation
from rag.ui import _turns, render_answer


def test_gradio_history_becomes_question_answer_turns():
    history = [
        {"role": "user", "content": "Ai dẫn đầu đoàn thăm Cuba?"},
        {"role": "assistant", "content": "Nguyễn Thị Tuyến. Đoàn … \\[1\\]"},
        {"role": "user", "content": {"path": "image.png"}},  # not text: ignored
        {"role": "user", "content": "Còn ở Peru?"},
    ]
    assert _turns(history) == [("Ai dẫn đầu đoàn thăm Cuba?", "Nguyễn Thị Tuyến. Đoàn … [1]")]


def test_rendered_answer_shows_text_never_html_and_highlights_the_quote():
    citation = Citation(n=1, chunk_id="c", doc_id="d", title="Bài <b>x</b>", url="https://example.vn/a",
                        outlet="Nhân Dân", date="2023-05-04", text="Câu một <script>alert(1)</script>. Câu hai.",
                        quote="Câu hai.", score=0.1)
    markdown = render_answer(Answer("q?", "Trả lời [1]", (citation,), False))
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown and "<b>" not in markdown
    assert "**Câu hai.**" in markdown and "[bài gốc](https://example.vn/a)" in markdown
    assert markdown.startswith("Trả lời \\[1\\]") and "**Nguồn:**" in markdown
