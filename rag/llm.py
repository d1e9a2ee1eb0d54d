"""Optional LLM answerer (``RAG_LLM=openai|ollama``): a chat model writes the answer from the
retrieved passages, and the answer is checked before it is shown.

The model sees the passages numbered ``[1]..[n]`` in retrieval order (with title, outlet and date)
and is told, in Vietnamese, to answer briefly from them only, to cite every claim with ``[n]`` and
to say exactly :data:`rag.answer.NOT_FOUND` when they do not hold the answer. The numbers are
**not** renumbered: ``[n]`` in the text and ``Citation.n`` are the n-th retrieved passage, as listed
by the ``Sources`` event.

What the model writes is bounded and checked before it is shown:

- at most ``RAG_LLM_MAX_TOKENS`` tokens (the server's ``max_tokens``), and the whole answer
  within ``RAG_LLM_DEADLINE`` seconds of the question, whatever the server does (the stream is
  read in a thread and cut at the deadline);
- sentence by sentence (:mod:`rag.grounding`): a sentence is shown only once it is complete and
  the passage it cites supports it; every ``[n]`` that is not a passage given is removed; an
  answer that repeats the prompt is cut at once.

An answer left with no supported sentence, one in which the model says it does not know, or one
not finished in time is replaced by the extractive answerer's (which may itself abstain), and
the final answer says so (``Answer.answerer``, ``Answer.reason``).

``make_chat_model(settings)`` builds the LangChain chat model that ``RAG_LLM`` names, or returns
``None`` for ``RAG_LLM=none``; the LangChain integrations are imported only there.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
import queue
import re
import threading
import time
from typing import Iterator, Sequence

from .answer import (NOT_FOUND, Answer, Event, ExtractiveAnswerer, Final, Sources,
                     TextDelta, cite, content_terms, not_found, nothing_asked, standalone_question, with_history)
from .grounding import CITATION as _GROUP
from .grounding import Sentence, cited_numbers as _numbers, echoes_prompt, find_citations, shingles, split_answer, support
from .index import Hit
from .retrieval import Retriever
from .settings import Settings
from .text import fold, words

log = logging.getLogger(__name__)

LLM_KINDS = ("none", "openai", "ollama")
DEFAULT_DEADLINE = Settings.llm_deadline
REWRITE_SHARE = 0.3  # of the deadline, at most, for rewriting a follow-up
INSTALL_HINT = "pip install -e '.[llm]'"

RULES = f"""Quy tắc:
- Chỉ trả lời bằng thông tin có trong các đoạn trích; không dùng kiến thức bên ngoài, không suy đoán.
- Mọi thông tin trong câu trả lời phải kèm số của đoạn trích chứa nó trong ngoặc vuông, đặt ngay \
sau thông tin đó, ví dụ [1] hoặc [1][2]. Chỉ dùng số của các đoạn trích đã cho.
- Nếu các đoạn trích không chứa câu trả lời, chỉ viết đúng một câu: {NOT_FOUND}
- Trả lời ngắn gọn, một đến ba câu, bằng tiếng Việt."""
SYSTEM_PROMPT = f"""Bạn là trợ lý trả lời câu hỏi về các chuyến thăm và làm việc ở nước ngoài của \
đoàn đại biểu thành phố Hà Nội. Bạn chỉ được dùng các đoạn trích từ bài báo được đánh số [1], [2], … \
mà người dùng cung cấp.

{RULES}"""
ASK = "Trả lời ngắn gọn chỉ dựa trên {which} ở trên, ghi số đoạn trích sau mỗi thông tin."
# Runs of words of the prompt's instructions (not the persona, which names the city and its
# delegations as answers do, nor the "not found" sentence, which the model is asked to write).
INSTRUCTIONS = shingles(RULES.replace(NOT_FOUND, " ") + "\n" + ASK.format(which="các đoạn trích"))


class DeadlineExceeded(Exception):
    """The model had not finished when the answer's deadline passed."""


def bounded(chunks, until: float) -> Iterator:
    """The items of ``chunks()`` (a model's stream), read in a thread so that waiting for the next
    one never goes past ``until`` (``time.monotonic()``): then DeadlineExceeded. The model's own
    errors are raised here. When the caller stops (deadline, or it has seen enough), the thread
    closes the model's stream at its next chunk (closing the HTTP response), or at the client's
    read timeout if the server sends nothing more."""
    items: queue.Queue = queue.Queue()
    stop = threading.Event()

    def produce() -> None:
        stream = None
        try:
            stream = chunks()
            for chunk in stream:
                if stop.is_set():
                    break
                items.put(("chunk", chunk))
            items.put(("end", None))
        except BaseException as exc:  # passed to the caller
            items.put(("error", exc))
        finally:
            if stream is not None and hasattr(stream, "close"):
                stream.close()

    threading.Thread(target=produce, name="llm-stream", daemon=True).start()
    try:
        while True:
            left = until - time.monotonic()
            try:
                if left <= 0:
                    raise queue.Empty
                kind, value = items.get(timeout=left)
            except queue.Empty:
                raise DeadlineExceeded from None
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


class LLMAnswerer:
    """Answers with a chat model, citing the retrieved passages; same interface as ExtractiveAnswerer.

    ``stream(question)`` yields, in order:

    1. ``Sources``: every retrieved passage, numbered 1..k in retrieval order (quote ``""``);
    2. ``TextDelta`` for each sentence of the model's answer once it is complete and supported
       by the passages it cites (:func:`rag.grounding.support`); unsupported sentences are never
       shown, and invalid ``[n]`` are removed before a sentence is. Reasoning in
       ``<think>…</think>`` is not shown;
    3. exactly one ``Final``, authoritative. With ``answerer="llm"`` its text is the shown
       sentences (``reason="partly_grounded"`` when some were dropped). Otherwise it is the
       fallback (extractive) answer, ``answerer="extractive"``, with ``reason`` saying why:
       ``deadline`` (no complete answer within ``deadline`` seconds of the question, rewriting
       a follow-up included), ``llm_error``, ``echo`` (the model repeated the prompt: the stream
       is cut at once), ``llm_not_found`` (the model said the passages do not answer),
       ``no_citation`` or ``ungrounded`` (no sentence supported by the passage it cites). The
       fallback's citations are numbered from 1 independently of ``Sources``, so a UI renders
       sources from ``Final.answer.citations`` (or ``related`` when ``abstained``); when
       sentences were shown before the fallback, the Final's text replaces them; when none were,
       the fallback's ``TextDelta`` is passed on, so the deltas equal the final text.

    No question or no retrieved passage: the model is not called and the fallback's own events
    are passed through. ``timings_ms`` holds ``retrieve`` and ``generate`` (model time, 0 when
    not called), plus ``fallback`` when the fallback answered.
    """

    def __init__(self, retriever: Retriever, chat_model, top_k: int = 4,
                 fallback=ExtractiveAnswerer, deadline: float = DEFAULT_DEADLINE) -> None:
        self.retriever = retriever
        self.chat_model = chat_model
        self.top_k = top_k
        self.deadline = deadline
        # A class is built on the same retriever; an answerer instance is used as is; None abstains.
        # An ExtractiveAnswerer fallback has loaded its word segmenter already: when the deadline
        # has passed it answers in milliseconds, not seconds.
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
        retrieval (within :data:`REWRITE_SHARE` of the deadline); if it fails or is late, the
        deterministic rule of :func:`standalone_question` does."""
        until = time.monotonic() + self.deadline
        return with_history(lambda standalone: self._stream(standalone, until), question, history,
                            rewrite=lambda q, h: self._standalone(q, h, until))

    def _standalone(self, question: str, history: Sequence[tuple[str, str]], until: float) -> str:
        try:
            own = min(until, time.monotonic() + REWRITE_SHARE * self.deadline)
            output = "".join(str(chunk.text) for chunk in bounded(
                lambda: self.chat_model.stream(build_rewrite_messages(question, history)), own))
            rewritten = parse_rewrite(output, question)
        except Exception as exc:  # a server down or late must not break the chat
            log.warning("LLM rewrite failed (%s: %s); using the rule", type(exc).__name__, exc)
            rewritten = ""
        return rewritten or standalone_question(question, history)

    def _stream(self, question: str, until: float) -> Iterator[Event]:
        if nothing_asked(question):
            yield from not_found(question, (), {"retrieve": 0.0, "generate": 0.0})
            return
        started = time.perf_counter()
        hits = self.retriever.retrieve(question, k=self.top_k).hits
        timings = {"retrieve": 1000 * (time.perf_counter() - started), "generate": 0.0}
        if not hits:
            yield from self._fallback(question, hits, timings, drop=(), reason="")
            return
        yield Sources(tuple(cite(n, hit, "") for n, hit in enumerate(hits, start=1)))

        generating = time.perf_counter()
        checker = SentenceChecker(hits, question, self._article_text)
        raw, shown, reason = "", False, ""
        try:
            for chunk in bounded(lambda: self.chat_model.stream(build_messages(question, hits)), until):
                raw += str(chunk.text)
                for piece in checker.feed(_visible_so_far(raw), final=False):
                    yield TextDelta(piece)
                    shown = True
                if checker.reason:  # echo, or "not found": nothing more is worth reading
                    break
            else:
                for piece in checker.feed(strip_reasoning(raw), final=True):
                    yield TextDelta(piece)
                    shown = True
        except DeadlineExceeded:
            reason = "deadline"
            log.warning("LLM answer not complete within RAG_LLM_DEADLINE=%gs; using the extractive answer",
                        self.deadline)
        except Exception as exc:  # a server down or misconfigured must not break the chat
            reason = "llm_error"
            log.warning("LLM answer failed (%s: %s); using the extractive answer", type(exc).__name__, exc)
        timings["generate"] = 1000 * (time.perf_counter() - generating)

        reason = reason or checker.outcome()
        if reason and reason != "partly_grounded":
            if reason not in ("llm_not_found",):
                log.warning("LLM answer rejected (%s); using the extractive answer", reason)
            # Sources were sent (numbered as the model saw them); deltas only if none were.
            yield from self._fallback(question, hits, timings, drop=(Sources, TextDelta) if shown else (Sources,),
                                      reason=reason)
            return
        text = checker.text()
        claims = _claims_by_citation(text)
        citations = tuple(cite(n, hits[n - 1], best_quote(claims[n], hits[n - 1])) for n in sorted(claims))
        yield Final(Answer(question, text, citations, False, timings_ms=timings, answerer="llm", reason=reason))

    def _article_text(self, doc_id: str) -> str:
        """The whole text of an article of the index ("" when it cannot be read)."""
        try:
            return "\n".join(hit.text for hit in self.retriever.index.article(doc_id))
        except Exception:  # an index without article lookup: the passage alone is checked
            return ""

    def _fallback(self, question: str, hits: list[Hit], timings: dict, drop: tuple, reason: str) -> Iterator[Event]:
        """The fallback's events but those of the types in ``drop``; its Final with our timings
        and ``reason``."""
        started = time.perf_counter()
        if self.fallback is None:
            events = not_found(question, hits, {})
        else:
            events = self.fallback.stream(question)
        for event in events:
            if isinstance(event, Final):
                timings = {**timings, "fallback": 1000 * (time.perf_counter() - started)}
                yield Final(dataclasses.replace(event.answer, timings_ms=timings, answerer="extractive",
                                                reason=reason))
                return
            if not isinstance(event, drop):
                yield event


class SentenceChecker:
    """Decides, as a model's answer streams, which of its sentences are shown: each must cite a
    passage it was given that supports it (:func:`rag.grounding.support`). A sentence without a
    citation is checked against the passages the next cited sentence cites (the previous one's
    at the end), and shown with them. A sentence repeating the prompt, or a first sentence
    saying the passages do not answer, rejects the answer whole (:attr:`reason`)."""

    def __init__(self, hits: list[Hit], question: str, article_text=lambda doc_id: "") -> None:
        self.sources = {n: f"{hit.title}\n{hit.outlet} {hit.date}\n{hit.text}" for n, hit in enumerate(hits, start=1)}
        self.documents = {n: hit.doc_id for n, hit in enumerate(hits, start=1)}
        self.article_text = article_text
        self._articles: dict[str, str] = {}
        self.question = question
        self.screened = 0  # sentences checked for an echo
        self.decided = 0  # sentences decided (shown or dropped)
        self.kept: list[str] = []  # shown sentences, citations cleaned
        self.dropped = 0
        self.judged = 0  # sentences checked against a passage
        self.reason = ""  # "echo" or "llm_not_found": the whole answer is rejected
        self._last_cited: tuple[int, ...] = ()

    def feed(self, text: str, final: bool) -> list[str]:
        """The text to show for the sentences of ``text`` (the answer so far; ``final``: all of
        it) decided by this call, each piece with the separator before it."""
        sentences = split_answer(text, final)
        for i in range(self.screened, len(sentences)):
            if i == 0 and says_not_found(sentences[i].text):
                self.reason = "llm_not_found"
            elif echoes_prompt(sentences[i].text, INSTRUCTIONS):
                self.reason = "echo"
            if self.reason:
                return []
        self.screened = len(sentences)
        if not final and echoes_prompt(_tail(text, sentences), INSTRUCTIONS):
            self.reason = "echo"  # an echo without a line break still stops early
            return []
        pending = sentences[self.decided:]
        pieces: list[str] = []
        while pending:
            cited = next((i for i, sentence in enumerate(pending) if self._valid(sentence)), None)
            if cited is None and not final:
                break  # sentences without a valid citation wait for the next cited one
            batch = pending if cited is None else pending[:cited + 1]
            donor = self._valid(batch[-1]) or self._last_cited
            for sentence in batch:
                pieces += self._decide(sentence, donor)
            pending = pending[len(batch):]
        return pieces

    def _valid(self, sentence: Sentence) -> tuple[int, ...]:
        return tuple(n for n in sentence.cited if n in self.sources)

    def _decide(self, sentence: Sentence, donor: tuple[int, ...]) -> list[str]:
        self.decided += 1
        own = self._valid(sentence)
        if sentence.cited and not own:  # it cites only passages it was not given
            self.dropped += 1
            return []
        numbers = own or donor
        if not numbers:
            self.dropped += 1
            return []
        self.judged += 1
        source = "\n".join(self.sources[n] for n in numbers)
        for doc in {self.documents[n] for n in numbers} - set(self._articles):
            self._articles[doc] = self.article_text(doc)
        context = "\n".join(self._articles[self.documents[n]] for n in numbers)
        if not support(sentence.text, source, self.question, context).supported:
            self.dropped += 1
            return []
        if own:
            self._last_cited = own
            shown = clean_citations(sentence.text, set(self.sources))
        else:  # shown with the passages that support it
            marks = "".join(f"[{n}]" for n in numbers)
            body = sentence.text.rstrip()
            end = len(body.rstrip(".!?…"))
            shown = f"{body[:end].rstrip()} {marks}{body[end:]}"
        piece = (sentence.separator if self.kept else "") + shown
        self.kept.append(piece)
        return [piece]

    def text(self) -> str:
        return "".join(self.kept)

    def outcome(self) -> str:
        """"" (all shown), ``partly_grounded``, or why the answer is rejected."""
        if self.reason:
            return self.reason
        if self.kept:
            return "partly_grounded" if self.dropped else ""
        return "ungrounded" if self.judged else "no_citation"


def _tail(text: str, sentences: list[Sentence]) -> str:
    """The sentence of ``text`` still being written, after its ``sentences`` complete ones."""
    everything = split_answer(text, final=True)
    return everything[-1].text if len(everything) > len(sentences) else ""


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
    user = f"Các đoạn trích:\n\n{format_passages(hits)}\n\nCâu hỏi: {question}\n\n{ASK.format(which=which)}"
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
        # ChatOpenAI sends the limit as "max_completion_tokens", which some OpenAI-compatible
        # servers (llama-cpp-python's) ignore: "max_tokens" goes too. No read may outlast the
        # deadline of the whole answer.
        return chat_openai(model=settings.llm_model, base_url=settings.llm_base_url,
                           api_key=settings.llm_api_key or "not-needed", temperature=0,
                           max_tokens=settings.llm_max_tokens, extra_body={"max_tokens": settings.llm_max_tokens},
                           timeout=settings.llm_deadline, max_retries=1, use_responses_api=False)
    chat_ollama = _load("langchain_ollama", "ChatOllama")
    client_kwargs = {"timeout": settings.llm_deadline}
    if settings.llm_api_key:  # an Ollama behind an authenticating proxy
        client_kwargs["headers"] = {"Authorization": f"Bearer {settings.llm_api_key}"}
    # No base URL: the Ollama client's default ($OLLAMA_HOST, else http://127.0.0.1:11434).
    return chat_ollama(model=settings.llm_model, base_url=settings.llm_base_url or None,
                       temperature=0, num_predict=settings.llm_max_tokens, client_kwargs=client_kwargs)


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
    return LLMAnswerer(retriever, chat_model, top_k=settings.top_k, deadline=settings.llm_deadline)
