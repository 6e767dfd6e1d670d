#!/usr/bin/env python
"""Buds and cross-domain on the synthetic demo graph: do users of one taste find each other, and does the
joint taste model recommend movies to users with no movie history better than popularity does?

    python -m bench.taste            # 3,000 users, 300 items per type, ~30 interactions each
    python -m bench.taste --smoke    # tiny, seconds (CI)

It starts a throwaway Neo4j, seeds it with `seed_demo`'s generator (whose users carry the latent taste
cluster they were generated from, ParentUser.demo_taste), trains every model as the service does, and
measures:
- buds: the share of each sampled user's top-10 buds that come from the same taste cluster, against what
  ten random other users would give (the cluster's share of all other users);
- cross-domain: for users with movie AND other history, their movie edges are held out of the joint
  taste model; the model then ranks movies from their other domains alone. P@10 and R@10 against the
  held-out movies, compared with the most popular movies (computed without those users).
Prints a table and writes bench/results/taste.json (taste-smoke.json with --smoke).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--per-user", type=float, default=30)
    parser.add_argument("--sample", type=int, default=500, help="users sampled for the buds measurement")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if args.smoke:
        args.users, args.items, args.per_user, args.sample = 200, 60, 20, 50

    from bench.harness import neo4j_in_process

    with neo4j_in_process("musicbud-bench-taste-") as tmp:
        return run(args, tmp)


def run(args, tmp: Path) -> int:
    import django

    django.setup()
    import numpy as np
    import scipy.sparse as sp

    from ai.evaluation import precision_at_k, recall_at_k
    from app import graph
    from app.services.demo_data import demo_seed
    from app.services.graph_schema import constraints_install
    from app.services.model_registry import registry
    from app.services.recommendation_service import models_train
    from app.services.training import taste_model_train

    constraints_install()
    t0 = time.perf_counter()
    demo_seed(seed=args.seed, users=args.users, items_per_type=args.items, interactions_per_user=args.per_user,
              progress=False, with_auth_users=False)
    seed_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    trained = models_train()
    train_seconds = time.perf_counter() - t0
    taste = registry.get("taste")
    clusters = {r["uid"]: r["taste"] for r in graph.query(
        "MATCH (u:ParentUser) WHERE u.demo_taste IS NOT NULL RETURN u.uid AS uid, u.demo_taste AS taste")}

    # --- buds: same-cluster share of the top 10, against random ---
    rng = np.random.default_rng(args.seed)
    profiles, user_ids = taste.profiles, taste.user_ids
    known = np.array([i for i, u in enumerate(user_ids) if u in clusters])
    cluster_of = np.array([clusters.get(u, -1) for u in user_ids])
    sizes = {c: int((cluster_of[known] == c).sum()) for c in set(cluster_of[known].tolist())}
    sample = rng.choice(known, size=min(args.sample, len(known)), replace=False)
    same, random_share = [], []
    for row in sample:
        sims = profiles @ profiles[row]
        sims[row] = -np.inf
        sims[cluster_of < 0] = -np.inf
        top = np.argpartition(-sims, 10)[:10]
        same.append(float((cluster_of[top] == cluster_of[row]).mean()))
        random_share.append((sizes[cluster_of[row]] - 1) / (len(known) - 1))
    buds = {"users_sampled": int(len(sample)), "same_taste_share_top10": round(float(np.mean(same)), 4),
            "random_same_taste_share": round(float(np.mean(random_share)), 4)}
    buds["lift_over_random"] = round(buds["same_taste_share_top10"] / buds["random_same_taste_share"], 2)

    # --- cross-domain: hold out the movies of users who have movies and something else ---
    movie = registry.get("movie")
    others = [registry.get(k) for k in ("manga", "anime", "track", "artist", "album", "genre")]
    has_other = set().union(*(set(m.user_map) for m in others if m is not None))
    candidates = np.array(sorted(u for u in movie.user_map if u in has_other and u in clusters))
    held = set(rng.choice(candidates, size=min(max(len(candidates) // 5, 1), 1000), replace=False).tolist())
    keep = np.ones(movie.matrix.shape[0], dtype=np.float32)
    held_rows = [movie.user_map[u] for u in held]
    keep[held_rows] = 0.0
    train_movies = (sp.diags(keep) @ movie.matrix).tocsr()
    train_movies.eliminate_zeros()
    reduced = {m.content_type: m for m in others if m is not None}
    reduced["movie"] = SimpleNamespace(user_map=movie.user_map, item_map=movie.item_map, matrix=train_movies,
                                       items=movie.items, content_type="movie")
    t0 = time.perf_counter()
    joint = taste_model_train(trained=reduced)
    cross_fit_seconds = time.perf_counter() - t0
    prefix = "movie:"
    movie_cols = np.array(sorted(c for k, c in joint.item_map.items() if k.startswith(prefix)))
    col_to_movie = {c: movie.item_map[k[len(prefix):]] for k, c in joint.item_map.items() if k.startswith(prefix)}
    popularity = np.asarray(train_movies.sum(axis=0)).ravel()
    popular_top = np.argsort(-popularity, kind="stable")[:10]
    users = sorted(held)
    relevant = movie.matrix[[movie.user_map[u] for u in users]]
    relevant.data[:] = 1.0
    crossed = np.empty((len(users), 10), dtype=np.int64)
    for i, u in enumerate(users):
        scores = joint.model.item_factors[movie_cols] @ joint.model.user_vector(joint.user_map[u])
        best = movie_cols[np.argsort(-scores, kind="stable")[:10]]
        crossed[i] = [col_to_movie[c] for c in best]
    popular = np.tile(popular_top, (len(users), 1))
    cross = {
        "held_out_users": len(users),
        "taste_model_p_at_10": round(float(precision_at_k(crossed, relevant, k=10)), 4),
        "popularity_p_at_10": round(float(precision_at_k(popular, relevant, k=10)), 4),
        "taste_model_r_at_10": round(float(recall_at_k(crossed, relevant, k=10)), 4),
        "popularity_r_at_10": round(float(recall_at_k(popular, relevant, k=10)), 4),
        "joint_fit_seconds": round(cross_fit_seconds, 2),
    }
    result = {
        "graph": {"users": args.users, "items_per_type": args.items, "interactions_per_user": args.per_user,
                  "seed": args.seed, "seed_seconds": round(seed_seconds, 2), "train_seconds": round(train_seconds, 2),
                  "trained": trained},
        "buds": buds,
        "cross_domain": cross,
    }
    print(f"demo graph: {args.users} users, {args.items} items/type; seeded in {seed_seconds:.1f}s, "
          f"trained in {train_seconds:.1f}s")
    print(f"\nbuds ({buds['users_sampled']} users): same-taste share of top-10 buds "
          f"{buds['same_taste_share_top10']:.3f} vs random {buds['random_same_taste_share']:.3f} "
          f"({buds['lift_over_random']}x)")
    print(f"\ncross-domain movies for {cross['held_out_users']} users with their movies held out:")
    print(f"  {'':18s} {'P@10':>6s} {'R@10':>6s}")
    print(f"  {'joint taste model':18s} {cross['taste_model_p_at_10']:6.3f} {cross['taste_model_r_at_10']:6.3f}")
    print(f"  {'popularity':18s} {cross['popularity_p_at_10']:6.3f} {cross['popularity_r_at_10']:6.3f}")
    out = ROOT / "bench" / "results" / ("taste-smoke.json" if args.smoke else "taste.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
