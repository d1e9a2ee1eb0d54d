"""Checking a generated answer against the passages it cites, sentence by sentence (pure functions).

An LLM answer is split into sentences, each with the ``[n]`` it cites (``split_answer``); a
sentence is **supported** when the passages it cites (with their articles' titles) hold every
number and every name it states, and most of its content words (``support``). Comparison is on
folded words (``rag.text.fold``: no diacritics, lower case), so "Ha Noi" matches "Hà Nội".
``echoes_prompt`` recognises an answer that repeats the prompt's own scaffolding (the passage
headers, the labels, the rules) instead of answering.

Nothing here calls a model or reads settings: rag.llm applies these checks to what a model
streams, and benchmarks/grounding.py measures them on scripted outputs.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .text import STOPWORDS, _ABBREVIATIONS, fold, is_vietnamese, near_spellings, one_letter_less, segment_words, words

# --------------------------------------------------------------------------- citations

# "[1]", "[1, 2]", "[1; 2]", "[1-3]", "[ 12 ]": numbers only, so "[a]" or "[1a]" is not a citation.
CITATION = re.compile(r"\[\s*(\d{1,3}(?:\s*[-–]\s*\d{1,3})?(?:\s*[,;]\s*\d{1,3}(?:\s*[-–]\s*\d{1,3})?)*)\s*\]")
_MAX_RANGE = 20


def cited_numbers(group: str) -> list[int]:
    """The numbers inside one citation bracket (without the brackets): "1, 3-4" -> [1, 3, 4]."""
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
    return list(dict.fromkeys(n for m in CITATION.finditer(text) for n in cited_numbers(m.group(1))))


def without_citations(text: str) -> str:
    return " ".join(CITATION.sub(" ", text).split())


# --------------------------------------------------------------------------- sentences


@dataclass(frozen=True)
class Sentence:
    text: str  # as written, its citations included ("Hà Nội tặng 2000 tấn gạo [1].")
    cited: tuple[int, ...]  # the numbers it cites, as written (valid or not)
    separator: str = ""  # what stood before it: "" for the first, else " " or "\n"


_CITES = r"(?:\s*" + CITATION.pattern + r")*"
# A sentence ends at . ! ? (or … before a capital or a digit; closing quotes allowed) and the
# citations right after it, when more text follows; or at a line break. "… gạo. [1] Hai bên …"
# splits after "[1]"; "các lĩnh vực,… và đặc biệt" does not split.
_BOUNDARY = re.compile(r"(?:[.!?]+|…(?=\S*\s+[\"'“‘(\-–]*[^\W\d_a-zà-ỹđ]|\S*\s+\d))[\"'”’)]*" + _CITES
                       + r"(?=\s+[^\s\[])|" + _CITES + r"[ \t]*(?=\n)")


def _abbreviation_before(text: str, end: int) -> bool:
    """Whether the full stop ending at ``end`` closes an abbreviation ("TP.", initials "A.")."""
    match = re.search(r"(\w[\w.]*)\.$", text[:end])
    word = match.group(1).lower() if match else ""
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_answer(text: str, final: bool = True) -> list[Sentence]:
    """``text`` as sentences, each with the citations written after it. With ``final=False``
    (text still streaming) the last, possibly unfinished, sentence is left out."""
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.group(0).startswith(".") and _abbreviation_before(text, match.start() + 1):
            continue
        piece = text[start:match.end()]
        if piece.strip():
            sentences.append(_sentence(piece, text[:start]))
        start = match.end()
    if final and text[start:].strip():
        sentences.append(_sentence(text[start:], text[:start]))
    return sentences


def _sentence(piece: str, before: str) -> Sentence:
    gap = before[len(before.rstrip()):] + piece[:len(piece) - len(piece.lstrip())]
    separator = "" if not before.strip() else ("\n" if "\n" in gap else " ")
    return Sentence(piece.strip(), tuple(find_citations(piece)), separator)


# --------------------------------------------------------------------------- support

# Words that speak about the passages rather than about the visits: "Theo đoạn trích [1], …".
META_WORDS = {fold(w) for w in words(
    "theo đoạn trích bài báo nguồn thông tin cho biết nêu rõ đề cập viết rằng như sau ghi nhận")}
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NUMBER_WORDS = {"một": "1", "hai": "2", "ba": "3", "bốn": "4", "tư": "4", "sáu": "6", "bảy": "7",
                 "tám": "8", "chín": "9", "mười": "10"}  # not "năm" (five, and year)
MIN_COVERAGE = 0.6  # share of a sentence's content words its passages must hold (all its nouns)


def numbers(text: str) -> set[str]:
    """The numbers written in digits, thousands separators dropped ("2.000" -> "2000", the
    Vietnamese way; "2,5" stays a decimal), date parts apart ("30/10" -> "30", "10")."""
    found = set()
    for raw in _NUMBER.findall(text):
        if re.fullmatch(r"\d{1,3}(?:[.,]\d{3})+", raw):
            found.add(re.sub(r"[.,]", "", raw))
        else:
            found.add(raw.replace(",", ".").lstrip("0") or "0")
    return found


def _found_name(name: str, source_words: set[str], near: set[str]) -> bool:
    """A name of the sentence in the source, or (6 letters or more) one letter off a word of it:
    "Viettel" for the article's "Vietel"."""
    if name in source_words:
        return True
    return len(name) >= 6 and (name in near or not one_letter_less(name).isdisjoint(source_words))


@dataclass(frozen=True)
class Verdict:
    supported: bool
    missing: tuple[str, ...] = ()  # numbers, names or content words the passages do not hold
    coverage: float = 0.0  # share of the content words found


# pyvi's parts of speech: nouns (not classifiers: "bà", "cuộc"), and the content tags checked at all.
NOUNS = {"N", "Np", "Nu", "Ny", "Nb"}
CONTENT_TAGS = NOUNS | {"V", "A", "Nc", "X"}
# Nouns that refer back to what the passage names ("hai bên", "hai nước", "đoàn", "đồng chí").
GENERIC_NOUNS = {fold(w) for w in ("bên", "nước", "phía", "đoàn", "thành phố", "thủ đô", "đồng chí", "người",
                                  "chuyến", "việc", "dịp", "hai bên", "hai nước")}


def terms(text: str) -> list[tuple[tuple[str, ...], str]]:
    """The content words of ``text``: each word as its folded syllables ("đường sắt" stays one
    word, by pyvi's segmentation) with its part of speech (pyvi's tags; "X" for text without
    diacritics, which pyvi cannot read). Function words, words about the passages and numbers
    are left out."""
    if is_vietnamese(text):
        from pyvi import ViPosTagger

        tokens, tags = ViPosTagger.postagging(segment_words(text))
    else:
        tokens = words(text)
        tags = ["X"] * len(tokens)
    found = {}
    for token, tag in zip(tokens, tags):
        syllables = tuple(fold(s) for s in words(token.replace("_", " ")))
        if tag in CONTENT_TAGS and syllables and any(
                s not in STOPWORDS and s not in META_WORDS and not s.isdigit() for s in syllables):
            found.setdefault(syllables, tag)
    return list(found.items())


def support(claim: str, source: str, question: str = "", context: str = "") -> Verdict:
    """Whether ``source`` (the cited passages, with their titles) supports ``claim`` (one
    sentence; its citations are ignored). Every number, every name (a capitalised word; of 6
    letters or more it may be one letter off) and every noun (:func:`terms`: a word of several
    syllables counts only where they stand together) of the claim must be in the source, and at
    least :data:`MIN_COVERAGE` of its content words (verbs and adjectives may be the model's
    own). Generic nouns that refer back ("hai bên", "nước", "đoàn") need not be there, nor the
    names ``question`` gives that ``context`` (the cited passage's whole article) holds:
    "Việt Nam và Peru kỷ niệm…" from a passage that says "hai nước". A sentence that states
    nothing ("Đúng vậy.") is not supported."""
    plain = without_citations(claim)
    written = words(plain)
    syllables = [fold(w) for w in words(source)]
    source_words = set(syllables)
    source_numbers = numbers(source) | {d for w in words(source.lower()) if (d := _NUMBER_WORDS.get(w))}
    strict = [n for n in sorted(numbers(plain)) if n not in source_numbers]
    # Names: capitalised words after the first (which is capitalised anyway).
    names = dict.fromkeys(w for w in written[1:] if w[:1].isupper() and not w.isdigit())
    near = near_spellings(w for w in source_words if len(w) >= 6)
    content = terms(plain)
    longest = max((len(t) for t, _ in content), default=1)
    runs = {tuple(syllables[i:i + n]) for n in range(1, longest + 1) for i in range(len(syllables) - n + 1)}
    absent = [t for t, _ in content if t not in runs]
    # Names the question gives and the article holds ("Việt Nam", "Peru"); never its other words.
    given = {fold(w) for w in words(question) if w[:1].isupper()} & {fold(w) for w in words(context)}
    strict += [w for w in names if not _found_name(fold(w), source_words, near) and fold(w) not in given]
    strict += [" ".join(t) for t, tag in content if t in absent and (
        tag == "Np" and not all(_found_name(s, source_words, near) or s in given for s in t)
        or tag in NOUNS - {"Np"} and " ".join(t) not in GENERIC_NOUNS)]
    coverage = 1 - len(absent) / len(content) if content else 0.0
    supported = bool(content or numbers(plain)) and not strict and coverage >= MIN_COVERAGE
    missing = list(dict.fromkeys(strict + [" ".join(t) for t in absent if " ".join(t) not in {fold(m) for m in strict}]))
    return Verdict(supported, tuple(missing), round(coverage, 3))


# --------------------------------------------------------------------------- prompt echo

# Labels of the prompt, folded: an answer holding one is repeating the prompt, not answering.
_LABELS = re.compile(r"(?:^|\W)(?:cac doan trich|bai bao|cau hoi|quy tac|tra loi)\s*:|^\s*\[\d+\]\s*bai bao\b", re.M)
SHINGLE = 6  # words in a row shared with the prompt's instructions that make an echo


def shingles(text: str, n: int = SHINGLE) -> frozenset[tuple[str, ...]]:
    """Every run of ``n`` folded words of ``text``."""
    folded = [fold(w) for w in words(text)]
    return frozenset(tuple(folded[i:i + n]) for i in range(len(folded) - n + 1))


def echoes_prompt(text: str, instructions: frozenset[tuple[str, ...]] = frozenset()) -> bool:
    """Whether ``text`` repeats the prompt's scaffolding: a label of the prompt ("Các đoạn
    trích:", "Bài báo:", "Câu hỏi:", "Quy tắc:"), or :data:`SHINGLE` words in a row of its
    instructions (``instructions``: :func:`shingles` of the prompt without passages and question)."""
    if _LABELS.search(fold(text)):
        return True
    return bool(instructions) and not instructions.isdisjoint(shingles(text, len(next(iter(instructions)))))
