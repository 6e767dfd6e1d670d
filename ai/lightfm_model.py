"""LightFM matrix factorisation (WARP loss, no side features) on the factor-model base.

Only the factors are kept after fit, so loading a saved model does not need lightfm itself.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai.recommender_base import FactorModelBase, check_interactions, readonly

__all__ = ["LightFMRecommender", "lightfm_available"]


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
        try:
            from lightfm import LightFM
        except ImportError as exc:
            raise ImportError(
                "LightFMRecommender needs the lightfm package: pip install lightfm-next "
                "(or use make_recommender(), which falls back to PopularityRecommender)"
            ) from exc
        matrix = check_interactions(interactions)
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
        model.fit(binary, sample_weight=sample_weight, epochs=self.epochs, num_threads=self.num_threads,
                  verbose=show_progress)
        # one assignment: readers see the old state or the new one
        self._state = self._factor_state(matrix, model.user_embeddings, model.item_embeddings, model.item_biases)
        return self

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        fitted = self.__dict__.get("_state")
        if fitted is not None and not fitted.item_factors.flags.f_contiguous:  # a row-major copy: score column-major
            object.__setattr__(fitted, "item_factors", readonly(np.asfortranarray(fitted.item_factors)))
