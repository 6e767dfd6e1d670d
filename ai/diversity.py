"""Diversity: re-rank a pool of candidates by maximal marginal relevance (Carbonell & Goldstein, 1998).

Each step takes the candidate that maximises (1 - diversity) * relevance - diversity * (its highest similarity
to an item already taken). Relevance is the candidate's place in the pool's ranking mapped to [0, 1] (1 for the
best): the chain's links score on different scales, their order is what they agree on. Similarity in [0, 1] is
the cosine of the model's item embeddings (clipped at 0) and the Jaccard index of the items' genres, averaged
where both are known. diversity = 0 is the pool's own order (callers skip the re-rank then: nothing is
computed); 1 takes the best item, then always the one least like those taken.

No Django, no Neo4j.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["genre_similarity", "intra_list_diversity", "mmr_order", "pool_size", "similarity_matrix"]


def pool_size(n: int, n_items: int) -> int:
    """How many candidates a re-rank of n items chooses from: 4 n (at least 50), at most the catalogue."""
    return max(n, min(n_items, max(4 * n, 50)))


def genre_similarity(genres: Sequence[frozenset | set | None]) -> tuple[np.ndarray, np.ndarray]:
    """(Jaccard index of every pair's genres, whether both items of the pair have genres)."""
    names: dict[str, int] = {}
    rows, cols = [], []
    for i, item_genres in enumerate(genres):
        for g in item_genres or ():
            rows.append(i)
            cols.append(names.setdefault(g, len(names)))
    m = np.zeros((len(genres), max(len(names), 1)), dtype=np.float32)
    if rows:
        m[rows, cols] = 1.0
    inter = m @ m.T
    sizes = m.sum(axis=1)
    union = sizes[:, None] + sizes[None, :] - inter
    known = (sizes[:, None] > 0) & (sizes[None, :] > 0)
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0), known


def similarity_matrix(embeddings: np.ndarray | None, genres: Sequence | None) -> np.ndarray:
    """Pairwise similarity in [0, 1] of a pool: cosine of `embeddings` (rows, clipped at 0) and genre Jaccard,
    averaged where both are known; zeros when neither is given."""
    parts, weights = [], []
    if embeddings is not None and len(embeddings):
        e = np.asarray(embeddings, dtype=np.float32)
        unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        parts.append(np.clip(unit @ unit.T, 0.0, 1.0))
        weights.append(np.ones_like(parts[-1]))
    if genres is not None and len(genres):
        jaccard, known = genre_similarity(genres)
        parts.append(jaccard)
        weights.append(known.astype(np.float32))
    if not parts:
        size = len(embeddings) if embeddings is not None else len(genres or ())
        return np.zeros((size, size), dtype=np.float32)
    total = sum(p * w for p, w in zip(parts, weights))
    count = sum(weights)
    return np.where(count > 0, total / np.maximum(count, 1e-12), 0.0).astype(np.float32)


def mmr_order(similarity: np.ndarray, n: int, diversity: float) -> list[int]:
    """Positions (into the pool, best-first order) of the n items MMR takes, in the order taken."""
    if not 0.0 <= diversity <= 1.0:
        raise ValueError(f"diversity must be in [0, 1], got {diversity}")
    size = similarity.shape[0]
    n = min(n, size)
    if n <= 0:
        return []
    relevance = 1.0 - np.arange(size, dtype=np.float64) / size
    closest = np.zeros(size, dtype=np.float64)  # highest similarity to an item taken
    free = np.ones(size, dtype=bool)
    order: list[int] = []
    for _ in range(n):
        value = np.where(free, (1.0 - diversity) * relevance - diversity * closest, -np.inf)
        pick = int(np.argmax(value))  # ties: the more relevant
        order.append(pick)
        free[pick] = False
        closest = np.maximum(closest, similarity[pick])
    return order


def intra_list_diversity(similarity: np.ndarray) -> float:
    """Mean pairwise dissimilarity (1 - similarity) of a list, in [0, 1]; 0 for fewer than 2 items."""
    size = similarity.shape[0]
    if size < 2:
        return 0.0
    upper = np.triu_indices(size, k=1)
    return float(np.mean(1.0 - similarity[upper]))
