"""Optional LLM answerer (``RAG_LLM=openai|ollama``): a chat model writes the answer from the
retrieved passages, and the answer is checked before it is shown.

The model sees the passages numbered ``[1]..[n]`` in retrieval order (with title, outlet and date)
and is told, in Vietnamese, to answer briefly from them only, to cite every claim with ``[n]`` and
to say exactly :data:`rag.answer.NOT_FOUND` when they do not hold the answer. After generation
every ``[n]`` that is not one of the passages given is removed. The numbers are **not**
renumbered: ``[n]`` in the text and ``Citation.n`` are the n-th retrieved passage, as listed by the
``Sources`` event. An answer left with no valid citation, or in which the model says it does not
know, is replaced by the extractive answerer's (which may itself abstain).

``make_chat_model(settings)`` builds the LangChain chat model that ``RAG_LLM`` names, or returns
``None`` for ``RAG_LLM=none``; the LangChain integrations are imported only there.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import re
import time
from typing import Iterator, Sequence

from .answer import (NOT_FOUND, Answer, Event, ExtractiveAnswerer, Final, Sources,
                     TextDelta, cite, content_terms, not_found, nothing_asked, standalone_question, with_history)
from .index import Hit
from .retrieval import Retriever
from .settings import Settings
from .text import fold, words

log = logging.getLogger(__name__)

LLM_KINDS = ("none", "openai", "ollama")
LLM_TIMEOUT = 120.0  # seconds per request; a local model may take a while to load
INSTALL_HINT = "pip install -e '.[llm]'"

SYSTEM_PROMPT = f"""Bạn là trợ lý trả lời câu hỏi về các chuyến thăm và làm việc ở nước ngoài của \
đoàn đại biểu thành phố Hà Nội. Bạn chỉ được dùng các đoạn trích từ bài báo được đánh số [1], [2], … \
mà người dùng cung cấp.

Quy tắc:
- Chỉ trả lời bằng thông tin có trong các đoạn trích; không dùng kiến thức bên ngoài, không suy đoán.
- Mọi thông tin trong câu trả lời phải kèm số của đoạn trích chứa nó trong ngoặc vuông, đặt ngay \
sau thông tin đó, ví dụ [1] hoặc [1][2]. Chỉ dùng số của các đoạn trích đã cho.
- Nếu các đoạn trích không chứa câu trả lời, chỉ viết đúng một câu: {NOT_FOUND}
- Trả lời ngắn gọn, một đến ba câu, bằng tiếng Việt."""


class LLMAnswerer:
    """Answers with a chat model, citing the retrieved passages; same interface as ExtractiveAnswerer.

    ``stream(question)`` yields, in order:

    1. ``Sources``: every retrieved passage, numbered 1..k in retrieval order (quote ``""``);
    2. ``TextDelta`` for each chunk the model streams (reasoning in ``<think>…</think>`` is not
       shown). These are a **preview**: invalid citations are still in them;
    3. exactly one ``Final``. Its ``answer.text`` is authoritative and may differ from the
       concatenated deltas: invalid ``[n]`` removed, or, when the model cited no retrieved
       passage, said it does not know or failed, the fallback (extractive) answer, whose own
       citations are numbered from 1 independently of ``Sources``. A UI that rendered the deltas
       must therefore replace the streamed text with ``Final.answer.text`` and render sources
       from ``Final.answer.citations`` (or ``related`` when ``abstained``). When the model
       streamed nothing visible (e.g. it failed at once), the fallback's ``TextDelta`` is
       passed on before the ``Final``, so the deltas then equal the final text.

    No question or no retrieved passage: the model is not called and the fallback's own events
    (``Sources``, ``TextDelta``, ``Final``) are passed through. ``timings_ms`` holds ``retrieve``
    and ``generate`` (model time, 0 when not called), plus ``fallback`` when the fallback answered.
    """

    def __init__(self, retriever: Retriever, chat_model, top_k: int = 4,
                 fallback=ExtractiveAnswerer) -> None:
        self.retriever = retriever
        self.chat_model = chat_model
        self.top_k = top_k
        # A class is built on the same retriever; an answerer instance is used as is; None abstains.
        self.fallback = fallback(retriever, top_k=top_k) if isinstance(fallback, type) else fallback

    def answer(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        final = None
        for event in self.stream(question, history):
            if isinstance(event, Final):
                final = event.answer
        return final

    def stream(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Iterator[Event]:
        """Events for ``question``; ``history`` holds earlier ``(question, answer text)`` turns.
        With a history, the model first rewrites the question into a standalone one for
        retrieval; if it fails, the deterministic rule of :func:`standalone_question` does."""
        return with_history(self._stream, question, history, rewrite=self._standalone)

    def _standalone(self, question: str, history: Sequence[tuple[str, str]]) -> str:
        try:
            rewritten = parse_rewrite(str(self.chat_model.invoke(build_rewrite_messages(question, history)).text),
                                      question)
        except Exception as exc:  # a server down must not break the chat
            log.warning("LLM rewrite failed (%s: %s); using the rule", type(exc).__name__, exc)
            rewritten = ""
        return rewritten or standalone_question(question, history)

    def _stream(self, question: str) -> Iterator[Event]:
        if nothing_asked(question):
            yield from not_found(question, (), {"retrieve": 0.0, "generate": 0.0})
            return
        started = time.perf_counter()
        hits = self.retriever.retrieve(question, k=self.top_k).hits
        timings = {"retrieve": 1000 * (time.perf_counter() - started), "generate": 0.0}
        if not hits:
            yield from self._fallback(question, hits, timings, drop=())
            return
        yield Sources(tuple(cite(n, hit, "") for n, hit in enumerate(hits, start=1)))

        generating = time.perf_counter()
        raw, shown = "", ""
        try:
            for chunk in self.chat_model.stream(build_messages(question, hits)):
                raw += str(chunk.text)
                visible = _visible_so_far(raw)
                if len(visible) > len(shown) and visible.startswith(shown):
                    yield TextDelta(visible[len(shown):])
                    shown = visible
        except Exception as exc:  # a server down or misconfigured must not break the chat
            log.warning("LLM answer failed (%s: %s); using the extractive answer", type(exc).__name__, exc)
            raw = ""
        timings["generate"] = 1000 * (time.perf_counter() - generating)

        text = clean_citations(strip_reasoning(raw), set(range(1, len(hits) + 1)))
        cited = find_citations(text)
        if not cited or says_not_found(text):
            # Sources were sent (numbered as the model saw them); deltas only if none were.
            yield from self._fallback(question, hits, timings, drop=(Sources, TextDelta) if shown else (Sources,))
            return
        claims = _claims_by_citation(text)
        citations = tuple(cite(n, hits[n - 1], best_quote(claims[n], hits[n - 1])) for n in sorted(cited))
        yield Final(Answer(question, text, citations, False, timings_ms=timings))

    def _fallback(self, question: str, hits: list[Hit], timings: dict, drop: tuple) -> Iterator[Event]:
        """The fallback's events but those of the types in ``drop``; its Final with our timings."""
        started = time.perf_counter()
        if self.fallback is None:
            events = not_found(question, hits, {})
        else:
            events = self.fallback.stream(question)
        for event in events:
            if isinstance(event, Final):
                timings = {**timings, "fallback": 1000 * (time.perf_counter() - started)}
                yield Final(dataclasses.replace(event.answer, timings_ms=timings))
                return
            if not isinstance(event, drop):
                yield event


# --------------------------------------------------------------------------- prompt


def format_passages(hits: list[Hit]) -> str:
    blocks = []
    for n, hit in enumerate(hits, start=1):
        source = ", ".join(x for x in (hit.outlet, hit.date) if x)
        header = f"[{n}] Bài báo: {hit.title}" + (f" ({source})" if source else "")
        blocks.append(f"{header}\n{hit.text}")
    return "\n\n".join(blocks)


def build_messages(question: str, hits: list[Hit]) -> list:
    from langchain_core.messages import HumanMessage, SystemMessage

    which = "đoạn trích [1]" if len(hits) == 1 else f"các đoạn trích từ [1] đến [{len(hits)}]"
    user = (f"Các đoạn trích:\n\n{format_passages(hits)}\n\nCâu hỏi: {question}\n\n"
            f"Trả lời ngắn gọn chỉ dựa trên {which} ở trên, ghi số đoạn trích sau mỗi thông tin.")
    return [SystemMessage(SYSTEM_PROMPT), HumanMessage(user)]


REWRITE_PROMPT = """Bạn viết lại câu hỏi tiếp theo trong một cuộc hội thoại thành một câu hỏi \
đầy đủ, hiểu được mà không cần đọc cuộc hội thoại: thay đại từ (ông ấy, bà ấy, đoàn đó, ở đó…) \
bằng người, đoàn, nơi chốn đã nói tới, và giữ nguyên ý hỏi. Nếu câu hỏi đã đầy đủ, chép lại \
nguyên văn. Chỉ viết câu hỏi, không trả lời, không giải thích, giữ ngôn ngữ của câu hỏi."""
MAX_REWRITE_TURNS = 3  # the last turns are enough context; older ones only cost tokens


def build_rewrite_messages(question: str, history: Sequence[tuple[str, str]]) -> list:
    from langchain_core.messages import HumanMessage, SystemMessage

    turns = "\n".join(f"Hỏi: {q}\nĐáp: {a}" for q, a in history[-MAX_REWRITE_TURNS:])
    return [SystemMessage(REWRITE_PROMPT),
            HumanMessage(f"Cuộc hội thoại:\n{turns}\n\nCâu hỏi tiếp theo: {question}\n\nCâu hỏi đầy đủ:")]


def parse_rewrite(output: str, question: str) -> str:
    """The question in a model's rewrite output, or "" when it is unusable (empty, an answer
    rather than a question, or far longer than a question)."""
    lines = [line.strip() for line in strip_reasoning(output).splitlines() if line.strip()]
    if not lines:
        return ""
    text = re.sub(r"^(?:câu hỏi đầy đủ|câu hỏi|question)\s*:\s*", "", lines[0], flags=re.I).strip(" \"'“”")
    if not text or len(text) > 3 * len(question) + 200 or says_not_found(text):
        return ""
    return text


# --------------------------------------------------------------------------- checking the answer

# "[1]", "[1, 2]", "[1; 2]", "[1-3]", "[ 12 ]": numbers only, so "[a]" or "[1a]" is not a citation.
_GROUP = re.compile(r"\[\s*(\d{1,3}(?:\s*[-–]\s*\d{1,3})?(?:\s*[,;]\s*\d{1,3}(?:\s*[-–]\s*\d{1,3})?)*)\s*\]")
_MAX_RANGE = 20


def _numbers(group: str) -> list[int]:
    numbers = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        ends = [int(x) for x in re.split(r"\s*[-–]\s*", part)]
        if len(ends) == 2 and ends[0] <= ends[1] <= ends[0] + _MAX_RANGE:
            numbers += range(ends[0], ends[1] + 1)
        else:
            numbers += ends
    return numbers


def find_citations(text: str) -> list[int]:
    """The numbers cited in ``text``, in order of first appearance, each once."""
    return list(dict.fromkeys(n for m in _GROUP.finditer(text) for n in _numbers(m.group(1))))


def clean_citations(text: str, valid: set[int]) -> str:
    """``text`` without the cited numbers not in ``valid``; a bracket left empty goes with the
    space before it. Brackets whose numbers are all valid are left exactly as written."""
    def keep(match: re.Match) -> str:
        space = match.group("space")
        numbers = _numbers(match.group(2))
        kept = list(dict.fromkeys(n for n in numbers if n in valid))
        if not kept:  # keep the space if another bracket follows: "a [7][1]" -> "a [1]"
            return space if _GROUP.match(text, match.end()) else ""
        if kept == numbers:
            return match.group(0)
        return f"{space}[{', '.join(map(str, kept))}]"

    return re.sub(r"(?P<space>\s*)" + _GROUP.pattern, keep, text).strip()


_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.S)


def strip_reasoning(text: str) -> str:
    """Without ``<think>…</think>`` blocks (reasoning models served without a reasoning parser)."""
    return _THINK.sub("", text).strip()


def _visible_so_far(raw: str) -> str:
    """What may be shown of a partial output: no reasoning, and no trailing piece of "<think>"."""
    text = strip_reasoning(raw)
    for i in range(len("<think>") - 1, 0, -1):
        if text.endswith("<think>"[:i]):
            return text[:-i]
    return text


# The model's ways of saying it does not know, folded (no diacritics, lower case).
_NOT_FOUND_PHRASES = (fold(NOT_FOUND.rstrip(".")), "khong tim thay thong tin", "khong co thong tin",
                      "khong du thong tin", "khong de cap", "khong duoc de cap", "toi khong biet",
                      "not found in the articles", "i don't know", "i do not know")


def says_not_found(text: str) -> bool:
    """True when the answer says the passages do not hold it (anywhere in its first sentence)."""
    first = re.split(r"(?<=[.!?])\s+", _GROUP.sub("", text).strip(), maxsplit=1)[0]
    return any(phrase in fold(first) for phrase in _NOT_FOUND_PHRASES)


def _claims_by_citation(text: str) -> dict[int, str]:
    """For each cited number, the sentences of the answer that cite it (citations removed)."""
    claims: dict[int, list[str]] = {}
    for sentence in re.split(r"(?<=[.!?])\s+(?!\[)", text):  # "… gạo. [1]" stays one sentence
        for n in find_citations(sentence):
            claims.setdefault(n, []).append(_GROUP.sub("", sentence))
    return {n: " ".join(parts) for n, parts in claims.items()}


def best_quote(claim: str, hit: Hit) -> str:
    """The passage sentence sharing most content words with the claim; "" when none shares any."""
    terms = set(content_terms(claim))
    best, best_score = "", 0
    for sentence in hit.sentences or (hit.text,):
        score = len(terms & {fold(w) for w in words(sentence)})
        if score > best_score:
            best, best_score = sentence, score
    return best


# --------------------------------------------------------------------------- chat models


def make_chat_model(settings: Settings):
    """The LangChain chat model ``RAG_LLM`` names, or None for ``none``. Raises ValueError for an
    unknown kind or missing setting, ImportError (with the install command) for a missing package."""
    kind = (settings.llm or "none").strip().lower()
    if kind not in LLM_KINDS:
        raise ValueError(f"Unknown LLM {settings.llm!r} (RAG_LLM): use one of {', '.join(LLM_KINDS)}")
    if kind == "none":
        return None
    if not settings.llm_model:
        raise ValueError(f"RAG_LLM={kind} needs RAG_LLM_MODEL, the model name as the server knows it")
    if kind == "openai":
        if not settings.llm_base_url:
            raise ValueError("RAG_LLM=openai needs RAG_LLM_BASE_URL, the server's OpenAI-compatible "
                             "address, e.g. http://127.0.0.1:8000/v1")
        chat_openai = _load("langchain_openai", "ChatOpenAI")
        # Local servers ignore the key, but the OpenAI client refuses to start without one.
        return chat_openai(model=settings.llm_model, base_url=settings.llm_base_url,
                           api_key=settings.llm_api_key or "not-needed", temperature=0,
                           timeout=LLM_TIMEOUT, max_retries=1, use_responses_api=False)
    chat_ollama = _load("langchain_ollama", "ChatOllama")
    client_kwargs = {"timeout": LLM_TIMEOUT}
    if settings.llm_api_key:  # an Ollama behind an authenticating proxy
        client_kwargs["headers"] = {"Authorization": f"Bearer {settings.llm_api_key}"}
    # No base URL: the Ollama client's default ($OLLAMA_HOST, else http://127.0.0.1:11434).
    return chat_ollama(model=settings.llm_model, base_url=settings.llm_base_url or None,
                       temperature=0, client_kwargs=client_kwargs)


def _load(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise ImportError(f"RAG_LLM needs the '{module.replace('_', '-')}' package: {INSTALL_HINT}") from exc


def make_answerer(settings: Settings, retriever: Retriever):
    """The answerer ``RAG_LLM`` selects: ExtractiveAnswerer for ``none``, else LLMAnswerer."""
    chat_model = make_chat_model(settings)
    if chat_model is None:
        return ExtractiveAnswerer(retriever, top_k=settings.top_k)
    return LLMAnswerer(retriever, chat_model, top_k=settings.top_k)
