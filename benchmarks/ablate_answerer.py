"""What each remaining hand rule of the extractive answerer is worth: the development set,
XQuAD-vi, the corpus set and dev's questions asked of the seed corpus answered with the shipped
model, once as is and once without each rule.

    python benchmarks/ablate_answerer.py            # the table of evalsets/README.md ("Ablation")

Most rules left are gates that make the answerer say "not found": the development set has no
unanswerable question, so their worth shows on the corpus set's unanswerables and on dev's
questions asked of the seed corpus (off topic there: none has an answer), and their cost on the
answerable questions. Rules that pick a short answer show in F1 more than in `contains`, and in
the new-user set (``evalsets/new-user.jsonl``): its answerable questions count when the answer
states the fact first (``leads``), the others when they get "not found".
"""
from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_answerer import open_set  # noqa: E402

from rag import answer, evaluation  # noqa: E402
from rag.settings import Settings  # noqa: E402


@contextmanager
def without(*patches):
    """The answerer with ``patches`` applied; the question module's caches emptied before and
    after, so no answer or unit computed under other rules is reused."""
    from rag import question

    with ExitStack() as stack:
        for target, value in patches:
            stack.enter_context(mock.patch(target, value))
        caches = (question.short_answer, question._asked_unit)
        for cache in caches:
            cache.cache_clear()
        try:
            yield
        finally:
            for cache in caches:
                cache.cache_clear()


# name -> (what the rule does, the patches that take it out)
RULES = {
    "none (as shipped)": ("", ()),
    "unknown-words floor": ("a question most of whose words (pyvi's; without diacritics, syllables; in English, "
                            "all) no article writes is not answered",
                            (("rag.answer.mostly_unknown", lambda question, lexical: False),)),
    "similarity floor": ("the best sentence's e5 similarity ≥ 0.80 (English or without diacritics: or half its words)",
                         (("rag.answer.MIN_SIMILARITY", -1.0),)),
    "word-overlap floor": ("a Vietnamese answer sentence holds ≥ 25 % of the question's content words (as typed)",
                           (("rag.answer.MIN_OVERLAP", 0.0),)),
    "named places and people": ("the article names every capitalised place or person of the question",
                                (("rag.answer.named_terms", lambda question: []),)),
    "typed facts required": ("a figure, a post's holder or a year is answered only by a sentence giving it",
                             (("rag.answer.needs_short_answer", lambda kind, question: False),)),
    "the date's clause": ("a date answers only if its clause tells of the event asked about",
                          (("rag.answer.dates_event", lambda sentence, date, question: True),)),
    "\"mấy\" asks how many": ("\"mấy\" (typed \"may\" before or after a word that counts) asks as \"bao nhiêu\" "
                             "does; \"quận mấy\" numbers the word before it",
                             (("rag.question._few", lambda question: None),)),
    "pyvi's words for the unit": ("the thing counted is a segmented word (\"đô la\"), not each syllable",
                                  (("rag.question.segment_words", lambda text: text),)),
    "who-led-or-met preference": ("who led / whom the delegation met / who hosted it prefers a sentence naming "
                                  "that person",
                                  (("rag.answer.VERB_RATIO", 2.0),)),
    "a named person's post": ("\"Nguyễn Thị Tuyến giữ chức vụ gì?\", \"Bà … là ai?\" prefers a sentence "
                              "attaching a title to the name",
                              (("rag.answer.holds_post", lambda sentence, person: False),)),
    "who is, without capitals": ("\"arturo ayala la ai\" gets no other name of the sentence naming him",
                                 (("rag.question._names_who_is_asked", lambda sentence, question: False),)),
    "the place a follow-up names": ("\"Còn Argentina thì sao?\" replaces the last place the question before "
                                    "named",
                                    (("rag.answer._names_in", lambda text: []),)),
    "names one letter off": ("a name of the question matches one a letter away (\"Maastrich\", \"Vietel\")",
                             (("rag.answer.spelled_like", lambda term, known, near=None: term in known),)),
    "titles' holders": ("\"Tổng Bí thư … là ai?\" is answered by the name attached to that title",
                        (("rag.question.asked_role", lambda question: []),)),
    "English titles": ("\"Who is the First Secretary of …?\" reads the title as Vietnamese writes it",
                       (("rag.question.english_role", lambda question: []),)),
    "the person the verb points at": ("\"Đoàn hội kiến ai?\" leads with the name after the verb, "
                                      "\"Ai dẫn đầu?\" with the one before it",
                                      (("rag.question.person_by_verb", lambda sentence, question, asked: ""),)),
    "the place after tại / ở": ("a place question leads with the place after \"tại\" / \"ở\" "
                               "nearest the question's words",
                               (("rag.question._place", lambda sentence, asked: ""),)),
    "a number ahead of its unit": ("\"230 triệu USD cổ phần\" answers \"bao nhiêu cổ phần\"",
                                   (("rag.question._number_before_unit", lambda sentence, unit, dates: ""),)),
    "the date next to the question's words": ("of a sentence's several dates, the one within three words of "
                                              "the question's words answers, not the first",
                                              (("rag.question._next_to", lambda sentence, start, end, n=3: set()),)),
    "whole phrases": ("a short answer is a whole phrase of pyvi's words, never a piece of a number",
                      (("rag.answer.constituent", lambda sentence, span: span),)),
}


def main() -> int:
    settings = Settings.load()
    sets = {name: open_set(name, settings) for name in ("dev", "xquad", "corpus", "off-topic", "new-user")}
    print("| rule taken out | what it does | dev `contains` | dev F1 | XQuAD-vi `contains` | corpus `contains` "
          "| corpus F1 | corpus unanswerables abstaining | off-topic abstaining | new-user questions right |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (does, patches) in RULES.items():
        figures = {}
        with without(*patches):
            for set_name, (retriever, questions, _) in sets.items():
                answerer = answer.ExtractiveAnswerer(retriever, top_k=settings.top_k)
                outcomes = evaluation.ask_all(answerer, retriever, questions)
                scores = [evaluation.score(o) for o in outcomes]
                figures[set_name] = evaluation.summarise(scores)
                figures[set_name]["abstaining"] = sum(s["abstained"] for s in scores if not s["answerable"])
                figures[set_name]["unanswerable_n"] = sum(not s["answerable"] for s in scores)
                # Fact first for a question the articles answer, "not found" for one they do not.
                figures[set_name]["right"] = sum(s["leads"] if s["answerable"] else s["abstained"] for s in scores)
        dev, xquad, corpus, off, new = (figures[n] for n in ("dev", "xquad", "corpus", "off-topic", "new-user"))
        print(f"| {name} | {does} | {100 * dev['contains']:.1f} | {100 * dev['f1']:.1f} | "
              f"{100 * xquad['contains']:.1f} | {100 * corpus['contains']:.1f} | {100 * corpus['f1']:.1f} | "
              f"{corpus['abstaining']} of {corpus['unanswerable_n']} | "
              f"{100 * off['abstaining'] / off['unanswerable_n']:.1f} | {new['right']} of {new['questions']} |",
              flush=True)
    for _, _, index in sets.values():
        index.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
