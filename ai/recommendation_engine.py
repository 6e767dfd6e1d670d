"""Recommenders with one small API, after benfred/implicit's ``RecommenderBase``.

Every engine takes a users x items ``scipy.sparse`` matrix of positive weights and answers with
``(item indices, scores)`` arrays, best first:

>>> model = LightFMRecommender(**SERVICE_DEFAULTS).fit(interactions)
>>> ids, scores = model.recommend(userid, interactions[userid], n=10)

Two engines implement it: ``LightFMRecommender`` (matrix factorisation, WARP loss) and
``PopularityRecommender`` (most interacted-with items, the cold-start answer). ``FallbackChain`` puts
them in order, as Gorse's ``logics/recommend.go`` does: take from the first recommender that knows the
user until n items are found, then from the next, never repeating an item or returning one the user has.

Concurrency: ``fit`` builds a complete new fitted state and then assigns it in one statement, so a
thread that is serving ``recommend`` sees either the old state or the new one, never half of each.
Serving reads only immutable numpy arrays (marked read-only), so any number of threads may call
``recommend`` at once.

This module knows nothing of Django or Neo4j; it needs numpy, scipy, joblib and (for LightFM) lightfm.
"""
from __future__ import annotations

import abc
import logging
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import joblib
import numpy as np
import scipy.sparse as sp

logger = logging.getLogger(__name__)

__all__ = [
    "SEED_PARAMETERS",
    "SERVICE_DEFAULTS",
    "FallbackChain",
    "LightFMRecommender",
    "ModelNotFittedError",
    "PopularityRecommender",
    "RecommenderBase",
    "UnknownItemError",
    "UnknownUserError",
    "lightfm_available",
    "make_recommender",
]

# The parameters of the original service (kept to measure against, see bench/quality.py).
SEED_PARAMETERS: dict[str, Any] = {
    "no_components": 30,
    "epochs": 30,
    "learning_rate": 0.05,
    "loss": "warp",
    "item_alpha": 0.0,
    "user_alpha": 0.0,
    "max_sampled": 10,
    "use_weights": False,
}

# What the service trains with. Tuned on MovieLens 100k by `python bench/quality.py --tune`: a grid
# (components x learning rate x epochs x weights), then one change at a time to the winner (max_sampled,
# alphas, schedule, size), the top 3 rescored over 3 seeds, all scored on a validation split carved out
# of the TRAIN part only (the test part is never looked at). Against the seed's parameters the winners
# are: interaction weights as sample weights (a 5-star like counts more than a 1-star watch), twice the
# components, a lower learning rate run twice as long (lr 0.05 overfits after ~15 epochs) and more
# negative samples per WARP step. Test part: P@10 0.382 -> 0.41, NDCG@10 0.430 -> 0.47; fit ~6 s on one
# thread (bench/results/quality.json).
SERVICE_DEFAULTS: dict[str, Any] = {
    "no_components": 64,
    "epochs": 60,
    "learning_rate": 0.02,
    "loss": "warp",
    "item_alpha": 0.0,
    "user_alpha": 0.0,
    "max_sampled": 30,
    "use_weights": True,
    "learning_schedule": "adagrad",
}


class ModelNotFittedError(RuntimeError):
    """The recommender has no fitted state yet."""

    def __init__(self, name: str = "recommender") -> None:
        super().__init__(f"The {name} model is not fitted yet: call fit() first (or load() a saved one).")


class UnknownUserError(KeyError):
    """A user index outside the range the model was fitted on."""

    def __init__(self, userid: object) -> None:
        super().__init__(f"User id {userid} not in user id mapping. Make sure you call the fit method.")
        self.userid = userid

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0])


class UnknownItemError(KeyError):
    """An item index (or id) the model was not fitted on."""

    def __init__(self, itemid: object) -> None:
        super().__init__(f"Item id {itemid} not in item id mapping. Make sure you call the fit method.")
        self.itemid = itemid

    def __str__(self) -> str:
        return str(self.args[0])


_EMPTY_IDS = np.empty(0, dtype=np.int64)
_EMPTY_SCORES = np.empty(0, dtype=np.float32)


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _check_interactions(interactions: Any) -> sp.csr_matrix:
    """A canonical float32 csr copy of `interactions`, or an error that says how to fix the input."""
    if not sp.issparse(interactions):
        raise TypeError(
            "interactions must be a scipy.sparse matrix (users x items), got "
            f"{type(interactions).__name__}; build one with "
            "scipy.sparse.csr_matrix((weights, (rows, cols)), shape=(n_users, n_items))"
        )
    matrix = sp.csr_matrix(interactions, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    if matrix.shape[0] == 0 or matrix.shape[1] == 0 or matrix.nnz == 0:
        raise ValueError(f"interactions of shape {matrix.shape} hold no interaction: there is nothing to fit on")
    bad = ~np.isfinite(matrix.data) | (matrix.data < 0)
    if bad.any():
        raise ValueError(
            f"interactions must hold positive finite weights; {int(bad.sum())} entries are negative, NaN or "
            "infinite: drop them or rescale the weights before fit()"
        )
    matrix.sort_indices()
    return matrix


def _as_index_array(values: Any) -> np.ndarray:
    if values is None:
        return _EMPTY_IDS
    return np.asarray(values, dtype=np.int64).ravel()


_STRIDE = 32


def _best_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, unordered. For a big catalogue and a small k: the k-th largest of every
    32nd score is a lower bound of the k-th largest of all (k of them are at least that big), so the k best
    are among the scores at or above it (about 32 * k), and only those are partitioned: ~5x faster than one
    argpartition over 20k items."""
    n_items = scores.shape[0]
    if k >= n_items:
        return np.arange(n_items)
    if k * _STRIDE * 8 > n_items:
        return np.argpartition(scores, n_items - k)[n_items - k:]
    sample = scores[::_STRIDE]
    threshold = np.partition(sample, sample.size - k)[sample.size - k]
    candidates = np.flatnonzero(scores >= threshold)
    chosen = np.argpartition(scores[candidates], candidates.size - k)[candidates.size - k:]
    return candidates[chosen]


def _top_n(scores: np.ndarray, n: int, excluded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The n best of `scores` (a fresh array, modified in place), skipping `excluded` indices."""
    n_items = scores.shape[0]
    if excluded.size:
        excluded = excluded[(excluded >= 0) & (excluded < n_items)]
        scores[excluded] = -np.inf
        n_candidates = n_items - np.unique(excluded).size
    else:
        n_candidates = n_items
    k = min(int(n), n_candidates)
    if k <= 0:
        return _EMPTY_IDS, _EMPTY_SCORES
    best = _best_k(scores, k)
    best = best[np.argsort(-scores[best], kind="stable")]
    return best.astype(np.int64, copy=False), scores[best].astype(np.float32, copy=False)


def _same_matrix(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    return (a.shape == b.shape and a.nnz == b.nnz and a.dtype == b.dtype and np.array_equal(a.indptr, b.indptr)
            and np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data))


def _norms(vectors: np.ndarray) -> np.ndarray:
    """Each row's length (at least 1e-12), float32: cosine is the dot product over both lengths."""
    return np.maximum(np.linalg.norm(vectors, axis=1), 1e-12).astype(np.float32)


@dataclass(frozen=True)
class _FittedMatrix:
    """What every engine keeps of the matrix seen in fit: rows to filter, per-item popularity."""

    matrix: sp.csr_matrix  # users x items, float32, canonical
    popularity: np.ndarray  # float32 per item: summed weight (or count)
    user_seen: np.ndarray  # bool per user: had at least one interaction
    item_seen: np.ndarray  # bool per item


class RecommenderBase(abc.ABC):
    """What every recommender does (implicit's API, with numpy arrays in and out)."""

    name: ClassVar[str] = "base"
    needs_user: ClassVar[bool] = True  # False when recommend() answers for any user, even unknown

    def __init__(self) -> None:
        self._state: Any = None

    # --- fitting -------------------------------------------------------------------------------
    @abc.abstractmethod
    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> RecommenderBase:
        """Learn from a users x items scipy.sparse matrix of positive weights (explicit zeros are dropped,
        negative or non-finite weights refused); returns self, now serving the new fitted state."""

    @property
    def is_fitted(self) -> bool:
        return self._state is not None

    def _fitted(self) -> Any:
        state = self._state  # read once: a concurrent fit() swaps the whole state
        if state is None:
            raise ModelNotFittedError(self.name)
        return state

    @property
    def n_users(self) -> int:
        return int(self._fitted().seen.matrix.shape[0])

    @property
    def n_items(self) -> int:
        return int(self._fitted().seen.matrix.shape[1])

    def share_matrix(self, matrix: sp.csr_matrix) -> None:
        """Keep `matrix` instead of this engine's own copy of the matrix it was fitted on, when the two hold the
        same interactions (a loaded model holds its matrix several times otherwise: tens of MB at 1M)."""
        state = self._state
        seen = getattr(state, "seen", None)
        if seen is None or seen.matrix is matrix or not _same_matrix(seen.matrix, matrix):
            return
        self._state = replace(state, seen=replace(seen, matrix=matrix))

    def knows_user(self, userid: int | None) -> bool:
        """True when `userid` is a row of the fitted matrix with at least one interaction."""
        state = self._state
        if state is None or userid is None:
            return False
        return 0 <= int(userid) < state.seen.matrix.shape[0] and bool(state.seen.user_seen[int(userid)])

    @staticmethod
    def _seen_state(matrix: sp.csr_matrix, use_weights: bool) -> _FittedMatrix:
        values = matrix.sum(axis=0) if use_weights else (matrix > 0).sum(axis=0)
        return _FittedMatrix(
            matrix=matrix,
            popularity=_readonly(np.asarray(values, dtype=np.float32).ravel()),
            user_seen=_readonly(np.diff(matrix.indptr) > 0),
            item_seen=_readonly(np.bincount(matrix.indices, minlength=matrix.shape[1]) > 0),
        )

    # --- serving -------------------------------------------------------------------------------
    @abc.abstractmethod
    def _user_scores(self, state: Any, userid: int | None) -> np.ndarray:
        """A fresh float32 array of every item's score for this user."""

    @abc.abstractmethod
    def score_items(self, userids: np.ndarray) -> np.ndarray:
        """Scores of every item for each of `userids`: float32 (len(userids), n_items). Used by evaluation."""

    def _liked(self, state: Any, userid: int | None, user_items: sp.spmatrix | None) -> np.ndarray:
        if user_items is None:
            if userid is not None and 0 <= int(userid) < state.seen.matrix.shape[0]:
                row = state.seen.matrix
                return row.indices[row.indptr[int(userid)]:row.indptr[int(userid) + 1]].astype(np.int64)
            return _EMPTY_IDS
        if isinstance(user_items, np.ndarray) and user_items.ndim == 1:  # the row's item indices already
            return user_items.astype(np.int64, copy=False)
        if not sp.issparse(user_items):
            raise TypeError("user_items must be the user's 1-row scipy.sparse matrix, e.g. interactions[userid] "
                            "(or a 1-D array of its item indices)")
        if user_items.shape[0] != 1:
            raise ValueError(
                f"user_items must be the user's single row (1 x n_items), got shape {user_items.shape}: "
                "pass interactions[userid]"
            )
        return sp.csr_matrix(user_items).indices.astype(np.int64)

    def recommend(
        self,
        userid: int,
        user_items: sp.csr_matrix | None = None,
        n: int = 10,
        filter_already_liked_items: bool = True,
        filter_items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The user's n best items as (item indices int64, scores float32), best first, len <= n.

        user_items: the user's 1-row csr; its items are skipped when filter_already_liked_items (when it
        is None, the user's row of the matrix seen in fit is used). filter_items: indices never returned.
        """
        state = self._fitted()
        scores = self._user_scores(state, userid)
        excluded = _as_index_array(filter_items)
        if filter_already_liked_items:
            excluded = np.concatenate([excluded, self._liked(state, userid, user_items)])
        return _top_n(scores, n, excluded)

    def popular(self, n: int = 10, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The n items with the most interactions (summed weight or count) in fit, best first."""
        state = self._fitted()
        return _top_n(state.seen.popularity.copy(), n, _as_index_array(exclude))

    @abc.abstractmethod
    def similar_items(self, itemid: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The n items most similar to `itemid` (cosine), never the item itself."""

    def _check_item(self, state: Any, itemid: int) -> int:
        if not 0 <= int(itemid) < state.seen.matrix.shape[1]:
            raise UnknownItemError(itemid)
        return int(itemid)

    # --- persistence ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the whole recommender to one joblib file (atomically: temp file, then rename)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            joblib.dump(self, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RecommenderBase:
        """Read a file written by save(). Unpickling runs code: only load files you wrote (or verified)."""
        obj = joblib.load(Path(path))
        if not isinstance(obj, cls):
            raise TypeError(f"{path} holds a {type(obj).__name__}, not a {cls.__name__}")
        return obj

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        fitted = self.__dict__.get("_state")
        if fitted is not None:  # unpickled arrays come back writeable: protect the shared state again
            seen = getattr(fitted, "seen", None)
            for value in [*vars(fitted).values(), *getattr(seen, "__dict__", {}).values()]:
                if isinstance(value, np.ndarray):
                    value.setflags(write=False)


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _LightFMState:
    seen: _FittedMatrix
    user_factors: np.ndarray  # (n_users, d + 1) float32: [embedding, 1.0]
    item_factors: np.ndarray  # (n_items, d + 1) float32: [embedding, bias]; column-major (fast scoring)
    user_norms: np.ndarray  # (n_users,) float32: embedding lengths, for cosine (no unit copy: half the memory)
    item_norms: np.ndarray  # (n_items,)


def lightfm_available() -> bool:
    """True when the lightfm package (and its compiled extension) imports."""
    try:
        from lightfm import LightFM  # noqa: F401
    except ImportError:
        return False
    return True


class LightFMRecommender(RecommenderBase):
    """LightFM matrix factorisation (no side features). Scores are ``item_factors @ user_factors[u]``; the
    item factors are kept column-major, which makes that product (a memory-bound gemv over every item, the
    largest cost of a request) about 30% faster than row-major at 20k items.

    Only the factors are kept after fit, so loading a saved model does not need lightfm itself.
    """

    name = "lightfm"
    needs_user = True

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
        """The constructor's arguments (for the manifest)."""
        keys = ("no_components", "epochs", "learning_rate", "loss", "item_alpha", "user_alpha", "max_sampled",
                "num_threads", "random_state", "use_weights", "learning_schedule")
        return {key: getattr(self, key) for key in keys}

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"LightFMRecommender({params})"

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> LightFMRecommender:
        try:
            from lightfm import LightFM
        except ImportError as exc:
            raise ImportError(
                "LightFMRecommender needs the lightfm package: pip install lightfm-next "
                "(or use make_recommender(), which falls back to PopularityRecommender)"
            ) from exc
        matrix = _check_interactions(interactions)
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
        user_emb = np.asarray(model.user_embeddings, dtype=np.float32)
        item_emb = np.asarray(model.item_embeddings, dtype=np.float32)
        if not (np.isfinite(user_emb).all() and np.isfinite(item_emb).all()):
            raise FloatingPointError(
                "LightFM diverged (NaN/inf factors): lower learning_rate or raise item_alpha/user_alpha"
            )
        ones = np.ones((user_emb.shape[0], 1), dtype=np.float32)
        biases = np.asarray(model.item_biases, dtype=np.float32).reshape(-1, 1)
        self._state = _LightFMState(  # one assignment: readers see the old state or the new one
            seen=self._seen_state(matrix, use_weights=False),
            user_factors=_readonly(np.ascontiguousarray(np.hstack([user_emb, ones]))),
            item_factors=_readonly(np.asfortranarray(np.hstack([item_emb, biases]))),
            user_norms=_readonly(_norms(user_emb)),
            item_norms=_readonly(_norms(item_emb)),
        )
        return self

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        fitted = self.__dict__.get("_state")
        if fitted is not None and (not fitted.item_factors.flags.f_contiguous or "item_norms" not in vars(fitted)):
            # saved by an older version: row-major item factors and unit-vector copies instead of lengths
            self._state = _LightFMState(
                seen=fitted.seen, user_factors=fitted.user_factors,
                item_factors=_readonly(np.asfortranarray(fitted.item_factors)),
                user_norms=_readonly(_norms(fitted.user_factors[:, :-1])),
                item_norms=_readonly(_norms(fitted.item_factors[:, :-1])))

    @property
    def user_factors(self) -> np.ndarray:
        """(n_users, no_components + 1) float32: each user's embedding followed by 1.0 (read-only)."""
        return self._fitted().user_factors

    @property
    def item_factors(self) -> np.ndarray:
        """(n_items, no_components + 1) float32: each item's embedding followed by its bias (read-only)."""
        return self._fitted().item_factors

    def _check_user(self, state: _LightFMState, userid: int | None) -> int:
        if userid is None or not 0 <= int(userid) < state.user_factors.shape[0]:
            raise UnknownUserError(userid)
        return int(userid)

    def _user_scores(self, state: _LightFMState, userid: int | None) -> np.ndarray:
        return state.item_factors @ state.user_factors[self._check_user(state, userid)]

    def score_items(self, userids: np.ndarray) -> np.ndarray:
        state = self._fitted()
        userids = _as_index_array(userids)
        for userid in userids[(userids < 0) | (userids >= state.user_factors.shape[0])][:1]:
            raise UnknownUserError(int(userid))
        return state.user_factors[userids] @ state.item_factors.T

    def similar_items(self, itemid: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Cosine of item embeddings (bias left out), in [-1, 1]; items never seen in fit are left out."""
        state = self._fitted()
        itemid = self._check_item(state, itemid)
        if not state.seen.item_seen[itemid]:
            return _EMPTY_IDS, _EMPTY_SCORES
        embeddings = state.item_factors[:, :-1]
        sims = (embeddings @ embeddings[itemid]) / (state.item_norms * state.item_norms[itemid])
        unseen = np.flatnonzero(~state.seen.item_seen)
        return _top_n(sims, n, np.concatenate([unseen, [itemid]]))

    def similar_users(self, userid: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Users whose embeddings are closest (cosine mapped to [0, 1] as (cos + 1) / 2), never the user
        itself nor users without interactions in fit."""
        state = self._fitted()
        userid = self._check_user(state, userid)
        embeddings = state.user_factors[:, :-1]
        sims = ((embeddings @ embeddings[userid]) / (state.user_norms * state.user_norms[userid]) + 1.0) / 2.0
        unseen = np.flatnonzero(~state.seen.user_seen)
        return _top_n(sims, n, np.concatenate([unseen, [userid]]))

    def explain(
        self, userid: int, itemid: int, user_items: sp.csr_matrix | None = None, k: int = 3
    ) -> list[tuple[int, float]]:
        """Up to k items of the user's history most similar (cosine > 0) to `itemid`, best first:
        the "because you liked X" of a recommendation. user_items defaults to the user's row seen in fit."""
        return self.explain_many(userid, [itemid], user_items, k=k)[0]

    def explain_many(
        self, userid: int, itemids: list[int], user_items: sp.csr_matrix | None = None, k: int = 3
    ) -> list[list[tuple[int, float]]]:
        """explain() for several items of one user, in one matrix product (a page of recommendations)."""
        state = self._fitted()
        items = np.asarray(itemids, dtype=np.int64).ravel()
        for itemid in items[(items < 0) | (items >= state.item_factors.shape[0])][:1]:
            raise UnknownItemError(int(itemid))
        if user_items is None:
            self._check_user(state, userid)
        history = self._liked(state, userid, user_items)
        history = np.unique(history[(history >= 0) & (history < state.item_factors.shape[0])])
        if history.size == 0 or k <= 0 or items.size == 0:
            return [[] for _ in items]
        embeddings, norms = state.item_factors[:, :-1], state.item_norms
        sims = (embeddings[history] @ embeddings[items].T) / np.outer(norms[history], norms[items])  # cosines
        sims[history[:, None] == items[None, :]] = -np.inf  # an item never explains itself
        order = np.argsort(-sims, axis=0, kind="stable")[:k]
        best = np.take_along_axis(sims, order, axis=0).T.tolist()  # plain lists: numpy scalars are slow here
        ids = history[order].T.tolist()
        return [[(item, sim) for item, sim in zip(ids[j], best[j]) if sim > 0] for j in range(items.size)]


# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _PopularityState:
    seen: _FittedMatrix
    # items x users, binary: who interacted with each item (co-occurrence for similar_items). Built when first
    # asked for: a popularity engine that only tops up LightFM's answers never needs it.
    item_users: sp.csr_matrix | None = None


class PopularityRecommender(RecommenderBase):
    """Most popular items: score = summed weight per item (or the number of users when use_weights=False).

    recommend() gives every user, known or not (any int, or None), the same ranking minus their own items.
    """

    name = "popularity"
    needs_user = False

    def __init__(self, *, use_weights: bool = True) -> None:
        super().__init__()
        self.use_weights = bool(use_weights)

    def get_params(self) -> dict[str, Any]:
        return {"use_weights": self.use_weights}

    def __repr__(self) -> str:
        return f"PopularityRecommender(use_weights={self.use_weights!r})"

    def fit(self, interactions: sp.csr_matrix, *, show_progress: bool = False) -> PopularityRecommender:
        matrix = _check_interactions(interactions)
        self._state = _PopularityState(seen=self._seen_state(matrix, use_weights=self.use_weights))
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

    def _user_scores(self, state: _PopularityState, userid: int | None) -> np.ndarray:
        return state.seen.popularity.copy()

    def score_items(self, userids: np.ndarray) -> np.ndarray:
        state = self._fitted()
        return np.tile(state.seen.popularity, (len(_as_index_array(userids)), 1))

    def similar_items(self, itemid: int, n: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Co-occurrence cosine |U_i & U_j| / sqrt(|U_i| |U_j|) in [0, 1]; only items sharing a user."""
        state = self._fitted()
        itemid = self._check_item(state, itemid)
        item_users = self._item_users(state)
        users = item_users.indices[item_users.indptr[itemid]:item_users.indptr[itemid + 1]]
        if users.size == 0:
            return _EMPTY_IDS, _EMPTY_SCORES
        counts = np.bincount(state.seen.matrix[users].indices, minlength=item_users.shape[0])
        counts = counts.astype(np.float32)
        degrees = np.diff(item_users.indptr).astype(np.float32)
        sims = counts / np.sqrt(np.maximum(degrees * degrees[itemid], 1.0))
        return _top_n(sims, n, np.concatenate([np.flatnonzero(counts == 0), [itemid]]))


# ------------------------------------------------------------------------------------------------
class FallbackChain:
    """Recommenders tried in order, as Gorse's fallback: the first that knows the user fills what it can,
    the next tops the list up to n. Never an item twice, never one in user_items or filter_items."""

    def __init__(self, recommenders: list[RecommenderBase]) -> None:
        if not recommenders:
            raise ValueError("FallbackChain needs at least one recommender, e.g. [lightfm, popularity]")
        self.recommenders = list(recommenders)

    def recommend(
        self,
        userid: int | None,
        user_items: sp.csr_matrix | None,
        n: int = 10,
        filter_items: np.ndarray | None = None,
    ) -> list[tuple[int, float, str]]:
        """[(item index, score, recommender name)], best first, at most n."""
        results: list[tuple[int, float, str]] = []
        taken: set[int] = set()
        excluded = _as_index_array(filter_items)
        if user_items is not None:
            excluded = np.concatenate([excluded, sp.csr_matrix(user_items).indices.astype(np.int64)])
        for recommender in self.recommenders:
            if len(results) >= n:
                break
            if not recommender.is_fitted:
                continue
            if recommender.needs_user and not recommender.knows_user(userid):
                continue
            taken_ids = np.fromiter(taken, dtype=np.int64, count=len(taken))
            try:
                ids, scores = recommender.recommend(
                    userid, user_items, n=n - len(results), filter_already_liked_items=True,
                    filter_items=np.concatenate([excluded, taken_ids]),
                )
            except (ModelNotFittedError, UnknownUserError):  # swapped out under us: try the next one
                continue
            for item, score in zip(ids.tolist(), scores.tolist()):
                if item not in taken:
                    taken.add(item)
                    results.append((item, score, recommender.name))
        return results[:n]


def make_recommender(engine: str = "lightfm", **params: Any) -> RecommenderBase:
    """A recommender for the service: LightFM with SERVICE_DEFAULTS (overridden by `params`), or, when the
    lightfm package cannot be imported, a PopularityRecommender (logged as a WARNING)."""
    if engine == "popularity":
        return PopularityRecommender()
    if engine != "lightfm":
        raise ValueError(f"unknown engine {engine!r}; use 'lightfm' or 'popularity'")
    if not lightfm_available():
        logger.warning(
            "lightfm is not importable: recommending popular items only. Install it with "
            "`pip install lightfm-next` and retrain to get personalised recommendations."
        )
        return PopularityRecommender()
    return LightFMRecommender(**{**SERVICE_DEFAULTS, **params})
