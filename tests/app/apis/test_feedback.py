"""POST /v1/recommendations/feedback/: dismiss / click / impression events, one or a batch, stored whole or not
at all, on the real graph."""
import pytest

from app import graph
from app.views import feedback_views
from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/v1/recommendations/feedback/"


@pytest.fixture(autouse=True)
def fresh_throttle():
    from django.core.cache import caches

    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


def feedback_edges() -> list[dict]:
    return graph.query("MATCH (p:ParentUser)-[r:DISMISSED|CLICKED|IMPRESSED]->(i) "
                       "RETURN p.username AS user, type(r) AS rel, r.count AS count ORDER BY user, rel")


async def _movies(client, user, n=10) -> list[str]:
    response = await client.get(f"/v1/recommendations/movies/?n={n}", headers=bearer(token_for(user)))
    return [i["id"] for i in response.json()["data"]]


async def test_a_dismissed_movie_is_never_recommended_again_even_after_retraining(client, users, demo_models):
    from app.services.training import models_train

    first = (await _movies(client, users["normal"]))[0]
    response = await client.post(URL, {"type": "movies", "item_id": first, "event": "dismiss"},
                                 content_type="application/json", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200, response.content
    assert response.json()["data"] == {"dismiss": 1, "click": 0, "impression": 0}
    assert first not in await _movies(client, users["normal"], n=100)
    assert graph.query("MATCH (:ParentUser {username: 'demo'})-[d:DISMISSED]->(m:ImdbMovie) "
                       "RETURN m.imdb_id AS id, d.created_at IS NOT NULL AS dated") == [{"id": first, "dated": True}]
    assert models_train(content_types=["movies"])["movie"] is True
    assert first not in await _movies(client, users["normal"], n=100)
    graph.query("MATCH ()-[d:DISMISSED]->() DELETE d")


async def test_a_batch_of_clicks_and_impressions_is_counted_one_edge_per_pair(client, users, demo_models):
    items = (await _movies(client, users["normal"], n=2))
    batch = [{"type": "movies", "item_id": items[0], "event": "impression"},
             {"type": "movies", "item_id": items[1], "event": "impression"},
             {"type": "movies", "item_id": items[0], "event": "click"},
             {"type": "movies", "item_id": items[0], "event": "click"}]
    response = await client.post(URL, batch, content_type="application/json",
                                 headers=bearer(token_for(users["normal"])))
    assert response.json()["data"] == {"dismiss": 0, "click": 2, "impression": 2}
    assert feedback_edges() == [{"user": "demo", "rel": "CLICKED", "count": 2},
                                {"user": "demo", "rel": "IMPRESSED", "count": 1},
                                {"user": "demo", "rel": "IMPRESSED", "count": 1}]
    graph.query("MATCH ()-[r:CLICKED|IMPRESSED]->() DELETE r")


@pytest.mark.parametrize("body, field", [
    ({"type": "movies", "item_id": "tt1", "event": "like"}, "event"),
    ({"type": "podcasts", "item_id": "tt1", "event": "click"}, "type"),
    ({"type": "movies", "item_id": {"a": 1}, "event": "click"}, "item_id"),
    ({"type": "movies", "event": "click"}, "item_id"),
    ([{"type": "movies", "item_id": "tt1", "event": "click"}] * 101, "events"),
    ([], "events"),
])
async def test_bad_input_is_a_400_naming_the_problem_and_stores_nothing(client, users, demo_models, body, field):
    response = await client.post(URL, body, content_type="application/json",
                                 headers=bearer(token_for(users["normal"])))
    assert response.status_code == 400
    assert_envelope(response.json(), success=False)
    assert field in str(response.json()["errors"])
    assert feedback_edges() == []


async def test_an_unknown_item_in_a_batch_is_a_404_and_nothing_of_the_batch_is_stored(client, users, demo_models):
    good = (await _movies(client, users["normal"], n=1))[0]
    response = await client.post(URL, [{"type": "movies", "item_id": good, "event": "dismiss"},
                                       {"type": "movies", "item_id": "tt-nowhere", "event": "click"}],
                                 content_type="application/json", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 404
    assert "tt-nowhere" in response.json()["message"]
    assert feedback_edges() == []


async def test_it_needs_a_token_and_a_musicbud_profile(client, users, demo_models):
    body = {"type": "movies", "item_id": "tt1", "event": "click"}
    assert (await client.post(URL, body, content_type="application/json")).status_code == 401
    response = await client.post(URL, body, content_type="application/json",
                                 headers=bearer(token_for(users["newcomer"])))
    assert response.status_code == 404 and "ParentUser" in response.json()["message"]


async def test_it_is_throttled_per_user(client, users, demo_models, monkeypatch):
    monkeypatch.setattr(feedback_views.FeedbackThrottle, "rate", "2/min", raising=False)
    item = (await _movies(client, users["normal"], n=1))[0]
    body = {"type": "movies", "item_id": item, "event": "impression"}
    codes = [(await client.post(URL, body, content_type="application/json",
                                headers=bearer(token_for(users["normal"])))).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    graph.query("MATCH ()-[r:IMPRESSED]->() DELETE r")
