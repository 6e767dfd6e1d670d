"""Recommendation services: what the API calls. Keyword-only, typed, no HTTP in here.

Serving reads only the loaded models (item details are cached with them), so a request needs no Neo4j round
trip once the models are trained; the graph is asked only for users the models have not seen, and for
popular items of a type that has no model. Every fallback logs a WARNING.
"""
from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson

from django.conf import settings

from ai.model_store import TrainedModel
from app.content_types import BUDS_KEY, CONTENT_TYPES, ContentType, content_type as content_type_row
from app.errors import ServiceUnavailableError, TrainingInProgressError, UnknownContentTypeError
from app.services import recommendation_data_service as data
from app.services.answer_cache import AnswerCache, JsonFragment
from app.services.model_registry import registry, release_freed_memory

logger = logging.getLogger(__name__)


def content_type_get(*, key: str) -> ContentType:
    try:
        return content_type_row(key)
    except KeyError:
        supported = ", ".join([ct.key for ct in CONTENT_TYPES] + [BUDS_KEY])
        raise UnknownContentTypeError(f"Unknown content type '{key}'. Supported types: {supported}.") from None


def user_uid_get(*, username: str) -> str | None:
    """The ParentUser uid of an app user: from the directory saved with the models, else from the graph."""
    uid = registry.users().get(username)
    if uid is not None:
        return uid
    try:
        uid = data.user_uid_for_username(username=username)
    except Exception as exc:
        logger.warning("Could not look up ParentUser %r in Neo4j (%s); serving as a new user", username, exc)
        return None
    if uid is not None:
        registry.remember_user(username, uid)
    return uid


def _history_outside_model(model: TrainedModel | None, ct: ContentType, uid: str | None) -> set[str]:
    """Items a user has that the model has not seen them with (a user newer than the model)."""
    if uid is None or (model is not None and uid in model.user_map):
        return set()
    try:
        return set(data.user_history(content_type=ct, user_uid=uid))
    except Exception as exc:
        logger.warning("Could not read %s history of %s from Neo4j (%s); not filtering it", ct.key, uid, exc)
        return set()


def _item_out(model: TrainedModel, ct: ContentType, item_id: str, score: float, source: str,
              because: list[str] = ()) -> dict:
    item = dict(model.items.get(item_id) or {"id": item_id})
    item["recommendation_score"] = round(float(score), 6)
    if source == "popularity":
        item["reason"], item["because"] = "popular", []
    else:
        item["reason"] = "personalised"
        item["because"] = [{"id": b, ct.title_property: model.items.value(b, ct.title_property)} for b in because]
    return item


def _ranked_out(model: TrainedModel, ct: ContentType, ranked: list[tuple[str, float, str]], uid: str | None,
                explain: bool) -> list[dict]:
    """The answer's items, the `because` of its personalised ones computed together (one product per page)."""
    personal = [item_id for item_id, _, source in ranked if source != "popularity"]
    reasons = model.explain_many(uid, personal, k=3) if (explain and uid is not None and personal) else []
    because = dict(zip(personal, reasons))
    return [_item_out(model, ct, item_id, score, source, because.get(item_id, ()))
            for item_id, score, source in ranked]


def recommendations_for_user(*, username: str, content_type: str, n: int, explain: bool = True) -> list[dict]:
    """The n best items of a type for an app user, highest score first; popular items for a new user."""
    return recommendations_versioned_for_user(username=username, content_type=content_type, n=n, explain=explain)[0]


def recommendations_versioned_for_user(*, username: str, content_type: str, n: int, explain: bool = True
                                       ) -> tuple[list[dict], str | None]:
    """recommendations_for_user, and the version of the one model that ranked every item of the answer (None:
    no model, popular items from the graph). The API sends it as X-Model-Version."""
    ct = content_type_get(key=content_type)
    uid = user_uid_get(username=username)
    model = registry.get(ct.model_key)
    exclude = _history_outside_model(model, ct, uid)
    if model is not None:
        version = model.manifest.get("version")
        if uid is not None and uid not in model.user_map:
            crossed = _cross_domain(model, ct, uid, n, exclude, explain)
            if crossed is not None:
                return crossed, version
        ranked = model.recommend(uid, n=n, exclude=exclude)
        return _ranked_out(model, ct, ranked, uid, explain), version
    logger.warning("No trained %s model: serving popular items from the graph", ct.model_key)
    return _popular_from_graph(ct, n, exclude), None


_ANSWERS = AnswerCache(int(settings.MUSICBUD_ANSWER_CACHE_MB * 1024 * 1024))


def recommendations_json_in_memory_for_user(*, username: str, content_type: str, n: int
                                            ) -> tuple[JsonFragment, str | None] | None:
    """recommendations_versioned_for_user, as JSON (a JsonFragment: the API's renderer embeds it as it is), when
    it needs no I/O at all: the type's model and the user directory are loaded, no check for newer versions is
    due, and the model knows the user. The answer is then a function of the model version, the user and n
    alone, so it comes from this worker's answer cache, or from a fraction of a millisecond of numpy (and is
    kept there): the API runs it on the event loop. None means "call recommendations_versioned_for_user in a
    thread" (it may read files or ask Neo4j)."""
    ct = content_type_get(key=content_type)
    users = registry.users_loaded()
    uid = users.get(username) if users is not None else None
    model = registry.loaded(ct.model_key) if uid is not None else None
    if model is None or uid not in model.user_map:
        return None
    version = model.manifest.get("version")
    return _ANSWERS.get_or_make(ct.model_key, version, uid, n, make=lambda: _json(
        _ranked_out(model, ct, model.recommend(uid, n=n), uid, True))), version


def _json(data: list[dict]) -> JsonFragment:
    return JsonFragment(orjson.dumps(data))


def answer_cache() -> AnswerCache:
    """This worker's answer cache (for its statistics, and for tests to start from an empty one)."""
    return _ANSWERS


def _cross_domain(model: TrainedModel, ct: ContentType, uid: str, n: int, exclude: set[str],
                  explain: bool) -> list[dict] | None:
    """Items of a type the user has no history in, ranked by the joint taste model from their history in the
    other types (then topped up with popular ones). None when the taste model does not know the user."""
    from app.services.training import TASTE_KEY, taste_key

    taste = registry.get(TASTE_KEY)
    row = taste.user_map.get(uid) if taste is not None else None
    if row is None or not hasattr(taste.model, "item_factors"):
        return None
    columns, ids = _taste_columns(taste, ct)
    if columns.size == 0:
        return None
    scores = taste.model.item_factors[columns] @ taste.model.user_factors[row]
    order = np.argsort(-scores, kind="stable")
    picked, seen = [], set(exclude)
    for i in order:
        item_id = ids[i]
        if item_id in seen or item_id not in model.item_map:
            continue
        seen.add(item_id)
        picked.append((item_id, scores[i]))
        if len(picked) == n:
            break
    reasons = (taste.explain_many(uid, [taste_key(ct, item_id) for item_id, _ in picked], k=3) if explain
               else [[] for _ in picked])
    out = []
    for (item_id, score), because in zip(picked, reasons):
        item = dict(model.items.get(item_id) or {"id": item_id})
        item["recommendation_score"] = round(float(score), 6)
        item["reason"] = "cross_domain"
        item["because"] = [{"id": taste.items.value(b, "id"), ct.title_property: taste.items.value(b, "title")}
                           for b in because]
        out.append(item)
    if len(out) == n:
        return out
    for item_id, score, source in model.recommend(None, n=n + len(seen)):
        if item_id not in seen and len(out) < n:
            seen.add(item_id)
            out.append(_item_out(model, ct, item_id, score, source))
    return out


_PROFILES: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_PROFILES_LOCK = threading.Lock()


def _taste_profiles(taste: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    """Each user's taste as one unit vector: the mean of the learned (unit) representations of every item in
    their history, across all types. Comparing these ranks buds; it is steadier than comparing the raw user
    embeddings, whose scale and bias direction vary with how active a user is. Cached per model version."""
    version = taste.manifest.get("version", "")
    cached = _PROFILES.get(version)
    if cached is None:
        with _PROFILES_LOCK:  # one thread computes them (~100 MB of temporaries at 1M); the others wait for it
            cached = _PROFILES.get(version)
            if cached is None:
                cached = _PROFILES[version] = _taste_profiles_compute(taste)
                for old in [v for v in _PROFILES if v != version]:
                    del _PROFILES[old]
                release_freed_memory()
    return cached


def _taste_profiles_compute(taste: TrainedModel) -> tuple[np.ndarray, np.ndarray]:
    item_vectors = np.asarray(taste.model.item_factors[:, :-1], dtype=np.float32)
    item_vectors = item_vectors / np.maximum(np.linalg.norm(item_vectors, axis=1, keepdims=True), 1e-12)
    binary = taste.matrix.copy()
    binary.data[:] = 1.0
    profiles = np.asarray(binary @ item_vectors, dtype=np.float32)
    profiles /= np.maximum(np.linalg.norm(profiles, axis=1, keepdims=True), 1e-12)
    user_ids = np.empty(len(taste.user_map), dtype=object)
    user_ids[list(taste.user_map.values())] = list(taste.user_map.keys())
    return profiles, user_ids


_TASTE_COLUMNS: dict[tuple[str, str], tuple[np.ndarray, list[str]]] = {}


def _taste_columns(taste: TrainedModel, ct: ContentType) -> tuple[np.ndarray, list[str]]:
    """The taste model's columns of one type and their item ids (cached per taste model version)."""
    key = (taste.manifest.get("version", ""), ct.model_key)
    cached = _TASTE_COLUMNS.get(key)
    if cached is None:
        prefix = f"{ct.model_key}:"
        pairs = sorted((col, k[len(prefix):]) for k, col in taste.item_map.items() if k.startswith(prefix))
        cached = (np.array([c for c, _ in pairs], dtype=np.int64), [i for _, i in pairs])
        _TASTE_COLUMNS.clear()
        _TASTE_COLUMNS[key] = cached
    return cached


def _popular_from_graph(ct: ContentType, n: int, exclude: set[str]) -> list[dict]:
    try:
        popular = data.items_popular(content_type=ct, n=n + len(exclude))
    except Exception as exc:
        logger.error("Neither a %s model nor Neo4j is available: %s", ct.model_key, exc)
        raise ServiceUnavailableError(
            f"No {ct.key} model is trained and the graph database is unreachable; try again later.") from exc
    top = max((p["popularity"] for p in popular), default=1.0) or 1.0
    out = []
    for item in popular:
        if item["id"] in exclude:
            continue
        score = item.pop("popularity") / top
        out.append({**item, "recommendation_score": round(float(score), 6), "reason": "popular", "because": []})
    return out[:n]


def recommendations_all_for_user(*, username: str, n: int = 10) -> dict[str, list[dict] | JsonFragment]:
    """Every content type's recommendations, plus buds, keyed as the API answers them. Where the answer cache
    has (or the in-memory path can make) a type's answer, or the buds, that value is its JSON (JsonFragment)."""
    out: dict[str, list[dict] | JsonFragment] = {}
    for ct in CONTENT_TYPES:
        cached = recommendations_json_in_memory_for_user(username=username, content_type=ct.key, n=n)
        out[ct.key] = cached[0] if cached is not None else \
            recommendations_for_user(username=username, content_type=ct.key, n=n)
    out[BUDS_KEY] = buds_json_for_user(username=username, n=n)
    return out


def buds_for_user(*, username: str, n: int = 10, shared_per_type: int = 3) -> list[dict]:
    """Other app users ranked by taste similarity across every domain they have (the joint taste model's
    user representations, cosine mapped to 0..1), each with a few items both have, per type. Never the
    user themself; a user with no history gets no buds rather than random people."""
    from app.services.training import TASTE_KEY

    taste = registry.get(TASTE_KEY)
    uid = user_uid_get(username=username)
    return _buds(taste, uid, n, shared_per_type, username)


def buds_json_for_user(*, username: str, n: int = 10, shared_per_type: int = 3) -> JsonFragment:
    """buds_for_user as JSON, from the answer cache when this worker already answered it for the served taste
    model version (buds are a function of that model, the user and the counts)."""
    from app.services.training import TASTE_KEY

    taste = registry.get(TASTE_KEY)
    uid = user_uid_get(username=username)
    make = lambda: _json(_buds(taste, uid, n, shared_per_type, username))  # noqa: E731
    if taste is None or uid is None:
        return make()
    return _ANSWERS.get_or_make(TASTE_KEY, taste.manifest.get("version"), uid, n, shared_per_type, make=make)


def _buds(taste: TrainedModel | None, uid: str | None, n: int, shared_per_type: int, username: str) -> list[dict]:
    if taste is None or uid is None or uid not in taste.user_map or not hasattr(taste.model, "item_factors"):
        if taste is None:
            logger.warning("No taste model trained yet: no buds for %s", username)
        return []
    profiles, user_ids = _taste_profiles(taste)
    me = taste.user_map[uid]
    sims = (profiles @ profiles[me] + 1.0) / 2.0
    sims[me] = -1.0
    top = np.argpartition(-sims, min(n, len(sims) - 1))[:n] if len(sims) > n else np.arange(len(sims))
    top = top[np.argsort(-sims[top], kind="stable")]
    similar = [(user_ids[i], float(sims[i])) for i in top if i != me]
    usernames = registry.usernames_by_uid()
    mine = set(taste.matrix[taste.user_map[uid]].indices.tolist())
    out = []
    for other, similarity in similar:
        common = sorted(mine & set(taste.matrix[taste.user_map[other]].indices.tolist()))
        shared: dict[str, list[dict]] = {}
        for col in common:
            item = taste.items[taste.item_ids[col]]
            group = shared.setdefault(item["type"], [])
            if len(group) < shared_per_type:
                group.append({"id": item["id"], "title": item["title"]})
        out.append({"id": other, "username": usernames.get(other, other), "similarity": round(similarity, 6),
                    "shared": shared})
    return out


def popular_items(*, content_type: str, n: int) -> list[dict]:
    """Popular items of a type for anyone (the guest endpoint)."""
    ct = content_type_get(key=content_type)
    model = registry.get(ct.model_key)
    if model is not None:
        return [_item_out(model, ct, item_id, score, "popularity")
                for item_id, score, _ in model.recommend(None, n=n)]
    return _popular_from_graph(ct, n, set())


def models_preload() -> None:
    """Load every saved model, the user directory and the buds' taste profiles now, in this thread. A server
    worker does it before it serves (musicbud/asgi.py): no first request waits seconds for a model, and loads
    do not interleave with requests in threads (which leaves the heap fragmented: ~100 MB more resident)."""
    from app.services.training import TASTE_KEY

    registry.users()
    for key in [ct.model_key for ct in CONTENT_TYPES] + [TASTE_KEY]:
        registry.get(key)
    taste = registry.get(TASTE_KEY)
    if taste is not None and hasattr(taste.model, "item_factors"):
        _taste_profiles(taste)


def models_status() -> dict[str, dict | None]:
    from app.services.training import TASTE_KEY

    return {key: registry.version(key) for key in [ct.model_key for ct in CONTENT_TYPES] + [TASTE_KEY]}


# --- training ---------------------------------------------------------------------------------------------

def _training_lock_path(model_dir: Path | None = None) -> Path:
    return Path(model_dir or settings.MUSICBUD_MODEL_DIR) / ".training.lock"


@contextmanager
def _training_lock():
    """One training at a time across every process sharing the model directory; 409 for the second."""
    path = _training_lock_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TrainingInProgressError() from None
        yield
    finally:
        os.close(fd)


def training_running(*, model_dir: Path | None = None) -> bool:
    """Whether some process holds the training lock of `model_dir` (default: the configured one) right now."""
    try:
        fd = os.open(_training_lock_path(model_dir), os.O_RDWR)
    except FileNotFoundError:
        return False  # no training ever started there
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def models_train(*, content_types: list[str] | None = None, show_progress: bool = False) -> dict[str, bool]:
    """Train every content type (or the given ones); {model_key: trained}. One failing type does not stop
    the others; each failure is logged with its reason. Raises TrainingInProgressError when one is running."""
    from app.services.training import (
        TASTE_KEY, epochs_for_run, model_train, taste_model_train, users_directory_refresh)

    rows = [content_type_get(key=k) for k in content_types] if content_types else list(CONTENT_TYPES)
    results: dict[str, bool] = {}
    with _training_lock():
        started = time.perf_counter()
        try:
            users_directory_refresh()
            counts = {ct.model_key: data.interactions_count(content_type=ct) for ct in CONTENT_TYPES}
        except Exception as exc:
            logger.error("Could not refresh the user directory: %s", exc)
            raise ServiceUnavailableError(f"The graph database is unreachable, so nothing can be trained: {exc}") from exc
        epochs = epochs_for_run(interactions=counts, retrained=[ct.model_key for ct in rows])
        logger.info("Training with %d epochs (%d interactions in the graph, LIGHTFM_EPOCH_BUDGET %d)", epochs,
                    sum(counts.values()), settings.LIGHTFM_EPOCH_BUDGET)
        for ct in rows:
            try:
                trained = model_train(content_type=ct, show_progress=show_progress, epochs=epochs)
            except Exception as exc:
                logger.error("Training the %s model failed: %s", ct.model_key, exc, exc_info=True)
                results[ct.model_key] = False
                continue
            if trained is None:
                results[ct.model_key] = False
                continue
            registry.put(ct.model_key, trained)
            results[ct.model_key] = True
        try:
            served = {ct.model_key: registry.get(ct.model_key) for ct in CONTENT_TYPES}
            taste = taste_model_train(trained=served, show_progress=show_progress, epochs=epochs)
            if taste is not None:
                registry.put(TASTE_KEY, taste)
            results[TASTE_KEY] = taste is not None
        except Exception as exc:
            logger.error("Training the joint taste model failed: %s", exc, exc_info=True)
            results[TASTE_KEY] = False
        logger.info("Training finished in %.1fs: %s", time.perf_counter() - started, results)
    return results


def similar_items(*, content_type: str, item_id: str, n: int) -> list[dict]:
    """The n items of a type most similar to one item (cosine of the learned item representations)."""
    from ai.recommendation_engine import UnknownItemError as EngineUnknownItem
    from app.errors import UnknownItemError

    ct = content_type_get(key=content_type)
    model = registry.get(ct.model_key)
    if model is None:
        raise ServiceUnavailableError(f"No {ct.key} model is trained yet: similar items need one.")
    try:
        similar = model.similar_items(item_id, n=n)
    except (EngineUnknownItem, KeyError):
        raise UnknownItemError(f"Unknown {ct.key} id '{item_id}' (or it has no interactions yet).") from None
    return [{**(model.items.get(i) or {"id": i}), "similarity": round(float(s), 6)} for i, s in similar]


def health() -> dict:
    """Liveness, whether Neo4j answers, and each model's version and trained_at."""
    from app import graph

    return {"status": "ok", "neo4j": "up" if graph.is_reachable() else "down", "models": models_status()}
