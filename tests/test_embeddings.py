import numpy as np
import pytest

from rag.embeddings import EmbeddingError, SentenceTransformerEmbeddings, make_embeddings
from rag.settings import Settings

RICE = "Hà Nội hỗ trợ 2000 tấn gạo cho Đảng bộ, chính quyền và nhân dân Thủ đô La Habana."
PERU = "Tại Peru, đoàn đã có các buổi làm việc với Phó Tổng Bí thư Đảng Cộng sản Peru Arturo Ayala."


def test_e5_embeds_queries_and_passages_normalised(e5):
    assert e5.name == "e5-small-q4" and e5.dimension == 384
    passages = np.array(e5.embed_documents([RICE, PERU]))
    query = np.array(e5.embed_query("Hà Nội tặng La Habana bao nhiêu tấn gạo?"))
    assert passages.shape == (2, 384) and query.shape == (384,)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1, atol=1e-3)
    assert passages[0] @ query > passages[1] @ query
    # The "query: " and "passage: " prefixes make the two sides differ for the same text.
    assert not np.allclose(e5.embed_query(RICE), passages[0])
    assert e5.embed_documents([]) == []


def test_e5_matches_english_questions_to_vietnamese_passages(e5):
    passages = np.array(e5.embed_documents([RICE, PERU]))
    assert np.argmax(passages @ np.array(e5.embed_query("How much rice did Hanoi give Havana?"))) == 0
    assert np.argmax(passages @ np.array(e5.embed_query("Who did the delegation meet in Peru?"))) == 1


def test_default_settings_choose_e5(e5):
    assert make_embeddings(Settings()).name == "e5-small-q4"


@pytest.mark.slow
def test_sentence_transformers_backend_from_a_local_folder(minilm, minilm_path):
    assert minilm.name == f"sentence-transformers:{minilm_path}" and minilm.dimension == 384
    vectors = np.array(minilm.embed_documents(["The delegation visited Cuba.", "Rice was donated."]))
    query = np.array(minilm.embed_query("Which country did they visit?"))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ query > vectors[1] @ query


@pytest.mark.slow
def test_sentence_transformers_prefixes_are_applied(minilm, minilm_path):
    prefixed = make_embeddings(Settings(embedding=f"sentence-transformers:{minilm_path}",
                                        query_prefix="query: ", passage_prefix="passage: "))
    assert np.allclose(prefixed.embed_query("Cuba"), minilm.embed_documents(["query: Cuba"])[0], atol=1e-5)
    assert np.allclose(prefixed.embed_documents(["Cuba"])[0], minilm.embed_documents(["passage: Cuba"])[0],
                       atol=1e-5)
    assert not np.allclose(prefixed.embed_query("Cuba"), minilm.embed_query("Cuba"), atol=1e-3)


def test_a_model_that_is_not_on_this_machine_is_a_clear_error(tmp_path):
    pytest.importorskip("sentence_transformers")
    with pytest.raises(EmbeddingError, match="nothing is downloaded"):
        SentenceTransformerEmbeddings(str(tmp_path / "no-such-model"))


def test_an_unknown_embedder_name_is_a_clear_error():
    with pytest.raises(EmbeddingError, match="sentence-transformers:<model"):
        make_embeddings(Settings(embedding="word2vec"))
