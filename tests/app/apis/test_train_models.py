"""POST /v1/recommendations/train/models/: staff only, every type, 409 while a training runs."""
import asyncio

import pytest
from django.conf import settings

from app.content_types import CONTENT_TYPES
from app.services.training import training_lock, training_running
from tests.app.apis.conftest import assert_envelope, bearer, token_for

pytestmark = pytest.mark.django_db(transaction=True)


async def test_staff_trains_every_type(client, users, demo_models):
    from app.services.model_registry import registry

    before = registry.version("movie")["version"]
    response = await client.post("/v1/recommendations/train/models/", headers=bearer(token_for(users["staff"])))
    assert response.status_code == 200
    body = response.json()
    assert_envelope(body, success=True)
    assert body["message"] == "Model training completed"
    assert body["data"] == {**{ct.model_key: True for ct in CONTENT_TYPES}, "taste": True}
    assert registry.version("movie")["version"] != before


async def test_it_is_forbidden_to_a_normal_user(client, users, demo_models):
    response = await client.post("/v1/recommendations/train/models/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 403
    assert_envelope(response.json(), success=False)


async def test_it_requires_a_token(client, demo_models):
    response = await client.post("/v1/recommendations/train/models/")
    assert response.status_code == 401


async def test_it_answers_409_while_a_training_runs(client, users, demo_models):
    with training_lock():
        response = await client.post("/v1/recommendations/train/models/", headers=bearer(token_for(users["staff"])))
    assert response.status_code == 409
    assert_envelope(response.json(), success=False)
    assert "already running" in response.json()["message"]


def _training_running() -> bool:
    return training_running(model_dir=settings.MUSICBUD_MODEL_DIR)


async def test_recommendations_are_served_while_a_training_runs(client, users, demo_models):
    training = asyncio.create_task(
        client.post("/v1/recommendations/train/models/", headers=bearer(token_for(users["staff"]))))
    for _ in range(400):
        if _training_running():
            break
        await asyncio.sleep(0.01)
    assert _training_running(), "the training never started"
    served = await client.get("/v1/recommendations/movies/?n=5", headers=bearer(token_for(users["normal"])))
    still_training = _training_running()
    assert served.status_code == 200 and len(served.json()["data"]) == 5
    assert still_training, "the training finished before the request was answered: make the graph bigger"
    assert (await training).status_code == 200
