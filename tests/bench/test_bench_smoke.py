"""The performance benchmarks run end to end at a tiny size (their --smoke mode, as CI runs them) and write
every field their results need. No timing is asserted: the numbers only mean something on a quiet machine
at full size (`make bench`)."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def run_bench(name: str, out: Path) -> dict:
    module = importlib.import_module(f"bench.{name}")
    assert module.main(["--smoke", "--out", str(out)]) == 0
    return json.loads(out.read_text())


def assert_common(report: dict, name: str) -> None:
    assert report["benchmark"] == name and report["smoke"] is True
    assert {"cpus", "load_average", "platform", "python"} <= set(report["machine"])
    assert report["measured_at"]
    for target in report["targets"]:
        assert {"name", "kind", "target", "value", "met"} <= set(target)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    """Each benchmark's main(), in this process, inside one stack of the smoke size: they share its Neo4j."""
    from bench.harness import SIZES, BenchStack

    out = tmp_path_factory.mktemp("bench")
    with BenchStack(SIZES["smoke"], quiet=True):
        return {name: run_bench(name, out / f"{name}.json") for name in ("training", "serving", "memory")}


def test_training_reports_extraction_fit_save_and_peak_memory(results):
    report = results["training"]
    assert_common(report, "training")
    run = report["runs"][0]
    for field in ("interactions", "extract_seconds", "edges_per_second", "fit_seconds", "fit_all_seconds",
                  "save_seconds", "extract_fit_save_seconds", "train_models_seconds", "peak_rss_mb",
                  "first_extraction_after_neo4j_start"):
        assert run[field] is not None, field
    assert run["interactions"] > 0 and run["peak_rss_mb"] > 0
    assert all(run["trained"].values()), run["trained"]
    assert {t["name"] for t in report["targets"]} == {"training_with_selection_seconds_at_1m",
                                                      "extract_fit_save_seconds_at_1m",
                                                      "extraction_edges_per_second_at_1m"}
    assert run["train_models_cpu_seconds"] > 0
    assert all(m["engine"] and m["candidates"] for key, m in run["models"].items() if key != "taste")


def test_serving_reports_every_endpoint_at_every_concurrency_without_errors(results):
    report = results["serving"]
    assert_common(report, "serving")
    points = {(r["endpoint"], r["connections"]) for r in report["results"]}
    assert points == {(e, c) for e in ("ping", "movies", "movies_many_users", "all", "seed_baseline")
                      for c in (1, 8, 32)}
    assert report["many_users"]["users"] > 1
    for r in report["results"]:
        assert r["requests"] > 0 and r["errors"] == 0, r
        assert {"rps", "p50_ms", "p90_ms", "p99_ms"} <= set(r)
    assert {"movies_rps_vs_ping_at_32", "movies_vs_seed_p50_ms_at_1"} <= set(report["ratios"]) | set(report["speedups"])
    assert {t["name"] for t in report["targets"]} == {
        "movies_p50_ms_at_1", "movies_p99_ms_at_1", "movies_rps_at_32", "movies_share_of_ping_rps_at_32",
        "speedup_vs_seed_p50_at_1"}
    assert report["worker_memory"] and report["load_generator"]


def test_memory_reports_each_worker_idle_and_with_every_model_loaded(results):
    report = results["memory"]
    assert_common(report, "memory")
    assert len(report["workers_loaded"]) == 2
    assert len(report["workers_after_many_users"]) == 2 and report["many_users_requests"] > 0
    assert report["max_worker_rss_mb"] == max(w["rss_mb"] for w in report["workers_loaded"] +
                                              report["workers_after_many_users"])
    assert report["max_worker_rss_mb"] > max(w["rss_mb"] for w in report["workers_idle"])  # models were loaded


def test_quality_runs_the_services_selection_and_reports_every_candidate(tmp_path):
    from bench import quality

    assert quality.main(["--smoke", "--out", str(tmp_path / "quality.json")]) == 0
    report = json.loads((tmp_path / "quality.json").read_text())
    result = report["datasets"]["synthetic"]
    table = result["selection"]["candidates"]
    assert {"lightfm", "ease", "als", "popularity", "blend"} <= set(table)
    assert result["served"]["engine"] == result["selection"]["chosen"] != "popularity"
    for row in table.values():
        assert row["status"] in ("scored", "skipped")
        if row["status"] == "scored":
            assert {"precision_at_k", "ndcg_at_k"} <= set(row["validation"]) and "ndcg_at_k" in row["held_out"]
