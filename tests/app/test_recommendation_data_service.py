"""app/services/recommendation_data_service.py against the real Neo4j: the interaction matrix (strongest edge
wins, whatever the paging), edge counts and item details."""
import pytest

from app.content_types import BY_KEY
from app.services import graph_writes
from app.services import recommendation_data_service as data

pytestmark = pytest.mark.neo4j

MOVIES = BY_KEY["movies"]


@pytest.fixture
def small_graph(clean_graph):
    graph_writes.items_upsert(content_type=MOVIES, rows=[{"imdb_id": f"tt{i:07d}", "title": f"Movie {i}", "year": 2000 + i}
                                                         for i in range(4)])
    graph_writes.users_upsert(rows=[{"uid": u, "username": u, "accounts": ["ImdbUser"]} for u in ("u1", "u2", "u3")])
    graph_writes.interactions_upsert(content_type=MOVIES, rows=[
        {"user_uid": "u1", "item_id": "tt0000000", "rel": "LIKES"},
        {"user_uid": "u1", "item_id": "tt0000000", "rel": "WATCHED"},  # the same movie again, weaker
        {"user_uid": "u1", "item_id": "tt0000001", "rel": "WANTS_TO_WATCH"},
        {"user_uid": "u2", "item_id": "tt0000001", "rel": "WATCHED"},
        {"user_uid": "u2", "item_id": "tt0000001", "rel": "LIKES"},
        {"user_uid": "u3", "item_id": "tt0000002", "rel": "WATCHED"},
    ])
    return clean_graph


def _as_dict(inter) -> dict[tuple[str, str], float]:
    coo = inter.matrix.tocoo()
    return {(inter.user_ids[r], inter.item_ids[c]): float(w) for r, c, w in zip(coo.row, coo.col, coo.data)}


def test_several_edges_to_one_item_keep_the_strongest(small_graph):
    inter = data.interactions_for(content_type=MOVIES)
    assert _as_dict(inter) == {("u1", "tt0000000"): 5.0, ("u1", "tt0000001"): 2.0, ("u2", "tt0000001"): 5.0,
                               ("u3", "tt0000002"): 3.0}
    assert inter.matrix.shape == (3, 3) and inter.nnz == 4


def test_pages_of_users_give_the_same_matrix(small_graph):
    whole = data.interactions_for(content_type=MOVIES)
    paged = data.interactions_for(content_type=MOVIES, page_users=1)
    assert _as_dict(paged) == _as_dict(whole)


def test_an_empty_graph_gives_an_empty_matrix(clean_graph):
    inter = data.interactions_for(content_type=MOVIES)
    assert inter.nnz == 0 and inter.matrix.shape == (0, 0)


def test_interactions_count_counts_every_edge(small_graph):
    assert data.interactions_count(content_type=MOVIES) == 6
    assert data.interactions_count(content_type=BY_KEY["anime"]) == 0


def test_items_by_ids_gives_details_and_leaves_unknown_ids_out(small_graph):
    details = data.items_by_ids(content_type=MOVIES, ids=["tt0000001", "tt0000003", "tt9999999"])
    assert set(details) == {"tt0000001", "tt0000003"}
    assert details["tt0000001"]["title"] == "Movie 1" and details["tt0000001"]["year"] == 2001
    assert details["tt0000001"]["id"] == "tt0000001" and details["tt0000001"]["rating"] is None


def test_trending_totals_come_from_the_extracted_edges_each_decayed_by_its_age(small_graph):
    from datetime import datetime, timedelta, timezone

    from app import graph

    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    day = 86_400.0
    # u1's LIKES of tt0 (5) two days old, its WATCHED of tt0 (3) untimed; u2's edges to tt1 one day old; the rest
    # untimed (MusicBud's own edges carry no property)
    graph.query("MATCH ()-[r]->() REMOVE r.created_at")
    graph.query("MATCH (:ParentUser {uid: 'u1'})--()-[r:LIKES]->(:ImdbMovie {imdb_id: 'tt0000000'}) "
                "SET r.created_at = datetime($t)", t=(now - timedelta(days=2)).isoformat())
    graph.query("MATCH (:ParentUser {uid: 'u2'})--()-[r]->(:ImdbMovie {imdb_id: 'tt0000001'}) "
                "SET r.created_at = datetime($t)", t=(now - timedelta(days=1)).isoformat())
    inter = data.interactions_for(content_type=MOVIES)
    assert inter.untimed_edges == 3  # u1 WATCHED tt0, u1 WANTS_TO_WATCH tt1, u3 WATCHED tt2
    decayed, untimed = data.trending_totals(inter=inter, now=now, half_life_seconds=day)
    col = {item: c for c, item in enumerate(inter.item_ids)}
    assert decayed[col["tt0000000"]] == pytest.approx(5.0 / 4)  # two half-lives
    assert decayed[col["tt0000001"]] == pytest.approx((3.0 + 5.0) / 2)  # u2's WATCHED and LIKES, one half-life
    assert decayed[col["tt0000002"]] == 0.0
    assert untimed[col["tt0000000"]] == 3.0 and untimed[col["tt0000001"]] == 2.0 and untimed[col["tt0000002"]] == 3.0
