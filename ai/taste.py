"""The joint taste model: one factor model over every item type at once (columns "<type>:<id>", rows: app
users). Its representations describe a user's taste across domains:

- buds (``TasteModel.similar_users``): a user's taste is the mean of the learned (unit) representations of
  every item in their history, across all types; buds are the other users whose taste vectors are closest
  (cosine mapped to [0, 1]). Steadier than comparing raw user embeddings, whose scale and bias direction vary
  with how active a user is.
- cross-domain (``CrossDomainLink``, a link of each type's fallback chain): items of a type the user has no
  history in, ranked by the taste model from their history in the other types.

Nothing here knows Django or Neo4j.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from ai.recommendation_engine import ChainLink, FactorModelBase, UserQuery
from ai.item_details import ItemDetails
from ai.recommender_base import top_n
from ai.trained_model import TrainedModel

__all__ = ["CROSS_DOMAIN", "CrossDomainLink", "TasteModel", "TastePart", "joint_interactions", "taste_key"]

CROSS_DOMAIN = "cross_domain"  # the link's name: the `reason` of the items it recommends


def taste_key(prefix: str, item_id: str) -> str:
    """An item's column name in the taste model: "<type prefix>:<item id>" (e.g. "movie:tt0114709")."""
    return f"{prefix}:{item_id}"


@dataclass(frozen=True)
class TastePart:
    """One content type's share of the taste model: its prefix (the model key), its API key (what a bud's
    shared items are grouped by), the title property of its items, and its trained model."""

    prefix: str
    type_key: str
    title_property: str
    model: TrainedModel


def joint_interactions(parts: list[TastePart]) -> tuple[sp.csr_matrix, dict[str, int], dict[str, int], ItemDetails]:
    """(matrix, user_map, item_map, items) of the taste model from each type's trained model: rows are the union
    of their users, columns their items side by side ("<prefix>:<id>"), items {"id", "type", "title"} (held as
    ItemDetails from the start: a dict per item of a 10M-interaction graph would be ~400 MB more at the fit)."""
    users: dict[str, int] = {}
    for part in parts:
        for uid in part.model.user_map:
            users.setdefault(uid, len(users))
    blocks, item_map, items = [], {}, ItemDetails()
    for part in parts:
        model = part.model
        rows = np.empty(len(model.user_map), dtype=np.int32)
        for uid, row in model.user_map.items():
            rows[row] = users[uid]
        coo = model.matrix.tocoo()
        offset = len(item_map)
        blocks.append((rows[coo.row], (coo.col + offset).astype(np.int32), coo.data.astype(np.float32)))
        for item_id, col in sorted(model.item_map.items(), key=lambda kv: kv[1]):
            key = taste_key(part.prefix, item_id)
            item_map[key] = offset + col
            items.add(key, {"id": item_id, "type": part.type_key,
                            "title": model.items.value(item_id, part.title_property)})
    r = np.concatenate([b[0] for b in blocks])
    c = np.concatenate([b[1] for b in blocks])
    w = np.concatenate([b[2] for b in blocks])
    del blocks
    return sp.csr_matrix((w, (r, c)), shape=(len(users), len(item_map))), users, item_map, items


class TasteModel(TrainedModel):
    """The taste model as trained and saved (a TrainedModel of kind "taste"), with what serving derives from it
    computed once per loaded version."""

    kind = "taste"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._links: dict[tuple, CrossDomainLink] = {}
        self._type_columns: dict[str, tuple[np.ndarray, list[str]]] = {}
        self._lock = threading.Lock()

    @property
    def factors(self) -> FactorModelBase | None:
        """The factor model, or None when the taste model could only be a popularity one (no lightfm)."""
        return self.model if isinstance(self.model, FactorModelBase) else None

    @cached_property
    def profiles(self) -> np.ndarray:
        """Each user's taste as one unit vector (float32, users x d): the mean of the unit item
        representations of their history. ~100 MB of temporaries at 1M interactions, so models_preload
        computes it before a worker serves."""
        factors = self.factors
        if factors is None:
            return np.zeros((len(self.user_map), 0), dtype=np.float32)
        item_vectors = np.asarray(factors.item_factors[:, :-1], dtype=np.float32)
        item_vectors = item_vectors / np.maximum(np.linalg.norm(item_vectors, axis=1, keepdims=True), 1e-12)
        binary = self.matrix.copy()
        binary.data[:] = 1.0
        profiles = np.asarray(binary @ item_vectors, dtype=np.float32)
        profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
        return profiles

    def type_columns(self, prefix: str) -> tuple[np.ndarray, list[str]]:
        """(taste columns, item ids) of one type's items, by column (computed once per prefix)."""
        cached = self._type_columns.get(prefix)
        if cached is None:
            start = f"{prefix}:"
            pairs = sorted((col, key[len(start):]) for key, col in self.item_map.items() if key.startswith(start))
            cached = self._type_columns[prefix] = (np.array([c for c, _ in pairs], dtype=np.int64),
                                                   [i for _, i in pairs])
        return cached

    def warm(self) -> None:
        """Compute what serving derives from the model (profiles, each type's columns) now, in the loading
        thread, rather than in the first request that needs it."""
        self.profiles  # noqa: B018
        for prefix in {key.split(":", 1)[0] for key in self.item_map}:
            self.type_columns(prefix)

    def similar_users(self, user_key: str, n: int = 10) -> list[tuple[str, float]]:
        """Buds: [(user id, similarity in [0, 1])], most alike first, never the user; [] for a user the model
        does not know (no history) or without user representations."""
        row = self.user_map.get(str(user_key))
        if row is None or self.factors is None:
            return []
        profiles = self.profiles
        sims = (profiles @ profiles[row] + 1.0) / 2.0
        ids, scores = top_n(sims, n, np.array([row]))
        return [(self.user_ids[i], float(s)) for i, s in zip(ids.tolist(), scores.tolist())]

    def shared_items(self, user_key: str, other_key: str, *, per_type: int = 3) -> dict[str, list[dict]]:
        """Items both users have, {type key: [{"id", "title"}]}, at most per_type per type, in column order."""
        mine = set(self.row_items(self.user_map[str(user_key)])[0].tolist())
        theirs = self.row_items(self.user_map[str(other_key)])[0].tolist()
        shared: dict[str, list[dict]] = {}
        for col in sorted(mine.intersection(theirs)):
            key = self.item_ids[col]
            group = shared.setdefault(self.items.value(key, "type"), [])
            if len(group) < per_type:
                group.append({"id": self.items.value(key, "id"), "title": self.items.value(key, "title")})
        return shared

    def user_items(self, user_key: str | None, histories: Mapping[str, Mapping[str, float]]
                   ) -> tuple[np.ndarray, np.ndarray]:
        """(columns, weights) of a user's items across every type, as the model learned them except for the types
        in `histories` ({prefix: {item id: weight}}, what the user has now), which replace theirs."""
        row = self.user_map.get(str(user_key)) if user_key is not None else None
        cols, weights = self.row_items(row) if row is not None else (np.empty(0, np.int64), np.empty(0, np.float32))
        if histories:
            keys = self.item_ids[cols] if cols.size else np.empty(0, dtype=object)
            keep = np.array([key.split(":", 1)[0] not in histories for key in keys.tolist()], dtype=bool)
            extra = [(self.item_map[taste_key(prefix, item)], w) for prefix, history in histories.items()
                     for item, w in history.items() if taste_key(prefix, item) in self.item_map]
            cols = np.concatenate([cols[keep] if keep.size else cols, np.array([c for c, _ in extra], np.int64)])
            weights = np.concatenate([weights[keep] if keep.size else weights,
                                      np.array([w for _, w in extra], np.float32)])
        return cols, weights

    def cross_domain_link(self, prefix: str, model: TrainedModel) -> CrossDomainLink:
        """The cross-domain link of one type's chain (made once per type model version)."""
        key = (prefix, model.version, id(model))
        link = self._links.get(key)
        if link is None:
            with self._lock:
                link = self._links.get(key)
                if link is None:
                    for old in [k for k in self._links if k[0] == prefix]:
                        del self._links[old]
                    link = self._links[key] = CrossDomainLink(self, prefix, model)
        return link


class CrossDomainLink(ChainLink):
    """Items of one type for a user the taste model knows, scored by its user and item factors; in the type
    model's item space (items the type model does not have are left out)."""

    name = CROSS_DOMAIN

    def __init__(self, taste: TasteModel, prefix: str, model: TrainedModel) -> None:
        self.taste = taste
        taste_columns, item_ids = taste.type_columns(prefix)
        columns = np.fromiter((model.item_map.get(i, -1) for i in item_ids), dtype=np.int64, count=len(item_ids))
        known = columns >= 0  # items of the type model (the two were trained together: all, usually)
        self.taste_columns = taste_columns[known]  # taste column of each candidate
        self.columns = columns[known]  # its column in the type model
        self.n_items = len(model.item_map)
        self.taste_of = np.full(self.n_items, -1, dtype=np.int64)  # type column -> taste column
        self.taste_of[self.columns] = self.taste_columns
        # Trained together, the type's items are one block of the taste model's columns in the type model's order
        # (joint_interactions): score that block as a view of the factors. Otherwise gather (a copy per request).
        start = int(self.taste_columns[0]) if self.taste_columns.size else 0
        self.block = slice(start, start + self.n_items) if (
            self.columns.size == self.n_items and np.array_equal(self.columns, np.arange(self.n_items))
            and np.array_equal(self.taste_columns, start + self.columns)) else None

    def _user(self, user: UserQuery) -> tuple[int | None, np.ndarray | None, Any]:
        """(their row, the vector to score with, their taste items) or a None vector when the link cannot rank
        for them: a user the taste model learned, or (taste_items given) one folded in from what they have now."""
        factors = self.taste.factors
        if factors is None or self.columns.size == 0:
            return None, None, None
        row = self.taste.user_map.get(str(user.key)) if user.key is not None else None
        if user.taste_items is not None:
            if user.taste_items.size == 0:
                return row, None, None
            weights = user.taste_weights if user.taste_weights is not None else np.ones(user.taste_items.size)
            history = sp.csr_matrix((np.asarray(weights, np.float32), (np.zeros(user.taste_items.size, np.int64),
                                                                        user.taste_items)),
                                    shape=(1, factors.n_items))
            return row, factors.recalculate_user(history), user.taste_items
        if row is None:
            return None, None, None
        return row, factors.user_vector(row), self.taste.row_items(row)[0]

    def recommend(self, user: UserQuery, n: int, filter_items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        _, vector, _ = self._user(user)
        if vector is None:
            return None
        factors = self.taste.factors.item_factors
        if self.block is not None:
            scores = factors[self.block] @ vector
        else:
            scores = np.full(self.n_items, -np.inf, dtype=np.float32)
            scores[self.columns] = factors[self.taste_columns] @ vector
        return top_n(scores, n, filter_items)

    def explain_many(self, user: UserQuery, items: list[int], k: int = 3) -> list[list[tuple[str, Any]]]:
        row, vector, history = self._user(user)
        if vector is None:
            return [[] for _ in items]
        reasons = self.taste.factors.explain_many(row, self.taste_of[np.asarray(items, dtype=np.int64)], history, k=k)
        keys, details = self.taste.item_ids, self.taste.items
        return [[(details.value(keys[col], "id"), details.value(keys[col], "title")) for col, _ in because]
                for because in reasons]
