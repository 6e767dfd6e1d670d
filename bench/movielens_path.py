#!/usr/bin/env python
"""The real path once, timed: ml-latest-small imported into a throwaway Neo4j -> extraction -> training ->
held-out metrics -> a recommendation served from the saved model.

    python -m bench.movielens_path [--data ../shared/data/movielens-latest-small]

Prints each step's time and the metrics, and writes bench/results/movielens_path.json. Exits 0 with
"skipped" when the data is absent (its terms forbid copying it into the repo).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "movielens-latest-small")
    args = parser.parse_args()
    if not (args.data / "ratings.csv").exists():
        print(f"skipped: data not found at {args.data}")
        return 0
    from bench.harness import neo4j_in_process

    with neo4j_in_process("musicbud-bench-ml-"):
        import django

        django.setup()
        import orjson
        from asgiref.sync import async_to_sync

        from app.content_types import BY_KEY
        from app.importers.common import parsed_import_write
        from app.importers.movielens import movielens_latest_parse
        from app.services.graph_schema import constraints_install
        from app.services.model_registry import registry
        from app.services.recommendation_service import models_train, recommendations_for_user

        constraints_install()
        steps = {}
        t0 = time.perf_counter()
        parsed = movielens_latest_parse(ratings=args.data / "ratings.csv", movies=args.data / "movies.csv",
                                        links=args.data / "links.csv")
        steps["parse_seconds"] = time.perf_counter() - t0
        report = parsed_import_write(parsed=parsed, progress=False)
        steps["import_seconds"] = report.seconds
        steps["import_edges_per_second"] = report.edges_per_second
        t0 = time.perf_counter()
        models_train(content_types=["movies"])
        steps["train_total_seconds"] = time.perf_counter() - t0
        model = registry.get("movie")
        timings, metrics, counts = model.manifest["timings"], model.manifest["metrics"], model.manifest["counts"]
        steps.update({f"{k}": v for k, v in timings.items()})
        steps["extract_edges_per_second"] = counts["interactions"] / timings["extract_seconds"]
        ask = async_to_sync(recommendations_for_user)
        t0 = time.perf_counter()
        recs = orjson.loads(ask(username="ml_1", content_type="movies", n=10).json.text)
        steps["first_request_ms"] = (time.perf_counter() - t0) * 1000
        t0 = time.perf_counter()
        for _ in range(100):
            ask(username="ml_1", content_type="movies", n=10)
        steps["request_ms_mean_of_100"] = (time.perf_counter() - t0) * 10
    result = {"counts": counts, "steps": {k: round(v, 3) for k, v in steps.items()}, "metrics": metrics,
              "sample_user_ml_1": [r["title"] for r in recs]}
    print(f"ml-latest-small: {counts['users']} users, {counts['items']} movies, {counts['interactions']} ratings "
          f"({counts.get('held_out', 0)} held out for evaluation)")
    for key, value in result["steps"].items():
        print(f"  {key:28s} {value:>12,.3f}")
    print("  " + "  ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float)))
    print("  ml_1 is recommended: " + "; ".join(result["sample_user_ml_1"][:5]))
    out = ROOT / "bench" / "results" / "movielens_path.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
