"""One content type's trained model with everything serving needs: the engines, the id maps, the matrix it
learned from and the item details (so a request needs no database round trip). ai/model_store.py saves and
loads it; its fallback chain (personalised, then popular, with other links such as cross-domain taste
inserted by the caller) ranks for any user."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, ClassVar
import numpy as np
import scipy.sparse as sp

from ai.item_details import ItemDetails
from ai.popularity import PopularityRecommender
from ai.recommendation_engine import ChainLink, FallbackChain, RecommenderBase, RecommenderLink, UserQuery
from ai.recommender_base import FactorModelBase, UnknownItemError, UnknownUserError
from ai.trending import TrendingLink, TrendingScores
from ai.user_index import CompactUserMap

__all__ = ["PERSONALISED", "POPULAR", "TrainedModel"]

if TYPE_CHECKING:
    from ai.cold_items import ColdItems

# The names of the links a trained model contributes to a chain: each item's `reason`.
PERSONALISED = "personalised"
POPULAR = "popular"


@dataclass(eq=False)  # compared by identity: fields hold matrices
class TrainedModel:
    kind: ClassVar[str] = "type"  # what the manifest names; ai/taste.py's TasteModel is "taste"

    content_type: str
    model: RecommenderBase
    popularity: PopularityRecommender
    user_map: Mapping[str, int] = field(repr=False)  # held as CompactUserMap (one uid index per process)
    item_map: dict[str, int] = field(repr=False)
    matrix: sp.csr_matrix = field(repr=False)
    items: Mapping[str, dict] = field(repr=False)  # held as ItemDetails
    manifest: dict = field(default_factory=dict)
    dismissed: Mapping[str, list[str]] = field(default_factory=dict, repr=False)  # user id -> item ids, never shown
    trending: TrendingScores | None = field(default=None, repr=False)  # time-decayed popularity (ai/trending.py)

    def __post_init__(self) -> None:
        self.matrix = sp.csr_matrix(self.matrix)
        if not isinstance(self.items, ItemDetails):
            self.items = ItemDetails(self.items)
        self.user_map = CompactUserMap.of(self.user_map)  # every model's rows over the process's one uid index
        if self.matrix.shape != (len(self.user_map), len(self.item_map)):
            raise ValueError(
                f"matrix {self.matrix.shape} must be (len(user_map), len(item_map)) = "
                f"({len(self.user_map)}, {len(self.item_map)}): build the maps and the matrix together"
            )
        for engine in (self.model, self.popularity):
            if engine.is_fitted and engine.n_items != self.matrix.shape[1]:
                raise ValueError(f"{engine.name} was fitted on {engine.n_items} items, the matrix has "
                                 f"{self.matrix.shape[1]}: fit it on this matrix")
        for engine in (self.popularity, self.model):  # one copy of the matrix where an engine was fitted on it
            engine.share_matrix(self.matrix)
        if self.trending is not None and self.trending.n_items != self.matrix.shape[1]:
            raise ValueError(f"trending scores cover {self.trending.n_items} items, the matrix has "
                             f"{self.matrix.shape[1]}: compute them over the matrix's columns")
        self._chains: dict[tuple, FallbackChain] = {}

    def warm(self) -> None:
        """Compute what serving derives from the model now (nothing here; the taste model has some)."""

    @property
    def version(self) -> str | None:
        return self.manifest.get("version")

    @cached_property
    def item_ids(self) -> np.ndarray:
        """External item ids by column (object array)."""
        ids = np.empty(len(self.item_map), dtype=object)
        ids[list(self.item_map.values())] = list(self.item_map.keys())
        return ids

    @cached_property
    def user_ids(self) -> np.ndarray:
        """External user ids by row (object array)."""
        ids = np.empty(len(self.user_map), dtype=object)
        ids[list(self.user_map.values())] = list(self.user_map.keys())
        return ids

    def columns(self, item_keys) -> np.ndarray:
        """The columns of the given item ids (ids the model does not know are left out)."""
        item_map = self.item_map
        return np.fromiter((item_map[key] for key in map(str, item_keys) if key in item_map), dtype=np.int64)

    def row_items(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(columns, weights) of one row of the matrix (the user's whole history, held-out slice included)."""
        start, end = self.matrix.indptr[row], self.matrix.indptr[row + 1]
        return self.matrix.indices[start:end].astype(np.int64), self.matrix.data[start:end]

    def row_size(self, user_key: str) -> int:
        """How many items the user has in the matrix (0 for a user the model does not have)."""
        row = self.user_map.get(user_key)
        return 0 if row is None else int(self.matrix.indptr[row + 1] - self.matrix.indptr[row])

    def user_query(self, user_key: str | None, *, history: Mapping[str, float] | None = None,
                   dismissed: Iterable[str] = ()) -> UserQuery:
        """What the chain knows of a user: their row, and their items of this type with weights: as the model was
        fitted (history None), or `history` ({item id: weight}, their whole history now: `changed` when it differs
        from their row, so that a link folds them in). Dismissed items (here and in `dismissed`) and history items
        the model does not know are never recommended."""
        row = self.user_map.get(str(user_key)) if user_key is not None else None
        items, weights = self.row_items(row) if row is not None else (np.empty(0, np.int64), None)
        changed = False
        if history is not None:
            fitted = dict(zip(self.item_ids[items].tolist(), weights.tolist())) if weights is not None else {}
            changed = {k: float(v) for k, v in history.items()} != {k: float(v) for k, v in fitted.items()}
            if changed:
                known = [(self.item_map[k], w) for k, w in history.items() if k in self.item_map]
                items = np.array([c for c, _ in known], dtype=np.int64)
                weights = np.array([w for _, w in known], dtype=np.float32)
        banned = [*self.dismissed.get(str(user_key), ()), *dismissed] if user_key is not None else []
        return UserQuery(key=user_key, row=row, items=items, weights=weights, changed=changed,
                         excluded=self.columns(banned))

    def links(self, *, title_property: str = "title", fold_in: bool = False) -> tuple[ChainLink, ChainLink]:
        """(personalised, popular): this model's links of a chain."""
        title = lambda key: self.items.value(key, title_property)  # noqa: E731
        popular = RecommenderLink(self.popularity, name=POPULAR)
        if self.model is self.popularity or isinstance(self.model, PopularityRecommender):
            return popular, popular
        personal = RecommenderLink(self.model, name=PERSONALISED, item_keys=self.item_ids, titles=title,
                                   fold_in=fold_in)
        return personal, popular

    def chain(self, *, title_property: str = "title", between: tuple[ChainLink, ...] = (),
              fold_in: bool = False, trending: bool = True, cold: ColdItems | None = None) -> FallbackChain:
        """personalised -> `between` (e.g. cross-domain taste) -> trending (when the model has trending scores
        and `trending`) -> popular, built once per distinct arguments. With `cold` (new items, a factor model
        only), the personalised link ranks the new items too."""
        key = (title_property, tuple(id(link) for link in between), fold_in, trending, id(cold))
        chain = self._chains.get(key)
        if chain is None:
            personal, popular = self.links(title_property=title_property, fold_in=fold_in)
            if cold is not None and personal is not popular and isinstance(self.model, FactorModelBase):
                from ai.cold_items import ColdStartLink

                personal = ColdStartLink(personal, cold)
            middle = [TrendingLink(self.trending)] if trending and self.trending is not None else []
            links = [*([] if personal is popular else [personal]), *between, *middle, popular]
            if len(self._chains) > 16:  # chains of replaced cold-item sets
                self._chains.clear()
            chain = self._chains[key] = FallbackChain(links)
        return chain

    def recommend(self, user_key: str | None, n: int = 10, exclude: set[str] | None = None
                  ) -> list[tuple[str, float, str]]:
        """[(item id, score, link name)], best first: the model for a known user, topped up (or replaced, for an
        unknown or None user) by popular items. Never an item of the user's row or of `exclude`."""
        results = self.chain().recommend(self.user_query(user_key), n=n, filter_items=self.columns(exclude or ()))
        return [(self.item_ids[item], score, source) for item, score, source in results]

    def similar_items(self, item_key: str, n: int = 10) -> list[tuple[str, float]]:
        """[(item id, cosine)] most similar first; UnknownItemError for an id the model has not seen."""
        column = self.item_map.get(str(item_key))
        if column is None:
            raise UnknownItemError(item_key)
        ids, scores = self.model.similar_items(column, n=n)
        return [(self.item_ids[i], float(s)) for i, s in zip(ids.tolist(), scores.tolist())]

    def similar_users(self, user_key: str, n: int = 10) -> list[tuple[str, float]]:
        """[(user id, similarity in [0, 1])]; [] when the model has no user factors (popularity)."""
        row = self.user_map.get(str(user_key))
        if row is None:
            raise UnknownUserError(user_key)
        ids, scores = self.model.similar_users(row, n=n)
        return [(self.user_ids[i], float(s)) for i, s in zip(ids.tolist(), scores.tolist())]

    def explain(self, user_key: str, item_key: str, k: int = 3) -> list[str]:
        """Ids of up to k items of the user's history most like `item_key`; [] when it cannot be said."""
        return self.explain_many(user_key, [item_key], k=k)[0]

    def explain_many(self, user_key: str, item_keys: list[str], k: int = 3) -> list[list[str]]:
        """explain() for each of several items of one user, computed together (one page of recommendations)."""
        columns = [self.item_map.get(str(key)) for key in item_keys]
        known = [column for column in columns if column is not None]
        user = self.user_query(user_key)
        if user.row is None or not known:
            return [[] for _ in columns]
        reasons = iter(self.links()[0].explain_many(user, known, k=k))
        return [[key for key, _ in next(reasons)] if column is not None else [] for column in columns]

