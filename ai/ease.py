"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): a closed-form item-item model.

    B = I - P / diag(P),   P = (X^T X + lambda I)^-1,   diag(B) = 0,   scores(user) = history row @ B

Fitting inverts one dense (items x items) matrix, so it is bounded: at most ``max_items`` items (the inverse of
n items takes 8 n^2 bytes twice over in float64 and ~n^3 / 3 flops: 5,000 items ~0.4 GB and a few seconds on
2 cores, 20,000 items ~6 GB and minutes), otherwise fit() raises ``CatalogueTooLargeError`` and the selection
(ai/model_selection.py) leaves EASE out for that type. Serving keeps a sparsified B: the ``keep`` largest weights of
each row (item i's ``keep`` strongest "users who have i also have j"), so a 5,000-item model is ~8 MB instead of
100 MB dense; the pruned weights are small (ml-100k: 200 of 1,682 per row lose < 0.002 P@10).

Fold-in is the model itself: a user is their history row, so an unknown user or a history that changed since
fit is scored exactly as a learned one (``recalculate_user`` changes nothing). Explanations are exact too: the
score of item j is the sum over history items h of w_h * B[h, j], so "because" names the largest terms.
"""
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
    UnknownUserError,
    as_index_array,
    check_interactions,
    history_weights,
    readonly,
    top_n,
)

__all__ = ["CatalogueTooLargeError", "EASERecommender"]


class CatalogueTooLargeError(ValueError):
    """EASE was asked to fit more items than its bound allows."""


@dataclass(frozen=True)
class _EASEState:
    seen: FittedMatrix
    weights: sp.csr_matrix  # items x items, float32: the sparsified B (row h: what having h adds to each item)


class EASERecommender(RecommenderBase):
    """EASE with L2 regularisation `regularization` (lambda), on binary interactions unless use_weights.

    max_items bounds the catalogue it fits (CatalogueTooLargeError above it); keep: nonzero weights per row of
    the served B."""

    name = "ease"
    folds_in = True

    def __init__(self, *, regularization: float = 500.0, use_weights: bool = False, max_items: int = 8000,
                 keep: int = 256) -> None:
        super().__init__()
        if not float(regularization) > 0:
            raise ValueError(f"regularization={regularization!r}: EASE needs a positive lambda (e.g. 500)")
        if int(max_items) < 1 or int(keep) < 1:
            raise ValueError("max_items and keep must be at least 1")
        self.regularization = float(regularization)
        self.use_weights = bool(use_weights)
        self.max_items = int(max_items)
        self.keep = int(keep)

    def get_params(self) -> dict[str, Any]:
        return {"regularization": self.regularization, "use_weights": self.use_weights,
                "max_items": self.max_items, "keep": self.keep}

    def _input(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        if self.use_weights:
            return matrix
        binary = matrix.copy()
        binary.data[:] = 1.0
        return binary

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> EASERecommender:
        matrix = check_interactions(interactions)
        n_items = matrix.shape[1]
        if n_items > self.max_items:
            raise CatalogueTooLargeError(
                f"EASE fits at most max_items={self.max_items} items (a dense {n_items} x {n_items} inverse); this "
                f"matrix has {n_items}: raise max_items (MUSICBUD_EASE_MAX_ITEMS) if memory allows, or use a "
                "factor model")
        x = self._input(matrix).astype(np.float64)
        gram = np.asarray((x.T @ x).todense(), dtype=np.float64)
        gram[np.diag_indices(n_items)] += self.regularization
        weights = np.linalg.inv(gram)
        del gram
        weights /= -np.diag(weights).copy()[None, :]  # in place: one n x n array at a time
        weights[np.diag_indices(n_items)] = 0.0
        self._state = _EASEState(seen=FittedMatrix.of(matrix, use_weights=False),
                                 weights=_sparsify(weights.astype(np.float32), self.keep))
        return self

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        fitted = self.__dict__.get("_state")
        if fitted is not None:
            for array in (fitted.weights.data, fitted.weights.indices, fitted.weights.indptr):
                array.setflags(write=False)

    # --- serving -------------------------------------------------------------------------------
    def _row(self, state: _EASEState, userid: int | None, user_items: Any) -> sp.csr_matrix:
        n_items = state.weights.shape[0]
        if user_items is None:
            if userid is None or not 0 <= int(userid) < state.seen.matrix.shape[0]:
                raise UnknownUserError(userid)
            return self._input(state.seen.matrix[int(userid)])
        items, weights = history_weights(user_items)
        keep = (items >= 0) & (items < n_items)
        values = weights[keep] if self.use_weights else np.ones(int(keep.sum()), dtype=np.float32)
        return sp.csr_matrix((values, (np.zeros(int(keep.sum()), dtype=np.int64), items[keep])), shape=(1, n_items))

    def _user_scores(self, state: _EASEState, userid: int | None, user_items: Any, recalculate_user: bool
                     ) -> np.ndarray:
        # the history row is the user: recalculate_user changes nothing (a learned user is scored the same way)
        return np.asarray((self._row(state, userid, user_items) @ state.weights).todense(), dtype=np.float32).ravel()

    def score_items(self, userids: np.ndarray) -> np.ndarray:
        state = self._fitted()
        userids = as_index_array(userids)
        for userid in userids[(userids < 0) | (userids >= state.seen.matrix.shape[0])][:1]:
            raise UnknownUserError(int(userid))
        rows = self._input(state.seen.matrix[userids])
        return np.asarray((rows @ state.weights).todense(), dtype=np.float32)

    def similar_items(self, itemid: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The items item `itemid` most supports (its largest positive weights in B), never itself."""
        state = self._fitted()
        itemid = self._check_item(state, itemid)
        w = state.weights
        cols, vals = w.indices[w.indptr[itemid]:w.indptr[itemid + 1]], w.data[w.indptr[itemid]:w.indptr[itemid + 1]]
        positive = vals > 0
        if not positive.any():
            return EMPTY_IDS, EMPTY_SCORES
        scores = np.full(w.shape[1], -np.inf, dtype=np.float32)
        scores[cols[positive]] = vals[positive]
        return top_n(scores, n, np.array([itemid]))

    def explain_many(self, userid: int | None, itemids: list[int], user_items: Any = None, k: int = 3
                     ) -> list[list[tuple[int, float]]]:
        """The history items h with the largest positive terms w_h * B[h, j] of each item j's score."""
        state = self._fitted()
        items = np.asarray(itemids, dtype=np.int64).ravel()
        for itemid in items[(items < 0) | (items >= state.weights.shape[0])][:1]:
            self._check_item(state, int(itemid))
        row = self._row(state, userid, user_items)
        history, hist_w = row.indices.astype(np.int64), row.data
        if history.size == 0 or k <= 0 or items.size == 0:
            return [[] for _ in items]
        terms = np.asarray(state.weights[history][:, items].todense(), dtype=np.float32) * hist_w[:, None]
        terms[history[:, None] == items[None, :]] = -np.inf
        order = np.argsort(-terms, axis=0, kind="stable")[:k]
        best = np.take_along_axis(terms, order, axis=0).T.tolist()
        ids = history[order].T.tolist()
        return [[(item, w) for item, w in zip(ids[j], best[j]) if w > 0] for j in range(items.size)]


def _sparsify(weights: np.ndarray, keep: int) -> sp.csr_matrix:
    """The `keep` largest-magnitude weights of each row of a dense matrix, as csr (float32, read-only)."""
    n_rows, n_cols = weights.shape
    if keep >= n_cols:
        out = sp.csr_matrix(weights)
    else:
        cols = np.argpartition(-np.abs(weights), keep - 1, axis=1)[:, :keep]
        cols.sort(axis=1)
        values = np.take_along_axis(weights, cols, axis=1)
        indptr = np.arange(0, n_rows * keep + 1, keep, dtype=np.int64)
        out = sp.csr_matrix((values.ravel(), cols.ravel(), indptr), shape=(n_rows, n_cols))
    out.eliminate_zeros()
    out.sort_indices()
    for array in (out.data, out.indices, out.indptr):
        readonly(array)
    return out
