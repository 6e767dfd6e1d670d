"""LightFM matrix factorisation (WARP loss) on the factor-model base: without side features
(``LightFMRecommender``) and hybrid, with item features besides each item's identity (``LightFMHybridRecommender``).

Only the factors are kept after fit (for the hybrid: each item's representation, the sum of its features'
embeddings), so loading a saved model does not need lightfm itself, nor the feature matrix.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai.recommender_base import FactorModelBase, check_interactions, readonly

__all__ = ["LightFMHybridRecommender", "LightFMRecommender", "lightfm_available"]


def lightfm_available() -> bool:
    """True when the lightfm package (and its compiled extension) imports."""
    try:
        from lightfm import LightFM  # noqa: F401
    except ImportError:
        return False
    return True


class LightFMRecommender(FactorModelBase):
    """LightFM, trained on the interactions (weights as sample weights when use_weights); scores are
    ``item_factors @ user_factors[u]`` with the item biases in the last column."""

    name = "lightfm"

    def __init__(
        self,
        *,
        no_components: int = 30,
        epochs: int = 30,
        learning_rate: float = 0.05,
        loss: str = "warp",
        item_alpha: float = 0.0,
        user_alpha: float = 0.0,
        max_sampled: int = 10,
        num_threads: int | None = os.cpu_count(),
        random_state: int | None = 42,
        use_weights: bool = False,
        learning_schedule: str = "adagrad",
    ) -> None:
        super().__init__()
        if loss not in {"warp", "bpr", "warp-kos", "logistic"}:
            raise ValueError(f"loss={loss!r} is not a LightFM loss; use 'warp', 'bpr', 'warp-kos' or 'logistic'")
        if learning_schedule not in {"adagrad", "adadelta"}:
            raise ValueError(f"learning_schedule={learning_schedule!r}: use 'adagrad' or 'adadelta'")
        if int(no_components) < 1 or int(epochs) < 1 or int(max_sampled) < 1:
            raise ValueError("no_components, epochs and max_sampled must be at least 1")
        self.no_components = int(no_components)
        self.epochs = int(epochs)
        self.learning_rate = float(learning_rate)
        self.loss = loss
        self.item_alpha = float(item_alpha)
        self.user_alpha = float(user_alpha)
        self.max_sampled = int(max_sampled)
        self.num_threads = max(1, int(num_threads or 1))
        self.random_state = random_state
        self.use_weights = bool(use_weights)
        self.learning_schedule = learning_schedule

    def get_params(self) -> dict[str, Any]:
        keys = ("no_components", "epochs", "learning_rate", "loss", "item_alpha", "user_alpha", "max_sampled",
                "num_threads", "random_state", "use_weights", "learning_schedule")
        return {key: getattr(self, key) for key in keys}

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> LightFMRecommender:
        matrix = check_interactions(interactions)
        model = self._lightfm_fit(matrix, None, show_progress)
        embeddings = model.user_embeddings, model.item_embeddings, model.item_biases
        del model  # its adagrad accumulators (twice the embeddings) go before the serving state's temporaries come
        # one assignment: readers see the old state or the new one
        self._state = self._factor_state(matrix, *embeddings)
        return self

    def _lightfm_fit(self, matrix: sp.csr_matrix, item_features: sp.csr_matrix | None, show_progress: bool):
        try:
            from lightfm import LightFM
        except ImportError as exc:
            raise ImportError(
                "LightFMRecommender needs the lightfm package: pip install lightfm-next "
                "(or use make_recommender(), which falls back to PopularityRecommender)"
            ) from exc
        coo = matrix.tocoo()
        binary = sp.coo_matrix((np.ones_like(coo.data), (coo.row, coo.col)), shape=coo.shape)
        sample_weight = None
        if self.use_weights:  # normalised to mean 1 so learning_rate means the same with or without weights
            sample_weight = sp.coo_matrix((coo.data / coo.data.mean(), (coo.row, coo.col)), shape=coo.shape)
        model = LightFM(
            no_components=self.no_components,
            loss=self.loss,
            learning_schedule=self.learning_schedule,
            learning_rate=self.learning_rate,
            item_alpha=self.item_alpha,
            user_alpha=self.user_alpha,
            max_sampled=self.max_sampled,
            random_state=self.random_state,
        )
        model.fit(binary, item_features=item_features, sample_weight=sample_weight, epochs=self.epochs,
                  num_threads=self.num_threads, verbose=show_progress)
        return model

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        fitted = self.__dict__.get("_state")
        if fitted is not None and not fitted.item_factors.flags.f_contiguous:  # a row-major copy: score column-major
            object.__setattr__(fitted, "item_factors", readonly(np.asfortranarray(fitted.item_factors)))


class LightFMHybridRecommender(LightFMRecommender):
    """LightFM with item features: each item is its identity feature plus its side features (genres, decade,
    type, artists: ai/item_features.py), each row normalised to sum 1 with the side features together weighing
    `feature_weight` times the identity. An item is represented by the sum of its features' embeddings. An item
    nobody has interacted with (a new one) is represented by its side features alone (WARP only ever sampled its
    identity as a negative): the item cold-start path, ranking it for the users whose taste points at its genres.

    item_features: (n_items x n_features) scipy.sparse, rows in the interaction matrix's column order, or None
    (identity only: then it is plain LightFM). Kept with the model (a few bytes per item) so that it can be
    fitted again; serving uses only the representations."""

    name = "lightfm_hybrid"

    def __init__(self, *, item_features: sp.spmatrix | None = None, feature_weight: float = 1.0,
                 feature_names: list[str] | None = None, **params: Any) -> None:
        super().__init__(**params)
        if item_features is not None and not sp.issparse(item_features):
            raise TypeError("item_features must be a scipy.sparse matrix (items x features), e.g. from "
                            "ai.item_features.item_features_from_details()")
        if not float(feature_weight) >= 0:
            raise ValueError(f"feature_weight={feature_weight!r} must be >= 0")
        self.item_features = None if item_features is None else sp.csr_matrix(item_features, dtype=np.float32)
        self.feature_weight = float(feature_weight)
        self.feature_names = list(feature_names) if feature_names is not None else None

    def get_params(self) -> dict[str, Any]:
        n_features = 0 if self.item_features is None else int(self.item_features.shape[1])
        return {**super().get_params(), "feature_weight": self.feature_weight, "n_features": n_features}

    def _features(self, n_items: int) -> sp.csr_matrix:
        identity = sp.identity(n_items, dtype=np.float32, format="csr")
        side = self.item_features
        if side is None or side.shape[1] == 0:
            return identity
        if side.shape[0] != n_items:
            raise ValueError(f"item_features has {side.shape[0]} rows, the interactions {n_items} items: build the "
                             "features in the matrix's column order")
        side = side.copy()
        side.data[:] = 1.0
        per_row = np.maximum(np.asarray(side.sum(axis=1)).ravel(), 1.0)
        side = sp.diags(self.feature_weight / per_row) @ side
        features = sp.hstack([identity, side], format="csr")
        totals = np.asarray(features.sum(axis=1)).ravel()
        return (sp.diags(1.0 / totals) @ features).astype(np.float32).tocsr()

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> LightFMHybridRecommender:
        matrix = check_interactions(interactions)
        features = self._features(matrix.shape[1])
        model = self._lightfm_fit(matrix, features, show_progress)
        biases, embeddings = model.get_item_representations(features)
        cold = np.flatnonzero(np.bincount(matrix.indices, minlength=matrix.shape[1]) == 0)
        side = self._side_only(cold, features)
        if side is not None:  # an item nobody had: its identity learned only "not this one"; its features speak
            cold_biases, cold_embeddings = model.get_item_representations(side)
            biases, embeddings = biases.copy(), embeddings.copy()
            biases[cold], embeddings[cold] = cold_biases, cold_embeddings
        user_embeddings = model.user_embeddings
        del model  # as in LightFMRecommender.fit: the accumulators go first
        self._state = self._factor_state(matrix, user_embeddings, embeddings, biases)
        return self

    def _side_only(self, items: np.ndarray, features: sp.csr_matrix) -> sp.csr_matrix | None:
        """The rows of `items` with their side features only (identity dropped, renormalised to sum 1), for the
        items that have some; None when none has."""
        n_items = features.shape[0]
        if items.size == 0 or features.shape[1] == n_items:
            return None
        rows = features[items].tolil()
        rows[:, :n_items] = 0
        rows = rows.tocsr()
        rows.eliminate_zeros()
        totals = np.asarray(rows.sum(axis=1)).ravel()
        if not (totals > 0).any():
            return None
        keep = totals > 0
        rows = sp.diags(np.where(keep, 1.0 / np.maximum(totals, 1e-12), 0.0)) @ rows
        full = features[items].copy()  # items without side features keep their identity representation
        full = sp.vstack([rows[i] if keep[i] else full[i] for i in range(items.size)], format="csr")
        return full.astype(np.float32)
