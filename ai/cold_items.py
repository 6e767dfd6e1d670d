"""New items (in the catalogue after the last training, with no interactions the model learned from) ranked from
their features, with any factor model (ai/recommender_base.py's FactorModelBase).

A new item's factors are the mean of the factors (embedding and bias) of the trained items that share its
genres, each counted once per genre it shares (computed from per-genre sums: O(genres x factors), whatever the
catalogue size): a new thriller sits among the thrillers. So it is scored against a user's vector like any item (the personalised link's scale:
``ColdStartLink`` merges it into that link's ranking) and it is a neighbour of the items it resembles
(``similar``). An item whose genres no trained item has gets no factors (it waits for the next training).
`bias_shrink` lowers the borrowed bias: a new item has earned none of its neighbours' popularity.

No Django, no Neo4j.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai.recommendation_engine import ChainLink, RecommenderLink, UserQuery
from ai.recommender_base import EMPTY_IDS, FactorModelBase, as_index_array, top_n

__all__ = ["ColdItems", "ColdStartLink", "genre_matrix"]


def genre_matrix(genres: Sequence[Any], names: dict[str, int] | None = None) -> tuple[sp.csr_matrix, dict[str, int]]:
    """Items x genres binary csr of casefolded genre names (names: a vocabulary to extend, or a new one)."""
    names = {} if names is None else names
    rows, cols = [], []
    for i, item_genres in enumerate(genres):
        if isinstance(item_genres, str):
            item_genres = [item_genres]
        for g in {g.casefold() for g in item_genres or () if isinstance(g, str)}:
            rows.append(i)
            cols.append(names.setdefault(g, len(names)))
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(genres), max(len(names), 1)))
    return m, names


class ColdItems:
    """Factors for items a factor model never saw, from their genres. Columns of the new items follow the model's:
    new item j is column n_items + j of the extended item space."""

    def __init__(self, model: FactorModelBase, known_genres: Sequence[Any], new_ids: Sequence[str],
                 new_genres: Sequence[Any], *, bias_shrink: float = 0.5) -> None:
        factors = model.item_factors  # (n_items, d + 1): embedding, bias
        self.n_items = factors.shape[0]
        known, names = genre_matrix(known_genres)
        vocabulary = dict(names)
        new, _ = genre_matrix(new_genres, vocabulary)
        new.resize((new.shape[0], known.shape[1]))  # genres no trained item has cannot help: dropped
        # per genre, the summed factors of the trained items that have it, and how many have it: a new item's
        # vector sums those of its genres (each trained item counted once per genre it shares) over the counts
        genre_sums = np.asarray(known.T @ factors, dtype=np.float64)  # (genres, d + 1)
        genre_counts = np.asarray(known.sum(axis=0), dtype=np.float64).ravel()
        totals = np.asarray(new @ genre_counts, dtype=np.float64).ravel()
        self.has_factors = totals > 0
        vectors = np.asarray(new @ genre_sums, dtype=np.float64) / np.maximum(totals, 1e-12)[:, None]
        vectors[:, -1] *= bias_shrink
        self.ids = np.asarray(list(new_ids), dtype=object)
        self.factors = np.ascontiguousarray(vectors.astype(np.float32))
        self.norms = np.maximum(np.linalg.norm(self.factors[:, :-1], axis=1), 1e-12)
        self._model = model
        self._known_norms = np.maximum(np.linalg.norm(factors[:, :-1], axis=1), 1e-12)

    def __len__(self) -> int:
        return int(self.ids.size)

    @property
    def columns(self) -> np.ndarray:
        """The new items' columns of the extended item space."""
        return self.n_items + np.arange(self.ids.size, dtype=np.int64)

    def scores(self, user_vector: np.ndarray) -> np.ndarray:
        """Each new item's score for a user vector ([embedding, 1.0]); -inf for one without factors."""
        return np.where(self.has_factors, self.factors @ user_vector, -np.inf).astype(np.float32)

    def similar(self, column: int, n: int, filter_items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Extended columns most similar (embedding cosine) to one column, new and trained items alike; only new
        items for a trained column (merge them with the model's own similar items), every item for a new one."""
        item_factors = self._model.item_factors
        if column >= self.n_items:
            j = column - self.n_items
            if not self.has_factors[j]:
                return EMPTY_IDS, np.empty(0, np.float32)
            vector, norm = self.factors[j, :-1], self.norms[j]
            known = (item_factors[:, :-1] @ vector) / (self._known_norms * norm)
            new = np.where(self.has_factors, (self.factors[:, :-1] @ vector) / (self.norms * norm), -np.inf)
            sims = np.concatenate([known, new]).astype(np.float32)
            excluded = np.concatenate([as_index_array(filter_items), [column]])
        else:
            vector, norm = item_factors[column, :-1], self._known_norms[column]
            new = np.where(self.has_factors, (self.factors[:, :-1] @ vector) / (self.norms * norm), -np.inf)
            sims = np.concatenate([np.full(self.n_items, -np.inf), new]).astype(np.float32)
            excluded = np.concatenate([as_index_array(filter_items), np.arange(self.n_items)])
        excluded = np.concatenate([excluded, self.columns[~self.has_factors]])
        return top_n(sims, n, excluded)


class ColdStartLink(ChainLink):
    """A factor model's personalised link with new items merged in: the user's vector (learned, or folded in
    from their items) scores the new items' factors on the same scale as the trained ones."""

    def __init__(self, inner: RecommenderLink, cold: ColdItems) -> None:
        self.inner = inner
        self.cold = cold
        self.name = inner.name

    def _vector(self, user: UserQuery) -> np.ndarray | None:
        model = self.inner.recommender
        mode = self.inner.mode(user)
        if mode == "learned":
            return model.user_vector(user.row)
        if mode == "fold_in":
            return model.recalculate_user(user.row_matrix(model.n_items))
        return None

    def recommend(self, user: UserQuery, n: int, filter_items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        answer = self.inner.recommend(user, n, filter_items)
        if answer is None:
            return None
        vector = self._vector(user)
        if vector is None or not len(self.cold):
            return answer
        excluded = as_index_array(filter_items)
        excluded = excluded[excluded >= self.cold.n_items] - self.cold.n_items
        cold_ids, cold_scores = top_n(self.cold.scores(vector), n, excluded)
        ids = np.concatenate([answer[0], cold_ids + self.cold.n_items])
        scores = np.concatenate([answer[1], cold_scores])
        order = np.argsort(-scores, kind="stable")[:n]
        return ids[order], scores[order]

    def explain_many(self, user: UserQuery, items: list[int], k: int = 3) -> list[list[tuple[str, Any]]]:
        trained = [i for i in items if i < self.cold.n_items]
        reasons = iter(self.inner.explain_many(user, trained, k=k))
        return [next(reasons) if i < self.cold.n_items else [] for i in items]
