"""Bad input on every endpoint gets a clear 4xx in the envelope, never a 500: bodies over
DATA_UPLOAD_MAX_MEMORY_SIZE (413, JSON bodies included: DRF's parsers read the stream past Django's own check),
unknown or valueless query parameters, n or limit out of range (or both, differing), unknown types and ids,
bodies that are not JSON (or form-encoded, for login)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from django.conf import settings

from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_throttle")]

USER = SimpleNamespace(id=424242, pk=424242, username="demo", is_active=True)  # the token is all these views read
GUESTS_WITH_LIMIT = ["/v1/recommendations/public/", "/v1/discover/public/", "/v1/discover/public/trending/",
                     "/v1/discover/public/trending", "/v1/discover/public/genres/", "/v1/discover/public/genres"]
GETS_WITH_N = ["/v1/recommendations/", "/v1/recommendations", "/v1/recommendations/movies/",
               "/v1/recommendations/buds/", "/v1/recommendations/anime/1/similar/", *GUESTS_WITH_LIMIT]
GETS_WITHOUT_PARAMETERS = ["/v1/health/", "/v1/health", "/health", "/v1/auth/me", "/v1/ping/",
                           "/v1/content/public/movie/tt1/", "/v1/discover/public/anime/1/"]


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert_envelope(body, success=False)
    return body


def _too_big() -> str:
    return json.dumps({"username": "demo", "password": "x" * settings.DATA_UPLOAD_MAX_MEMORY_SIZE})


@pytest.mark.parametrize("url", ["/v1/login/", "/v1/login", "/v1/auth/login/json", "/v1/token/refresh/",
                                 "/v1/auth/refresh"])
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


@pytest.mark.parametrize("url", GETS_WITH_N + GETS_WITHOUT_PARAMETERS)
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


@pytest.mark.parametrize("url", GUESTS_WITH_LIMIT)
@pytest.mark.parametrize("limit", ["0", "101", "abc", "2.5"])
async def test_limit_out_of_range_gets_400(client, url, limit):
    response = await client.get(url, {"limit": limit})
    assert "limit" in _error(response, 400)["errors"]


@pytest.mark.parametrize("url", GUESTS_WITH_LIMIT)
async def test_n_and_limit_that_differ_get_400_naming_both(client, url):
    message = _error(await client.get(url, {"n": "2", "limit": "3"}), 400)["message"]
    assert "n=2" in message and "limit=3" in message


@pytest.mark.parametrize("url, parameter", [("/v1/recommendations/public/", "type"),
                                            ("/v1/discover/public/trending/", "type"),
                                            ("/v1/discover/public/trending", "content_type"),
                                            ("/v1/discover/public/genres/", "category")])
async def test_an_unknown_public_type_gets_400(client, url, parameter):
    response = await client.get(url, {parameter: "podcasts"})
    assert parameter in _error(response, 400)["errors"]


@pytest.mark.parametrize("url", ["/v1/recommendations/podcasts/", "/v1/content/public/podcast/1/",
                                 "/v1/discover/public/podcast/1/"])
async def test_an_unknown_type_in_the_path_gets_400(client, url):
    response = await client.get(url, headers=bearer(token_for(USER)))
    assert "Invalid" in _error(response, 400)["message"]


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
    ("<xml/>", "text/xml", 415),
    ("username=de%00mo&password=x", "application/x-www-form-urlencoded", 400),
    ("username=demo", "application/x-www-form-urlencoded", 400),
])
@pytest.mark.parametrize("url", ["/v1/login/", "/v1/auth/login/json", "/v1/token/refresh", "/v1/auth/refresh"])
async def test_a_body_that_is_not_the_expected_one_gets_a_4xx(client, body, content_type, status, url):
    if url.endswith("refresh") and content_type == "application/x-www-form-urlencoded":
        status = 415  # the refresh endpoints take JSON only
    response = await client.post(url, body, content_type=content_type)
    _error(response, status)


@pytest.mark.parametrize("url", ["/v1/experiments/x/", "/v1/no-such-endpoint/", "/v1/recommendations/movies/a/b/similar/",
                                 "/nothing-here"])
async def test_a_path_no_endpoint_matches_is_a_404_in_the_envelope_not_html(client, url):
    response = await client.get(url)
    assert response["Content-Type"].startswith("application/json")
    assert _error(response, 404)["message"] == "Not found."


async def test_a_query_string_django_refuses_is_a_400_in_the_envelope(client):
    fields = "&".join(f"f{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = await client.get(f"/v1/recommendations/public/?{fields}")
    assert response["Content-Type"].startswith("application/json")
    _error(response, 400)
