"""GET /metrics: Prometheus' text format for staff or the configured scrape token, never for anyone else."""
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.content_types import CONTENT_TYPES
from tests.app.apis.conftest import bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def samples(text: str) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def requests_of(parsed: dict, route: str, status: str = "200") -> float:
    return sum(v for (name, labels), v in parsed.items() if name == "musicbud_http_requests_total"
               and dict(labels).get("route") == route and dict(labels).get("status") == status)


async def test_it_requires_credentials(client, demo_models):
    response = await client.get("/metrics")
    assert response.status_code == 401


async def test_it_is_forbidden_to_a_normal_user(client, users, demo_models):
    response = await client.get("/metrics", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 403


async def test_a_wrong_scrape_token_is_refused(client, demo_models, settings):
    settings.MUSICBUD_METRICS_TOKEN = "the-right-scrape-token"
    response = await client.get("/metrics", headers=bearer("not-the-scrape-token"))
    assert response.status_code == 401


async def test_the_scrape_token_reads_the_metrics(client, demo_models, settings):
    settings.MUSICBUD_METRICS_TOKEN = "the-right-scrape-token"
    response = await client.get("/metrics", headers=bearer("the-right-scrape-token"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    parsed = samples(response.content.decode())
    assert parsed[("musicbud_neo4j_up", ())] == 1.0


async def test_staff_reads_counters_that_move_and_every_model(client, users, demo_models):
    staff = bearer(token_for(users["staff"]))
    before = samples((await client.get("/metrics", headers=staff)).content.decode())
    normal = bearer(token_for(users["normal"]))
    for _ in range(3):
        assert (await client.get("/v1/recommendations/movies/?n=5", headers=normal)).status_code == 200
    assert (await client.get("/v1/recommendations/nope/", headers=normal)).status_code == 400
    after = samples((await client.get("/metrics", headers=staff)).content.decode())
    assert requests_of(after, "recommendations-movies") - requests_of(before, "recommendations-movies") == 3
    # an unknown type is counted under its route's name, not its raw path
    assert requests_of(after, "recommendations-type", "400") - requests_of(before, "recommendations-type", "400") == 1
    assert not any("nope" in str(labels) for _, labels in after)
    hits = after.get(("musicbud_answer_cache_total", (("result", "hit"),)), 0)
    assert hits - before.get(("musicbud_answer_cache_total", (("result", "hit"),)), 0) >= 2  # the same answer again
    for ct in CONTENT_TYPES:
        assert any(name == "musicbud_model_info" and dict(labels)["type"] == ct.model_key for name, labels in after)
        assert after[("musicbud_model_age_seconds", (("type", ct.model_key),))] >= 0
        assert after[("musicbud_model_size_bytes", (("type", ct.model_key),))] > 0
    assert 0 <= after[("musicbud_model_heldout", (("metric", "auc"), ("type", "movie")))] <= 1
    latency = [v for (name, labels), v in after.items() if name == "musicbud_http_request_duration_seconds_count"
               and dict(labels)["route"] == "recommendations-movies"]
    assert latency and latency[0] >= 3
