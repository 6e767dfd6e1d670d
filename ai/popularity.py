"""The most popular items: the answer for anyone, known or not (the last link of every fallback chain)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai.recommender_base import (
    EMPTY_IDS,
    EMPTY_SCORES,
    FittedMatrix,
    RecommenderBase,
    as_index_array,
    check_interactions,
    top_n,
)

__all__ = ["PopularityRecommender"]


@dataclass(frozen=True)
class _PopularityState:
    seen: FittedMatrix
    # items x users, binary: who interacted with each item (co-occurrence for similar_items). Built when first
    # asked for: a popularity engine that only tops up another engine's answers never needs it.
    item_users: sp.csr_matrix | None = None


class PopularityRecommender(RecommenderBase):
    """Score = summed weight per item (or the number of users when use_weights=False).

    recommend() gives every user, known or not (any int, or None), the same ranking minus their own items.
    """

    name = "popularity"
    needs_user = False
    folds_in = True  # the ranking needs nothing of the user: any history "folds in"

    def __init__(self, *, use_weights: bool = True) -> None:
        super().__init__()
        self.use_weights = bool(use_weights)

    def get_params(self) -> dict[str, Any]:
        return {"use_weights": self.use_weights}

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> PopularityRecommender:
        matrix = check_interactions(interactions)
        self._state = _PopularityState(seen=FittedMatrix.of(matrix, use_weights=self.use_weights))
        return self

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        fitted = self.__dict__.get("_state")
        if fitted is not None and fitted.item_users is not None:  # saved with it: built again when asked for
            self._state = _PopularityState(seen=fitted.seen)

    @staticmethod
    def _item_users(state: _PopularityState) -> sp.csr_matrix:
        if state.item_users is None:
            binary = state.seen.matrix.copy()
            binary.data[:] = 1.0
            object.__setattr__(state, "item_users", binary.T.tocsr())  # a cache: the same for every caller
        return state.item_users

    def knows_user(self, userid: int | None) -> bool:
        return self._state is not None

    def _user_scores(self, state: _PopularityState, userid: int | None, user_items: Any, recalculate_user: bool
                     ) -> np.ndarray:
        return state.seen.popularity.copy()

    def score_items(self, userids: np.ndarray) -> np.ndarray:
        state = self._fitted()
        return np.tile(state.seen.popularity, (len(as_index_array(userids)), 1))

    def similar_items(self, itemid: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Co-occurrence cosine |U_i & U_j| / sqrt(|U_i| |U_j|) in [0, 1]; only items sharing a user."""
        state = self._fitted()
        itemid = self._check_item(state, itemid)
        item_users = self._item_users(state)
        users = item_users.indices[item_users.indptr[itemid]:item_users.indptr[itemid + 1]]
        if users.size == 0:
            return EMPTY_IDS, EMPTY_SCORES
        counts = np.bincount(state.seen.matrix[users].indices, minlength=item_users.shape[0])
        counts = counts.astype(np.float32)
        degrees = np.diff(item_users.indptr).astype(np.float32)
        sims = counts / np.sqrt(np.maximum(degrees * degrees[itemid], 1.0))
        return top_n(sims, n, np.concatenate([np.flatnonzero(counts == 0), [itemid]]))
