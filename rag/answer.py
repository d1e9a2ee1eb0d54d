"""Stage 6: answers with citations, yielded as typed events the CLI, UI and API only render.

The default answerer is extractive and offline: among the sentences of the retrieved passages it
picks the one that answers (its stored e5 vector against the question's, plus the share of the
question's words it contains), puts a short direct answer first when the question asks for one
(a number, a date, a person, a place), and cites the passage ``[n]``. It abstains — "not found in
the articles" with the closest passages as related — when the evidence is weak or names a
different place or person than the question.
"""
from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, Sequence, Union

import numpy as np

from .index import Hit
from .retrieval import Retriever
from .text import (STOPWORDS, content_terms, fold, in_vietnamese, is_english, is_vietnamese,
                   near_spellings, one_letter_less, query_terms, words)

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

    def as_dict(self) -> dict:
        """The JSON shape of ``rag ask --json`` and the HTTP API."""
        return {"question": self.question, "standalone": self.standalone or self.question,
                "answer": self.text, "short": self.short,
                "abstained": self.abstained, "citations": [asdict(c) for c in self.citations],
                "related": [asdict(c) for c in self.related], "timings_ms": self.timings_ms}


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


# --------------------------------------------------------------------------- question analysis

# Matched against the folded question, so "bao nhieu" counts as "bao nhiêu". Order matters:
# "ngày bao nhiêu" asks for a date, not a number.
_KINDS = [
    ("date", re.compile(r"\b(?:khi nao|bao gio|luc nao|ngay nao|ngay bao nhieu|nam nao|thang nao|"
                        r"thoi gian nao|when|what date|which (?:day|year|month))\b")),
    ("number", re.compile(r"\b(?:bao nhieu|how many|how much|so luong)\b")),
    ("person", re.compile(r"\b(?:ai|ten (?:la )?gi|who|whom|which (?:\w+ ){0,3}(?:leaders?|officials?|"
                          r"ambassadors?|secretary|ministers?|president|person|people))\b")),
    ("place", re.compile(r"\b(?:o dau|tai dau|noi nao|dia diem nao|where)\b")),
]


# Questions about the article itself, answered from its metadata (folded patterns).
_ABOUT_ARTICLE = [
    ("author", re.compile(r"\b(?:tac gia|ai viet|nguoi viet|phong vien nao|author|who wrote|written by)\b")),
    ("url", re.compile(r"\b(?:duong dan|duong link|link|url|dia chi bai)\b")),
    ("outlet", re.compile(r"\b(?:bao nao|to bao|co quan bao chi|hang tin|nguon bai|outlet|newspaper|"
                          r"news agency|which (?:news|paper)|published)\b")),
]


_ARTICLE_WORDS = re.compile(r"\b(?:bai|ban tin|article|story|report|piece)\b")


def article_field(question: str) -> str:
    """``author``, ``url`` or ``outlet`` when the question asks that of an article ("Tác giả bài
    viết … là ai?"); "" otherwise ("Ai là tác giả của Liber servitoris?" asks about a book)."""
    folded = fold(question)
    if not _ARTICLE_WORDS.search(folded):
        return ""
    return next((name for name, pattern in _ABOUT_ARTICLE if pattern.search(folded)), "")


_ENGLISH_ASKING = re.compile(r"\b(?:who|whom|when|where|what date|which (?:day|year|month)|how many|how much)\b")


def question_kind(question: str) -> str:
    folded = fold(question)
    if is_vietnamese(question):  # "Doctor Who thường mang theo …": a title, not "who"
        folded = _ENGLISH_ASKING.sub(" ", folded)
    for kind, pattern in _KINDS:
        if pattern.search(folded) or (kind == "number" and re.search(r"\bmấy\b", question.lower())):
            return kind  # "mấy" only with its diacritics: folded, it is also "máy" (machine)
    return ""


_TIME_UNITS = {"giay", "phut", "gio", "ngay", "tuan", "thang", "nam"}
# What an English question counts, in the (folded) words Vietnamese articles use; and Vietnamese
# words for a kind of quantity, by the units that measure it.
_UNIT_WORDS = {
    "thoi": _TIME_UNITS, "days": {"ngay"}, "day": {"ngay"}, "weeks": {"tuan"}, "months": {"thang"},
    "years": {"nam", "tuoi"}, "hours": {"gio"}, "minutes": {"phut"}, "seconds": {"giay"},
    "tons": {"tan"}, "tonnes": {"tan"}, "people": {"nguoi"}, "persons": {"nguoi"}, "nguoi": {"nguoi", "dan"},
    "members": {"thanh", "nguoi"}, "times": {"lan"}, "percent": {"phan", "%"}, "points": {"diem"},
    "votes": {"phieu"}, "khoi": {"tan", "kg", "kilogam", "gam", "ta", "yen"},
    "dien": {"ha", "hecta", "km2", "m2", "mau"}, "tien": {"dong", "usd", "euro", "ty", "trieu"},
    "tuoi": {"tuoi"}, "games": {"tran"}, "countries": {"nuoc", "quoc"}, "dollars": {"usd", "la"},
}


def asked_unit(question: str) -> list[str]:
    """What "bao nhiêu" / "how many" counts, as folded words a Vietnamese answer would put next to
    the number: "bao nhiêu tấn gạo" -> tan, gao; "how many tonnes" -> tan."""
    match = re.search(r"\b(?:bao nhieu|how many|how much)\s+((?:[^\W\d_]+\s?){1,2})", fold(question))
    if not match:
        return []
    asked = [w for w in words(match.group(1)) if w not in STOPWORDS]
    return list(dict.fromkeys(unit for w in asked for unit in sorted(_UNIT_WORDS.get(w, {w}))))


def spelled_like(term: str, known, near=None) -> bool:
    """``term`` or a spelling one letter away is in ``known`` (lower-cased words): a letter
    missing, extra or different ("Maastrich"/"Maastricht", "Bedigo"/"Bendigo", "Vietel"/"Viettel"),
    or a plural. Only for words of five letters or more, so short syllables that differ by a
    diacritic ("Lào", "lao") stay apart."""
    if term in known:
        return True
    if len(term) < 5:
        return False
    near = near_spellings(known) if near is None else near
    shorter = one_letter_less(term)  # with ``near``: one letter away without comparing each word
    return (term in near or term + "s" in known or term + "es" in known
            or any(v in known or v in near for v in shorter))


def _named_terms(question: str) -> list[str]:
    """Capitalised words after the first: the places and people the answer must be about.
    Lower-cased but with their diacritics: "Lào" is not "lao" (as in "lớn lao")."""
    tokens = words(question)
    return [t.lower() for t in tokens[1:]
            if t[0].isupper() and fold(t) not in STOPWORDS and t.lower() not in _MONTH_WORDS]


_MONTH_WORDS = {"một", "hai", "ba", "tư", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười", "giêng", "chạp"}


# --------------------------------------------------------------------------- short answers

_DATE = re.compile(
    r"(?:từ |trong thời gian từ )?ngày \d{1,2}(?:\s*(?:-|đến)\s*\d{1,2})?/\d{1,2}(?:/\d{4})?"
    r"|(?:từ )?\d{1,2}(?:\s*(?:-|đến)\s*\d{1,2})?/\d{1,2}(?:/\d{4})?"
    r"|tháng \d{1,2}(?: năm \d{4})?|(?:đầu |cuối |giữa )?năm \d{4}(?: và \d{4})?")
# Spelled-out numbers ("bốn lựa chọn"); not "năm" (also "year") nor vague "nhiều", "vài".
_NUMBER_WORDS = "một|hai|ba|bốn|sáu|bảy|tám|chín|mười|trăm|nghìn|ngàn|triệu|tỷ"
_NUMBER = re.compile(r"(?:(?<![\d/])\d[\d.,]*%?(?![\d/-])|\b(?:" + _NUMBER_WORDS + r")\b)(?:\s+[^\W\d]+){0,2}",
                     re.I)
_SURNAMES = set(fold(
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đinh Trịnh Mai Lương "
    "Đào Cao Lâm Tạ Tô Trương Chu Quách Lưu Thái Vương Đoàn Kiều Triệu Hà Mạc Tăng Lại").split())
# Capitalised words that start titles and organisations, not names.
_NOT_NAMES = set(fold(
    "Phó Bí Thư Tổng Chủ Tịch Thủ Tướng Bộ Trưởng Đại Sứ Ủy Viên Đảng Cộng Sản Thành Trung Ương Ban "
    "Đồng Chí Ông Bà Hai Các Những Đoàn Thường Trực Vụ Ngoại Giao Nhà Nước Quân Đội Tập Chính Phủ "
    "Quốc Hội Sở Cuộc Tại Theo Trong Nhân Việt Nam Hà Nội La Habana Buenos Aires Cuba Peru Argentina "
    "Thủ Đô Tổ Đỏ Châu Á Thái Bình Dương Nông Nghiệp Mỹ Latinh").split())


_ROLE_QUESTION = re.compile(r"^(?P<role>.+?),?\s+(?:là ai|tên là gì|tên gì|là người nào)\s*\??$"
                            r"|^ai là\s+(?P<role2>.+?)\s*\??$", re.I)
_ROLE_PREFIXES = {"pho", "nguyen", "cuu"}  # "Phó Tổng Bí thư" is not "Tổng Bí thư"


_TITLES = {fold(t) for t in (
    "bí thư", "tổng bí thư", "phó tổng bí thư", "phó bí thư", "chủ tịch", "phó chủ tịch", "thủ tướng",
    "phó thủ tướng", "bộ trưởng", "thứ trưởng", "đại sứ", "trưởng ban", "phó trưởng ban", "vụ trưởng",
    "tổng vụ trưởng", "tổng thống", "phó tổng thống", "thị trưởng", "tổng giám đốc", "giám đốc",
    "thống đốc", "ủy viên", "thường trực", "tổng lãnh sự", "lãnh sự", "trưởng đoàn", "chánh văn phòng")}


def asked_role(question: str) -> list[str]:
    """"Tổng Bí thư Đảng Cộng sản Peru là ai?" -> the official title asked about, folded words.
    Only titles: "Ai là thủ quân lớn tuổi nhất?" describes someone, it names no post."""
    if is_english(question):
        return english_role(question)
    match = _ROLE_QUESTION.match(question.strip())
    if not match:
        return []
    role = match.group("role") or match.group("role2")
    role = role.split(",")[0]  # "Thủ tướng Cuba, người thăm Việt Nam …" -> "Thủ tướng Cuba"
    folded = [fold(w) for w in words(role) if fold(w) != "cua"]  # "của" is not in the title
    if not any(" ".join(folded[:n]) in _TITLES for n in (1, 2, 3)):
        return []
    return folded


_ENGLISH_ROLE_QUESTION = re.compile(
    r"^(?:who (?:is|was) the|what is the name of the|name the)\s+(?P<role>.+?)"
    r"(?:\s+(?:who|that|which)\b.*)?\??$", re.I)
# English titles and the words around them, as Vietnamese writes them (folded).
_ENGLISH_TITLES = {
    "deputy general secretary": "pho tong bi thu", "general secretary": "tong bi thu",
    "first secretary": "bi thu thu nhat", "secretary": "bi thu", "prime minister": "thu tuong",
    "president": "chu tich", "chairman": "chu tich", "mayor": "thi truong", "ambassador": "dai su",
    "minister": "bo truong", "leader": "lanh dao", "head": "truong", "director": "giam doc",
}
_ENGLISH_ROLE_WORDS = {
    "communist party": "dang cong san", "party": "dang", "city": "thanh pho",
    "party committee": "thanh uy", "foreign ministry": "bo ngoai giao", "embassy": "dai su quan",
}


def english_role(question: str) -> list[str]:
    """"Who is the First Secretary of the Communist Party of Cuba?" -> the title as Vietnamese
    writes it, folded: "bi thu thu nhat dang cong san cuba". English puts the modifiers first
    ("Buenos Aires city leader"), Vietnamese after the head ("lãnh đạo thành phố Buenos Aires"):
    each "of" part is read backwards, phrase by phrase."""
    match = _ENGLISH_ROLE_QUESTION.match(question.strip())
    if not match:
        return []
    role_text = re.split(r"\s[–-]\s|\(", match.group("role"))[0]  # "… of Peru – Patria Roja (Red …)"
    parts = re.split(r"\s+of\s+(?:the\s+)?", role_text.strip())
    role: list[str] = []
    for n, part in enumerate(parts):
        tokens, phrases = part.split(), []
        while tokens:  # the longest known phrase at the end, else one word (a name, kept as is)
            size = next((k for k in (3, 2, 1) if " ".join(tokens[-k:]).lower() in
                         (_ENGLISH_TITLES if n == 0 else {}) | _ENGLISH_ROLE_WORDS), 1)
            phrase = " ".join(tokens[-size:])
            phrases.append(_ENGLISH_TITLES.get(phrase.lower()) if n == 0 and phrase.lower() in _ENGLISH_TITLES
                           else _ENGLISH_ROLE_WORDS.get(phrase.lower(), phrase))
            tokens = tokens[:-size]
        if n == 0 and fold(phrases[0]) not in _ENGLISH_TITLES.values():
            return []  # "Who is the oldest player?" names no post
        # Names stay in their order ("Buenos Aires"): only known phrases move.
        ordered = [p for p in phrases if p in _ENGLISH_TITLES.values() or p in _ENGLISH_ROLE_WORDS.values()]
        names = [p for p in reversed(phrases) if p not in ordered]
        role += [fold(w) for p in ordered + names for w in words(p)]
    return role


def _name_for_role(sentence: str, role: list[str], asked: set[str]) -> str:
    """The name attached to the role asked about: right after it ("Trưởng Ban Đối ngoại … Marco
    Medina") or just before it ("Luis Antonio Torres Iríbar, Bí thư thứ nhất …"). "Phó Tổng Bí
    thư" does not hold the role "Tổng Bí thư"."""
    # "chủ tịch của IPCC" holds the role "Chủ tịch IPCC": "của" is left out on both sides.
    tokens = [t for t in words(sentence) if fold(t) != "cua"]
    folded = [fold(t) for t in tokens]
    for i in range(len(folded) - len(role) + 1):
        if folded[i:i + len(role)] != role or (i and folded[i - 1] in _ROLE_PREFIXES):
            continue
        after = _person(" ".join(tokens[i + len(role):i + len(role) + 12]), asked)
        # As written in the sentence: words() split "Sanchez-Barreto" at the hyphen.
        written = re.search(r"[\s-]+".join(map(re.escape, after.split())), sentence) if after else None
        if written and written.start() > 0 and _attached(sentence, tokens[i + len(role) - 1], written.start()):
            return written.group(0)
        end = i - 1 if i and folded[i - 1] == "la" else i  # "Hoesung Lee là chủ tịch của IPCC"
        before = _person(" ".join(tokens[max(0, end - 6):end]) + " ,", asked)
        if before and end and before.split()[-1] == tokens[end - 1]:
            return before
    return ""


def _attached(sentence: str, role_end_word: str, name_start: int) -> bool:
    """The name right after the role is its holder, unless a comma ends the phrase first:
    "lãnh đạo thành phố Buenos Aires, bà Ngô Thị Thanh Hằng cho rằng …" starts a new clause, but
    "… Bộ Ngoại giao Peru, Đại sứ Elard …" adds another title of the same person."""
    between = sentence[sentence.rfind(role_end_word, 0, name_start) + len(role_end_word):name_start]
    if not re.search(r"[,;:]", between):
        return True
    rest = re.sub(r"[,;:]", " ", between).split()
    return bool(rest) and rest[0][0].isupper()  # a title starts with a capital, "bà" does not


_YEAR = re.compile(r"\b(?:1\d{3}|20\d{2})\b")
# (what the folded question asks, what a date span must hold, bare spans that answer otherwise)
_GRANULARITY = [
    (re.compile(r"\b(?:nam nao|which year|what year)\b"), _YEAR, _YEAR),
    (re.compile(r"\b(?:thang nao|which month)\b"), re.compile(r"tháng|/\d{1,2}\b"), None),
    (re.compile(r"\b(?:ngay nao|ngay bao nhieu|what date|which day)\b"), re.compile(r"ngày|/\d{1,2}\b"),
     re.compile(r"ngày \d{1,2}(?: tháng \d{1,2})?(?:,? năm \d{4})?")),
]


def short_answer(kind: str, sentence: str, question: str) -> str:
    asked = set(content_terms(question))
    if kind == "date":
        found = [d.strip() for d in _DATE.findall(sentence)]
        for asks, needs, bare in _GRANULARITY:  # "năm nào" is answered by a year, not "ngày 21/11"
            if asks.search(fold(question)):
                found = [d for d in found if needs.search(d)] or (bare.findall(sentence) if bare else [])
        return found[0] if found else ""
    if kind == "number":
        unit = set(asked_unit(question))
        dates = [m.span() for m in _DATE.finditer(sentence)]
        spans = [m.group(0).strip().rstrip(".,") for m in _NUMBER.finditer(sentence)
                 if not any(a <= m.start() < b for a, b in dates)]
        if not unit:
            return spans[0] if spans else ""
        # "bao nhiêu tấn gạo": only a number next to the unit asked for answers it, after it
        # ("2000 tấn gạo") or before it ("ở tuổi 39").
        for match in _NUMBER.finditer(sentence):
            if any(a <= match.start() < b for a, b in dates):
                continue
            span = match.group(0).strip().rstrip(".,")
            following = {fold(w) for w in words(span)[1:]} | ({"phan", "tram", "%"} if "%" in span else set())
            if unit & following:
                return span
            before = sentence[max(0, match.start() - 30):match.start()].split()[-2:]
            at = next((i for i, w in enumerate(before) if fold(w) in unit), None)
            if at is not None:
                return f"{' '.join(before[at:])} {span.split()[0]}"
        # "năm hoàng tử": "năm" (also "year") counts when the thing asked follows it.
        for five in re.finditer(r"\bnăm((?:\s+[^\W\d]+){1,2})", sentence, re.I):
            if fold(five.group(1).split()[0]) in unit:
                return five.group(0)
        return _number_before_unit(sentence, unit, dates)
    if kind == "person":
        role = asked_role(question)
        if role:
            return _name_for_role(sentence, role, asked)
        return _person_by_verb(sentence, question, asked) or _person(sentence, asked)
    if kind == "place":
        match = re.search(r"\b(?:tại|ở)\s+((?:[^\W\d_][\w-]*\s?){1,8})", sentence)
        return match.group(1).strip(" ,.;") if match else ""
    return ""


UNIT_WINDOW = 6  # words between a number and the thing it counts: "7 đến 10 phần trăm bác sĩ"


def _number_before_unit(sentence: str, unit: set[str], dates: list[tuple[int, int]]) -> str:
    """The last number a few words ahead of the thing counted, when it is not right next to it:
    "230 triệu USD cổ phần" answers "bao nhiêu cổ phần". Nothing when the sentence does not
    name that thing at all: its numbers count something else."""
    tokens = list(re.finditer(r"\S+", sentence))
    for i, token in enumerate(tokens):
        if fold(token.group(0).strip(".,;:()")) not in unit:
            continue
        window_start = tokens[max(0, i - UNIT_WINDOW)].start()
        numbers = [m for m in _NUMBER.finditer(sentence, window_start, token.start())
                   if not any(a <= m.start() < b for a, b in dates)]
        if numbers:
            return numbers[-1].group(0).strip().rstrip(".,")
    return ""


def _person(sentence: str, asked: set[str]) -> str:
    """The first run of capitalised words that is a name: titles and places ahead of it dropped."""
    return next(_names(sentence, asked), "")


def _names(sentence: str, asked: set[str]) -> Iterator[str]:
    """Runs of capitalised words that are names, in order (see :func:`_person`)."""
    for run in _capitalised_runs(sentence):
        # "Thành ủy Hà Nội Nguyễn Thị Tuyến": drop title and place words until a surname that
        # starts a name (Hà is a surname too, but not in "Hà Nội").
        while run and fold(run[0]) in _NOT_NAMES and not (
                fold(run[0]) in _SURNAMES and len(run) > 1 and fold(run[1]) not in _NOT_NAMES):
            run = run[1:]
        name = run if run and fold(run[0]) in _SURNAMES else [w for w in run if fold(w) not in _NOT_NAMES]
        if len(name) >= 2 and not {fold(w) for w in name} <= asked:
            yield " ".join(name)


# Verbs of meeting someone in reports of official visits, folded.
_MEETING = ("gap", "hoi kien", "lam viec voi", "hoi dam voi", "tiep xuc voi", "tiep kien")


# English verbs of questions about visits, as the (folded) Vietnamese phrases for them.
_ENGLISH_VERBS = {"meet": _MEETING, "met": _MEETING, "receive": _MEETING, "received": _MEETING,
                  "led": ("dan dau", "lam truong doan"), "lead": ("dan dau", "lam truong doan"),
                  "headed": ("dan dau", "lam truong doan")}


def _asked_verb(question: str) -> tuple[bool, list[list[str]]]:
    """Whether the question asks for the subject of its verb (or its object), and the verb
    phrases to look for: "Ai dẫn đầu đoàn?" -> subject, "dẫn đầu"; "Đoàn gặp ai?" -> object,
    "gặp" or another verb of meeting; "Who did the delegation meet?" -> object, the same."""
    if is_english(question):
        asked = [w.lower() for w in words(question)]
        verb = next((w for w in asked if w in _ENGLISH_VERBS), "")
        if not verb or asked[0] not in ("who", "whom", "which"):
            return False, []
        return asked[:2] == ["who", verb], [p.split() for p in _ENGLISH_VERBS[verb]]
    asked = [fold(w) for w in words(question)]
    if "ai" not in asked:
        return False, []
    at = asked.index("ai")
    subject = at == 0 or asked[:at] == ["la"]
    verb = asked[at + 1:at + 3] if subject else asked[max(0, at - 2):at]
    verb = [w for w in verb if w not in STOPWORDS] if subject else verb
    if not verb or all(w in STOPWORDS for w in verb):
        return subject, []
    # The whole verb phrase if the sentence has it, else its last word ("gặp"), else another
    # verb of meeting ("làm việc với", "hội kiến").
    phrases = [verb, verb[-1:]] if len(verb) > 1 and verb[-1] not in STOPWORDS else [verb]
    if not subject and any(" ".join(p) in _MEETING for p in phrases):
        phrases += [m.split() for m in _MEETING]
    return subject, phrases


def _person_by_verb(sentence: str, question: str, asked: set[str]) -> str:
    """Who the question's verb points at: "Đoàn đã hội kiến ai?" -> the first name after
    "hội kiến" in the sentence; "Ai dẫn đầu đoàn?" -> the last name before "dẫn đầu"."""
    subject, phrases = _asked_verb(question)
    tokens = sentence.split()
    folded = [" ".join(fold(w) for w in words(t)) for t in tokens]
    for phrase in phrases:
        for i in range(len(folded) - len(phrase) + 1):
            if folded[i:i + len(phrase)] == phrase:
                if subject:
                    found = list(_names(" ".join(tokens[max(0, i - 12):i]) + " ,", asked))
                    return found[-1] if found else ""
                return _person(_same_phrase(" ".join(tokens[i + len(phrase):i + len(phrase) + 20])), asked)
    return ""


def _same_phrase(text: str) -> str:
    """``text`` up to the comma that starts another clause: "lãnh đạo thành phố Buenos Aires,
    bà Ngô Thị Thanh Hằng cho rằng …" stops at the comma; "… Bộ Ngoại giao Peru, Đại sứ Elard …"
    goes on, another title of the same person (see :func:`_attached`)."""
    parts = re.split(r"(?<=[,;])\s+", text)
    kept = parts[:1]
    for part in parts[1:]:
        if not part[:1].isupper():
            break
        kept.append(part)
    return " ".join(kept)


def _capitalised_runs(sentence: str) -> list[list[str]]:
    runs, current = [], []
    for token in sentence.replace(",", " , ").split() + [","]:
        word = token.strip(".;:()\"“”")
        if word and word[0].isupper() and word == token.strip(".;:"):
            current.append(word)
            continue
        if len(current) >= 2:
            runs.append(current)
        current = []
    return runs


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
    previous question, without its question words and with its place replaced by a newly named
    one, is appended as context."""
    if not history:
        return question
    follows = bool(_CONTINUATION.match(question) or _PRONOUN.search(question) or _ANAPHORA.search(question))
    if not follows:
        return question
    previous_question, previous_answer = history[-1]
    rewritten = _CONTINUATION.sub("", question, count=1)
    person = _person(previous_answer.split(". ")[0], set()) if previous_answer else ""
    if person:
        rewritten = _PRONOUN.sub(person, rewritten)
    context = previous_question
    if _PLACE.search(rewritten):  # "Còn ở Peru…": Peru replaces the place asked about before
        context = _PLACE.sub("", context)
    context = " ".join(_ASKING.sub(" ", context).replace(",", " ").split())
    rewritten = rewritten[:1].upper() + rewritten[1:]
    return f"{rewritten} ({context})" if context else rewritten


def with_history(stream, question: str, history: Sequence[tuple[str, str]],
                 rewrite=standalone_question) -> Iterator[Event]:
    """Run an answerer's ``stream`` on the standalone form of a follow-up (``rewrite(question,
    history)``); the final answer keeps the question as asked and records the rewritten one."""
    standalone = rewrite(question, history) if history else question
    for event in stream(standalone):
        if isinstance(event, Final) and standalone != question:
            event = Final(dataclasses.replace(event.answer, question=question, standalone=standalone))
        yield event


# --------------------------------------------------------------------------- answering


@dataclass(frozen=True)
class _Candidate:
    hit: Hit
    sentence: str
    similarity: float
    overlap: float  # share of the question's content words the sentence holds (as typed)
    matched: float  # the same share, with an English question's words in Vietnamese: for ranking

    @property
    def score(self) -> float:
        return self.similarity + OVERLAP_WEIGHT * self.matched


# Weighting the overlap by IDF (syllables and pairs) measured no better on XQuAD-vi (79.8 -> 79.7%).
OVERLAP_WEIGHT = 0.1
RANK_PRIOR = 0.01  # added to a sentence's similarity, divided by its passage's rank (1, 2, …)
MIN_SIMILARITY = 0.80  # provisional floor for the best sentence's cosine similarity
MIN_OVERLAP = 0.25  # share of the question's content words a Vietnamese answer sentence must hold
TYPED_MARGIN = 0.03  # a typed question takes a slightly weaker sentence that holds the asked type
MORE_SENTENCES = 2  # after the best: XQuAD-vi answers holding the gold span, 1 -> 84.3%, 2 -> 84.9%
SECOND_MARGIN = 0.1  # XQuAD-vi, answers holding the gold span: 0.05 -> 80.8%, 0.1 -> 81.7%, 0.15 same
ARTICLE_CACHE = 512  # articles whose words are kept for the named-terms check
VERB_MARGIN = 0.05  # a sentence where the asked verb names someone may score this much lower


class ExtractiveAnswerer:
    def __init__(self, retriever: Retriever, top_k: int = 4) -> None:
        self.retriever = retriever
        self.top_k = top_k
        self._words: dict[tuple[str, str], tuple[set[str], set[str]]] = {}  # see _article_words

    def answer(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Answer:
        final = None
        for event in self.stream(question, history):
            if isinstance(event, Final):
                final = event.answer
        return final

    def stream(self, question: str, history: Sequence[tuple[str, str]] = ()) -> Iterator[Event]:
        """Events for ``question``; ``history`` holds earlier ``(question, answer text)`` turns."""
        said = history[-1][1] if history else ""
        return with_history(lambda standalone: self._stream(standalone, said, question), question, history)

    def _stream(self, question: str, said: str = "", follow_up: str = "") -> Iterator[Event]:
        """``said``: the previous answer, when ``question`` is the standalone form of ``follow_up``."""
        started = time.perf_counter()
        retrieval = self.retriever.retrieve(question, k=self.top_k)
        retrieved = time.perf_counter()
        field_asked = article_field(question)
        if field_asked and retrieval.hits:
            yield from self._about_article(question, field_asked, retrieval.hits[0], started, retrieved)
            return
        candidates = self._candidates(question, retrieval.hits, retrieval.query_vector)
        # A follow-up asks for something new: a sentence of the previous answer that shares few
        # of the follow-up's own words comes last ("Ông ấy và đoàn nhấn mạnh dịp kỷ niệm gì?"
        # after "Đại sứ … là ai?"). A long sentence may have been shown cut: its start is enough.
        own = set(content_terms(follow_up))
        repeated = [c for c in candidates if said and c.sentence[:80] in said
                    and len(own & {fold(w) for w in words(c.sentence)}) < MIN_OVERLAP * len(own)]
        best = self._choose(question, [c for c in candidates if c not in repeated] + repeated)
        timings = {"retrieve": 1000 * (retrieved - started), "answer": 1000 * (time.perf_counter() - retrieved)}
        if best is None:
            related = tuple(cite(n, hit, "") for n, hit in enumerate(retrieval.hits, start=1))
            answer = Answer(question, NOT_FOUND, (), True, related=related, timings_ms=timings)
            yield Sources(related)
            yield TextDelta(answer.text)
            yield Final(answer)
            return
        short = short_answer(question_kind(question), best.sentence, question)
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

    def _candidates(self, question: str, hits: list[Hit], query_vector) -> list[_Candidate]:
        if not hits:
            return []
        ids = [sid for hit in hits for sid in hit.sentence_ids()]
        vectors = self.retriever.index.sentence_vectors(ids) if query_vector is not None else {}
        query = np.asarray(query_vector, dtype=np.float32) if query_vector is not None else None
        terms = set(content_terms(question))
        translated = set(query_terms(question))
        candidates = []
        for rank, hit in enumerate(hits):
            for sentence, sid in zip(hit.sentences, hit.sentence_ids()):
                vector = vectors.get(sid)
                similarity = float(vector @ query) if vector is not None and query is not None else 0.0
                folded = {fold(w) for w in words(sentence)}
                overlap = len(terms & folded) / len(terms) if terms else 0.0
                # The fused ranking breaks near-ties (corpus set 80.9 -> 83.0%; larger priors gain nothing).
                similarity += RANK_PRIOR / (rank + 1)
                matched = len(translated & folded) / len(translated) if translated else 0.0
                candidates.append(_Candidate(hit, sentence, similarity, overlap, matched))
        return sorted(candidates, key=lambda c: -c.score)

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

    def _article_words(self, hit: Hit) -> tuple[set[str], set[str]]:
        """An article's words and adjacent pairs joined, lower-cased, and their
        :func:`near_spellings` (kept for the recent articles: a generation never changes)."""
        key = (str(self.retriever.index.path), hit.doc_id)
        if key not in self._words:
            passages = self.retriever.index.article(hit.doc_id)
            tokens = [w.lower() for w in words(hit.title + " " + " ".join(p.text for p in passages))]
            if len(self._words) >= ARTICLE_CACHE:
                self._words.pop(next(iter(self._words)))
            vocab = set(tokens) | {a + b for a, b in zip(tokens, tokens[1:])}
            self._words[key] = vocab, near_spellings(vocab)
        return self._words[key]

    @staticmethod
    def _more(best: _Candidate, candidates: list[_Candidate]) -> Iterator[_Candidate]:
        """Other sentences of the best one's article that score nearly as well, best first. On
        XQuAD-vi the best sentence holds the gold span for 80% of questions, the best two for
        88%, the best three for 92.7%."""
        seen = {best.sentence}
        for candidate in candidates:
            if candidate.score < best.score - SECOND_MARGIN:
                return
            # Only from the same article: on XQuAD-vi, a second sentence from any article gave
            # 83.0% answers holding the gold span but cited passages holding it 68.0% of the
            # time; from the same article, 83.3% and 78.6% (corpus set: 83.0 -> 86.2%).
            if candidate.sentence not in seen and candidate.hit.doc_id == best.hit.doc_id:
                seen.add(candidate.sentence)
                yield candidate

    def _choose(self, question: str, candidates: list[_Candidate]) -> _Candidate | None:
        vietnamese = is_vietnamese(question)
        named = _named_terms(question) if vietnamese else []
        lexical = self.retriever.index.lexical
        if any(not lexical.knows(term) and not lexical.knows_joined(term)
               and not spelled_like(term, lexical.exact_words(), lexical.near_words()) for term in named):
            return None  # asks about a place or person no article mentions
        kind = question_kind(question)
        # Each retrieved article's words and word pairs (lower-cased), to check it is about the
        # places and people named. A question naming what no single article holds all of ("…
        # sang Argentina, Peru và … sang Cuba") spans articles: each must hold one of them.
        hits = {c.hit.doc_id: c.hit for c in candidates} if named else {}
        articles = {doc: self._article_words(hit) for doc, hit in hits.items()}
        holds = {doc: [spelled_like(term, vocab, near) for term in named] for doc, (vocab, near) in articles.items()}
        spanning = bool(named) and not any(all(h) for h in holds.values()) and all(map(any, zip(*holds.values())))
        eligible = []
        for candidate in candidates:
            if candidate.similarity < MIN_SIMILARITY and candidate.matched < 0.5:
                continue  # too weak (English: by its words through the glossary)
            if vietnamese and candidate.overlap < MIN_OVERLAP:
                continue  # shares too few of the question's words
            if named and not (any if spanning else all)(holds[candidate.hit.doc_id]):
                continue  # the article is about another place or person than the one asked
            eligible.append(candidate)
        if kind == "number" or (kind == "person" and asked_role(question)) or (
                kind == "date" and any(asks.search(fold(question)) for asks, _, _ in _GRANULARITY)):
            # A figure, a named holder of a role or a year the articles do not give: not found.
            eligible = [c for c in eligible if short_answer(kind, c.sentence, question)]
            if kind == "date":  # ... nor the date of another event
                eligible = [c for c in eligible
                            if _dates_event(c.sentence, short_answer(kind, c.sentence, question), question)]
        if not eligible:
            return None
        # The article of the strongest sentence answers: its sentences come first, so the
        # preferences below never jump to another article (XQuAD-vi, answers holding the gold
        # span: 84.9 -> 85.4%).
        strongest = eligible[0].hit.doc_id
        eligible.sort(key=lambda c: c.hit.doc_id != strongest)  # stable: by score within each
        if kind == "person":  # a sentence naming who does what the question asks: "hội kiến ai?"
            asked = set(content_terms(question))
            for candidate in eligible:
                if candidate.score < eligible[0].score - VERB_MARGIN:
                    break
                if _person_by_verb(candidate.sentence, question, asked):
                    return candidate
        if kind:
            for candidate in eligible:
                if candidate.score < eligible[0].score - TYPED_MARGIN:
                    break
                if short_answer(kind, candidate.sentence, question):
                    return candidate
        return eligible[0]


_WHEN_WORDS = set(fold("ngày tháng năm nào khi bao giờ lúc thời gian sẽ tới vào").split())


def _dates_event(sentence: str, date: str, question: str) -> bool:
    """The date answers the question only if its clause tells of what the question asks about:
    "… chuyến thăm của Thủ tướng Cuba tới Việt Nam ngày 28/9 vừa qua" does not date when the
    rice "sẽ được chuyển tới Cuba". Compared with diacritics ("chuyển" is not "chuyến"), on the
    question's lower-case words: its names are in every sentence of the article."""
    exact = is_vietnamese(question)

    def key(word):
        return word.lower() if exact else fold(word)
    asked = [w for w in words(question)[1:] if w[0].islower() and fold(w) not in STOPWORDS]
    if is_english(question):  # in the articles' words: "visit" -> "tham"
        asked = [t for w in asked for t in in_vietnamese(w)]
    event = {key(w) for w in asked if fold(w) not in _WHEN_WORDS}
    clauses = re.split(r";", sentence)
    if not event or len(clauses) == 1:
        return True  # one clause: its date is the event's (words may differ: "chết", "qua đời")
    clause = next((part for part in clauses if date in part), sentence)
    return bool(event & {key(w) for w in words(clause)})


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
