"""The recommendation engine: recommenders with one small API, put in order by a fallback chain.

Every engine takes a users x items ``scipy.sparse`` matrix of positive weights and answers with
``(item indices, scores)`` arrays, best first (after benfred/implicit's ``RecommenderBase``,
ai/recommender_base.py):

>>> model = LightFMRecommender(**SERVICE_DEFAULTS).fit(interactions)
>>> ids, scores = model.recommend(userid, interactions[userid], n=10)

Engines (``make_recommender(engine, **params)`` builds any of them by name, ``ENGINES``):
``lightfm`` (ai/lightfm_model.py, matrix factorisation, WARP loss), ``lightfm_hybrid`` (the same with item
features: genres, decade, type, artists), ``ease`` (ai/ease.py, closed-form item-item), ``als`` and ``bpr``
(ai/implicit_models.py, benfred/implicit), ``blend`` (ai/blend.py, weighted normalised scores of others) and
``popularity`` (ai/popularity.py, the cold-start answer). ai/model_selection.py picks one per type at each
training. The joint taste model over every item type (ai/taste.py) recommends across domains.

``FallbackChain`` puts links in order, as Gorse's ``logics/recommend.go`` does: take from the first link
that can rank for the user until n items are found, then from the next, never repeating an item or returning
one the user has. Each result names the link that produced it (the `reason` of an item). A link adapts a
recommender to the chain's item space and to what is known of the user (``UserQuery``): their key, their
row in the type's model if it has one, and their current items. Cold start needs no special case: a link
that does not know the user passes, and the last link (popularity) knows everyone.

This module knows nothing of Django or Neo4j; it needs numpy, scipy, joblib and (for LightFM) lightfm.
"""
from __future__ import annotations

import abc
import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai.blend import BlendRecommender
from ai.ease import EASERecommender
from ai.implicit_models import ALSRecommender, BPRRecommender, implicit_available
from ai.lightfm_model import LightFMHybridRecommender, LightFMRecommender, lightfm_available
from ai.popularity import PopularityRecommender
from ai.recommender_base import (
    EMPTY_IDS,
    FactorModelBase,
    ModelNotFittedError,
    RecommenderBase,
    UnknownItemError,
    UnknownUserError,
    as_index_array,
    best_k,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ENGINES",
    "ENGINE_DEFAULTS",
    "SEED_PARAMETERS",
    "SERVICE_DEFAULTS",
    "ChainLink",
    "FactorModelBase",
    "FallbackChain",
    "LightFMRecommender",
    "ModelNotFittedError",
    "PopularityRecommender",
    "RecommenderBase",
    "RecommenderLink",
    "UnknownItemError",
    "UnknownUserError",
    "UserQuery",
    "best_k",
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

# What the service trains with. Tuned on MovieLens 100k by `python -m bench.quality --tune`: a grid
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


@dataclass(frozen=True)
class UserQuery:
    """What the chain knows of the user it ranks for.

    key: the user's external id (a link with a user space of its own, such as the taste model, looks them up
    by it); None for a guest. row: the user's row in the type's model, None when it has none. items / weights:
    the user's items of the type now (columns of the chain's item space): never recommended, and what a link
    folds the user in from. changed: the items differ from what the model was fitted with, so a link ranks
    from them rather than from what it learned for the row. excluded: items never recommended (dismissed)."""

    key: str | None = None
    row: int | None = None
    items: np.ndarray = field(default_factory=lambda: EMPTY_IDS)
    weights: np.ndarray | None = None
    changed: bool = False
    excluded: np.ndarray = field(default_factory=lambda: EMPTY_IDS)  # never recommended, not their history
    # the user's items across every type in the taste model's columns, when they differ from what it learned
    taste_items: np.ndarray | None = None
    taste_weights: np.ndarray | None = None

    def row_matrix(self, n_items: int) -> sp.csr_matrix:
        """The user's items as a 1 x n_items csr row (weights, or 1 each)."""
        items = as_index_array(self.items)
        keep = (items >= 0) & (items < n_items)
        weights = np.ones(items.size, dtype=np.float32) if self.weights is None else \
            np.asarray(self.weights, dtype=np.float32)
        return sp.csr_matrix((weights[keep], (np.zeros(int(keep.sum()), dtype=np.int64), items[keep])),
                             shape=(1, n_items))


class ChainLink(abc.ABC):
    """One link of a FallbackChain: ranks the chain's items for a user, or passes (None)."""

    name: str

    @abc.abstractmethod
    def recommend(self, user: UserQuery, n: int, filter_items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(item indices, scores) best first, never one of filter_items; None when this link cannot rank for
        this user (the chain goes on to the next)."""

    def explain_many(self, user: UserQuery, items: list[int], k: int = 3) -> list[list[tuple[str, Any]]]:
        """Per item, up to k (item key, title) pairs of the user's history that support it; [] when it cannot
        be said (the default)."""
        return [[] for _ in items]


class RecommenderLink(ChainLink):
    """A recommender of the chain's own item space as a link: a user it learned ranks from what it learned.
    With fold_in, a user it did not learn, or whose items changed since, is folded in from their items when
    the engine can (``folds_in``); otherwise the link passes.

    item_keys / titles (optional): the item key of each column and a key -> title function, for the
    explanations' (key, title) pairs."""

    def __init__(self, recommender: RecommenderBase, *, name: str | None = None, item_keys: np.ndarray | None = None,
                 titles: Any = None, fold_in: bool = False) -> None:
        self.recommender = recommender
        self.name = name or recommender.name
        self.item_keys = item_keys
        self.titles = titles
        self.fold_in = fold_in

    def mode(self, user: UserQuery) -> str | None:
        """How this link ranks for the user: "any" (needs nothing of them), "learned" (their learned row),
        "fold_in" (from their items), or None (it passes)."""
        model = self.recommender
        if not model.is_fitted:
            return None
        if not model.needs_user:
            return "any"
        if user.row is not None and not user.changed and model.knows_user(user.row):
            return "learned"
        if self.fold_in and model.folds_in and as_index_array(user.items).size:
            return "fold_in"
        return None

    def recommend(self, user: UserQuery, n: int, filter_items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        mode = self.mode(user)
        if mode is None:
            return None
        model = self.recommender
        try:
            if mode == "fold_in":
                return model.recommend(None, user.row_matrix(model.n_items), n=n, filter_items=filter_items,
                                       recalculate_user=True)
            return model.recommend(user.row, user.items, n=n, filter_items=filter_items)
        except (ModelNotFittedError, UnknownUserError):  # swapped out under us: let the next link answer
            return None

    def explain_many(self, user: UserQuery, items: list[int], k: int = 3) -> list[list[tuple[str, Any]]]:
        mode = self.mode(user)
        if mode is None or mode == "any" or self.item_keys is None:
            return [[] for _ in items]
        row = user.row if mode == "learned" else None
        reasons = self.recommender.explain_many(row, items, as_index_array(user.items), k=k)
        keys = self.item_keys
        return [[(keys[item], self.titles(keys[item]) if self.titles else None) for item, _ in because]
                for because in reasons]


class FallbackChain:
    """Links tried in order, as Gorse's fallback: the first that can rank for the user fills what it can, the
    next tops the list up to n. Never an item twice, never one of the user's items or of filter_items."""

    def __init__(self, links: list[ChainLink | RecommenderBase]) -> None:
        if not links:
            raise ValueError("FallbackChain needs at least one link, e.g. [lightfm, popularity]")
        self.links = [link if isinstance(link, ChainLink) else RecommenderLink(link) for link in links]

    def recommend(self, user: UserQuery, n: int = 10, filter_items: np.ndarray | None = None
                  ) -> list[tuple[int, float, str]]:
        """[(item index, score, link name)], best first, at most n."""
        results: list[tuple[int, float, str]] = []
        taken: set[int] = set()
        excluded = np.concatenate([as_index_array(filter_items), as_index_array(user.items),
                                   as_index_array(user.excluded)])
        for link in self.links:
            if len(results) >= n:
                break
            taken_ids = np.fromiter(taken, dtype=np.int64, count=len(taken))
            answer = link.recommend(user, n - len(results), np.concatenate([excluded, taken_ids]))
            if answer is None:
                continue
            ids, scores = answer
            for item, score in zip(ids.tolist(), scores.tolist()):
                if item not in taken:
                    taken.add(item)
                    results.append((item, score, link.name))
        return results[:n]

    def link(self, name: str) -> ChainLink:
        """The link of that name (KeyError when there is none)."""
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(f"no link {name!r} in this chain; links: {', '.join(link.name for link in self.links)}")


# Each engine's defaults (LightFM's are SERVICE_DEFAULTS). Chosen on validation splits of MovieLens-100k's train
# part (bench/quality.py), then kept where a neighbour scored within noise, preferring more regularisation.
ENGINE_DEFAULTS: dict[str, dict[str, Any]] = {
    "lightfm": SERVICE_DEFAULTS,
    "lightfm_hybrid": {**SERVICE_DEFAULTS, "feature_weight": 1.0},
    "ease": {"regularization": 500.0, "use_weights": False, "max_items": 8000, "keep": 256},
    # ALS: validation P@10 0.229 / NDCG@10 0.277 (the best single model there); 0.212 / 0.255 at reg 3
    "als": {"factors": 32, "regularization": 30.0, "alpha": 5.0, "iterations": 15, "weighting": "none"},
    # BPR (implicit): at best 0.144 / 0.160 on that validation split (lr 0.01, 100 iterations): not a default
    # candidate (MUSICBUD_CANDIDATES can add it)
    "bpr": {"factors": 64, "learning_rate": 0.01, "regularization": 0.1, "iterations": 100, "weighting": "none"},
    "popularity": {"use_weights": True},
}
ENGINES = ("lightfm", "lightfm_hybrid", "ease", "als", "bpr", "blend", "popularity")


def _blend(params: dict[str, Any]) -> BlendRecommender:
    unknown = set(params) - {"components", "weights"}
    if unknown:
        raise ValueError(f"blend takes components and weights, not {', '.join(sorted(unknown))}")
    specs = params.get("components")
    if not isinstance(specs, (list, tuple)) or not specs:
        raise ValueError("blend needs components: a list of engine names or {\"engine\": ..., \"params\": {...}}")
    components = []
    for spec in specs:
        if isinstance(spec, RecommenderBase):
            components.append(spec)
            continue
        if isinstance(spec, str):
            spec = {"engine": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("engine"), str) or \
                not isinstance(spec.get("params", {}), dict):
            raise ValueError(f"blend component {spec!r}: use an engine name or {{\"engine\": ..., \"params\": {{...}}}}")
        if spec["engine"] == "blend":
            raise ValueError("a blend cannot hold another blend")
        components.append(make_recommender(spec["engine"], **spec.get("params", {})))
    weights = params.get("weights", [1.0] * len(components))
    if not isinstance(weights, (list, tuple)):
        raise ValueError(f"blend weights {weights!r} must be a list of numbers, one per component")
    try:
        return BlendRecommender(components=components, weights=list(weights))
    except TypeError as exc:
        raise ValueError(str(exc)) from None


_BUILDERS: dict[str, Any] = {
    "lightfm_hybrid": LightFMHybridRecommender,
    "ease": EASERecommender,
    "als": ALSRecommender,
    "bpr": BPRRecommender,
    "popularity": PopularityRecommender,
}


def make_recommender(engine: str = "lightfm", **params: Any) -> RecommenderBase:
    """An unfitted recommender of that engine (ENGINES) with its ENGINE_DEFAULTS overridden by `params`.

    An unknown engine, an unknown parameter or a bad value raises ValueError naming it. lightfm when the
    lightfm package cannot be imported: a PopularityRecommender (logged as a WARNING); als / bpr without the
    implicit package: ValueError saying how to install it."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "blend":
        return _blend(params)
    if engine == "lightfm" and not lightfm_available():
        logger.warning(
            "lightfm is not importable: recommending popular items only. Install it with "
            "`pip install lightfm-next` and retrain to get personalised recommendations."
        )
        return PopularityRecommender()
    if engine in ("als", "bpr") and not implicit_available():
        raise ValueError(f"engine {engine!r} needs the implicit package: pip install implicit==0.7.3")
    builder = LightFMRecommender if engine == "lightfm" else _BUILDERS[engine]
    try:
        return builder(**{**ENGINE_DEFAULTS[engine], **params})
    except TypeError as exc:  # an unknown or badly typed parameter: say which
        raise ValueError(f"bad parameters for engine {engine!r}: {exc}") from None
