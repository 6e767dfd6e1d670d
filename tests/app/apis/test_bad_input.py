"""Bad input on every endpoint gets a clear 4xx in the envelope, never a 500: bodies over
DATA_UPLOAD_MAX_MEMORY_SIZE (413, JSON bodies included: DRF's parsers read the stream past Django's own check),
unknown or valueless query parameters, n out of range, unknown ids, bodies that are not JSON."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.conf import settings

from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)

USER = SimpleNamespace(id=424242, pk=424242, username="demo", is_active=True)  # the token is all these views read
GETS_WITH_N = ["/v1/recommendations/", "/v1/recommendations/movies/", "/v1/recommendations/buds/",
               "/v1/recommendations/anime/1/similar/", "/v1/recommendations/public/"]


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert_envelope(body, success=False)
    return body


def _too_big() -> str:
    return json.dumps({"username": "demo", "password": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})


@pytest.mark.parametrize("url", ["/v1/login/", "/v1/token/refresh/"])
async def test_a_json_body_over_the_limit_gets_413(client, url):
    response = await client.post(url, _too_big(), content_type="application/json")
    assert "too large" in _error(response, 413)["message"]


async def test_a_body_over_the_limit_gets_413_on_an_authenticated_endpoint_too(client):
    response = await client.post("/v1/recommendations/train/models/", _too_big(), content_type="application/json",
                                 headers=bearer(token_for(USER)))
    _error(response, 413)


async def test_a_body_at_the_limit_is_read(client):
    body = json.dumps({"username": "demo", "password": "p"})
    body += " " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE - len(body))
    response = await client.post("/v1/login/", body, content_type="application/json")
    assert response.status_code == 401  # parsed, then refused as a wrong password


@pytest.mark.parametrize("url", GETS_WITH_N + ["/v1/health/"])
async def test_an_unknown_query_parameter_gets_400_naming_it(client, url):
    response = await client.get(url, {"count": "5"}, headers=bearer(token_for(USER)))
    assert "count" in _error(response, 400)["message"]


@pytest.mark.parametrize("url", GETS_WITH_N)
async def test_a_parameter_without_a_value_gets_400(client, url):
    response = await client.get(f"{url}?n=", headers=bearer(token_for(USER)))
    assert "n" in _error(response, 400)["errors"]


@pytest.mark.parametrize("url", GETS_WITH_N)
@pytest.mark.parametrize("n", ["0", "101", "-3", "abc", "1e3", "2.5"])
async def test_n_out_of_range_gets_400(client, url, n):
    response = await client.get(url, {"n": n}, headers=bearer(token_for(USER)))
    assert "n" in _error(response, 400)["errors"]


async def test_an_unknown_public_type_gets_400(client):
    from django.core.cache import caches

    caches["throttle"].clear()
    response = await client.get("/v1/recommendations/public/", {"type": "podcasts"})
    assert "type" in _error(response, 400)["errors"]
    caches["throttle"].clear()


@pytest.mark.parametrize("item_id", ["0", "999999999", "not-a-number", "%00", "..", "x" * 300])
async def test_an_unknown_item_id_gets_404(client, demo_models, item_id):
    response = await client.get(f"/v1/recommendations/anime/{item_id}/similar/", headers=bearer(token_for(USER)))
    _error(response, 404)


@pytest.mark.parametrize("body, content_type, status", [
    ("{not json", "application/json", 400),
    ("[1, 2, 3]", "application/json", 400),
    ('"a string"', "application/json", 400),
    ('{"username": ["demo"], "password": {"a": 1}}', "application/json", 400),
    ('{"username": "de\\u0000mo", "password": "x"}', "application/json", 400),
    ("username=demo&password=x", "text/plain", 415),
    ("username=demo", "application/x-www-form-urlencoded", 400),
    ("<xml/>", "text/xml", 415),
])
async def test_a_body_that_is_not_the_expected_json_gets_a_4xx(client, body, content_type, status):
    from django.core.cache import caches

    caches["throttle"].clear()
    response = await client.post("/v1/login/", body, content_type=content_type)
    _error(response, status)
    caches["throttle"].clear()
