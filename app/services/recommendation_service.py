"""The recommendation services the API calls: keyword-only, typed, no HTTP in here.

One serving path makes every answer, for any user (known to the model, new, cross-domain, a guest):

    recommendations_for_user(username, content_type, n)
      -> served_aget        the type's model and its fallback chain (app/services/served.py); for a user in a
                            running experiment of the type (app/services/experiments.py), their arm's model in
                            the same chain, and the answer names the experiment and arm (and is counted:
                            app/services/experiment_outcomes.py)
      -> user_uid_aget      who the user is in the graph (app/services/user_directory.py)
      -> user_live_aget     what they did since the model was trained (app/services/live.py: the change feed,
                            or their history read again where the feed cannot follow the graph)
      -> the answer cache   keyed by everything the answer depends on (model versions, user, their history's
                            version, n, the new items' version), and the trending scores' version for an answer
                            that reached the trending link; on a miss the chain ranks (folding in a user whose
                            history changed), each item says which link produced it (reason) and why (because),
                            as JSON

Filters (`genre`, `exclude`, `year_min` / `year_max`: app/services/filters.py) are filters of the chain: every
link ranks only the items they admit, so the answer still has n items when the type has that many. `diversity`
re-ranks a larger pool of the chain's answer by MMR (app/services/diversify.py); at 0 (the default) nothing of
it runs. New items (in the graph, not in the model: app/services/new_items.py) are ranked by the personalised
link from their features.

Each step decides for itself whether it needs a thread (a file or a Neo4j read) or runs on the event loop
(everything already in memory, the usual case). Buds, health and training have their own modules; this
module is their façade for the views. The guest discovery answers (app/services/discovery.py) are built on its
popular items.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import replace

import numpy as np
import orjson

from ai.recommendation_engine import UserQuery
from ai.trained_model import POPULAR
from ai.trending import TRENDING
from ai.recommender_base import UnknownItemError as EngineUnknownItemError
from app.content_types import BUDS_KEY, CONTENT_TYPES, content_type_get
from app.errors import ServiceUnavailableError, UnknownItemError
from app.services.answer_cache import Answer, JsonFragment
from app.services.answers import answers
from app.services.buds import buds_for_user
from app.services.experiment_outcomes import outcomes
from app.services.experiments import experiments_running_aget
from app.services.health import health_get, models_status
from app.services.item_shapes import because_json, content_json, item_json
from app.services.model_registry import TASTE_KEY, registry
from app.services.served import Served, served_aget
from app.services.training import models_train, training_running
from app.services.training_jobs import training_job_run, training_status_aget
from app.services.live import UserLive, user_live_aget
from app.services.diversify import diversified
from app.services.filters import NO_FILTER, ItemFilter, filtered_columns
from app.services.new_items import NONE as NO_NEW_ITEMS
from app.services.new_items import NewItems, new_items_aget
from ai.diversity import pool_size
from app.services.user_directory import user_uid_aget

logger = logging.getLogger(__name__)

SORTS = ("popular", "trending")  # the guest endpoints' orders

__all__ = [
    "SORTS",
    "buds_for_user",
    "health_get",
    "models_preload",
    "models_status",
    "models_train",
    "popular_items",
    "popular_items_by_type",
    "training_job_run",
    "training_status_aget",
    "recommendations_all_for_user",
    "recommendations_for_user",
    "similar_items",
    "training_running",
]


async def recommendations_for_user(*, username: str | None, content_type: str, n: int,
                                   item_filter: ItemFilter = NO_FILTER, diversity: float = 0.0,
                                   trending: bool = True) -> Answer:
    """The n best items of a type for an app user (None: a guest), best first, each with the link of the
    fallback chain that produced it as its reason; trending, then popular items for a user nothing is known of
    (trending=False: popular items only, a guest's default). `item_filter`: only items it admits (inside the
    ranking: still n when there are enough); `diversity` in [0, 1]: re-ranked by MMR (0: not at all)."""
    ct = content_type_get(key=content_type)
    served = await served_aget(ct=ct)
    experiment = arm = None
    if username is not None and not served.from_graph:
        experiment = (await experiments_running_aget()).get(ct.model_key)
        if experiment is not None:
            arm = experiment.arm_for(username)
            if arm.model_key is not None:
                in_arm = await served_aget(ct=ct, model_key=arm.model_key)
                if in_arm is None:  # its model cannot be loaded: the type's model answers, uncounted
                    logger.warning("Experiment %s: arm %s's model %s is not available; serving the %s model",
                                   experiment.name, arm.name, arm.model_key, ct.model_key)
                    experiment = arm = None
                else:
                    served = in_arm
    uid = await user_uid_aget(username=username) if username is not None else None
    state = await user_live_aget(uid=uid, model=None if served.from_graph else served.model, ct=ct)
    new = NO_NEW_ITEMS if served.from_graph else await new_items_aget(content_type=ct, model=served.model)
    scores = served.model.trending
    trending_version = scores.version if scores is not None else -1
    json = answers().get_or_make(served.cache_key or ct.model_key, served.answers_version, uid, state.version, n,
                                 item_filter, diversity, trending, new.version,
                                 make=lambda: _answer_json(served, uid, state, n, item_filter, diversity, trending,
                                                           new, trending_version),
                                 valid=lambda kept: kept.trending_version in (None, trending_version))
    if experiment is None:
        return Answer(json, served.version)
    outcomes.served(experiment=experiment, arm=arm, uid=uid or f"@{username}", answer=json)
    return Answer(json, served.version, experiment=experiment.label(arm))


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


def _answer_json(served: Served, uid: str | None, state: UserLive, n: int, item_filter: ItemFilter,
                 diversity: float, trending: bool, new: NewItems, trending_version: int) -> JsonFragment:
    """The answer's JSON. It depends on the trending scores (`trending_version`: their version now) only when its
    chain reached the trending link: an item of it or of a link after it (popular), or fewer items than asked
    for. Only then is it marked with that version (a like anywhere moves it: the answers of users the personalised
    link fills stay cached)."""
    model, ct = served.model, served.ct
    user = _user_query(served, uid, state)
    chain = served.chain_for(trending=trending, cold=new.cold)
    ids = new.all_ids if new.cold is not None else model.item_ids
    excluded = filtered_columns(model=model, item_filter=item_filter, extra_ids=new.ids,
                                extra_details=new.details) if item_filter else None
    wanted = pool_size(n, len(ids)) if diversity > 0 else n
    ranked = chain.recommend(user, n=wanted, filter_items=excluded)
    reached_trending = trending and (len(ranked) < wanted or any(link in (TRENDING, POPULAR) for _, _, link in ranked))
    if diversity > 0:
        ranked = diversified(ranked=ranked, columns=[column for column, _, _ in ranked], model=model, new=new,
                             n=n, diversity=diversity)
    by_link: dict[str, list[int]] = defaultdict(list)
    for column, _, link in ranked:
        by_link[link].append(column)
    because: dict[int, list[dict]] = {}
    for link, columns in by_link.items():  # each link explains its own items, one product per link and page
        for column, pairs in zip(columns, chain.link(link).explain_many(user, columns, k=3)):
            because[column] = because_json(ct.title_property, pairs)
    return JsonFragment(orjson.dumps([
        item_json(ids[column], model.items.get(ids[column]) or new.details.get(ids[column]),
                  recommendation_score=round(float(score), 6), reason=link, because=because[column])
        for column, score, link in ranked]), trending_version=trending_version if reached_trending else None)


class AllAnswers(dict):
    """Every type's answer keyed as the API answers them; `experiments`: the "<experiment>:<arm>" of each part
    served in an experiment."""

    experiments: list[str]


async def recommendations_all_for_user(*, username: str, n: int = 10, diversity: float = 0.0) -> AllAnswers:
    """Every content type's recommendations, plus buds, keyed as the API answers them (each value the JSON of
    that part's answer)."""
    out, labels = AllAnswers(), []
    for ct in CONTENT_TYPES:
        answer = await recommendations_for_user(username=username, content_type=ct.key, n=n,
                                               diversity=diversity)
        out[ct.key] = answer.json
        if answer.experiment:
            labels.append(answer.experiment)
    out[BUDS_KEY] = (await buds_for_user(username=username, n=n)).json
    out.experiments = labels
    return out


async def popular_items(*, content_type: str, n: int, item_filter: ItemFilter = NO_FILTER,
                        diversity: float = 0.0, sort: str = "popular") -> Answer:
    """Items of a type for anyone (the guest endpoints): the chain's answer for a user nothing is known of, by
    all-time popularity (sort="popular") or trending first (sort="trending"; popular items top it up)."""
    if sort not in SORTS:
        raise ValueError(f"sort must be one of {SORTS}, got {sort!r}")
    return await recommendations_for_user(username=None, content_type=content_type, n=n, item_filter=item_filter,
                                          diversity=diversity, trending=sort == "trending")


async def popular_items_by_type(*, content_type: str, n: int, item_filter: ItemFilter = NO_FILTER,
                                diversity: float = 0.0, sort: str = "popular") -> dict:
    """The guest endpoint's answer, always keyed by type: one type's items ({"movies": [...]}) or every type's
    ("all"), and `content`: all of them in one flat list of {id, type, title, name, cover, artist}."""
    keys = [ct.key for ct in CONTENT_TYPES] if content_type == "all" else [content_type]
    out: dict = {key: (await popular_items(content_type=key, n=n, item_filter=item_filter, diversity=diversity,
                                           sort=sort)).json for key in keys}
    out["content"] = [content_json(content_type_get(key=key), item)
                      for key in keys for item in orjson.loads(out[key].text)]
    return out


async def similar_items(*, content_type: str, item_id: str, n: int, item_filter: ItemFilter = NO_FILTER,
                        diversity: float = 0.0) -> list[dict]:
    """The n items of a type most similar to one item (cosine of the learned item representations), new items
    (ranked from their features) among them; a new item's own neighbours too. `item_filter` and `diversity` as
    for recommendations."""
    ct = content_type_get(key=content_type)
    served = await served_aget(ct=ct)
    if served.from_graph:
        raise ServiceUnavailableError(f"No {ct.key} model is trained yet: similar items need one.")
    model = served.model
    new = await new_items_aget(content_type=ct, model=model)
    unknown = UnknownItemError(f"Unknown {ct.key} id '{item_id}' (or it has no interactions yet).")
    column = model.item_map.get(str(item_id))
    if column is None:
        column = new.column(str(item_id))
    if column is None:
        raise unknown
    ids = new.all_ids if new.cold is not None else model.item_ids
    excluded = filtered_columns(model=model, item_filter=item_filter, extra_ids=new.ids,
                                extra_details=new.details) if item_filter else np.empty(0, np.int64)
    wanted = pool_size(n, len(ids)) if diversity > 0 else n
    found: list[tuple[int, float]] = []
    if column < len(model.item_ids):
        asked = wanted if not excluded.size else min(len(model.item_ids), wanted + excluded.size)
        try:
            cols, sims = model.model.similar_items(column, n=asked)
        except EngineUnknownItemError:
            raise unknown from None
        found = list(zip(cols.tolist(), sims.tolist()))
    if new.cold is not None:
        cols, sims = new.cold.similar(column, wanted, excluded)
        found += list(zip(cols.tolist(), sims.tolist()))
    if excluded.size:
        banned = set(excluded.tolist())
        found = [pair for pair in found if pair[0] not in banned]
    found.sort(key=lambda pair: -pair[1])
    found = found[:wanted]
    if diversity > 0:
        found = diversified(ranked=found, columns=[c for c, _ in found], model=model, new=new, n=n,
                            diversity=diversity)
    return [item_json(ids[c], model.items.get(ids[c]) or new.details.get(ids[c]), similarity=round(float(s), 6))
            for c, s in found[:n]]


def models_preload() -> None:
    """Load every saved model and the user directory now, in this thread, and what serving derives from them
    (the buds' taste profiles). A server worker does it before it serves (musicbud/asgi.py): no first request
    waits seconds for a model, and loads do not interleave with requests in threads (which leaves the heap
    fragmented: ~100 MB more resident)."""
    registry.users()
    for key in [ct.model_key for ct in CONTENT_TYPES] + [TASTE_KEY]:
        registry.get(key)
