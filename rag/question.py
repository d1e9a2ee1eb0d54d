"""What a question asks, and the short answers to it found in a sentence: the kind of fact
sought (a number, a date, a person, a place), the unit counted, the title whose holder is asked,
the verb whose subject or object is asked, the places and people named; then the number, date,
name or place a sentence gives for it. Pure functions of text, used by the extractive answerer
(``rag.answer``) to pick, check and lead with its evidence.
"""
from __future__ import annotations

import functools
import re
from typing import Iterator

from .text import (STOPWORDS, content_terms, fold, in_vietnamese, is_english, is_vietnamese, near_spellings,
                   one_letter_less, segment_words, word_spans, word_tags, words)

# --------------------------------------------------------------------------- question analysis

# "năm nào", and "năm bao nhiêu" at the question's end ("… ký kết vào năm bao nhiêu?", "vào năm
# bao nhiêu thì …"), not "mỗi năm bao nhiêu du khách".
_WHICH_YEAR = r"nam nao|nam bao nhieu(?= *(?:\?|$|thi\b))|which year|what year"
# Matched against the folded question, so "bao nhieu" counts as "bao nhiêu". Order matters:
# "ngày bao nhiêu" asks for a date, not a number.
_KINDS = [
    ("date", re.compile(r"\b(?:khi nao|bao gio|luc nao|ngay nao|hom nao|ngay bao nhieu|thang nao|thoi gian nao|"
                        r"when|what date|which (?:day|month)|" + _WHICH_YEAR + r")\b")),
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


# "bài" is an article, not a song, a poem, a lesson or a speech ("tác giả bài hát …").
_ARTICLE_WORDS = re.compile(r"\b(?:bai(?! (?:hat|ca|tho|hoc|tap|giang|van|phat bieu|thuyet trinh)\b)|ban tin|article|"
                            r"story|report|piece)\b")


def article_field(question: str) -> str:
    """``author``, ``url`` or ``outlet`` when the question asks that of an article ("Tác giả bài
    viết … là ai?"); "" otherwise ("Ai là tác giả của Liber servitoris?" asks about a book)."""
    folded = fold(question)
    if not _ARTICLE_WORDS.search(folded):
        return ""
    return next((name for name, pattern in _ABOUT_ARTICLE if pattern.search(folded)), "")


def question_kind(question: str) -> str:
    folded = fold(question)
    for kind, pattern in _KINDS:
        if pattern.search(folded) or (kind == "number" and _few(question)):
            return "" if kind == "person" and post_asked(question) else kind
    return ""


# "X là ai?", "Ai là X?", "Who is X?"; typed without diacritics, "x la ai".
_WHO_IS = re.compile(r"^(?P<subject>.+?)\s+l[àa] ai\s*\??$|^(?:ai l[àa]|who (?:is|was))\s+(?P<before>.+?)\s*\??$",
                     re.I)
_HONORIFICS = {"ong", "ba", "dong", "chi", "mr", "mrs", "ms"}
_POST = re.compile(r"\b(?:chuc vu|chuc danh|giu chuc|position|post)\b")  # "… giữ chức vụ gì?"


def post_asked(question: str) -> str:
    """The person whose post the question asks ("Arturo Ayala là ai?", "Who is Marco Medina?",
    "Nguyễn Thị Tuyến giữ chức vụ gì?"), or "": no other name answers it."""
    if _POST.search(fold(question)):
        return first_person(re.sub(r"['’]s\b", "", question), set())  # "What is … Tuyến's position?"
    match = _WHO_IS.match(question.strip())
    subject = match and (match.group("subject") or match.group("before"))
    name = first_person(subject, set()) if subject else ""
    whole = {fold(w) for w in words(subject or "")} - {fold(w) for w in words(name)} <= _HONORIFICS
    return name if name and whole else ""


def holds_post(sentence: str, person: str) -> bool:
    """Whether the sentence names ``person`` with a post attached ("do đồng chí Nguyễn Thị Tuyến,
    Ủy viên Trung ương Đảng, …"; "Trưởng Ban Đối ngoại Đảng Cộng sản Peru Marco Medina")."""
    folded, last = fold(sentence), fold(person.split()[-1])
    return any(title in folded and last in fold(_name_for_role(sentence, title.split(), set())).split()
               for title in _TITLES)


_TIME_UNITS = {"giay", "phut", "gio", "ngay", "tuan", "thang", "nam", "thap ky", "thap nien", "the ky"}
# What an English question counts, in the (folded) words Vietnamese articles use; and Vietnamese
# words for a kind of quantity, by the units that measure it.
_UNIT_WORDS = {
    "thoi": _TIME_UNITS, "thoi gian": _TIME_UNITS, "days": {"ngay"}, "day": {"ngay"}, "weeks": {"tuan"}, "months": {"thang"},
    "years": {"nam", "tuoi"}, "hours": {"gio"}, "minutes": {"phut"}, "seconds": {"giay"},
    "tons": {"tan"}, "tonnes": {"tan"}, "people": {"nguoi"}, "persons": {"nguoi"}, "nguoi": {"nguoi", "dan"},
    "members": {"thanh", "nguoi"}, "times": {"lan"}, "percent": {"phan", "%"}, "points": {"diem"},
    "votes": {"phieu"}, "khoi": {"tan", "kg", "kilogam", "gam", "ta", "yen"},
    "dien": {"ha", "hecta", "km2", "m2", "mau"}, "tien": {"dong", "usd", "euro", "ty", "trieu", "do la"},
    "tuoi": {"tuoi"}, "games": {"tran"}, "countries": {"nuoc", "quoc"}, "quoc gia": {"quoc gia", "nuoc"},
    "dollars": {"usd", "do la"}, "do la": {"usd", "do la"},
}


# Words that count (folded): "mấy" typed without diacritics is "may", as "máy" (machine) is, and
# asks only next to one of them ("may tan gao", "quan may"; not "may bay").
_COUNTED = {unit for units in _UNIT_WORDS.values() for unit in units if " " not in unit} | {
    "chiec", "cai", "con", "doan", "dot", "cuoc", "lan", "nghin", "tram", "truong", "quan", "thu", "vong"}


# Words that can follow "bao nhiêu" but count nothing: the thing counted ends before them.
_NOT_UNIT = {"vao", "suot", "vi", "ke", "tren", "duoi", "sau", "truoc", "moi", "nam nay", "hien nay"}


def _few(question: str) -> tuple[list[str], list[str]] | None:
    """The folded words before and after the "mấy" a question asks with ("có mấy cuộc xung đột",
    "quận mấy", "ha noi tang may tan gao"), or None."""
    typed = [w.lower() for w in words(question)]
    folded = [fold(w) for w in typed]
    unaccented = not is_vietnamese(question) and not is_english(question)
    for i, word in enumerate(typed):
        before, after = folded[:i], folded[i + 1:]
        if word == "mấy" or (unaccented and word == "may" and (
                (after and after[0] in _COUNTED) or (not after and before and before[-1] in _COUNTED))):
            return before, after
    return None


def asked_unit(question: str) -> list[str]:
    return list(_asked_unit(question))


@functools.lru_cache(maxsize=64)  # asked for each candidate sentence of one question (pyvi segments it)
def _asked_unit(question: str) -> tuple[str, ...]:
    """What "bao nhiêu" / "mấy" / "how many" counts, as folded words a Vietnamese answer would put
    next to the number: "bao nhiêu tấn gạo" -> tan, gao; "how many tonnes" -> tan; "quận mấy" ->
    quan, "lần thứ mấy" -> thu, lan. A word of several syllables stays one unit ("bao nhiêu đô
    la" -> "do la", which "hai Thủ đô" does not hold): words are found by pyvi's segmentation."""
    few = _few(question)
    if few and few[0] and (few[0][-1] == "thu" or (few[0][-1] in _COUNTED and not (few[1] and few[1][0] in _COUNTED))):
        before = few[0]  # the thing numbered comes first: "quận mấy", "thế kỷ thứ mấy"
        return (before[-1], *(before[-2:-1] if before[-1] == "thu" else []))
    match = re.search(r"\b(?:bao[ ~]nhieu|how many|how much" + ("|may" if few else "") +
                      r")\s+((?:[^\W\d_][\w~]*\s?){1,2})", fold(segment_words(question)).replace("_", "~"))
    if not match:
        return ()
    asked = []
    for word in (w.replace("~", " ") for w in match.group(1).split()):
        if word in _NOT_UNIT or (word in STOPWORDS and word not in _TIME_UNITS):
            break  # "là bao nhiêu vào năm 2014", "bao nhiêu kể từ": what is counted came before
        if word != "so":  # "bao nhiêu số ghế" counts seats; "bao nhiêu so với" nothing
            asked.append(word)
    english = is_english(question)
    return tuple(dict.fromkeys(unit for w in asked for unit in sorted(
        _UNIT_WORDS.get(w, set(in_vietnamese(w)) if english else {w}))))


def holds_unit(words_after: list[str], unit: set[str]) -> bool:
    """Whether the folded words right after a number start with (or hold) a unit asked for."""
    after = f" {' '.join(words_after)} "
    return any(f" {u} " in after for u in unit)


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


def named_terms(question: str) -> list[str]:
    """Capitalised words after the first: the places and people the answer must be about.
    Lower-cased but with their diacritics: "Lào" is not "lao" (as in "lớn lao")."""
    tokens = words(question)
    return [t.lower() for t in tokens[1:]
            if t[0].isupper() and fold(t) not in STOPWORDS and t.lower() not in _MONTH_WORDS]


_MONTH_WORDS = {"một", "hai", "ba", "tư", "bốn", "năm", "sáu", "bảy", "tám", "chín", "mười", "giêng", "chạp"}


# --------------------------------------------------------------------------- short answers

_PART = r"(?:đầu |cuối |giữa )?"  # "đầu năm 2023", "cuối thế kỷ xv"
_DECADE = r"thập (?:niên|kỷ|kỉ) \d{4}"
_DATE = re.compile(
    r"(?:từ |trong thời gian từ )?ngày \d{1,2}(?:\s*(?:-|đến)\s*\d{1,2})?/\d{1,2}(?:/\d{4})?"
    r"|(?:từ )?\d{1,2}(?:\s*(?:-|đến)\s*\d{1,2})?/\d{1,2}(?:/\d{4})?"
    # in words: "ngày 21 tháng 9 năm 1792", "ngày 10 và 11 tháng 1", "26 tháng 9 năm 1896"
    r"|(?:từ )?ngày \d{1,2}(?:\s*(?:-|đến|và)\s*\d{1,2})? tháng \d{1,2}(?:,? năm \d{4})?"
    r"|(?<!\d [,.] )\b\d{1,2} tháng \d{1,2},? năm \d{4}"
    rf"|{_PART}tháng \d{{1,2}}(?: năm \d{{4}})?|(?:từ )?năm \d{{4}} (?:tới|đến) (?:năm )?\d{{4}}"
    rf"|{_PART}năm \d{{4}}(?: và \d{{4}})?|{_PART}thế k[ỷỉ] (?:thứ )?(?:\d{{1,2}}|[ivxl]+)\b"
    rf"|(?:từ )?{_DECADE} (?:tới|đến) {_DECADE}|{_PART}{_DECADE}", re.I)  # re.I: "Năm 2010, …"
# Spelled-out numbers ("bốn lựa chọn"); not "năm" (also "year") nor vague "nhiều", "vài". A number
# of lower-cased, spaced text keeps its spaced separators and per cent sign ("60 . 000", "25 . 85 %").
_NUMBER_WORDS = "một|hai|ba|bốn|sáu|bảy|tám|chín|mười|trăm|nghìn|ngàn|triệu|tỷ"
_NUMBER = re.compile(r"(?:(?<![\d/])\d[\d.,]*(?: \. \d+)*(?: ?%)?(?![\d/-])|\b(?:" + _NUMBER_WORDS + r")\b)"
                     r"(?:\s+[^\W\d]+){0,2}", re.I)
_SURNAMES = set(fold(
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đinh Trịnh Mai Lương "
    "Đào Cao Lâm Tạ Tô Trương Chu Quách Lưu Thái Vương Đoàn Kiều Triệu Hà Mạc Tăng Lại").split())
# Capitalised words that start titles and organisations, not names.
_NOT_NAMES = set(fold(
    "Phó Bí Thư Tổng Chủ Tịch Thủ Tướng Bộ Trưởng Đại Sứ Ủy Viên Đảng Cộng Sản Thành Trung Ương Ban "
    "Đồng Chí Ông Bà Hai Các Những Đoàn Thường Trực Vụ Ngoại Giao Nhà Nước Quân Đội Tập Chính Phủ "
    "Quốc Hội Sở Cuộc Tại Theo Trong Nhân Việt Nam Hà Nội La Habana Buenos Aires Cuba Peru Argentina "
    "Thủ Đô Tổ Đỏ Châu Á Thái Bình Dương Nông Nghiệp Mỹ Latinh").split())


# Matched against the folded question: typed without diacritics, "la ai" asks as "là ai".
_ROLE_QUESTION = re.compile(r"^(?P<role>.+?),?\s+(?:la ai|ten la gi|ten gi|la nguoi nao)\s*\??$"
                            r"|^ai la\s+(?P<role2>.+?)\s*\??$", re.I)
_ROLE_PREFIXES = {"pho", "nguyen", "cuu"}  # "Phó Tổng Bí thư" is not "Tổng Bí thư"


_TITLES = {fold(t) for t in (
    "bí thư", "tổng bí thư", "phó tổng bí thư", "phó bí thư", "chủ tịch", "phó chủ tịch", "thủ tướng",
    "phó thủ tướng", "bộ trưởng", "thứ trưởng", "đại sứ", "trưởng ban", "phó trưởng ban", "vụ trưởng",
    "tổng vụ trưởng", "tổng thống", "phó tổng thống", "thị trưởng", "tổng giám đốc", "giám đốc",
    "thống đốc", "ủy viên", "thường trực", "tổng lãnh sự", "lãnh sự", "trưởng đoàn", "chánh văn phòng")}


# Who headed a delegation, however it is asked ("trưởng đoàn", "người đứng đầu đoàn", "dẫn
# đầu"): the articles say it with a verb ("do … làm trưởng đoàn", "… dẫn đầu"), not a post.
_HEADED = re.compile(r"\b(?:truong doan|dung dau|dan dau)\b")
_HEADING = (("dan", "dau"), ("lam", "truong", "doan"), ("dung", "dau"), ("truong", "doan"))


def asked_role(question: str) -> list[str]:
    """"Tổng Bí thư Đảng Cộng sản Peru là ai?" -> the official title asked about, folded words.
    Only titles: "Ai là thủ quân lớn tuổi nhất?" describes someone, it names no post."""
    if _HEADED.search(fold(question)):
        return []
    if is_english(question):
        return english_role(question)
    match = _ROLE_QUESTION.match(fold(question).strip())
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
                           else _ENGLISH_ROLE_WORDS.get(phrase.lower()) or " ".join(in_vietnamese(phrase)))
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
        after = first_person(" ".join(tokens[i + len(role):i + len(role) + 12]), asked)
        # As written in the sentence: words() split "Sanchez-Barreto" at the hyphen.
        written = re.search(r"[\s-]+".join(map(re.escape, after.split())), sentence) if after else None
        if written and written.start() > 0 and _attached(sentence, tokens[i + len(role) - 1], written.start()):
            return written.group(0)
        end = i - 1 if i and folded[i - 1] == "la" else i  # "Hoesung Lee là chủ tịch của IPCC"
        before = first_person(" ".join(tokens[max(0, end - 6):end]) + " ,", asked)
        if before and end and before.split()[-1] == tokens[end - 1]:
            return before
    return ""


def _attached(sentence: str, role_end_word: str, name_start: int) -> bool:
    """Whether the name starting at ``name_start`` is in the phrase of the role ending with
    ``role_end_word`` (see :func:`_phrase_end`)."""
    role_end = sentence.rfind(role_end_word, 0, name_start) + len(role_end_word)
    return name_start < role_end + _phrase_end(sentence[role_end:])


def _phrase_end(text: str) -> int:
    """Where the phrase ``text`` starts with ends: at the comma that starts another clause
    ("lãnh đạo thành phố Buenos Aires, bà Ngô Thị Thanh Hằng cho rằng …"), not at one followed by
    another title of the same person ("… Bộ Ngoại giao Peru, Đại sứ Elard …")."""
    for mark in re.finditer(r"[,;:]\s*", text):
        if not text[mark.end():mark.end() + 1].isupper():
            return mark.start()
    return len(text)


YEAR = re.compile(r"\b(?:1\d{3}|20\d{2})\b")
# (what the folded question asks, what a date span must hold, bare spans that answer otherwise)
_DAY_OR_MONTH = re.compile(r"\b(?:ngay|thang) nam nao\b")  # "vào ngày tháng năm nào" asks for the whole date
_WITHIN_YEAR = re.compile(r"^.*\btháng \d{1,2},? (?=năm \d{4})", re.I)  # the day and month before a year
_ASKS_YEAR = re.compile(r"\b(?:" + _WHICH_YEAR + r")\b")
GRANULARITY = [
    (_ASKS_YEAR, YEAR, YEAR),
    (re.compile(r"\b(?:thang nao|which month)\b"), re.compile(r"tháng|/\d{1,2}\b", re.I), None),
    (re.compile(r"\b(?:ngay nao|ngay bao nhieu|what date|which day)\b"), re.compile(r"ngày|/\d{1,2}\b", re.I),
     re.compile(r"ngày \d{1,2}(?: tháng \d{1,2})?(?:,? năm \d{4})?", re.I)),
]


def needs_short_answer(kind: str, question: str) -> bool:
    """Whether only a sentence giving the fact itself answers: a figure ("bao nhiêu"), the holder
    of a named post, a year, month or day. Otherwise a sentence about it may."""
    return kind == "number" or (kind == "person" and bool(asked_role(question))) or (
        kind == "date" and any(asks.search(fold(question)) for asks, _, _ in GRANULARITY))


@functools.lru_cache(maxsize=1024)  # asked again of the same sentences by gates and preferences
def short_answer(kind: str, sentence: str, question: str) -> str:
    """The number, date, person or place ``sentence`` gives for ``question`` ("" when none): a
    whole phrase, never one that ends in a function word ("tượng đài … Hồ Chí Minh ở")."""
    return _whole_phrase(_short_answer(kind, sentence, question))


def constituent(sentence: str, span: str) -> str:
    """``span`` as a whole phrase of ``sentence``: a word pyvi segments it into is not cut ("25
    năm thiết" of "25 năm thiết lập" is "25 năm"), and a piece of a number written with spaced
    separators ("000 du khách" of "400 . 000 du khách") is none ("")."""
    at = sentence.find(span)
    if not span or at < 0:
        return span
    end = at + len(span)
    if (span[0].isdigit() and re.search(r"\d\s?[.,]\s?$", sentence[:at])) or (
            span[-1].isdigit() and re.match(r"\s?[.,]\s?\d", sentence[end:])):
        return ""
    spans = word_spans(sentence)
    inside = [(a, b) for a, b in spans if a < end and b > at]
    # Keep the words wholly inside the span: a cut word at either end is dropped.
    whole = [(a, b) for a, b in inside if a >= at and b <= end]
    if not whole:
        return ""
    return _whole_phrase(sentence[whole[0][0]:whole[-1][1]])


# pyvi's tags of the words a number phrase may hold: numerals, nouns (units, classifiers, names),
# and the punctuation between a number's digits ("22 . 000").
_NUMBER_PHRASE_TAGS = {"M", "N", "Nc", "Nu", "Ny", "Nb", "Np", "F"}
_COUNTS = re.compile(r"[\d.,]*\d[\d.,%]*|" + _NUMBER_WORDS + r"|tư|năm|lăm|mươi|chục|vạn|tỉ|rưỡi|nửa", re.I)  # a syllable


def number_phrase(sentence: str, span: str) -> str:
    """A number ``span`` of ``sentence`` up to the last of the numerals and nouns that follow its
    first numeral, by pyvi's tags: "90 . 000 người" of "90 . 000 người mỗi", "183 . 007 người" of
    "183 . 007 người sống", "18 %" of "18 % so". Unchanged without tags (no diacritics)."""
    at = sentence.find(span)
    tagged = [(a, b, tag) for a, b, tag in word_tags(sentence) if at >= 0 and a >= at and b <= at + len(span)]
    numeral = next((i for i, (_, _, tag) in enumerate(tagged) if tag == "M"), None)
    if numeral is None:
        return span
    end = numeral
    for i in range(numeral, len(tagged)):
        a, b, tag = tagged[i]
        if tag not in _NUMBER_PHRASE_TAGS or (tag == "M" and not all(map(_COUNTS.fullmatch, sentence[a:b].split()))):
            break  # not "mỗi", "các", which pyvi tags as numerals too
        if tag != "F":
            end = i
    return sentence[at:tagged[end][1]]


# How near a figure is to the truth is part of it: "khoảng 22 . 000 loài", "hơn 15 %".
_QUALIFIER = re.compile(r"(?:khoảng|hơn|gần|trên|dưới|xấp xỉ|chừng|ít nhất|gấp|hàng|\$)\s+$", re.I)


def with_qualifier(sentence: str, span: str) -> str:
    """A number ``span`` of ``sentence`` with the word before it that qualifies it, if any."""
    at = sentence.find(span)
    found = _QUALIFIER.search(sentence[max(0, at - 12):at]) if span and at >= 0 else None
    return f"{found.group(0)}{span}" if found else span


# Words that end no answer: a phrase cut after one of them is a fragment. With their diacritics:
# folded, "tử" (in "hoàng tử") would be "từ".
_FUNCTION_WORDS = set("ở tại của và với cho các những một được đã là có không thì mà trong về đến từ này đó "
                      "như bằng theo hay hoặc rằng sẽ đang".split())


def _whole_phrase(span: str) -> str:
    tokens = span.split()
    while tokens and tokens[-1].strip(".,;:").lower() in _FUNCTION_WORDS:
        tokens.pop()
    return " ".join(tokens) if any(t.lower() not in _FUNCTION_WORDS for t in tokens) else ""


def _short_answer(kind: str, sentence: str, question: str) -> str:
    asked = set(content_terms(question))
    if kind == "date":
        found = list(_DATE.finditer(sentence))
        for asks, needs, bare in GRANULARITY:  # "năm nào" is answered by a year, not "ngày 21/11"
            if asks.search(fold(question)):
                found = [d for d in found if needs.search(d.group(0))] or (list(bare.finditer(sentence)) if bare else [])
        # Not a date the question gives itself ("… cực đoan hơn năm 2005 vào năm nào?").
        found = [d for d in found if fold(d.group(0).strip()) not in fold(question)] or found
        if not found:
            return ""
        # Of several dates, the one next to the question's words (the first of equals).
        date = max(found, key=lambda d: len(asked & _next_to(sentence, d.start(), d.end()))).group(0).strip()
        if _ASKS_YEAR.search(fold(question)) and not _DAY_OR_MONTH.search(fold(question)):
            date = _WITHIN_YEAR.sub("", date)  # the year of "ngày 7 tháng 1 năm 1943"
        return date
    if kind == "number":
        unit = set(asked_unit(question))
        if not unit:  # which of several numbers: rag.scoring.SentenceScorer.best_number learns it
            return next((span for _, _, span in number_spans(sentence)), "")
        dates = [m.span() for m in _DATE.finditer(sentence)]
        # "bao nhiêu tấn gạo": only a number next to the unit asked for answers it, after it
        # ("2000 tấn gạo") or before it ("ở tuổi 39").
        for match in _NUMBER.finditer(sentence):
            if any(a <= match.start() < b for a, b in dates):
                continue
            span = match.group(0).strip().rstrip(".,")
            following = [fold(w) for w in words(span)[1:]] + (["phan tram", "%"] if "%" in span else [])
            if holds_unit(following, unit):
                return span
            before = sentence[max(0, match.start() - 30):match.start()].split()[-2:]
            at = next((i for i, w in enumerate(before) if fold(w) in unit), None)
            if at is not None:
                return f"{' '.join(before[at:])} {span.split()[0].rstrip('.,')}"
        # "năm hoàng tử": "năm" (also "year") counts when the thing asked follows it.
        for five in re.finditer(r"\bnăm((?:\s+[^\W\d]+){1,2})", sentence, re.I):
            if holds_unit([fold(w) for w in five.group(1).split()], unit):
                return five.group(0)
        return _number_before_unit(sentence, unit, dates)
    if kind == "person":
        role = asked_role(question)
        if role:
            return _name_for_role(sentence, role, asked)
        if not is_vietnamese(question) and _names_who_is_asked(sentence, question):
            return ""  # "arturo ayala la ai": the sentence alone, as for "Arturo Ayala là ai?"
        return person_by_verb(sentence, question, asked) or first_person(sentence, asked)
    if kind == "place":
        return _place(sentence, asked)
    return ""


def _next_to(sentence: str, start: int, end: int, n: int = 3) -> set[str]:
    """The folded words within ``n`` of a span of ``sentence``, either side."""
    return {fold(w) for w in words(sentence[:start])[-n:] + words(sentence[end:])[:n]}


def number_spans(sentence: str) -> list[tuple[int, int, str]]:
    """The numbers of ``sentence`` that are not part of a date, as ``(start, end, text)``."""
    dates = [m.span() for m in _DATE.finditer(sentence)]
    return [(m.start(), m.end(), m.group(0).strip().rstrip(".,")) for m in _NUMBER.finditer(sentence)
            if not any(a <= m.start() < b for a, b in dates)]


def _names_who_is_asked(sentence: str, question: str) -> bool:
    """Whether a question without capitals ("arturo ayala la ai") asks who a person the sentence
    names is: its subject is that name, so no name of the sentence answers it."""
    match = _WHO_IS.match(question.strip().lower())
    wanted = set((match.group("subject") or match.group("before")).split()) - _HONORIFICS if match else set()
    return bool(wanted) and any({fold(w) for w in name.split()} >= wanted for name in _names(sentence, set()))


def _place(sentence: str, asked: set[str]) -> str:
    """The place after "tại" or "ở" that follows the question's own words most closely ("đặt
    vòng hoa tại Tượng đài …", not "khảo sát … ở Buenos Aires"), and is not a place the question
    already names."""
    best, best_near = "", -1
    for match in re.finditer(r"\b(?:tại|ở)\s+((?:[^\W\d_][\w-]*\s?){1,8})", sentence):
        place = match.group(1).strip(" ,.;")
        if {fold(w) for w in words(place)} <= asked:
            continue
        near = len(asked & {fold(w) for w in words(sentence[:match.start()])[-4:]})
        if near > best_near:
            best, best_near = place, near
    return best


UNIT_WINDOW = 6  # words between a number and the thing it counts: "7 đến 10 phần trăm bác sĩ"


def _number_before_unit(sentence: str, unit: set[str], dates: list[tuple[int, int]]) -> str:
    """The last number a few words ahead of the thing counted, when it is not right next to it:
    "230 triệu USD cổ phần" answers "bao nhiêu cổ phần". Nothing when the sentence does not
    name that thing at all: its numbers count something else."""
    tokens = list(re.finditer(r"\S+", sentence))
    folded = [fold(t.group(0).strip(".,;:()")) for t in tokens]
    for i, token in enumerate(tokens):
        if not any(folded[i:i + len(u.split())] == u.split() for u in unit):
            continue
        window_start = tokens[max(0, i - UNIT_WINDOW)].start()
        numbers = [m for m in _NUMBER.finditer(sentence, window_start, token.start())
                   if not any(a <= m.start() < b for a, b in dates)]
        if numbers:
            return numbers[-1].group(0).strip().rstrip(".,")
    return ""


def first_person(sentence: str, asked: set[str]) -> str:
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
# Verbs of welcoming a delegation, whose subject is its host, folded.
_WELCOMING = ("chao don", "don tiep", "tiep don", "don")


# English verbs of questions about visits, as the (folded) Vietnamese phrases for them.
_ENGLISH_VERBS = {"meet": _MEETING, "met": _MEETING, "work": _MEETING, "worked": _MEETING,
                  "receive": _WELCOMING, "received": _WELCOMING, "welcomed": _WELCOMING, "hosted": _WELCOMING,
                  "led": ("dan dau", "lam truong doan"), "lead": ("dan dau", "lam truong doan"),
                  "headed": ("dan dau", "lam truong doan")}


@functools.lru_cache(maxsize=64)  # asked for each candidate sentence of one question
def _asked_verb(question: str) -> tuple[tuple[bool, tuple[str, ...]], ...]:
    """The verb phrases to look for, each with whether the question asks for its subject (or
    its object): "Ai dẫn đầu đoàn?" -> the subject of "dẫn đầu"; "Đoàn gặp ai?" -> the object of
    "gặp" or another verb of meeting; "Who did the delegation meet?" -> the same; "Ai đón tiếp
    đoàn?" -> the host: the subject of a verb of welcoming, else whom the delegation met."""
    if _HEADED.search(fold(question)) or re.search(r"\b(?:led|headed)\b", question.lower()):
        return _pairs(True, _HEADING)
    if is_english(question):
        asked = [w.lower() for w in words(question)]
        verb = next((w for w in asked if w in _ENGLISH_VERBS), "")
        at = next((i for i, w in enumerate(asked) if w in ("who", "whom", "which")), None)  # "In Peru? (Who …)"
        if not verb or at is None:
            return ()
        subject, phrases = asked[at:at + 2] == ["who", verb], [p.split() for p in _ENGLISH_VERBS[verb]]
        hosted = subject and _ENGLISH_VERBS[verb] is _WELCOMING  # "Who received the delegation?"
    else:
        asked = [fold(w) for w in words(question)]
        if "ai" not in asked:
            return ()
        at = asked.index("ai")
        start = at - 1 if at and asked[at - 1] == "nhung" else at  # "gặp những ai": the verb is "gặp"
        subject = start == 0 or asked[:start] == ["la"]
        verb = asked[at + 1:at + 3] if subject else asked[max(0, start - 2):start]
        verb = [w for w in verb if w not in STOPWORDS] if subject else verb
        if not verb or all(w in STOPWORDS for w in verb):
            return ()
        # The whole verb phrase if the sentence has it, else its last word ("gặp"), else another
        # verb of meeting ("làm việc với", "hội kiến").
        phrases = [verb, verb[-1:]] if len(verb) > 1 and verb[-1] not in STOPWORDS else [verb]
        if not subject and any(" ".join(p) in _MEETING for p in phrases):
            phrases += [m.split() for m in _MEETING]
        hosted = subject and any(" ".join(p) in _WELCOMING for p in phrases + [verb[:1]])  # "Ai đón đoàn?"
    if hosted:
        return _pairs(True, _WELCOMING) + _pairs(False, _MEETING)
    return _pairs(subject, phrases)


def _pairs(subject: bool, phrases) -> tuple[tuple[bool, tuple[str, ...]], ...]:
    """``(subject, phrase)`` for each phrase (a string or its words)."""
    return tuple((subject, tuple(p.split() if isinstance(p, str) else p)) for p in phrases)


def asks_who_led_or_met(question: str) -> bool:
    """Whether the question asks who led a delegation, whom it met or who welcomed it ("Ai dẫn
    đầu đoàn?", "Đoàn hội kiến ai?", "Who did the delegation meet?", "Ai đón tiếp đoàn?"): the
    verbs whose subject or object is the person asked in reports of official visits."""
    return any(phrase in _VISIT_VERBS for _, phrase in _asked_verb(question))


_VISIT_VERBS = set(_HEADING) | {tuple(m.split()) for m in _MEETING + _WELCOMING}


_SEVERAL = re.compile(r"\bnhung ai\b")  # "những ai" asks for everyone
# Words before the verb searched for its subject: "do đồng chí Nguyễn Thị Tuyến, Ủy viên Trung ương
# Đảng, Phó Bí thư Thường trực Thành ủy Hà Nội làm trưởng đoàn" puts 17 between name and verb.
SUBJECT_WINDOW = 24


def person_by_verb(sentence: str, question: str, asked: set[str]) -> str:
    """Who the question's verb points at: "Đoàn đã hội kiến ai?" -> the first name after
    "hội kiến" in the sentence; "Ai dẫn đầu đoàn?" -> the last name before "dẫn đầu"."""
    tokens = sentence.split()
    folded = [" ".join(fold(w) for w in words(t)) for t in tokens]
    for subject, phrase in _asked_verb(question):
        for i in range(len(folded) - len(phrase) + 1):
            if tuple(folded[i:i + len(phrase)]) == phrase:
                if i and tokens[i - 1].lower() == "sự":
                    continue  # "sự đón tiếp" is a noun: who thanks for it did not welcome
                if subject:
                    found = list(_names(" ".join(tokens[max(0, i - SUBJECT_WINDOW):i]) + " ,", asked))
                    return found[-1] if found else ""
                if tokens[i + len(phrase) - 1][-1] in ",;:.":
                    continue  # "tại cuộc gặp, bà …": the verb's clause ends there
                if _SEVERAL.search(fold(question)):  # "làm việc với những ai?": everyone in the clause
                    after = " ".join(tokens[i + len(phrase):])
                    return " và ".join(_names(after[:_phrase_end(after)], asked))
                after = " ".join(tokens[i + len(phrase):i + len(phrase) + 20])
                return first_person(after[:_phrase_end(after)], asked)
    return ""


def _capitalised_runs(sentence: str) -> list[list[str]]:
    runs, current = [], []
    for token in sentence.replace(",", " , ").split() + [","]:
        word = token.strip(".;:?!()\"“”")
        if word and word[0].isupper() and word == token.strip(".;:?!"):
            current.append(word)
            continue
        if len(current) >= 2:
            runs.append(current)
        current = []
    return runs


_WHEN_WORDS = set(fold("ngày tháng năm nào khi bao giờ lúc thời gian sẽ tới vào").split())


def dates_event(sentence: str, date: str, question: str) -> bool:
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
