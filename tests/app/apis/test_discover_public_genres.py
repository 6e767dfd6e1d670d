"""GET /v1/discover/public/genres/ (and without the slash): the most common genres of the music, movie and
anime/manga items, each {id: slug, name, color: "#RRGGBB" stable for a name}; `category` answers one group."""
import re

import pytest

from app.services.discovery import genre_color
from tests.app.apis.conftest import assert_envelope

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]


async def test_it_answers_every_group(client, demo_models):
    response = await client.get("/v1/discover/public/genres/")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert set(body["data"]) == {"music", "movies", "anime"}
    for genres in body["data"].values():
        assert 0 < len(genres) <= 20
        assert len({g["id"] for g in genres}) == len(genres)
        for genre in genres:
            assert re.fullmatch(r"[\w-]+", genre["id"]) and genre["id"] == genre["id"].lower()
            assert re.fullmatch(r"#[0-9A-F]{6}", genre["color"]) and genre["color"] == genre_color(genre["id"])


async def test_music_genres_come_from_the_music_items(client, demo_models):
    from app.services.model_registry import registry

    artists = registry.get("artist")
    names = {g for key in artists.items for g in artists.items.value(key, "genres")}
    music = (await client.get("/v1/discover/public/genres?n=100")).json()["data"]["music"]
    assert {g["name"] for g in music} == names


async def test_a_colour_is_the_same_every_time(client, demo_models):
    first = (await client.get("/v1/discover/public/genres")).json()["data"]
    again = (await client.get("/v1/discover/public/genres/")).json()["data"]
    assert first == again
    assert genre_color("drama") == "#" + __import__("hashlib").sha256(b"drama").hexdigest()[:6].upper()


async def test_category_answers_that_group_only(client, demo_models):
    data = (await client.get("/v1/discover/public/genres?category=anime&limit=3")).json()["data"]
    assert set(data) == {"anime"} and len(data["anime"]) == 3


@pytest.mark.parametrize("query", ["category=podcasts", "n=0", "limit=500", "sort=name"])
async def test_bad_input_answers_400(client, query):
    response = await client.get(f"/v1/discover/public/genres/?{query}")
    assert response.status_code == 400
    assert_envelope(response.json(), success=False)
