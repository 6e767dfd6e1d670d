"""GET /v1/recommendations/<type>/<id>/similar/: the most similar items of that type, 404 for an unknown id."""
import pytest

from app.content_types import CONTENT_TYPES
from app.services.model_registry import registry
from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("ct", CONTENT_TYPES, ids=lambda ct: ct.key)
async def test_it_works_for_every_type(client, users, demo_models, ct):
    model = registry.get(ct.model_key)
    item_id = next(iter(model.item_map))
    response = await client.get(f"/v1/recommendations/{ct.key}/{item_id}/similar/?n=5",
                                headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    items = body["data"]
    assert 0 < len(items) <= 5
    assert item_id not in [i["id"] for i in items]
    assert all(set(i) == {"id", *ct.detail_properties, "similarity"} for i in items)
    sims = [i["similarity"] for i in items]
    assert sims == sorted(sims, reverse=True)


async def test_it_answers_404_for_an_unknown_id(client, users, demo_models):
    response = await client.get("/v1/recommendations/movies/tt0000000/similar/",
                                headers=bearer(token_for(users["normal"])))
    assert response.status_code == 404
    assert_envelope(response.json(), success=False)
    assert "tt0000000" in response.json()["message"]


async def test_it_answers_404_for_an_unknown_type(client, users, demo_models):
    response = await client.get("/v1/recommendations/podcasts/x/similar/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 404


async def test_it_requires_a_token(client, demo_models):
    assert (await client.get("/v1/recommendations/movies/tt0000001/similar/")).status_code == 401
