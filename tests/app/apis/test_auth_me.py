"""GET /v1/auth/me: the signed-in account from the auth database; 401 without a token or for a user not there."""
import pytest

from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_answers_the_account(client, users):
    user = users["staff"]
    user.first_name, user.last_name, user.email = "Ada", "Lovelace", "ada@example.org"
    await user.asave()
    response = await client.get("/v1/auth/me", headers=bearer(token_for(user)))
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert body["data"] == {"username": "admin", "first_name": "Ada", "last_name": "Lovelace",
                            "email": "ada@example.org", "avatar_url": None, "is_staff": True}


async def test_it_requires_a_token(client):
    response = await client.get("/v1/auth/me")
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)


async def test_it_answers_401_for_a_user_no_longer_in_the_auth_database(client, users):
    token = token_for(users["newcomer"])
    await users["newcomer"].adelete()
    response = await client.get("/v1/auth/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json()["message"] == "The token's user is unknown here: log in to this service again."
