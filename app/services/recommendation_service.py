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
                            version, n); on a miss the chain ranks (folding in a user whose history changed),
                            each item says which link produced it (reason) and why (because), as JSON

A genre filter (the guest endpoint's `genre`) is a filter of the chain: every link ranks only the items of
those genres (the columns of the others are excluded, computed once per model and genres), so the answer still
has n items when the type has that many.

Each step decides for itself whether it needs a thread (a file or a Neo4j read) or runs on the event loop
(everything already in memory, the usual case). Buds, health and training have their own modules; this
module is their façade for the views. The guest discovery answers (app/services/discovery.py) are built on its
popular items.
"""
from __future__ import annotations

import logging
import threading
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import orjson

from ai.recommendation_engine import UserQuery
from ai.trained_model import TrainedModel
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
from app.services.user_directory import user_uid_aget

logger = logging.getLogger(__name__)

__all__ = [
    "buds_for_user",
    "health_get",
    "items_outside_genres",
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
                                   genres: frozenset[str] | None = None) -> Answer:
    """The n best items of a type for an app user (None: a guest), best first, each with the link of the
    fallback chain that produced it as its reason; popular items for a user nothing is known of. With `genres`
    (casefolded names), only items that have at least one of them."""
    ct = content_type_get(key=content_type)
    served = await served_aget(ct=ct)
    experiment = arm = None
    if username is not None and not served.from_graph and genres is None:
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
    json = answers().get_or_make(served.cache_key, served.answers_version, uid, state.version, n, genres,
                                 make=lambda: _answer_json(served, uid, state, n, genres))
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


def _answer_json(served: Served, uid: str | None, state: UserLive, n: int,
                 genres: frozenset[str] | None) -> JsonFragment:
    model, ct = served.model, served.ct
    user = _user_query(served, uid, state)
    outside = items_outside_genres(model=model, genres=genres) if genres else None
    ranked = served.chain.recommend(user, n=n, filter_items=outside)
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


GENRE_FILTERS_KEPT = 32  # (model, genres) pairs whose excluded columns are kept, least recently used out first
_GENRE_FILTERS: OrderedDict[tuple[str, frozenset[str]], tuple[weakref.ref, np.ndarray]] = OrderedDict()
_GENRE_INDEXES: dict[str, tuple[weakref.ref, dict[str, np.ndarray]]] = {}
_GENRE_LOCK = threading.Lock()


def items_outside_genres(*, model: TrainedModel, genres: frozenset[str]) -> np.ndarray:
    """The columns of the model's items that have none of `genres` (casefolded names; an item without genres has
    none of them): the chain's filter for a genre. Computed once per model and genres (a few pairs kept, and
    per model which columns have each genre; neither keeps a replaced model alive)."""
    key = (model.content_type, genres)
    with _GENRE_LOCK:
        cached = _GENRE_FILTERS.get(key)
        if cached is not None and cached[0]() is model:
            _GENRE_FILTERS.move_to_end(key)
            return cached[1]
    index = _genre_index(model)
    outside = np.ones(len(model.item_ids), dtype=bool)
    for genre in genres & index.keys():
        outside[index[genre]] = False
    columns = np.flatnonzero(outside)
    with _GENRE_LOCK:
        _GENRE_FILTERS[key] = (weakref.ref(model), columns)
        _GENRE_FILTERS.move_to_end(key)
        while len(_GENRE_FILTERS) > GENRE_FILTERS_KEPT:
            _GENRE_FILTERS.popitem(last=False)
    return columns


def _genre_index(model: TrainedModel) -> dict[str, np.ndarray]:
    """Casefolded genre -> the columns of the model's items that have it (one pass over the items per model)."""
    cached = _GENRE_INDEXES.get(model.content_type)
    if cached is not None and cached[0]() is model:
        return cached[1]
    columns: dict[str, list[int]] = defaultdict(list)
    items = model.items
    for column, item_id in enumerate(model.item_ids):
        for genre in _casefolded(items.value(item_id, "genres")):
            columns[genre].append(column)
    index = {genre: np.array(cols, dtype=np.int64) for genre, cols in columns.items()}
    with _GENRE_LOCK:
        _GENRE_INDEXES[model.content_type] = (weakref.ref(model), index)
    return index


def _casefolded(genres: Iterable[str] | str | None) -> set[str]:
    if not genres:
        return set()
    if isinstance(genres, str):
        return {genres.casefold()}
    return {g.casefold() for g in genres if isinstance(g, str)}


class AllAnswers(dict):
    """Every type's answer keyed as the API answers them; `experiments`: the "<experiment>:<arm>" of each part
    served in an experiment."""

    experiments: list[str]


async def recommendations_all_for_user(*, username: str, n: int = 10) -> AllAnswers:
    """Every content type's recommendations, plus buds, keyed as the API answers them (each value the JSON of
    that part's answer)."""
    out, labels = AllAnswers(), []
    for ct in CONTENT_TYPES:
        answer = await recommendations_for_user(username=username, content_type=ct.key, n=n)
        out[ct.key] = answer.json
        if answer.experiment:
            labels.append(answer.experiment)
    out[BUDS_KEY] = (await buds_for_user(username=username, n=n)).json
    out.experiments = labels
    return out


async def popular_items(*, content_type: str, n: int, genres: frozenset[str] | None = None) -> Answer:
    """Popular items of a type for anyone (the guest endpoint): the chain's answer for a user nothing is known
    of (with `genres`, only items of those genres)."""
    return await recommendations_for_user(username=None, content_type=content_type, n=n, genres=genres)


async def popular_items_by_type(*, content_type: str, n: int, genres: frozenset[str] | None = None) -> dict:
    """The guest endpoint's answer, always keyed by type: one type's popular items ({"movies": [...]}) or every
    type's ("all"), and `content`: all of them in one flat list of {id, type, title, name, cover, artist}."""
    keys = [ct.key for ct in CONTENT_TYPES] if content_type == "all" else [content_type]
    out: dict = {key: (await popular_items(content_type=key, n=n, genres=genres)).json for key in keys}
    out["content"] = [content_json(content_type_get(key=key), item)
                      for key in keys for item in orjson.loads(out[key].text)]
    return out


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
