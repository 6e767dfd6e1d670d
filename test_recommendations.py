#!/usr/bin/env python
"""End-to-end check of the recommender on the configured Neo4j: extract, train, recommend, display.

    python test_recommendations.py                 # every content type with interactions
    python test_recommendations.py --type movies   # one type
    python test_recommendations.py --users 3       # how many sample users to show

For each type it prints the time of each step (extract, fit, save), the held-out metrics of the training
run, and for a few users their history next to what they are recommended (titles, not ids). It works on
the demo graph (`manage.py seed_demo`) and on imported MovieLens / MyAnimeList data. It trains and saves
real models into MUSICBUD_MODEL_DIR, as the training endpoint does.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "musicbud.settings")
    import django

    django.setup()
    import orjson
    from asgiref.sync import async_to_sync

    from app.content_types import CONTENT_TYPES, content_type
    from app.errors import ApplicationError
    from app.services import recommendation_data_service as data
    from app.services.recommendation_service import models_train, recommendations_for_user

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--type", action="append", choices=[ct.key for ct in CONTENT_TYPES])
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--n", type=int, default=5)
    args = parser.parse_args()
    rows = [content_type(k) for k in args.type] if args.type else list(CONTENT_TYPES)

    try:
        from app import graph

        graph.driver().verify_connectivity()
    except Exception as exc:
        print(f"error: Neo4j is not reachable ({exc}). Start it with `make neo4j-start` or set NEO4J_BOLT_URL.",
              file=sys.stderr)
        return 1

    started = time.perf_counter()
    try:
        results = models_train(content_types=[ct.key for ct in rows], show_progress=True)
    except ApplicationError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    total = time.perf_counter() - started

    from app.services.model_registry import registry

    print(f"\nTrained {sum(results.values())}/{len(results)} types in {total:.1f}s\n")
    header = f"{'type':8s} {'users':>7s} {'items':>7s} {'edges':>9s} {'extract':>8s} {'fit':>7s} {'save':>6s} " \
             f"{'P@10':>6s} {'R@10':>6s} {'NDCG@10':>8s} {'AUC':>6s} {'cov':>6s}"
    print(header)
    print("-" * len(header))
    for ct in rows:
        model = registry.get(ct.model_key)
        if model is None:
            print(f"{ct.model_key:8s} (no model: no interactions or training failed, see the log)")
            continue
        m, c, t = model.manifest.get("metrics") or {}, model.manifest["counts"], model.manifest["timings"]
        f = lambda key: f"{m[key]:.3f}" if key in m else "  -  "  # noqa: E731
        print(f"{ct.model_key:8s} {c['users']:7d} {c['items']:7d} {c['interactions']:9d} {t['extract_seconds']:7.2f}s "
              f"{t['fit_seconds']:6.2f}s {t.get('save_seconds', 0):5.2f}s {f('precision_at_k'):>6s} "
              f"{f('recall_at_k'):>6s} {f('ndcg_at_k'):>8s} {f('auc'):>6s} {f('coverage'):>6s}")

    from app.services.training import selection_table_lines

    for ct in rows:  # every candidate of each type: validation and held-out metrics, fit seconds, memory
        model = registry.get(ct.model_key)
        if model is not None and model.manifest.get("selection"):
            print("\n".join(selection_table_lines(key=ct.model_key, selection=model.manifest["selection"])))

    directory = data.users_directory()
    for ct in rows:
        model = registry.get(ct.model_key)
        if model is None:
            continue
        title = ct.title_property
        sample = sorted(model.user_map, key=lambda u: -model.matrix[model.user_map[u]].nnz)[: args.users]
        print(f"\n=== {ct.key}: sample users ===")
        for uid in sample:
            username = directory.get(uid, {}).get("username") or uid
            history = data.user_history(content_type=ct, user_uid=uid)[:5]
            t0 = time.perf_counter()
            recs = orjson.loads(async_to_sync(recommendations_for_user)(
                username=username, content_type=ct.key, n=args.n).json.text)
            ms = (time.perf_counter() - t0) * 1000
            print(f"\n{username} ({model.matrix[model.user_map[uid]].nnz} {ct.key}); recommended in {ms:.1f} ms")
            print("  history:     " + "; ".join(str((model.items.get(i) or {}).get(title, i)) for i in history))
            for r in recs:
                because = ", ".join(str(b.get(title)) for b in r.get("because", []))
                print(f"  {r['recommendation_score']:8.3f}  {r.get(title)}" + (f"  (because: {because})" if because else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
