"""One index of user ids per process, shared by every loaded model's user map.

A worker holds each content type's model and the taste model, and each maps the same ParentUser uids to its
rows: as dicts, ~4 MB each on the 1M demo (50k entries, plus an int object per row above 256), ~30 MB per
worker for the same uids eight times. Here the uids are numbered once, process-wide (`UserIndex`, append-only),
and a model keeps only a numpy int32 array, row by global id (`CompactUserMap`): ~0.2 MB per model (+ the order
of its keys, another 0.2 MB).

`CompactUserMap` is a read-only `Mapping` that answers as the dict it was built from did: `get`, `[]`, `in`,
`len`, iteration in the dict's order, `keys`/`values`/`items`, equality with any mapping. A lookup is one dict
look-up in the index plus one array read (~0.1 µs more than the dict; it is on the serving path). It pickles as
a plain dict, so what is saved stays readable by any tool, and a model's constructor (ai/trained_model.py) makes
it compact again.

The index only grows (a uid keeps its number for the life of the process): a retrained model with new users adds
them; uids of deleted users stay (a few dozen bytes each). Nothing here knows Django.
"""
from __future__ import annotations

import sys
import threading
from collections.abc import ItemsView, Iterable, Iterator, Mapping, ValuesView
from typing import Any

import numpy as np

__all__ = ["USERS", "CompactUserMap", "UserIndex"]

_MAX_ROW = np.iinfo(np.int32).max


class UserIndex:
    """uid -> global id (0, 1, 2... in the order first seen) and back; append-only. Reads take no lock (a dict
    and a list read under the GIL); `add` takes one, and a uid is in the list before its id is published."""

    def __init__(self) -> None:
        self._ids: dict[Any, int] = {}
        self._uids: list[Any] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._uids)

    def id_of(self, uid: Any) -> int | None:
        """The uid's global id, None if no model has had it."""
        return self._ids.get(uid)

    def uid(self, gid: int) -> Any:
        return self._uids[gid]

    def add(self, uids: Iterable[Any]) -> np.ndarray:
        """The global ids of `uids` (int32, in order), numbering the new ones; a str uid is interned, so that the
        index holds the process's one copy of it."""
        with self._lock:
            ids, order = self._ids, self._uids
            out = []
            for uid in uids:
                gid = ids.get(uid)
                if gid is None:
                    if type(uid) is str:
                        uid = sys.intern(uid)
                    gid = len(order)
                    order.append(uid)
                    ids[uid] = gid
                out.append(gid)
        return np.array(out, dtype=np.int32)


USERS = UserIndex()  # the process's index: every CompactUserMap uses it unless told otherwise


class CompactUserMap(Mapping):
    """A read-only uid -> row mapping over a shared UserIndex: per map only `rows` (int32 by global id, -1 where
    the uid is not in this map) and the global ids of its keys in the order of the dict it was built from."""

    __slots__ = ("_index", "_ids", "_rows", "_view", "_order")

    def __init__(self, mapping: Mapping[Any, int], *, index: UserIndex = USERS) -> None:
        values = np.fromiter(mapping.values(), dtype=np.int64, count=len(mapping))
        if values.size and (values.min() < 0 or values.max() > _MAX_ROW):
            raise ValueError(f"rows must be in [0, {_MAX_ROW}], got [{values.min()}, {values.max()}]")
        order = index.add(mapping.keys())
        # one -1 past the highest id: a uid the index does not have is looked up as id -1 (no branch for it)
        rows = np.full(int(order.max()) + 2 if order.size else 1, -1, dtype=np.int32)
        rows[order] = values
        rows.flags.writeable = order.flags.writeable = False
        self._index = index
        self._ids = index._ids  # the index's dict itself: one attribute read less per lookup
        self._rows = rows
        self._view = memoryview(rows)  # indexing it gives a Python int at once (~3x quicker than numpy's scalar)
        self._order = order

    @classmethod
    def of(cls, mapping: Mapping[Any, int], *, index: UserIndex = USERS) -> CompactUserMap:
        """`mapping` itself if it is already compact over `index`, else a CompactUserMap of it."""
        if isinstance(mapping, cls) and mapping._index is index:
            return mapping
        return cls(mapping, index=index)

    # --- the serving path: one dict look-up and one array read (~80 ns; a dict's get is ~25 ns) ---------------
    def get(self, key: Any, default: Any = None) -> Any:
        try:
            row = self._view[self._ids.get(key, -1)]  # an unknown uid reads the -1 at the end
        except IndexError:  # a uid the index numbered after this map was built
            return default
        return default if row < 0 else row

    def __getitem__(self, key: Any) -> int:
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row

    def __contains__(self, key: Any) -> bool:
        try:
            return self._view[self._ids.get(key, -1)] >= 0
        except IndexError:
            return False

    # --- the rest of Mapping ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[Any]:
        return map(self._index._uids.__getitem__, self._order.tolist())

    def values(self) -> ValuesView:
        return _Values(self)

    def items(self) -> ItemsView:
        return _Items(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CompactUserMap) and other._index is self._index:  # compare the arrays
            a, b = (self._rows, other._rows) if len(self._rows) >= len(other._rows) else (other._rows, self._rows)
            return len(self) == len(other) and np.array_equal(a[:len(b)], b) and not (a[len(b):] >= 0).any()
        return super().__eq__(other)  # Mapping's: dict(self.items()) == dict(other.items())

    __hash__ = None  # type: ignore[assignment]  # as a dict's

    def __repr__(self) -> str:
        return f"<CompactUserMap of {len(self)} users>"

    def __reduce__(self):
        """Pickled (and copied) as the plain dict it stands for: saved files need no class of this module."""
        return dict, (dict(self.items()),)


class _Values(ValuesView):
    def __iter__(self) -> Iterator[int]:
        m = self._mapping
        return iter(m._rows[m._order].tolist())


class _Items(ItemsView):
    def __iter__(self) -> Iterator[tuple[Any, int]]:
        m = self._mapping
        return zip(iter(m), m._rows[m._order].tolist())
