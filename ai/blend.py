"""A blend of recommenders: a weighted sum of their per-user normalised scores (different models err
differently: on MovieLens-100k EASE and LightFM together beat either alone).

Each component's scores for a user are standardised over the catalogue (mean 0, standard deviation 1 among the
finite scores; -inf stays -inf), then summed with the blend's weights (ai/model_selection.py chooses them on the
validation split). Serving and evaluation compute exactly this (``normalised`` is the one function).

Everything that is not a score comes from the components: similar items and explanations from the heaviest
component, similar users from the heaviest one that has user factors. Fold-in: the blend folds a user in when
every component does, each from the same current history.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai.recommender_base import (
    FittedMatrix,
    RecommenderBase,
    as_index_array,
    check_interactions,
)

__all__ = ["BlendRecommender", "combined", "normalised"]


def normalised(scores: np.ndarray) -> np.ndarray:
    """Each row standardised over its finite entries (float32; -inf kept; a constant row becomes 0)."""
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float32))
    finite = np.isfinite(scores)
    counts = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    values = np.where(finite, scores, 0.0)
    mean = values.sum(axis=1, keepdims=True) / counts
    spread = np.sqrt((np.where(finite, scores - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / counts)
    out = (scores - mean) / np.maximum(spread, 1e-9)
    out[~finite] = -np.inf
    return out.astype(np.float32, copy=False)


def combined(parts: list[np.ndarray], weights: list[float]) -> np.ndarray:
    """sum_c weights[c] * parts[c], parts already normalised() (components of weight 0 left out)."""
    total = None
    for weight, part in zip(weights, parts):
        if weight == 0:
            continue
        term = weight * part
        total = term if total is None else total + term
    return total


@dataclass(frozen=True)
class _BlendState:
    seen: FittedMatrix
    components: tuple[RecommenderBase, ...]  # fitted, private to this state


class BlendRecommender(RecommenderBase):
    """sum_c weight_c * normalised(scores_c). components: unfitted recommenders (prototypes: fit() fits copies,
    so a refit never touches the state being served); weights: one per component, >= 0, not all 0."""

    name = "blend"

    def __init__(self, *, components: list[RecommenderBase], weights: list[float]) -> None:
        super().__init__()
        if not components:
            raise ValueError("a blend needs at least one component, e.g. [EASERecommender(), LightFMRecommender()]")
        if any(not isinstance(c, RecommenderBase) for c in components):
            raise TypeError("blend components must be recommenders (make_recommender(...))")
        weights = [float(w) for w in weights]
        if len(weights) != len(components) or any(not w >= 0 for w in weights) or not sum(weights) > 0:
            raise ValueError(f"weights {weights} must be one non-negative number per component, not all zero")
        self.components = list(components)
        self.weights = weights

    @property
    def needs_user(self) -> bool:  # type: ignore[override]
        return any(c.needs_user for c in self.components)

    @property
    def folds_in(self) -> bool:  # type: ignore[override]
        return all(c.folds_in for c in self.components)

    def get_params(self) -> dict[str, Any]:
        return {"components": [{"engine": c.name, "params": c.get_params()} for c in self.components],
                "weights": self.weights}

    @classmethod
    def of_fitted(cls, components: list[RecommenderBase], weights: list[float]) -> BlendRecommender:
        """A blend of components already fitted on the same matrix (how the selection scores weights)."""
        blend = cls(components=components, weights=weights)
        blend._state = _BlendState(seen=FittedMatrix.of(components[0]._fitted().seen.matrix, use_weights=False),
                                   components=tuple(components))
        return blend

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> BlendRecommender:
        matrix = check_interactions(interactions)
        fitted = tuple(copy.deepcopy(c).fit(matrix, show_progress=show_progress) for c in self.components)
        self._state = _BlendState(seen=FittedMatrix.of(matrix, use_weights=False), components=fitted)
        return self

    def share_matrix(self, matrix: sp.csr_matrix) -> None:
        state = self._state
        if state is None:
            return
        for component in state.components:
            component.share_matrix(matrix)
        super().share_matrix(matrix)

    def knows_user(self, userid: int | None) -> bool:
        state = self._state
        return state is not None and all(c.knows_user(userid) for c in state.components)

    def _user_scores(self, state: _BlendState, userid: int | None, user_items: Any, recalculate_user: bool
                     ) -> np.ndarray:
        parts = [normalised(c._user_scores(c._fitted(), userid, user_items, recalculate_user)) if w else None
                 for c, w in zip(state.components, self.weights)]
        return combined(parts, self.weights)[0]

    def score_items(self, userids: np.ndarray) -> np.ndarray:
        state = self._fitted()
        userids = as_index_array(userids)
        return combined([normalised(c.score_items(userids)) if w else None
                         for c, w in zip(state.components, self.weights)], self.weights)

    def _heaviest(self, state: _BlendState) -> list[RecommenderBase]:
        order = np.argsort(-np.asarray(self.weights), kind="stable")
        return [state.components[i] for i in order if self.weights[i] > 0]

    def similar_items(self, itemid: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        state = self._fitted()
        return self._heaviest(state)[0].similar_items(itemid, n=n)

    def similar_users(self, userid: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        state = self._fitted()
        answer = self._heaviest(state)[0].similar_users(userid, n=n)
        for component in self._heaviest(state)[1:]:
            if answer[0].size:
                break
            answer = component.similar_users(userid, n=n)
        return answer

    def explain_many(self, userid: int | None, itemids: list[int], user_items: Any = None, k: int = 3
                     ) -> list[list[tuple[int, float]]]:
        state = self._fitted()
        return self._heaviest(state)[0].explain_many(userid, itemids, user_items, k=k)
