"""MovieLens importers: ml-latest-small (ratings.csv, movies.csv, links.csv) and ml-100k (u.data, u.item).

Mapping into the MusicBud graph:

- Movies become `ImdbMovie` nodes.
  - ml-latest-small: key `imdb_id` = "tt%07d" of links.csv's imdbId (every movie of movies.csv must have a
    link, and every link becomes a node); title "Toy Story (1995)" -> title "Toy Story", year 1995 (a title
    without a "(yyyy)" keeps its text and gets no year; a trailing English article is put back in front:
    "American President, The" -> "The American President"); genres split on '|' ("(no genres listed)" -> []).
  - ml-100k has no IMDb ids: its items are keyed "ml100k-<item id>" (still in `imdb_id`, the ImdbMovie key,
    so they never collide with real IMDb ids); genres from u.item's 19 flags (the "unknown" flag adds none);
    year from the title, else from the release date.
- Users become `ParentUser {uid: "ml-<userId>", username: "ml_<userId>"}` with an `ImdbUser` account
  (`CONNECTED_TO_IMDB`, dated by the user's first rating). ml-100k users are other people with the same
  numbers: they become "ml100k-<userId>" / "ml100k_<userId>".
- Ratings: one edge per rated (user, movie) pair. Every rating means the user watched the movie, and a
  rating >= 4 (of 5) means they liked it: rating >= 4 -> `LIKES` (weight 5), otherwise `WATCHED` (weight 3).
  `created_at` = the rating's timestamp. A pair rated twice in the file keeps its latest rating.

Both parsers read and check every line before returning; nothing is written until the whole import parsed.
"""
from __future__ import annotations

import csv
import re
from datetime import datetime
from pathlib import Path

from app.content_types import BY_KEY
from app.importers.common import ParsedImport
from app.importers.csv_errors import Cell, ImportFileError, parse_float, parse_int, records

MOVIES = BY_KEY["movies"]
LIKED_FROM = 4.0  # a rating at or above this (of 5) is a LIKES edge, anything lower a WATCHED edge

# u.genre, in u.item's flag order
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
ML100K_ITEM_COLUMNS = ("movie_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES)
ML100K_DATA_COLUMNS = ("user_id", "item_id", "rating", "timestamp")

_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")
_TRAILING_ARTICLE = re.compile(r"^(?P<rest>.+), (?P<article>The|A|An)(?P<tail>(?: \(.*\))?)$")


def movie_title_split(raw: str) -> tuple[str, int | None]:
    """"Toy Story (1995)" -> ("Toy Story", 1995); "American President, The (1995)" -> ("The American
    President", 1995); "Babylon 5" -> ("Babylon 5", None)."""
    text = raw.strip()
    year = None
    match = _TITLE_YEAR.match(text)
    if match:
        text, year = match["title"].strip(), int(match["year"])
    article = _TRAILING_ARTICLE.match(text)
    if article:
        text = f"{article['article']} {article['rest']}{article['tail']}"
    return text, year


def _user_rows(prefix: str, first_seen: dict[int, int]) -> list[dict]:
    uname = prefix.replace("-", "_")
    return [
        {"uid": f"{prefix}{user}", "username": f"{uname}{user}", "accounts": [MOVIES.account.label],
         "created_at": first_seen[user]}
        for user in sorted(first_seen)
    ]


def _interaction_rows(prefix: str, latest: dict[tuple[int, str], tuple[int, float]]) -> list[dict]:
    return [
        {"user_uid": f"{prefix}{user}", "item_id": item, "rel": "LIKES" if rating >= LIKED_FROM else "WATCHED",
         "created_at": ts}
        for (user, item), (ts, rating) in sorted(latest.items())
    ]


def _ratings(rows, *, movie_key: dict[int, str], movie_file: str, rating_range: tuple[float, float],
             integer_ratings: bool, fields: tuple[str, str, str, str]):
    """(first rating time per user, latest (time, rating) per (user, imdb id)) from (where, record) rows."""
    user_f, movie_f, rating_f, time_f = fields
    first_seen: dict[int, int] = {}
    latest: dict[tuple[int, str], tuple[int, float]] = {}
    low, high = rating_range
    for where, rec in rows:
        user = parse_int(rec[user_f], where=where, field=user_f, minimum=1)
        movie = parse_int(rec[movie_f], where=where, field=movie_f)
        if integer_ratings:
            rating = float(parse_int(rec[rating_f], where=where, field=rating_f))
            if not low <= rating <= high:
                raise where.error(f"{rating_f} {rating:g} is out of range {low:g}..{high:g}")
        else:
            rating = parse_float(rec[rating_f], where=where, field=rating_f, minimum=low, maximum=high)
        ts = parse_int(rec[time_f], where=where, field=time_f, minimum=0)
        key = movie_key.get(movie)
        if key is None:
            raise where.error(f"{movie_f} {movie} is not in {movie_file}")
        if user not in first_seen or ts < first_seen[user]:
            first_seen[user] = ts
        pair = (user, key)
        previous = latest.get(pair)
        if previous is None or ts >= previous[0]:
            latest[pair] = (ts, rating)
    return first_seen, latest


def movielens_latest_parse(*, ratings: Path, movies: Path, links: Path) -> ParsedImport:
    """Parse and check ml-latest-small's three files (see the module docstring for the mapping)."""
    imdb_by_movie: dict[int, str] = {}
    link_where: dict[int, Cell] = {}
    for where, rec in records(links, required=("movieId", "imdbId")):
        movie = parse_int(rec["movieId"], where=where, field="movieId")
        imdb = parse_int(rec["imdbId"], where=where, field="imdbId", minimum=1)
        if movie in imdb_by_movie:
            raise where.error(f"movieId {movie} is linked twice (first at line {link_where[movie].line})")
        imdb_by_movie[movie] = f"tt{imdb:07d}"
        link_where[movie] = where

    items: dict[str, dict] = {}
    seen_movies: dict[int, Cell] = {}
    for where, rec in records(movies, required=("movieId", "title", "genres")):
        movie = parse_int(rec["movieId"], where=where, field="movieId")
        if movie in seen_movies:
            raise where.error(f"movieId {movie} appears twice (first at line {seen_movies[movie].line})")
        seen_movies[movie] = where
        imdb_id = imdb_by_movie.get(movie)
        if imdb_id is None:
            raise where.error(f"movieId {movie} has no link in {Path(links).name}")
        title, year = movie_title_split(rec["title"])
        genres = [g.strip() for g in rec["genres"].split("|") if g.strip() and g.strip() != "(no genres listed)"]
        items.setdefault(imdb_id, {"imdb_id": imdb_id, "title": title or None, "year": year, "genres": genres})
    for movie, imdb_id in imdb_by_movie.items():  # a link without a movies.csv row still names a movie
        items.setdefault(imdb_id, {"imdb_id": imdb_id})

    first_seen, latest = _ratings(
        records(ratings, required=("userId", "movieId", "rating", "timestamp")),
        movie_key=imdb_by_movie, movie_file=Path(links).name, rating_range=(0.5, 5.0), integer_ratings=False,
        fields=("userId", "movieId", "rating", "timestamp"),
    )
    interactions = _interaction_rows("ml-", latest)
    return ParsedImport(content_type=MOVIES, items=list(items.values()), users=_user_rows("ml-", first_seen),
                        interactions=interactions, interaction_count=len(interactions))


def _release_year(value: str) -> int | None:
    try:
        return datetime.strptime(value.strip(), "%d-%b-%Y").year
    except ValueError:
        return None


def movielens_100k_parse(*, directory: Path) -> ParsedImport:
    """Parse and check ml-100k's u.item (latin-1, '|') and u.data (tab-separated), see the module docstring."""
    directory = Path(directory)
    item_file, data_file = directory / "u.item", directory / "u.data"
    items: dict[str, dict] = {}
    key_by_item: dict[int, str] = {}
    for where, rec in records(item_file, encoding="latin-1", delimiter="|", columns=ML100K_ITEM_COLUMNS,
                              quoting=csv.QUOTE_NONE):
        item = parse_int(rec["movie_id"], where=where, field="movie id", minimum=1)
        if item in key_by_item:
            raise where.error(f"movie id {item} appears twice")
        genres = []
        for name in ML100K_GENRES:
            flag = rec[name].strip()
            if flag not in ("0", "1"):
                raise where.error(f"genre flag {name} {rec[name]!r} is not 0 or 1")
            if flag == "1" and name != "unknown":
                genres.append(name)
        title, year = movie_title_split(rec["title"])
        key = f"ml100k-{item}"
        key_by_item[item] = key
        items[key] = {"imdb_id": key, "title": title or None, "year": year or _release_year(rec["release_date"]),
                      "genres": genres}

    first_seen, latest = _ratings(
        records(data_file, encoding="latin-1", delimiter="\t", columns=ML100K_DATA_COLUMNS, quoting=csv.QUOTE_NONE),
        movie_key=key_by_item, movie_file=item_file.name, rating_range=(1.0, 5.0), integer_ratings=True,
        fields=ML100K_DATA_COLUMNS,
    )
    interactions = _interaction_rows("ml100k-", latest)
    return ParsedImport(content_type=MOVIES, items=list(items.values()), users=_user_rows("ml100k-", first_seen),
                        interactions=interactions, interaction_count=len(interactions))


__all__ = ["ImportFileError", "movie_title_split", "movielens_100k_parse", "movielens_latest_parse"]
