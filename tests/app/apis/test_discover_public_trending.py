"""GET /v1/discover/public/trending/ (and without the slash): the trending items of one type or every type
(`type`, or `content_type`; `n`, or `limit`), only the keys asked for, plus `content` (one flat list)."""
import re

import pytest

from app.content_types import CONTENT_TYPES
from tests.app.apis.conftest import assert_envelope

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]


async def test_all_is_the_default_and_answers_every_type(client, demo_models):
    response = await client.get("/v1/discover/public/trending/")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert set(body["data"]) == {ct.key for ct in CONTENT_TYPES} | {"content"}
    assert all(len(body["data"][ct.key]) == 10 for ct in CONTENT_TYPES)


async def test_the_trending_items_are_the_guest_recommendations_sorted_by_trending(client, demo_models):
    trending = (await client.get("/v1/discover/public/trending/?type=movies&n=5")).json()["data"]["movies"]
    public = (await client.get("/v1/recommendations/public/?type=movies&n=5&sort=trending")).json()["data"]["movies"]
    assert [item["id"] for item in trending] == [item["id"] for item in public]
    assert {item["reason"] for item in public} <= {"trending", "popular"}


async def test_tracks_carry_an_artist_a_duration_and_an_image(client, demo_models):
    tracks = (await client.get("/v1/discover/public/trending?content_type=tracks&limit=5")).json()["data"]["tracks"]
    for track in tracks:
        assert track["artist"] == track["artists"][0]
        minutes, seconds = divmod(round(track["duration_ms"] / 1000), 60)
        assert track["duration"] == f"{minutes}:{seconds:02d}" and re.fullmatch(r"\d+:\d\d", track["duration"])
        assert track["image"] == track["image_url"]


async def test_type_and_content_type_that_differ_answer_400_naming_both(client, demo_models):
    response = await client.get("/v1/discover/public/trending/?type=tracks&content_type=movies")
    assert response.status_code == 400
    body = response.json()
    assert_envelope(body, success=False)
    assert "type" in body["message"] and "content_type" in body["message"]


@pytest.mark.parametrize("query", ["type=podcasts", "content_type=podcasts", "limit=0", "n=101", "limit=x",
                                   "n=2&limit=3", "page=1"])
async def test_bad_input_answers_400(client, query):
    response = await client.get(f"/v1/discover/public/trending?{query}")
    assert response.status_code == 400
    assert_envelope(response.json(), success=False)
