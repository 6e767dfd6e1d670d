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
        assert set(bud) == {"id", "username", "similarity", "shared"}
        for items in bud["shared"].values():
            assert 1 <= len(items) <= 3 and all(set(i) == {"id", "title"} for i in items)


async def test_a_newcomer_has_no_buds(client, users, demo_models):
    response = await client.get("/v1/recommendations/buds/", headers=bearer(token_for(users["newcomer"])))
    assert response.status_code == 200
    assert response.json()["data"] == []


async def test_the_all_types_answer_carries_buds(client, users, demo_models):
    response = await client.get("/v1/recommendations/?n=3", headers=bearer(token_for(users["normal"])))
    assert len(response.json()["data"]["buds"]) == 3
