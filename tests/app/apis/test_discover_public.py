"""GET /v1/discover/public/: trending tracks, popular artists, movies, manga and anime, and the most common genres
of every served model's items."""
from collections import Counter

import pytest
from django.utils.text import slugify

from app.content_types import CONTENT_TYPES
from app.services.model_registry import registry
from tests.app.apis.conftest import assert_envelope

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]


async def test_it_answers_every_list(client, demo_models):
    response = await client.get("/v1/discover/public/")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    data = body["data"]
    assert set(data) == {"trending_tracks", "popular_artists", "popular_movies", "popular_manga", "popular_anime",
                         "genres"}
    assert all(len(items) == 10 for items in data.values())
    assert all(item["id"].startswith("tt") for item in data["popular_movies"])
    assert all("artist" in item and "duration" in item for item in data["trending_tracks"])


async def test_its_genres_are_the_most_common_across_every_model(client, demo_models):
    counts = Counter()
    for ct in CONTENT_TYPES:
        model = registry.get(ct.model_key)
        for key in model.items:
            counts.update({slugify(g, allow_unicode=True) for g in model.items.value(key, "genres") or ()})
    genres = (await client.get("/v1/discover/public/?n=5")).json()["data"]["genres"]
    assert [counts[g["id"]] for g in genres] == sorted(counts.values(), reverse=True)[:5]
    assert all(set(g) == {"id", "name", "color"} for g in genres)


async def test_limit_sets_the_length_of_every_list(client, demo_models):
    data = (await client.get("/v1/discover/public/?limit=3")).json()["data"]
    assert all(len(items) == 3 for items in data.values())
