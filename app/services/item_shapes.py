"""The one shape of an item in every answer: its details (at least its id, then the content type's detail
properties), then what the answer says of it (recommendation_score, reason, because; or similarity)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def item_json(item_id: str, details: Mapping[str, Any] | None, **answer: Any) -> dict[str, Any]:
    """An item as the API answers it. `details` are what the model holds of it (None: only its id is known)."""
    return {**(details or {"id": item_id}), **answer}


def because_json(title_property: str, pairs: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The `because` of a recommendation: [{"id", <title property>}] of the history items that support it."""
    return [{"id": key, title_property: title} for key, title in pairs]
