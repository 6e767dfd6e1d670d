"""implicit's ALS and BPR (benfred/implicit, CPU) on the factor-model base.

Only the factors are kept after fit (as ai/lightfm_model.py does), so a saved model loads without implicit, and
everything else (scores as one product, similar items and users, explanations, fold-in of a user from their
current history with the base class's ridge map) is ai/recommender_base.py's FactorModelBase.

Threads: implicit runs its own `num_threads` loop and wants single-threaded BLAS inside it (it warns otherwise);
fit() limits BLAS to one thread for its duration with threadpoolctl, whatever OPENBLAS_NUM_THREADS says.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai.recommender_base import FactorModelBase, check_interactions

__all__ = ["ALSRecommender", "BPRRecommender", "implicit_available"]


def implicit_available() -> bool:
    """True when the implicit package imports."""
    try:
        import implicit  # noqa: F401
    except ImportError:
        return False
    return True


def _implicit(cls_name: str):
    try:
        import implicit.cpu.als
        import implicit.cpu.bpr
    except ImportError as exc:
        raise ImportError(f"{cls_name} needs the implicit package: pip install implicit==0.7.3") from exc
    return implicit.cpu


def _prepared(matrix: sp.csr_matrix, weighting: str) -> sp.csr_matrix:
    """The matrix implicit learns from: binary ('none'), the weights ('weights') or BM25 of the binary matrix."""
    if weighting == "weights":
        return matrix
    binary = matrix.copy()
    binary.data[:] = 1.0
    if weighting == "none":
        return binary
    # BM25 (implicit.nearest_neighbours.bm25_weight, K1 = 100, B = 0.8): damps heavy users, boosts rare items
    k1, b = 100.0, 0.8
    coo = binary.tocoo()
    n_users = float(binary.shape[0])
    idf = np.log(n_users) - np.log1p(np.bincount(coo.col, minlength=binary.shape[1]))
    row_sums = np.ravel(binary.sum(axis=1))
    length_norm = (1.0 - b) + b * row_sums / max(row_sums.mean(), 1e-12)
    data = coo.data * (k1 + 1.0) / (k1 * length_norm[coo.row] + coo.data) * idf[coo.col]
    return sp.csr_matrix((np.maximum(data, 1e-6).astype(np.float32), (coo.row, coo.col)), shape=binary.shape)


WEIGHTINGS = ("none", "weights", "bm25")


class _ImplicitBase(FactorModelBase):
    def _common(self, factors: int, iterations: int, regularization: float, num_threads: int | None,
                random_state: int | None, weighting: str) -> None:
        if int(factors) < 1 or int(iterations) < 1:
            raise ValueError("factors and iterations must be at least 1")
        if not float(regularization) >= 0:
            raise ValueError(f"regularization={regularization!r} must be >= 0")
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting={weighting!r}: use one of {', '.join(WEIGHTINGS)}")
        self.factors = int(factors)
        self.iterations = int(iterations)
        self.regularization = float(regularization)
        self.num_threads = max(1, int(num_threads or 1))
        self.random_state = random_state
        self.weighting = weighting

    def _fit_implicit(self, build: Any, matrix: sp.csr_matrix, show_progress: bool) -> Any:
        """build() the implicit model and fit it with BLAS on one thread (implicit checks it when built)."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            model = build()
            model.fit(_prepared(matrix, self.weighting), show_progress=show_progress)
        return model


class ALSRecommender(_ImplicitBase):
    """Alternating least squares on implicit feedback (Hu, Koren, Volinsky 2008): confidence 1 + alpha * r."""

    name = "als"

    def __init__(self, *, factors: int = 64, regularization: float = 0.05, alpha: float = 2.0, iterations: int = 15,
                 weighting: str = "bm25", num_threads: int | None = os.cpu_count(), random_state: int | None = 42
                 ) -> None:
        super().__init__()
        self._common(factors, iterations, regularization, num_threads, random_state, weighting)
        if not float(alpha) > 0:
            raise ValueError(f"alpha={alpha!r} must be > 0")
        self.alpha = float(alpha)

    def get_params(self) -> dict[str, Any]:
        keys = ("factors", "regularization", "alpha", "iterations", "weighting", "num_threads", "random_state")
        return {key: getattr(self, key) for key in keys}

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> ALSRecommender:
        cpu = _implicit("ALSRecommender")
        matrix = check_interactions(interactions)
        model = self._fit_implicit(lambda: cpu.als.AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, alpha=self.alpha, iterations=self.iterations,
            num_threads=self.num_threads, random_state=self.random_state), matrix, show_progress)
        self._state = self._factor_state(matrix, model.user_factors, model.item_factors)
        return self


class BPRRecommender(_ImplicitBase):
    """Bayesian personalised ranking (Rendle et al. 2009) by SGD; the last factor is the item bias."""

    name = "bpr"

    def __init__(self, *, factors: int = 64, learning_rate: float = 0.05, regularization: float = 0.01,
                 iterations: int = 100, weighting: str = "none", num_threads: int | None = os.cpu_count(),
                 random_state: int | None = 42) -> None:
        super().__init__()
        self._common(factors, iterations, regularization, num_threads, random_state, weighting)
        if not float(learning_rate) > 0:
            raise ValueError(f"learning_rate={learning_rate!r} must be > 0")
        self.learning_rate = float(learning_rate)

    def get_params(self) -> dict[str, Any]:
        keys = ("factors", "learning_rate", "regularization", "iterations", "weighting", "num_threads",
                "random_state")
        return {key: getattr(self, key) for key in keys}

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> BPRRecommender:
        cpu = _implicit("BPRRecommender")
        matrix = check_interactions(interactions)
        model = self._fit_implicit(lambda: cpu.bpr.BayesianPersonalizedRanking(
            factors=self.factors, learning_rate=self.learning_rate, regularization=self.regularization,
            iterations=self.iterations, num_threads=self.num_threads, random_state=self.random_state),
            matrix, show_progress)
        # implicit's BPR learns factors + 1 columns: the item's last is its bias, the user's last is 1
        users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
        self._state = self._factor_state(matrix, users[:, :-1], items[:, :-1], items[:, -1])
        return self
