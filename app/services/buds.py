"""Buds: other app users ranked by taste similarity across every domain they have (the joint taste model,
ai/taste.py), each with a few items both have, per type, and how many they share of each type. Never the user
themself; a user with no history gets no buds rather than random people.

Each bud is also shaped as the MusicBud apps read one (Flutter's BudMatch): `uid`, `similarity_score` and
`bud: {uid, username}` besides our `id`, `username`, `similarity`, and `common_<type>_count` for artists, tracks
and genres (counted over the whole histories, not the few `shared` items shown)."""
from __future__ import annotations

import logging
import threading
import weakref

import numpy as np
import orjson

from ai.taste import TasteModel
from app.content_types import CONTENT_TYPES
from app.services.answer_cache import Answer, JsonFragment
from app.services.answers import answers
from app.services.model_registry import TASTE_KEY, registry
from app.services.user_directory import user_uid_aget, usernames_by_uid

logger = logging.getLogger(__name__)


async def buds_for_user(*, username: str, n: int = 10, shared_per_type: int = 3) -> Answer:
    taste = await registry.aget(TASTE_KEY)
    uid = await user_uid_aget(username=username)
    if not isinstance(taste, TasteModel):
        logger.warning("No taste model trained yet: no buds for %s", username)
        return Answer(JsonFragment(b"[]"), None)
    if uid is None:
        return Answer(JsonFragment(b"[]"), taste.version)
    json = answers().get_or_make(TASTE_KEY, taste.version, uid, n, shared_per_type,
                                 make=lambda: JsonFragment(orjson.dumps(_buds(taste, uid, n, shared_per_type))))
    return Answer(json, taste.version)


COUNTED_TYPES = ("artists", "tracks", "genres")  # each bud's common_<type>_count


def _buds(taste: TasteModel, uid: str, n: int, shared_per_type: int) -> list[dict]:
    if uid not in taste.user_map:
        return []
    usernames = usernames_by_uid()
    mine = taste.row_items(taste.user_map[uid])[0]
    buds = []
    for other, similarity in taste.similar_users(uid, n=n):
        username = usernames.get(other, other)
        counts = shared_counts(taste=taste, mine=mine, theirs=taste.row_items(taste.user_map[other])[0])
        buds.append({
            "id": other, "uid": other, "username": username, "similarity": round(similarity, 6),
            "similarity_score": round(similarity, 6), "bud": {"uid": other, "username": username},
            "shared": taste.shared_items(uid, other, per_type=shared_per_type),
            **{f"common_{key}_count": counts.get(key, 0) for key in COUNTED_TYPES},
        })
    return buds


def shared_counts(*, taste: TasteModel, mine: np.ndarray, theirs: np.ndarray) -> dict[str, int]:
    """{type key: how many items of that type two histories (taste columns) share}."""
    types = _column_types(taste)
    shared = types[np.intersect1d(mine, theirs)]
    counts = np.bincount(shared[shared >= 0], minlength=len(CONTENT_TYPES))
    return {ct.key: int(count) for ct, count in zip(CONTENT_TYPES, counts.tolist())}


_COLUMN_TYPES: list[tuple[weakref.ref, np.ndarray]] = []  # the taste model's column -> type, for its last version
_COLUMN_TYPES_LOCK = threading.Lock()


def _column_types(taste: TasteModel) -> np.ndarray:
    """Each taste column's content type (its index in CONTENT_TYPES; -1 for a type the table no longer has),
    computed once per taste model."""
    with _COLUMN_TYPES_LOCK:
        if _COLUMN_TYPES and _COLUMN_TYPES[0][0]() is taste:
            return _COLUMN_TYPES[0][1]
    types = np.full(len(taste.item_map), -1, dtype=np.int64)
    for index, ct in enumerate(CONTENT_TYPES):
        columns, _ = taste.type_columns(ct.model_key)
        types[columns] = index
    with _COLUMN_TYPES_LOCK:
        _COLUMN_TYPES[:] = [(weakref.ref(taste), types)]
    return types
