"""Pure scoring functions for ``rag eval``: ranks, answer matching, shares and percentiles.

Nothing here touches an index or a model; every function has hand-computed unit tests
(tests/test_metrics.py). Text is compared in two ways:

- **strict**: Unicode NFC, case-insensitive, runs of spaces collapsed; diacritics count
  ("Lào" is not "lao");
- **folded**: the same without diacritics and with đ -> d ("Ha Noi" matches "Hà Nội").
"""
from __future__ import annotations

import math
import re
import string
import unicodedata
from collections import Counter
from typing import Iterable, Sequence

from .text import fold, normalize

CUTOFFS = (1, 3, 5, 10)

# --------------------------------------------------------------------------- ranks


def hit_at(rank: int | None, k: int) -> float:
    return 1.0 if rank is not None and rank <= k else 0.0


def reciprocal_rank(rank: int | None) -> float:
    return 1.0 / rank if rank is not None else 0.0


def ndcg_at(rank: int | None, k: int = 10) -> float:
    """nDCG@k with one relevant item: 1 / log2(rank + 1) within the cut-off."""
    return 1.0 / math.log2(rank + 1) if rank is not None and rank <= k else 0.0


def article_rank(doc_ids: Sequence[str], relevant: str) -> int | None:
    """Rank of ``relevant`` among the distinct articles of a passage ranking."""
    seen: list[str] = []
    for doc_id in doc_ids:
        if doc_id not in seen:
            seen.append(doc_id)
            if doc_id == relevant:
                return len(seen)
    return None


def passage_rank(passages: Sequence[str], answers: Sequence[str]) -> int | None:
    """Rank of the first passage that contains a gold answer (strict), when no article is named."""
    for rank, text in enumerate(passages, start=1):
        if contains_answer(text, answers):
            return rank
    return None


# --------------------------------------------------------------------------- answer matching


def strict_key(text: str) -> str:
    """NFC, case-folded, one space between words: how gold answers and answers are compared."""
    return unicodedata.normalize("NFC", " ".join(normalize(text).casefold().split()))


def folded_key(text: str) -> str:
    """:func:`strict_key` without diacritics (``Đ`` -> ``d``)."""
    return fold(strict_key(text))


def contains_answer(text: str, answers: Iterable[str], folded: bool = False) -> bool:
    """True when one gold answer occurs in ``text`` as whole words ("2000 tấn" is not in "12000 tấn")."""
    key = folded_key if folded else strict_key
    haystack = key(text)
    for answer in answers:
        needle = key(answer)
        if needle and re.search(rf"(?<!\w){re.escape(needle)}(?!\w)", haystack):
            return True
    return False


_CITATION = re.compile(r"\s*\[\s*\d+(?:\s*[-–,;]\s*\d+)*\s*\]")


def strip_citations(text: str) -> str:
    """The answer text without its ``[n]`` markers: "2000 tấn gạo [1]." -> "2000 tấn gạo."."""
    return _CITATION.sub("", text).strip()


# Unicode punctuation (every P* category) and ASCII punctuation and symbols, as in SQuAD and MLQA.
def _is_punctuation(ch: str) -> bool:
    return ch in string.punctuation or unicodedata.category(ch).startswith("P")


def squad_normalize(text: str, english: bool = False) -> str:
    """SQuAD answer normalisation adapted to Vietnamese: NFC, lower case, punctuation removed,
    whitespace collapsed; the articles a/an/the are dropped only for English ("an" is a
    Vietnamese word: "an ninh")."""
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(ch for ch in text if not _is_punctuation(ch))
    if english:
        text = re.sub(r"\b(?:a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, gold: str, english: bool = False) -> float:
    """SQuAD token F1 of one prediction against one gold answer (tokens: words after normalising;
    for Vietnamese, syllables)."""
    predicted = squad_normalize(prediction, english).split()
    expected = squad_normalize(gold, english).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str, english: bool = False) -> float:
    return float(squad_normalize(prediction, english) == squad_normalize(gold, english))


def best_f1(prediction: str, golds: Sequence[str], english: bool = False) -> float:
    """The best F1 over the accepted answers (SQuAD takes the maximum)."""
    return max((token_f1(prediction, g, english) for g in golds), default=0.0)


def best_exact_match(prediction: str, golds: Sequence[str], english: bool = False) -> float:
    return max((exact_match(prediction, g, english) for g in golds), default=0.0)


def is_english(texts: Iterable[str]) -> bool:
    """True when no text has a letter with a diacritic or đ: the set's answers are not Vietnamese."""
    return not any(fold(t) != t.lower() for t in texts)


# --------------------------------------------------------------------------- aggregates


def share(count: float, total: float) -> float | None:
    """``count / total``; None when there is nothing to count (shown as "–", never as 0)."""
    return count / total if total else None


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def abstention_scores(abstained: Sequence[bool], unanswerable: Sequence[bool]) -> tuple[float | None, float | None]:
    """(precision, recall) of "not found": of the abstentions, the share on unanswerable
    questions; of the unanswerable questions, the share abstained on."""
    right = sum(1 for a, u in zip(abstained, unanswerable) if a and u)
    return share(right, sum(map(bool, abstained))), share(right, sum(map(bool, unanswerable)))


# --------------------------------------------------------------------------- thresholds


def parse_thresholds(specs: Iterable[str], valid: Sequence[str]) -> dict[str, float]:
    """``["contains=70", "hit@5=90%"]`` -> ``{"contains": 70.0, "hit@5": 90.0}`` (percentages, as
    printed). Raises ValueError naming the bad spec, listing the valid metric names."""
    thresholds = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"--min {spec!r}: use METRIC=VALUE, e.g. --min contains=70")
        if name not in valid:
            raise ValueError(f"--min: unknown metric {name!r}; valid metrics: {', '.join(valid)}")
        try:
            number = float(value.strip().rstrip("%"))
        except ValueError:
            raise ValueError(f"--min {spec!r}: {value!r} is not a number (a percentage, as printed)") from None
        if not 0 <= number <= 100:
            raise ValueError(f"--min {spec!r}: give a percentage between 0 and 100")
        thresholds[name] = number
    return thresholds


def unmet(figures: dict, thresholds: dict[str, float]) -> list[str]:
    """One message per threshold not met; ``figures`` holds shares (0..1), thresholds percentages.
    A metric that could not be measured (None: e.g. no unanswerable question) does not pass."""
    messages = []
    for name, minimum in thresholds.items():
        value = figures.get(name)
        if value is None:
            messages.append(f"{name}: not measured on this set (needs at least {minimum:g})")
        elif round(100 * value, 1) < minimum:  # compared as printed: "76.0" meets 76
            messages.append(f"{name} = {100 * value:.1f}, below the minimum {minimum:g}")
    return messages
