"""Every URL pattern (the per-type ones and the catch-alls included) and every method of its view: all but the
public endpoints answer 401 without a token and with a forged, an expired or an alg=none token; the staff-only
ones answer 403 to a normal user."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from app.views.metrics_views import IsScraperOrStaff
from app.views.recommendations_views import IsStaff
from tests.app.apis.conftest import (
    assert_envelope,
    bearer,
    expired_token_for,
    forged_token_for,
    none_alg_token_for,
    token_for,
)

pytestmark = pytest.mark.django_db(transaction=True)

# Tokens are checked before anything reads the auth database: a user that is not even there will do.
USER = SimpleNamespace(id=424242, pk=424242, username="demo", is_active=True)
PUBLIC = {"login", "login-no-slash", "auth-login", "auth-login-json", "token-refresh", "token-refresh-no-slash",
          "auth-refresh", "health", "health-no-slash", "health-root", "schema", "docs", "redoc", "recommendations-public",
          "discover-public", "discover-public-trending", "discover-public-trending-no-slash", "discover-public-genres",
          "discover-public-genres-no-slash", "content-public-details", "discover-public-details"}
SAMPLES = {"type_key": "podcasts", "item_id": "tt0000001", "experiment_id": "1"}  # an unknown type too must not answer before auth


def _patterns(patterns=None, prefix: str = "/"):
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def _url(route: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLES.get(m.group(1), "x"), route)


def _methods(view_class) -> list[str]:
    methods = [m for m in ("get", "post", "put", "patch", "delete") if hasattr(view_class, m)]
    return methods + (["head"] if "get" in methods else []) + ["options"]


# The API's views (the dashboard's session-login pages and /static/ are tested in tests/reliability/test_dashboard.py)
ENDPOINTS = [(_url(route), p.name, p.callback.view_class) for route, p in _patterns()
             if issubclass(getattr(p.callback, "view_class", object), APIView)]
PROTECTED = [(url, name, view, method) for url, name, view in ENDPOINTS if name not in PUBLIC
             for method in _methods(view)]
STAFF_ONLY = [(url, name, view, method) for url, name, view, method in PROTECTED
              if {IsStaff, IsScraperOrStaff} & set(getattr(view, "permission_classes", ())) and method != "options"]


def test_the_walk_sees_every_kind_of_endpoint():
    names = {name for _, name, _ in ENDPOINTS}
    assert PUBLIC <= names
    assert {"recommendations", "recommendations-no-slash", "recommendations-movies", "similar-anime",
            "recommendations-type", "similar-type", "train-models", "recommendations-buds", "auth-me"} <= names
    assert len(PROTECTED) > 30 and STAFF_ONLY


def _id(case) -> str:
    url, name, _, method = case
    return f"{method.upper()} {url}"


async def _call(client, method: str, url: str, headers: dict):
    return await getattr(client, method)(url, headers=headers)


@pytest.mark.parametrize("case", PROTECTED, ids=[_id(c) for c in PROTECTED])
async def test_it_answers_401_without_a_token_and_to_every_bad_token(client, case):
    url, _, _, method = case
    user = USER
    for headers in ({}, bearer(forged_token_for(user)), bearer(expired_token_for(user)),
                    bearer(none_alg_token_for(user)), {"Authorization": "Basic ZGVtbzpkZW1vLXBhc3MtMTIz"},
                    bearer("not-a-jwt")):
        response = await _call(client, method, url, headers)
        assert response.status_code == 401, (method, url, headers, response.content)
        if method != "head":
            assert_envelope(response.json(), success=False)


@pytest.mark.parametrize("case", STAFF_ONLY, ids=[_id(c) for c in STAFF_ONLY])
async def test_a_staff_only_endpoint_answers_403_to_a_normal_user(client, users, case):
    url, _, _, method = case
    response = await _call(client, method, url, bearer(token_for(users["normal"])))  # a real, active user
    assert response.status_code == 403
    if method != "head":
        assert_envelope(response.json(), success=False)


@pytest.mark.parametrize("url", ["/v1/health/", "/v1/health", "/health", "/v1/schema/", "/v1/docs/", "/v1/redoc/"])
async def test_the_public_reads_need_no_token(client, url):
    assert (await client.get(url)).status_code == 200


@pytest.mark.parametrize("url", sorted({url for url, _, _ in ENDPOINTS}))
async def test_a_method_no_endpoint_has_answers_405_to_anyone(client, url):
    response = await client.generic("TRACE", url)
    assert response.status_code == 405
    if url not in ("/v1/schema/", "/v1/docs/", "/v1/redoc/"):
        assert_envelope(response.json(), success=False)
