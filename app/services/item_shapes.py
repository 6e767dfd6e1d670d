"""The one shape of an item in every answer: its details (at least its id, then the content type's detail
properties), then what the answer says of it (recommendation_score, reason, because; or similarity). The guest
screens' shapes add what the MusicBud apps read (guest_item_json), or flatten items of several types into one
list (content_json)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from app.content_types import ContentType


def item_json(item_id: str, details: Mapping[str, Any] | None, **answer: Any) -> dict[str, Any]:
    """An item as the API answers it. `details` are what the model holds of it (None: only its id is known)."""
    return {**(details or {"id": item_id}), **answer}


def because_json(title_property: str, pairs: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The `because` of a recommendation: [{"id", <title property>}] of the history items that support it."""
    return [{"id": key, title_property: title} for key, title in pairs]


# What the MusicBud apps' guest screens read of an item besides its details (a card's picture, a track's
# artist and length): derived from the details, never made up (None when the details do not say).

def artist_of(details: Mapping[str, Any]) -> str | None:
    """An item's artist as one string: its `artist`, else the first of its `artists` (a name, or a mapping
    with a name), else None."""
    artist = details.get("artist")
    if isinstance(artist, str) and artist:
        return artist
    artists = details.get("artists")
    if isinstance(artists, (list, tuple)) and artists:
        first = artists[0]
        name = first.get("name") if isinstance(first, Mapping) else first
        return name if isinstance(name, str) and name else None
    return None


def duration_text(duration_ms: Any) -> str | None:
    """"m:ss" of a duration in milliseconds (None when there is none)."""
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, (int, float)) or duration_ms < 0:
        return None
    seconds = int(round(duration_ms / 1000))
    return f"{seconds // 60}:{seconds % 60:02d}"


def guest_item_json(model_key: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """An item as the guest screens read it: as every answer has it, plus `image_url` (the details' or None) and
    `image` (the same); a track also has `artist` (a string) and `duration` ("m:ss"), an artist `genre` (the
    first of its genres)."""
    out = dict(item)
    out["image_url"] = item.get("image_url")
    out["image"] = out["image_url"]
    if model_key == "track":
        out["artist"] = artist_of(item)
        out["duration"] = duration_text(item.get("duration_ms"))
    elif model_key == "artist":
        genres = item.get("genres")
        out["genre"] = genres[0] if isinstance(genres, (list, tuple)) and genres else None
    return out


def content_json(ct: ContentType, item: Mapping[str, Any]) -> dict[str, Any]:
    """An item in a flat list of several types ({id, type, title, name, cover, artist}: React Native's
    HomeAltScreen). `type` is the singular type the content details endpoint takes ("movie"), `title` and
    `name` both the item's title or name, `cover` its image_url."""
    title = item.get(ct.title_property)
    return {"id": item["id"], "type": ct.model_key, "title": title, "name": title, "cover": item.get("image_url"),
            "artist": artist_of(item)}
