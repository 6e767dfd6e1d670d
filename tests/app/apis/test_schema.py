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


async def _assert_valid(client, schema, path, method="get", headers=None, status=200, **kwargs):
    response = await getattr(client, method)(path, headers=headers or {}, **kwargs)
    assert response.status_code == status, response.content
    template = path.split("?")[0]
    OAS30Validator(_response_schema(schema, template, method, status)).validate(response.json())


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
    await _assert_valid(client, schema, "/v1/login/", method="post", data={"username": "demo", "password": "demo-pass-123"},
                        content_type="application/json")
