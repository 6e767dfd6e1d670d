"""Items of the catalogue the served model does not have (added to the graph after its training, or never
interacted with), ranked from their features until the next training (ai/cold_items.py: their factors from the
trained items that share their genres).

Per type and served model, this worker looks for them in the graph at most every MUSICBUD_NEW_ITEMS_SECONDS
(60 s; the keys of every item of the type, one query, then the details of the new ones): the first look for a
served model waits (the first request of that type after the model arrives, in a thread), later ones run in a
background thread; requests read what is held (no I/O). When Neo4j is
unreachable the last set is kept and the look is tried again after the interval. A model that is not a factor
model (popularity) ranks no new items.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings

from ai.cold_items import ColdItems
from ai.recommender_base import FactorModelBase
from ai.trained_model import TrainedModel
from app.content_types import ContentType
from app.graph import GRAPH_ERRORS
from app.services import recommendation_data_service as data

logger = logging.getLogger(__name__)

__all__ = ["NewItems", "new_items_aget", "new_items_refresh"]

DETAILS_PAGE = 20_000


@dataclass(frozen=True)
class NewItems:
    """A model's new items: their factors (None when there are none, or the model has no factors), ids (column
    n_items + j is ids[j]) and details; version: how many sets this worker built (part of an answer's key)."""

    cold: ColdItems | None
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    details: dict[str, dict] = field(default_factory=dict)
    version: int = 0
    all_ids: np.ndarray | None = None  # the model's item ids then `ids`: the id of every extended column

    def column(self, item_id: str) -> int | None:
        """The extended column of a new item (None when it is not one)."""
        if self.cold is None:
            return None
        found = np.flatnonzero(self.ids == item_id)
        return int(self.cold.n_items + found[0]) if found.size else None


NONE = NewItems(cold=None)
_HELD: dict[str, tuple[weakref.ref, float, NewItems]] = {}  # model key -> (model, when looked, new items)
_LOCK = threading.Lock()
_VERSION = [0]


def new_items_refresh(*, content_type: ContentType, model: TrainedModel) -> NewItems:
    """Look in the graph now for the type's items the model lacks and build their factors."""
    ct = content_type
    keys = [key for key in data.item_keys(content_type=ct) if key not in model.item_map]
    details: dict[str, dict] = {}
    for start in range(0, len(keys), DETAILS_PAGE):
        details.update(data.items_by_ids(content_type=ct, ids=keys[start:start + DETAILS_PAGE]))
    ids = [key for key in keys if key in details] if isinstance(model.model, FactorModelBase) else []
    held, _ = _held(ct, model)
    if held is not None and held.ids.tolist() == ids and all(held.details[key] == details[key] for key in ids):
        with _LOCK:  # the same new items as the last look: the same set, and version (cached answers stay valid)
            _HELD[ct.model_key] = (weakref.ref(model), time.monotonic(), held)
        return held
    with _LOCK:
        _VERSION[0] += 1
        version = _VERSION[0]
    out = NewItems(cold=None, version=version)
    if ids:
        known = [model.items.value(key, "genres") for key in model.item_ids.tolist()]
        cold = ColdItems(model.model, known, ids, [details[key].get("genres") for key in ids])
        out = NewItems(cold=cold, ids=cold.ids, details={key: details[key] for key in ids}, version=version,
                       all_ids=np.concatenate([model.item_ids, cold.ids]))
        logger.info("%d new %s items (%d with genres a trained item has) ranked from their features", len(ids),
                    ct.key, int(cold.has_factors.sum()))
    with _LOCK:
        _HELD[ct.model_key] = (weakref.ref(model), time.monotonic(), out)
    return out


def _held(ct: ContentType, model: TrainedModel) -> tuple[NewItems | None, bool]:
    """(what is held for this model, whether a look is due)."""
    held = _HELD.get(ct.model_key)
    if held is None or held[0]() is not model:
        return None, True
    return held[2], time.monotonic() - held[1] >= settings.MUSICBUD_NEW_ITEMS_SECONDS


async def new_items_aget(*, content_type: ContentType, model: TrainedModel) -> NewItems:
    """The model's new items. The first look for a model waits for it (in a thread); later looks run in a
    background thread while requests go on with what is held. None at all with MUSICBUD_NEW_ITEMS off."""
    if not settings.MUSICBUD_NEW_ITEMS:
        return NONE
    items, due = _held(content_type, model)
    if not due:
        return items
    if items is not None:
        _refresh_in_background(content_type, model)
        return items
    try:
        return await asyncio.to_thread(new_items_refresh, content_type=content_type, model=model)
    except GRAPH_ERRORS as exc:
        return _failed(content_type, model, items, exc)


def _failed(ct: ContentType, model: TrainedModel, items: NewItems | None, exc: Exception) -> NewItems:
    logger.warning("Could not look for new %s items in Neo4j (%s); serving without them", ct.key, exc)
    with _LOCK:
        _HELD[ct.model_key] = (weakref.ref(model), time.monotonic(), items or NONE)
    return items or NONE


_RUNNING: set[str] = set()  # model keys being looked at in the background


def _refresh_in_background(ct: ContentType, model: TrainedModel) -> None:
    with _LOCK:
        if ct.model_key in _RUNNING:
            return
        _RUNNING.add(ct.model_key)
        items = _HELD.get(ct.model_key)

    def run() -> None:
        try:
            new_items_refresh(content_type=ct, model=model)
        except GRAPH_ERRORS as exc:
            _failed(ct, model, items[2] if items is not None else None, exc)
        finally:
            with _LOCK:
                _RUNNING.discard(ct.model_key)

    threading.Thread(target=run, name=f"new-items-{ct.model_key}", daemon=True).start()
