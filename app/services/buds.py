"""Buds: other app users ranked by taste similarity across every domain they have (the joint taste model,
ai/taste.py), each with a few items both have, per type. Never the user themself; a user with no history gets
no buds rather than random people."""
from __future__ import annotations

import logging

import orjson

from ai.taste import TasteModel
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


def _buds(taste: TasteModel, uid: str, n: int, shared_per_type: int) -> list[dict]:
    if uid not in taste.user_map:
        return []
    usernames = usernames_by_uid()
    return [{"id": other, "username": usernames.get(other, other), "similarity": round(similarity, 6),
             "shared": taste.shared_items(uid, other, per_type=shared_per_type)}
            for other, similarity in taste.similar_users(uid, n=n)]
