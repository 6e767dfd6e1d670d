"""GET /v1/recommendations/<type>/: a list, 20 by default, n from 1 to 100, 400 for an unknown type (as the original
backend answered)."""
import pytest

from app.content_types import ALL_KEYS, BY_KEY, CONTENT_TYPES
from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_answers_movies_in_the_seed_shape(client, users, demo_models):
    response = await client.get("/v1/recommendations/movies/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert body["message"] == "Movies recommendations fetched successfully"
    assert len(body["data"]) == 20
    for item in body["data"]:
        assert set(item) == {"id", "title", "year", "rating", "genres", "plot", "director", "image_url",
                             "recommendation_score", "reason", "because"}
        assert item["id"].startswith("tt")


@pytest.mark.parametrize("key", [ct.key for ct in CONTENT_TYPES])
async def test_it_answers_every_type(client, users, demo_models, key):
    response = await client.get(f"/v1/recommendations/{key}/?n=5", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    items = response.json()["data"]
    assert len(items) == 5
    assert all(set(i) >= {"id", BY_KEY[key].title_property, "recommendation_score"} for i in items)


async def test_it_never_returns_what_the_user_already_has(client, users, demo_models):
    from app.services import recommendation_data_service as data

    ct = BY_KEY["movies"]
    from app.services.user_directory import user_uid_get

    history = set(data.user_history(content_type=ct, user_uid=user_uid_get(username="demo")))
    assert history
    response = await client.get("/v1/recommendations/movies/?n=100", headers=bearer(token_for(users["normal"])))
    ids = [i["id"] for i in response.json()["data"]]
    assert ids and not history & set(ids)
    assert len(ids) == len(set(ids))


async def test_it_gives_a_new_user_trending_then_popular_items(client, users, demo_models):
    response = await client.get("/v1/recommendations/anime/?n=5", headers=bearer(token_for(users["newcomer"])))
    assert response.status_code == 200
    items = response.json()["data"]
    assert len(items) == 5
    assert all(i["reason"] in ("trending", "popular") and i["because"] == [] for i in items)
    public = await client.get("/v1/recommendations/public/?type=anime&n=5&sort=trending")
    assert [i["id"] for i in items] == [i["id"] for i in public.json()["data"]["anime"]]


async def test_it_answers_400_for_an_unknown_type_listing_the_valid_ones(client, users, demo_models):
    response = await client.get("/v1/recommendations/podcasts/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 400
    body = response.json()
    assert_envelope(body, success=False)
    assert body["message"] == f"Invalid recommendation type: podcasts. Valid types: {list(ALL_KEYS)}"


async def test_it_answers_buds_as_a_type(client, users, demo_models):
    response = await client.get("/v1/recommendations/buds/?n=4", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "Buds recommendations fetched successfully"
    assert isinstance(body["data"], list) and len(body["data"]) == 4


@pytest.mark.parametrize("bad", ["0", "101", "abc", "-1", "2.5"])
async def test_it_answers_400_for_n_out_of_range(client, users, demo_models, bad):
    response = await client.get(f"/v1/recommendations/movies/?n={bad}", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 400
    assert_envelope(response.json(), success=False)
    assert "n" in response.json()["errors"]


async def test_it_answers_400_for_an_unknown_query_parameter(client, users, demo_models):
    response = await client.get("/v1/recommendations/movies/?count=5", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 400
    assert "count" in response.json()["message"]


async def test_it_answers_405_to_post(client, users, demo_models):
    response = await client.post("/v1/recommendations/movies/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 405
    assert_envelope(response.json(), success=False)
