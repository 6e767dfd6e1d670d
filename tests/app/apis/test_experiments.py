"""/v1/experiments/: staff define A/B experiments; users get their arm's answers, named in X-Experiment; feedback
and likes move the arm's counts in the report; stop and promote."""
from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from app.content_types import content_type_get
from app.services import graph_writes
from app.services.experiment_outcomes import outcomes
from app.services.experiments import experiment_arm_for, experiments_cache_clear
from app.services.live import live
from app.services.model_registry import registry
from app.services.promotions import promotion_clear_now
from tests.app.apis.conftest import _user, assert_envelope, bearer, token_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.neo4j]

ARMS = [{"name": "control", "engine": "current", "share": 0.5},
        {"name": "small", "engine": "lightfm", "params": {"no_components": 8, "epochs": 5}, "share": 0.5}]


@pytest.fixture
def on(settings):
    settings.MUSICBUD_EXPERIMENTS = True
    experiments_cache_clear()
    yield
    experiments_cache_clear()


@pytest.fixture
def leaves_the_demo_as_it_was(demo_models):
    """Other test modules share the demo graph and models: undo what the end-to-end test writes (its feedback and
    like edges, the promoted movie model)."""
    from django.conf import settings as django_settings

    from ai.model_store import save_model
    from app import graph
    from app.services.model_registry import hmac_key

    movie = registry.get("movie")
    touched: dict = {}
    yield touched
    for uid in touched.get("uids", ()):
        graph.query("MATCH (:ParentUser {uid: $uid})-[r:CLICKED|DISMISSED|IMPRESSED]->() DELETE r", uid=uid)
        graph.query("MATCH (:ParentUser {uid: $uid})-[:CONNECTED_TO_IMDB]->()-[r:LIKES]->(m:ImdbMovie) "
                    "WHERE m.imdb_id IN $movies DELETE r", uid=uid, movies=touched.get("liked", []))
    if registry.get("movie") is not movie:
        save_model(django_settings.MUSICBUD_MODEL_DIR, movie, hmac_key=hmac_key())
        registry.put("movie", movie)
    promotion_clear_now(content_type="movies")  # the demo's trainings select again
    live.reset()


async def _create(client, staff, **body):
    return await client.post("/v1/experiments/", {"name": "movies-ab", "content_type": "movies", "arms": ARMS, **body},
                             content_type="application/json", headers=bearer(token_for(staff)))


async def test_it_requires_a_token(client, demo_models):
    assert (await client.get("/v1/experiments/")).status_code == 401
    assert (await client.post("/v1/experiments/", {}, content_type="application/json")).status_code == 401
    assert (await client.get("/v1/experiments/1/report/")).status_code == 401


async def test_it_is_forbidden_to_a_normal_user(client, users, demo_models):
    for response in (await client.get("/v1/experiments/", headers=bearer(token_for(users["normal"]))),
                     await _create(client, users["normal"]),
                     await client.post("/v1/experiments/1/stop/", headers=bearer(token_for(users["normal"])))):
        assert response.status_code == 403
        assert_envelope(response.json(), success=False)


@pytest.mark.parametrize("arms, field", [
    ([{**ARMS[0], "share": 0.5}, {**ARMS[1], "share": 0.6}], "arms.share"),
    ([ARMS[0], {**ARMS[1], "engine": "deep-magic"}], "arms[1].engine"),
    ([ARMS[0], {**ARMS[1], "engine": "lightfm", "params": {"no_such_param": 3}}], "arms[1].params"),
    ([ARMS[0]], "arms"),
    ([ARMS[0], {**ARMS[1], "name": "control"}], "arms.name"),
])
async def test_bad_arms_are_a_400_naming_the_field(client, users, demo_models, arms, field):
    response = await _create(client, users["staff"], arms=arms)
    assert response.status_code == 400, response.content
    body = response.json()
    assert_envelope(body, success=False)
    assert field in body["errors"] and body["message"].startswith(field)


async def test_bad_fields_are_a_400(client, users, demo_models):
    response = await _create(client, users["staff"], content_type="podcasts")
    assert response.status_code == 400 and "content_type" in response.json()["errors"]
    response = await _create(client, users["staff"], arms=[{"name": "a", "engine": "current", "share": "half"}])
    assert response.status_code == 400 and "arms" in response.json()["errors"]
    response = await _create(client, users["staff"], name="no spaces please")
    assert response.status_code == 400 and "name" in response.json()["errors"]
    assert (await client.get("/v1/experiments/999/", headers=bearer(token_for(users["staff"])))).status_code == 404


async def _movies(client, user) -> tuple[str | None, list[str]]:
    response = await client.get("/v1/recommendations/movies/?n=5", headers=bearer(token_for(user)))
    assert response.status_code == 200, response.content
    return response.headers.get("X-Experiment"), [item["id"] for item in response.json()["data"]]


async def _report(client, staff, experiment_id: int) -> dict:
    response = await client.get(f"/v1/experiments/{experiment_id}/report/", headers=bearer(token_for(staff)))
    assert response.status_code == 200, response.content
    return {arm["name"]: arm for arm in response.json()["data"]["arms"]}


async def test_end_to_end_users_get_their_arm_and_feedback_and_likes_move_its_counts(
        client, users, demo_models, on, django_user_model, leaves_the_demo_as_it_was):
    staff = users["staff"]
    created = await _create(client, staff, window_days=1)
    assert created.status_code == 201, created.content
    experiment = created.json()["data"]
    assert experiment["state"] == "running" and experiment["control"] == "control"
    small_arm = experiment["arms"][1]
    assert small_arm["model_key"].startswith("movie_x") and small_arm["version"]
    assert (await _create(client, staff, name="another")).status_code == 409  # one running experiment per type

    # demo users with movies in the model, one or more in each arm
    directory, movie = registry.users(), registry.get("movie")
    names = sorted(n for n, uid in directory.items() if uid in movie.user_map and n != staff.username)[:12]
    by_arm: dict[str, list] = {"control": [], "small": []}
    for name in names:
        by_arm[experiment_arm_for(experiment="movies-ab", username=name, arms=[("control", .5), ("small", .5)])] \
            .append(await sync_to_async(_user)(django_user_model, name, "pass-123456"))
    assert by_arm["control"] and by_arm["small"], by_arm

    small = registry.get(small_arm["model_key"])
    assert small is not None and small.model.get_params()["no_components"] == 8 and small.version != movie.version
    differs = 0
    for arm, people in by_arm.items():
        model = small if arm == "small" else movie  # each user's answer is their arm's model's
        for user in people:
            header, ids = await _movies(client, user)
            assert header == f"movies-ab:{arm}"
            assert ids == [i for i, _, _ in model.recommend(directory[user.username], n=5)]
            differs += ids != [i for i, _, _ in (movie if arm == "small" else small).recommend(
                directory[user.username], n=5)]
    assert differs, "the two arms' models answer alike: the test cannot tell them apart"
    some = by_arm["small"][0]
    uid = directory[some.username]
    leaves_the_demo_as_it_was["uids"] = [uid]
    _, shown = await _movies(client, some)  # again: from the answer cache (the arm's model version in its key)
    assert shown == [i for i, _, _ in small.recommend(uid, n=5)]

    # the all-types answer names it too
    response = await client.get("/v1/recommendations/", headers=bearer(token_for(some)))
    assert response.headers["X-Experiment"] == "movies-ab:small"

    # a click and a dismissal on the small arm, a like of a movie the arm showed
    clicked = await client.post("/v1/recommendations/feedback/", [
        {"type": "movies", "item_id": shown[0], "event": "click"},
        {"type": "movies", "item_id": shown[1], "event": "dismiss"}],
        content_type="application/json", headers=bearer(token_for(some)))
    assert clicked.status_code == 200, clicked.content
    liked = shown[2]
    leaves_the_demo_as_it_was["liked"] = [liked]
    await sync_to_async(graph_writes.interactions_upsert)(
        content_type=content_type_get(key="movies"), rows=[{"user_uid": uid, "item_id": liked, "rel": "LIKES"}])
    await sync_to_async(live.poll)()  # the change feed (a thread of each worker when served)

    report = await _report(client, staff, experiment["id"])
    assert report["small"]["users"] == len(by_arm["small"]) and report["control"]["users"] == len(by_arm["control"])
    assert report["small"]["impressions"] == len(by_arm["small"]) + 2  # + the cached answer and the all-types one
    assert report["control"]["impressions"] == len(by_arm["control"])
    assert (report["small"]["clicks"], report["small"]["dismissals"]) == (1, 1)
    assert (report["control"]["clicks"], report["control"]["dismissals"]) == (0, 0)
    assert report["small"]["conversions"] == 1 and report["control"]["conversions"] == 0
    assert report["small"]["versus_control"]["p_value"] <= 1 and report["control"]["versus_control"] is None

    # stop: answers no longer name it, its arm's model files are deleted; promote: the arm (fitted again, its files
    # gone) becomes the type's model and pins the type's trainings to its engine, until staff clear the pin
    from django.conf import settings as django_settings

    from ai.model_store import model_keys

    assert small_arm["model_key"] in model_keys(django_settings.MUSICBUD_MODEL_DIR)
    stopped = await client.post(f"/v1/experiments/{experiment['id']}/stop/", headers=bearer(token_for(staff)))
    assert stopped.status_code == 200 and stopped.json()["data"]["state"] == "stopped"
    assert small_arm["model_key"] not in model_keys(django_settings.MUSICBUD_MODEL_DIR)
    header, _ = await _movies(client, some)
    assert header is None
    promoted = await client.post(f"/v1/experiments/{experiment['id']}/promote/", {"arm": "small"},
                                 content_type="application/json", headers=bearer(token_for(staff)))
    assert promoted.status_code == 200, promoted.content
    assert promoted.json()["data"]["state"] == "promoted"
    served = registry.get("movie")
    assert served.model.get_params()["no_components"] == 8 and served.manifest["promoted_from"]["arm"] == "small"
    assert small_arm["model_key"] not in model_keys(django_settings.MUSICBUD_MODEL_DIR)
    pin = await client.get("/v1/experiments/promotions/movies/", headers=bearer(token_for(staff)))
    assert pin.status_code == 200 and pin.json()["data"]["promotion"]["experiment"] == "movies-ab"
    assert pin.json()["data"]["promotion"]["params"] == {"no_components": 8, "epochs": 5}
    cleared = await client.delete("/v1/experiments/promotions/movie/", headers=bearer(token_for(staff)))
    assert cleared.status_code == 200 and cleared.json()["data"]["cleared"]["arm"] == "small"
    pin = await client.get("/v1/experiments/promotions/movies/", headers=bearer(token_for(staff)))
    assert pin.json()["data"] == {"content_type": "movies", "promotion": None}
    listed = await client.get("/v1/experiments/", headers=bearer(token_for(staff)))
    assert [e["name"] for e in listed.json()["data"]] == ["movies-ab"]
    outcomes.flush()


async def test_promoting_an_unknown_arm_is_a_400(client, users, demo_models, on):
    created = await _create(client, users["staff"], name="movies-ab-2",
                            arms=[ARMS[0], {"name": "other", "engine": "current", "share": 0.5}])
    assert created.status_code == 201, created.content
    experiment_id = created.json()["data"]["id"]
    response = await client.post(f"/v1/experiments/{experiment_id}/promote/", {"arm": "nope"},
                                 content_type="application/json", headers=bearer(token_for(users["staff"])))
    assert response.status_code == 400 and "arm" in response.json()["errors"]
    await client.post(f"/v1/experiments/{experiment_id}/stop/", headers=bearer(token_for(users["staff"])))


async def test_the_promotion_of_an_unknown_type_is_a_404(client, users, demo_models):
    for method in (client.get, client.delete):
        response = await method("/v1/experiments/promotions/podcasts/", headers=bearer(token_for(users["staff"])))
        assert response.status_code == 404
        assert_envelope(response.json(), success=False)
