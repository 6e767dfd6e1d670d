"""GET /v1/schema/ and /v1/docs/: OpenAPI 3 generated without warnings, and real answers valid against it."""
import io

import pytest
import yaml
from django.core.management import call_command
from openapi_schema_validator import OAS30Validator

from app.content_types import CONTENT_TYPES
from tests.app.apis.conftest import bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out), stderr=io.StringIO())
    schema = yaml.safe_load(out.read_text())
    assert "/v1/recommendations/movies/" in schema["paths"]


async def test_schema_and_docs_need_no_token(client):
    assert (await client.get("/v1/schema/")).status_code == 200
    assert (await client.get("/v1/docs/")).status_code == 200


def _response_schema(schema: dict, path: str, method: str, status: int) -> dict:
    operation = schema["paths"][path][method]
    content = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    return {**content, "components": schema["components"]}


async def _assert_valid(client, schema, path, method="get", headers=None, status=200, template=None, **kwargs):
    response = await getattr(client, method)(path, headers=headers or {}, **kwargs)
    assert response.status_code == status, response.content
    template = template or path.split("?")[0]
    OAS30Validator(_response_schema(schema, template, method, status)).validate(response.json())
    return response.json()


async def test_every_endpoint_answers_as_its_schema_says(client, users, demo_models):
    schema = yaml.safe_load((await client.get("/v1/schema/")).content)
    user = bearer(token_for(users["normal"]))
    await _assert_valid(client, schema, "/v1/recommendations/", headers=user)
    for ct in CONTENT_TYPES:
        await _assert_valid(client, schema, f"/v1/recommendations/{ct.key}/?n=3", headers=user)
    await _assert_valid(client, schema, "/v1/recommendations/buds/", headers=user)
    await _assert_valid(client, schema, "/v1/recommendations/public/?type=movies")
    await _assert_valid(client, schema, "/v1/health/")
    await _assert_valid(client, schema, "/v1/recommendations/movies/", headers=user, status=400,
                        data={"n": "abc"})
    await _assert_valid(client, schema, "/v1/recommendations/", status=401)
    login = await _assert_valid(client, schema, "/v1/login/", method="post",
                                data={"username": "demo", "password": "demo-pass-123"}, content_type="application/json")


async def test_every_endpoint_the_apps_call_answers_as_its_schema_says(client, users, demo_models, fresh_throttle):
    schema = yaml.safe_load((await client.get("/v1/schema/")).content)
    user = bearer(token_for(users["normal"]))
    for path in ("/v1/login", "/v1/auth/login", "/v1/auth/login/json"):
        login = await _assert_valid(client, schema, path, method="post", data="username=demo&password=demo-pass-123",
                                    content_type="application/x-www-form-urlencoded")
    for path in ("/v1/token/refresh/", "/v1/token/refresh", "/v1/auth/refresh"):
        await _assert_valid(client, schema, path, method="post", data={"refresh": login["refresh_token"]},
                            content_type="application/json")
        await _assert_valid(client, schema, path, method="post", data={"refresh": "x.y.z"},
                            content_type="application/json", status=401)
    await _assert_valid(client, schema, "/v1/auth/me", headers=user)
    await _assert_valid(client, schema, "/v1/recommendations?n=2", headers=user)
    await _assert_valid(client, schema, "/v1/recommendations/public/?genre=drama&limit=3")
    await _assert_valid(client, schema, "/v1/recommendations/public/?n=1&limit=2", status=400)
    await _assert_valid(client, schema, "/v1/discover/public/?n=2")
    for path in ("/v1/discover/public/trending/", "/v1/discover/public/trending"):
        await _assert_valid(client, schema, f"{path}?n=2")
        await _assert_valid(client, schema, f"{path}?content_type=tracks")
    for path in ("/v1/discover/public/genres/", "/v1/discover/public/genres"):
        await _assert_valid(client, schema, path)
    movie = (await client.get("/v1/recommendations/public/?type=movies&n=1")).json()["data"]["movies"][0]["id"]
    for prefix in ("/v1/content/public", "/v1/discover/public"):
        template = prefix + "/{content_type}/{item_id}/"
        await _assert_valid(client, schema, f"{prefix}/movie/{movie}/", template=template)
        await _assert_valid(client, schema, f"{prefix}/movie/tt0/", template=template, status=404)
        await _assert_valid(client, schema, f"{prefix}/film/tt0/", template=template, status=400)
    await _assert_valid(client, schema, "/v1/health")
    await _assert_valid(client, schema, "/health")
