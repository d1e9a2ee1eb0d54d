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
