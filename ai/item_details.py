"""Item id -> details, held compactly (what a model serves with each recommended item, so serving needs no
database round trip)."""
from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["ItemDetails", "item_details_from_rows"]


class ItemDetails(Mapping):
    """Item id -> details (a dict), held compactly: one tuple per item, its field names (a tuple shared by every
    item with the same fields) then its values, strings interned (one object for an id, a title or a genre
    however many models name it). A dict per item costs about twice as much. Reading an item gives a new
    dict; value() reads one field without making it. Pickled in this form: loading makes no dict per item."""

    __slots__ = ("_rows",)

    def __init__(self, items: Mapping[str, Mapping[str, Any]] = ()) -> None:
        self._rows: dict[str, tuple] = {}
        for key, details in dict(items).items():
            self.add(key, details)

    def _add(self, key: str, names: tuple, values: tuple) -> None:
        intern = sys.intern
        names = _SHAPES.setdefault(names, tuple(map(intern, names)))
        self._rows[intern(key) if type(key) is str else key] = (names, *(
            intern(v) if type(v) is str else [intern(x) if type(x) is str else x for x in v] if type(v) is list
            else v for v in values))

    def add(self, key: str, details: Mapping[str, Any]) -> None:
        """Add (or replace) one item, as the constructor holds it: a caller building many items need not make a
        dict of them all first."""
        self._add(key, tuple(details), tuple(details.values()))

    def __getitem__(self, key: str) -> dict[str, Any]:
        row = self._rows[key]
        return dict(zip(row[0], row[1:]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def value(self, key: str, name: str, default: Any = None) -> Any:
        """items[key][name], or `default` when the item or the field is missing."""
        row = self._rows.get(key)
        if row is None:
            return default
        try:
            return row[row[0].index(name) + 1]
        except ValueError:
            return default

    def __reduce__(self):
        return (item_details_from_rows, (self._rows,))


_SHAPES: dict[tuple, tuple] = {}  # one field-name tuple per shape of details (a handful), shared by every item


def item_details_from_rows(rows: dict[str, tuple]) -> ItemDetails:
    """An unpickled ItemDetails, its strings interned again (so one title is one object across models)."""
    out = ItemDetails()
    for key, row in rows.items():
        out._add(key, row[0], row[1:])
    return out
