"""GET /v1/recommendations/public/: popular items for anyone, always keyed by type, with `content` (one flat list)
and `is_personalized: false`; `limit` is another name for `n`; `genre` filters inside the ranking; throttled per
client."""
from collections import Counter

import pytest
from django.core.cache import caches

from app.content_types import BY_KEY

from app.views import recommendations_views as apis
from tests.app.apis.conftest import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_throttle():
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


async def test_it_needs_no_token_and_answers_every_type(client, demo_models):
    response = await client.get("/v1/recommendations/public/")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert {"movies", "manga", "anime"} <= set(body["data"])
    assert len(body["data"]["movies"]) == 10
    assert all(i["reason"] == "popular" for i in body["data"]["movies"])
    assert body["is_personalized"] is False


async def test_it_answers_one_type_keyed_by_that_type(client, demo_models):
    response = await client.get("/v1/recommendations/public/?type=manga&n=4")
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) == {"manga", "content"}
    items = data["manga"]
    assert len(items) == 4 and all({"id", "title", "recommendation_score"} <= set(i) for i in items)
    scores = [i["recommendation_score"] for i in items]
    assert scores == sorted(scores, reverse=True)


async def test_its_content_lists_every_item_once_in_the_same_order(client, demo_models):
    data = (await client.get("/v1/recommendations/public/?n=3")).json()["data"]
    content = data["content"]
    expected = [(item["id"], key) for key, items in data.items() if key != "content" for item in items]
    assert [(item["id"], item["type"]) for item in content] == [(i, BY_KEY[key].model_key) for i, key in expected]
    by_id = {(item["id"], item["type"]): item for item in content}
    movie = data["movies"][0]
    assert by_id[(movie["id"], "movie")] == {"id": movie["id"], "type": "movie", "title": movie["title"],
                                             "name": movie["title"], "cover": movie.get("image_url"), "artist": None}
    track = data["tracks"][0]
    assert by_id[(track["id"], "track")]["artist"] == track["artists"][0]


async def test_limit_is_another_name_for_n(client, demo_models):
    by_limit = (await client.get("/v1/recommendations/public/?type=anime&limit=3")).json()["data"]["anime"]
    by_n = (await client.get("/v1/recommendations/public/?type=anime&n=3")).json()["data"]["anime"]
    assert len(by_limit) == 3 and by_limit == by_n
    both = await client.get("/v1/recommendations/public/?type=anime&n=3&limit=3")
    assert both.status_code == 200


async def test_n_and_limit_that_differ_answer_400_naming_both(client, demo_models):
    response = await client.get("/v1/recommendations/public/?type=anime&n=3&limit=4")
    assert response.status_code == 400
    body = response.json()
    assert_envelope(body, success=False)
    assert "n=3" in body["message"] and "limit=4" in body["message"]


def _movies_model():
    from app.services.model_registry import registry

    return registry.get("movie")


def _genre_counts() -> Counter:
    model = _movies_model()
    return Counter(g.casefold() for key in model.items for g in model.items.value(key, "genres") or ())


async def test_a_genre_still_fills_n_when_enough_items_have_it(client, demo_models):
    genre, count = _genre_counts().most_common(1)[0]
    assert count >= 10
    response = await client.get("/v1/recommendations/public/", {"type": "movies", "genre": genre.upper()})
    items = response.json()["data"]["movies"]
    assert len(items) == 10
    assert all(genre in {g.casefold() for g in item["genres"]} for item in items)


async def test_a_genre_filter_keeps_the_ranking_of_the_unfiltered_answer(client, demo_models):
    genre = _genre_counts().most_common(3)[2][0]
    everything = (await client.get("/v1/recommendations/public/", {"type": "movies", "n": 100})).json()
    expected = [item for item in everything["data"]["movies"] if genre in {g.casefold() for g in item["genres"]}][:5]
    response = await client.get("/v1/recommendations/public/", {"type": "movies", "n": 5, "genre": genre})
    items = response.json()["data"]["movies"]
    # the same scores in the same order (items of equal popularity may come in either order)
    assert [i["recommendation_score"] for i in items] == [i["recommendation_score"] for i in expected]
    last = expected[-1]["recommendation_score"]
    assert {i["id"] for i in items if i["recommendation_score"] > last} == \
        {i["id"] for i in expected if i["recommendation_score"] > last}


async def test_several_genres_match_any_of_them_given_with_commas_or_repeated(client, demo_models):
    (first, _), (second, _) = _genre_counts().most_common(2)
    with_commas = await client.get("/v1/recommendations/public/", {"type": "movies", "n": 100,
                                                                  "genre": f"{first}, {second.title()}"})
    repeated = await client.get(f"/v1/recommendations/public/?type=movies&n=100&genre={first}&genre={second}")
    items = with_commas.json()["data"]["movies"]
    assert items == repeated.json()["data"]["movies"]
    assert all({first, second} & {g.casefold() for g in item["genres"]} for item in items)
    assert len(items) == sum(1 for key in _movies_model().items
                             if {first, second} & {g.casefold() for g in _movies_model().items.value(key, "genres")})


async def test_a_genre_no_item_has_answers_empty_lists(client, demo_models):
    data = (await client.get("/v1/recommendations/public/", {"genre": "no-such-genre"})).json()["data"]
    assert all(items == [] for items in data.values())


async def test_items_without_genres_never_match_a_genre(client, demo_models):
    genre = _genre_counts().most_common(1)[0][0]
    data = (await client.get("/v1/recommendations/public/", {"type": "tracks", "genre": genre})).json()["data"]
    assert data == {"tracks": [], "content": []}  # tracks have no genres in their details


async def test_a_genre_parameter_naming_no_genre_answers_400(client, demo_models):
    response = await client.get("/v1/recommendations/public/", {"genre": " , "})
    assert response.status_code == 400
    assert "genre" in response.json()["errors"]


async def test_it_answers_400_for_an_unknown_type(client, demo_models):
    response = await client.get("/v1/recommendations/public/?type=podcasts")
    assert response.status_code == 400
    assert_envelope(response.json(), success=False)


async def test_it_is_throttled_per_client(client, demo_models, monkeypatch):
    monkeypatch.setattr(apis.GuestThrottle, "rate", "3/min", raising=False)
    codes = [(await client.get("/v1/recommendations/public/?type=anime&n=1")).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = await client.get("/v1/recommendations/public/?type=anime&n=1")
    assert_envelope(response.json(), success=False)
    assert "Retry-After" in response.headers
