"""`python app.py` on a fresh checkout: builds the index, serves the chat on loopback, answers."""
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_app_builds_the_index_then_answers_with_a_cited_source(corpus, isolated):
    port = _free_port()
    log = open(isolated / "app.log", "w+")
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 180
        while True:
            assert process.poll() is None, (isolated / "app.log").read_text()
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.time() < deadline, (isolated / "app.log").read_text()
                time.sleep(0.5)
        output = (isolated / "app.log").read_text()
        assert "No index in" in output and "2 added" in output  # built from corpus/ on first run
        assert (isolated / "vectorstore" / "CURRENT").is_file()

        from gradio_client import Client

        answer = Client(url, verbose=False).predict("Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?", api_name="/ask")
        # Markdown source: the citation mark is escaped so it shows as "[1]", not as a link.
        assert answer.startswith("Nguyễn Thị Tuyến.") and "\\[1\\]" in answer.split("**Nguồn:**")[0]
        source = answer.split("**Nguồn:**")[1]
        assert source.lstrip().startswith("**[1]** *Tiếp tục thúc đẩy và nâng cao hiệu quả hợp tác")
        assert "(https://laodongthudo.vn/tiep-tuc-thuc-day-va-nang-cao-hieu-qua-hop-tac" in source
        assert "**Nhận lời mời của Bí thư Thành ủy La Habana" in source  # the answering sentence, highlighted
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_chat_binds_to_loopback_by_default():
    from rag.settings import Settings

    assert Settings.load(environ={}).host == "127.0.0.1"
