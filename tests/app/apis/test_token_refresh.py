"""POST /v1/token/refresh/, /v1/token/refresh and /v1/auth/refresh: a refresh token (`refresh` or `refresh_token`) for
a new access token, at the top level (`access`, `access_token`) and in the envelope; 401 for a bad one."""
import pytest

from tests.app.apis.conftest import assert_envelope, bearer

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_exchanges_a_refresh_token_for_a_working_access_token(client, users, demo_models):
    login = (await client.post("/v1/login/", {"username": "demo", "password": "demo-pass-123"},
                               content_type="application/json")).json()
    response = await client.post("/v1/token/refresh/", {"refresh": login["refresh_token"]},
                                 content_type="application/json")
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    access = body["data"]["access_token"]
    again = await client.get("/v1/recommendations/movies/", headers=bearer(access))
    assert again.status_code == 200


async def test_it_refuses_a_garbage_refresh_token_with_401(client):
    response = await client.post("/v1/token/refresh/", {"refresh": "abc.def.ghi"}, content_type="application/json")
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)


async def test_it_refuses_an_access_token_as_refresh_token(client, users):
    login = (await client.post("/v1/login/", {"username": "demo", "password": "demo-pass-123"},
                               content_type="application/json")).json()
    response = await client.post("/v1/token/refresh/", {"refresh": login["access_token"]},
                                 content_type="application/json")
    assert response.status_code == 401


async def _refresh_token(client) -> str:
    login = await client.post("/v1/login/", {"username": "demo", "password": "demo-pass-123"},
                              content_type="application/json")
    return login.json()["refresh_token"]


@pytest.mark.parametrize("path", ["/v1/token/refresh/", "/v1/token/refresh", "/v1/auth/refresh"])
@pytest.mark.parametrize("key", ["refresh", "refresh_token"])
async def test_every_path_takes_either_key_and_answers_the_token_at_the_top_level_and_in_data(
        client, users, fresh_throttle, path, key):
    response = await client.post(path, {key: await _refresh_token(client)}, content_type="application/json")
    assert response.status_code == 200  # never a redirect
    body = response.json()
    assert_envelope(body, success=True)
    assert body["access"] == body["access_token"] == body["data"]["access_token"]
    assert (await client.get("/v1/ping/", headers=bearer(body["access"]))).json()["data"]["username"] == "demo"


async def test_both_keys_with_different_tokens_answer_400(client, users, fresh_throttle):
    refresh = await _refresh_token(client)
    response = await client.post("/v1/token/refresh/", {"refresh": refresh, "refresh_token": refresh + "x"},
                                 content_type="application/json")
    assert response.status_code == 400
    assert "refresh_token" in response.json()["errors"]


async def test_no_token_answers_400(client):
    response = await client.post("/v1/token/refresh/", {}, content_type="application/json")
    assert response.status_code == 400
    assert_envelope(response.json(), success=False)
    assert "refresh" in response.json()["errors"]


@pytest.mark.parametrize("path", ["/v1/token/refresh", "/v1/auth/refresh"])
async def test_a_garbage_token_answers_401_on_every_path(client, path):
    response = await client.post(path, {"refresh_token": "abc.def.ghi"}, content_type="application/json")
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)


async def test_an_expired_refresh_token_answers_401(client, users):
    from datetime import timedelta

    from rest_framework_simplejwt.tokens import RefreshToken

    token = RefreshToken.for_user(users["normal"])
    token.set_exp(lifetime=-timedelta(seconds=5))
    response = await client.post("/v1/token/refresh/", {"refresh": str(token)}, content_type="application/json")
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)


@pytest.mark.parametrize("user_id", [987654321, "not-a-number"])
async def test_a_refresh_token_of_a_user_unknown_here_answers_401(client, users, user_id):
    from rest_framework_simplejwt.tokens import RefreshToken

    token = RefreshToken()
    token["user_id"] = user_id  # e.g. the original backend's token for a user who never logged in here
    response = await client.post("/v1/token/refresh/", {"refresh": str(token)}, content_type="application/json")
    assert response.status_code == 401
    body = response.json()
    assert_envelope(body, success=False)
    assert body["message"] == "The token's user is unknown here: log in to this service again."
