"""MyAnimeList importers: anime catalogues with user ratings, and manga catalogues.

Anime (`import_mal`), keyed by MAL anime id (`Anime.anime_id`, an integer):
- Kaggle "Anime Recommendations Database" anime.csv: anime_id,name,genre,type,episodes,rating,members
  (CRLF; HTML entities such as &#039; are unescaped; genre is ", "-separated; episodes "Unknown" -> none;
  `rating`, MAL's mean score, becomes `score`; members is not stored).
- Jikan anime_popular_jikan.csv: item_id,title,genres,description,image_url (genres '|'-separated); gives
  `image_url` and fills what anime.csv lacks. The synopsis has no place on Anime nodes and is not stored.
- Ratings user_id,anime_id,rating (the Kaggle rating.csv layout): every row becomes a `TOP_ANIME` edge from
  the user's MalUser account. A rating 1-10 is stored as the edge's `score` (its weight); -1 ("watched, not
  rated") is stored without a score, so the edge weighs the default 5.0. A pair rated twice keeps its last
  row. Ratings on an anime that none of the given catalogues contains are skipped (and counted): a node with
  no title is no recommendation. Users become `ParentUser {uid: "mal-<user_id>", username: "mal_<user_id>"}`.
  The file has no dates: edges and accounts get the time of their first import, kept by later imports.

Manga (`import_manga`), keyed by MAL manga id (`Manga.manga_id`):
- manga_popular_jikan.csv: item_id,title,genres,description,image_url (genres '|'-separated, description ->
  synopsis);
- manga_jikan_by_id.csv: id,title,synopsis,genres,score,image_url (genres space-separated: multi-word names
  such as "Slice of Life" or "Award Winning" are recognised from MAL's genre list and from the '|' files).

Several catalogue files merge in the order given: the first file with a value for a property wins, later
files only fill what is missing; in the graph, too, imports only fill properties a node lacks (items_upsert
fill_only), so a second import of any file changes nothing.
"""
from __future__ import annotations

import csv
import html
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from app.content_types import BY_KEY
from app.importers.common import ParsedImport
from app.importers.csv_errors import ImportFileError, optional_float, parse_float, parse_int, records

ANIME = BY_KEY["anime"]
MANGA = BY_KEY["manga"]

KAGGLE_ANIME_COLUMNS = ("anime_id", "name", "genre", "type", "episodes", "rating", "members")
JIKAN_COLUMNS = ("item_id", "title", "genres", "description", "image_url")
MANGA_BY_ID_COLUMNS = ("id", "title", "synopsis", "genres", "score", "image_url")
RATING_COLUMNS = ("user_id", "anime_id", "rating")
UNRATED = -1

# MAL genre, theme and demographic names of more than one word (for space-separated genre lists)
MAL_MULTIWORD_GENRES = (
    "Adult Cast", "Avant Garde", "Award Winning", "Boys Love", "Combat Sports", "Gag Humor", "Girls Love",
    "High Stakes Game", "Idols (Female)", "Idols (Male)", "Love Polygon", "Love Status Quo", "Magical Sex Shift",
    "Mahou Shoujo", "Martial Arts", "Organized Crime", "Otaku Culture", "Performing Arts", "Reverse Harem",
    "Romantic Subtext", "Slice of Life", "Strategy Game", "Super Power", "Team Sports", "Time Travel",
    "Urban Fantasy", "Video Game", "Visual Arts",
)


def _text(value: str) -> str | None:
    text = html.unescape(value).strip()
    return text or None


def _split(value: str, sep: str) -> list[str]:
    return [g for g in (html.unescape(part).strip() for part in value.split(sep)) if g]


def genres_from_words(value: str, *, multiword: Sequence[str] = MAL_MULTIWORD_GENRES) -> list[str]:
    """"Action Award Winning Slice of Life" -> ["Action", "Award Winning", "Slice of Life"] (longest known
    phrase first, else one word)."""
    words = html.unescape(value).split()
    phrases = {tuple(p.split()) for p in multiword}
    longest = max((len(p) for p in phrases), default=1)
    out: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            if n == 1 or tuple(words[i:i + n]) in phrases:
                out.append(" ".join(words[i:i + n]))
                i += n
                break
    return out


def _merge(into: dict[int, dict], key_field: str, key: int, props: dict) -> None:
    """Add one catalogue row: the first non-empty value of each property wins."""
    row = into.setdefault(key, {key_field: key})
    for name, value in props.items():
        if value is None or value == []:
            continue
        row.setdefault(name, value)


def _header(path: Path) -> tuple[str, ...]:
    """The column names on a file's first line."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            first = next(csv.reader(f), [])
    except OSError as exc:
        raise ImportFileError(path, None, f"cannot be read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ImportFileError(path, 1, f"unreadable header ({exc})") from None
    return tuple(h.strip() for h in first)


def _same_columns(header: Sequence[str], expected: Sequence[str]) -> bool:
    return set(header) == set(expected)


def _unknown_layout(path: Path, header: Sequence[str], *layouts: Sequence[str]) -> ImportFileError:
    expected = " or ".join(",".join(c) for c in layouts)
    return ImportFileError(path, 1, f"unknown columns {','.join(header)!r}; expected {expected}")


def anime_catalogue_parse(*, paths: Sequence[Path]) -> dict[int, dict]:
    """anime_id -> Anime properties merged from Kaggle anime.csv and/or Jikan files, in the order given."""
    anime: dict[int, dict] = {}
    for path in paths:
        header = _header(path)
        if _same_columns(header, KAGGLE_ANIME_COLUMNS):
            for where, rec in records(path, required=KAGGLE_ANIME_COLUMNS):
                key = parse_int(rec["anime_id"], where=where, field="anime_id", minimum=1)
                episodes_text = rec["episodes"].strip()
                if episodes_text in ("", "Unknown"):
                    episodes = None
                else:
                    episodes = parse_int(episodes_text, where=where, field="episodes", minimum=0)
                _merge(anime, "anime_id", key, {
                    "title": _text(rec["name"]),
                    "genres": _split(rec["genre"], ","),
                    "type": _text(rec["type"]),
                    "episodes": episodes,
                    "score": optional_float(rec["rating"], where=where, field="rating", minimum=0, maximum=10),
                })
        elif _same_columns(header, JIKAN_COLUMNS):
            for where, rec in records(path, required=JIKAN_COLUMNS):
                key = parse_int(rec["item_id"], where=where, field="item_id", minimum=1)
                _merge(anime, "anime_id", key, {
                    "title": _text(rec["title"]),
                    "genres": _split(rec["genres"], "|"),
                    "image_url": _text(rec["image_url"]),
                })
        else:
            raise _unknown_layout(path, header, KAGGLE_ANIME_COLUMNS, JIKAN_COLUMNS)
    return anime


def _ratings_parse(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user ids, anime ids, ratings) of a ratings file, one row per pair (the last one), sorted by pair."""
    keys = array("q")
    ratings = array("b")
    for where, rec in records(path, required=RATING_COLUMNS):
        user = parse_int(rec["user_id"], where=where, field="user_id", minimum=1)
        anime = parse_int(rec["anime_id"], where=where, field="anime_id", minimum=1)
        rating = parse_float(rec["rating"], where=where, field="rating", minimum=UNRATED, maximum=10)
        if rating != UNRATED and not (1 <= rating <= 10 and rating == int(rating)):
            raise where.error(f"rating {rating:g} is neither -1 (watched, unrated) nor an integer 1..10")
        if user >= 2**31 or anime >= 2**31:
            raise where.error("user_id and anime_id must be below 2147483648")
        keys.append((user << 32) | anime)
        ratings.append(int(rating))
    key_arr = np.frombuffer(keys, dtype=np.int64) if len(keys) else np.zeros(0, dtype=np.int64)
    rating_arr = np.frombuffer(ratings, dtype=np.int8) if len(ratings) else np.zeros(0, dtype=np.int8)
    # the last row of each pair: unique over the reversed arrays keeps the first = last occurrence
    unique, first_in_reversed = np.unique(key_arr[::-1], return_index=True)
    last = len(key_arr) - 1 - first_in_reversed
    return (unique >> 32).astype(np.int64), (unique & 0xFFFFFFFF).astype(np.int64), rating_arr[last]


def _anime_interactions(users: np.ndarray, anime: np.ndarray, ratings: np.ndarray) -> Iterator[dict]:
    for user, item, rating in zip(users.tolist(), anime.tolist(), ratings.tolist()):
        yield {"user_uid": f"mal-{user}", "item_id": item, "rel": "TOP_ANIME",
               "score": None if rating == UNRATED else float(rating)}


def mal_parse(*, anime: Sequence[Path], ratings: Path | None = None) -> ParsedImport:
    """Anime catalogues (at least one) and optionally a ratings file, fully checked (see module docstring)."""
    if not anime:
        raise ImportFileError("--anime", None, "give at least one anime catalogue file")
    catalogue = anime_catalogue_parse(paths=anime)
    parsed = ParsedImport(content_type=ANIME, items=[catalogue[k] for k in sorted(catalogue)], fill_only=True)
    if ratings is None:
        return parsed
    users, items, scores = _ratings_parse(ratings)
    known = np.isin(items, np.fromiter(catalogue, dtype=np.int64, count=len(catalogue)))
    skipped = int((~known).sum())
    if skipped:
        parsed.notes.append(
            f"skipped {skipped:,} of {len(items):,} rated (user, anime) pairs: {len(np.unique(items[~known])):,} "
            f"anime ids are in none of the catalogues given")
    users, items, scores = users[known], items[known], scores[known]
    parsed.users = [{"uid": f"mal-{u}", "username": f"mal_{u}", "accounts": {ANIME.account.label: int(u)}}
                    for u in np.unique(users).tolist()]
    parsed.interactions = _anime_interactions(users, items, scores)
    parsed.interaction_count = len(users)
    return parsed


def manga_parse(*, files: Sequence[Path]) -> ParsedImport:
    """Manga catalogues (Jikan '|' layout and/or the by-id space-separated layout), merged in order."""
    if not files:
        raise ImportFileError("--file", None, "give at least one manga catalogue file")
    layouts = {}
    multiword = set(MAL_MULTIWORD_GENRES)
    for path in files:
        header = _header(path)
        if _same_columns(header, JIKAN_COLUMNS):
            layouts[path] = "jikan"
        elif _same_columns(header, MANGA_BY_ID_COLUMNS):
            layouts[path] = "by_id"
        else:
            raise _unknown_layout(path, header, JIKAN_COLUMNS, MANGA_BY_ID_COLUMNS)
    manga: dict[int, dict] = {}
    jikan_rows: dict[Path, list] = {}
    for path in files:  # the '|' files first: their multi-word genre names help split the space-separated ones
        if layouts[path] == "jikan":
            rows = []
            for where, rec in records(path, required=JIKAN_COLUMNS):
                key = parse_int(rec["item_id"], where=where, field="item_id", minimum=1)
                genres = _split(rec["genres"], "|")
                multiword.update(g for g in genres if " " in g)
                rows.append((key, {"title": _text(rec["title"]), "genres": genres,
                                   "synopsis": _text(rec["description"]), "image_url": _text(rec["image_url"])}))
            jikan_rows[path] = rows
    for path in files:  # merge in the order given
        if layouts[path] == "jikan":
            for key, props in jikan_rows[path]:
                _merge(manga, "manga_id", key, props)
        else:
            for where, rec in records(path, required=MANGA_BY_ID_COLUMNS):
                key = parse_int(rec["id"], where=where, field="id", minimum=1)
                _merge(manga, "manga_id", key, {
                    "title": _text(rec["title"]),
                    "synopsis": _text(rec["synopsis"]),
                    "genres": genres_from_words(rec["genres"], multiword=tuple(multiword)),
                    "score": optional_float(rec["score"], where=where, field="score", minimum=0, maximum=10),
                    "image_url": _text(rec["image_url"]),
                })
    return ParsedImport(content_type=MANGA, items=[manga[k] for k in sorted(manga)], fill_only=True)
