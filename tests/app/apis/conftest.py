"""API test fixtures: a real Neo4j with a small demo graph and trained models (once per test module), Django
users, tokens, and Django's async test client (the views are async: no sync client)."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import AsyncClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from app.services.model_registry import registry

DEMO_ARGS = dict(seed=7, users=80, items_per_type=60, interactions_per_user=15)


_SEEDED: dict = {}


@pytest.fixture(scope="module")
def demo_models(neo4j, django_db_setup, django_db_blocker, tmp_path_factory):
    """A small demo graph in the throwaway Neo4j and every type's model trained from it. Seeded and trained
    once, and again only when another test module has wiped the graph (the marker node is gone)."""
    from app import graph
    from app.services.recommendation_service import models_train

    marker = graph.query("MATCH (m:TestMarker {name: 'demo'}) RETURN m.run AS run")
    if marker and _SEEDED.get("run") == marker[0]["run"]:
        settings.MUSICBUD_MODEL_DIR = _SEEDED["model_dir"]
        registry.__init__()
        return _SEEDED["results"]
    settings.MUSICBUD_MODEL_DIR = tmp_path_factory.mktemp("models")
    registry.__init__()  # forget models of an earlier module
    graph.query("MATCH (n) DETACH DELETE n")
    with django_db_blocker.unblock():
        call_command("seed_demo", **DEMO_ARGS, stdout=open("/dev/null", "w"))
    results = models_train()
    assert all(results.values()), results
    run = time.time()
    graph.query("CREATE (:TestMarker {name: 'demo', run: $run})", run=run)
    _SEEDED.update(run=run, model_dir=settings.MUSICBUD_MODEL_DIR, results=results)
    return results


def _user(model, username: str, password: str, *, is_staff: bool = False):
    user, _ = model.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_staff = is_staff
    user.save()
    return user


@pytest.fixture
def users(transactional_db, django_user_model):
    """A staff user, a normal user with history in every domain (ParentUser 'demo' of the demo graph), and a
    newcomer with no ParentUser at all. Transactional: views read the database from worker threads."""
    return {
        "staff": _user(django_user_model, "admin", "admin-pass-123", is_staff=True),
        "normal": _user(django_user_model, "demo", "demo-pass-123"),
        "newcomer": _user(django_user_model, "newcomer", "newcomer-pass-123"),
    }


def token_for(user) -> str:
    refresh = RefreshToken.for_user(user)
    refresh["username"] = user.username
    return str(refresh.access_token)


def expired_token_for(user) -> str:
    token = AccessToken.for_user(user)
    token["username"] = user.username
    token.set_exp(lifetime=-timedelta(seconds=5))
    return str(token)


def forged_token_for(user) -> str:
    payload = {"token_type": "access", "exp": int(time.time()) + 600, "jti": "x", "user_id": str(user.pk),
               "username": user.username}
    return jwt.encode(payload, "not-the-secret-key-at-all-not-at-all", algorithm="HS256")


def none_alg_token_for(user) -> str:
    payload = {"token_type": "access", "exp": int(time.time()) + 600, "jti": "x", "user_id": str(user.pk),
               "username": user.username}
    return jwt.encode(payload, None, algorithm="none")


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def client() -> AsyncClient:
    return AsyncClient()


def assert_envelope(body: dict, *, success: bool) -> None:
    assert set(body) >= {"success", "message", "data"}
    assert body["success"] is success
    assert isinstance(body["message"], str) and body["message"]
    if not success:
        assert body["data"] is None


def original_backend_token_for(user_id) -> str:
    """An access token as the original MusicBud backend's simplejwt issues it: signed with the same key, claims
    `user_id` (the Django user's pk) and no `username`."""
    payload = {"token_type": "access", "exp": int(time.time()) + 600, "iat": int(time.time()),
               "jti": uuid.uuid4().hex, "user_id": user_id}
    return jwt.encode(payload, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")


@pytest.fixture
def fresh_throttle():
    """Throttle counts emptied before and after (the guest and login endpoints count per client address)."""
    from django.core.cache import caches

    caches["throttle"].clear()
    yield
    caches["throttle"].clear()


async def some_item_id(client, type_key: str) -> str:
    """The id of one item of a type the served model holds (the first popular one)."""
    body = (await client.get("/v1/recommendations/public/", {"type": type_key, "n": 1})).json()
    return body["data"][type_key][0]["id"]
