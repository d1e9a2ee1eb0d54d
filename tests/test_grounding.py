"""The grounding check's pure functions: sentences and their citations, support by a passage,
prompt echo. (Applied to streamed answers in tests/test_llm.py; measured by benchmarks/grounding.py.)"""
import pytest

from rag.grounding import (Sentence, echoes_prompt, find_citations, numbers, shingles, split_answer, support,
                           without_citations)
from rag.llm import INSTRUCTIONS, SYSTEM_PROMPT, build_messages

RICE_PASSAGE = ("Tiếp tục thúc đẩy và nâng cao hiệu quả hợp tác giữa Hà Nội và La Habana\n"
                "Qua trao đổi, Phó Bí thư Thường trực Thành ủy Hà Nội Nguyễn Thị Tuyến cho biết, Đảng bộ, chính "
                "quyền và nhân dân Thủ đô mong muốn chia sẻ những khó khăn, đặc biệt là vấn đề an ninh lương "
                "thực thông qua món quà là 2000 tấn gạo hỗ trợ cho Đảng bộ, chính quyền và nhân dân Thủ đô La Habana.")
MEMORANDA_PASSAGE = ("Tiếp tục thúc đẩy và nâng cao hiệu quả hợp tác giữa Hà Nội và La Habana\n"
                     "Thời gian qua, Hà Nội và La Habana đã trao đổi và ký kết hai Biên bản ghi nhớ hợp tác về "
                     "thúc đẩy hợp tác vào năm 2000 và 2005.")
RICE = "Hà Nội tặng La Habana bao nhiêu tấn gạo?"


@pytest.mark.parametrize("text, expected", [
    ("Gạo [1]. Ngô [2].", [("Gạo [1].", (1,), ""), ("Ngô [2].", (2,), " ")]),
    # the citations after the full stop belong to the sentence before them
    ("Hà Nội tặng gạo. [1] Hai bên ký biên bản [2][3].", [("Hà Nội tặng gạo. [1]", (1,), ""),
                                                        ("Hai bên ký biên bản [2][3].", (2, 3), " ")]),
    ("Một dòng [1]\n- Hai [2]", [("Một dòng [1]", (1,), ""), ("- Hai [2]", (2,), "\n")]),
    ("TP. Hồ Chí Minh và ông A. Escala có mặt [1].", [("TP. Hồ Chí Minh và ông A. Escala có mặt [1].", (1,), "")]),
    ("Giá 2.000 đồng, ngày 30/10. Xong", [("Giá 2.000 đồng, ngày 30/10.", (), ""), ("Xong", (), " ")]),
    ("Hỏi? Đáp! [1, 2]", [("Hỏi?", (), ""), ("Đáp! [1, 2]", (1, 2), " ")]),
    ("", []), ("  \n ", []),
])
def test_split_answer(text, expected):
    assert split_answer(text) == [Sentence(*e) for e in expected]


def test_while_streaming_the_sentence_being_written_is_left_out():
    assert [s.text for s in split_answer("Gạo [1]. Ngô", final=False)] == ["Gạo [1]."]
    # "… gạo." may still get its citation: not complete until the next sentence starts
    assert split_answer("Hà Nội tặng gạo.", final=False) == []
    assert split_answer("Hà Nội tặng gạo. [1", final=False) == []
    assert [s.text for s in split_answer("Hà Nội tặng gạo. [1] Hai", final=False)] == ["Hà Nội tặng gạo. [1]"]


def test_citation_helpers():
    assert find_citations("A [2]. B [1][2]. C [2-3].") == [2, 1, 3]
    assert without_citations("Hà Nội tặng [1] 2000 tấn gạo [1, 2].") == "Hà Nội tặng 2000 tấn gạo ."


@pytest.mark.parametrize("text, found", [
    ("2.000 tấn và 2,5 triệu", {"2000", "2.5"}),
    ("từ 19 đến 30/10/2022", {"19", "30", "10", "2022"}),
    ("ngày 05/6", {"5", "6"}),
    ("không có số", set()),
])
def test_numbers(text, found):
    assert numbers(text) == found


@pytest.mark.parametrize("claim", [
    "Hà Nội tặng La Habana 2000 tấn gạo [1].",
    "Món quà là 2.000 tấn gạo [1].",  # thousands separator
    "Ha Noi tang La Habana 2000 tan gao de ho tro an ninh luong thuc [1].",  # without diacritics
    "Theo đoạn trích [1], Hà Nội gửi 2000 tấn gạo cho La Habana.",  # words about the passages don't count
    "Phó Bí thư Thường trực Nguyễn Thị Tuyến chia sẻ khó khăn về an ninh lương thực.",
])
def test_a_sentence_the_passage_states_is_supported(claim):
    verdict = support(claim, RICE_PASSAGE, RICE)
    assert verdict.supported and verdict.coverage >= 0.75
    assert all(word.islower() and word.isalpha() for word in verdict.missing)  # a word or two, never a name or number


@pytest.mark.parametrize("claim, source, missing", [
    ("Hà Nội tặng La Habana 3000 tấn gạo [1].", RICE_PASSAGE, "3000"),  # an invented figure
    ("Bà Nguyễn Thị Lan trao tặng 2000 tấn gạo [1].", RICE_PASSAGE, "Lan"),  # an invented name
    ("Hà Nội tặng La Habana 2000 tấn thép, xe buýt và máy tính [1].", RICE_PASSAGE, "thep"),  # other goods
    # the right fact with the wrong passage: 2000 is there (a year), the gift is not
    ("Hà Nội tặng La Habana 2000 tấn gạo [2].", MEMORANDA_PASSAGE, "gao"),
])
def test_a_sentence_the_passage_does_not_state_is_not_supported(claim, source, missing):
    verdict = support(claim, source, RICE)
    assert not verdict.supported and missing in verdict.missing


def test_two_passages_together_support_a_sentence_citing_both():
    claim = "Hà Nội tặng 2000 tấn gạo và hai bên ký biên bản ghi nhớ năm 2005 [1][2]."
    assert not support(claim, RICE_PASSAGE).supported and not support(claim, MEMORANDA_PASSAGE).supported
    assert support(claim, RICE_PASSAGE + "\n" + MEMORANDA_PASSAGE).supported


def test_number_words_of_the_passage_support_digits():
    assert support("Hai bên ký 2 Biên bản ghi nhớ năm 2000 và 2005 [2].", MEMORANDA_PASSAGE).supported


@pytest.mark.parametrize("claim", ["Đúng vậy [1].", "[1]", "Theo bài báo [1]."])
def test_a_sentence_that_states_nothing_is_not_supported(claim):
    assert not support(claim, RICE_PASSAGE).supported


def test_what_the_question_asks_does_not_carry_a_sentence_that_adds_nothing_found():
    # Every word of the question is in the passage, but what the sentence adds is not.
    claim = "Hà Nội tặng La Habana bao nhiêu tấn gạo: chưa rõ, có lẽ vài nghìn tấn ngô [1]."
    assert not support(claim, RICE_PASSAGE, RICE).supported


@pytest.mark.parametrize("text", [
    "Các đoạn trích:",
    "[1] Bài báo: Tiếp tục thúc đẩy và nâng cao hiệu quả hợp tác giữa Hà Nội và La Habana (Lao Động Thủ Đô)",
    "Câu hỏi: Hà Nội tặng La Habana bao nhiêu tấn gạo?",
    "Quy tắc:",
    "- Chỉ trả lời bằng thông tin có trong các đoạn trích; không dùng kiến thức bên ngoài.",
    "Mọi thông tin trong câu trả lời phải kèm số của đoạn trích chứa nó [1].",
    "Trả lời ngắn gọn chỉ dựa trên các đoạn trích từ [1] đến [4] ở trên.",
    "cac doan trich: [1] bai bao: tiep tuc thuc day",  # without diacritics
])
def test_the_prompts_scaffolding_is_an_echo(text):
    assert echoes_prompt(text, INSTRUCTIONS)


@pytest.mark.parametrize("text", [
    "Hà Nội tặng La Habana 2000 tấn gạo [1].",
    "Đoàn đại biểu thành phố Hà Nội thăm Cuba [1].",  # the persona's words are an answer's words too
    "Không tìm thấy thông tin này trong các bài báo.",  # what the model is asked to say
    "Bài báo cho biết đoàn thăm Argentina và Peru [1].",
])
def test_answers_are_no_echo(text):
    assert not echoes_prompt(text, INSTRUCTIONS)


def test_every_line_of_the_real_prompt_but_passages_and_question_is_caught():
    from rag.index import Hit

    hit = Hit(chunk_id="c", doc_id="d", text="Nội dung.", title="Tiêu đề", score=1.0, outlet="Báo",
              sentences=("Nội dung.",))
    system, user = build_messages(RICE, [hit])
    lines = [line for line in (system.content + "\n" + user.content).splitlines()
             if line.strip() and line not in ("Nội dung.", "Bạn là trợ lý trả lời câu hỏi về các chuyến thăm và làm việc ở "
                                              "nước ngoài của đoàn đại biểu thành phố Hà Nội. Bạn chỉ được dùng các "
                                              "đoạn trích từ bài báo được đánh số [1], [2], … mà người dùng cung cấp.")]
    assert len(lines) >= 7 and SYSTEM_PROMPT.startswith("Bạn là trợ lý")
    assert [line for line in lines if not echoes_prompt(line, INSTRUCTIONS)] == []


def test_shingles():
    assert shingles("Một hai ba bốn", 3) == {("mot", "hai", "ba"), ("hai", "ba", "bon")}
    assert shingles("Một hai", 3) == frozenset()


def test_a_long_name_may_be_one_letter_off_a_short_one_may_not():
    source = "Đoàn thăm Ban dự án của Tập đoàn Viễn thông Quân đội Vietel tại Peru; ông Lin phát biểu."
    assert support("Đoàn thăm Ban dự án của Tập đoàn Viettel tại Peru [1].", source).supported
    assert not support("Đoàn thăm Ban dự án của Tập đoàn Vinatel tại Peru [1].", source).supported
    assert not support("Đoàn thăm Ban dự án tại Peru, ông Lan phát biểu [1].", source).supported


def test_every_noun_must_be_there_verbs_may_be_the_models_own():
    # An invented thing inside a sentence otherwise copied: its nouns are not in the passage.
    claim = ("Qua trao đổi, Phó Bí thư Thường trực Thành ủy Hà Nội Nguyễn Thị Tuyến cho biết, Đảng bộ, chính quyền "
             "và nhân dân Thủ đô mong muốn chia sẻ những khó khăn về tuyến đường sắt cao tốc [1].")
    verdict = support(claim, RICE_PASSAGE)
    assert not verdict.supported and "duong sat" in verdict.missing and verdict.coverage > 0.8
    # Another verb ("trao", "gửi") is a paraphrase; words of several syllables count where they stand together.
    assert support("Hà Nội trao 2000 tấn gạo cho La Habana để hỗ trợ an ninh lương thực [1].", RICE_PASSAGE).supported
    verdict = support("Hà Nội tặng La Habana 2000 tấn gạo hỗ trợ an ninh quốc phòng [1].", RICE_PASSAGE)
    assert not verdict.supported and "quoc phong" in verdict.missing


def test_nouns_that_refer_back_and_names_the_question_gives_need_not_be_in_the_passage():
    passage = "Hai bên nhấn mạnh dịp hai nước kỷ niệm 25 năm thiết lập quan hệ ngoại giao vào tháng 11 tới."
    article = "Đoàn Thành ủy Hà Nội thăm Argentina, Peru. … Việt Nam và Peru … " + passage
    question = "Việt Nam và Peru kỷ niệm bao nhiêu năm thiết lập quan hệ ngoại giao?"
    claim = "Việt Nam và Peru kỷ niệm 25 năm thiết lập quan hệ ngoại giao [1]."
    assert support(claim, passage, question, article).supported
    assert not support(claim, passage, question, context="").supported  # the article must hold them
    # The question's other words are no licence: "tấn gạo" must be in the cited passage itself.
    assert not support("Hà Nội tặng La Habana 2000 tấn gạo [2].", MEMORANDA_PASSAGE, RICE, RICE_PASSAGE).supported
    assert support("Hai bên ký hai Biên bản ghi nhớ năm 2000 và 2005 [2].", MEMORANDA_PASSAGE).supported
