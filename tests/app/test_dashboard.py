"""app/services/dashboard.py: what the page shows, read defensively from manifests written by any version."""
import json

import pytest

from app.services import dashboard


def test_the_plot_draws_one_line_per_metric_over_the_trainings():
    points = [{"metrics": {"precision_at_k": 0.1, "recall_at_k": 0.2, "ndcg_at_k": 0.3, "auc": 0.9}},
              {"metrics": {"precision_at_k": 0.2, "recall_at_k": 0.3, "ndcg_at_k": 0.4, "auc": 0.95}}]
    svg = dashboard.history_svg(points)
    assert svg.startswith("<svg") and svg.count("<polyline") == 4 and svg.count("<circle") == 8
    assert dashboard.history_svg([]) == ""


def test_the_candidates_table_is_read_when_present_and_ignored_when_odd():
    manifest = {"candidates": [{"name": "lightfm", "selected": True, "metrics": {"precision_at_k": 0.3}},
                               {"name": "popularity", "selected": False, "metrics": {"precision_at_k": 0.2}},
                               "not a row"]}
    rows = dashboard._candidates(manifest)
    assert rows == [{"name": "lightfm", "selected": True, "P@10": 0.3},
                    {"name": "popularity", "selected": False, "P@10": 0.2}]
    assert dashboard._popularity_metrics(manifest) == {"precision_at_k": 0.2}
    assert dashboard._candidates({"candidates": "nonsense"}) == [] and dashboard._candidates({}) == []


def test_model_rows_show_the_manifest_and_the_history(tmp_path, settings):
    settings.MUSICBUD_MODEL_DIR = tmp_path
    (tmp_path / "movie_manifest.json").write_text(json.dumps({
        "version": "v2", "trained_at": "2026-01-01T00:00:00+00:00", "engine": "lightfm",
        "files": {"a": {"bytes": 2048}}, "metrics": {"precision_at_k": 0.25, "auc": 0.9},
        "candidates": [{"name": "popularity", "metrics": {"precision_at_k": 0.1}}]}))
    (tmp_path / "manga_manifest.json").write_text("{not json")
    from app.services.training_status import history_append, history_read

    for version in ("v1", "v2"):
        history_append(entry={"job_id": version, "types": {"movie": {"version": version,
                                                                     "metrics": {"precision_at_k": 0.2}}}})
    assert [e["job_id"] for e in history_read()] == ["v1", "v2"]
    rows = {r["key"]: r for r in dashboard.model_rows()}
    movie = rows["movie"]
    assert movie["version"] == "v2" and movie["size"] == "2.0 kB" and movie["trainings"] == 2
    assert {"name": "P@10", "value": 0.25, "popularity": 0.1} in movie["metrics"]
    assert "<polyline" in movie["plot"] and movie["candidates"]
    assert rows["manga"]["error"] and rows["anime"]["version"] is None  # unreadable, and never trained


@pytest.mark.django_db
def test_the_experiments_table_has_one_row_per_experiment_with_its_arms():
    from app.models import Experiment

    assert dashboard.experiments_get() == {"available": True, "experiments": []}
    Experiment.objects.create(name="als-vs-current", content_type="movie", state=Experiment.RUNNING, window_days=7,
                              arms=[{"name": "control", "engine": "current", "params": {}, "share": 0.5},
                                    {"name": "als", "engine": "als", "params": {}, "share": 0.5}])
    [row] = dashboard.experiments_get()["experiments"]
    assert row["name"] == "als-vs-current" and row["type"] == "movies" and row["state"] == Experiment.RUNNING
    assert row["arms"] == "control 0.5 (current), als 0.5 (als)" and row["promoted"] == ""
    assert row["outcomes"] == "control: 0 users, 0 converted (0.0%); als: 0 users, 0 converted (0.0%), p 1"
    assert row["verdict"]


@pytest.mark.parametrize("seconds, text", [(None, "—"), (5, "5 s"), (120, "2.0 min"), (7200, "2.0 h")])
def test_ages_read_as_a_person_would(seconds, text):
    assert dashboard.age_text(seconds) == text
