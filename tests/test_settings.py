from pathlib import Path

import pytest

from rag.settings import DEFAULT_EMBEDDING, Settings


def test_defaults_without_environment():
    settings = Settings.load(environ={})
    assert settings.corpus_dir == Path("corpus")
    assert settings.store_dir == Path("vectorstore")
    assert settings.embedding == DEFAULT_EMBEDDING
    assert settings.host == "127.0.0.1"


def test_environment_then_flags_win():
    env = {"RAG_CORPUS_DIR": "/data/articles", "RAG_STORE_DIR": "/data/index", "RAG_TOP_K": "7",
           "RAG_EMBEDDING": "sentence-transformers:/models/x"}
    settings = Settings.load(environ=env, store_dir="/flag/index", corpus_dir=None)
    assert settings.corpus_dir == Path("/data/articles")  # flag not given: environment
    assert settings.store_dir == Path("/flag/index")  # flag given: flag
    assert settings.top_k == 7
    assert settings.embedding == "sentence-transformers:/models/x"


def test_invalid_number_is_a_clear_error():
    with pytest.raises(SystemExit, match="RAG_TOP_K"):
        Settings.load(environ={"RAG_TOP_K": "many"})


def test_llm_bounds_have_defaults_and_take_seconds_as_decimals():
    settings = Settings.load(environ={})
    assert (settings.llm_max_tokens, settings.llm_deadline) == (256, 30.0)
    settings = Settings.load(environ={"RAG_LLM_MAX_TOKENS": "64", "RAG_LLM_DEADLINE": "7.5"})
    assert (settings.llm_max_tokens, settings.llm_deadline) == (64, 7.5)
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(SystemExit, match="RAG_LLM_DEADLINE"):
            Settings.load(environ={"RAG_LLM_DEADLINE": bad})
    with pytest.raises(SystemExit, match="RAG_LLM_MAX_TOKENS"):
        Settings.load(environ={"RAG_LLM_MAX_TOKENS": "0"})


def test_adding_articles_is_off_by_default_and_its_key_is_never_shown():
    assert (Settings.load(environ={}).admin_key, Settings.load(environ={}).upload_max_bytes) == ("", 5_000_000)
    settings = Settings.load(environ={"RAG_ADMIN_KEY": "editors-secret", "RAG_UPLOAD_MAX_BYTES": "200000"})
    assert (settings.admin_key, settings.upload_max_bytes) == ("editors-secret", 200_000)
    assert "editors-secret" not in repr(settings) and "admin_key=***" in repr(settings)
    with pytest.raises(SystemExit, match="RAG_UPLOAD_MAX_BYTES"):
        Settings.load(environ={"RAG_UPLOAD_MAX_BYTES": "0"})
