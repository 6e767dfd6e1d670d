"""Access tokens of the original MusicBud backend (simplejwt's, signed with the same key, `user_id` = the Django
user's pk and no `username` claim): the username is read from the auth database; a user id it does not hold is
answered 401."""
import pytest

from app import authentication
from tests.app.apis.conftest import assert_envelope, bearer, original_backend_token_for

pytestmark = pytest.mark.django_db(transaction=True)

UNKNOWN = "The token's user is unknown here: log in to this service again."


async def test_a_token_without_the_username_claim_serves_its_user(client, users, demo_models):
    token = original_backend_token_for(users["normal"].pk)
    ping = await client.get("/v1/ping/", headers=bearer(token))
    assert ping.status_code == 200
    assert ping.json()["data"]["username"] == "demo"
    response = await client.get("/v1/recommendations/movies/?n=5", headers=bearer(token))
    assert response.status_code == 200
    assert {item["reason"] for item in response.json()["data"]} != {"popular"}  # demo's own recommendations


async def test_the_username_is_read_once_per_user_id_while_the_token_is_valid(client, users, monkeypatch):
    lookups = []
    original = authentication.username_for_user_id
    monkeypatch.setattr(authentication, "username_for_user_id",
                        lambda **kw: lookups.append(kw) or original(**kw))
    authentication._USERNAMES.clear()
    for _ in range(3):
        token = original_backend_token_for(users["staff"].pk)  # a new token string each time
        assert (await client.get("/v1/ping/", headers=bearer(token))).json()["data"]["username"] == "admin"
    assert len(lookups) == 1


@pytest.mark.parametrize("user_id", [987654321, "987654321", "not-a-number"])
async def test_a_token_of_a_user_id_unknown_here_answers_401(client, users, user_id):
    response = await client.get("/v1/ping/", headers=bearer(original_backend_token_for(user_id)))
    assert response.status_code == 401
    body = response.json()
    assert_envelope(body, success=False)
    assert body["message"] == UNKNOWN


async def test_a_token_without_a_user_id_answers_401(client):
    import time

    import jwt
    from django.conf import settings

    token = jwt.encode({"token_type": "access", "exp": int(time.time()) + 600, "jti": "x"},
                       settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    response = await client.get("/v1/ping/", headers=bearer(token))
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)
