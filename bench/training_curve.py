#!/usr/bin/env python
"""The training cost curve: extraction, fit, save and peak memory at 100k, 1M and 10M interactions of the demo
graph (users and items per type both ×10 a step; seeded with the project's writers and cached under var/bench/ like
every bench graph), one row each, and how each grows with the data: the exponent b of a least-squares fit of
seconds = a · interactions^b (b = 1: linear) and the cost per million interactions at the largest size.

    python -m bench.training_curve                   # 100k, 1M, 10M: bench/results/training_curve.json
    python -m bench.training_curve --sizes 100k 1m   # what is cached (10M seeding takes ~30 min here)
    python -m bench.training_curve --smoke           # the tiny graph and 100k (CI-sized)

Each size is measured as bench/training.py measures it (a first extraction pass apart, then `models_train` in a
child process writing an empty model directory; its peak RSS from the kernel). Target on this 2-core machine:
10M interactions train (extract + fit + save) in at most 10 minutes with at most 4 GB peak.
"""
from __future__ import annotations

import argparse
import math
import sys

from bench.harness import ROOT, SIZES, machine, result_write, stack_waiting, table
from bench.training import measure

TARGET_SECONDS_10M = 600.0
TARGET_PEAK_MB_10M = 4096.0
# Neo4j's memory per size: the 10M graph (~9 GB on disk) wants more page cache than the others.
NEO4J_MEMORY = {"10m": ("2g", "4g")}
PHASES = ("extract_seconds", "fit_all_seconds", "fit_seconds_per_epoch", "save_seconds", "extract_fit_save_seconds",
          "train_models_seconds", "process_cpu_seconds", "peak_rss_mb")


def slope(points: list[tuple[float, float]]) -> float | None:
    """b of y = a · x^b, least squares in log-log (None for fewer than 2 usable points)."""
    logs = [(math.log(x), math.log(y)) for x, y in points if x > 0 and y > 0]
    if len(logs) < 2:
        return None
    mx = sum(x for x, _ in logs) / len(logs)
    my = sum(y for _, y in logs) / len(logs)
    var = sum((x - mx) ** 2 for x, _ in logs)
    return round(sum((x - mx) * (y - my) for x, y in logs) / var, 3) if var else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["100k", "1m", "10m"])
    parser.add_argument("--smoke", action="store_true", help="the tiny graph and 100k")
    parser.add_argument("--wait", type=float, default=1800, help="seconds to wait for a graph another run holds")
    args = parser.parse_args(argv)
    sizes = ["smoke", "100k"] if args.smoke else args.sizes
    load_before = machine()["load_average"]
    runs = []
    for name in sizes:
        heap, pagecache = NEO4J_MEMORY.get(name, ("1g", "1g"))
        with stack_waiting(SIZES[name], wait_seconds=args.wait, heap=heap, pagecache=pagecache,
                           quiet=args.smoke) as stack:
            run = {"size": name, "load_average": machine()["load_average"], **measure(stack)}
        # the epochs fall as the graph grows (LIGHTFM_EPOCH_BUDGET): the cost of one epoch is the fit's own curve
        run["epochs"] = max((m["epochs"] or 0) for m in run["models"].values())
        run["fit_seconds_per_epoch"] = round(run["fit_all_seconds"] / run["epochs"], 3) if run["epochs"] else None
        runs.append(run)
        print(f"[curve] {name}: {run['interactions']:,} interactions, extract+fit+save "
              f"{run['extract_fit_save_seconds']:.1f}s, peak {run['peak_rss_mb']:.0f} MB", file=sys.stderr, flush=True)
    runs.sort(key=lambda r: r["interactions"])
    slopes = {phase: slope([(r["interactions"], r[phase] or 0) for r in runs]) for phase in PHASES}
    largest = runs[-1]
    per_million = {phase: round((largest[phase] or 0) / (largest["interactions"] / 1e6), 3) for phase in PHASES}
    ten = next((r for r in runs if r["size"] == "10m"), None)
    targets = [] if ten is None else [
        {"name": "extract_fit_save_seconds_at_10m", "kind": "at most", "target": TARGET_SECONDS_10M,
         "value": ten["extract_fit_save_seconds"], "met": ten["extract_fit_save_seconds"] <= TARGET_SECONDS_10M},
        {"name": "train_models_seconds_at_10m", "kind": "at most", "target": TARGET_SECONDS_10M,
         "value": ten["train_models_seconds"], "met": ten["train_models_seconds"] <= TARGET_SECONDS_10M},
        {"name": "peak_rss_mb_at_10m", "kind": "at most", "target": TARGET_PEAK_MB_10M, "value": ten["peak_rss_mb"],
         "met": ten["peak_rss_mb"] <= TARGET_PEAK_MB_10M},
    ]
    after = machine()
    payload = {"machine": {**after, "load_average_before": load_before}, "runs": runs, "slopes": slopes,
               "per_million_at_largest": per_million, "targets": targets}
    path = result_write("training_curve", payload, smoke=args.smoke)
    print(table(["size", "interactions", "epochs", "extract s", "fit s", "save s", "extract+fit+save s",
                 "train_models s", "CPU s", "load", "peak RSS MB"],
                [[r["size"], r["interactions"], r["epochs"],
                  r["extract_seconds"], r["fit_all_seconds"], r["save_seconds"], r["extract_fit_save_seconds"],
                  r["train_models_seconds"], r["process_cpu_seconds"], r["load_average"][0], r["peak_rss_mb"]]
                 for r in runs]))
    print()
    print(table(["phase", "exponent b (seconds ∝ n^b)", f"per 1M interactions at {largest['size']}"],
                [[p, slopes[p], per_million[p]] for p in PHASES]))
    if targets:
        print()
        print(table(["target", "kind", "target value", "measured", "met"],
                    [[t["name"], t["kind"], t["target"], t["value"], t["met"]] for t in targets]))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
