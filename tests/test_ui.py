"""The chat's rendering (pure functions) and its example questions, answered on the real seed index."""
import json

from conftest import ROOT

from rag.answer import Answer, Citation
from rag.ui import (EXAMPLES, answer_panel, chat_messages, format_date, highlight, markdown_text, render_answer,
                    safe_url, sources_html, turn_at)


def _citation(n=1, **changes) -> Citation:
    values = dict(n=n, chunk_id="c", doc_id="d", title="Bài <b>x</b>", url="https://example.vn/a_(b)",
                  outlet="Nhân Dân", date="2023-05-04", text="Câu một <script>alert(1)</script>. Câu hai.",
                  quote="Câu hai.", score=0.1)
    return Citation(**{**values, **changes})


def test_chat_bubble_shows_text_never_html_or_markdown():
    markdown = render_answer(Answer("q?", "Trả lời *đậm* <img src=x onerror=alert(1)> [1]", (_citation(),), False))
    assert "<img" not in markdown and "&lt;img src=x onerror=alert(1)&gt;" in markdown
    assert markdown.startswith("Trả lời \\*đậm\\*") and "\\[1\\]" in markdown
    assert "**Nguồn:**" in markdown and "<b>" not in markdown and "Bài &lt;b&gt;x&lt;/b&gt;" in markdown
    assert "(Nhân Dân, 04/05/2023)" in markdown
    assert "[bài gốc](https://example.vn/a_%28b%29)" in markdown  # a ")" in the URL does not end the link


def test_sources_panel_escapes_links_safely_and_highlights_the_answering_sentence():
    panel = sources_html((_citation(), _citation(2, url="javascript:alert(1)", quote="")), "Nguồn")
    assert "<script>" not in panel and "&lt;script&gt;alert(1)&lt;/script&gt;" in panel
    assert "<mark>Câu hai.</mark>" in panel and panel.count("<mark>") == 1
    assert 'href="https://example.vn/a_(b)" target="_blank" rel="noopener noreferrer"' in panel
    assert "javascript:" not in panel  # not a link, and not shown as one
    assert "Nhân Dân · 04/05/2023" in panel and "Bài &lt;b&gt;x&lt;/b&gt;" in panel


def test_small_helpers():
    assert highlight("A <b>. B.", "B.") == "A &lt;b&gt;. <mark>B.</mark>"
    assert highlight("A. B.", "C.") == "A. B." and highlight("A.", "") == "A."
    assert safe_url("https://a.vn/x") == "https://a.vn/x"
    assert safe_url("javascript:alert(1)") == safe_url("/relative") == safe_url("https://a.vn/x y") == ""
    assert format_date("2022-11-21") == "21/11/2022" and format_date("") == "" and format_date("11/2022") == "11/2022"
    assert markdown_text("# [a](b) _x_ |") == "\\# \\[a\\](b) \\_x\\_ \\|"


def test_abstained_answers_show_related_passages_and_follow_ups_how_they_were_understood():
    abstained = Answer("Ai?", "Không tìm thấy thông tin này trong các bài báo.", (), True,
                       standalone="Ai? (đoàn thăm Cuba)", related=(_citation(quote=""),))
    panel = answer_panel(abstained)
    assert "<h3>Các đoạn liên quan</h3>" in panel and "những đoạn gần nhất" in panel
    assert "Câu hỏi được hiểu là: “Ai? (đoàn thăm Cuba)”." in panel
    assert "**Các đoạn liên quan:**" in render_answer(abstained)
    answered = answer_panel(Answer("Ai?", "X [1]", (_citation(),), False))
    assert "<h3>Nguồn</h3>" in answered and "hiểu là" not in answered


def test_messages_alternate_so_each_belongs_to_its_turn():
    answer = Answer("q1", "A [1]", (_citation(),), False)
    turns = [{"question": "q1 <i>", "answer": answer}, {"question": "q2", "answer": None, "notice": "Chờ *1* phút"}]
    messages = chat_messages(turns, pending=("q3", "…"))
    assert [m["role"] for m in messages] == ["user", "assistant"] * 3
    assert messages[0]["content"] == "q1 &lt;i&gt;" and messages[3]["content"] == "Chờ \\*1\\* phút"
    assert turn_at(turns, 1) is turns[0] and turn_at(turns, (2, 0)) is turns[1] and turn_at(turns, 9) is None


def test_example_questions_get_their_gold_answers_from_the_seed_index(indexed, e5):
    from rag.index import VectorIndex
    from rag.llm import make_answerer
    from rag.retrieval import Retriever

    gold = {}
    for line in (ROOT / "evalsets" / "corpus.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        gold[item["question"]] = item["answers"]
    index = VectorIndex.open(indexed, e5)
    try:
        answerer = make_answerer(indexed, Retriever(index, indexed.retrieval))
        for question in EXAMPLES:
            assert gold.get(question), f"{question!r} is not in evalsets/corpus.jsonl with an answer"
            answer = answerer.answer(question)
            assert not answer.abstained and answer.citations, question
            assert any(g.lower() in answer.text.lower() for g in gold[question]), (question, answer.text)
    finally:
        index.close()


def test_the_bubble_says_why_the_llms_answer_was_replaced():
    from rag.answer import NOTES

    replaced = Answer("q?", "2000 tấn gạo [1]", (_citation(),), False, answerer="extractive", reason="deadline")
    assert render_answer(replaced).startswith(f"*{NOTES['deadline']}*\n\n2000 tấn gạo \\[1\\]")
    assert "không trả lời kịp" in NOTES["deadline"]
    for answer in (Answer("q?", "x [1]", (_citation(),), False),  # extractive, no LLM
                   Answer("q?", "x [1]", (_citation(),), False, answerer="llm")):
        assert render_answer(answer).startswith("x \\[1\\]")
