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


async def _status(client, users) -> dict:
    response = await client.get("/v1/recommendations/train/models/status/", headers=bearer(token_for(users["staff"])))
    assert response.status_code == 200, response.content
    return response.json()["data"]


async def test_wait_false_answers_202_with_the_job_and_its_status_follows_it_to_the_end(client, users, demo_models):
    response = await client.post("/v1/recommendations/train/models/?wait=false",
                                 headers=bearer(token_for(users["staff"])))
    assert response.status_code == 202
    job = response.json()["data"]
    assert job["state"] == "starting" and job["job_id"] and job["pid"] > 0
    seen = set()
    for _ in range(1200):
        status = await _status(client, users)
        assert status["job_id"] == job["job_id"]
        seen.add(status["state"])
        if status["state"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "succeeded", status
    assert "running" in seen and status["progress"] == 1.0
    assert {key: part["state"] for key, part in status["types"].items()} == \
        {**{ct.model_key: "done" for ct in CONTENT_TYPES}, "taste": "done"}
    assert all("precision_at_k" in status["types"][ct.model_key]["metrics"] for ct in CONTENT_TYPES)
    assert not _training_running()


async def test_a_killed_training_job_leaves_the_old_models_serving_the_lock_free_and_the_status_failed(
        client, users, demo_models):
    import os
    import signal

    from app.services.model_registry import registry

    before = registry.version("movie")["version"]
    job = (await client.post("/v1/recommendations/train/models/?wait=false",
                             headers=bearer(token_for(users["staff"])))).json()["data"]
    for _ in range(600):
        if (await _status(client, users))["state"] == "running":
            break
        await asyncio.sleep(0.05)
    os.kill(job["pid"], signal.SIGKILL)
    for _ in range(100):
        status = await _status(client, users)
        if status["state"] == "failed":
            break
        await asyncio.sleep(0.1)
    assert status["state"] == "failed" and "ended before it finished" in status["error"]
    assert not _training_running()
    served = await client.get("/v1/recommendations/movies/?n=5", headers=bearer(token_for(users["normal"])))
    assert served.status_code == 200 and served.headers["X-Model-Version"] == before
    again = await client.post("/v1/recommendations/train/models/?wait=false", headers=bearer(token_for(users["staff"])))
    assert again.status_code == 202  # nothing left over blocks the next one
    for _ in range(1200):
        if (await _status(client, users))["state"] in ("succeeded", "failed"):
            break
        await asyncio.sleep(0.1)


async def test_the_status_is_staff_only(client, users, demo_models):
    response = await client.get("/v1/recommendations/train/models/status/", headers=bearer(token_for(users["normal"])))
    assert response.status_code == 403
    assert (await client.get("/v1/recommendations/train/models/status/")).status_code == 401
