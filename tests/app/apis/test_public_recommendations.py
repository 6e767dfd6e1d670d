"""GET /v1/recommendations/public/: popular items for anyone, throttled per client."""
import pytest
from django.core.cache import caches

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


async def test_it_answers_one_type(client, demo_models):
    response = await client.get("/v1/recommendations/public/?type=manga&n=4")
    assert response.status_code == 200
    items = response.json()["data"]
    assert len(items) == 4 and all({"id", "title", "recommendation_score"} <= set(i) for i in items)
    scores = [i["recommendation_score"] for i in items]
    assert scores == sorted(scores, reverse=True)


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
