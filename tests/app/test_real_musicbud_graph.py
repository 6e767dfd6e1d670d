"""The service on a graph written exactly as MusicBud's own backend writes it (musicbud/backend app/db_models,
read for this test): neomodel's inherited labels (:LikedItem:Track:SpotifyTrack, :User:MalUser), its keys
(ImdbUser.user_id a string, MalUser.user_id an int, no uid on ImdbUser), edges without any property, anime
scored on the node, pictures on MainPicture nodes, images on SpotifyImage nodes, artists and albums linked to
tracks, genres stored as the text of a Python list, SpotifyGenre nodes without the Genre label, and music
through three kinds of account. Nothing is written through the service's own writers."""
from __future__ import annotations

import orjson
import pytest
from asgiref.sync import async_to_sync
from django.conf import settings

from app import graph
from app.content_types import BY_KEY
from app.services import recommendation_data_service as data
from app.services.model_registry import registry

pytestmark = pytest.mark.neo4j

USERS = [f"u{i:02d}" for i in range(12)]  # u00..u05 like the "even" items, u06..u11 the "odd" ones

MUSICBUD_GRAPH = """
UNWIND range(0, 11) AS n
WITH n, 'u' + right('0' + toString(n), 2) AS name
CREATE (p:ParentUser {uid: name + '0000000000000000000000000000', username: name, email: name + '@example.com'})
CREATE (p)-[:CONNECTED_TO_IMDB]->(:ImdbUser {user_id: 'imdb-' + name, username: name})
CREATE (p)-[:CONNECTED_TO_MAL]->(:User:MalUser {uid: 'mal' + name, user_id: 1000 + n, name: name})
WITH p, n, name
CALL (p, n, name) {
  WITH p, n, name WHERE n % 3 = 0
  CREATE (p)-[:CONNECTED_TO_SPOTIFY]->(:User:SpotifyUser {uid: 'sp' + name, spotify_id: 'sp-' + name})
  UNION
  WITH p, n, name WHERE n % 3 = 1
  CREATE (p)-[:CONNECTED_TO_LASTFM]->(:User:LastfmUser {uid: 'lf' + name, username: name})
  UNION
  WITH p, n, name WHERE n % 3 = 2
  CREATE (p)-[:CONNECTED_TO_YTMUSIC]->(:User:YtmusicUser {uid: 'yt' + name, channel_handle: name})
  CREATE (p)-[:CONNECTED_TO_SPOTIFY]->(:User:SpotifyUser {uid: 'sp' + name, spotify_id: 'sp-' + name})
}
RETURN count(*) AS users
"""

ITEMS = """
UNWIND range(0, 7) AS k
CREATE (m:ImdbMovie {imdb_id: '011116' + toString(k), title: 'Movie ' + toString(k), year: 1990 + k,
                     genres: CASE k % 2 WHEN 0 THEN "['Drama', 'Crime']" ELSE "['Comedy']" END})
CREATE (a:Anime {uid: 'anime' + toString(k), anime_id: 20 + k, title: 'Anime ' + toString(k), score: k})
CREATE (a)-[:HAS_PICTURE]->(:MainPicture {medium: 'https://cdn/a' + toString(k) + 'm.jpg',
                                          large: 'https://cdn/a' + toString(k) + 'l.jpg'})
CREATE (mg:Manga {uid: 'manga' + toString(k), manga_id: 30 + k, title: 'Manga ' + toString(k)})
CREATE (mg)-[:HAS_PICTURE]->(:MainPicture {medium: 'https://cdn/m' + toString(k) + 'm.jpg'})
CREATE (ar:LikedItem:Artist:SpotifyArtist {uid: 'artist' + toString(k), name: 'Artist ' + toString(k),
                                           genres: ['pop'], spotify_id: 'sa' + toString(k)})
CREATE (al:LikedItem:Album:SpotifyAlbum {uid: 'album' + toString(k), name: 'Album ' + toString(k),
                                         release_date: '200' + toString(k) + '-05-01'})
CREATE (t:LikedItem:Track:SpotifyTrack {uid: 'track' + toString(k), name: 'Track ' + toString(k),
                                        spotify_id: 'st' + toString(k), duration_ms: 200000})
CREATE (t)-[:PERFORMED_BY]->(ar), (t)-[:BELONGS_TO]->(al), (al)-[:CREATED_BY]->(ar)
CREATE (t)-[:HAS_IMAGE]->(:SpotifyImage {url: 'https://i.scdn/t' + toString(k), height: 640, width: 640})
CREATE (:SpotifyGenre {uid: '0000000' + toString(k) + '-aaaa-bbbb-cccc-dddddddddddd', name: 'Genre ' + toString(k)})
"""

# Each user likes three of the four items of their parity in every type, through whichever accounts they have.
EDGES = """
MATCH (p:ParentUser) WITH p, toInteger(right(p.username, 2)) AS n
UNWIND [0, 1, 2] AS j
WITH p, n, (n % 2) + 2 * ((n + j) % 4) AS k
MATCH (p)-[:CONNECTED_TO_IMDB]->(i:ImdbUser), (m:ImdbMovie {imdb_id: '011116' + toString(k)})
MATCH (p)-[:CONNECTED_TO_MAL]->(mal:MalUser), (a:Anime {anime_id: 20 + k}), (mg:Manga {manga_id: 30 + k})
MATCH (p)-[:CONNECTED_TO_SPOTIFY|CONNECTED_TO_LASTFM|CONNECTED_TO_YTMUSIC]->(music)
MATCH (t:Track {uid: 'track' + toString(k)}), (ar:Artist {uid: 'artist' + toString(k)}),
      (al:Album {uid: 'album' + toString(k)}), (g:SpotifyGenre {name: 'Genre ' + toString(k)})
MERGE (i)-[:LIKES]->(m)
MERGE (mal)-[:TOP_ANIME]->(a)
MERGE (mal)-[:TOP_MANGA]->(mg)
MERGE (music)-[:LIKES_TRACK]->(t)
MERGE (music)-[:TOP_ARTIST]->(ar)
MERGE (music)-[:SAVED_ALBUM]->(al)
MERGE (music)-[:LIKES_GENRE]->(g)
"""


@pytest.fixture(scope="module")
def musicbud_graph(neo4j, tmp_path_factory):
    from app.services.training import models_train

    graph.query("MATCH (n) DETACH DELETE n")
    settings.MUSICBUD_MODEL_DIR = tmp_path_factory.mktemp("models")
    registry.__init__()
    graph.query(MUSICBUD_GRAPH)
    graph.query(ITEMS)
    graph.query(EDGES)
    assert graph.query("MATCH ()-[r]->() WHERE size(keys(r)) > 0 RETURN count(r) AS n") == [{"n": 0}]
    results = models_train()
    assert all(results.values()), results
    return results


def _recommended(username: str, key: str, n: int = 5) -> list[dict]:
    from app.services.recommendation_service import recommendations_for_user

    return orjson.loads(async_to_sync(recommendations_for_user)(username=username, content_type=key, n=n).json.text)


def test_anime_are_weighted_by_the_nodes_score_then_the_default_when_the_edges_carry_none(musicbud_graph):
    anime = data.interactions_for(content_type=BY_KEY["anime"])
    weights = {(u, i): w for u, row in zip(anime.user_ids, anime.matrix) for i, w in
               zip((anime.item_ids[c] for c in row.indices), row.data)}
    # u00 has anime 20, 22 and 24: node scores 0 (unscored: the default 5), 2 and 4
    uid = "u00" + "0" * 28
    assert {weights[(uid, str(k))] for k in (20, 22, 24)} == {5.0, 2.0, 4.0}


def test_music_from_spotify_lastfm_and_ytmusic_accounts_is_one_history(musicbud_graph):
    tracks = data.interactions_for(content_type=BY_KEY["tracks"])
    assert len(tracks.user_ids) == 12  # every user, whatever their kind of account
    assert all(tracks.matrix[row].nnz == 3 for row in range(12))


def test_movies_come_with_their_genres_parsed_from_musicbuds_stringified_lists(musicbud_graph):
    for item in _recommended("u00", "movies"):
        assert item["genres"] in (["Drama", "Crime"], ["Comedy"]) and item["title"].startswith("Movie")


def test_anime_and_manga_come_with_the_image_of_their_main_picture(musicbud_graph):
    items = _recommended("u01", "anime")
    assert items and all(i["image_url"].startswith("https://cdn/a") and i["image_url"].endswith("l.jpg")
                         for i in items)
    assert all(i["main_picture"] and set(i["main_picture"][0]) == {"medium", "large"} for i in items)
    manga = _recommended("u01", "manga")  # only a medium picture: that one
    assert manga and all(i["image_url"].endswith("m.jpg") and i["genres"] == [] for i in manga)


def test_tracks_come_with_their_artists_album_and_image_from_related_nodes(musicbud_graph):
    items = _recommended("u02", "tracks")
    assert items
    for item in items:
        k = item["id"].removeprefix("track")
        assert item["artists"] == [f"Artist {k}"] and item["artist"] == f"Artist {k}"
        assert item["album"] == f"Album {k}" and item["image_url"] == f"https://i.scdn/t{k}"
        assert item["images"] == [{"url": f"https://i.scdn/t{k}", "height": 640, "width": 640}]
        assert item["name"] == item["title"] == f"Track {k}"


def test_albums_name_their_artists_and_year_and_genres_without_the_genre_label_are_served(musicbud_graph):
    albums = _recommended("u03", "albums")
    assert albums and all(a["artists"] == [f"Artist {a['id'][5:]}"] and a["release_year"] == 2000 + int(a["id"][5:])
                          for a in albums)
    genres = _recommended("u03", "genres")
    assert genres and all(g["name"].startswith("Genre ") for g in genres)
    assert {g["reason"] for g in genres} == {"personalised"}


def test_a_user_gets_the_items_of_their_own_parity(musicbud_graph):
    for key, prefix in (("movies", "011116"), ("anime", "2"), ("tracks", "track")):
        item = _recommended("u04", key, n=1)[0]
        assert int(item["id"].removeprefix(prefix)) % 2 == 0, (key, item["id"])
