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
