"""Recommendation services: what the API calls. Keyword-only, typed, no HTTP in here.

Serving reads only the loaded models (item details are cached with them), so a request needs no Neo4j round
trip once the models are trained; the graph is asked only for users the models have not seen, and for
popular items of a type that has no model. Every fallback logs a WARNING.
"""
from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from ai.model_store import TrainedModel
from app.content_types import BUDS_KEY, CONTENT_TYPES, ContentType, content_type as content_type_row
from app.errors import ServiceUnavailableError, TrainingInProgressError, UnknownContentTypeError
from app.services import recommendation_data_service as data
from app.services.model_registry import registry

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
              uid: str | None, explain: bool) -> dict:
    item = dict(model.items.get(item_id) or {"id": item_id})
    item["recommendation_score"] = round(float(score), 6)
    if source == "popularity":
        item["reason"], item["because"] = "popular", []
    else:
        item["reason"] = "personalised"
        because = model.explain(uid, item_id, k=3) if (explain and uid is not None) else []
        item["because"] = [{"id": b, ct.title_property: (model.items.get(b) or {}).get(ct.title_property)}
                           for b in because]
    return item


def recommendations_for_user(*, username: str, content_type: str, n: int, explain: bool = True) -> list[dict]:
    """The n best items of a type for an app user, highest score first; popular items for a new user."""
    ct = content_type_get(key=content_type)
    uid = user_uid_get(username=username)
    model = registry.get(ct.model_key)
    exclude = _history_outside_model(model, ct, uid)
    if model is not None:
        ranked = model.recommend(uid, n=n, exclude=exclude)
        return [_item_out(model, ct, item_id, score, source, uid, explain) for item_id, score, source in ranked]
    logger.warning("No trained %s model: serving popular items from the graph", ct.model_key)
    return _popular_from_graph(ct, n, exclude)


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


def recommendations_all_for_user(*, username: str, n: int = 10) -> dict[str, list[dict]]:
    """Every content type's recommendations, plus buds, keyed as the API answers them."""
    out = {ct.key: recommendations_for_user(username=username, content_type=ct.key, n=n) for ct in CONTENT_TYPES}
    out[BUDS_KEY] = buds_for_user(username=username, n=n)
    return out


def buds_for_user(*, username: str, n: int = 10) -> list[dict]:
    """Other app users with similar taste. (Filled in by the buds work; empty until then.)"""
    return []


def popular_items(*, content_type: str, n: int) -> list[dict]:
    """Popular items of a type for anyone (the guest endpoint)."""
    ct = content_type_get(key=content_type)
    model = registry.get(ct.model_key)
    if model is not None:
        return [_item_out(model, ct, item_id, score, "popularity", None, False)
                for item_id, score, _ in model.recommend(None, n=n)]
    return _popular_from_graph(ct, n, set())


def models_status() -> dict[str, dict | None]:
    return {ct.model_key: registry.version(ct.model_key) for ct in CONTENT_TYPES}


# --- training ---------------------------------------------------------------------------------------------

@contextmanager
def _training_lock():
    """One training at a time across every process sharing the model directory; 409 for the second."""
    model_dir = Path(settings.MUSICBUD_MODEL_DIR)
    model_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(model_dir / ".training.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TrainingInProgressError() from None
        yield
    finally:
        os.close(fd)


def models_train(*, content_types: list[str] | None = None, show_progress: bool = False) -> dict[str, bool]:
    """Train every content type (or the given ones); {model_key: trained}. One failing type does not stop
    the others; each failure is logged with its reason. Raises TrainingInProgressError when one is running."""
    from app.services.training import model_train, users_directory_refresh

    rows = [content_type_get(key=k) for k in content_types] if content_types else list(CONTENT_TYPES)
    results: dict[str, bool] = {}
    with _training_lock():
        started = time.perf_counter()
        try:
            users_directory_refresh()
        except Exception as exc:
            logger.error("Could not refresh the user directory: %s", exc)
            raise ServiceUnavailableError(f"The graph database is unreachable, so nothing can be trained: {exc}") from exc
        for ct in rows:
            try:
                trained = model_train(content_type=ct, show_progress=show_progress)
            except Exception as exc:
                logger.error("Training the %s model failed: %s", ct.model_key, exc, exc_info=True)
                results[ct.model_key] = False
                continue
            if trained is None:
                results[ct.model_key] = False
                continue
            registry.put(ct.model_key, trained)
            results[ct.model_key] = True
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
