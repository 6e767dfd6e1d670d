"""GET /v1/recommendations/: every key, 10 items each by default, the exact envelope."""
import pytest

from app.content_types import ALL_KEYS, CONTENT_TYPES
from tests.app.apis.conftest import assert_envelope, bearer, expired_token_for, forged_token_for, token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_answers_every_key_with_ten_items_each(client, users, demo_models):
    response = await client.get("/v1/recommendations/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert body["message"] == "Recommendations fetched successfully"
    assert set(body["data"]) == set(ALL_KEYS)
    for ct in CONTENT_TYPES:
        items = body["data"][ct.key]
        assert len(items) == 10, ct.key
        for item in items:
            assert set(item) == {"id", *ct.detail_properties, "recommendation_score", "reason", "because"}
            assert isinstance(item["id"], str)
        scores = [i["recommendation_score"] for i in items]
        assert scores == sorted(scores, reverse=True)


async def test_it_requires_a_token(client, demo_models):
    response = await client.get("/v1/recommendations/")
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)
    assert "Bearer" in response.json()["message"]


async def test_it_refuses_a_forged_token(client, users, demo_models):
    response = await client.get("/v1/recommendations/", headers=bearer(forged_token_for(users["normal"])))
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)


async def test_it_refuses_an_expired_token(client, users, demo_models):
    response = await client.get("/v1/recommendations/", headers=bearer(expired_token_for(users["normal"])))
    assert response.status_code == 401
    assert "expired" in response.json()["message"]


async def test_it_accepts_n_and_refuses_it_out_of_range(client, users, demo_models):
    headers = bearer(token_for(users["normal"]))
    response = await client.get("/v1/recommendations/?n=3", headers=headers)
    assert all(len(response.json()["data"][ct.key]) == 3 for ct in CONTENT_TYPES)
    for bad in ("0", "101", "abc"):
        response = await client.get(f"/v1/recommendations/?n={bad}", headers=headers)
        assert response.status_code == 400, bad
        assert_envelope(response.json(), success=False)


async def test_it_answers_the_same_without_the_trailing_slash(client, users, demo_models):
    headers = bearer(token_for(users["normal"]))
    slashed = await client.get("/v1/recommendations/?n=2", headers=headers)
    response = await client.get("/v1/recommendations?n=2", headers=headers)
    assert response.status_code == 200  # not a redirect
    assert response.json() == slashed.json()
