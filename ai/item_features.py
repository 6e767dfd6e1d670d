"""Item side features from item details (what the hybrid model learns besides each item's identity).

One feature per value of a detail field: ``genre:<name>`` for each genre, ``decade:<1990>`` from a year,
``type:<TV>`` (anime's type), ``artist:<name>`` for each artist. Names are lower-cased and stripped, so "Action"
and "action " are one feature; a value fewer than `min_items` items share is left out (it would describe one
item: its identity feature already does).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["FEATURE_FIELDS", "item_features_from_details"]

# detail field -> feature prefix; "year"-like fields become decades
FEATURE_FIELDS: dict[str, str] = {"genres": "genre", "year": "decade", "release_year": "decade", "type": "type",
                                  "artists": "artist"}
_YEARS = {"year", "release_year"}


def _values(field: str, value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if field in _YEARS:
        try:
            year = int(str(value)[:4])
        except ValueError:
            return []
        return [str(year // 10 * 10)] if 1000 <= year <= 2999 else []
    values = value if isinstance(value, (list, tuple)) else [value]
    return [str(v).strip().lower() for v in values if str(v).strip()]


def item_features_from_details(item_ids: Sequence[str], details: Mapping[str, Mapping[str, Any]], *,
                               min_items: int = 2) -> tuple[sp.csr_matrix, list[str]]:
    """(features: items x features binary csr, float32, rows in the order of `item_ids`; feature names).
    Items without details, or without any shared value, have an empty row."""
    rows: list[list[str]] = []
    for item in item_ids:
        record = details.get(str(item)) or {}
        names = []
        for field, prefix in FEATURE_FIELDS.items():
            names.extend(f"{prefix}:{v}" for v in _values(field, record.get(field)))
        rows.append(sorted(set(names)))
    counts: dict[str, int] = {}
    for names in rows:
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    vocabulary = sorted(name for name, count in counts.items() if count >= min_items)
    index = {name: i for i, name in enumerate(vocabulary)}
    row_ids, col_ids = [], []
    for r, names in enumerate(rows):
        for name in names:
            if name in index:
                row_ids.append(r)
                col_ids.append(index[name])
    matrix = sp.csr_matrix((np.ones(len(row_ids), dtype=np.float32), (row_ids, col_ids)),
                           shape=(len(rows), len(vocabulary)))
    return matrix, vocabulary
