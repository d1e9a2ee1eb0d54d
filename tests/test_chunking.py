import dataclasses

from conftest import SEED_CORPUS

from rag.chunking import MAX_WORDS, chunk_article
from rag.corpus import Article, load_corpus
from rag.text import split_sentences, words


def _article(text: str, title: str = "Tiêu đề") -> Article:
    return Article(doc_id="doc", title=title, text=text, url="https://example.vn/a", outlet="Nhân Dân",
                   date="2022-11-21")


def test_passages_are_whole_sentences_near_the_target_with_one_sentence_overlap():
    for article in load_corpus(SEED_CORPUS).articles:
        chunks = chunk_article(article, target_words=80)
        sentences = [s for p in article.paragraphs for s in split_sentences(p)]
        assert len(chunks) > 10
        runs = [_sentence_run(chunk.text, sentences) for chunk in chunks]  # never cut mid-sentence
        for index, (chunk, (start, end)) in enumerate(zip(chunks, runs)):
            assert len(words(chunk.text)) <= MAX_WORDS
            fresh = sentences[start + 1 if index else start:end]
            assert len(fresh) == 1 or len(words(" ".join(fresh))) <= 80  # only one sentence passes the target
        for (_, end_before), (start_after, _), chunk in zip(runs, runs[1:], chunks[1:]):
            assert start_after == end_before - 1 and chunk.overlap == 1  # one sentence of overlap
            assert " ".join(chunk.sentences) == chunk.text
        assert runs[0][0] == 0 and runs[-1][1] == len(sentences)  # nothing is lost


def _sentence_run(text: str, sentences: list[str]) -> tuple[int, int]:
    for start in range(len(sentences)):
        for end in range(start + 1, len(sentences) + 1):
            if " ".join(sentences[start:end]) == text:
                return start, end
    raise AssertionError(f"not a run of whole sentences: {text}")


def test_chunks_carry_metadata_and_positions():
    chunks = chunk_article(_article("Câu một. Câu hai."))
    (chunk,) = chunks
    assert (chunk.doc_id, chunk.position, chunk.title, chunk.url, chunk.outlet, chunk.date) == (
        "doc", 0, "Tiêu đề", "https://example.vn/a", "Nhân Dân", "2022-11-21")
    assert chunk.metadata()["date_num"] == 20221121
    assert chunk.sentences == ("Câu một.", "Câu hai.") and chunk.overlap == 0


def test_only_a_sentence_longer_than_the_hard_cap_is_cut_at_clauses():
    long_sentence = ", ".join(f"mục {i} được bàn" for i in range(200)) + "."  # 800 words
    chunks = chunk_article(_article(long_sentence + " Câu cuối."), target_words=80)
    assert len(chunks) >= 3
    assert all(len(words(c.text)) <= MAX_WORDS for c in chunks)
    assert all(c.text.split()[-1].endswith((",", ".")) for c in chunks)  # cut after a clause
    joined = " ".join(c.text for c in chunks)
    assert joined.count("mục 0 ") == 1 and "mục 199 được bàn." in joined


def test_ids_are_stable_and_an_edit_changes_only_the_passages_it_touches():
    (article,) = [a for a in load_corpus(SEED_CORPUS).articles if "Cuba" in a.text][:1]
    first = chunk_article(article, 80)
    again = chunk_article(article, 80)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    assert len({c.chunk_id for c in first}) == len(first)

    edited_text = article.text.replace("2000 tấn gạo", "3000 tấn gạo")
    edited = chunk_article(dataclasses.replace(article, text=edited_text), 80)
    changed = {c.chunk_id for c in edited} - {c.chunk_id for c in first}
    assert 1 <= len(changed) <= 2  # the passage with the number, and the next one if it overlaps
    assert all("3000 tấn gạo" in c.text for c in edited if c.chunk_id in changed)


def test_a_new_title_gives_new_ids():
    article = _article("Câu một. Câu hai.")
    assert (chunk_article(article)[0].chunk_id
            != chunk_article(dataclasses.replace(article, title="Khác"))[0].chunk_id)


def test_sentence_boundaries_survive_as_metadata():
    from rag.chunking import sentence_ends, split_at_ends

    sentences = ("Cuộc hội đàm tại La Habana. (Ảnh: Minh Thu)", "Đồng chí Luis phát biểu.", "Hết.")
    text = " ".join(sentences)
    assert sentence_ends(sentences) == f"{len(sentences[0])},{len(sentences[0]) + 1 + len(sentences[1])},{len(text)}"
    assert split_at_ends(text, sentence_ends(sentences)) == sentences
    assert split_at_ends("Một câu.", "") == ("Một câu.",)
