"""app/services/promotions.py: a promoted engine arm pins its type, whose trainings then fit the arm's engine and
parameters instead of selecting, until the pin is cleared; a pinned engine that cannot be fitted fails the type and
keeps its served model. A real Neo4j with the small two-tribes graph of tests/app/test_experiment_arms.py."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync

from app.services import experiments, training
from app.services.model_registry import registry
from app.services.promotions import Promotion, promotion_clear_now, promotion_get, promotion_pin
from app.services.training_status import status_read
from tests.app.test_experiment_arms import running_experiment, tribes  # noqa: F401 - the fixture

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.neo4j]

SMALL = {"no_components": 8, "epochs": 5}


def test_after_a_promotion_the_types_trainings_fit_the_promoted_arm_until_the_pin_is_cleared(tribes, settings):  # noqa: F811
    settings.MUSICBUD_CANDIDATES = ["lightfm", "ease"]
    row = running_experiment("pin-me", ("small", "lightfm", SMALL))
    async_to_sync(experiments.experiment_promote)(experiment_id=row.id, arm="small")
    assert promotion_get(model_key="movie").as_dict() == {
        "experiment": "pin-me", "arm": "small", "engine": "lightfm", "params": SMALL,
        "promoted_at": promotion_get(model_key="movie").promoted_at}

    assert training.models_train(content_types=["movies"])["movie"] is True

    pinned = registry.get("movie")
    assert pinned.model.name == "lightfm" and pinned.model.get_params()["no_components"] == 8
    selection = pinned.manifest["selection"]
    assert selection["chosen"] == "lightfm" and selection["reason"] == "promoted from experiment pin-me arm small"
    assert set(selection["candidates"]) == {"lightfm", "popularity"}  # no ease: nothing was selected
    assert selection["candidates"]["lightfm"]["reason"] == selection["reason"]
    assert selection["pinned"]["params"] == SMALL
    status = status_read()["types"]["movie"]["selection"]
    assert status["chosen"] == "lightfm" and status["reason"] == selection["reason"]

    cleared = promotion_clear_now(content_type="movies")
    assert cleared["content_type"] == "movies" and cleared["cleared"]["arm"] == "small"
    assert promotion_get(model_key="movie") is None
    assert training.models_train(content_types=["movies"])["movie"] is True

    selected = registry.get("movie").manifest["selection"]
    assert set(selected["candidates"]) == {"lightfm", "ease", "popularity"} and "reason" not in selected
    assert registry.get("movie").model.get_params().get("no_components") != 8  # what the selection chose


def test_promoting_another_engine_arm_replaces_the_pin_and_a_current_arm_keeps_it(tribes):  # noqa: F811
    first = running_experiment("first", ("pop", "popularity", {}))
    async_to_sync(experiments.experiment_promote)(experiment_id=first.id, arm="pop")
    assert promotion_get(model_key="movie").engine == "popularity"
    second = running_experiment("second", ("small", "lightfm", SMALL))
    async_to_sync(experiments.experiment_promote)(experiment_id=second.id, arm="small")
    assert (promotion_get(model_key="movie").experiment, promotion_get(model_key="movie").engine) == (
        "second", "lightfm")
    third = running_experiment("third", ("pop", "popularity", {}))
    async_to_sync(experiments.experiment_promote)(experiment_id=third.id, arm="control")
    assert promotion_get(model_key="movie").experiment == "second"


def test_a_pinned_engine_that_cannot_be_fitted_fails_the_type_and_keeps_its_served_model(tribes):  # noqa: F811
    promotion_pin(promotion=Promotion(model_key="movie", experiment="too-big", arm="ease8", engine="ease",
                                      params={"max_items": 8}, promoted_at="2026-01-01T00:00:00+00:00"))
    served = registry.get("movie").version

    assert training.models_train(content_types=["movies"]) == {"movie": False, "taste": True}

    assert registry.get("movie").version == served
    error = status_read()["types"]["movie"]["error"]
    assert "pinned to ease" in error and "promoted from experiment too-big arm ease8" in error
    assert "DELETE /v1/experiments/promotions/movies/" in error
