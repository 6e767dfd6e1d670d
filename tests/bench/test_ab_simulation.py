"""bench/ab_simulation.py --smoke runs in seconds (no Neo4j, no server) and writes every field its result needs."""
from __future__ import annotations

import json

from bench.ab_simulation import main


def test_the_smoke_run_reports_detection_days_and_false_positive_rates_with_intervals(tmp_path):
    out = tmp_path / "ab_simulation.json"
    assert main(["--smoke", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["benchmark"] == "ab_simulation" and report["smoke"] is True and report["measured_at"]
    assert {"cpus", "load_average", "python"} <= set(report["machine"])
    assert 0 < report["true_rates"]["A"] < report["true_rates"]["B"] < 1
    assert report["ab_expected"]["always_valid_expected_path_day"] >= 1 and report["ab_expected"]["how"]
    assert len(report["ab_detection"]["days"]) == report["setup"]["ab_runs"]
    for name in ("always_valid_daily_peeking", "fixed_horizon_daily_peeking", "fixed_horizon_last_day_only"):
        rate = report["aa_false_positives"][name]
        low, high = rate["interval_95"]
        assert rate["of"] == report["setup"]["aa_runs"] and 0 <= low <= rate["rate"] <= high <= 1
    for target in report["targets"]:
        assert {"name", "kind", "target", "value", "met"} <= set(target)
