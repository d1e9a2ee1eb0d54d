"""Stage 6: answers with citations, yielded as typed events the CLI, UI and API only render.

The default answerer is extractive and offline: every sentence of the retrieved passages gets a
probability of holding the answer from the learned scorer (``rag.scoring``); the most probable
one is the evidence, cited ``[n]``, with up to two more nearly as probable. A short direct answer
comes first when the question asks for one (a number, a date, a person, a place). It abstains —
"not found in the articles" with the closest passages as related — when the evidence is weak,
names a different place or person than the question, or lacks the kind of fact asked for.
"""
from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, NamedTuple, Sequence, Union

import numpy as np

from .index import Hit
from .question import (article_field, asked_unit, asks_who_led_or_met, constituent, dates_event, first_person,
                       holds_post, named_terms, needs_short_answer, number_phrase, person_by_verb, post_asked,
                       question_kind, short_answer, spelled_like, with_qualifier)
from .retrieval import Retriever
from .scoring import FEATURES, Candidate, SentenceScorer, features, load_scorer
from .text import (STOPWORDS, content_terms, content_words, fold, in_vietnamese, is_english, is_vietnamese,
                   near_spellings, segment_words, toned, words)

NOT_FOUND = "Không tìm thấy thông tin này trong các bài báo."
MAX_ANSWER_CHARS = 400


@dataclass(frozen=True)
class Citation:
    n: int
    chunk_id: str
    doc_id: str
    title: str
    url: str
    outlet: str
    date: str
    text: str  # the cited passage
    quote: str  # the sentence of the passage the answer rests on ("" for related passages)
    score: float
    author: str = ""  # the article's byline, when it has one


@dataclass(frozen=True)
class Answer:
    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    short: str = ""  # the direct answer (number, date, person, place) when there is one
    standalone: str = ""  # the question as retrieved, when a follow-up was rewritten
    related: tuple[Citation, ...] = ()  # closest passages, shown when abstaining
    timings_ms: dict = field(default_factory=dict)
    answerer: str = "extractive"  # "llm" or "extractive": who wrote the text
    reason: str = ""  # why an LLM's answer is not shown as written: a key of NOTES ("" when it is)

    @property
    def note(self) -> str:
        """What the chat, the widget and the CLI show under the answer ("" for none)."""
        return NOTES.get(self.reason, "")

    def as_dict(self) -> dict:
        """The JSON shape of ``rag ask --json`` and the HTTP API."""
        return {"question": self.question, "standalone": self.standalone or self.question,
                "answer": self.text, "short": self.short,
                "abstained": self.abstained, "citations": [asdict(c) for c in self.citations],
                "related": [asdict(c) for c in self.related], "timings_ms": self.timings_ms,
                "answerer": self.answerer, "reason": self.reason, "note": self.note}


_EXTRACTED = "câu trả lời dưới đây được trích trực tiếp từ các bài báo."
# Why the LLM's answer was not shown as it wrote it (Answer.reason), as users read it.
NOTES = {
    "deadline": f"Mô hình ngôn ngữ không trả lời kịp trong thời gian cho phép; {_EXTRACTED}",
    "llm_error": f"Không kết nối được với mô hình ngôn ngữ; {_EXTRACTED}",
    "echo": f"Mô hình ngôn ngữ lặp lại lời nhắc thay vì trả lời; {_EXTRACTED}",
    "llm_not_found": f"Mô hình ngôn ngữ không tìm thấy câu trả lời trong các đoạn trích; {_EXTRACTED}",
    "no_citation": f"Câu trả lời của mô hình ngôn ngữ không dẫn nguồn; {_EXTRACTED}",
    "ungrounded": f"Các đoạn trích được dẫn không xác nhận câu trả lời của mô hình ngôn ngữ; {_EXTRACTED}",
    "partly_grounded": "Những câu mà đoạn trích được dẫn không xác nhận đã được bỏ khỏi câu trả lời.",
}


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class Sources:
    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class Final:
    answer: Answer


Event = Union[TextDelta, Sources, Final]


# --------------------------------------------------------------------------- follow-ups

_CONTINUATION = re.compile(r"^\s*(?:thế còn|vậy còn|còn|thế|vậy|rồi|và|and|what about|how about)\b[\s,]*", re.I)
_PRONOUN = re.compile(r"\b(?:ông ấy|bà ấy|ông ta|bà ta|người này|người đó|người ấy|he|she|him|her)\b", re.I)
_ANAPHORA = re.compile(r"\b(?:ấy|đó|này|kia|they|it|that|there)\b", re.I)
_ASKING = re.compile(r"\b(?:là ai|tên là gì|tên gì|bao nhiêu|khi nào|bao giờ|ở đâu|tại đâu|ai|gì|nào|đâu|mấy|"
                     r"who|whom|what|which|when|where|how many|how much|did|does|do)\b|\?", re.I)
_PLACE = re.compile(r"\b(?i:ở|tại|in|to)\s+((?:[A-ZÀ-ỸĐ][\w-]*\s?)+)")  # "ở Peru", "Ở Buenos Aires"


def standalone_question(question: str, history: Sequence[tuple[str, str]] = ()) -> str:
    """A follow-up ("Còn ở Peru thì đoàn gặp ai?", "Ông ấy hẹn khi nào…?") made standalone for
    retrieval, from the previous question and answer; other questions are returned unchanged.

    Deterministic: a pronoun for a person becomes the person the previous answer named; the
    previous question, without its question words (unless the follow-up asks none: "Còn ở Peru
    thì sao?") and with its place replaced by a newly named one, is appended as context."""
    if not history:
        return question
    follows = bool(_CONTINUATION.match(question) or _PRONOUN.search(question) or _ANAPHORA.search(question))
    if not follows:
        return question
    previous_question, previous_answer = history[-1]
    rewritten = _CONTINUATION.sub("", question, count=1)
    person = first_person(previous_answer.split(". ")[0], set()) if previous_answer else ""
    if person:
        rewritten = _PRONOUN.sub(person, rewritten)
    context = previous_question
    named = [name for name in _names_in(question) if name not in previous_question]
    if _PLACE.search(rewritten) or (named and _CONTINUATION.match(question)):
        # "Còn ở Peru…", "Còn Argentina thì sao?": the place named replaces the one asked about before
        # (the one after "ở" / "tại", else the last one named)
        earlier = [name for name in _names_in(context) if name not in question]
        if _PLACE.search(context) or not earlier:
            context = _PLACE.sub("", context)
        else:
            context = "".join(context.rsplit(earlier[-1], 1))
    if _ASKING.search(rewritten.replace("?", "")):  # it asks its own question; "… thì sao?" asks none
        context = _ASKING.sub(" ", context)
    context = " ".join(context.replace(",", " ").replace("?", " ").split())
    rewritten = rewritten[:1].upper() + rewritten[1:]
    return f"{rewritten} ({context})" if context else rewritten


def _names_in(text: str) -> list[str]:
    """Runs of capitalised words after the first word ("Đoàn Hà Nội sang Cuba" -> Hà Nội, Cuba)."""
    runs, run = [], []
    for token in text.split()[1:] + ["."]:
        word = token.strip(",.;:?!()")
        if word[:1].isupper() and word == token.strip(".?!"):
            run.append(word)
            continue
        if word[:1].isupper():  # "Argentina," ends its run
            run.append(word)
        if run:
            runs.append(" ".join(run))
        run = []
    return runs


# A clause ahead of the question, up to its punctuation ("Chào bạn, …", "Hi! …").
_LEADING_CLAUSE = re.compile(r"\s*([^,.!:;?]+)[,.!:;]+\s+(?=\S)")


def without_greeting(question: str) -> str:
    """``question`` without a leading greeting or thanks (a clause of :data:`_SMALL_TALK` that
    asks nothing, not the "Y." of "Y. pestis"): its words would draw the passages where someone
    is welcomed or thanked."""
    lead = _LEADING_CLAUSE.match(question)
    if lead and nothing_asked(lead.group(1)) and any(w.lower() in _SMALL_TALK for w in words(lead.group(1))):
        return question[lead.end():]
    return question


def with_history(stream, question: str, history: Sequence[tuple[str, str]],
                 rewrite=standalone_question) -> Iterator[Event]:
    """Run an answerer's ``stream`` on the standalone form of a follow-up (``rewrite(question,
    history)``) and without a greeting ahead of it; the final answer keeps the question as asked
    and records the rewritten one."""
    asked = without_greeting(question)
    standalone = rewrite(asked, history) if history else asked
    for event in stream(standalone):
        if isinstance(event, Final) and standalone != question:
            event = Final(dataclasses.replace(event.answer, question=question, standalone=standalone))
        yield event


# --------------------------------------------------------------------------- answering


@dataclass(frozen=True)
class _Candidate:
    hit: Hit
    sentence: str
    similarity: float  # e5 cosine with the question
    overlap: float  # share of the question's words the sentence holds (an English one's in Vietnamese)
    score: float  # the learned probability that the sentence holds the answer
    order: tuple  # passage rank, place in the passage: breaks ties the same way on every machine


class _ArticleWords(NamedTuple):
    """An article's words, for the named-terms check (:meth:`ExtractiveAnswerer._article_words`)."""
    vocab: set[str]  # its words and adjacent pairs joined, lower-cased
    names: set[str]  # the words it capitalises (all of them in an article without capitals)
    near: set[str]  # their near spellings
    passages: list  # its passages, for what a question typed without diacritics needs (below)

    @property
    def folded(self) -> set[str]:
        """Its words folded, its title's included."""
        texts = [self.passages[0].title] if self.passages else []
        return {fold(w) for text in texts + [p.text for p in self.passages] for w in words(text)}

    @property
    def inside(self) -> set[str]:
        """The words it capitalises inside a sentence, folded (none in an article without capitals)."""
        return {fold(w) for p in self.passages for sentence in p.sentences for w in words(sentence)[1:]
                if w[0].isupper()}


# Floor for a sentence's cosine similarity. A question in English or typed without diacritics,
# which e5 reads less well, may instead share half its words with the sentence.
MIN_SIMILARITY = 0.80
MIN_OVERLAP = 0.25  # share of the question's content words a Vietnamese answer sentence must hold
# A Vietnamese question more than this share of whose words (pyvi's) no article writes is about
# something else: the lowest floor that refuses no question ViQuAD dev, XQuAD-vi or the corpus
# set answers right (refusing at exactly half too, dev would lose 3 of them, XQuAD-vi 4).
MAX_UNKNOWN = 0.5
MORE_SENTENCES = 2  # after the best
ARTICLE_CACHE = 512  # articles whose words are kept for the named-terms check
# A question of who led or whom the delegation met takes a sentence naming who does it, one of
# a named person's post a sentence giving it, if its probability is at least this share of the
# best one's. Names need capitals, which the development set has not: set on the corpus set (for
# any verb, it cost one question there).
VERB_RATIO = 0.5


class ExtractiveAnswerer:
    def __init__(self, retriever: Retriever, top_k: int = 4, scorer: SentenceScorer | None = None) -> None:
        self.retriever = retriever
        self.top_k = top_k
        self.scorer = scorer or load_scorer()
        # pyvi's word segmenter loads on first use (scikit-learn and a CRF model: about 1.5 s, once
        # per process): here, when a service opens an index, not in its first request.
        segment_words("Hà Nội")
        self._words: dict[tuple[str, str], _ArticleWords] = {}

    def answer(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        final = None
        for event in self.stream(question, history):
            if isinstance(event, Final):
                final = event.answer
        return final

    def stream(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Iterator[Event]:
        """Events for ``question``; ``history`` holds earlier ``(question, answer text)`` turns."""
        before, said = history[-1] if history else ("", "")
        return with_history(lambda standalone: self._stream(standalone, said, question, before),
                            question, history)

    def _stream(self, question: str, said: str = "", follow_up: str = "",
                before: str = "") -> Iterator[Event]:
        """``said``: the previous answer to ``before``, when ``question`` is the standalone form of
        ``follow_up``."""
        if nothing_asked(question):
            yield from not_found(question, (), {"retrieve": 0.0, "answer": 0.0})
            return
        started = time.perf_counter()
        retrieval = self.retriever.retrieve(question, k=self.top_k)
        retrieved = time.perf_counter()
        field_asked = article_field(question)
        if field_asked and retrieval.hits:
            yield from self._about_article(question, field_asked, retrieval.hits[0], started, retrieved)
            return
        candidates = self._candidates(question, retrieval.hits, retrieval.query_vector)
        # A follow-up asks for something new: a sentence of the previous answer that shares few
        # of the words the follow-up adds to the question before comes last ("Ông ấy và đoàn
        # nhấn mạnh dịp kỷ niệm gì?" after "Đại sứ … là ai?"; "Còn ở Peru thì đoàn gặp ai?"
        # after "Ở Argentina, đoàn … đã hội kiến ai?"). A long sentence may have been shown cut:
        # its start is enough.
        own = set(content_terms(follow_up)) - set(content_terms(before))
        repeated = [c for c in candidates if said and c.sentence[:80] in said
                    and len(own & {fold(w) for w in words(c.sentence)}) < MIN_OVERLAP * len(own)]
        best = self._choose(question, [c for c in candidates if c not in repeated] + repeated)
        timings = {"retrieve": 1000 * (retrieved - started), "answer": 1000 * (time.perf_counter() - retrieved)}
        if best is None:
            yield from not_found(question, retrieval.hits, timings)
            return
        kind = question_kind(question)
        if kind == "number" and not asked_unit(question):  # which of its numbers: learned
            found = self.scorer.best_number(best.sentence, question)
        else:
            found = short_answer(kind, best.sentence, question)
        short = constituent(best.sentence, found)
        if kind == "number":
            short = with_qualifier(best.sentence, number_phrase(best.sentence, short))
        lead = f"{short}. " if short else ""
        evidence = _clip(best.sentence, short, content_terms(question),
                         MAX_ANSWER_CHARS - len(lead) - len(" [1]"))
        text = f"{lead}{evidence} [1]"
        citations = [cite(1, best.hit, best.sentence)]
        # More sentences, whole (cut, they lose more than they add: measured), while they fit.
        added = 0
        for extra in self._more(best, candidates):
            n = next((c.n for c in citations if c.chunk_id == extra.hit.chunk_id), len(citations) + 1)
            addition = f" {extra.sentence} [{n}]"
            if len(text) + len(addition) > MAX_ANSWER_CHARS:
                continue
            if n > len(citations):
                citations.append(cite(n, extra.hit, extra.sentence))
            text += addition
            added += 1
            if added == MORE_SENTENCES:
                break
        answer = Answer(question, text, tuple(citations), False, short=short, timings_ms=timings)
        yield Sources(answer.citations)
        yield TextDelta(text)
        yield Final(answer)

    def candidate_features(self, question: str, hits: list[Hit], query_vector) -> tuple[list[Candidate], np.ndarray]:
        """The sentences of ``hits`` and their :data:`rag.scoring.FEATURES` (also what the
        training script learns from)."""
        if not hits:
            return [], features(question, [])
        ids = [sid for hit in hits for sid in hit.sentence_ids()]
        vectors = self.retriever.index.sentence_vectors(ids) if query_vector is not None else {}
        query = np.asarray(query_vector, dtype=np.float32) if query_vector is not None else None
        candidates = []
        for rank, hit in enumerate(hits):
            for index, (sentence, sid) in enumerate(zip(hit.sentences, hit.sentence_ids())):
                vector = vectors.get(sid)
                similarity = float(vector @ query) if vector is not None and query is not None else 0.0
                candidates.append(Candidate(rank, index, len(hit.sentences), sentence, similarity, hit.score,
                                            hit.doc_id))
        return candidates, features(question, candidates)

    def _candidates(self, question: str, hits: list[Hit], query_vector) -> list[_Candidate]:
        found, matrix = self.candidate_features(question, hits, query_vector)
        probabilities = self.scorer.probabilities(matrix)
        overlaps = matrix[:, FEATURES.index("overlap")] if len(matrix) else []
        candidates = [_Candidate(hits[c.rank], c.sentence, c.similarity, float(overlap), float(probability),
                                 (c.rank, c.index))
                      for c, overlap, probability in zip(found, overlaps, probabilities)]
        return sorted(candidates, key=lambda c: (-c.score, c.order))

    def _about_article(self, question: str, field_asked: str, hit: Hit, started: float,
                       retrieved: float) -> Iterator[Event]:
        """Author, outlet or link of the article the question is about (its best passage's)."""
        domain = re.sub(r"^www\.", "", hit.url.split("/")[2]) if hit.url.count("/") >= 2 else ""
        value = {"author": hit.author, "url": hit.url,
                 "outlet": f"{hit.outlet} ({domain})" if hit.outlet and domain else hit.outlet or domain}[field_asked]
        timings = {"retrieve": 1000 * (retrieved - started), "answer": 1000 * (time.perf_counter() - retrieved)}
        citation = cite(1, hit, "")
        if value:
            answer = Answer(question, f"{value} [1]", (citation,), False, short=value, timings_ms=timings)
        else:
            answer = Answer(question, NOT_FOUND, (), True, related=(citation,), timings_ms=timings)
        yield Sources(answer.citations or answer.related)
        yield TextDelta(answer.text)
        yield Final(answer)

    def _article_words(self, hits: dict[str, Hit]) -> dict[str, _ArticleWords]:
        """The words of each article (``doc_id -> one of its hits``). Kept for the recent
        articles: a generation never changes."""
        path = str(self.retriever.index.path)
        found = {doc: self._words[path, doc] for doc in hits if (path, doc) in self._words}
        missing = [doc for doc in hits if doc not in found]
        read = self.retriever.index.articles(missing)  # one read for all of them
        for doc in missing:
            passages = read.get(doc, [])
            written = words(hits[doc].title + " " + " ".join(p.text for p in passages))
            tokens = [w.lower() for w in written]
            if len(self._words) >= ARTICLE_CACHE:
                self._words.pop(next(iter(self._words)))
            vocab = set(tokens) | {a + b for a, b in zip(tokens, tokens[1:])}
            cased = any(w[0].isupper() for w in written)
            names = {w.lower() for w in written if w[0].isupper()} if cased else vocab
            self._words[path, doc] = found[doc] = _ArticleWords(vocab, names, near_spellings(names), passages)
        return found

    @staticmethod
    def _names(term: str, pairs: list[str], article: _ArticleWords) -> bool:
        """Whether an article holds a capitalised word of the question: written as a name (with
        a capital, even one letter off), or with the same neighbour as in the question ("Hợp
        hiến" asked, "hợp hiến" written). Not the "pháp" of "biện pháp" for the "Pháp" of "Thủ
        đô của Pháp". An article without capitals (lower-cased text): any spelling counts."""
        return spelled_like(term, article.names, article.near) or any(pair in article.vocab for pair in pairs)

    def _more(self, best: _Candidate, candidates: list[_Candidate]) -> Iterator[_Candidate]:
        """Further sentences whose probability is close enough to the best one's, best first."""
        seen = {best.sentence}
        for candidate in candidates:
            if candidate.score < self.scorer.thresholds["more"] * best.score:
                return
            if candidate.sentence not in seen and (
                    not self.scorer.thresholds.get("same_article") or candidate.hit.doc_id == best.hit.doc_id):
                seen.add(candidate.sentence)
                yield candidate

    def _choose(self, question: str, candidates: list[_Candidate]) -> _Candidate | None:
        vietnamese = is_vietnamese(question)
        named = named_terms(question) if vietnamese else []
        lexical = self.retriever.index.lexical
        if any(not lexical.knows(term) and not lexical.knows_joined(term)
               and not spelled_like(term, lexical.exact_words(), lexical.near_words()) for term in named):
            return None  # asks about a place or person no article mentions
        if mostly_unknown(question, lexical):
            return None  # most of its words no article writes: it is about something else
        kind = question_kind(question)
        # Each retrieved article's words and word pairs (lower-cased), to check it is about the
        # places and people named. A question naming what no single article holds all of ("…
        # sang Argentina, Peru và … sang Cuba") spans articles: each must hold one of them.
        # Typed without diacritics (nor capitals), the places and people asked are the question's
        # words that a retrieved article writes with a capital inside a sentence, folded.
        unaccented = not vietnamese and not is_english(question)
        hits = {c.hit.doc_id: c.hit for c in candidates} if named or unaccented else {}
        articles = self._article_words(hits)
        if unaccented:
            inside = set().union(*(article.inside for article in articles.values()))
            asked = dict.fromkeys(fold(w) for w in words(question))
            named = [term for term in asked if term in inside and term not in STOPWORDS]
            folded = {doc: article.folded for doc, article in articles.items()}
            holds = {doc: [term in folded[doc] for term in named] for doc in articles}
        else:
            lowered = [w.lower() for w in words(question)]
            pairs = {term: [a + b for a, b in zip(lowered, lowered[1:]) if term in (a, b)] for term in named}
            holds = {doc: [self._names(term, pairs[term], article) for term in named]
                     for doc, article in articles.items()}
        spanning = bool(named) and not any(all(h) for h in holds.values()) and all(map(any, zip(*holds.values())))
        typed = typed_terms(question) if vietnamese else {}
        eligible = []
        for candidate in candidates:
            if candidate.similarity < MIN_SIMILARITY and (vietnamese or candidate.overlap < 0.5):
                continue  # too weak
            if vietnamese and typed_overlap(typed, candidate.sentence) < MIN_OVERLAP:
                continue  # shares too few of the question's words
            if named and not (any if spanning else all)(holds[candidate.hit.doc_id]):
                continue  # the article is about another place or person than the one asked
            eligible.append(candidate)
        if needs_short_answer(kind, question):
            # A figure, a named holder of a role or a year the articles do not give: not found.
            eligible = [c for c in eligible if short_answer(kind, c.sentence, question)]
            if kind == "date":  # ... nor the date of another event
                eligible = [c for c in eligible
                            if dates_event(c.sentence, short_answer(kind, c.sentence, question), question)]
        if not eligible:
            return None
        person, asked = post_asked(question), set(content_terms(question))
        if person:  # "Nguyễn Thị Tuyến giữ chức vụ gì?": a sentence giving her post
            return self._preferred(eligible, lambda sentence: holds_post(sentence, person))
        if kind == "person" and asks_who_led_or_met(question):  # a sentence naming who: "hội kiến ai?"
            return self._preferred(eligible, lambda sentence: person_by_verb(sentence, question, asked))
        return eligible[0]

    @staticmethod
    def _preferred(eligible: list[_Candidate], gives) -> _Candidate:
        """The most probable sentence that ``gives`` what is asked, if its probability is at
        least :data:`VERB_RATIO` of the best one's; else the best."""
        for candidate in eligible:
            if candidate.score < VERB_RATIO * eligible[0].score:
                break
            if gives(candidate.sentence):
                return candidate
        return eligible[0]


def mostly_unknown(question: str, lexical) -> bool:
    """Whether more than :data:`MAX_UNKNOWN` of the question's words are in no article: pyvi's
    words, each syllable as typed; typed without diacritics, each syllable folded ("hello",
    "gia vang hom nay"). In English, every word (through the glossary): its gaps leave words of
    questions about the articles unknown too ("memoranda", "outlet")."""
    if is_vietnamese(question):
        if first_person(question, set()):  # a person the articles name (the named-terms check came first)
            return False  # "Ngô Thị Thanh Hằng giữ chức vụ gì?": one word of pyvi's, the others unknown
        known = [lexical.knows_word(word) for word in content_words(question)  # "Bạn có khỏe không?"
                 if not (is_vietnamese(" ".join(word)) and {s.lower() for s in word} <= _SMALL_TALK)]
    elif is_english(question):
        known = [lexical.knows_folded(in_vietnamese(term)) for term in content_terms(question)]
        return bool(known) and not any(known)
    else:
        known = [lexical.knows_folded([term]) for term in content_terms(question)]
    return sum(not k for k in known) > MAX_UNKNOWN * len(known)


def typed_terms(question: str) -> dict[str, set[str]]:
    """The question's content words, folded (as the scorer's ``overlap`` counts them), each with
    the forms it was typed in with diacritics (:func:`rag.text.toned`; none when typed without)."""
    typed: dict[str, set[str]] = {}
    for word in words(question):
        if fold(word) not in STOPWORDS:
            typed.setdefault(fold(word), set()).update([toned(word)] if is_vietnamese(word) else [])
    return typed


def typed_overlap(terms: dict[str, set[str]], sentence: str) -> float:
    """The share of ``terms`` a sentence holds, a word typed with diacritics only with them ("phở"
    is not the "Phó" of "Phó Bí thư"), one typed without in any spelling: never more than the
    scorer's folded ``overlap``."""
    if not terms:
        return 0.0
    held: dict[str, set[str]] = {}
    for word in words(sentence):
        if fold(word) in terms:
            held.setdefault(fold(word), set()).add(toned(word))
    return sum(term in held and (not forms or bool(forms & held[term])) for term, forms in terms.items()) / len(terms)


# Greetings, thanks, and the words that address the assistant: a message of these alone asks
# nothing of the articles ("Xin chào", "Cảm ơn bạn", "Bạn là ai?", "Hi, who are you?").
# As typed: "cấm" is not the "cảm" of "cảm ơn" (typed without diacritics, both are "cam"), and
# in a question typed with diacritics, "Ban" (a board) is not "bạn".
_SMALL_TALK = set("xin chào chao cảm cám cam ơn on tạm tam biệt biet bạn ban ơi oi "
                  "hello hi hey thanks thank you bye ok okay".split())


def nothing_asked(question: str) -> bool:
    """A question without a word to look for ("?", "x", an emoji, "Ai?", "Xin chào"): nothing in
    the articles can answer it, and the passages a search would return are not related to it."""
    return not any(len(w) >= 2 and fold(w) not in STOPWORDS and w.lower() not in _SMALL_TALK for w in words(question))


def not_found(question: str, hits: Sequence[Hit], timings: dict) -> Iterator[Event]:
    """The events of "not found in the articles", with ``hits`` shown as related passages."""
    related = tuple(cite(n, hit, "") for n, hit in enumerate(hits, start=1))
    answer = Answer(question, NOT_FOUND, (), True, related=related, timings_ms=timings)
    yield Sources(related)
    yield TextDelta(answer.text)
    yield Final(answer)


def cite(n: int, hit: Hit, quote: str) -> Citation:
    """Passage ``hit`` cited as ``[n]``, ``quote`` being the sentence the answer rests on."""
    return Citation(n=n, chunk_id=hit.chunk_id, doc_id=hit.doc_id, title=hit.title, url=hit.url,
                    outlet=hit.outlet, date=hit.date, text=hit.text, quote=quote, score=hit.score,
                    author=hit.author)


def _clip(sentence: str, focus: str, terms: list[str], limit: int) -> str:
    """The sentence, or, when too long, its run of clauses richest in the question's words."""
    if len(sentence) <= limit:
        return sentence
    limit -= len(" …")  # room for the mark of a cut
    clauses = re.split(r"(?<=[,;:])\s+", sentence)
    wanted = set(terms)
    best, best_score = clauses[0][:limit], -1.0
    for start in range(len(clauses)):
        piece = ""
        for end in range(start, len(clauses)):
            joined = " ".join(clauses[start:end + 1])
            if len(joined) > limit:
                break
            piece = joined
        if not piece:
            continue
        score = len(wanted & {fold(w) for w in words(piece)}) + (2 if focus and focus in piece else 0)
        if score > best_score:
            best, best_score = piece, score
    return best if best.endswith((".", "!", "?")) else best.rstrip(",;: ") + " …"
