#!/usr/bin/env python
"""Training from the graph: seconds to extract (and edges/s), to fit, to save, and the training process's peak
memory, at 100k and 1M interactions of the demo graph.

    python -m bench.training                  # 100k and 1M interactions (the demo graphs of bench/harness.py)
    python -m bench.training --sizes 1m
    python -m bench.training --smoke          # a tiny graph (CI): bench/results/training-smoke.json

For each size the harness starts a throwaway Neo4j with the seeded demo graph (cached under var/bench/),
extracts every type once (a fresh Neo4j reads its pages from disk and plans each query the first time; a
long-running one has both cached: that first pass is reported apart), then runs the service's training
(`models_train`, as `manage.py train_models` does) in a child process writing to an empty model directory.
The child reports the per-model timings the training records; the parent takes the child's peak resident
memory from the kernel (wait4's ru_maxrss). Prints a table and writes bench/results/training.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import PYTHON, ROOT, SIZES, BenchStack, machine, result_write, run_measured, table  # noqa: E402

TARGET_SECONDS_1M = 60.0  # extract + fit + save at 1M interactions, at most (before model selection, issue 14)
TARGET_SELECTION_SECONDS_1M = 120.0  # the whole training run with model selection at 1M interactions, at most
TARGET_EDGES_PER_SECOND = 200_000.0  # extraction, at least
PHASES = ("extract_seconds", "fit_seconds", "refit_seconds", "evaluate_seconds", "details_seconds", "save_seconds")


def _django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "musicbud.settings")
    django.setup()


def warm_child() -> int:
    """Extract every type once (a fresh Neo4j reads its pages from disk and plans each query the first time;
    a long-running one has both cached): print edges and seconds as one JSON line."""
    _django()
    from app.content_types import CONTENT_TYPES
    from app.services.recommendation_data_service import interactions_for

    started = time.perf_counter()
    edges = sum(interactions_for(content_type=ct).nnz for ct in CONTENT_TYPES)
    print("WARM_JSON " + json.dumps({"edges": edges, "seconds": time.perf_counter() - started}))
    return 0


def child() -> int:
    """In the training process: train everything, print the timings the training recorded as one JSON line."""
    _django()
    from app.services.model_registry import registry
    from app.services.recommendation_service import models_train

    started = time.perf_counter()
    results = models_train()
    wall = time.perf_counter() - started
    models = {}
    for key, trained in results.items():
        model = registry.get(key) if trained else None
        if model is not None:
            selection = model.manifest.get("selection") or {}
            models[key] = {"counts": model.manifest.get("counts", {}), "timings": model.manifest.get("timings", {}),
                           "engine": model.manifest.get("engine"), "selection_seconds": selection.get("seconds"),
                           "candidates": {name: {"status": row["status"], "fit_seconds": row["fit_seconds"],
                                                 "memory_mb": row["memory_mb"],
                                                 "validation_ndcg": (row.get("validation") or {}).get("ndcg_at_k"),
                                                 "held_out_ndcg": (row.get("held_out") or {}).get("ndcg_at_k")}
                                          for name, row in (selection.get("candidates") or {}).items()},
                           "epochs": (model.manifest.get("parameters") or {}).get("epochs"),
                           "metrics": {k: v for k, v in (model.manifest.get("metrics") or {}).items()
                                       if k in ("precision_at_k", "ndcg_at_k", "auc")}}
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread's CPU: what the run costs on a shared machine
    print("TRAINING_JSON " + json.dumps({"results": results, "wall_seconds": wall, "models": models,
                                         "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1)}))
    return 0


def measure(stack: BenchStack) -> dict:
    warm = run_measured([PYTHON, "-m", "bench.training", "--warm-child"], env=stack.env())[2]
    cold = json.loads(next(ln for ln in warm.splitlines() if ln.startswith("WARM_JSON ")).removeprefix("WARM_JSON "))
    with tempfile.TemporaryDirectory(prefix="musicbud-bench-models-") as models_dir:
        measured = run_measured([PYTHON, "-m", "bench.training", "--child"],
                                env=stack.env(MUSICBUD_MODEL_DIR=models_dir))
    seconds, peak_mb, out = measured
    line = next(ln for ln in out.splitlines() if ln.startswith("TRAINING_JSON "))
    report = json.loads(line.removeprefix("TRAINING_JSON "))
    models = report["models"]
    sums = {phase: round(sum(m["timings"].get(phase, 0.0) for m in models.values()), 2) for phase in PHASES}
    edges = sum(m["counts"].get("interactions", 0) for k, m in models.items() if k != "taste")
    return {
        "graph": stack.seed_info,
        "interactions": edges,
        **sums,
        "edges_per_second": round(edges / sums["extract_seconds"]) if sums["extract_seconds"] else None,
        "fit_all_seconds": round(sums["fit_seconds"] + sums["refit_seconds"], 2),  # a refit is a fit too
        "extract_fit_save_seconds": round(sums["extract_seconds"] + sums["fit_seconds"] + sums["refit_seconds"]
                                          + sums["save_seconds"], 2),
        "train_models_seconds": round(report["wall_seconds"], 2),
        "train_models_cpu_seconds": report.get("cpu_seconds"),  # all threads: ~2x the wall time on 2 idle cores
        "process_seconds": round(seconds, 2),
        "process_cpu_seconds": measured.cpu_seconds,  # what a busy machine inflates less than the wall time
        "peak_rss_mb": peak_mb,
        "first_extraction_after_neo4j_start": {
            "seconds": round(cold["seconds"], 2), "edges": cold["edges"],
            "edges_per_second": round(cold["edges"] / cold["seconds"]) if cold["seconds"] else None},
        "trained": report["results"],
        "models": models,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a tiny graph (seconds)")
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["100k", "1m"])
    parser.add_argument("--out", type=Path, help="result file (default bench/results/training[-smoke].json)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--warm-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child()
    if args.warm_child:
        return warm_child()
    if args.smoke:
        args.sizes = ["smoke"]
    load_before = machine()["load_average"]
    runs = {}
    for name in args.sizes:
        with BenchStack(SIZES[name], quiet=args.smoke) as stack:
            runs[name] = {"size": name, "load_average": machine()["load_average"], **measure(stack)}
    big = runs.get("1m") or max(runs.values(), key=lambda r: r["interactions"])  # the targets are about 1M
    targets = [
        {"name": "training_with_selection_seconds_at_1m", "kind": "at most", "target": TARGET_SELECTION_SECONDS_1M,
         "size": big["size"], "value": big["train_models_seconds"],
         "met": big["train_models_seconds"] <= TARGET_SELECTION_SECONDS_1M},
        {"name": "extract_fit_save_seconds_at_1m", "kind": "at most", "target": TARGET_SECONDS_1M,
         "size": big["size"], "value": big["extract_fit_save_seconds"],
         "met": big["extract_fit_save_seconds"] <= TARGET_SECONDS_1M},
        {"name": "extraction_edges_per_second_at_1m", "kind": "at least", "target": TARGET_EDGES_PER_SECOND,
         "size": big["size"], "value": big["edges_per_second"],
         "met": (big["edges_per_second"] or 0) >= TARGET_EDGES_PER_SECOND},
    ]
    after = machine()
    payload = {"machine": {**after, "load_average_before": load_before, "load_average_after": after["load_average"],
                           "lightfm_threads": os.environ.get("LIGHTFM_THREADS") or after["cpus"]},
               "runs": list(runs.values()), "targets": targets}
    path = result_write("training", payload, smoke=args.smoke, out=args.out)
    print(f"Training: load average {load_before} before, {after['load_average']} after ({after['cpus']} cores)")
    print(table(["size", "interactions", "extract s", "edges/s", "fit+refit s", "save s", "extract+fit+save s",
                 "eval s", "details s", "train_models s", "peak RSS MB"],
                [[r["size"], r["interactions"], r["extract_seconds"], r["edges_per_second"], r["fit_all_seconds"],
                  r["save_seconds"], r["extract_fit_save_seconds"], r["evaluate_seconds"], r["details_seconds"],
                  r["train_models_seconds"], r["peak_rss_mb"]] for r in runs.values()]))
    for r in runs.values():
        print(f"\n{r['size']}: per model")
        print(table(["model", "engine", "interactions", "epochs", "extract s", "select s", "refit s", "eval s",
                     "details s", "save s", "P@10"],
                    [[k, m.get("engine"), m["counts"].get("interactions"), m["epochs"],
                      *(m["timings"].get(p) for p in PHASES), m["metrics"].get("precision_at_k")]
                     for k, m in r["models"].items()]))
    print()
    print(table(["target", "kind", "target value", "size", "measured", "met"],
                [[t["name"], t["kind"], t["target"], t["size"], t["value"], t["met"]] for t in targets]))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
