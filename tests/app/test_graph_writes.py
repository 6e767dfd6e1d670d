"""app/services/graph_writes.py: the generic bulk writers, against the throwaway Neo4j."""
from datetime import datetime, timezone

import pytest

from app import graph
from app.content_types import BY_KEY, CONTENT_TYPES, DEFAULT_SCORE_WEIGHT, account_pattern, weight_expression
from app.services.graph_writes import (
    GraphWriteError,
    account_key,
    interactions_upsert,
    item_links_upsert,
    items_upsert,
    users_upsert,
)

pytestmark = pytest.mark.neo4j

WHEN = datetime(2024, 5, 17, 12, 30, tzinfo=timezone.utc)


def snapshot() -> tuple[list, list]:
    """Every node and edge with its properties, sorted: two equal snapshots mean an unchanged graph."""
    def plain(props: dict) -> tuple:
        return tuple(sorted((k, v.iso_format() if hasattr(v, "iso_format") else tuple(v) if isinstance(v, list) else v)
                            for k, v in props.items()))

    key = "toString(coalesce({v}.uid, {v}.user_id, {v}.imdb_id, {v}.manga_id, {v}.anime_id))"
    nodes = graph.query("MATCH (n) RETURN labels(n) AS labels, properties(n) AS props")
    edges = graph.query(f"MATCH (a)-[r]->(b) RETURN {key.format(v='a')} AS a, type(r) AS type, "
                        f"{key.format(v='b')} AS b, properties(r) AS props")
    return (sorted((tuple(n["labels"]), plain(n["props"])) for n in nodes),
            sorted((e["a"], e["type"], e["b"], plain(e["props"])) for e in edges))


def _item(ct, n: int) -> dict:
    key = 1000 + n if ct.id_is_int else f"{ct.key}-{n}"
    return {ct.id_property: key, ct.title_property: f"{ct.key} number {n}"}


def _user(uid: str, *labels: str) -> dict:
    return {"uid": uid, "username": f"user_{uid}", "email": f"{uid}@example.com", "accounts": list(labels),
            "created_at": WHEN}


def test_items_are_merged_on_their_key_and_a_missing_value_never_erases_a_property(clean_graph):
    movies = BY_KEY["movies"]
    items_upsert(content_type=movies,
                 rows=[{"imdb_id": "tt0000001", "title": "Old", "year": 1999, "genres": ["Drama"]}])
    items_upsert(content_type=movies, rows=[{"imdb_id": "tt0000001", "title": "New", "year": None}])

    rows = graph.query("MATCH (m:ImdbMovie) RETURN m {.*} AS m")
    assert rows == [{"m": {"imdb_id": "tt0000001", "title": "New", "year": 1999, "genres": ["Drama"]}}]


def test_fill_only_keeps_what_a_node_has_and_fills_what_it_lacks(clean_graph):
    manga = BY_KEY["manga"]
    items_upsert(content_type=manga, rows=[{"manga_id": 1, "title": "Monster"}])
    items_upsert(content_type=manga, rows=[{"manga_id": "1", "title": "Other", "score": 9.1}], fill_only=True)

    rows = graph.query("MATCH (m:Manga) RETURN m {.*} AS m")
    assert rows == [{"m": {"manga_id": 1, "title": "Monster", "score": 9.1}}]


def test_users_get_their_accounts_keyed_and_labelled_as_musicbud_does_and_dated_connections(clean_graph):
    users_upsert(rows=[{**_user("u1", "ImdbUser", "SpotifyUser", "MalUser"), "demo_taste": 3}])

    rows = graph.query(
        "MATCH (p:ParentUser {uid: 'u1'})-[c]->(a) RETURN p.username AS username, p.email AS email, "
        "p.demo_taste AS taste, type(c) AS rel, labels(a) AS labels, a.uid AS uid, a.user_id AS user_id, "
        "c.created_at AS at ORDER BY rel")
    assert [(r["rel"], sorted(r["labels"]), r["uid"], r["user_id"]) for r in rows] == [
        ("CONNECTED_TO_IMDB", ["ImdbUser"], None, "imdb:u1"),  # ImdbUser has no uid in MusicBud's model
        ("CONNECTED_TO_MAL", ["MalUser", "User"], "mal:u1", account_key(user_uid="u1", account_label="MalUser")),
        ("CONNECTED_TO_SPOTIFY", ["SpotifyUser", "User"], "spotify:u1", None),
    ]
    assert isinstance(rows[1]["user_id"], int) and rows[1]["user_id"] > 0  # MalUser.user_id is an integer
    assert {(r["username"], r["email"], r["taste"]) for r in rows} == {("user_u1", "u1@example.com", 3)}
    assert all(r["at"].to_native() == WHEN for r in rows)


def test_a_mal_account_takes_the_mal_user_id_it_is_given(clean_graph):
    users_upsert(rows=[{"uid": "mal-17", "username": "mal_17", "accounts": {"MalUser": 17}}])
    assert graph.query("MATCH (:ParentUser)-[:CONNECTED_TO_MAL]->(a:MalUser) RETURN a.user_id AS id") == [{"id": 17}]
    with pytest.raises(GraphWriteError, match="MalUser.user_id must be an integer"):
        users_upsert(rows=[{"uid": "x", "username": "x", "accounts": {"MalUser": "seventeen"}}])


def test_an_account_the_user_already_has_is_reused(clean_graph):
    graph.query("CREATE (:ParentUser {uid: 'u1', username: 'real'})-[:CONNECTED_TO_IMDB]->(:ImdbUser {user_id: 'imdb-42'})")
    users_upsert(rows=[_user("u1", "ImdbUser")])
    items_upsert(content_type=BY_KEY["movies"], rows=[{"imdb_id": "tt1"}])
    interactions_upsert(content_type=BY_KEY["movies"],
                        rows=[{"user_uid": "u1", "item_id": "tt1", "rel": "LIKES", "created_at": WHEN}])

    rows = graph.query("MATCH (a:ImdbUser) OPTIONAL MATCH (a)-[r]->(m) RETURN a.user_id AS id, type(r) AS rel")
    assert rows == [{"id": "imdb-42", "rel": "LIKES"}]


def test_music_edges_come_from_the_account_each_row_names(clean_graph):
    tracks = BY_KEY["tracks"]
    users_upsert(rows=[_user("u1", "SpotifyUser", "LastfmUser", "YtmusicUser")])
    items_upsert(content_type=tracks, rows=[_item(tracks, n) for n in range(3)])
    interactions_upsert(content_type=tracks, rows=[
        {"user_uid": "u1", "item_id": "tracks-0", "rel": "LIKES_TRACK"},
        {"user_uid": "u1", "item_id": "tracks-1", "rel": "PLAYED_TRACK", "account": "LastfmUser"},
        {"user_uid": "u1", "item_id": "tracks-2", "rel": "LIKES_TRACK", "account": "YtmusicUser"}])
    rows = graph.query("MATCH (a:User)-[r]->(t:Track) RETURN labels(a) AS labels, t.uid AS t ORDER BY t")
    assert [(r["t"], [label for label in r["labels"] if label != "User"]) for r in rows] == [
        ("tracks-0", ["SpotifyUser"]), ("tracks-1", ["LastfmUser"]), ("tracks-2", ["YtmusicUser"])]
    with pytest.raises(GraphWriteError, match="'ImdbUser' is not an account of tracks"):
        interactions_upsert(content_type=tracks, rows=[{"user_uid": "u1", "item_id": "tracks-0",
                                                        "rel": "LIKES_TRACK", "account": "ImdbUser"}])


def test_items_get_musicbuds_labels_and_links_to_related_items(clean_graph):
    tracks, artists = BY_KEY["tracks"], BY_KEY["artists"]
    items_upsert(content_type=tracks, rows=[_item(tracks, 0)])
    items_upsert(content_type=artists, rows=[_item(artists, 0)])
    item_links_upsert(content_type=tracks, rel="PERFORMED_BY", target=artists,
                      rows=[{"item_id": "tracks-0", "target_id": "artists-0"}])
    rows = graph.query("MATCH (t:Track)-[:PERFORMED_BY]->(a:Artist) RETURN labels(t) AS t, labels(a) AS a")
    assert sorted(rows[0]["t"]) == ["LikedItem", "SpotifyTrack", "Track"]
    assert sorted(rows[0]["a"]) == ["Artist", "LikedItem", "SpotifyArtist"]


def test_untimed_edges_carry_no_property_at_all_as_musicbuds_own(clean_graph):
    movies = BY_KEY["movies"]
    users_upsert(rows=[_user("u1", "ImdbUser")])
    items_upsert(content_type=movies, rows=[{"imdb_id": "tt1"}])
    interactions_upsert(content_type=movies, rows=[{"user_uid": "u1", "item_id": "tt1", "rel": "LIKES"}], timed=False)
    assert graph.query("MATCH (:ImdbUser)-[r:LIKES]->() RETURN properties(r) AS p") == [{"p": {}}]


def test_every_edge_type_of_the_table_is_written_with_its_created_at(clean_graph):
    users_upsert(rows=[_user("u1", *{ct.account.label for ct in CONTENT_TYPES})])
    for ct in CONTENT_TYPES:
        items_upsert(content_type=ct, rows=[_item(ct, n) for n in range(len(ct.edges))])
        rows = [{"user_uid": "u1", "item_id": _item(ct, n)[ct.id_property], "rel": rel, "created_at": WHEN}
                for n, rel in enumerate(ct.edges)]
        assert interactions_upsert(content_type=ct, rows=rows) == {rel: 1 for rel in ct.edges}

    for ct in CONTENT_TYPES:
        found = graph.query(
            f"MATCH {account_pattern(ct)}-[r]->(i:{ct.label}) WHERE u.uid = 'u1' "
            f"RETURN type(r) AS rel, r.created_at AS at, {weight_expression(ct)} AS weight ORDER BY rel")
        assert sorted(r["rel"] for r in found) == sorted(ct.edges), ct.key
        assert all(r["at"].to_native() == WHEN for r in found)
        for r in found:
            assert r["weight"] == ct.edges[r["rel"]].weight


def test_a_scored_edge_keeps_its_score_an_unrated_one_weighs_the_anime_nodes_score_else_the_default(clean_graph):
    anime = BY_KEY["anime"]
    users_upsert(rows=[_user("u1", "MalUser")])
    items_upsert(content_type=anime, rows=[{"anime_id": 1, "score": 7}, {"anime_id": 2, "score": 8},
                                           {"anime_id": 3, "score": 0}])  # 0: MusicBud's "unscored"
    interactions_upsert(content_type=anime, rows=[
        {"user_uid": "u1", "item_id": 1, "rel": "TOP_ANIME", "score": 9},
        {"user_uid": "u1", "item_id": 2, "rel": "TOP_ANIME"},
        {"user_uid": "u1", "item_id": 3, "rel": "TOP_ANIME"},
    ])

    rows = graph.query(f"MATCH (:MalUser)-[r:TOP_ANIME]->(a:Anime) RETURN a.anime_id AS id, r.score AS score, "
                       f"{weight_expression(anime, item='a')} AS weight, r.created_at IS NOT NULL AS dated ORDER BY id")
    assert rows == [{"id": 1, "score": 9.0, "weight": 9.0, "dated": True},
                    {"id": 2, "score": None, "weight": 8.0, "dated": True},
                    {"id": 3, "score": None, "weight": DEFAULT_SCORE_WEIGHT, "dated": True}]


def test_writing_the_same_rows_twice_changes_nothing(clean_graph):
    movies, anime = BY_KEY["movies"], BY_KEY["anime"]
    users = [_user("u1", "ImdbUser", "MalUser"), {"uid": "u2", "username": "two", "accounts": ["MalUser"]}]
    movie_rows = [{"user_uid": "u1", "item_id": "tt1", "rel": "WATCHED", "created_at": 1_700_000_000}]
    anime_rows = [{"user_uid": "u2", "item_id": 7, "rel": "TOP_ANIME"},  # no date: the first write's time stays
                  {"user_uid": "u1", "item_id": 7, "rel": "TOP_ANIME", "score": 6}]

    def write():
        users_upsert(rows=users)
        items_upsert(content_type=movies, rows=[{"imdb_id": "tt1", "title": "One"}])
        items_upsert(content_type=anime, rows=[{"anime_id": 7, "title": "Seven"}])
        interactions_upsert(content_type=movies, rows=movie_rows)
        interactions_upsert(content_type=anime, rows=anime_rows)

    write()
    first = snapshot()
    write()
    assert snapshot() == first
    assert len(first[1]) == 3 + 3  # three CONNECTED_TO_* edges and three interactions


def test_an_edge_type_not_in_the_table_is_refused_before_anything_is_written(clean_graph):
    movies = BY_KEY["movies"]
    users_upsert(rows=[_user("u1", "ImdbUser")])
    items_upsert(content_type=movies, rows=[{"imdb_id": "tt1"}])
    before = snapshot()
    rows = [{"user_uid": "u1", "item_id": "tt1", "rel": "LIKES"},
            {"user_uid": "u1", "item_id": "tt1", "rel": "LIKES]->() DETACH DELETE ("}]

    with pytest.raises(GraphWriteError, match="not an edge type of movies"):
        interactions_upsert(content_type=movies, rows=rows)
    with pytest.raises(GraphWriteError, match="not an edge type of movies"):
        interactions_upsert(content_type=movies, rows=[{"user_uid": "u1", "item_id": "tt1", "rel": "TOP_ANIME"}])
    assert snapshot() == before


def test_edges_to_an_unknown_user_or_item_are_refused_and_nothing_is_written(clean_graph):
    movies = BY_KEY["movies"]
    users_upsert(rows=[_user("u1", "ImdbUser"), _user("u2", "MalUser")])
    items_upsert(content_type=movies, rows=[{"imdb_id": "tt1"}])
    before = snapshot()

    with pytest.raises(GraphWriteError, match=r"users without a ImdbUser account: ghost, u2"):
        interactions_upsert(content_type=movies, rows=[
            {"user_uid": "u1", "item_id": "tt1", "rel": "LIKES"},
            {"user_uid": "u2", "item_id": "tt1", "rel": "LIKES"},
            {"user_uid": "ghost", "item_id": "tt1", "rel": "LIKES"}])
    with pytest.raises(GraphWriteError, match=r"unknown ImdbMovie ids: tt404"):
        interactions_upsert(content_type=movies, rows=[
            {"user_uid": "u1", "item_id": "tt1", "rel": "LIKES"},
            {"user_uid": "u1", "item_id": "tt404", "rel": "LIKES"}])
    assert snapshot() == before


def test_an_unknown_account_label_is_refused():
    with pytest.raises(GraphWriteError, match="unknown account label 'FacebookUser'"):
        users_upsert(rows=[{"uid": "u1", "username": "one", "accounts": ["FacebookUser"]}])
