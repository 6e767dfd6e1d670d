"""What the MusicBud apps' guest screens show: discover, trending, genres and one item's details, for anyone (no
token), from the served models: the same items as the guest recommendations (recommendation_service.popular_items;
trending: its sort=trending), shaped as those screens read them (item_shapes.guest_item_json)."""
from __future__ import annotations

import asyncio
import hashlib
import threading
import weakref
from collections import Counter

import orjson
from django.utils.text import slugify

from ai.trained_model import TrainedModel
from app.content_types import BY_KEY, BY_MODEL_KEY, CONTENT_TYPES, ContentType, content_type_get
from app.errors import InvalidContentTypeError, ServiceUnavailableError, UnknownItemError
from app.graph import GRAPH_ERRORS
from app.services import recommendation_data_service as data
from app.services.filters import NO_FILTER, ItemFilter
from app.services.item_shapes import content_json, guest_item_json
from app.services.recommendation_service import popular_items
from app.services.served import served_aget

# The genre lists of GET /v1/discover/public/genres/: each content type's domain (the table's) -> its list.
GENRE_GROUPS: dict[str, str] = {"music": "music", "movies": "movies", "anime_manga": "anime"}
# The types the content details endpoints take: the singular model keys ("movie", "track", ...).
DETAIL_TYPES: tuple[str, ...] = tuple(ct.model_key for ct in CONTENT_TYPES)
MAX_ID_LENGTH = 256  # a longer id is no item's: answered 404 without a graph read


async def trending_items(*, content_type: str, n: int, item_filter: ItemFilter = NO_FILTER,
                         diversity: float = 0.0) -> list[dict]:
    """The n trending items of a type (API key, "tracks"), shaped for the guest screens: the guest answer with
    sort=trending (ai/trending.py's time-decayed popularity, all-time popular items after them)."""
    return await _guest_items(content_type_get(key=content_type), n, sort="trending", item_filter=item_filter,
                              diversity=diversity)


async def _guest_items(ct: ContentType, n: int, *, sort: str = "popular", item_filter: ItemFilter = NO_FILTER,
                       diversity: float = 0.0) -> list[dict]:
    answer = await popular_items(content_type=ct.key, n=n, sort=sort, item_filter=item_filter, diversity=diversity)
    return [guest_item_json(ct.model_key, item) for item in orjson.loads(answer.json.text)]


async def trending_by_type(*, content_type: str, n: int, item_filter: ItemFilter = NO_FILTER,
                           diversity: float = 0.0) -> dict[str, list[dict]]:
    """The trending endpoint's answer: {<type>: trending items} for one type, or every type ("all"), and
    `content`: all of them in one flat list of {id, type, title, name, cover, artist}."""
    keys = [ct.key for ct in CONTENT_TYPES] if content_type == "all" else [content_type]
    out = {key: await trending_items(content_type=key, n=n, item_filter=item_filter, diversity=diversity)
           for key in keys}
    out["content"] = [content_json(BY_KEY[key], item) for key in keys for item in out[key]]
    return out


async def discover_overview(*, n: int) -> dict[str, list[dict]]:
    """The discover screen's answer: trending tracks, popular artists, movies, manga and anime (n each), and the
    n most common genres across every served model's items ({id, name, color})."""
    return {
        "trending_tracks": await trending_items(content_type="tracks", n=n),
        "popular_artists": await _guest_items(BY_KEY["artists"], n),
        "popular_movies": await _guest_items(BY_KEY["movies"], n),
        "popular_manga": await _guest_items(BY_KEY["manga"], n),
        "popular_anime": await _guest_items(BY_KEY["anime"], n),
        "genres": await _common_genres(CONTENT_TYPES, n),
    }


async def genres_by_group(*, n: int, group: str | None = None) -> dict[str, list[dict]]:
    """The n most common genres of each group ({"music", "movies", "anime"}, or only `group`), each
    {id (a slug), name, color ("#RRGGBB", the same for a name every time)}, from the served models' items."""
    groups = [group] if group is not None else list(dict.fromkeys(GENRE_GROUPS.values()))
    return {g: await _common_genres([ct for ct in CONTENT_TYPES if GENRE_GROUPS.get(ct.domain) == g], n)
            for g in groups}


async def content_details(*, content_type: str, item_id: str) -> dict:
    """One item's details (content_type: a singular type, "movie"): what the served model holds of it, else the
    graph's (an item newer than the model), shaped for the guest screens, plus `cover_url` (its image_url).
    InvalidContentTypeError (400) for another type, UnknownItemError (404) for an id neither has."""
    ct = BY_MODEL_KEY.get(content_type)
    if ct is None:
        raise InvalidContentTypeError(f"Invalid content type. Must be one of: {list(DETAIL_TYPES)}")
    not_found = UnknownItemError(f"{content_type.capitalize()} not found")
    if len(item_id) > MAX_ID_LENGTH:
        raise not_found
    served = await served_aget(ct=ct)
    details = served.model.items.get(item_id)
    if details is None:
        try:
            found = await asyncio.to_thread(data.items_by_ids, content_type=ct, ids=[item_id])
        except GRAPH_ERRORS as exc:
            raise ServiceUnavailableError(f"The graph database is unreachable: {ct.key} details cannot be read "
                                          "now; try again later.") from exc
        details = next(iter(found.values()), None)
    if details is None:
        raise not_found
    shaped = guest_item_json(ct.model_key, details)
    shaped["cover_url"] = shaped["image_url"]
    return shaped


def genre_color(slug: str) -> str:
    """A genre's colour, "#RRGGBB": the first three bytes of the SHA-256 of its slug (stable across runs)."""
    return "#" + hashlib.sha256(slug.encode()).hexdigest()[:6].upper()


async def _common_genres(cts, n: int) -> list[dict]:
    counts: Counter[str] = Counter()
    names: dict[str, str] = {}
    for ct in cts:
        model_counts, model_names = model_genres(model=(await served_aget(ct=ct)).model)
        counts.update(model_counts)
        for slug, name in model_names.items():
            names.setdefault(slug, name)
    ranked = sorted(counts, key=lambda slug: (-counts[slug], slug))[:n]
    return [{"id": slug, "name": names[slug], "color": genre_color(slug)} for slug in ranked]


_MODEL_GENRES: dict[str, tuple[weakref.ref, Counter, dict[str, str]]] = {}
_MODEL_GENRES_LOCK = threading.Lock()


def model_genres(*, model: TrainedModel) -> tuple[Counter, dict[str, str]]:
    """(slug -> how many of the model's items have that genre, slug -> the name first seen for it), computed once
    per model (names that differ only in case or punctuation are one genre)."""
    cached = _MODEL_GENRES.get(model.content_type)
    if cached is not None and cached[0]() is model:
        return cached[1], cached[2]
    counts: Counter[str] = Counter()
    names: dict[str, str] = {}
    items = model.items
    for key in items:
        genres = items.value(key, "genres")
        if isinstance(genres, str):
            genres = [genres]
        if not isinstance(genres, (list, tuple)):
            continue
        slugs = set()
        for name in genres:
            slug = slugify(name, allow_unicode=True) if isinstance(name, str) else ""
            if slug and slug not in slugs:
                slugs.add(slug)
                names.setdefault(slug, name.strip())
        counts.update(slugs)
    with _MODEL_GENRES_LOCK:
        _MODEL_GENRES[model.content_type] = (weakref.ref(model), counts, names)
    return counts, names
