"""Pure text helpers for Vietnamese: Unicode normalisation, diacritic folding, sentences, words."""
from __future__ import annotations

import re
import unicodedata

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def normalize(text: str) -> str:
    """NFC, no invisible characters, one space between words, ``\\n`` line ends.

    Vietnamese arrives both precomposed (NFC) and decomposed (NFD); both must index alike.
    """
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


def fold(text: str) -> str:
    """Lower case without diacritics: ``Hà Nội`` -> ``ha noi``, ``Đ`` -> ``d``."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return stripped.replace("đ", "d")


def one_letter_less(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def near_spellings(known) -> set[str]:
    """Every word of ``known`` (5 letters or more) with one letter dropped: a word one letter
    away from another shares one of these with it (see ``rag.answer.spelled_like``)."""
    return {v for w in known if len(w) >= 5 for v in one_letter_less(w)}


_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    return _WORD.findall(text)


# Abbreviations after which a period does not end a sentence.
_ABBREVIATIONS = {
    "tp", "tt", "ts", "ths", "pgs", "gs", "bs", "ks", "th.s", "mr", "mrs", "dr", "st", "no",
    "ông", "bà", "q", "p", "tr", "vs", "v.v", "etc",
}
# A sentence ends at . ! ? … (optionally followed by closing quotes/brackets or "/.")
# when the next sentence starts with an upper-case letter, a digit or an opening quote.
_BOUNDARY = re.compile(r"(?<=[.!?…])(?:/\.)?[\"'”’)\]]*\s+")
_OPENERS = "\"'“‘([-–"


def _starts_sentence(text: str) -> bool:
    text = text.lstrip(_OPENERS + " ")
    return bool(text) and (text[0].isupper() or text[0].isdigit())


def split_sentences(paragraph: str) -> list[str]:
    """Split one paragraph into sentences, keeping each sentence's own punctuation."""
    paragraph = paragraph.strip()
    if not paragraph:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BOUNDARY.finditer(paragraph):
        if not _starts_sentence(paragraph[match.end():match.end() + 3]):
            continue
        candidate = paragraph[start:match.start()].rstrip()
        last_word = candidate.rstrip(".").rsplit(" ", 1)[-1].lower()
        if last_word in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha()):
            continue  # "TP. Hồ Chí Minh", initials such as "A. Escala"
        sentences.append(paragraph[start:match.end()].strip())
        start = match.end()
    tail = paragraph[start:].strip()
    if tail:
        sentences.append(tail)
    # A trailing "(Ảnh: …)" / "(Nguồn: …)" credit belongs to the sentence before it.
    merged: list[str] = []
    for sentence in sentences:
        if merged and sentence.startswith("(") and sentence.endswith(")"):
            merged[-1] = f"{merged[-1]} {sentence}"
        else:
            merged.append(sentence)
    return merged
