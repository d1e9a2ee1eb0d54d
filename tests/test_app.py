"""`python app.py` on a fresh checkout: serves at once, builds the index, then answers over HTTP;
with --demo-port, the demo intranet page on another origin is allowed to embed the widget."""
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from conftest import ROOT
from servers import free_port


def _get(url: str, data: dict | None = None):
    body = json.dumps(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode("utf-8")


@pytest.mark.slow
def test_app_builds_the_index_then_answers_with_a_cited_source(corpus, isolated):
    port, demo_port = free_port(), free_port()
    log = open(isolated / "app.log", "w+")
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), "--demo-port", str(demo_port)],
                               stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 180
        while True:
            assert process.poll() is None, (isolated / "app.log").read_text()
            try:
                status, _, health = _get(url + "/healthz")
                if status == 200:
                    break
                assert status == 503 and json.loads(health)["status"] == "loading"
            except OSError:
                pass
            assert time.time() < deadline, (isolated / "app.log").read_text()
            time.sleep(0.5)
        output = (isolated / "app.log").read_text()
        assert "No index in" in output and "2 added" in output  # built from corpus/ on first run
        assert "Ready: 2 articles, 30 passages." in output and f"Chat: {url}/" in output
        assert (isolated / "vectorstore" / "CURRENT").is_file()

        status, _, body = _get(url + "/api/ask", {"question": "Ai dẫn đầu đoàn đại biểu Hà Nội thăm Cuba?"})
        answer = json.loads(body)
        assert status == 200 and answer["short"] == "Nguyễn Thị Tuyến" and "[1]" in answer["answer"]
        assert answer["citations"][0]["url"].startswith("https://laodongthudo.vn/tiep-tuc-thuc-day")

        status, _, page = _get(url + "/")
        assert status == 200 and "gradio" in page.lower()
        demo = f"http://127.0.0.1:{demo_port}"
        status, _, page = _get(demo + "/")
        assert status == 200 and f'<script src="{url}/widget.js" data-title="Hỏi đáp chuyến thăm"' in page
        _, headers, _ = _get(url + "/embed")
        assert f"frame-ancestors 'self' {demo}" in headers["Content-Security-Policy"]
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_app_exits_with_an_error_when_the_index_cannot_be_built(isolated):
    # No corpus/ folder: the server stops and says why, instead of serving a chat that cannot answer.
    result = subprocess.run([sys.executable, str(ROOT / "app.py"), "--port", str(free_port())],
                            capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert result.returncode == 2 and "error:" in result.stderr and "corpus" in result.stderr


def test_chat_binds_to_loopback_by_default():
    from rag.settings import Settings

    assert Settings.load(environ={}).host == "127.0.0.1"
