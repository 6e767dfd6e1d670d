"""Business-rule filters of a recommendation answer (the `genre`, `exclude`, `year_min` and `year_max`
parameters), the same for the personal, similar and guest endpoints.

A filter becomes the columns the fallback chain may not return: every link ranks without them, so the answer
still has n items when the type has that many left (the filter is inside the ranking, not applied to a
finished page). Which columns have each genre and each item's year are computed once per model (and kept only
while that model is served); a few (model, filter) answers are kept too.
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ai.trained_model import TrainedModel

__all__ = ["MAX_EXCLUDED", "ItemFilter", "casefolded_genres", "filtered_columns"]

MAX_EXCLUDED = 100  # ids one request may exclude
FILTERS_KEPT = 32  # (model, filter) pairs whose columns are kept, least recently used out first


@dataclass(frozen=True)
class ItemFilter:
    """What an answer may hold. genres: casefolded names, any of them (None: any item); exclude: item ids never
    returned; year_min / year_max: inclusive bounds of the item's `year` (an item without a year fails a bound).
    Hashable: part of an answer's cache key."""

    genres: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    year_min: int | None = None
    year_max: int | None = None

    def __bool__(self) -> bool:
        return bool(self.genres or self.exclude or self.year_min is not None or self.year_max is not None)

    def admits(self, details: Mapping | None) -> bool:
        """Whether an item with these details passes the genre and year rules (not `exclude`: ids)."""
        details = details or {}
        if self.genres and not casefolded_genres(details.get("genres")) & self.genres:
            return False
        if self.year_min is not None or self.year_max is not None:
            year = details.get("year")
            if not isinstance(year, int):
                return False
            if self.year_min is not None and year < self.year_min:
                return False
            if self.year_max is not None and year > self.year_max:
                return False
        return True


NO_FILTER = ItemFilter()
_KEPT: OrderedDict[tuple, tuple[weakref.ref, np.ndarray]] = OrderedDict()
_INDEXES: dict[str, tuple[weakref.ref, dict[str, np.ndarray], np.ndarray]] = {}
_LOCK = threading.Lock()


def filtered_columns(*, model: TrainedModel, item_filter: ItemFilter, extra_ids: Sequence[str] = (),
                     extra_details: Mapping[str, Mapping] | None = None) -> np.ndarray:
    """The columns the filter rules out: of the model's items, then of `extra_ids` (new items, columns
    n_items + j, with their details in `extra_details`). Empty for an empty filter."""
    if not item_filter:
        return np.empty(0, dtype=np.int64)
    columns = _model_columns(model, item_filter)
    if len(extra_ids):
        n_items, details = len(model.item_ids), extra_details or {}
        extra = [n_items + j for j, key in enumerate(extra_ids)
                 if key in item_filter.exclude or not item_filter.admits(details.get(key))]
        columns = np.concatenate([columns, np.asarray(extra, dtype=np.int64)])
    return columns


def _model_columns(model: TrainedModel, item_filter: ItemFilter) -> np.ndarray:
    key = (model.content_type, item_filter)
    with _LOCK:
        cached = _KEPT.get(key)
        if cached is not None and cached[0]() is model:
            _KEPT.move_to_end(key)
            return cached[1]
    genres, years = _index(model)
    out = np.zeros(len(model.item_ids), dtype=bool)
    if item_filter.genres:
        out[:] = True
        for genre in item_filter.genres & genres.keys():
            out[genres[genre]] = False
    if item_filter.year_min is not None:
        out |= ~(years >= item_filter.year_min)  # NaN (no year) fails
    if item_filter.year_max is not None:
        out |= ~(years <= item_filter.year_max)
    out[model.columns(item_filter.exclude)] = True
    columns = np.flatnonzero(out)
    with _LOCK:
        _KEPT[key] = (weakref.ref(model), columns)
        _KEPT.move_to_end(key)
        while len(_KEPT) > FILTERS_KEPT:
            _KEPT.popitem(last=False)
    return columns


def _index(model: TrainedModel) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(casefolded genre -> the columns that have it, each column's year or NaN), one pass per model."""
    cached = _INDEXES.get(model.content_type)
    if cached is not None and cached[0]() is model:
        return cached[1], cached[2]
    columns: dict[str, list[int]] = defaultdict(list)
    years = np.full(len(model.item_ids), np.nan)
    items = model.items
    for column, item_id in enumerate(model.item_ids):
        for genre in casefolded_genres(items.value(item_id, "genres")):
            columns[genre].append(column)
        year = items.value(item_id, "year")
        if isinstance(year, int):
            years[column] = year
    index = {genre: np.array(cols, dtype=np.int64) for genre, cols in columns.items()}
    with _LOCK:
        _INDEXES[model.content_type] = (weakref.ref(model), index, years)
    return index, years


def casefolded_genres(genres: Iterable[str] | str | None) -> frozenset[str]:
    """An item's genres as casefolded names (a single name, a list, or nothing)."""
    if not genres:
        return frozenset()
    if isinstance(genres, str):
        return frozenset({genres.casefold()})
    return frozenset(g.casefold() for g in genres if isinstance(g, str))
