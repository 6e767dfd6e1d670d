"""A synthetic MusicBud graph to demo and benchmark the recommenders (`manage.py seed_demo`).

What it models, so that a recommender has something to learn and a benchmark something to measure:

- K = 8 latent taste clusters ("noir", "romance", "action", ...). Each cluster prefers a few genres in EVERY
  domain (noir: Crime/Thriller films, Mystery/Psychological anime and manga, Trip Hop/Dark Jazz music), and
  every item belongs to one cluster whose genres it mostly carries. A user's cluster drives their movies,
  anime, manga and music alike: 75% of their picks come from their cluster's items, the rest from anywhere.
  The cluster is stored on the user as `ParentUser.demo_taste` (int) so benchmarks can check that users of
  one taste find each other.
- Item popularity follows a power law (Zipf, exponent 0.9, over a random ranking of each catalogue).
- User activity follows a power law too (Pareto, normalised to `interactions_per_user` on average).
- ~15% of users lack one domain entirely (movies, anime+manga or music): no account, no edges there. The
  others have at least one interaction in each domain. That is what a cross-domain measurement needs.
- Edge types: a pick inside the user's cluster tends to the strong edge types of the content-type table
  (probability proportional to weight squared: LIKES, TOP_TRACK), a pick outside it to the weak ones
  (proportional to 1/weight: WATCHED, PLAYED_TRACK). TOP_ANIME carries a score (in-cluster ~8/10, else ~6),
  20% of them unscored (watched, not rated, like MAL's -1).
- Timestamps: each user joins on a day of the two years before `until` (default: today, 00:00 UTC) and
  their edges spread between that day and `until`; the CONNECTED_TO_* edges are dated by the join.

Determinism: the same (seed, users, items_per_type, interactions_per_user, until) gives the same graph, and
writing it twice changes nothing (every write is a MERGE). The named users (the demo and admin logins) come
from a separate random stream, so renaming them does not change anybody else.

Ids are chosen not to collide with real data: movies "tt9xxxxxxxx" (9 digits, IMDb uses 7-8), MAL ids from
9,000,000, music "demo-track-000001" etc., users "demo-000001" / "bud_000001".
"""
from __future__ import annotations

import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from tqdm import tqdm

from app import graph
from app.content_types import CONTENT_TYPES, ContentType
from app.services.graph_writes import interactions_upsert, item_links_upsert, items_upsert, users_upsert

CLUSTERS = 8
IN_CLUSTER = 0.75  # share of a user's picks drawn from their cluster's items
ZIPF_EXPONENT = 0.9
ACTIVITY_PARETO = 1.8  # shape of the activity distribution (heavier tail when smaller)
MISSING_DOMAIN_SHARE = 0.15
UNSCORED_SHARE = 0.2
HISTORY_DAYS = 730
ID_BASE_MAL = 9_000_000
# Bumped whenever the same arguments would write another graph (bench/harness.py keys its cached graphs by it).
# 2: MusicBud's own shape: account keys and labels, tracks PERFORMED_BY artists and BELONGS_TO albums, albums
# CREATED_BY artists with a release_date, music through Spotify, Last.fm and YouTube Music accounts, RATED movies.
DEMO_FORMAT = 2
# How users with music reach it: Spotify only, Spotify and Last.fm (one history over both), YouTube Music only.
MUSIC_ACCOUNTS = (("SpotifyUser",), ("SpotifyUser", "LastfmUser"), ("YtmusicUser",))
MUSIC_ACCOUNTS_P = (0.7, 0.15, 0.15)

# The taste clusters: preferred genres per domain (movie genres are MovieLens', anime/manga MAL's).
THEMES: tuple[dict[str, tuple[str, ...]], ...] = (
    {"name": ("noir",), "movies": ("Crime", "Thriller", "Mystery", "Film-Noir"),
     "anime": ("Mystery", "Psychological", "Suspense", "Detective"),
     "manga": ("Mystery", "Psychological", "Seinen", "Suspense"),
     "music": ("Trip Hop", "Dark Jazz", "Post-Punk", "Darkwave")},
    {"name": ("romance",), "movies": ("Romance", "Drama", "Musical", "Comedy"),
     "anime": ("Romance", "Drama", "School", "Shoujo"),
     "manga": ("Romance", "Shoujo", "Josei", "Drama"),
     "music": ("Soul", "R&B", "Bossa Nova", "Soft Rock")},
    {"name": ("action",), "movies": ("Action", "Adventure", "War", "Western"),
     "anime": ("Action", "Shounen", "Martial Arts", "Military"),
     "manga": ("Action", "Shounen", "Martial Arts", "Adventure"),
     "music": ("Hard Rock", "Heavy Metal", "Drum and Bass", "Trap")},
    {"name": ("sci-fi",), "movies": ("Sci-Fi", "IMAX", "Thriller", "Adventure"),
     "anime": ("Sci-Fi", "Mecha", "Space", "Time Travel"),
     "manga": ("Sci-Fi", "Mecha", "Space", "Time Travel"),
     "music": ("Synthwave", "Techno", "IDM", "Ambient")},
    {"name": ("comedy",), "movies": ("Comedy", "Children", "Animation", "Musical"),
     "anime": ("Comedy", "Slice of Life", "Parody", "Gag Humor"),
     "manga": ("Comedy", "Slice of Life", "Gag Humor", "School"),
     "music": ("Pop", "K-Pop", "Disco", "Funk")},
    {"name": ("fantasy",), "movies": ("Fantasy", "Adventure", "Animation", "Children"),
     "anime": ("Fantasy", "Isekai", "Adventure", "Magic"),
     "manga": ("Fantasy", "Isekai", "Adventure", "Supernatural"),
     "music": ("Folk", "Celtic", "Symphonic Metal", "Neoclassical")},
    {"name": ("horror",), "movies": ("Horror", "Mystery", "Thriller", "Sci-Fi"),
     "anime": ("Horror", "Supernatural", "Gore", "Vampire"),
     "manga": ("Horror", "Supernatural", "Gore", "Psychological"),
     "music": ("Black Metal", "Industrial", "Doom Metal", "Noise")},
    {"name": ("indie",), "movies": ("Drama", "Documentary", "Romance", "War"),
     "anime": ("Drama", "Slice of Life", "Iyashikei", "Music"),
     "manga": ("Drama", "Slice of Life", "Josei", "Sports"),
     "music": ("Indie Folk", "Lo-Fi", "Singer-Songwriter", "Jazz")},
)
# Which theme column an item type's genres come from (music types share one vocabulary).
GENRE_DOMAIN = {"movies": "movies", "anime": "anime", "manga": "manga",
                "tracks": "music", "artists": "music", "albums": "music", "genres": "music"}
# How a user's interactions in a domain split between its item types.
TYPE_SHARE = {"movies": 1.0, "anime": 0.6, "manga": 0.4,
              "tracks": 0.5, "artists": 0.2, "albums": 0.2, "genres": 0.1}

ADJECTIVES = (
    "Silent", "Crimson", "Hidden", "Broken", "Golden", "Last", "Lost", "Burning", "Frozen", "Electric",
    "Midnight", "Wild", "Hollow", "Velvet", "Iron", "Neon", "Paper", "Glass", "Secret", "Endless", "Distant",
    "Savage", "Gentle", "Restless", "Quiet", "Bitter", "Scarlet", "Silver", "Forgotten", "Wandering",
    "Sleeping", "Falling", "Rising", "Shattered", "Eternal", "Fading", "Northern", "Little", "Brave", "Hungry",
)
NOUNS = (
    "Harbor", "Empire", "Garden", "River", "Shadow", "Kingdom", "Signal", "Mirror", "Horizon", "Storm",
    "Island", "Station", "Forest", "Machine", "Ocean", "Letter", "Promise", "Valley", "Crown", "Tide",
    "Lantern", "Orchid", "Engine", "Canyon", "Echo", "Frontier", "Hunter", "Dream", "Comet", "Circuit",
    "Symphony", "Fortress", "Whisper", "Compass", "Winter", "Summer", "Wolf", "Raven", "Tower", "Bridge",
)
FIRST_NAMES = (
    "Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kaito", "Lena",
    "Mateo", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Soren", "Tala", "Umar", "Vera", "Wen", "Yara",
)
LAST_NAMES = (
    "Almeida", "Brooks", "Castillo", "Dubois", "Eriksen", "Fontaine", "Garcia", "Haddad", "Ivanova", "Jensen",
    "Kowalski", "Laurent", "Moreau", "Nakamura", "Okafor", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka",
    "Usman", "Varga", "Weber", "Yilmaz",
)
SUBJECTS = (
    "A retired detective", "An estranged sister", "A young pilot", "An exiled prince", "A small-town teacher",
    "A runaway robot", "A grieving violinist", "A band of thieves", "An ambitious journalist", "A lonely ghost",
)
VERBS = ("must cross", "searches for", "tries to escape", "returns to", "fights to save", "uncovers the truth of")
GENRE_MODIFIERS = (
    "Nordic", "Tokyo", "Berlin", "Desert", "Coastal", "Lunar", "Basement", "Cosmic", "Analog", "Baroque",
    "Tropical", "Brooklyn", "Alpine", "Ethereal", "Raw", "Modern", "Vintage", "Underground", "Melodic",
    "Progressive", "Minimal", "Psychedelic", "Acoustic", "Orchestral", "Glitch", "Slow", "Future", "Dream",
    "Outsider", "Experimental", "Cinematic", "Deep",
)
ANIME_TYPES = ("TV", "Movie", "OVA", "ONA", "Special")
ANIME_TYPE_P = (0.55, 0.15, 0.15, 0.1, 0.05)
EPISODES = (1, 12, 13, 24, 25, 26, 50, 64, 100)
EPISODES_P = (0.2, 0.25, 0.15, 0.1, 0.08, 0.1, 0.05, 0.04, 0.03)


@dataclass(frozen=True)
class NamedUser:
    """A login of the demo (Django user + ParentUser). `full` users get history in every item type."""

    username: str
    uid: str
    email: str | None
    full: bool


@dataclass
class DemoGraph:
    items: dict[str, list[dict]]  # content type key -> items_upsert rows
    users: list[dict]  # users_upsert rows
    interactions: dict[str, list[dict]]  # content type key -> interactions_upsert rows
    links: list[tuple[str, str, str, list[dict]]] = field(default_factory=list)  # (type, rel, target type, rows)
    seconds: float = 0.0

    @property
    def interaction_count(self) -> int:
        return sum(len(rows) for rows in self.interactions.values())


@dataclass
class DemoWriteReport:
    items: dict[str, int]
    users: int
    edges: dict[str, dict[str, int]]
    seconds: float
    edge_seconds: float

    @property
    def edge_count(self) -> int:
        return sum(sum(by_rel.values()) for by_rel in self.edges.values())

    @property
    def edges_per_second(self) -> float:
        return self.edge_count / self.edge_seconds if self.edge_seconds > 0 else 0.0


@dataclass
class AuthUserResult:
    username: str
    created: bool
    staff: bool
    password: str | None = None  # only when generated here (to print once)
    password_source: str = ""


@dataclass
class DemoSeedReport:
    generated: DemoGraph
    written: DemoWriteReport
    auth_users: list[AuthUserResult] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- helpers
def _domains() -> list[str]:
    seen: list[str] = []
    for ct in CONTENT_TYPES:
        if ct.domain not in seen:
            seen.append(ct.domain)
    return seen


def _item_id(ct: ContentType, j: np.ndarray) -> list:
    """Item keys for indices j: int keys from ID_BASE_MAL, "tt9%08d" for IMDb, "demo-<type>-%06d" else."""
    if ct.id_is_int:
        return (ID_BASE_MAL + 1 + j).tolist()
    if ct.id_property == "imdb_id":
        return [f"tt9{k + 1:08d}" for k in j.tolist()]
    return [f"demo-{ct.model_key}-{k + 1:06d}" for k in j.tolist()]


def _zipf_weights(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(weights, popularity 0..100) of n items ranked at random."""
    ranks = rng.permutation(n) + 1
    weights = ranks.astype(np.float64) ** -ZIPF_EXPONENT
    popularity = np.clip(np.rint(100 * (1 - np.log(ranks) / np.log(n + 1))), 0, 100).astype(int)
    return weights, popularity


def _pick(rng: np.random.Generator, words: tuple[str, ...], n: int) -> list[str]:
    return [words[i] for i in rng.integers(len(words), size=n).tolist()]


def _titles(rng: np.random.Generator, n: int, patterns: tuple[str, ...]) -> list[str]:
    pattern = rng.integers(len(patterns), size=n).tolist()
    a1, a2 = _pick(rng, ADJECTIVES, n), _pick(rng, ADJECTIVES, n)
    n1, n2 = _pick(rng, NOUNS, n), _pick(rng, NOUNS, n)
    f, last = _pick(rng, FIRST_NAMES, n), _pick(rng, LAST_NAMES, n)
    return [patterns[p].format(a=a1[i], a2=a2[i], n=n1[i], n2=n2[i], first=f[i], last=last[i])
            for i, p in enumerate(pattern)]


def _genres(rng: np.random.Generator, clusters: np.ndarray, domain: str) -> list[list[str]]:
    """Two of the cluster's four genres for each item, plus (35%) one genre of any cluster."""
    n = len(clusters)
    table = np.array([theme[domain] for theme in THEMES], dtype=object)
    order = np.argsort(rng.random((n, table.shape[1])), axis=1)[:, :2]
    extra_cluster = rng.integers(len(THEMES), size=n)
    extra_genre = rng.integers(table.shape[1], size=n)
    extra = rng.random(n) < 0.35
    out = []
    for i, c in enumerate(clusters.tolist()):
        genres = [table[c, order[i, 0]], table[c, order[i, 1]]]
        if extra[i]:
            g = table[extra_cluster[i], extra_genre[i]]
            if g not in genres:
                genres.append(g)
        out.append(genres)
    return out


def _genre_names(rng: np.random.Generator, clusters: np.ndarray) -> list[str]:
    """Unique names for Genre items: each cluster's four base genres first, then "<modifier> <base>"."""
    names: list[str] = [""] * len(clusters)
    for c, theme in enumerate(THEMES):
        members = np.flatnonzero(clusters == c)
        combos = [f"{m} {b}" for m in GENRE_MODIFIERS for b in theme["music"]]
        pool = list(theme["music"]) + [combos[i] for i in rng.permutation(len(combos)).tolist()]
        for k, j in enumerate(members.tolist()):
            names[j] = pool[k] if k < len(pool) else f"{pool[k % len(pool)]} {k // len(pool) + 1}"
    return names


class _Sampler:
    """Popularity-weighted draws of items, from one cluster or from the whole catalogue."""

    def __init__(self, clusters: np.ndarray, weights: np.ndarray):
        self.clusters = clusters
        self.all_cdf = np.cumsum(weights) / weights.sum()
        self.members = [np.flatnonzero(clusters == c) for c in range(CLUSTERS)]
        self.cdfs = [np.cumsum(weights[m]) / weights[m].sum() if len(m) else None for m in self.members]

    def draw(self, rng: np.random.Generator, want_cluster: np.ndarray, in_cluster: np.ndarray) -> np.ndarray:
        out = np.minimum(np.searchsorted(self.all_cdf, rng.random(len(want_cluster)), side="right"),
                         len(self.all_cdf) - 1)
        for c in range(CLUSTERS):
            mask = in_cluster & (want_cluster == c)
            k = int(mask.sum())
            if k and self.cdfs[c] is not None:
                pos = np.minimum(np.searchsorted(self.cdfs[c], rng.random(k), side="right"), len(self.cdfs[c]) - 1)
                out[mask] = self.members[c][pos]
        return out


# ---------------------------------------------------------------------------------------------- items
def _items(rng: np.random.Generator, m: int) -> tuple[dict[str, list[dict]], dict[str, tuple[np.ndarray, np.ndarray]],
                                                     list[tuple[str, str, str, list[dict]]]]:
    """Items of every content type, (clusters, popularity weights) per type for the interactions, and the
    links between items (tracks -> artists and albums, albums -> artists)."""
    rows: dict[str, list[dict]] = {}
    links: list[tuple[str, str, str, list[dict]]] = []
    album_artist: list[int] = []
    meta: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    by_key = {ct.key: ct for ct in CONTENT_TYPES}
    order = ["genres", "artists", "albums", "tracks", "movies", "anime", "manga"]  # music refers to itself
    order += [k for k in by_key if k not in order]
    for key in order:
        ct = by_key[key]
        clusters = rng.integers(CLUSTERS, size=m)
        weights, popularity = _zipf_weights(rng, m)
        meta[key] = (clusters, weights)
        ids = _item_id(ct, np.arange(m))
        domain = GENRE_DOMAIN.get(key, "movies")
        if key == "movies":
            titles = _titles(rng, m, ("The {a} {n}", "{n} of the {a} {n2}", "{a} {n}", "The {n} of {n2}",
                                      "{a} {n}s", "Return to {n}"))
            years = np.clip(np.rint(2024 - rng.exponential(14, m)), 1950, 2024).astype(int).tolist()
            ratings = np.round(np.clip(rng.normal(5.8 + 1.6 * popularity / 100, 1.0), 1.0, 10.0), 1).tolist()
            subj, verb = _pick(rng, SUBJECTS, m), _pick(rng, VERBS, m)
            adj, noun = _pick(rng, ADJECTIVES, m), _pick(rng, NOUNS, m)
            directors = _titles(rng, m, ("{first} {last}",))
            genres = _genres(rng, clusters, domain)
            rows[key] = [{"imdb_id": ids[j], "title": titles[j], "year": years[j], "rating": ratings[j],
                          "genres": genres[j], "plot": f"{subj[j]} {verb[j]} the {adj[j].lower()} {noun[j].lower()}.",
                          "director": directors[j]} for j in range(m)]
        elif key in ("anime", "manga"):
            titles = _titles(rng, m, ("{a} {n} Chronicles", "{n} of the {a} {n2}", "My {a} {n}", "{n} Academy",
                                      "The {a} {n}", "{a} {n}!!"))
            scores = np.round(np.clip(rng.normal(6.6 + 1.8 * popularity / 100, 0.7), 1.0, 10.0), 2).tolist()
            genres = _genres(rng, clusters, domain)
            if key == "anime":
                types = rng.choice(len(ANIME_TYPES), size=m, p=ANIME_TYPE_P).tolist()
                episodes = np.array(EPISODES)[rng.choice(len(EPISODES), size=m, p=EPISODES_P)].tolist()
                rows[key] = [{"anime_id": ids[j], "title": titles[j], "genres": genres[j], "score": scores[j],
                              "episodes": episodes[j], "type": ANIME_TYPES[types[j]]} for j in range(m)]
            else:
                subj, verb = _pick(rng, SUBJECTS, m), _pick(rng, VERBS, m)
                noun = _pick(rng, NOUNS, m)
                rows[key] = [{"manga_id": ids[j], "title": titles[j], "genres": genres[j], "score": scores[j],
                              "synopsis": f"{subj[j]} {verb[j]} the {noun[j].lower()}."} for j in range(m)]
        elif key == "genres":
            names = _genre_names(rng, clusters)
            rows[key] = [{"uid": ids[j], "name": names[j]} for j in range(m)]
        elif key == "artists":
            g_clusters, g_weights = meta["genres"]
            g_names = [r["name"] for r in rows["genres"]]
            sampler = _Sampler(g_clusters, g_weights)
            picks = sampler.draw(rng, np.repeat(clusters, 2), np.ones(2 * m, dtype=bool)).reshape(m, 2)
            names = _titles(rng, m, ("The {a} {n}s", "{first} {last}", "{n} {n2}", "{a} {n}", "{first} and the {n}s"))
            rows[key] = [{"uid": ids[j], "name": names[j],
                          "genres": list(dict.fromkeys(g_names[g] for g in picks[j].tolist())),
                          "popularity": int(popularity[j])} for j in range(m)]
        elif key == "albums":
            a_clusters, a_weights = meta["artists"]
            artist = _Sampler(a_clusters, a_weights).draw(rng, clusters, np.ones(m, dtype=bool)).tolist()
            names = _titles(rng, m, ("{a} {n}s", "The {n} Sessions", "{n} & {n2}", "{a} {n}", "Songs from the {n}"))
            years = np.clip(np.rint(2025 - rng.exponential(12, m)), 1960, 2025).astype(int).tolist()
            rows[key] = [{"uid": ids[j], "name": names[j], "release_date": str(years[j])} for j in range(m)]
            links.append((key, "CREATED_BY", "artists", [{"item_id": ids[j], "target_id": rows["artists"][artist[j]]["uid"]}
                                                         for j in range(m)]))
            album_artist = artist
        elif key == "tracks":
            b_clusters, b_weights = meta["albums"]
            album = _Sampler(b_clusters, b_weights).draw(rng, clusters, np.ones(m, dtype=bool)).tolist()
            names = _titles(rng, m, ("{a} {n}", "{n}", "{a} Love", "Into the {n}", "{n} ({a} Mix)", "{a} Heart"))
            durations = np.clip(np.rint(rng.normal(215_000, 50_000, m)), 90_000, 600_000).astype(int).tolist()
            rows[key] = [{"uid": ids[j], "name": names[j], "duration_ms": durations[j],
                          "popularity": int(popularity[j])} for j in range(m)]
            links.append((key, "PERFORMED_BY", "artists",
                          [{"item_id": ids[j], "target_id": rows["artists"][album_artist[album[j]]]["uid"]}
                           for j in range(m)]))
            links.append((key, "BELONGS_TO", "albums", [{"item_id": ids[j], "target_id": rows["albums"][album[j]]["uid"]}
                                                        for j in range(m)]))
        else:  # a content type added to the table later: key and a name, so it still gets items and edges
            names = _titles(rng, m, ("The {a} {n}",))
            rows[key] = [{ct.id_property: ids[j], ct.title_property: names[j]} for j in range(m)]
    return {ct.key: rows[ct.key] for ct in CONTENT_TYPES}, meta, links


# ---------------------------------------------------------------------------------------------- users
def _type_counts(rng: np.random.Generator, totals: np.ndarray, present: np.ndarray) -> dict[str, np.ndarray]:
    """Split each user's total between domains (>= 1 in each present one), then between item types."""
    domains = _domains()
    n = len(totals)
    shares = rng.dirichlet(np.full(len(domains), 1.5), size=n) * present
    shares /= shares.sum(axis=1, keepdims=True)
    spare = np.maximum(totals - present.sum(axis=1), 0)
    per_domain = present.astype(np.int64) + rng.multinomial(spare, shares)
    counts: dict[str, np.ndarray] = {}
    for d, domain in enumerate(domains):
        keys = [ct.key for ct in CONTENT_TYPES if ct.domain == domain]
        p = np.array([TYPE_SHARE.get(k, 1.0) for k in keys])
        split = rng.multinomial(per_domain[:, d], p / p.sum())
        for i, key in enumerate(keys):
            counts[key] = split[:, i]
    return counts


def _named_counts(named: list[NamedUser], per_user: float) -> dict[str, np.ndarray]:
    """Fixed histories for the demo logins: `full` ones get >= 2 of every type, the others some of each domain."""
    counts: dict[str, np.ndarray] = {}
    n_domains = len(_domains())
    for ct in CONTENT_TYPES:
        in_domain = sum(TYPE_SHARE.get(c.key, 1.0) for c in CONTENT_TYPES if c.domain == ct.domain)
        share = TYPE_SHARE.get(ct.key, 1.0) / in_domain / n_domains
        counts[ct.key] = np.array(
            [max(2, round(1.5 * per_user * share)) if u.full else max(1, round(per_user * share)) for u in named],
            dtype=np.int64)
    return counts


def _rel_probabilities(ct: ContentType) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(rel types, P(rel | item in the user's cluster), P(rel | not)) from the table's weights."""
    rels = list(ct.edges)
    w = np.array([float(ct.edges[r].weight) for r in rels])
    p_in, p_out = w ** 2, 1.0 / w
    return rels, p_in / p_in.sum(), p_out / p_out.sum()


def _interactions(rng: np.random.Generator, ct: ContentType, counts: np.ndarray, user_clusters: np.ndarray,
                  user_uids: list[str], joined: np.ndarray, until: int, sampler: _Sampler,
                  item_ids: list, user_accounts: list[tuple[str, ...]] | None = None) -> list[dict]:
    """Exactly counts[u] distinct items per user where the catalogue allows (oversample, dedupe, trim). With
    user_accounts (music), each edge comes from one of the user's accounts (the first 60% of the time)."""
    draws = np.where(counts > 0, np.ceil(counts * 1.5).astype(np.int64) + 2, 0)
    users = np.repeat(np.arange(len(counts)), draws)
    in_cluster = rng.random(len(users)) < IN_CLUSTER
    items = sampler.draw(rng, user_clusters[users], in_cluster)
    m = len(sampler.all_cdf)
    _, first = np.unique(users.astype(np.int64) * m + items, return_index=True)
    keep = np.sort(first)  # first draw of each (user, item), in draw order
    users, items = users[keep], items[keep]
    rank = np.arange(len(users)) - np.searchsorted(users, users, side="left")
    keep = rank < counts[users]
    users, items = users[keep], items[keep]
    k = len(users)

    match = sampler.clusters[items] == user_clusters[users]
    rels, p_in, p_out = _rel_probabilities(ct)
    u01 = rng.random(k)
    rel_idx = np.where(match, np.searchsorted(np.cumsum(p_in), u01, side="right"),
                       np.searchsorted(np.cumsum(p_out), u01, side="right"))
    rel_idx = np.minimum(rel_idx, len(rels) - 1)
    stamps = joined[users] + (rng.random(k) * (until - joined[users])).astype(np.int64)
    scores = np.clip(np.rint(np.where(match, rng.normal(8.2, 1.0, k), rng.normal(5.8, 1.6, k))), 1, 10)
    unscored = rng.random(k) < UNSCORED_SHARE
    scored_rel = [ct.edges[r].edge_property is not None for r in rels]  # the edge stores the user's score
    second = (rng.random(k) < 0.4).tolist() if user_accounts is not None else [False] * k
    out = []
    for u, i, r, t, s, no_score, other in zip(users.tolist(), items.tolist(), rel_idx.tolist(), stamps.tolist(),
                                              scores.tolist(), unscored.tolist(), second):
        row = {"user_uid": user_uids[u], "item_id": item_ids[i], "rel": rels[r], "created_at": t}
        if scored_rel[r] and not no_score:
            row["score"] = s
        if user_accounts is not None:
            labels = user_accounts[u]
            row["account"] = labels[1] if other and len(labels) > 1 else labels[0]
        out.append(row)
    return out


def demo_graph_generate(*, seed: int, users: int, items_per_type: int, interactions_per_user: float,
                        until: datetime, named_users: list[NamedUser] | tuple[NamedUser, ...] = ()) -> DemoGraph:
    """Generate the demo graph in memory (vectorised; 50k users x 20k items per type in seconds)."""
    if users < 0 or items_per_type < 1 or interactions_per_user <= 0:
        raise ValueError("users >= 0, items_per_type >= 1 and interactions_per_user > 0, please")
    started = time.perf_counter()
    item_seq, user_seq, named_seq = np.random.SeedSequence(seed).spawn(3)
    item_rng, rng, named_rng = (np.random.default_rng(s) for s in (item_seq, user_seq, named_seq))
    until_s = int(until.timestamp())
    items, meta, links = _items(item_rng, items_per_type)
    domains = _domains()

    # synthetic users
    clusters = rng.integers(CLUSTERS, size=users)
    activity = rng.pareto(ACTIVITY_PARETO, size=users) + 1.0
    low, high = len(domains), max(len(domains), 20 * interactions_per_user)
    scale = interactions_per_user / (activity.mean() if users else 1.0)
    for _ in range(8):  # rescale until the clipped totals average interactions_per_user again
        totals = np.clip(np.rint(activity * scale), low, high).astype(np.int64)
        if not users or abs(totals.mean() - interactions_per_user) < 0.01:
            break
        scale *= interactions_per_user / totals.mean()
    present = np.ones((users, len(domains)), dtype=bool)
    lacking = np.flatnonzero(rng.random(users) < MISSING_DOMAIN_SHARE)
    present[lacking, rng.integers(len(domains), size=len(lacking))] = False
    counts = _type_counts(rng, totals, present)
    joined = until_s - (rng.uniform(14, HISTORY_DAYS, size=users) * 86400).astype(np.int64)
    music = [MUSIC_ACCOUNTS[k] for k in rng.choice(len(MUSIC_ACCOUNTS), size=users, p=MUSIC_ACCOUNTS_P).tolist()]
    uids = [f"demo-{i + 1:06d}" for i in range(users)]
    user_rows = [
        {"uid": uids[i], "username": f"bud_{i + 1:06d}", "email": f"bud_{i + 1:06d}@example.com",
         "demo_taste": int(clusters[i]), "created_at": int(joined[i]),
         "accounts": _account_labels(present[i], domains, music[i])}
        for i in range(users)
    ]

    # the named demo logins, from their own stream
    named = list(named_users)
    n_clusters = named_rng.integers(CLUSTERS, size=len(named))
    n_joined = until_s - (named_rng.uniform(300, HISTORY_DAYS, size=len(named)) * 86400).astype(np.int64)
    n_counts = _named_counts(named, interactions_per_user)
    n_music = [MUSIC_ACCOUNTS[1]] * len(named)  # the demo logins have Spotify and Last.fm
    for k, u in enumerate(named):
        user_rows.append({"uid": u.uid, "username": u.username, "email": u.email, "demo_taste": int(n_clusters[k]),
                          "created_at": int(n_joined[k]),
                          "accounts": _account_labels(np.ones(len(domains), dtype=bool), domains, n_music[k])})

    interactions: dict[str, list[dict]] = {}
    for ct in CONTENT_TYPES:
        item_clusters, weights = meta[ct.key]
        sampler = _Sampler(item_clusters, weights)
        ids = [row[ct.id_property] for row in items[ct.key]]
        is_music = len(ct.accounts) > 1
        rows = _interactions(rng, ct, counts[ct.key], clusters, uids, joined, until_s, sampler, ids,
                             music if is_music else None)
        if named:
            rows += _interactions(named_rng, ct, n_counts[ct.key], n_clusters, [u.uid for u in named], n_joined,
                                  until_s, sampler, ids, n_music if is_music else None)
        interactions[ct.key] = rows
    return DemoGraph(items=items, users=user_rows, interactions=interactions, links=links,
                     seconds=time.perf_counter() - started)


def _account_labels(present: np.ndarray, domains: list[str], music: tuple[str, ...]) -> list[str]:
    """The accounts of a user with history in the `present` domains: each type's account, the music ones given."""
    labels: set[str] = set()
    for ct in CONTENT_TYPES:
        if present[domains.index(ct.domain)]:
            labels.update(music if len(ct.accounts) > 1 else (ct.account.label,))
    return sorted(labels)


# ---------------------------------------------------------------------------------------------- writes
def _bar(desc: str, total: int, enabled: bool):
    return tqdm(total=total, desc=desc, unit="row", disable=not enabled, file=sys.stderr, mininterval=0.5,
                dynamic_ncols=True)


def demo_graph_write(*, demo: DemoGraph, progress: bool = True) -> DemoWriteReport:
    """Write a generated demo graph: items, users with accounts, then every type's edges (all MERGE)."""
    started = time.perf_counter()
    items: dict[str, int] = {}
    for ct in CONTENT_TYPES:
        with _bar(f"{ct.key} items", len(demo.items[ct.key]), progress) as bar:
            items[ct.key] = items_upsert(content_type=ct, rows=demo.items[ct.key], progress=bar)
    accounts = sum(len(u["accounts"]) for u in demo.users)
    with _bar("users", len(demo.users) + accounts, progress) as bar:
        users = users_upsert(rows=demo.users, progress=bar)
    by_key = {ct.key: ct for ct in CONTENT_TYPES}
    for key, rel, target, link_rows in demo.links:
        with _bar(f"{key} {rel}", len(link_rows), progress) as bar:
            item_links_upsert(content_type=by_key[key], rel=rel, target=by_key[target], rows=link_rows, progress=bar)
    edge_started = time.perf_counter()
    edges: dict[str, dict[str, int]] = {}
    with _bar("edges", demo.interaction_count, progress) as bar:
        for ct in CONTENT_TYPES:
            bar.set_description(f"{ct.key} edges")
            edges[ct.key] = interactions_upsert(content_type=ct, rows=demo.interactions[ct.key], progress=bar)
    finished = time.perf_counter()
    return DemoWriteReport(items=items, users=users, edges=edges, seconds=finished - started,
                           edge_seconds=finished - edge_started)


def parent_users_exist() -> bool:
    """Whether the graph has any app user (seed_demo --if-empty then does nothing)."""
    return bool(graph.read("MATCH (p:ParentUser) RETURN 1 AS one LIMIT 1"))


def _parent_uid_for(username: str) -> str | None:
    rows = graph.read("MATCH (p:ParentUser {username: $username}) RETURN p.uid AS uid", username=username)
    return rows[0]["uid"] if rows else None


def demo_named_users(*, admin_username: str, user_username: str) -> list[NamedUser]:
    """The demo logins as ParentUsers: an existing ParentUser of that username is reused (its email kept)."""
    if admin_username == user_username:
        raise ValueError(f"the demo admin and demo user need different usernames (both are {admin_username!r})")
    named = []
    for username, full in ((admin_username, False), (user_username, True)):
        existing = _parent_uid_for(username)
        named.append(NamedUser(username=username, uid=existing or f"demo-{username}",
                               email=None if existing else f"{username}@example.com", full=full))
    return named


def demo_auth_users_ensure(*, admin_username: str, admin_password: str | None, user_username: str,
                           user_password: str | None) -> list[AuthUserResult]:
    """Create the staff and the normal Django login if missing; an existing user is left as it is (its
    password is never reset). A password not given is generated and returned (to be printed once)."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    results = []
    for username, password, staff, env in ((admin_username, admin_password, True, "MUSICBUD_DEMO_ADMIN_PASSWORD"),
                                           (user_username, user_password, False, "MUSICBUD_DEMO_USER_PASSWORD")):
        user = User.objects.filter(username=username).first()
        if user is not None:
            results.append(AuthUserResult(username=username, created=False, staff=user.is_staff))
            continue
        generated = password is None
        password = password or secrets.token_urlsafe(12)
        User.objects.create_user(username=username, email=f"{username}@example.com", password=password,
                                 is_staff=staff)
        results.append(AuthUserResult(username=username, created=True, staff=staff,
                                      password=password if generated else None,
                                      password_source="generated" if generated else f"from {env}"))
    return results


def demo_until_default() -> datetime:
    """Today at 00:00 UTC: the end of the demo's two years of history."""
    now = datetime.now(timezone.utc)
    return datetime(now.year, now.month, now.day, tzinfo=timezone.utc)


def demo_seed(*, seed: int = 42, users: int = 500, items_per_type: int = 400, interactions_per_user: float = 30,
              until: datetime | None = None, if_empty: bool = False, progress: bool = True,
              with_auth_users: bool = True) -> DemoSeedReport | None:
    """Generate and write the demo graph and its two logins; None when `if_empty` and users exist already.

    Logins: MUSICBUD_DEMO_ADMIN_USER (default "admin", staff) and MUSICBUD_DEMO_USER (default "demo"), with
    MUSICBUD_DEMO_ADMIN_PASSWORD / MUSICBUD_DEMO_USER_PASSWORD or generated passwords.
    """
    if if_empty and parent_users_exist():
        return None
    admin_username = os.environ.get("MUSICBUD_DEMO_ADMIN_USER") or "admin"
    user_username = os.environ.get("MUSICBUD_DEMO_USER") or "demo"
    named = demo_named_users(admin_username=admin_username, user_username=user_username)
    generated = demo_graph_generate(seed=seed, users=users, items_per_type=items_per_type,
                                    interactions_per_user=interactions_per_user,
                                    until=until or demo_until_default(), named_users=named)
    written = demo_graph_write(demo=generated, progress=progress)
    auth = []
    if with_auth_users:
        auth = demo_auth_users_ensure(
            admin_username=admin_username, admin_password=os.environ.get("MUSICBUD_DEMO_ADMIN_PASSWORD") or None,
            user_username=user_username, user_password=os.environ.get("MUSICBUD_DEMO_USER_PASSWORD") or None)
    return DemoSeedReport(generated=generated, written=written, auth_users=auth)


__all__ = [
    "DEMO_FORMAT", "DemoGraph", "DemoSeedReport", "DemoWriteReport", "NamedUser", "demo_auth_users_ensure", "demo_graph_generate",
    "demo_graph_write", "demo_named_users", "demo_seed", "demo_until_default", "parent_users_exist",
]
