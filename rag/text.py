"""Pure text helpers for Vietnamese: Unicode normalisation, diacritic folding, sentences, words."""
from __future__ import annotations

import functools
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


def fold_slowly(text: str) -> str:
    """:func:`fold` by its definition: lower case, decomposed, combining marks dropped, đ -> d."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    stripped = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return stripped.replace("đ", "d")


# Every Latin letter with diacritics (and every combining mark) to its folded form: folding is
# then one str.translate. The answerer folds each word of every candidate sentence, several
# times per question: character by character it took half the answer stage.
_FOLDED = {cp: fold_slowly(chr(cp)) for start, end in ((0xC0, 0x250), (0x300, 0x370), (0x1E00, 0x1F00))
           for cp in range(start, end)}


@functools.lru_cache(maxsize=1 << 16)  # mostly words, which recur from sentence to sentence
def fold(text: str) -> str:
    """Lower case without diacritics: ``Hà Nội`` -> ``ha noi``, ``Đ`` -> ``d``."""
    if text.isascii():
        return text.lower()
    folded = text.lower().translate(_FOLDED)
    return folded if folded.isascii() else fold_slowly(text)  # other scripts: by the definition


_TONES = "\u0300\u0301\u0303\u0309\u0323"  # grave, acute, tilde, hook above, dot below


@functools.lru_cache(maxsize=1 << 16)  # words recur from sentence to sentence
def toned(word: str) -> str:
    """A word lower-cased with its diacritics, its tone mark wherever the writer put it: "hoà"
    and "hòa" are one word, "phở" and "phó" are not."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = "".join(sorted(c for c in decomposed if c in _TONES))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if c not in _TONES)) + tones


def one_letter_less(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def near_spellings(known) -> set[str]:
    """Every word of ``known`` (5 letters or more) with one letter dropped: a word one letter
    away from another shares one of these with it (see ``rag.question.spelled_like``)."""
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
        following = paragraph[match.end():match.end() + 3]
        # Lower-cased text ("… năm 1871 . đức trở thành …") has no capital to mark the next
        # sentence: a full stop, ? or ! before a word still ends one (… is often mid-sentence).
        if not _starts_sentence(following) and not (
                following[:1].isalpha() and paragraph[match.start() - 1] in ".!?"):
            continue
        candidate = paragraph[start:match.start()].rstrip()
        if following[:1].isdigit() and re.search(r"\d\s?\.$", candidate):
            continue  # "60 . 000 người", "25 . 85 %": a number's separator, as lower-cased text spaces it
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


# Question words and function words that say nothing about the content sought.
STOPWORDS = set(fold(
    "ai gì nào đâu sao bao nhiêu mấy khi giờ lúc là của và với cho các những một được đã có không "
    "thì mà ở tại trong về đến từ này đó nhé ạ vậy hay hoặc như thế nào bằng theo "
    "who what when where which how many much did does do is are was were the a an of to in on for "
    "with by and or").split())


def segment_words(text: str) -> str:
    """Vietnamese text with the syllables of each word joined by "_" ("bao_nhiêu đô_la"), by
    pyvi's tokenizer (a CRF model inside the package: nothing downloads). Text without diacritics
    is returned as it is: pyvi cannot tell its words apart."""
    if not is_vietnamese(text):
        return text
    try:
        from pyvi import ViTokenizer
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("Vietnamese word segmentation needs pyvi: pip install pyvi") from exc
    return ViTokenizer.tokenize(text)


def word_spans(text: str) -> list[tuple[int, int]]:
    """The character spans of ``text``'s words as pyvi segments them ("trao tặng" is one word,
    "2.000" another); for text without diacritics, its runs of non-space characters."""
    return _spans(text, segment_words(text).split())


def word_tags(text: str) -> list[tuple[int, int, str]]:
    """``text``'s words as pyvi segments them, each with its part-of-speech tag (pyvi's
    ViPosTagger: ``N`` noun, ``Nu`` unit, ``M`` numeral, ``V`` verb, ``F`` punctuation …), as
    ``(start, end, tag)``; none for text without diacritics, which pyvi cannot segment."""
    if not is_vietnamese(text):
        return []
    from pyvi import ViPosTagger

    tokens = segment_words(text).split()
    tags = ViPosTagger.postagging_tokens(tokens)[1]
    spans = _spans(text, tokens)
    return [(a, b, tag) for (a, b), tag in zip(spans, tags)] if len(spans) == len(tags) else []


def _spans(text: str, tokens: list[str]) -> list[tuple[int, int]]:
    spans, cursor = [], 0
    for word in tokens:
        start = end = -1
        for syllable in word.split("_"):  # "_" joins the syllables of one word
            found = text.find(syllable, cursor)
            if found < 0:
                break
            start = found if start < 0 else start
            end = cursor = found + len(syllable)
        if start >= 0:
            spans.append((start, end))
    return spans


def content_terms(question: str) -> list[str]:
    return [w for w in (fold(x) for x in words(question)) if w not in STOPWORDS]


def content_words(question: str) -> list[list[str]]:
    """The question's words as pyvi segments them, each a list of its syllables as typed, once
    each, without words made of stopwords alone: "Hộ chiếu được cấp ở đâu?" -> ``[["Hộ",
    "chiếu"], ["cấp"]]``."""
    found = {}
    for word in segment_words(question).split():
        syllables = words(word.replace("_", " "))
        if syllables and not all(fold(s) in STOPWORDS for s in syllables):
            found.setdefault(tuple(s.lower() for s in syllables), syllables)
    return list(found.values())


def is_vietnamese(text: str) -> bool:
    """Written with Vietnamese diacritics."""
    return fold(text) != text.lower()


# Words of English questions that are no Vietnamese syllable, even without diacritics.
_ENGLISH_MARKERS = {"what", "who", "whom", "whose", "when", "where", "which", "why", "how", "did", "does",
                    "is", "are", "was", "were", "of", "with", "from", "about"}


def is_english(text: str) -> bool:
    """An English question, not Vietnamese typed without diacritics ("doan ha noi tham cuba")."""
    return not is_vietnamese(text) and bool(_ENGLISH_MARKERS & set(words(text.lower())))


# English words of questions about official visits, as the (folded) Vietnamese syllables the
# articles use: an English question then shares words with the sentence that answers it.
_ENGLISH = {
    "led": "dan dau truong doan", "lead": "dan dau truong doan", "headed": "dan dau truong doan",
    "delegation": "doan dai bieu", "delegations": "doan dai bieu", "hanoi": "ha noi", "havana": "habana",
    "cuban": "cuba", "argentine": "argentina", "argentinian": "argentina", "peruvian": "peru",
    "vietnam": "viet nam", "vietnamese": "viet nam", "meet": "gap hoi kien lam viec", "met": "gap hoi kien lam viec",
    "prime": "thu tuong", "minister": "bo truong thu tuong", "president": "chu tich tong thong",
    "visit": "tham", "visited": "tham", "rice": "gao", "tonnes": "tan", "tons": "tan", "gave": "tang",
    "give": "tang", "donated": "tang", "gift": "qua tang", "communist": "cong san", "party": "dang",
    "secretary": "bi thu", "first": "thu nhat", "leader": "lanh dao", "city": "thanh pho",
    "capital": "thu do", "friend": "ban", "relationship": "quan he", "relations": "quan he",
    "cooperation": "hop tac", "wreath": "vong hoa", "monument": "tuong dai", "statue": "tuong dai",
    "ambassador": "dai su", "embassy": "dai su quan", "agreement": "thoa thuan", "memorandum": "ghi nho",
    "signed": "ky", "anniversary": "ky niem", "diplomatic": "ngoai giao", "invitation": "loi moi",
    "invited": "moi", "days": "ngay", "date": "ngay", "year": "nam", "month": "thang", "members": "thanh vien",
    "food": "luong thuc", "security": "an ninh", "close": "than thiet", "model": "mo hinh",
    "development": "phat trien", "culture": "van hoa", "tourism": "du lich", "agriculture": "nong nghiep",
    "trade": "thuong mai", "investment": "dau tu", "telecom": "vien thong", "army": "quan doi",
}


def query_terms(question: str) -> list[str]:
    """The question's content words; for an English question, their Vietnamese equivalents
    (from a glossary of the domain) and the words it keeps as they are (names)."""
    terms = content_terms(question)
    if not is_english(question):
        return terms  # Vietnamese, with or without its diacritics: as typed
    return list(dict.fromkeys(t for w in terms for t in in_vietnamese(w)))


def in_vietnamese(word: str) -> list[str]:
    """An English word's Vietnamese syllables in the glossary (folded), or the word itself."""
    return _ENGLISH.get(word.lower(), word.lower()).split()
