"""The MusicBud graph as neomodel node classes, in MusicBud's own shape (musicbud/backend app/db_models):
the same labels (a subclass carries its ancestors' labels: SpotifyTrack is :LikedItem:Track:SpotifyTrack),
keys and relationship types, so this service reads MusicBud's graph unchanged and what it writes is one.

(ParentUser)-[:CONNECTED_TO_IMDB]->(ImdbUser {user_id})-[:LIKES|WATCHED|WANTS_TO_WATCH|RATED]->(ImdbMovie {imdb_id})
(ParentUser)-[:CONNECTED_TO_MAL]->(:User:MalUser {user_id: int})-[:TOP_MANGA]->(Manga), -[:TOP_ANIME]->(Anime)
    (Anime|Manga)-[:HAS_PICTURE]->(MainPicture {medium, large})
(ParentUser)-[:CONNECTED_TO_SPOTIFY|CONNECTED_TO_LASTFM|CONNECTED_TO_YTMUSIC]->(:User:SpotifyUser|...)
    -[:LIKES_TRACK|TOP_TRACK|SAVED_TRACK|PLAYED_TRACK]->(:LikedItem:Track), -[:LIKES_ARTIST|TOP_ARTIST]->(Artist),
    -[:LIKES_ALBUM|SAVED_ALBUM]->(Album), -[:LIKES_GENRE|TOP_GENRE]->(Genre)
    (Track)-[:PERFORMED_BY]->(Artist), (Track)-[:BELONGS_TO|INCLUDED_IN]->(Album), (Album)-[:CREATED_BY]->(Artist),
    (Track|Artist|Album)-[:HAS_IMAGE]->(SpotifyImage {url})

MusicBud's edges carry no property; ours (the importers and the demo) carry `created_at`, and a score or rating
where the table weighs by one. Bulk reads and writes do not go through these classes (they use UNWIND batches,
see app/services and app/importers); the classes declare the schema (app/services/graph_schema.py derives its
indexes and constraints from their `unique_index` properties) and serve small lookups.
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


class RatedRel(TimedRel):
    rating = FloatProperty()


class MainPicture(StructuredNode):
    medium = StringProperty()
    large = StringProperty()


class SpotifyImage(StructuredNode):
    url = StringProperty(unique_index=True, required=True)
    height = IntegerProperty()
    width = IntegerProperty()


class ImdbMovie(StructuredNode):
    imdb_id = StringProperty(unique_index=True, required=True)
    title = StringProperty()
    year = IntegerProperty()
    rating = FloatProperty()
    genres = ArrayProperty(StringProperty())  # MusicBud's importer stores the text of a Python list here
    plot = StringProperty()
    director = StringProperty()


class Manga(StructuredNode):
    manga_id = IntegerProperty(unique_index=True, required=True)
    title = StringProperty()
    genres = ArrayProperty(StringProperty())
    score = FloatProperty()
    synopsis = StringProperty()
    image_url = StringProperty()
    main_picture = RelationshipTo(MainPicture, "HAS_PICTURE")


class Anime(StructuredNode):
    anime_id = IntegerProperty(unique_index=True, required=True)
    title = StringProperty()
    genres = ArrayProperty(StringProperty())
    score = FloatProperty()  # MAL's list score on the node (0: unscored); the weight of a TOP_ANIME without one
    status = StringProperty()
    episodes = IntegerProperty()
    type = StringProperty()
    image_url = StringProperty()
    main_picture = RelationshipTo(MainPicture, "HAS_PICTURE")


class LikedItem(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    name = StringProperty()


class Artist(LikedItem):
    genres = ArrayProperty(StringProperty())
    popularity = IntegerProperty()


class SpotifyArtist(Artist):
    spotify_id = StringProperty()
    images = RelationshipTo(SpotifyImage, "HAS_IMAGE")


class Album(LikedItem):
    release_date = StringProperty()


class SpotifyAlbum(Album):
    spotify_id = StringProperty()
    artists = RelationshipTo(Artist, "CREATED_BY")
    images = RelationshipTo(SpotifyImage, "HAS_IMAGE")


class Track(LikedItem):
    duration_ms = IntegerProperty()
    popularity = IntegerProperty()
    artists = RelationshipTo(Artist, "PERFORMED_BY")
    album = RelationshipTo(Album, "INCLUDED_IN")


class SpotifyTrack(Track):
    spotify_id = StringProperty()
    spotify_album = RelationshipTo(Album, "BELONGS_TO")
    images = RelationshipTo(SpotifyImage, "HAS_IMAGE")


class Genre(LikedItem):
    pass


class SpotifyGenre(Genre):
    pass


class ImdbUser(StructuredNode):
    user_id = StringProperty(unique_index=True, required=True)
    username = StringProperty()
    likes = RelationshipTo(ImdbMovie, "LIKES", model=TimedRel)
    watched = RelationshipTo(ImdbMovie, "WATCHED", model=TimedRel)
    wants_to_watch = RelationshipTo(ImdbMovie, "WANTS_TO_WATCH", model=TimedRel)
    rated = RelationshipTo(ImdbMovie, "RATED", model=RatedRel)


class User(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)


class MalUser(User):
    user_id = IntegerProperty(unique_index=True, required=True)
    top_manga = RelationshipTo(Manga, "TOP_MANGA", model=TimedRel)
    top_anime = RelationshipTo(Anime, "TOP_ANIME", model=ScoredRel)


class _MusicAccount(User):
    __abstract_node__ = True
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


class SpotifyUser(_MusicAccount):
    pass


class LastfmUser(_MusicAccount):
    pass


class YtmusicUser(_MusicAccount):
    pass


class ParentUser(StructuredNode):
    uid = StringProperty(unique_index=True, required=True)
    username = StringProperty(index=True, required=True)  # MusicBud declares no uniqueness on it
    email = StringProperty()
    imdb = RelationshipTo(ImdbUser, "CONNECTED_TO_IMDB")
    mal = RelationshipTo(MalUser, "CONNECTED_TO_MAL")
    spotify = RelationshipTo(SpotifyUser, "CONNECTED_TO_SPOTIFY")
    lastfm = RelationshipTo(LastfmUser, "CONNECTED_TO_LASTFM")
    ytmusic = RelationshipTo(YtmusicUser, "CONNECTED_TO_YTMUSIC")


NODE_CLASSES = (ParentUser, ImdbUser, User, MalUser, SpotifyUser, LastfmUser, YtmusicUser, ImdbMovie, Manga, Anime,
                MainPicture, LikedItem, Track, SpotifyTrack, Artist, SpotifyArtist, Album, SpotifyAlbum, Genre,
                SpotifyGenre, SpotifyImage)
