#!/usr/bin/env python
"""Resident memory of one API worker with every content type's model (and the joint taste model) loaded.

    python -m bench.memory               # 1M interactions (50k users, 20k items per type)
    python -m bench.memory --smoke       # tiny graph (CI): bench/results/memory-smoke.json
    python -m bench.memory --models-dir DIR   # train into DIR (once) and serve those, not the cached models

Serves the API as `make run` does (bench/harness.py), measures each worker idle, then loads every model in
every worker (GET /v1/recommendations/ from several connections, then every type and its similar items) and
measures again: RSS (what the target is about), USS (pages only that worker holds) and PSS. Then it serves
the movies endpoint to many different users (one per request) until each worker's answer cache is full, and
measures a third time: the target holds for the larger of the two. Prints a table and writes
bench/results/memory.json.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.harness import ROOT, SIZES, BenchStack, machine, result_write, table  # noqa: E402

from app.services.answer_cache import DEFAULT_MAX_MB  # noqa: E402  (no Django needed)

TARGET_RSS_MB = 500.0


def workers_memory(server) -> list[dict]:
    """RSS, USS and PSS in MB of each uvicorn worker."""
    import psutil

    out = []
    for pid in server.worker_pids():
        info = psutil.Process(pid).memory_full_info()
        out.append({"pid": pid, "rss_mb": round(info.rss / 2**20, 1), "uss_mb": round(info.uss / 2**20, 1),
                    "pss_mb": round(info.pss / 2**20, 1)})
    return out


def models_load(server, token: str, *, seconds: float, smoke: bool) -> None:
    """Every model into every worker: the all-types endpoint from 8 connections (spread over the workers),
    then each type and one similar-items call per type."""
    from app.content_types import CONTENT_TYPES
    from bench.serving import ENDPOINTS, load_generator

    load = load_generator(smoke)[0]
    load(server.url + ENDPOINTS["all"], token, connections=8, seconds=seconds)
    for ct in CONTENT_TYPES:
        load(server.url + f"/v1/recommendations/{ct.key}/", token, connections=8, seconds=max(seconds / 4, 0.5))
        status, body = server.get(f"/v1/recommendations/{ct.key}/?n=1", token)
        items = json.loads(body)["data"] if status == 200 else []
        if items:
            server.get(f"/v1/recommendations/{ct.key}/{items[0]['id']}/similar/", token)


def many_users_serve(stack, server, *, seconds: float, smoke: bool) -> int:
    """GET /v1/recommendations/movies/ as a different user each time (bench/wrk_many_users.lua) for `seconds`:
    at the default 8 MB a worker's answer cache holds ~1,000 of these answers, fewer than are asked. Returns
    how many requests were served."""
    from bench.serving import MANY_USERS, ENDPOINTS, load_generator

    tokens = stack.tokens_of_many_users(MANY_USERS)
    result = load_generator(smoke)[0](server.url + ENDPOINTS["movies_many_users"], tokens, connections=8,
                                      seconds=seconds)
    return result["requests"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--size", choices=sorted(SIZES), default="1m")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/memory[-smoke].json)")
    parser.add_argument("--models-dir", type=Path,
                        help="train with this checkout into DIR when it holds no models yet, and serve from it (the "
                             "stack's cached models may have been trained by another version)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size = "smoke"
    load_before = machine()["load_average"]
    with BenchStack(SIZES[args.size], quiet=args.smoke) as stack:
        models_dir = args.models_dir or stack.models_dir
        if args.models_dir is None:
            stack.models_ensure()
        elif not list(models_dir.glob("*_manifest.json")):
            models_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            stack.train(models_dir=models_dir)
        manifests = [json.loads(m.read_text()) for m in models_dir.glob("*_manifest.json")]
        model_bytes = sum(entry["bytes"] for manifest in manifests for entry in manifest["files"].values())
        engines = {m.get("content_type", "?"): m.get("engine") for m in manifests}
        with stack.serve(MUSICBUD_MODEL_DIR=str(models_dir)) as server:
            token = stack.token(server)
            idle = workers_memory(server)
            models_load(server, token, seconds=1.0 if args.smoke else 3.0, smoke=args.smoke)
            loaded = workers_memory(server)
            served = many_users_serve(stack, server, seconds=2.0 if args.smoke else 15.0, smoke=args.smoke)
            cached = workers_memory(server)
        seed_info = stack.seed_info
    worst = max(w["rss_mb"] for w in loaded + cached)
    payload = {
        "machine": {**machine(), "load_average_before": load_before},
        "graph": seed_info,
        "model_files_mb": round(model_bytes / 2**20, 1),
        "engines": engines,
        "workers_idle": idle,
        "workers_loaded": loaded,
        "many_users_requests": served,
        "workers_after_many_users": cached,
        "answer_cache_mb_per_worker": DEFAULT_MAX_MB,  # the stack leaves MUSICBUD_ANSWER_CACHE_MB unset
        "max_worker_rss_mb": worst,
        "targets": [{"name": "worker_rss_mb_all_models_loaded", "kind": "at most", "target": TARGET_RSS_MB,
                     "value": worst, "met": worst <= TARGET_RSS_MB}],
    }
    path = result_write("memory", payload, smoke=args.smoke, out=args.out)
    print(f"Memory of one API worker: {args.size} graph ({seed_info.get('edges', 0):,} edges), model files "
          f"{payload['model_files_mb']} MB on disk")
    rows = [[f"worker {i + 1} {state}", w["rss_mb"], w["uss_mb"], w["pss_mb"]]
            for state, ws in (("idle", idle), ("all models", loaded), ("+ answer cache full", cached))
            for i, w in enumerate(ws)]
    print(table(["process", "RSS MB", "USS MB", "PSS MB"], rows))
    print(f"target: RSS <= {TARGET_RSS_MB:g} MB with every model loaded (and answer caches full): "
          f"{'met' if worst <= TARGET_RSS_MB else 'MISSED'} "
          f"({worst} MB)")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
