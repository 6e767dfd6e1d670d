"""The one declarative table of content types.

Every row says where a type's items live in the MusicBud graph and how a user's edges to them weigh.
Extraction, item details, popularity, training and the API all read this table; adding a content type is
adding a row (plus its node class in app/graph_models.py).

How edges combine: a user may reach the same item through several edges (LIKES and WATCHED, or two
accounts). The interaction weight is the **maximum** of the edge weights: the strongest signal wins, and
watching a liked movie does not make it count more than liking it.

Music weights (the seed left them open): an explicit like 5, a "top" item 4, a saved one 3, a play 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import UnknownContentTypeError


@dataclass(frozen=True)
class ContentType:
    key: str  # the API's key ("movies"); also the URL segment
    model_key: str  # the model files' prefix and models_train()'s key ("movie")
    label: str  # item node label
    id_property: str  # item key property
    id_is_int: bool  # MAL ids are integers; everything else is a string
    account_label: str  # the app user's account node on the provider
    account_rel: str  # (ParentUser)-[account_rel]->(account)
    # relationship type -> weight; None means "the edge's `score` property, else DEFAULT_SCORE_WEIGHT"
    edges: dict[str, float | None]
    title_property: str  # "title" or "name": what a person reads
    detail_properties: tuple[str, ...]  # returned to the API besides id (order kept)
    domain: str  # "movies", "anime_manga", "music": for cross-domain reporting
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def rel_types(self) -> list[str]:
        return list(self.edges)


DEFAULT_SCORE_WEIGHT = 5.0

CONTENT_TYPES: tuple[ContentType, ...] = (
    ContentType(
        key="movies", model_key="movie", label="ImdbMovie", id_property="imdb_id", id_is_int=False,
        account_label="ImdbUser", account_rel="CONNECTED_TO_IMDB",
        edges={"LIKES": 5.0, "WATCHED": 3.0, "WANTS_TO_WATCH": 2.0},
        title_property="title",
        detail_properties=("title", "year", "rating", "genres", "plot", "director"),
        domain="movies",
    ),
    ContentType(
        key="manga", model_key="manga", label="Manga", id_property="manga_id", id_is_int=True,
        account_label="MalUser", account_rel="CONNECTED_TO_MAL",
        edges={"TOP_MANGA": 5.0},
        title_property="title",
        detail_properties=("title", "genres", "score", "synopsis", "image_url"),
        domain="anime_manga",
    ),
    ContentType(
        key="anime", model_key="anime", label="Anime", id_property="anime_id", id_is_int=True,
        account_label="MalUser", account_rel="CONNECTED_TO_MAL",
        edges={"TOP_ANIME": None},
        title_property="title",
        detail_properties=("title", "genres", "score", "episodes", "type", "image_url"),
        domain="anime_manga",
    ),
    ContentType(
        key="tracks", model_key="track", label="Track", id_property="uid", id_is_int=False,
        account_label="SpotifyUser", account_rel="CONNECTED_TO_SPOTIFY",
        edges={"LIKES_TRACK": 5.0, "TOP_TRACK": 4.0, "SAVED_TRACK": 3.0, "PLAYED_TRACK": 1.0},
        title_property="name",
        detail_properties=("name", "artists", "album", "duration_ms", "popularity"),
        domain="music",
    ),
    ContentType(
        key="artists", model_key="artist", label="Artist", id_property="uid", id_is_int=False,
        account_label="SpotifyUser", account_rel="CONNECTED_TO_SPOTIFY",
        edges={"LIKES_ARTIST": 5.0, "TOP_ARTIST": 4.0},
        title_property="name",
        detail_properties=("name", "genres", "popularity"),
        domain="music",
    ),
    ContentType(
        key="albums", model_key="album", label="Album", id_property="uid", id_is_int=False,
        account_label="SpotifyUser", account_rel="CONNECTED_TO_SPOTIFY",
        edges={"LIKES_ALBUM": 5.0, "SAVED_ALBUM": 3.0},
        title_property="name",
        detail_properties=("name", "artists", "release_year"),
        domain="music",
    ),
    ContentType(
        key="genres", model_key="genre", label="Genre", id_property="uid", id_is_int=False,
        account_label="SpotifyUser", account_rel="CONNECTED_TO_SPOTIFY",
        edges={"LIKES_GENRE": 5.0, "TOP_GENRE": 4.0},
        title_property="name",
        detail_properties=("name",),
        domain="music",
    ),
)

BY_KEY: dict[str, ContentType] = {ct.key: ct for ct in CONTENT_TYPES}
BY_MODEL_KEY: dict[str, ContentType] = {ct.model_key: ct for ct in CONTENT_TYPES}

# The keys of GET /v1/recommendations/: every content type, then buds (people, not items).
BUDS_KEY = "buds"
ALL_KEYS: tuple[str, ...] = tuple(ct.key for ct in CONTENT_TYPES) + (BUDS_KEY,)

# The app user and its accounts (labels and keys), for constraints and the seed.
USER_LABEL = "ParentUser"
USER_KEY = "uid"
ACCOUNT_LABELS: dict[str, str] = {ct.account_label: ct.account_rel for ct in CONTENT_TYPES}


def content_type_get(*, key: str) -> ContentType:
    """The row for an API or model key; UnknownContentTypeError (404 in the envelope) names the supported ones."""
    ct = BY_KEY.get(key) or BY_MODEL_KEY.get(key)
    if ct is None:
        supported = ", ".join([ct.key for ct in CONTENT_TYPES] + [BUDS_KEY])
        raise UnknownContentTypeError(f"Unknown content type '{key}'. Supported types: {supported}.")
    return ct


def content_type(key: str) -> ContentType:
    """The row for an API key ("movies") or a model key ("movie"); KeyError names the supported ones."""
    ct = BY_KEY.get(key) or BY_MODEL_KEY.get(key)
    if ct is None:
        raise KeyError(f"unknown content type {key!r}; supported: {', '.join(BY_KEY)}")
    return ct


def weight_expression(ct: ContentType, rel: str = "r") -> str:
    """Cypher for the weight of one edge `rel` of this type, from the table."""
    cases = []
    for rel_type, weight in ct.edges.items():
        # a missing or non-positive score (MAL's "watched, unrated") weighs the default
        value = (f"CASE WHEN toFloat({rel}.score) > 0 THEN toFloat({rel}.score) ELSE {DEFAULT_SCORE_WEIGHT} END"
                 if weight is None else repr(float(weight)))
        cases.append(f"WHEN '{rel_type}' THEN {value}")
    return f"CASE type({rel}) {' '.join(cases)} END"
