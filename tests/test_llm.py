"""The optional LLM answerer: citation checking, fallback, streaming, and the chat models over HTTP.

Retrieval is real (the seed index, the e5 embedder); the model is scripted, either in process
(LangChain's GenericFakeChatModel) or behind a real HTTP server on loopback (tests/openai_stub.py).
"""
import logging
import sys

import pytest
from conftest import CUBA
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from openai_stub import StubChatServer

from rag.answer import NOT_FOUND, ExtractiveAnswerer, Final, Sources, TextDelta
from rag.llm import (SYSTEM_PROMPT, LLMAnswerer, build_messages, clean_citations, find_citations,
                     make_answerer, make_chat_model, parse_rewrite, says_not_found, strip_reasoning)
from rag.retrieval import Retriever
from rag.settings import Settings

RICE = "Hà Nội tặng La Habana bao nhiêu tấn gạo?"

# --------------------------------------------------------------------------- pure functions


@pytest.mark.parametrize("text, numbers", [
    ("Hà Nội tặng 2000 tấn gạo [1].", [1]),
    ("Hai bên ký hai biên bản [1, 2].", [1, 2]),
    ("Hai bên ký hai biên bản [1][2].", [1, 2]),
    ("Xem đoạn [12].", [12]),
    ("A [2]. B [1][2]. C [2, 1].", [2, 1]),  # first appearance order, each once
    ("Các đoạn [1-3].", [1, 2, 3]),
    ("Các đoạn [1; 3] và [ 4 ].", [1, 3, 4]),
    ("Ghi chú [a], [1a], [x1] và năm [2000].", []),  # not citations
    ("Không có trích dẫn.", []),
])
def test_find_citations(text, numbers):
    assert find_citations(text) == numbers


@pytest.mark.parametrize("text, cleaned", [
    ("Gạo [1].", "Gạo [1]."),  # valid: untouched
    ("Gạo [1, 2] và [3].", "Gạo [1, 2] và [3]."),
    ("Gạo [7].", "Gạo."),  # the bracket goes with the space before it
    ("Gạo [1, 7].", "Gạo [1]."),
    ("Gạo [1][7] và ngô.", "Gạo [1] và ngô."),
    ("Gạo [7][1] và ngô.", "Gạo [1] và ngô."),
    ("Gạo [12].", "Gạo."),
    ("Gạo [2-5].", "Gạo [2, 3]."),
    ("Gạo [a] [1a] [0].", "Gạo [a] [1a]."),  # [0] is never a passage
    ("[7] Gạo.", "Gạo."),
])
def test_clean_citations(text, cleaned):
    assert clean_citations(text, {1, 2, 3}) == cleaned


@pytest.mark.parametrize("text, not_found", [
    (NOT_FOUND, True),
    ("Không tìm thấy thông tin này trong các bài báo. [1]", True),
    ("khong tim thay thong tin nay trong cac bai bao", True),
    ("Các đoạn trích không đề cập đến số thành viên của đoàn.", True),
    ("Hà Nội tặng La Habana 2000 tấn gạo [1].", False),
    ("Hà Nội tặng 2000 tấn gạo [1]. Số thành viên không được đề cập.", False),  # only the first sentence
])
def test_says_not_found(text, not_found):
    assert says_not_found(text) is not_found


def test_strip_reasoning():
    assert strip_reasoning("<think>Đoạn [7]?</think>\n\nGạo [1].") == "Gạo [1]."
    assert strip_reasoning("<think>chưa nghĩ xong") == ""
    assert strip_reasoning("Gạo [1].") == "Gạo [1]."


# --------------------------------------------------------------------------- scripted model


class ScriptedChatModel(GenericFakeChatModel):
    """Replies with the scripted messages in turn, streamed word by word; records each prompt."""
    prompts: list = []

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        self.prompts.append(messages)
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def scripted(*replies: str) -> ScriptedChatModel:
    return ScriptedChatModel(messages=iter(replies))


class BrokenChatModel(GenericFakeChatModel):
    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        raise ConnectionError("connection refused")


@pytest.fixture
def retriever(indexed, e5):
    from rag.index import VectorIndex

    index = VectorIndex.open(indexed, e5)
    yield Retriever(index)
    index.close()


def passage_number(retriever, question: str, needle: str, k: int = 4) -> int:
    """The number [n] of the retrieved passage that contains ``needle``."""
    hits = retriever.retrieve(question, k).hits
    return next(n for n, hit in enumerate(hits, start=1) if needle in hit.text)


def run(answerer, question):
    events = list(answerer.stream(question))
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 1 and events[-1] is finals[0]
    return events, finals[0].answer


def streamed_text(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_prompt_numbers_the_passages_in_retrieval_order(retriever):
    hits = retriever.retrieve(RICE, 4).hits
    system, user = build_messages(RICE, hits)
    assert NOT_FOUND in system.content and "[1]" in system.content and "tiếng Việt" in SYSTEM_PROMPT
    assert user.content.endswith("chỉ dựa trên các đoạn trích từ [1] đến [4] ở trên, ghi số đoạn trích sau mỗi thông tin.")
    assert f"Câu hỏi: {RICE}" in user.content
    positions = [user.content.index(f"[{n}] Bài báo: {hit.title} ({hit.outlet})\n{hit.text}")
                 for n, hit in enumerate(hits, start=1)]
    assert positions == sorted(positions)


def test_correct_citations_are_kept_with_their_quotes(retriever):
    rice = passage_number(retriever, RICE, "2000 tấn gạo")
    memoranda = passage_number(retriever, RICE, "năm 2000 và 2005")
    reply = (f"Hà Nội tặng La Habana 2000 tấn gạo [{rice}]. "
             f"Hai bên đã ký hai biên bản ghi nhớ vào năm 2000 và 2005 [{memoranda}].")
    model = scripted(reply)
    events, answer = run(LLMAnswerer(retriever, model, top_k=4), RICE)

    hits = retriever.retrieve(RICE, 4).hits
    assert answer.text == reply and not answer.abstained
    assert [c.n for c in answer.citations] == sorted([rice, memoranda])
    by_n = {c.n: c for c in answer.citations}
    assert by_n[rice].chunk_id == hits[rice - 1].chunk_id and by_n[rice].doc_id == CUBA
    assert "2000 tấn gạo" in by_n[rice].quote and by_n[rice].quote in hits[rice - 1].sentences
    assert "2005" in by_n[memoranda].quote
    assert {"retrieve", "generate"} <= set(answer.timings_ms) and "fallback" not in answer.timings_ms
    # The model was asked once, with the passages it cites.
    (prompt,) = model.prompts
    assert hits[rice - 1].text in prompt[1].content


def test_numbers_beyond_the_passages_are_removed(retriever):
    rice = passage_number(retriever, RICE, "2000 tấn gạo", k=3)
    events, answer = run(LLMAnswerer(retriever, scripted(f"Hà Nội tặng 2000 tấn gạo [{rice}][7]. Theo [9]."),
                                     top_k=3), RICE)
    # "[7]" is removed; "Theo [9]." cites only a passage the model was not given: dropped.
    assert answer.text == f"Hà Nội tặng 2000 tấn gạo [{rice}]."
    assert (answer.answerer, answer.reason) == ("llm", "partly_grounded")
    assert [c.n for c in answer.citations] == [rice]
    retrieved = {h.chunk_id for h in retriever.retrieve(RICE, 3).hits}
    assert {c.chunk_id for c in answer.citations} <= retrieved
    assert streamed_text(events) == answer.text  # only checked sentences are ever shown


def test_an_answer_without_citations_falls_back_to_the_extractive_answer(retriever):
    events, answer = run(LLMAnswerer(retriever, scripted("Hà Nội tặng La Habana 2000 tấn gạo."), top_k=4), RICE)
    extractive = ExtractiveAnswerer(retriever, top_k=4).answer(RICE)
    assert (answer.text, answer.citations, answer.short) == (extractive.text, extractive.citations, extractive.short)
    assert answer.short == "2000 tấn gạo" and not answer.abstained
    assert (answer.answerer, answer.reason) == ("extractive", "no_citation") and answer.note
    # The uncited sentence was never shown: the fallback's text is the one delta.
    assert streamed_text(events) == answer.text
    assert [type(e) for e in events] == [Sources, TextDelta, Final]
    assert {"retrieve", "generate", "fallback"} <= set(answer.timings_ms)


def test_invented_facts_with_no_valid_citation_fall_back_and_abstain(retriever):
    question = "Đoàn Hà Nội thăm Brazil khi nào?"
    invented = "Đoàn Hà Nội thăm Brazil từ ngày 5 đến 9/6/2023 [7]."
    events, answer = run(LLMAnswerer(retriever, scripted(invented), top_k=4), question)
    assert answer.abstained and answer.text == NOT_FOUND and answer.citations == ()
    retrieved = {h.chunk_id for h in retriever.retrieve(question, 4).hits}
    assert answer.related and {c.chunk_id for c in answer.related} <= retrieved


@pytest.mark.parametrize("question, abstains", [
    ("Đoàn có bao nhiêu thành viên?", True),  # the extractive answerer abstains too
    (RICE, False),  # the model gave up, the extractive answerer finds it
])
def test_the_models_not_found_goes_to_the_fallback(retriever, question, abstains):
    events, answer = run(LLMAnswerer(retriever, scripted(NOT_FOUND), top_k=4), question)
    assert answer.abstained is abstains
    assert answer.text == (NOT_FOUND if abstains else ExtractiveAnswerer(retriever, top_k=4).answer(question).text)


def test_without_a_fallback_the_answerer_abstains_with_the_retrieved_passages(retriever):
    events, answer = run(LLMAnswerer(retriever, scripted(NOT_FOUND), top_k=4, fallback=None), RICE)
    assert answer.abstained and answer.text == NOT_FOUND and answer.citations == ()
    assert [c.chunk_id for c in answer.related] == [h.chunk_id for h in retriever.retrieve(RICE, 4).hits]


def test_streaming_yields_sources_then_one_delta_a_checked_sentence_then_one_final(retriever):
    rice = passage_number(retriever, RICE, "2000 tấn gạo")
    memoranda = passage_number(retriever, RICE, "năm 2000 và 2005")
    reply = (f"Hà Nội tặng Thủ đô La Habana 2000 tấn gạo hỗ trợ an ninh lương thực [{rice}]. "
             f"Hai bên đã ký biên bản ghi nhớ năm 2000 và 2005 [{memoranda}].\n"
             f"Phó Bí thư Thường trực Thành ủy Hà Nội chia sẻ khó khăn về an ninh lương thực [{rice}].")
    events, answer = run(LLMAnswerer(retriever, scripted(reply), top_k=4), RICE)
    kinds = [type(e) for e in events]
    assert kinds == [Sources, TextDelta, TextDelta, TextDelta, Final]
    deltas = [e.text for e in events[1:-1]]
    assert deltas[0].startswith("Hà Nội") and deltas[1].startswith(" Hai bên") and deltas[2].startswith("\nPhó Bí thư")
    assert streamed_text(events) == answer.text == reply and (answer.answerer, answer.reason) == ("llm", "")
    sources = events[0].citations
    assert [c.n for c in sources] == [1, 2, 3, 4] and all(c.quote == "" for c in sources)
    assert {c.n: c.chunk_id for c in answer.citations}[rice] == sources[rice - 1].chunk_id


def test_reasoning_is_not_streamed_and_not_parsed(retriever):
    rice = passage_number(retriever, RICE, "2000 tấn gạo")
    reply = f"<think>Có lẽ là đoạn [9] hoặc [{rice}].</think>\n2000 tấn gạo [{rice}]."
    events, answer = run(LLMAnswerer(retriever, scripted(reply), top_k=4), RICE)
    assert "think" not in streamed_text(events) and "[9]" not in streamed_text(events)
    assert answer.text == f"2000 tấn gạo [{rice}]." and [c.n for c in answer.citations] == [rice]


def test_a_failing_model_falls_back_with_a_warning(retriever, caplog):
    with caplog.at_level(logging.WARNING, logger="rag.llm"):
        events, answer = run(LLMAnswerer(retriever, BrokenChatModel(messages=iter([])), top_k=4), RICE)
    assert answer.short == "2000 tấn gạo" and "connection refused" in caplog.text
    # Nothing was streamed: the fallback's text comes as the one delta.
    assert [type(e) for e in events] == [Sources, TextDelta, Final] and events[1].text == answer.text


@pytest.mark.parametrize("question", ["   ", "?", "😀"])
def test_an_empty_question_does_not_call_the_model(retriever, question):
    model = scripted()
    model.prompts = []
    events, answer = run(LLMAnswerer(retriever, model, top_k=4), question)
    assert answer.abstained and answer.text == NOT_FOUND and model.prompts == [] and answer.related == ()
    assert [type(e) for e in events] == [Sources, TextDelta, Final]
    assert answer.timings_ms["generate"] == 0


# --------------------------------------------------------------------------- follow-ups

ARGENTINA_TURN = ("Ở Argentina, đoàn Thành ủy Hà Nội đã hội kiến ai?",
                  "Victor Gorodeki Kot. Trong thời gian ở thăm Argentina, đoàn đã có buổi hội kiến Tổng Bí thư "
                  "Đảng Cộng sản Argentina Victor Gorodeki Kot. [1]")


@pytest.mark.parametrize("output, parsed", [
    ("Ở Peru, đoàn Thành ủy Hà Nội đã gặp ai?", "Ở Peru, đoàn Thành ủy Hà Nội đã gặp ai?"),
    ("Câu hỏi đầy đủ: \"Ở Peru, đoàn đã gặp ai?\"\nGiải thích: …", "Ở Peru, đoàn đã gặp ai?"),
    ("<think>đoàn = đoàn Hà Nội</think>\nỞ Peru, đoàn Hà Nội gặp ai?", "Ở Peru, đoàn Hà Nội gặp ai?"),
    ("", ""), ("   \n ", ""),
    (NOT_FOUND, ""),  # an answer, not a question
    ("Ở Peru " + "rất " * 200 + "?", ""),  # far longer than any rewrite of the question
])
def test_parse_rewrite(output, parsed):
    assert parse_rewrite(output, "Còn ở Peru thì đoàn gặp ai?") == parsed


def test_the_model_rewrites_a_follow_up_before_retrieval(retriever):
    rewritten = "Ở Peru, đoàn Thành ủy Hà Nội đã gặp ai?"
    n = passage_number(retriever, rewritten, "Arturo Ayala")
    model = scripted(rewritten, f"Ở Peru, đoàn gặp Phó Tổng Bí thư Arturo Ayala [{n}].")
    events = list(LLMAnswerer(retriever, model, top_k=4).stream("Còn ở Peru thì đoàn gặp ai?", [ARGENTINA_TURN]))
    answer = events[-1].answer
    assert answer.question == "Còn ở Peru thì đoàn gặp ai?" and answer.standalone == rewritten
    assert "Arturo Ayala" in answer.text and [c.n for c in answer.citations] == [n]
    rewrite_prompt, answer_prompt = model.prompts
    assert ARGENTINA_TURN[0] in rewrite_prompt[1].content and "Còn ở Peru thì đoàn gặp ai?" in rewrite_prompt[1].content
    assert f"Câu hỏi: {rewritten}" in answer_prompt[1].content  # retrieval and answer use the rewrite


def test_a_failing_rewrite_falls_back_to_the_rule(retriever, caplog):
    with caplog.at_level(logging.WARNING, logger="rag.llm"):
        answer = LLMAnswerer(retriever, BrokenChatModel(messages=iter([])), top_k=4).answer(
            "Còn ở Peru thì đoàn gặp ai?", [ARGENTINA_TURN])
    assert "LLM rewrite failed" in caplog.text
    assert answer.standalone.startswith("Ở Peru thì đoàn gặp ai?")  # the deterministic rewrite
    assert "Argentina" not in answer.standalone  # the new place replaces the old one


def test_without_history_the_model_is_not_asked_to_rewrite(retriever):
    n = passage_number(retriever, RICE, "2000 tấn gạo")
    model = scripted(f"Hà Nội tặng 2000 tấn gạo [{n}].")
    LLMAnswerer(retriever, model, top_k=4).answer(RICE)
    assert len(model.prompts) == 1


# --------------------------------------------------------------------------- chat model factory


def test_make_chat_model_none_and_errors():
    assert make_chat_model(Settings()) is None and make_chat_model(Settings(llm="none")) is None
    with pytest.raises(ValueError, match="RAG_LLM.*none, openai, ollama"):
        make_chat_model(Settings(llm="gpt"))
    with pytest.raises(ValueError, match="RAG_LLM_MODEL"):
        make_chat_model(Settings(llm="openai", llm_base_url="http://127.0.0.1:8000/v1"))
    with pytest.raises(ValueError, match="RAG_LLM_BASE_URL"):
        make_chat_model(Settings(llm="openai", llm_model="qwen"))


def test_a_missing_integration_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_openai", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"pip install -e '\.\[llm\]'"):
        make_chat_model(Settings(llm="openai", llm_base_url="http://127.0.0.1:8000/v1", llm_model="qwen"))


def test_make_chat_model_builds_the_langchain_models():
    from langchain_ollama import ChatOllama
    from langchain_openai import ChatOpenAI

    openai = make_chat_model(Settings(llm="openai", llm_base_url="http://127.0.0.1:8000/v1", llm_model="qwen"))
    assert isinstance(openai, ChatOpenAI)
    assert (openai.model_name, openai.openai_api_base, openai.temperature) == ("qwen", "http://127.0.0.1:8000/v1", 0)
    ollama = make_chat_model(Settings(llm="Ollama", llm_base_url="http://10.0.0.5:11434", llm_model="qwen3:4b"))
    assert isinstance(ollama, ChatOllama)
    assert (ollama.model, ollama.base_url, ollama.temperature) == ("qwen3:4b", "http://10.0.0.5:11434", 0)


def test_make_answerer_follows_rag_llm(retriever):
    assert type(make_answerer(Settings(), retriever)) is ExtractiveAnswerer
    answerer = make_answerer(Settings(llm="ollama", llm_model="qwen3:4b", top_k=3), retriever)
    assert isinstance(answerer, LLMAnswerer) and answerer.top_k == 3


# --------------------------------------------------------------------------- over real HTTP


def test_openai_compatible_server_over_http(retriever):
    assert passage_number(retriever, RICE, "2000 tấn gạo") == 1  # what the fixed reply cites
    reply = "Hà Nội tặng La Habana 2000 tấn gạo [1][5]."
    with StubChatServer(reply) as server:
        model = make_chat_model(Settings(llm="openai", llm_base_url=f"{server.url}/v1",
                                         llm_model="stub", llm_api_key="x"))
        assert model.invoke("Xin chào").content == reply  # non-streaming
        events, answer = run(LLMAnswerer(retriever, model, top_k=4), RICE)

    # One sentence, shown once complete and checked, without "[5]" (only 4 passages).
    assert streamed_text(events) == answer.text == "Hà Nội tặng La Habana 2000 tấn gạo [1]."
    (citation,) = answer.citations
    assert citation.n == 1 and citation.chunk_id == retriever.retrieve(RICE, 4).hits[0].chunk_id
    assert "2000 tấn gạo" in citation.quote

    first, second = server.requests
    assert first["path"] == second["path"] == "/v1/chat/completions"
    assert first["body"].get("stream") in (None, False) and second["body"]["stream"] is True
    assert second["body"]["model"] == "stub" and second["headers"]["authorization"] == "Bearer x"
    system, user = second["body"]["messages"]
    assert system["role"] == "system" and NOT_FOUND in system["content"]
    assert user["role"] == "user" and RICE in user["content"] and "[4] Bài báo:" in user["content"]


def test_ollama_server_over_http(retriever):
    reply = "Hà Nội tặng La Habana 2000 tấn gạo [1]."
    with StubChatServer(reply) as server:
        model = make_chat_model(Settings(llm="ollama", llm_base_url=server.url, llm_model="stub"))
        events, answer = run(LLMAnswerer(retriever, model, top_k=4), RICE)

    assert streamed_text(events) == answer.text == reply
    assert [c.n for c in answer.citations] == [1] and "2000 tấn gạo" in answer.citations[0].quote
    (request,) = server.requests
    assert request["path"] == "/api/chat" and request["body"]["model"] == "stub"
    assert request["body"]["stream"] is True and request["body"]["messages"][0]["role"] == "system"


# --------------------------------------------------------------------------- checked sentence by sentence


def test_a_partly_supported_answer_keeps_only_its_supported_sentences(retriever):
    rice = passage_number(retriever, RICE, "2000 tấn gạo")
    supported = f"Hà Nội tặng La Habana 2000 tấn gạo [{rice}]."
    invented = f"Ngoài ra Hà Nội tặng 500 xe buýt điện [{rice}]."
    events, answer = run(LLMAnswerer(retriever, scripted(f"{supported} {invented}"), top_k=4), RICE)
    assert answer.text == streamed_text(events) == supported
    assert (answer.answerer, answer.reason) == ("llm", "partly_grounded") and "bỏ" in answer.note
    assert "xe buýt" not in "".join(e.text for e in events if isinstance(e, TextDelta))


def test_an_uncited_sentence_is_checked_against_the_next_citation_and_shown_with_it(retriever):
    rice = passage_number(retriever, RICE, "2000 tấn gạo")
    reply = f"Hà Nội gửi tặng La Habana 2000 tấn gạo. Món quà hỗ trợ an ninh lương thực [{rice}]."
    events, answer = run(LLMAnswerer(retriever, scripted(reply), top_k=4), RICE)
    assert answer.text == f"Hà Nội gửi tặng La Habana 2000 tấn gạo [{rice}]. Món quà hỗ trợ an ninh lương thực [{rice}]."
    assert (answer.answerer, answer.reason) == ("llm", "")


@pytest.mark.parametrize("kind, reply, reason", [
    ("invented figure", "Hà Nội tặng La Habana 3500 tấn gạo [{rice}].", "ungrounded"),
    ("wrong [n]", "Hà Nội tặng La Habana 2000 tấn gạo [{other}].", "ungrounded"),
    ("echo", "Các đoạn trích:\n\n[1] Bài báo: Tiếp tục thúc đẩy hợp tác [1]", "echo"),
    ("rules", "Chỉ trả lời bằng thông tin có trong các đoạn trích [1].", "echo"),
])
def test_an_answer_without_a_supported_sentence_falls_back_and_says_why(retriever, kind, reply, reason):
    rice = passage_number(retriever, RICE, "2000 tấn gạo")
    other = next(n for n, hit in enumerate(retriever.retrieve(RICE, 4).hits, 1) if "tấn gạo" not in hit.text)
    events, answer = run(LLMAnswerer(retriever, scripted(reply.format(rice=rice, other=other)), top_k=4), RICE)
    extractive = ExtractiveAnswerer(retriever, top_k=4).answer(RICE)
    assert (answer.answerer, answer.reason) == ("extractive", reason) and answer.text == extractive.text
    assert answer.note and answer.as_dict()["note"] == answer.note
    assert streamed_text(events) == answer.text  # nothing of the model's was shown


# --------------------------------------------------------------------------- misbehaving servers, over HTTP


def llm_settings(server, **changes) -> Settings:
    return Settings(llm="openai", llm_base_url=f"{server.url}/v1", llm_model="stub", **changes)


def timed(answerer, question, history=()):
    import time

    started = time.monotonic()
    events = list(answerer.stream(question, history))
    return events, events[-1].answer, time.monotonic() - started


def test_the_token_limit_is_sent_to_the_server(retriever):
    with StubChatServer("Hà Nội tặng La Habana 2000 tấn gạo [1].") as server:
        make_answerer(llm_settings(server, llm_max_tokens=77), retriever).answer(RICE)
    (request,) = server.requests
    assert request["body"]["max_tokens"] == 77 and request["body"]["max_completion_tokens"] == 77
    assert Settings().llm_max_tokens == 256 and Settings().llm_deadline == 30.0  # the documented defaults


def test_the_token_limit_is_sent_to_ollama(retriever):
    with StubChatServer("Hà Nội tặng La Habana 2000 tấn gạo [1].") as server:
        settings = Settings(llm="ollama", llm_base_url=server.url, llm_model="stub", llm_max_tokens=77)
        make_answerer(settings, retriever).answer(RICE)
    (request,) = server.requests
    assert request["body"]["options"]["num_predict"] == 77


def test_an_endless_stream_is_cut_at_the_deadline(retriever, caplog):
    assert passage_number(retriever, RICE, "2000 tấn gạo") == 1
    with StubChatServer("Hà Nội tặng La Habana 2000 tấn gạo [1].", endless=True, delay=0.01) as server:
        with caplog.at_level(logging.WARNING, logger="rag.llm"):
            events, answer, elapsed = timed(make_answerer(llm_settings(server, llm_deadline=2), retriever), RICE)
        assert server.disconnected.wait(5)  # the stream was closed, not left running
    assert 2 <= elapsed < 3.5  # the deadline, then the extractive answer (milliseconds)
    assert (answer.answerer, answer.reason) == ("extractive", "deadline") and answer.short == "2000 tấn gạo"
    assert "RAG_LLM_DEADLINE" in caplog.text and "không trả lời kịp" in answer.note
    # The supported sentences it streamed were shown meanwhile; the Final replaces them.
    assert any(isinstance(e, TextDelta) for e in events[:-1]) and answer.text != streamed_text(events)


def test_a_slow_first_token_past_the_deadline_falls_back_in_time(retriever):
    with StubChatServer("Hà Nội tặng La Habana 2000 tấn gạo [1].", first_token_delay=4) as server:
        events, answer, elapsed = timed(make_answerer(llm_settings(server, llm_deadline=1.5), retriever), RICE)
    assert 1.5 <= elapsed < 3 and (answer.answerer, answer.reason) == ("extractive", "deadline")
    assert [type(e) for e in events] == [Sources, TextDelta, Final] and events[1].text == answer.text


def test_a_slow_first_token_within_the_deadline_is_waited_for(retriever):
    with StubChatServer("Hà Nội tặng La Habana 2000 tấn gạo [1].", first_token_delay=1) as server:
        events, answer, elapsed = timed(make_answerer(llm_settings(server, llm_deadline=5), retriever), RICE)
    assert 1 <= elapsed < 5 and (answer.answerer, answer.reason) == ("llm", "")
    assert answer.text == "Hà Nội tặng La Habana 2000 tấn gạo [1]."


def test_a_follow_up_on_a_slow_server_is_still_answered_within_the_deadline(retriever):
    with StubChatServer("Ở Peru, đoàn gặp ai?", first_token_delay=5) as server:
        events, answer, elapsed = timed(make_answerer(llm_settings(server, llm_deadline=2), retriever),
                                        "Còn ở Peru thì đoàn gặp ai?", [ARGENTINA_TURN])
    assert elapsed < 3.5 and (answer.answerer, answer.reason) == ("extractive", "deadline")
    assert answer.standalone.startswith("Ở Peru thì đoàn gặp ai?")  # the rule rewrote it in time


def test_a_prompt_echo_is_rejected_and_cut_at_once(retriever):
    from openai_stub import echo_prompt

    with StubChatServer(echo_prompt, endless=True, delay=0.01) as server:
        events, answer, elapsed = timed(make_answerer(llm_settings(server, llm_deadline=20), retriever), RICE)
        assert server.disconnected.wait(5)
    assert elapsed < 5 and (answer.answerer, answer.reason) == ("extractive", "echo")
    assert answer.short == "2000 tấn gạo" and "Bài báo:" not in streamed_text(events)


def test_a_prompt_echo_within_the_token_limit_is_rejected(retriever):
    from openai_stub import echo_prompt

    with StubChatServer(echo_prompt) as server:
        answer = make_answerer(llm_settings(server, llm_max_tokens=40), retriever).answer(RICE)
    assert (answer.answerer, answer.reason) == ("extractive", "echo")


def test_the_right_fact_with_the_wrong_citation_is_rejected(retriever):
    from openai_stub import citing

    wrong = citing("Hà Nội tặng La Habana 2000 tấn gạo [{n}].", "2000 tấn gạo", wrong=True)
    right = citing("Hà Nội tặng La Habana 2000 tấn gạo [{n}].", "2000 tấn gạo")
    with StubChatServer(wrong) as server:
        rejected = make_answerer(llm_settings(server), retriever).answer(RICE)
    with StubChatServer(right) as server:
        kept = make_answerer(llm_settings(server), retriever).answer(RICE)
    assert (rejected.answerer, rejected.reason) == ("extractive", "ungrounded")
    assert (kept.answerer, kept.reason) == ("llm", "") and "2000 tấn gạo" in kept.citations[0].quote


def test_a_server_that_is_down_falls_back_with_the_reason(retriever):
    from servers import free_port

    settings = Settings(llm="openai", llm_base_url=f"http://127.0.0.1:{free_port()}/v1", llm_model="stub")
    events, answer, elapsed = timed(make_answerer(settings, retriever), RICE)
    assert (answer.answerer, answer.reason) == ("extractive", "llm_error") and answer.short == "2000 tấn gạo"
    assert elapsed < 10
