"""The recommendation services the API calls: keyword-only, typed, no HTTP in here.

One serving path makes every answer, for any user (known to the model, new, cross-domain, a guest):

    recommendations_for_user(username, content_type, n)
      -> served_aget        the type's model and its fallback chain (app/services/served.py)
      -> user_uid_aget      who the user is in the graph (app/services/user_directory.py)
      -> user_live_aget     what they did since the model was trained (app/services/live.py: the change feed,
                            or their history read again where the feed cannot follow the graph)
      -> the answer cache   keyed by everything the answer depends on (model versions, user, their history's
                            version, n); on a miss the chain ranks (folding in a user whose history changed),
                            each item says which link produced it (reason) and why (because), as JSON

Each step decides for itself whether it needs a thread (a file or a Neo4j read) or runs on the event loop
(everything already in memory, the usual case). Buds, health and training have their own modules; this
module is their façade for the views.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace

import orjson

from ai.recommendation_engine import UserQuery
from ai.recommender_base import UnknownItemError as EngineUnknownItemError
from app.content_types import BUDS_KEY, CONTENT_TYPES, content_type_get
from app.errors import ServiceUnavailableError, UnknownItemError
from app.services.answer_cache import Answer, JsonFragment
from app.services.answers import answers
from app.services.buds import buds_for_user
from app.services.health import health_get, models_status
from app.services.item_shapes import because_json, item_json
from app.services.model_registry import TASTE_KEY, registry
from app.services.served import Served, served_aget
from app.services.training import models_train, training_run, training_running
from app.services.live import UserLive, user_live_aget
from app.services.user_directory import user_uid_aget

logger = logging.getLogger(__name__)

__all__ = [
    "buds_for_user",
    "health_get",
    "models_preload",
    "models_status",
    "models_train",
    "popular_items",
    "popular_items_by_type",
    "training_run",
    "recommendations_all_for_user",
    "recommendations_for_user",
    "similar_items",
    "training_running",
]


async def recommendations_for_user(*, username: str | None, content_type: str, n: int) -> Answer:
    """The n best items of a type for an app user (None: a guest), best first, each with the link of the
    fallback chain that produced it as its reason; popular items for a user nothing is known of."""
    ct = content_type_get(key=content_type)
    served = await served_aget(ct=ct)
    uid = await user_uid_aget(username=username) if username is not None else None
    state = await user_live_aget(uid=uid, model=None if served.from_graph else served.model, ct=ct)
    json = answers().get_or_make(ct.model_key, served.answers_version, uid, state.version, n,
                                 make=lambda: _answer_json(served, uid, state, n))
    return Answer(json, served.version)


def _user_query(served: Served, uid: str | None, state: UserLive) -> UserQuery:
    """What the chain knows of the user: the model's row, or their history now when it changed since training
    (then folded in); across types too, for the cross-domain link, when they have none of this type."""
    ct, model = served.ct, served.model
    user = model.user_query(uid, history=state.histories.get(ct.model_key),
                            dismissed=state.dismissed.get(ct.model_key, ()))
    if served.taste is not None and state.histories and user.items.size == 0:
        cols, weights = served.taste.user_items(uid, state.histories)
        user = replace(user, taste_items=cols, taste_weights=weights)
    return user


def _answer_json(served: Served, uid: str | None, state: UserLive, n: int) -> JsonFragment:
    model, ct = served.model, served.ct
    user = _user_query(served, uid, state)
    ranked = served.chain.recommend(user, n=n)
    by_link: dict[str, list[int]] = defaultdict(list)
    for column, _, link in ranked:
        by_link[link].append(column)
    because: dict[int, list[dict]] = {}
    for link, columns in by_link.items():  # each link explains its own items, one product per link and page
        for column, pairs in zip(columns, served.chain.link(link).explain_many(user, columns, k=3)):
            because[column] = because_json(ct.title_property, pairs)
    ids = model.item_ids
    return JsonFragment(orjson.dumps([
        item_json(ids[column], model.items.get(ids[column]), recommendation_score=round(float(score), 6),
                  reason=link, because=because[column])
        for column, score, link in ranked]))


async def recommendations_all_for_user(*, username: str, n: int = 10) -> dict[str, JsonFragment]:
    """Every content type's recommendations, plus buds, keyed as the API answers them (each value the JSON of
    that part's answer)."""
    out = {ct.key: (await recommendations_for_user(username=username, content_type=ct.key, n=n)).json
           for ct in CONTENT_TYPES}
    out[BUDS_KEY] = (await buds_for_user(username=username, n=n)).json
    return out


async def popular_items(*, content_type: str, n: int) -> Answer:
    """Popular items of a type for anyone (the guest endpoint): the chain's answer for a user nothing is known
    of."""
    return await recommendations_for_user(username=None, content_type=content_type, n=n)


async def popular_items_by_type(*, content_type: str, n: int) -> dict[str, JsonFragment] | JsonFragment:
    """The guest endpoint's answer: one type's popular items, or every type's ("all") keyed by type."""
    if content_type != "all":
        return (await popular_items(content_type=content_type, n=n)).json
    return {ct.key: (await popular_items(content_type=ct.key, n=n)).json for ct in CONTENT_TYPES}


async def similar_items(*, content_type: str, item_id: str, n: int) -> list[dict]:
    """The n items of a type most similar to one item (cosine of the learned item representations)."""
    ct = content_type_get(key=content_type)
    served = await served_aget(ct=ct)
    if served.from_graph:
        raise ServiceUnavailableError(f"No {ct.key} model is trained yet: similar items need one.")
    model = served.model
    try:
        similar = model.similar_items(item_id, n=n)
    except EngineUnknownItemError:
        raise UnknownItemError(f"Unknown {ct.key} id '{item_id}' (or it has no interactions yet).") from None
    return [item_json(i, model.items.get(i), similarity=round(float(s), 6)) for i, s in similar]


def models_preload() -> None:
    """Load every saved model and the user directory now, in this thread, and what serving derives from them
    (the buds' taste profiles). A server worker does it before it serves (musicbud/asgi.py): no first request
    waits seconds for a model, and loads do not interleave with requests in threads (which leaves the heap
    fragmented: ~100 MB more resident)."""
    registry.users()
    for key in [ct.model_key for ct in CONTENT_TYPES] + [TASTE_KEY]:
        registry.get(key)
