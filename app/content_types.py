"""The one declarative table of content types, shaped like the MusicBud graph (musicbud/backend app/db_models).

Every row says where a type's items live, which accounts of the app user reach them, how each edge type
weighs, and where an item's details are (on the item node, or on related nodes such as its picture or its
artists). Extraction, item details, popularity, the graph writers, training and the API all read this table;
adding a content type is adding a row (plus its node class in app/graph_models.py); a new graph shape (a weight
from a node property, details through a related node, several kinds of account) is a new value in a column.

How edges combine: a user may reach the same item through several edges (LIKES and WATCHED, or two music
accounts). The interaction weight is the **maximum** of the edge weights: the strongest signal wins, and
watching a liked movie does not make it count more than liking it.

Music weights (the seed left them open): an explicit like 5, a "top" item 4, a saved one 3, a play 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.errors import UnknownContentTypeError


@dataclass(frozen=True)
class Account:
    """An app user's account on a provider: (ParentUser)-[rel]->(:labels {key})."""

    rel: str
    label: str  # the account's own label (neomodel's class name)
    key: str  # its key property: "user_id" for ImdbUser (a string) and MalUser (an int), else "uid"
    key_is_int: bool = False
    labels: tuple[str, ...] = ()  # every label a MusicBud account node carries (its neomodel ancestors' too)
    provider: str = ""  # "imdb", "mal", "spotify", ...: the prefix of the keys the writers make

    @property
    def all_labels(self) -> tuple[str, ...]:
        return self.labels or (self.label,)


@dataclass(frozen=True)
class Edge:
    """How one edge type from an account to an item weighs: the edge's `edge_property` when it is > 0, else the
    item's `node_property` when it is > 0, else `weight`; a property value is multiplied by `scale`."""

    weight: float
    edge_property: str | None = None
    node_property: str | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class Field:
    """One field of an item's details. From the item node: `property`. From related nodes: `path` (a
    Cypher pattern from the item, ending in the node `r`, e.g. "-[:HAS_PICTURE]->(r:MainPicture)") and
    `property` of those nodes; `many` gives the list of all of them, else the first. `properties` (with a path)
    gives maps of those properties instead (e.g. main_picture: [{medium, large}]). `fallback`: other fields tried
    in turn when this one is null (the first non-null wins). `kind` says how the API types it: str, int,
    float, list (of strings; a stringified Python list, as ImdbMovie.genres is stored, is parsed), maps, and
    join: the list field named `property` joined with ", " (a track's `artist` from its `artists`)."""

    name: str
    property: str | None = None
    path: str | None = None
    many: bool = False
    properties: tuple[str, ...] = ()
    fallback: tuple[Field, ...] = ()
    kind: str = "str"


@dataclass(frozen=True)
class ContentType:
    key: str  # the API's key ("movies"); also the URL segment
    model_key: str  # the model files' prefix and models_train()'s key ("movie")
    label: str  # the item label every item of the type carries ("Track": SpotifyTrack, LastfmTrack... too)
    id_property: str  # item key property
    id_is_int: bool  # MAL ids are integers; everything else is a string
    accounts: tuple[Account, ...]  # the accounts that reach these items (one history: max weight per item)
    edges: dict[str, Edge]  # relationship type -> weight
    title_property: str  # "title" or "name": what a person reads
    details: tuple[Field, ...]  # returned to the API besides id (order kept)
    domain: str  # "movies", "anime_manga", "music": for cross-domain reporting
    item_labels: tuple[str, ...] = ()  # labels the writers give a new item (MusicBud's, ancestors included)
    other_labels: tuple[str, ...] = ()  # items of the type that lack `label` (MERGE-created SpotifyGenre nodes)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def rel_types(self) -> list[str]:
        return list(self.edges)

    @property
    def label_expression(self) -> str:
        """The label(s) that match this type's items in a pattern: "Genre|SpotifyGenre"."""
        return "|".join((self.label, *self.other_labels))

    @property
    def account_rels(self) -> str:
        return "|".join(dict.fromkeys(a.rel for a in self.accounts))

    @property
    def account_labels(self) -> str:
        return "|".join(dict.fromkeys(a.label for a in self.accounts))

    @property
    def account(self) -> Account:
        """The account the writers use when a row names none (the first)."""
        return self.accounts[0]

    @property
    def detail_properties(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.details)

    @property
    def has_years(self) -> bool:
        """Whether the type's items have a year (a `year` detail): the year_min / year_max filters apply."""
        return "year" in self.detail_properties


DEFAULT_SCORE_WEIGHT = 5.0

IMDB = Account(rel="CONNECTED_TO_IMDB", label="ImdbUser", key="user_id", provider="imdb")
MAL = Account(rel="CONNECTED_TO_MAL", label="MalUser", key="user_id", key_is_int=True, labels=("User", "MalUser"),
              provider="mal")
SPOTIFY = Account(rel="CONNECTED_TO_SPOTIFY", label="SpotifyUser", key="uid", labels=("User", "SpotifyUser"),
                  provider="spotify")
LASTFM = Account(rel="CONNECTED_TO_LASTFM", label="LastfmUser", key="uid", labels=("User", "LastfmUser"),
                 provider="lastfm")
YTMUSIC = Account(rel="CONNECTED_TO_YTMUSIC", label="YtmusicUser", key="uid", labels=("User", "YtmusicUser"),
                  provider="ytmusic")
MUSIC_ACCOUNTS = (SPOTIFY, LASTFM, YTMUSIC)

# Details read through related nodes, as MusicBud stores them.
_MAL_PICTURE = "-[:HAS_PICTURE]->(r:MainPicture)"
_IMAGE = "-[:HAS_IMAGE]->(r:SpotifyImage)"
_MAL_IMAGE = Field("image_url", "image_url", fallback=(Field("image_url", "large", path=_MAL_PICTURE),
                                                       Field("image_url", "medium", path=_MAL_PICTURE)))
_MAL_PICTURES = Field("main_picture", path=_MAL_PICTURE, many=True, properties=("medium", "large"), kind="maps")
_MUSIC_IMAGE = Field("image_url", "image_url", fallback=(Field("image_url", "url", path=_IMAGE),))
_MUSIC_IMAGES = Field("images", path=_IMAGE, many=True, properties=("url", "height", "width"), kind="maps")
_ARTIST_NAMES = Field("artists", "artists", kind="list",
                      fallback=(Field("artists", "name", path="-[:PERFORMED_BY]->(r:Artist)", many=True, kind="list"),))


def _music_title() -> Field:
    return Field("title", "name")  # the apps read `title` for some music items, `name` for others: both


CONTENT_TYPES: tuple[ContentType, ...] = (
    ContentType(
        key="movies", model_key="movie", label="ImdbMovie", id_property="imdb_id", id_is_int=False,
        accounts=(IMDB,),
        # RATED carries the user's IMDb rating (1-10) when the app stores one: half of it, else 4
        edges={"LIKES": Edge(5.0), "WATCHED": Edge(3.0), "WANTS_TO_WATCH": Edge(2.0),
               "RATED": Edge(4.0, edge_property="rating", scale=0.5)},
        title_property="title",
        details=(Field("title", "title"), Field("year", "year", kind="int"), Field("rating", "rating", kind="float"),
                 Field("genres", "genres", kind="list"), Field("plot", "plot"), Field("director", "director"),
                 Field("image_url", "image_url")),
        domain="movies", item_labels=("ImdbMovie",),
    ),
    ContentType(
        key="manga", model_key="manga", label="Manga", id_property="manga_id", id_is_int=True,
        accounts=(MAL,),
        edges={"TOP_MANGA": Edge(5.0)},
        title_property="title",
        details=(Field("title", "title"), Field("genres", "genres", kind="list"), Field("score", "score", kind="float"),
                 Field("synopsis", "synopsis"), _MAL_IMAGE, _MAL_PICTURES),
        domain="anime_manga", item_labels=("Manga",),
    ),
    ContentType(
        key="anime", model_key="anime", label="Anime", id_property="anime_id", id_is_int=True,
        accounts=(MAL,),
        # MAL's list score: on the edge where we store one, else the Anime node's `score` (0 = unscored), else 5
        edges={"TOP_ANIME": Edge(DEFAULT_SCORE_WEIGHT, edge_property="score", node_property="score")},
        title_property="title",
        details=(Field("title", "title"), Field("genres", "genres", kind="list"), Field("score", "score", kind="float"),
                 Field("episodes", "episodes", kind="int"), Field("type", "type"), Field("status", "status"),
                 _MAL_IMAGE, _MAL_PICTURES),
        domain="anime_manga", item_labels=("Anime",),
    ),
    ContentType(
        key="tracks", model_key="track", label="Track", id_property="uid", id_is_int=False,
        accounts=MUSIC_ACCOUNTS,
        edges={"LIKES_TRACK": Edge(5.0), "TOP_TRACK": Edge(4.0), "SAVED_TRACK": Edge(3.0), "PLAYED_TRACK": Edge(1.0)},
        title_property="name",
        details=(Field("name", "name"), _music_title(), _ARTIST_NAMES, Field("artist", "artists", kind="join"),
                 Field("album", "album", fallback=(Field("album", "name", path="-[:BELONGS_TO|INCLUDED_IN]->(r:Album)"),)),
                 Field("duration_ms", "duration_ms", kind="int"), Field("popularity", "popularity", kind="int"),
                 Field("spotify_id", "spotify_id"), _MUSIC_IMAGE, _MUSIC_IMAGES),
        domain="music", item_labels=("LikedItem", "Track", "SpotifyTrack"),
    ),
    ContentType(
        key="artists", model_key="artist", label="Artist", id_property="uid", id_is_int=False,
        accounts=MUSIC_ACCOUNTS,
        edges={"LIKES_ARTIST": Edge(5.0), "TOP_ARTIST": Edge(4.0)},
        title_property="name",
        details=(Field("name", "name"), _music_title(), Field("genres", "genres", kind="list"),
                 Field("popularity", "popularity", kind="int"), Field("spotify_id", "spotify_id"), _MUSIC_IMAGE,
                 _MUSIC_IMAGES),
        domain="music", item_labels=("LikedItem", "Artist", "SpotifyArtist"),
    ),
    ContentType(
        key="albums", model_key="album", label="Album", id_property="uid", id_is_int=False,
        accounts=MUSIC_ACCOUNTS,
        edges={"LIKES_ALBUM": Edge(5.0), "SAVED_ALBUM": Edge(3.0)},
        title_property="name",
        details=(Field("name", "name"), _music_title(),
                 Field("artists", "artists", kind="list", fallback=(
                     Field("artists", "name", path="-[:CREATED_BY]->(r:Artist)", many=True, kind="list"),
                     Field("artists", "name", path="<-[:CONTRIBUTED_TO]-(r:Artist)", many=True, kind="list"))),
                 Field("release_year", "release_year", kind="int",
                       fallback=(Field("release_year", "release_date", kind="int"),)),  # "1998-05-01" -> 1998
                 Field("release_date", "release_date"),
                 Field("spotify_id", "spotify_id"), _MUSIC_IMAGE, _MUSIC_IMAGES),
        domain="music", item_labels=("LikedItem", "Album", "SpotifyAlbum"),
    ),
    ContentType(
        key="genres", model_key="genre", label="Genre", id_property="uid", id_is_int=False,
        accounts=MUSIC_ACCOUNTS,
        edges={"LIKES_GENRE": Edge(5.0), "TOP_GENRE": Edge(4.0)},
        title_property="name",
        details=(Field("name", "name"), _music_title()),
        domain="music", item_labels=("LikedItem", "Genre", "SpotifyGenre"), other_labels=("SpotifyGenre",),
    ),
)

BY_KEY: dict[str, ContentType] = {ct.key: ct for ct in CONTENT_TYPES}
BY_MODEL_KEY: dict[str, ContentType] = {ct.model_key: ct for ct in CONTENT_TYPES}

# The keys of GET /v1/recommendations/: every content type, then buds (people, not items).
BUDS_KEY = "buds"
ALL_KEYS: tuple[str, ...] = tuple(ct.key for ct in CONTENT_TYPES) + (BUDS_KEY,)

# The app user and its accounts (labels and keys), for constraints and the writers.
USER_LABEL = "ParentUser"
USER_KEY = "uid"
ACCOUNTS: dict[str, Account] = {a.label: a for ct in CONTENT_TYPES for a in ct.accounts}


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


def _weight_of(edge: Edge, rel: str, item: str) -> str:
    def prop(expr: str) -> str:
        return f"toFloat({expr})" if edge.scale == 1.0 else f"toFloat({expr}) * {edge.scale!r}"

    cases = []
    if edge.edge_property:
        cases.append(f"WHEN toFloat({rel}.{edge.edge_property}) > 0 THEN {prop(f'{rel}.{edge.edge_property}')}")
    if edge.node_property:
        cases.append(f"WHEN toFloat({item}.{edge.node_property}) > 0 THEN {prop(f'{item}.{edge.node_property}')}")
    if not cases:
        return repr(float(edge.weight))
    return f"CASE {' '.join(cases)} ELSE {float(edge.weight)!r} END"


def weight_expression(ct: ContentType, rel: str = "r", item: str = "i") -> str:
    """Cypher for the weight of one edge `rel` (to the item `item`) of this type, from the table."""
    cases = " ".join(f"WHEN '{rel_type}' THEN {_weight_of(edge, rel, item)}" for rel_type, edge in ct.edges.items())
    return f"CASE type({rel}) {cases} END"


def _field_value(f: Field, item: str) -> str:
    if f.path is None:
        return f"{item}.{f.property}"
    if f.properties:
        value = "r {" + ", ".join(f".{p}" for p in f.properties) + "}"
    else:
        value = f"r.{f.property}"
    listed = f"[({item}){f.path} | {value}]"
    return listed if f.many else f"head({listed})"


def field_expression(f: Field, item: str = "i") -> str:
    """Cypher for one detail field of an item node `item`: its value, else its fallbacks' in turn (for a list,
    the first non-empty one: related nodes give [] rather than null when there are none)."""
    candidates = [_field_value(x, item) for x in (f, *f.fallback)]
    if len(candidates) == 1:
        return candidates[0]
    if f.kind in ("list", "maps"):
        out = candidates[-1]
        for expr in reversed(candidates[:-1]):
            out = f"CASE WHEN size(coalesce({expr}, [])) > 0 THEN {expr} ELSE {out} END"
        return out
    return f"coalesce({', '.join(candidates)})"


def details_projection(ct: ContentType, item: str = "i") -> str:
    """The map projection of an item's details: `i {title: i.title, image_url: coalesce(...), ...}` (a "join"
    field is made from another one after reading, in app/services/recommendation_data_service.py)."""
    fields = [f for f in ct.details if f.kind != "join"]
    return f"{item} {{" + ", ".join(f"{f.name}: {field_expression(f, item)}" for f in fields) + "}"


def item_match(ct: ContentType, key: str, item: str = "i") -> str:
    """A clause binding `item` to the type's item whose key is `key` (a Cypher expression), by its key's index
    (one index seek per label when some of the type's items lack its main label)."""
    if not ct.other_labels:
        return f"MATCH ({item}:{ct.label} {{{ct.id_property}: {key}}})"
    seeks = " UNION ".join(f"MATCH ({item}:{label} {{{ct.id_property}: {key}}}) RETURN {item}"
                           for label in (ct.label, *ct.other_labels))
    return f"CALL ({key}) {{ {seeks} }}" if key.isidentifier() else f"CALL () {{ {seeks} }}"


def account_pattern(ct: ContentType, user: str = "u", account: str = "a") -> str:
    """(u:ParentUser)-[:CONNECTED_TO_...]->(a:Account|...): every account kind that reaches the type's items."""
    return f"({user}:{USER_LABEL})-[:{ct.account_rels}]->({account}:{ct.account_labels})"
