"""POST /v1/login/ (also /v1/login, /v1/auth/login, /v1/auth/login/json): JSON or form-encoded, tokens at the top
level, throttled against password guessing on every path together."""
import pytest

from tests.app.apis.conftest import assert_envelope

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_returns_an_access_and_a_refresh_token(client, users):
    response = await client.post("/v1/login/", {"username": "demo", "password": "demo-pass-123"},
                                 content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "message", "access_token", "refresh_token"}
    assert body["success"] is True
    assert body["access_token"].count(".") == 2


async def test_it_refuses_a_wrong_password_with_401(client, users):
    response = await client.post("/v1/login/", {"username": "demo", "password": "nope-nope"},
                                 content_type="application/json")
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)
    assert "Invalid username or password" in response.json()["message"]


async def test_it_answers_400_for_a_missing_field(client, users):
    response = await client.post("/v1/login/", {"username": "demo"}, content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert_envelope(body, success=False)
    assert "password" in body["errors"]


async def test_it_answers_400_for_a_body_that_is_not_json(client, users):
    response = await client.post("/v1/login/", "username=demo", content_type="application/json")
    assert response.status_code == 400
    assert_envelope(response.json(), success=False)


async def test_it_answers_405_to_get(client):
    response = await client.get("/v1/login/")
    assert response.status_code == 405
    assert_envelope(response.json(), success=False)


async def test_it_is_throttled_against_password_guessing(client, users, settings):
    from django.core.cache import caches

    caches["throttle"].clear()
    codes = []
    for _ in range(12):  # the default rate is 10/min per client
        response = await client.post("/v1/login/", {"username": "demo", "password": "guess-guess"},
                                     content_type="application/json")
        codes.append(response.status_code)
    assert codes[:10] == [401] * 10
    assert codes[-1] == 429
    assert_envelope(response.json(), success=False)
    caches["throttle"].clear()


@pytest.mark.parametrize("path", ["/v1/login/", "/v1/login", "/v1/auth/login", "/v1/auth/login/json"])
async def test_every_path_answers_the_same_tokens(client, users, fresh_throttle, path):
    response = await client.post(path, {"username": "demo", "password": "demo-pass-123"},
                                 content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"success", "message", "access_token", "refresh_token"}


async def test_it_accepts_a_form_encoded_body(client, users, fresh_throttle):
    response = await client.post("/v1/login/", "username=demo&password=demo-pass-123",
                                 content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert response.json()["access_token"].count(".") == 2


async def test_it_answers_415_for_another_content_type(client, users, fresh_throttle):
    response = await client.post("/v1/auth/login", "username=demo", content_type="text/plain")
    assert response.status_code == 415
    assert_envelope(response.json(), success=False)


async def test_the_throttle_counts_every_login_path_together(client, users, fresh_throttle):
    paths = ["/v1/login/", "/v1/login", "/v1/auth/login", "/v1/auth/login/json"]
    codes = [(await client.post(paths[i % 4], {"username": "demo", "password": "guess-guess"},
                                content_type="application/json")).status_code for i in range(11)]
    assert codes == [401] * 10 + [429]
