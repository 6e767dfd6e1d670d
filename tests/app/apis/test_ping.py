"""GET /v1/ping/: a token check and nothing else (the serving benchmark's yardstick)."""
import asyncio
from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.app.apis.conftest import assert_envelope, bearer, expired_token_for, token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_it_answers_the_tokens_username(client, users):
    response = await client.get("/v1/ping/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert body["data"] == {"username": "demo"}


async def test_it_requires_a_token(client):
    response = await client.get("/v1/ping/")
    assert response.status_code == 401
    assert_envelope(response.json(), success=False)


async def test_it_refuses_an_expired_token(client, users):
    response = await client.get("/v1/ping/", headers=bearer(expired_token_for(users["normal"])))
    assert response.status_code == 401


async def test_a_token_accepted_before_is_refused_once_it_expires(client, users):
    token = AccessToken.for_user(users["normal"])
    token["username"] = "demo"
    token.set_exp(lifetime=timedelta(seconds=2))  # exp is whole seconds: at least 1 s from now
    assert (await client.get("/v1/ping/", headers=bearer(str(token)))).status_code == 200
    await asyncio.sleep(2.5)
    assert (await client.get("/v1/ping/", headers=bearer(str(token)))).status_code == 401


async def test_the_seeds_design_is_not_served_unless_the_benchmark_asks_for_it(client, users):
    response = await client.get("/v1/bench/seed-baseline/movies/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 404
