"""app/services/experiment_arms.py: a training refits the running experiment's engine arms on its fresh interactions
(an arm that cannot be refitted keeps its model); stopping or promoting an experiment deletes its arms' model files,
and each training collects those of experiments that no longer run. A real Neo4j with a small graph of two tribes."""
from __future__ import annotations

import logging
import os
import secrets
import time

import pytest
from asgiref.sync import async_to_sync

from ai.model_store import ModelNotFoundError, load_model, model_keys, read_manifest
from app.content_types import BY_KEY
from app.models import Experiment, ExperimentArmCounter
from app.services import experiments, graph_writes, training
from app.services.experiment_arms import ORPHAN_GRACE, arm_model_fit, arm_model_key
from app.services.model_registry import hmac_key, registry
from app.services.training_status import status_read

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.neo4j]

MOVIES = BY_KEY["movies"]


def movie(i: int) -> str:
    return f"tt{i:07d}"


@pytest.fixture
def tribes(clean_graph, settings, tmp_path):
    """40 users in two tribes (parity), 16 movies (5 of their tribe's 8 each), a movie model trained on them, in a
    model directory of the test's own, with experiments on."""
    settings.MUSICBUD_MODEL_DIR = tmp_path / "models"
    settings.MUSICBUD_EXPERIMENTS = True
    registry.__init__()
    experiments.experiments_cache_clear()
    graph_writes.items_upsert(content_type=MOVIES, rows=[
        {"imdb_id": movie(i), "title": f"Movie {i}", "genres": str([["Action", "Romance"][i % 2]]), "year": 1990 + i}
        for i in range(16)])
    users = [f"u{i}" for i in range(40)]
    graph_writes.users_upsert(rows=[{"uid": u, "username": f"user_{u}", "accounts": ["ImdbUser"]} for u in users])
    rows = []
    for n, user in enumerate(users):
        tribe = [i for i in range(16) if i % 2 == n % 2]
        rows += [{"user_uid": user, "item_id": movie(tribe[(n + k) % 8]), "rel": "LIKES"} for k in range(5)]
    graph_writes.interactions_upsert(content_type=MOVIES, rows=rows)
    assert training.models_train(content_types=["movies"])["movie"] is True
    yield registry.get("movie")
    registry.__init__()
    experiments.experiments_cache_clear()


def running_experiment(name: str, *arms: tuple[str, str, dict]) -> Experiment:
    """A running experiment on movies: a "current" control and these (name, engine, params) arms, each fitted on the
    served movie model as experiment_create's job does."""
    base = registry.get("movie")
    token = secrets.token_hex(4)
    share = 1 / (len(arms) + 1)
    rows = [{"name": "control", "engine": "current", "params": {}, "share": share, "model_key": None,
             "version": base.version}]
    for i, (arm, engine, params) in enumerate(arms, start=1):
        key = arm_model_key(model_key="movie", token=token, index=i)
        rows.append({"name": arm, "engine": engine, "params": params, "share": share, "model_key": key,
                     "version": arm_model_fit(base=base, model_key=key, engine=engine, params=params, experiment=name,
                                              arm=arm)})
    row = Experiment.objects.create(name=name, content_type="movie", arms=rows, window_days=7)
    ExperimentArmCounter.objects.bulk_create([ExperimentArmCounter(experiment=row, arm=a["name"]) for a in rows])
    return row


def arm_key(row: Experiment, name: str) -> str:
    return next(a["model_key"] for a in row.arms if a["name"] == name)


def load(key: str):
    from django.conf import settings

    return load_model(settings.MUSICBUD_MODEL_DIR, key, hmac_key=hmac_key())


def a_new_user_likes(*items: int, uid: str = "newcomer") -> None:
    graph_writes.users_upsert(rows=[{"uid": uid, "username": f"user_{uid}", "accounts": ["ImdbUser"]}])
    graph_writes.interactions_upsert(content_type=MOVIES,
                                     rows=[{"user_uid": uid, "item_id": movie(i), "rel": "LIKES"} for i in items])


def test_a_training_refits_the_running_experiments_engine_arms_on_its_fresh_interactions(tribes):
    row = running_experiment("refit", ("small", "lightfm", {"no_components": 8, "epochs": 5}))
    before = load(arm_key(row, "small"))
    assert "newcomer" not in before.user_map

    a_new_user_likes(0, 2, 4)
    assert training.models_train(content_types=["movies"])["movie"] is True

    fresh, arm = registry.get("movie"), load(arm_key(row, "small"))
    assert fresh.version != tribes.version and "newcomer" in fresh.user_map
    assert arm.version != before.version and arm.user_map == fresh.user_map  # the same users, items, interactions
    assert (arm.matrix != fresh.matrix).nnz == 0
    assert arm.manifest["experiment"] == {"name": "refit", "arm": "small", "base_version": fresh.version}
    assert arm.model.get_params()["no_components"] == 8  # the arm's spec, not the type's selection
    row.refresh_from_db()
    assert [a["version"] for a in row.arms] == [fresh.version, arm.version]  # what the experiment now serves
    status = status_read()["types"]["movie"]
    assert status["experiment_arms"]["small"] == {"model_key": arm_key(row, "small"), "state": "refitted",
                                                  "version": arm.version,
                                                  "seconds": status["experiment_arms"]["small"]["seconds"]}


def test_an_arm_whose_refit_fails_keeps_its_model_and_the_training_succeeds(tribes, caplog):
    # EASE bounded to the 16 movies of today: a 17th makes its refit fail; the LightFM arm is refitted all the same
    row = running_experiment("bounded", ("ease16", "ease", {"max_items": 16}), ("small", "lightfm", {"epochs": 5}))
    ease_before, small_before = load(arm_key(row, "ease16")), load(arm_key(row, "small"))
    graph_writes.items_upsert(content_type=MOVIES, rows=[{"imdb_id": movie(16), "title": "Movie 16"}])
    a_new_user_likes(16, 0)

    with caplog.at_level(logging.WARNING, logger="app.services.experiment_arms"):
        assert training.models_train(content_types=["movies"]) == {"movie": True, "taste": True}

    assert load(arm_key(row, "ease16")).version == ease_before.version  # kept, still loadable
    assert load(arm_key(row, "small")).version != small_before.version
    assert any("refitting arm ease16" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    arms = status_read()["types"]["movie"]["experiment_arms"]
    assert arms["ease16"]["state"] == "failed" and "max_items" in arms["ease16"]["error"]
    assert arms["small"]["state"] == "refitted"
    row.refresh_from_db()
    assert row.arms[1]["version"] == ease_before.version


def test_stopping_an_experiment_deletes_its_arms_models_and_nothing_else(tribes, settings):
    row = running_experiment("to-stop", ("small", "lightfm", {"epochs": 5}), ("pop", "popularity", {}))
    other = running_experiment_elsewhere()
    keys = {arm_key(row, "small"), arm_key(row, "pop")}
    assert keys <= model_keys(settings.MUSICBUD_MODEL_DIR)

    stopped = async_to_sync(experiments.experiment_stop)(experiment_id=row.id)

    assert stopped["state"] == "stopped"
    assert model_keys(settings.MUSICBUD_MODEL_DIR) == {"movie", "taste", other}
    assert not [p.name for p in settings.MUSICBUD_MODEL_DIR.iterdir() if "_x" in p.name and other not in p.name]
    with pytest.raises(ModelNotFoundError):
        load(arm_key(row, "small"))
    assert load("movie").version == tribes.version


def running_experiment_elsewhere() -> str:
    """An arm model of a running experiment on anime (saved from the movie model's data: only its key matters)."""
    key = arm_model_key(model_key="anime", token="0123abcd", index=1)
    version = arm_model_fit(base=registry.get("movie"), model_key=key, engine="popularity", params={},
                            experiment="elsewhere", arm="pop")
    Experiment.objects.create(name="elsewhere", content_type="anime", window_days=7, arms=[
        {"name": "control", "engine": "current", "params": {}, "share": .5, "model_key": None, "version": "v"},
        {"name": "pop", "engine": "popularity", "params": {}, "share": .5, "model_key": key, "version": version}])
    return key


def test_promoting_an_arm_deletes_the_experiments_arms_models(tribes, settings):
    row = running_experiment("to-promote", ("small", "lightfm", {"no_components": 8, "epochs": 5}),
                             ("pop", "popularity", {}))
    promoted = async_to_sync(experiments.experiment_promote)(experiment_id=row.id, arm="small")
    assert promoted["state"] == "promoted"
    assert model_keys(settings.MUSICBUD_MODEL_DIR) == {"movie", "taste"}
    served = load("movie")
    assert served.model.get_params()["no_components"] == 8 and served.manifest["promoted_from"]["arm"] == "small"


def test_a_stopped_experiments_arm_can_still_be_promoted_it_is_fitted_again(tribes, settings):
    row = running_experiment("stop-then-promote", ("small", "lightfm", {"no_components": 8, "epochs": 5}))
    async_to_sync(experiments.experiment_stop)(experiment_id=row.id)
    assert arm_key(row, "small") not in model_keys(settings.MUSICBUD_MODEL_DIR)

    async_to_sync(experiments.experiment_promote)(experiment_id=row.id, arm="small")  # the job fits it again

    served = load("movie")
    assert served.model.get_params()["no_components"] == 8 and served.version != tribes.version
    assert served.manifest["promoted_from"]["experiment"] == "stop-then-promote"
    assert model_keys(settings.MUSICBUD_MODEL_DIR) == {"movie", "taste"}


def test_a_training_collects_the_arm_models_of_experiments_that_no_longer_run(tribes, settings, caplog):
    stopped = running_experiment("stopped-one", ("pop", "popularity", {}))
    Experiment.objects.filter(pk=stopped.id).update(state=Experiment.STOPPED)  # stopped by a process that died
    running = running_experiment("still-running", ("small", "lightfm", {"epochs": 5}))
    base = registry.get("movie")
    young, old = (arm_model_key(model_key="movie", token=t, index=1) for t in ("aaaaaaaa", "bbbbbbbb"))
    for key in (young, old):  # named by no experiment: an experiment being created, or a crashed creation's
        arm_model_fit(base=base, model_key=key, engine="popularity", params={}, experiment="unnamed", arm="x")
    directory = settings.MUSICBUD_MODEL_DIR
    past = time.time() - ORPHAN_GRACE.total_seconds() - 60
    for path in [directory / f"{old}_manifest.json", *directory.glob(f"{old}-*")]:
        os.utime(path, (past, past))

    with caplog.at_level(logging.INFO, logger="app.services.experiment_arms"):
        assert training.models_train(content_types=["movies"])["movie"] is True

    assert model_keys(directory) == {"movie", "taste", arm_key(running, "small"), young}
    collected = {r.getMessage() for r in caplog.records if r.getMessage().startswith("Collected the arm model")}
    assert collected == {f"Collected the arm model {arm_key(stopped, 'pop')} (its experiment is stopped)",
                         f"Collected the arm model {old} (no experiment names it)"}
    assert status_read()["collected_arm_models"] == sorted([arm_key(stopped, "pop"), old])
    assert read_manifest(directory, arm_key(running, "small"))["experiment"]["base_version"] == \
        registry.get("movie").version  # refitted, not collected
