"""An LLM answerer behind every surface: the HTTP API, the chat (Gradio over HTTP) and the `rag`
command say who answered and why the LLM's answer was replaced. The model is the scripted
OpenAI-compatible server of tests/openai_stub.py: it answers one question faithfully and echoes
its prompt for another. (The widget's note is checked in the browser: tests/test_browser.py.)"""
import json
import re

import pytest
from conftest import run_rag
from openai_stub import StubChatServer, citing, echo_prompt, prompt_of

from rag.answer import NOTES

pytestmark = pytest.mark.slow

FAITHFUL = "Ai dẫn đầu đoàn Thành ủy Hà Nội thăm Argentina và Peru?"
ECHOED = "Hà Nội tặng La Habana bao nhiêu tấn gạo?"
LEADER = "Phó Bí thư Thường trực Thành ủy Ngô Thị Thanh Hằng dẫn đầu đoàn đại biểu thành phố Hà Nội [{n}]."


def scripted_reply(body: dict) -> str:
    """Echo the prompt for the rice question, answer the others faithfully."""
    if "tấn gạo" in prompt_of(body).split("Câu hỏi: ")[-1]:
        return echo_prompt(body)
    return citing(LEADER, "đoàn đại biểu thành phố Hà Nội do Ủy viên")(body)


@pytest.fixture(scope="module")
def model():
    with StubChatServer(scripted_reply) as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory, seed_store, e5, model):
    from servers import LiveServer, loaded_service

    with loaded_service(tmp_path_factory.mktemp("llm-api"), seed_store, e5, rate_limit=0, llm="openai",
                        llm_base_url=f"{model.url}/v1", llm_model="stub", llm_deadline=20.0) as service:
        with LiveServer(service.settings, service) as live:
            yield live


def test_the_api_says_who_answered_and_why(server):
    from servers import http

    status, _, body = http(server.url, "POST", "/api/ask", json.dumps({"question": FAITHFUL}).encode(),
                           {"Content-Type": "application/json"})
    answer = json.loads(body)
    assert status == 200 and (answer["answerer"], answer["reason"], answer["note"]) == ("llm", "", "")
    assert "Ngô Thị Thanh Hằng" in answer["answer"] and "Ngô Thị Thanh Hằng" in answer["citations"][0]["quote"]

    status, _, body = http(server.url, "POST", "/api/ask", json.dumps({"question": ECHOED}).encode(),
                           {"Content-Type": "application/json"})
    answer = json.loads(body)
    assert status == 200 and (answer["answerer"], answer["reason"]) == ("extractive", "echo")
    assert answer["note"] == NOTES["echo"] and answer["short"] == "2000 tấn gạo"
    assert "Bài báo:" not in answer["answer"]

    status, _, body = http(server.url, "POST", "/api/ask/stream", json.dumps({"question": ECHOED}).encode(),
                           {"Content-Type": "application/json"})
    events = [(m.group(1), json.loads(m.group(2))) for m in re.finditer(r"event: (\w+)\ndata: (.*)\n", body.decode())]
    final = events[-1][1]
    assert events[-1][0] == "final" and (final["answerer"], final["reason"], final["note"]) == (
        "extractive", "echo", NOTES["echo"])
    assert not any("Bài báo:" in data.get("text", "") for name, data in events if name == "delta")


def test_the_openapi_schema_documents_the_fields(server):
    from servers import http

    _, _, body = http(server.url, "GET", "/openapi.json")
    fields = json.loads(body)["components"]["schemas"]["AnswerOut"]["properties"]
    assert fields["answerer"]["enum"] == ["llm", "extractive"] and "deadline" in fields["reason"]["description"]


def test_the_chat_shows_the_note_above_the_extractive_answer(server):
    from servers import GradioSession

    status, messages = GradioSession(server.url).ask(ECHOED)
    assert status == 200
    final = [m for m in messages if m.get("msg") == "process_completed"][-1]
    bubble = final["output"]["data"][0][-1]["content"]
    text = bubble if isinstance(bubble, str) else json.dumps(bubble, ensure_ascii=False)
    assert f"*{NOTES['echo']}*" in text and "2000 tấn gạo" in text and "Bài báo:" not in text


def test_rag_ask_prints_the_note_and_the_json_fields(indexed, model):
    env = {"RAG_LLM": "openai", "RAG_LLM_BASE_URL": f"{model.url}/v1", "RAG_LLM_MODEL": "stub"}
    result = run_rag("ask", ECHOED, "--json", env=env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["answerer"], answer["reason"], answer["note"]) == ("extractive", "echo", NOTES["echo"])
    result = run_rag("ask", ECHOED, env=env)
    assert result.stdout.startswith(f"({NOTES['echo']})\n2000 tấn gạo.")
    result = run_rag("ask", ECHOED)  # no LLM: no note
    assert result.stdout.startswith("2000 tấn gạo.")
