"""GET /v1/content/public/<type>/<id>/ and /v1/discover/public/<type>/<id>/: one item's details (singular types)
from the served model, else from the graph; 400 for another type, 404 for an id neither has."""
import pytest

from app import graph
from app.services.model_registry import registry
from tests.app.apis.conftest import assert_envelope, some_item_id

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]

TYPES = ["movie", "manga", "anime", "track", "artist", "album", "genre"]


@pytest.mark.parametrize("prefix", ["/v1/content/public", "/v1/discover/public"])
async def test_it_answers_what_the_model_holds_of_the_item(client, demo_models, prefix):
    item_id = await some_item_id(client, "anime")
    response = await client.get(f"{prefix}/anime/{item_id}/")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert body["message"] == "Anime details fetched successfully"
    held = registry.get("anime").items[item_id]
    assert body["data"] == {**held, "image_url": held.get("image_url"), "image": held.get("image_url"),
                            "cover_url": held.get("image_url")}


async def test_a_track_also_has_its_artist_and_duration(client, demo_models):
    item_id = await some_item_id(client, "tracks")
    data = (await client.get(f"/v1/content/public/track/{item_id}/")).json()["data"]
    assert data["artist"] == data["artists"][0] and data["duration"].count(":") == 1


async def test_an_item_newer_than_the_model_is_read_from_the_graph(client, demo_models):
    graph.query("CREATE (:ImdbMovie {imdb_id: 'tt955555555', title: 'Newer Than The Model', year: 2026, "
                "genres: ['Drama']})")
    try:
        response = await client.get("/v1/content/public/movie/tt955555555/")
    finally:
        graph.query("MATCH (m:ImdbMovie {imdb_id: 'tt955555555'}) DETACH DELETE m")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == "tt955555555" and data["title"] == "Newer Than The Model" and data["genres"] == ["Drama"]
    assert response.json()["message"] == "Movie details fetched successfully"


@pytest.mark.parametrize("kind, item_id", [("movie", "tt0000000000"), ("anime", "not-a-number"),
                                           ("manga", "0"), ("track", "x" * 300), ("genre", "..")])
async def test_an_unknown_id_answers_404_naming_the_type(client, demo_models, kind, item_id):
    response = await client.get(f"/v1/content/public/{kind}/{item_id}/")
    assert response.status_code == 404
    body = response.json()
    assert_envelope(body, success=False)
    assert body["message"] == f"{kind.capitalize()} not found"


@pytest.mark.parametrize("kind", ["movies", "podcast", "Movie"])
async def test_another_type_answers_400_listing_the_valid_ones(client, demo_models, kind):
    response = await client.get(f"/v1/discover/public/{kind}/1/")
    assert response.status_code == 400
    body = response.json()
    assert_envelope(body, success=False)
    assert body["message"] == f"Invalid content type. Must be one of: {TYPES}"


async def test_a_query_parameter_answers_400(client, demo_models):
    response = await client.get("/v1/content/public/movie/tt1/?fields=all")
    assert response.status_code == 400
    assert "fields" in response.json()["message"]
