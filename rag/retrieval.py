"""Stage 5: hybrid retrieval — dense (Chroma) and lexical (BM25) rankings fused by reciprocal rank.

Dense search understands paraphrases and English questions; BM25 over folded syllables catches
names, numbers and questions typed without diacritics. Reciprocal-rank fusion needs no score
calibration between the two: a passage ranked well by either side comes up.
"""
from __future__ import annotations

import dataclasses

from .index import Hit, VectorIndex

RRF_K = 60  # the constant of Cormack et al. (2009): damps the weight of the very first ranks


def reciprocal_rank_fusion(rankings: list[list[str]], k: int = RRF_K) -> dict[str, float]:
    """``id -> sum of 1 / (k + rank)`` over the rankings (ranks start at 1)."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


class HybridRetriever:
    def __init__(self, index: VectorIndex, candidates: int = 30) -> None:
        self.index = index
        self.candidates = candidates

    def search(self, query: str, k: int = 4) -> list[Hit]:
        if not query.strip():
            return []
        depth = max(self.candidates, k)
        dense = self.index.search(query, k=depth)
        lexical = self.index.lexical_search(query, k=depth)
        fused = reciprocal_rank_fusion([[h.chunk_id for h in dense], [cid for cid, _ in lexical]])
        best = sorted(fused, key=lambda cid: -fused[cid])[:k]
        hits = {h.chunk_id: h for h in dense}
        missing = [cid for cid in best if cid not in hits]
        hits.update((h.chunk_id, h) for h in self.index.get(missing))
        return [dataclasses.replace(hits[cid], score=fused[cid]) for cid in best if cid in hits]
