"""GET /v1/health/: liveness, Neo4j reachability, each model's version."""
import pytest

from app.content_types import CONTENT_TYPES
from tests.app.apis.conftest import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_reports_neo4j_up_and_every_model(client, demo_models):
    response = await client.get("/v1/health/")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert body["data"]["status"] == "ok"
    assert body["data"]["neo4j"] == "up"
    for ct in CONTENT_TYPES:
        model = body["data"]["models"][ct.model_key]
        assert model["version"] and model["trained_at"]


async def test_it_reports_neo4j_down_when_unreachable(client, demo_models, settings):
    from app import graph

    settings.NEO4J_BOLT_URL = "bolt://127.0.0.1:1"
    graph.close()
    try:
        response = await client.get("/v1/health/")
    finally:
        graph.close()
    assert response.status_code == 200
    assert response.json()["data"]["neo4j"] == "down"


@pytest.mark.parametrize("path", ["/v1/health", "/health"])
async def test_it_answers_the_same_without_the_slash_and_outside_v1(client, demo_models, path):
    response = await client.get(path)
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert body["data"] == (await client.get("/v1/health/")).json()["data"]
