"""The scale benchmark runs end to end on a few articles (its figures are read, not asserted)."""
import subprocess
import sys

import pytest
from conftest import ROOT

XQUAD = ROOT.parent / "shared" / "benchmarks" / "xquad.vi.json"


@pytest.mark.slow
@pytest.mark.skipif(not XQUAD.is_file(), reason="needs ../shared/benchmarks/xquad.vi.json")
def test_scale_benchmark_runs_and_a_reingest_embeds_nothing(isolated):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--articles", "12",
                             "--questions", "5", "--keep", str(isolated / "scale")],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "articles 12, passages " in result.stdout
    assert "re-ingest of the unchanged corpus" in result.stdout and ", 0 sentences embedded" in result.stdout
    assert "   total ms: p50 " in result.stdout and "(5 questions)" in result.stdout


LOAD = ROOT / "benchmarks" / "load.py"


@pytest.mark.slow
def test_load_script_serves_parallel_clients_without_an_error(isolated):
    """`rag serve` on loopback, with a key, 2 clients x 3 questions: every answer arrives; a
    64 MiB question to the chat's queue is refused."""
    result = subprocess.run([sys.executable, str(LOAD), "--clients", "2", "--questions", "3", "--oversized", "1"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 clients x 3 questions = 6 requests" in result.stdout and "errors 0" in result.stdout
    assert "1 questions of 64 MiB to /gradio_api/queue/join: statuses [413]" in result.stdout
    assert "req/s" in result.stdout and "latency ms: p50 " in result.stdout
    assert "server memory (RSS): before " in result.stdout and "n/a" not in result.stdout


@pytest.mark.slow
def test_load_script_fails_when_requests_fail(tmp_path, seed_store, e5):
    """Against a server whose key it does not have, every request is refused: exit code 1."""
    from servers import LiveServer, loaded_service

    with loaded_service(tmp_path, seed_store, e5, api_key="s3cret-key", rate_limit=0) as service, \
            LiveServer(service.settings, service) as server:
        result = subprocess.run([sys.executable, str(LOAD), "--url", server.url, "--key", "wrong",
                                 "--clients", "1", "--questions", "2"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "errors 3 (statuses [401])" in result.stdout


@pytest.mark.slow
def test_grounding_benchmark_keeps_the_faithful_outputs_and_rejects_the_others(isolated):
    """benchmarks/grounding.py on its data: the figures the README reports, within a margin."""
    import re

    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "grounding.py"), "--store",
                             str(isolated / "store")], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    rows = {m.group(1): [int(m.group(i)) for i in (2, 3, 4, 5)] for m in re.finditer(
        r"^\| (\w+) \| (\d+) \| (\d+) \| (\d+) \| (\d+)", result.stdout, re.M)}
    assert set(rows) == {"faithful", "echo", "invented", "wrong_citation", "partial"}
    total, whole, dropped, replaced = rows["faithful"]
    assert total >= 150 and whole >= 0.95 * total
    for kind in ("echo", "invented", "wrong_citation"):
        total, whole, dropped, replaced = rows[kind]
        assert total >= 70 and replaced + dropped >= 0.95 * total and whole <= 0.03 * total, (kind, rows[kind])
    total, whole, dropped, replaced = rows["partial"]
    assert whole == 0 and dropped >= 0.9 * total
    assert "invented sentences shown: 0" in result.stdout
