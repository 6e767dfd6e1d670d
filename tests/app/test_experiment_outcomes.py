"""app/services/experiment_outcomes.py: counts kept in the worker and written in one flush; conversions matched to
what the arm showed; the report's statistics on a hand-computed case. Django's database only (no Neo4j)."""
from __future__ import annotations

import math
import subprocess
import sys
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from app.models import Experiment, ExperimentArmCounter, ExperimentConversion, ExperimentExposure, ExperimentUser
from app.services import experiments
from app.services.answer_cache import JsonFragment
from app.services.experiment_outcomes import Outcomes, experiment_report_get
from app.services.experiments import experiment_arm_for, experiments_cache_clear, experiments_running_aget

pytestmark = pytest.mark.django_db(transaction=True)

ARMS = [{"name": "A", "engine": "current", "params": {}, "share": 0.5, "model_key": None, "version": "v1"},
        {"name": "B", "engine": "popularity", "params": {}, "share": 0.5, "model_key": "movie_xtest_1",
         "version": "v2"}]


@pytest.fixture
def experiment(settings):
    settings.MUSICBUD_EXPERIMENTS = True
    row = Experiment.objects.create(name="exp-1", content_type="movie", arms=ARMS, window_days=7)
    ExperimentArmCounter.objects.bulk_create([ExperimentArmCounter(experiment=row, arm=a) for a in ("A", "B")])
    experiments_cache_clear()
    running = async_to_sync(experiments_running_aget)()
    yield running["movie"]
    experiments_cache_clear()


def answer(*ids: str) -> JsonFragment:
    return JsonFragment(("[" + ",".join(f'{{"id": "{i}"}}' for i in ids) + "]").encode())


def feed_row(uid: str, item: str, *, at=None, rel="LIKES", type_key="movie", weight=5.0) -> dict:
    return {"type": type_key, "rel": rel, "user": uid, "item": item, "weight": weight, "t": at or timezone.now(),
            "id": f"{uid}-{item}-{rel}"}


def test_serving_counts_in_memory_and_writes_nothing_until_the_flush(experiment, django_assert_num_queries):
    counts = Outcomes()
    arm = experiment.arms[1]
    with django_assert_num_queries(0):
        for _ in range(3):
            counts.served(experiment=experiment, arm=arm, uid="u1", answer=answer("m1", "m2"))
        counts.feedback(experiment=experiment, arm=arm, clicks=2, dismissals=1)
    assert ExperimentUser.objects.count() == 0
    assert counts.flush() is True
    assert list(ExperimentUser.objects.values_list("uid", "arm")) == [("u1", "B")]
    assert sorted(ExperimentExposure.objects.values_list("item_id", flat=True)) == ["m1", "m2"]
    counter = ExperimentArmCounter.objects.get(experiment_id=experiment.id, arm="B")
    assert (counter.impressions, counter.clicks, counter.dismissals) == (3, 2, 1)
    counts.served(experiment=experiment, arm=arm, uid="u1", answer=answer("m1"))  # a second flush adds to it
    counts.flush()
    assert ExperimentArmCounter.objects.get(experiment_id=experiment.id, arm="B").impressions == 4
    assert ExperimentUser.objects.count() == 1


def test_a_like_of_a_shown_item_within_the_window_converts_the_user_once(experiment):
    counts = Outcomes()
    a, b = experiment.arms
    counts.served(experiment=experiment, arm=b, uid="u1", answer=answer("m1", "m2"))
    counts.served(experiment=experiment, arm=a, uid="u2", answer=answer("m3"))
    counts.served(experiment=experiment, arm=a, uid="u3", answer=answer("m4"))
    counts.served(experiment=experiment, arm=a, uid="u4", answer=answer("m5"))
    counts.edges([
        feed_row("u1", "m2"), feed_row("u1", "m1"),  # converts once
        feed_row("u2", "m9"),  # not shown to u2
        feed_row("u3", "m4", at=timezone.now() - timedelta(days=1)),  # liked before it was shown (a replay)
        feed_row("u4", "m5", rel="WANTS_TO_WATCH", weight=2.0),  # a watchlist entry is no conversion
        feed_row("u2", "m3", type_key="anime"),  # another type
        feed_row("u2", "m3", weight=-1.0),  # a dismissal
    ])
    counts.flush()
    assert list(ExperimentConversion.objects.values_list("uid", "arm", "item_id")) == [("u1", "B", "m2")]


def test_a_like_after_the_window_is_no_conversion(experiment):
    counts = Outcomes()
    counts.served(experiment=experiment, arm=experiment.arms[0], uid="u1", answer=answer("m1"))
    counts.edges([feed_row("u1", "m1", at=timezone.now() + timedelta(days=8))])
    counts.flush()
    assert ExperimentConversion.objects.count() == 0


def test_the_report_matches_the_hand_computed_case(experiment):
    now = timezone.now()
    ExperimentUser.objects.bulk_create(
        [ExperimentUser(experiment_id=experiment.id, arm=arm, uid=f"{arm}{i}", first_seen=now)
         for arm in ("A", "B") for i in range(200)])
    ExperimentConversion.objects.bulk_create(
        [ExperimentConversion(experiment_id=experiment.id, arm="A", uid=f"A{i}", item_id="m", converted_at=now)
         for i in range(20)] +
        [ExperimentConversion(experiment_id=experiment.id, arm="B", uid=f"B{i}", item_id="m", converted_at=now)
         for i in range(40)])
    ExperimentArmCounter.objects.filter(experiment_id=experiment.id, arm="B").update(impressions=400, clicks=100)
    report = experiment_report_get(experiment_id=experiment.id)
    a, b = report["arms"]
    assert (a["users"], a["conversions"], b["users"], b["conversions"]) == (200, 20, 200, 40)
    assert a["conversion_rate"] == 0.1 and b["conversion_rate"] == 0.2
    # Wilson, z = 1.959964: 20/200 -> centre (0.1 + z²/400) / (1 + z²/200), half z/(1 + z²/200) sqrt(.09/200 + z²/160000)
    assert a["rate_interval_95"] == pytest.approx([0.065670, 0.149406], abs=1e-6)
    assert b["rate_interval_95"] == pytest.approx([0.150452, 0.260855], abs=1e-6)
    assert b["clicks_per_impression"] == 0.25 and a["clicks_per_impression"] is None
    lift = b["versus_control"]
    assert lift["absolute_lift"] == pytest.approx(0.1) and lift["relative_lift"] == pytest.approx(1.0)
    # pooled p = 0.15, V = 0.15 * 0.85 * (2/200) = 0.001275: z = 0.1 / sqrt(V) = 2.8006, two-sided p = 0.00510
    assert lift["fixed_horizon_p_value"] == pytest.approx(math.erfc(0.1 / math.sqrt(2 * 0.001275)))
    assert lift["fixed_horizon_p_value"] == pytest.approx(0.005101, abs=1e-6)
    # mSPRT, tau² = 0.0004: log L = ½ log(V / (V + tau²)) + tau² 0.1² / (2 V (V + tau²)) = 0.80008, p = e^-0.80008
    assert lift["p_value"] == pytest.approx(0.449302, abs=1e-6)
    assert lift["significant"] is False and report["winner"] is None and report["verdict"] == "no winner yet"
    assert "mSPRT" in report["test"] and a["versus_control"] is None
    assert Experiment.objects.get(pk=experiment.id).previous_p_values == {"B": pytest.approx(0.449302, abs=1e-6)}


def test_a_clear_lift_names_the_winner(experiment):
    now = timezone.now()
    ExperimentUser.objects.bulk_create(
        [ExperimentUser(experiment_id=experiment.id, arm=arm, uid=f"{arm}{i}", first_seen=now)
         for arm in ("A", "B") for i in range(2000)])
    ExperimentConversion.objects.bulk_create(
        [ExperimentConversion(experiment_id=experiment.id, arm=arm, uid=f"{arm}{i}", item_id="m", converted_at=now)
         for arm, n in (("A", 200), ("B", 400)) for i in range(n)])
    report = experiment_report_get(experiment_id=experiment.id)
    assert report["winner"] == "B" and report["verdict"] == "B beats A"
    assert report["arms"][1]["versus_control"]["p_value"] < 0.05


def test_the_assignment_is_the_same_in_other_processes():
    arms = [("control", 0.5), ("lightfm", 0.3), ("popular", 0.2)]
    users = [f"user_{i}" for i in range(300)]
    here = [experiment_arm_for(experiment="exp-x", username=u, arms=arms) for u in users]
    assert set(here) == {"control", "lightfm", "popular"}
    code = ("import os, sys, django; os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'; django.setup(); "
            "from app.services.experiments import experiment_arm_for; "
            f"print(','.join(experiment_arm_for(experiment='exp-x', username=u, arms={arms!r}) for u in {users!r}))")
    for seed in ("1", "987"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**__import__("os").environ, "PYTHONHASHSEED": seed})
        assert out.stdout.strip().split(",") == here


def test_a_running_experiment_assigns_by_username_and_experiment_name(experiment):
    for username in ("alice", "bob", "carol"):
        assert experiment.arm_for(username).name == experiment_arm_for(
            experiment="exp-1", username=username, arms=[("A", 0.5), ("B", 0.5)])
    assert experiment.label(experiment.arms[1]) == "exp-1:B"
    assert experiments.experiments_running_now() == {"movie": experiment}
