"""GET /v1/recommendations/buds/: other users with similar taste, never the user, none for a newcomer."""
import pytest

from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_ranks_other_users_with_what_they_share(client, users, demo_models):
    response = await client.get("/v1/recommendations/buds/?n=5", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    buds = body["data"]
    assert len(buds) == 5
    assert "demo" not in [b["username"] for b in buds]
    sims = [b["similarity"] for b in buds]
    assert sims == sorted(sims, reverse=True) and all(0.0 <= s <= 1.0 for s in sims)
    for bud in buds:
        assert set(bud) == {"id", "uid", "username", "similarity", "similarity_score", "bud", "shared",
                            "common_artists_count", "common_tracks_count", "common_genres_count"}
        assert bud["uid"] == bud["id"] and bud["similarity_score"] == bud["similarity"]
        assert bud["bud"] == {"uid": bud["id"], "username": bud["username"]}
        for items in bud["shared"].values():
            assert 1 <= len(items) <= 3 and all(set(i) == {"id", "title"} for i in items)


async def test_a_newcomer_has_no_buds(client, users, demo_models):
    response = await client.get("/v1/recommendations/buds/", headers=bearer(token_for(users["newcomer"])))
    assert response.status_code == 200
    assert response.json()["data"] == []


async def test_the_all_types_answer_carries_buds(client, users, demo_models):
    response = await client.get("/v1/recommendations/?n=3", headers=bearer(token_for(users["normal"])))
    assert len(response.json()["data"]["buds"]) == 3


def _graph_shared(uid: str, other: str, type_key: str) -> int:
    """How many items of a type two ParentUsers both have, counted in the graph (any edge of the type)."""
    from app import graph
    from app.content_types import BY_KEY

    ct = BY_KEY[type_key]
    path = f"-[:{ct.account_rels}]->(:{ct.account_labels})-[:{'|'.join(ct.rel_types)}]->(i:{ct.label})"
    records = graph.query(f"MATCH (:ParentUser {{uid: $uid}}){path} WITH collect(DISTINCT i) AS mine "
                          f"MATCH (:ParentUser {{uid: $other}}){path} WHERE i IN mine RETURN count(DISTINCT i) AS n",
                          uid=uid, other=other)
    return records[0]["n"]


async def test_the_common_counts_are_every_item_both_have_of_that_type(client, users, demo_models):
    from app.services.user_directory import user_uid_get

    uid = user_uid_get(username="demo")
    response = await client.get("/v1/recommendations/buds/?n=10", headers=bearer(token_for(users["normal"])))
    buds = response.json()["data"]
    for bud in buds:
        for type_key in ("artists", "tracks", "genres"):
            assert bud[f"common_{type_key}_count"] == _graph_shared(uid, bud["id"], type_key), (bud["id"], type_key)
    assert sum(bud["common_tracks_count"] for bud in buds) > 0
