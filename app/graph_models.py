"""The MusicBud graph as neomodel node classes (compatible with the existing MusicBud graph).

(ParentUser)-[:CONNECTED_TO_IMDB]->(ImdbUser)-[:LIKES|WATCHED|WANTS_TO_WATCH]->(ImdbMovie)
(ParentUser)-[:CONNECTED_TO_MAL]->(MalUser)-[:TOP_MANGA]->(Manga), -[:TOP_ANIME {score}]->(Anime)
(ParentUser)-[:CONNECTED_TO_SPOTIFY]->(SpotifyUser)-[:LIKES_TRACK|TOP_TRACK|SAVED_TRACK|PLAYED_TRACK]->(Track),
    -[:LIKES_ARTIST|TOP_ARTIST]->(Artist), -[:LIKES_ALBUM|SAVED_ALBUM]->(Album), -[:LIKES_GENRE|TOP_GENRE]->(Genre)

Every key has a uniqueness constraint (`manage.py install_constraints`). Bulk reads and writes do not go
through these classes (they use UNWIND batches, see app/services and app/importers); the classes declare the
schema, install its constraints and serve small lookups.
"""
from __future__ import annotations

from neomodel import (
    ArrayProperty,
    DateTimeProperty,
    FloatProperty,
    IntegerProperty,
    RelationshipTo,
    StringProperty,
    StructuredNode,
    StructuredRel,
)


class TimedRel(StructuredRel):
    created_at = DateTimeProperty(default_now=True)


class ScoredRel(TimedRel):
    score = FloatProperty()


class ImdbMovie(StructuredNode):
    imdb_id = StringProperty(unique_index=True, required=True)
    title = StringProperty()
    year = IntegerProperty()
    rating = FloatProperty()
    genres = ArrayProperty(StringProperty())
    plot = StringProperty()
    director = StringProperty()


class Manga(StructuredNode):
    manga_id = IntegerProperty(unique_index=True, required=True)
    title = StringProperty()
    genres = ArrayProperty(StringProperty())
    score = FloatProperty()
    synopsis = StringProperty()
    image_url = StringProperty()


class Anime(StructuredNode):
    anime_id = IntegerProperty(unique_index=True, required=True)
    title = StringProperty()
    genres = ArrayProperty(StringProperty())
    score = FloatProperty()
    episodes = IntegerProperty()
    type = StringProperty()
    image_url = StringProperty()


class Track(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    name = StringProperty()
    artists = ArrayProperty(StringProperty())
    album = StringProperty()
    duration_ms = IntegerProperty()
    popularity = IntegerProperty()


class Artist(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    name = StringProperty()
    genres = ArrayProperty(StringProperty())
    popularity = IntegerProperty()


class Album(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    name = StringProperty()
    artists = ArrayProperty(StringProperty())
    release_year = IntegerProperty()


class Genre(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    name = StringProperty()


class ImdbUser(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    likes = RelationshipTo(ImdbMovie, "LIKES", model=TimedRel)
    watched = RelationshipTo(ImdbMovie, "WATCHED", model=TimedRel)
    wants_to_watch = RelationshipTo(ImdbMovie, "WANTS_TO_WATCH", model=TimedRel)


class MalUser(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    top_manga = RelationshipTo(Manga, "TOP_MANGA", model=TimedRel)
    top_anime = RelationshipTo(Anime, "TOP_ANIME", model=ScoredRel)


class SpotifyUser(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    likes_track = RelationshipTo(Track, "LIKES_TRACK", model=TimedRel)
    top_track = RelationshipTo(Track, "TOP_TRACK", model=TimedRel)
    saved_track = RelationshipTo(Track, "SAVED_TRACK", model=TimedRel)
    played_track = RelationshipTo(Track, "PLAYED_TRACK", model=TimedRel)
    likes_artist = RelationshipTo(Artist, "LIKES_ARTIST", model=TimedRel)
    top_artist = RelationshipTo(Artist, "TOP_ARTIST", model=TimedRel)
    likes_album = RelationshipTo(Album, "LIKES_ALBUM", model=TimedRel)
    saved_album = RelationshipTo(Album, "SAVED_ALBUM", model=TimedRel)
    likes_genre = RelationshipTo(Genre, "LIKES_GENRE", model=TimedRel)
    top_genre = RelationshipTo(Genre, "TOP_GENRE", model=TimedRel)


class ParentUser(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    username = StringProperty(unique_index=True, required=True)
    email = StringProperty()
    imdb = RelationshipTo(ImdbUser, "CONNECTED_TO_IMDB")
    mal = RelationshipTo(MalUser, "CONNECTED_TO_MAL")
    spotify = RelationshipTo(SpotifyUser, "CONNECTED_TO_SPOTIFY")


NODE_CLASSES = (ParentUser, ImdbUser, MalUser, SpotifyUser, ImdbMovie, Manga, Anime, Track, Artist, Album, Genre)
