"""The discovery parameters of the recommendation endpoints (genre, exclude, year_min / year_max for movies,
diversity; sort on the public endpoint): in the OpenAPI schema, validated (400 in the envelope naming the
parameter), and applied on the personal, similar and guest endpoints."""
import io
from urllib.parse import quote

import pytest
import yaml
from django.core.cache import caches
from django.core.management import call_command

from app.services.answers import answers
from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)

FILTERS = {"genre", "exclude", "diversity"}


@pytest.fixture(autouse=True)
def fresh_throttle():
    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


def _schema(tmp_path) -> dict:
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), stderr=io.StringIO())
    return yaml.safe_load(out.read_text())


def _params(schema, path):
    return {p["name"] for p in schema["paths"][path]["get"].get("parameters", []) if p["in"] == "query"}


def test_every_new_parameter_is_in_the_schema(tmp_path):
    schema = _schema(tmp_path)
    assert _params(schema, "/v1/recommendations/movies/") >= FILTERS | {"n", "year_min", "year_max"}
    assert _params(schema, "/v1/recommendations/tracks/") >= FILTERS and "year_min" not in \
        _params(schema, "/v1/recommendations/tracks/")
    similar = next(p for p in schema["paths"] if p.startswith("/v1/recommendations/movies/{") and "similar" in p)
    assert _params(schema, similar) >= FILTERS | {"year_min", "year_max"}
    assert _params(schema, "/v1/recommendations/public/") >= FILTERS | {"sort", "year_min", "year_max", "type"}
    assert _params(schema, "/v1/discover/public/trending/") >= FILTERS
    assert "diversity" in _params(schema, "/v1/recommendations/")


@pytest.mark.parametrize("path, query, parameter", [
    ("/v1/recommendations/movies/", "diversity=1.5", "diversity"),
    ("/v1/recommendations/movies/", "diversity=much", "diversity"),
    ("/v1/recommendations/movies/", "year_min=abc", "year_min"),
    ("/v1/recommendations/movies/", "year_min=2001&year_max=1999", "year_max"),
    ("/v1/recommendations/movies/", "exclude=" + ",".join(f"tt{i}" for i in range(101)), "exclude"),
    ("/v1/recommendations/movies/", "genre=,", "genre"),
    ("/v1/recommendations/tracks/", "year_min=2000", "year_min"),
    ("/v1/recommendations/movies/tt0000001/similar/", "diversity=-1", "diversity"),
    ("/v1/recommendations/public/", "sort=newest", "sort"),
    ("/v1/recommendations/public/", "type=tracks&year_min=2000", "year_min"),
    ("/v1/discover/public/trending/", "diversity=2", "diversity"),
])
async def test_bad_values_answer_400_naming_the_parameter(client, users, path, query, parameter):
    response = await client.get(f"{path}?{query}", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 400, response.content
    body = response.json()
    assert_envelope(body, success=False)
    assert parameter in body["message"] or parameter in str(body.get("errors"))


async def test_the_personal_endpoint_filters_inside_the_ranking(client, users, demo_models):
    headers = bearer(token_for(users["normal"]))
    genre = (await client.get("/v1/discover/public/genres/?category=movies&n=1")).json()["data"]["movies"][0]["name"]
    everything = (await client.get("/v1/recommendations/movies/?n=100", headers=headers)).json()["data"]
    shown = [item["id"] for item in everything[:5]]

    def has_genre(item):
        return genre.casefold() in {g.casefold() for g in item.get("genres") or []}

    available = [item for item in everything if has_genre(item) and item["id"] not in shown]
    assert len(available) >= 3
    response = await client.get(f"/v1/recommendations/movies/?n=8&genre={quote(genre)}&exclude={','.join(shown)}",
                                headers=headers)
    assert response.status_code == 200, response.content
    items = response.json()["data"]
    assert len(items) == min(8, len(available))  # filtered inside the ranking: as many as there are
    assert all(has_genre(item) for item in items)
    assert not set(shown) & {item["id"] for item in items}


async def test_diversity_zero_answers_byte_for_byte_what_no_parameter_answers(client, users, demo_models):
    headers = bearer(token_for(users["normal"]))
    plain = await client.get("/v1/recommendations/movies/?n=10", headers=headers)
    answers().clear()
    zero = await client.get("/v1/recommendations/movies/?n=10&diversity=0", headers=headers)
    assert zero.content == plain.content
    diverse = (await client.get("/v1/recommendations/movies/?n=10&diversity=1", headers=headers)).json()["data"]
    assert len(diverse) == 10 and [i["id"] for i in diverse] != [i["id"] for i in plain.json()["data"]]


async def test_similar_items_take_the_filters(client, users, demo_models):
    headers = bearer(token_for(users["normal"]))
    item = (await client.get("/v1/recommendations/public/?type=movies&n=1")).json()["data"]["movies"][0]
    similar = (await client.get(f"/v1/recommendations/movies/{item['id']}/similar/?n=5", headers=headers)).json()
    excluded = [i["id"] for i in similar["data"][:2]]
    again = await client.get(f"/v1/recommendations/movies/{item['id']}/similar/?n=5&exclude={excluded[0]}"
                             f"&exclude={excluded[1]}&diversity=0.5", headers=headers)
    assert again.status_code == 200
    assert len(again.json()["data"]) == 5 and not set(excluded) & {i["id"] for i in again.json()["data"]}


async def test_the_public_endpoint_sorts_by_trending_and_filters_years(client, demo_models):
    trending = (await client.get("/v1/recommendations/public/?type=movies&n=5&sort=trending")).json()
    assert trending["success"] and {i["reason"] for i in trending["data"]["movies"]} <= {"trending", "popular"}
    old = (await client.get("/v1/recommendations/public/?type=movies&n=10&year_max=1999")).json()["data"]["movies"]
    assert old and all(item["year"] is not None and item["year"] <= 1999 for item in old)
