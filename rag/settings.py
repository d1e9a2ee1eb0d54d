"""One settings object, built once from ``RAG_*`` environment variables and CLI flags.

Nothing here runs at import time: call :meth:`Settings.load` in an entry point and pass the
result down. CLI flags win over the environment, the environment wins over the defaults.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Mapping

DEFAULT_EMBEDDING = "e5-small-q4"
# A variable whose name holds one of these words is a secret: never written or printed in clear.
SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD")


def is_secret(name: str) -> bool:
    """Whether a setting or ``RAG_*`` variable named ``name`` holds a secret."""
    return any(word in name.upper() for word in SECRET_WORDS)


def masked(name: str, value) -> str:
    """``value`` as the product writes or prints it: ``***`` for a non-empty secret."""
    return "***" if is_secret(name) and value not in ("", None) else str(value)


@dataclass(frozen=True)
class Settings:
    #: Folder of articles (``.txt``, ``.md``, ``.jsonl``, ``.html``, ``.pdf``, ``.docx``) to index.
    #: ``RAG_CORPUS_DIR``.
    corpus_dir: Path = Path("corpus")
    #: Folder that holds the persisted index (Chroma + manifest). ``RAG_STORE_DIR``.
    store_dir: Path = Path("vectorstore")
    #: Embedder: ``e5-small-q4`` (bundled, offline) or ``sentence-transformers:<name-or-path>``.
    #: ``RAG_EMBEDDING``.
    embedding: str = DEFAULT_EMBEDDING
    #: Prefixes for the sentence-transformers backend (e5-style models want
    #: ``query: `` / ``passage: ``). ``RAG_QUERY_PREFIX`` / ``RAG_PASSAGE_PREFIX``.
    query_prefix: str = ""
    passage_prefix: str = ""
    #: Target passage size in words (Vietnamese syllables); sentences are never cut to meet it.
    #: Chosen on ViQuAD dev (README, "How it works"). ``RAG_CHUNK_WORDS``.
    chunk_words: int = 160
    #: Retrieval: ``hybrid`` (dense + BM25), or one side alone: ``dense``, ``lexical``.
    #: ``RAG_RETRIEVAL``.
    retrieval: str = "hybrid"
    #: Passages returned by a search. ``RAG_TOP_K``.
    top_k: int = 4
    #: Where the chat listens. ``RAG_HOST`` / ``RAG_PORT``; loopback unless asked otherwise.
    host: str = "127.0.0.1"
    port: int = 7860
    #: Sentences embedded per call while ingesting. ``RAG_EMBED_BATCH``.
    embed_batch: int = 16
    #: Optional LLM answerer: ``none`` (extractive, offline), ``openai`` (any OpenAI-compatible
    #: server: vLLM, llama.cpp, Ollama, LM Studio) or ``ollama`` (Ollama's own API). ``RAG_LLM``.
    llm: str = "none"
    #: Server address, e.g. ``http://127.0.0.1:8000/v1`` (openai) or ``http://127.0.0.1:11434``
    #: (ollama). ``RAG_LLM_BASE_URL``.
    llm_base_url: str = ""
    #: Model name as the server knows it. ``RAG_LLM_MODEL``.
    llm_model: str = ""
    #: API key, when the server wants one. ``RAG_LLM_API_KEY``.
    llm_api_key: str = ""
    #: Most tokens the model may write for one answer (sent as ``max_tokens``); default 256,
    #: room for the one to three sentences it is asked for. ``RAG_LLM_MAX_TOKENS``.
    llm_max_tokens: int = 256
    #: Seconds from the question to the LLM's complete answer, rewriting a follow-up included;
    #: past it the stream is cut and the extractive answer is shown, with a note. Default 30.
    #: ``RAG_LLM_DEADLINE``.
    llm_deadline: float = 30.0
    #: Web pages of other origins allowed to embed the widget and call the HTTP API, comma-separated
    #: (``https://intranet.example.vn,http://10.0.0.5:8080``; ``*`` allows any). Empty: the
    #: server's own origin only. ``RAG_ALLOWED_ORIGINS``.
    allowed_origins: str = ""
    #: When set, the API and the chat need ``Authorization: Bearer <key>``, a short-lived token
    #: signed with it (``POST /api/token``; the widget's ``data-token``) or the chat's session
    #: cookie (set by its key form). ``RAG_API_KEY``.
    api_key: str = ""
    #: Key of the editors who add articles from the running service (``POST /api/articles``, the
    #: chat's "Thêm bài viết" panel, after signing in at ``/admin``). Empty: adding articles
    #: there is refused. ``RAG_ADMIN_KEY``.
    admin_key: str = ""
    #: Largest file (or page) those editors may upload, in bytes; the request around it may be
    #: 64 KiB larger, and only with the admin key. ``RAG_UPLOAD_MAX_BYTES``.
    upload_max_bytes: int = 5_000_000
    #: Lifetime of a signed token in seconds, and the longest lifetime accepted. ``RAG_TOKEN_TTL``.
    token_ttl: int = 3600
    #: Questions (and ratings) per minute per client address, across the chat, the widget and the
    #: API; 0 turns the limit off. ``RAG_RATE_LIMIT``.
    rate_limit: int = 30
    #: Port of the demo intranet page that shows the widget (``rag serve --demo-port``); 0: none.
    #: ``RAG_DEMO_PORT``.
    demo_port: int = 0
    #: Largest article file read from the corpus, in bytes (for ``.jsonl``: the largest line); a
    #: larger one is reported as ``FAILED file: … too large`` with its size and skipped. Also the
    #: largest page ``rag ingest --url`` fetches. ``RAG_MAX_ARTICLE_BYTES``.
    max_article_bytes: int = 5_000_000
    #: Host names the server answers to (the ``Host`` header), comma-separated
    #: (``chat.intranet.vn,10.0.0.5``; ``*.intranet.vn`` a domain's names; ``*`` any). Empty: the
    #: bind address, ``localhost``, ``127.0.0.1`` and ``[::1]``, or any host when bound to a
    #: wildcard (``0.0.0.0``, with a warning). Stops DNS rebinding. ``RAG_ALLOWED_HOSTS``.
    allowed_hosts: str = ""
    #: Reverse proxies whose ``X-Forwarded-For`` is believed, comma-separated addresses or CIDRs
    #: (``127.0.0.1,10.0.0.0/24``). Empty: none; the client is the connection's address.
    #: ``RAG_TRUSTED_PROXIES``.
    trusted_proxies: str = ""
    #: ``rag ingest --url``: addresses that are not public (loopback, private, link-local, …) may
    #: be fetched when ``1`` (any) or when in this comma-separated list of addresses and CIDRs
    #: (``10.0.0.5,192.168.1.0/24``). Empty: refused before any connection, so the chatbot cannot
    #: be made a proxy into the intranet. ``RAG_FETCH_ALLOW_PRIVATE``.
    fetch_allow_private: str = ""
    #: Seconds a page fetch may take in all (connecting, redirects, reading). ``RAG_FETCH_TIMEOUT``.
    fetch_timeout: int = 20

    #: Processes that answer questions behind the one HTTP process of ``rag serve`` (rag.workers);
    #: 0: one per core; 1: answer in the HTTP process itself. ``RAG_WORKERS`` / ``--workers``.
    workers: int = 0
    #: A Chroma server holding the index, e.g. ``http://10.0.0.5:8000`` (started with ``chroma run
    #: --path DIR --port 8000``), instead of the embedded store: ``rag ingest`` writes it and every
    #: ``rag serve`` replica, on any machine, serves it and follows its new generations (rag.remote).
    #: The store folder then holds only local caches (BM25 counts) and the ingest's journal. A
    #: replica does not index its corpus folder: ``rag ingest`` does. Empty: the embedded store.
    #: ``RAG_CHROMA_URL``.
    chroma_url: str = ""

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides) -> "Settings":
        """Defaults < ``RAG_*`` variables < ``overrides`` (CLI flags; ``None`` means not given)."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f"RAG_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, f.default, raw)
        for name, value in overrides.items():
            if value is not None:
                values[name] = _convert(name, getattr(cls, name), value)
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        return replace(self, **changes)

    def __repr__(self) -> str:  # a logged or printed Settings never shows a key
        shown = ", ".join(f"{f.name}={'***' if is_secret(f.name) and getattr(self, f.name) else repr(getattr(self, f.name))}"
                          for f in fields(self))
        return f"Settings({shown})"


_ZERO_MEANS_OFF = {"rate_limit", "demo_port", "workers"}  # workers: 0 means one per core


def _convert(name: str, default, raw):
    try:
        if isinstance(default, Path):
            return Path(raw).expanduser()
        if isinstance(default, bool):
            return str(raw).lower() in {"1", "true", "yes", "on"}
        if isinstance(default, float):
            value = float(raw)
            if not 0 < value < float("inf"):
                raise ValueError
            return value
        if isinstance(default, int):
            value = int(raw)
            if value < 0 or (value == 0 and name not in _ZERO_MEANS_OFF):
                raise ValueError
            return value
    except ValueError:
        raise SystemExit(f"Invalid value for {name} (RAG_{name.upper()}): {raw!r}") from None
    return raw
