#!/usr/bin/env python
"""Discovery measurements (issue 15), offline on MovieLens (no Neo4j, no server):

1. Trending vs all-time popularity (ml-100k, where the half-life was chosen, then ml-latest-small untuned; time
   split): at each of up to 200 weekly cutoffs T (weeks
   whose next 7 days have at least 5 active users), both rank the catalogue from the ratings before T (weights
   as the service's edges: a rating >= 4 is LIKES, 5; any other WATCHED, 3), and each user active in [T, T + 7
   days) gets the top 10 of the items they had not rated before T: P@10 of next week's ratings, averaged over
   the cutoffs' users. Trending is ai/trending.py (half-life 1 week, the service's default; 1 day, 2 and 4
   weeks for comparison).
2. Diversity curve (ml-100k, the quality bench's split: per-user random 75/25, seed 42, LightFM with the
   service's defaults): for diversity 0, .25, .5, .75, 1, the top 10 re-ranked by MMR (ai/diversity.py) from
   a pool of 50 over the item embeddings and genres: P@10, intra-list diversity (mean pairwise 1 - similarity),
   distinct genres in the top 10, catalogue coverage (share of items in anyone's top 10). A PNG plot too.
3. New items (ml-latest-small): 10 % of the movies (seed 42) held out of training entirely; their factors made
   from their genres (ai/cold_items.py); for every user who rated any of them, the AUC of their held-out movies
   against the other held-out movies they did not rate, scored by the cold factors, by genre popularity (the
   summed training weight of the movie's genres, the same for everyone) and at random.

    python -m bench.discovery [--ml-small DIR] [--ml-100k DIR] [--smoke]

Writes bench/results/discovery.json and bench/results/discovery_diversity.png; prints the tables.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ai.cold_items import ColdItems  # noqa: E402
from ai.diversity import intra_list_diversity, mmr_order, pool_size, similarity_matrix  # noqa: E402
from ai.evaluation import auc, precision_at_k, train_test_split_per_user  # noqa: E402
from ai.recommendation_engine import SERVICE_DEFAULTS, LightFMRecommender  # noqa: E402
from ai.trending import TrendingScores  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"
WEEK = 7 * 24 * 3600.0
DAY = 24 * 3600.0
DIVERSITIES = (0.0, 0.25, 0.5, 0.75, 1.0)
SEED = 42


def load_latest_small(path: Path) -> dict:
    """ratings (users, items, weights as the service's edges, times) and each movie's genres."""
    raw = np.genfromtxt(path / "ratings.csv", delimiter=",", skip_header=1, dtype=np.float64)
    users, user_index = np.unique(raw[:, 0].astype(np.int64), return_inverse=True)
    movies, item_index = np.unique(raw[:, 1].astype(np.int64), return_inverse=True)
    weights = np.where(raw[:, 2] >= 4.0, 5.0, 3.0)
    genres: dict[int, list[str]] = {}
    import csv

    with open(path / "movies.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            names = [g for g in row["genres"].split("|") if g and g != "(no genres listed)"]
            genres[int(row["movieId"])] = names
    return {"users": user_index, "items": item_index, "weights": weights, "times": raw[:, 3],
            "n_users": users.size, "n_items": movies.size, "genres": [genres.get(int(m), []) for m in movies]}


def load_100k_timed(path: Path) -> dict:
    """ml-100k's ratings with their times, in load_latest_small's shape (no genres: trending needs none)."""
    raw = np.loadtxt(path / "u.data", dtype=np.int64)
    users, user_index = np.unique(raw[:, 0], return_inverse=True)
    items, item_index = np.unique(raw[:, 1], return_inverse=True)
    return {"users": user_index, "items": item_index, "weights": np.where(raw[:, 2] >= 4, 5.0, 3.0),
            "times": raw[:, 3].astype(np.float64), "n_users": users.size, "n_items": items.size}


def load_100k(path: Path) -> tuple[sp.csr_matrix, list[list[str]]]:
    raw = np.loadtxt(path / "u.data", dtype=np.int64, usecols=(0, 1, 2))
    users, users_index = np.unique(raw[:, 0], return_inverse=True)
    items, items_index = np.unique(raw[:, 1], return_inverse=True)
    matrix = sp.csr_matrix((raw[:, 2].astype(np.float32), (users_index, items_index)), shape=(users.size, items.size))
    names = [line.split("|")[0] for line in (path / "u.genre").read_text(encoding="latin-1").splitlines() if line]
    by_item: dict[int, list[str]] = {}
    for line in (path / "u.item").read_text(encoding="latin-1").splitlines():
        parts = line.split("|")
        flags = parts[-len(names):]
        by_item[int(parts[0])] = [n for n, flag in zip(names, flags) if flag == "1" and n != "unknown"]
    return matrix, [by_item.get(int(i), []) for i in items]


def fit(matrix: sp.csr_matrix, *, epochs: int | None = None) -> LightFMRecommender:
    params = dict(SERVICE_DEFAULTS, random_state=SEED, num_threads=1)
    if epochs is not None:
        params["epochs"] = epochs
    return LightFMRecommender(**params).fit(matrix)


# --- 1. trending ----------------------------------------------------------------------------------------------
def trending_vs_popularity(data: dict, *, max_cutoffs: int = 200, min_users: int = 5) -> dict:
    users, items, weights, times = data["users"], data["items"], data["weights"], data["times"]
    n_items = data["n_items"]
    start = times.min() + 8 * WEEK  # some history first
    weeks = np.arange(start, times.max() - WEEK, WEEK)
    active = [np.unique(users[(times >= t) & (times < t + WEEK)]).size for t in weeks]
    eligible = [t for t, a in zip(weeks, active) if a >= min_users]
    cutoffs = [eligible[i] for i in np.linspace(0, len(eligible) - 1, min(max_cutoffs, len(eligible))).astype(int)] \
        if eligible else []
    half_lives = {"trending, half-life 1 day": DAY, "trending, half-life 1 week (default)": WEEK,
                  "trending, half-life 2 weeks": 2 * WEEK, "trending, half-life 4 weeks": 4 * WEEK}
    hits = {name: [] for name in ["all-time popularity", *half_lives]}
    for t in cutoffs:
        before = times < t
        following = (times >= t) & (times < t + WEEK)
        rankers = {"all-time popularity": np.bincount(items[before], weights=weights[before], minlength=n_items)}
        for name, half_life in half_lives.items():
            rankers[name] = TrendingScores.from_edges(n_items, items[before], weights[before], times[before], now=t,
                                                      half_life_seconds=half_life).scores()
        seen = sp.csr_matrix((np.ones(before.sum()), (users[before], items[before])),
                             shape=(data["n_users"], n_items))
        for user in np.unique(users[following]):
            relevant = set(items[following & (users == user)].tolist())
            had = seen[user].indices
            for name, scores in rankers.items():
                s = scores.astype(np.float64).copy()
                s[had] = -np.inf
                top = np.argsort(-s, kind="stable")[:10]
                hits[name].append(len(relevant & set(top.tolist())) / 10)
    return {"cutoffs": len(cutoffs), "user_weeks": len(hits["all-time popularity"]),
            "p_at_10": {name: round(float(np.mean(v)), 4) if v else None for name, v in hits.items()}}


# --- 2. diversity ----------------------------------------------------------------------------------------------
def diversity_curve(matrix: sp.csr_matrix, genres: list[list[str]], *, epochs: int | None = None) -> dict:
    train, test = train_test_split_per_user(matrix, test_fraction=0.25, seed=SEED)
    model = fit(train, epochs=epochs)
    embeddings = np.asarray(model.item_factors[:, :-1])
    genre_sets = [frozenset(g.casefold() for g in names) for names in genres]
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    pool = pool_size(10, matrix.shape[1])
    out = {}
    pools = {}
    for user in users.tolist():
        ids, _ = model.recommend(user, train[user], n=pool)
        sims = similarity_matrix(embeddings[ids], [genre_sets[i] for i in ids.tolist()])
        pools[user] = (ids, sims)
    for diversity in DIVERSITIES:
        top = np.full((matrix.shape[0], 10), -1, dtype=np.int64)
        ild, distinct = [], []
        for user, (ids, sims) in pools.items():
            order = list(range(10)) if diversity == 0 else mmr_order(sims, 10, diversity)
            chosen = ids[order]
            top[user, :len(chosen)] = chosen
            ild.append(intra_list_diversity(sims[np.ix_(order, order)]))
            distinct.append(len(set().union(*(genre_sets[i] for i in chosen.tolist()))))
        covered = np.unique(top[users][top[users] >= 0]).size
        out[str(diversity)] = {
            "p_at_10": round(precision_at_k(top[users], test[users], k=10), 4),
            "intra_list_diversity": round(float(np.mean(ild)), 4),
            "distinct_genres_top10": round(float(np.mean(distinct)), 2),
            "coverage": round(covered / matrix.shape[1], 4),
        }
    return {"users": int(users.size), "pool": pool, "curve": out}


def plot_curve(curve: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [float(k) for k in curve]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    axes[0].plot(xs, [v["p_at_10"] for v in curve.values()], "o-", label="P@10")
    axes[0].plot(xs, [v["intra_list_diversity"] for v in curve.values()], "s-", label="intra-list diversity")
    axes[0].plot(xs, [v["coverage"] for v in curve.values()], "^-", label="catalogue coverage")
    axes[0].set_xlabel("diversity")
    axes[0].legend(fontsize=8)
    axes[1].plot(xs, [v["distinct_genres_top10"] for v in curve.values()], "o-", color="C3")
    axes[1].set_xlabel("diversity")
    axes[1].set_ylabel("distinct genres in the top 10")
    fig.suptitle("ml-100k: MMR re-rank of LightFM's top 50")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- 3. new items ----------------------------------------------------------------------------------------------
def cold_items_auc(data: dict, *, epochs: int | None = None, fraction: float = 0.1) -> dict:
    rng = np.random.default_rng(SEED)
    n_items = data["n_items"]
    cold = np.sort(rng.choice(n_items, size=int(round(fraction * n_items)), replace=False))
    is_cold = np.zeros(n_items, dtype=bool)
    is_cold[cold] = True
    warm = np.flatnonzero(~is_cold)
    warm_column = np.full(n_items, -1, dtype=np.int64)
    warm_column[warm] = np.arange(warm.size)
    cold_column = np.full(n_items, -1, dtype=np.int64)
    cold_column[cold] = np.arange(cold.size)
    users, items, weights = data["users"], data["items"], data["weights"]
    in_train = ~is_cold[items]
    train = sp.csr_matrix((weights[in_train], (users[in_train], warm_column[items[in_train]])),
                          shape=(data["n_users"], warm.size))
    train.sum_duplicates()
    model = fit(train, epochs=epochs)
    genres = data["genres"]
    factors = ColdItems(model, [genres[i] for i in warm.tolist()], [str(i) for i in cold.tolist()],
                        [genres[i] for i in cold.tolist()])
    relevant = sp.csr_matrix((np.ones((~in_train).sum()), (users[~in_train], cold_column[items[~in_train]])),
                             shape=(data["n_users"], cold.size))
    relevant.data[:] = 1.0
    relevant.sum_duplicates()
    relevant.data[:] = 1.0
    who = np.flatnonzero(np.diff(relevant.indptr) > 0)
    who = who[np.diff(train.indptr)[who] > 0]  # users the model learned (the test: a known user meets new items)
    user_vectors = model.user_factors[who]
    cold_scores = user_vectors @ factors.factors.T
    cold_scores[:, ~factors.has_factors] = -1e9
    # genre popularity: the summed training weight of the items with each genre, summed over the movie's genres
    genre_weight: dict[str, float] = {}
    item_weight = np.bincount(warm_column[items[in_train]], weights=weights[in_train], minlength=warm.size)
    for column, item in enumerate(warm.tolist()):
        for g in genres[item]:
            genre_weight[g] = genre_weight.get(g, 0.0) + item_weight[column]
    genre_pop = np.array([sum(genre_weight.get(g, 0.0) for g in genres[i]) for i in cold.tolist()])
    random_scores = rng.random((who.size, cold.size))
    target = relevant[who]
    return {
        "held_out_movies": int(cold.size), "with_factors": int(factors.has_factors.sum()), "users": int(who.size),
        "auc": {
            "cold factors (genres -> factors)": round(auc(cold_scores.astype(np.float32), target), 4),
            "genre popularity": round(auc(np.tile(genre_pop, (who.size, 1)).astype(np.float32), target), 4),
            "random": round(auc(random_scores.astype(np.float32), target), 4),
        },
    }


def synthetic_data(seed: int = 0, n_users: int = 120, n_items: int = 80) -> dict:
    """A small dataset of the latest-small shape for --smoke (genres by item group, times over a year)."""
    rng = np.random.default_rng(seed)
    groups = np.arange(n_items) % 4
    users, items = [], []
    for u in range(n_users):
        liked = rng.choice(np.flatnonzero(groups == u % 4), size=8, replace=False)
        users += [u] * liked.size
        items += liked.tolist()
    times = 1.5e9 + rng.random(len(users)) * 52 * WEEK
    return {"users": np.array(users), "items": np.array(items), "weights": np.full(len(users), 5.0),
            "times": times, "n_users": n_users, "n_items": n_items,
            "genres": [[f"g{g}", "common"] for g in groups.tolist()]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ml-small", type=Path, default=DATA / "movielens-latest-small")
    parser.add_argument("--ml-100k", type=Path, default=DATA / "ml-100k")
    parser.add_argument("--smoke", action="store_true", help="a tiny synthetic run (seconds), nothing written")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.smoke:
        data = synthetic_data()
        matrix = sp.csr_matrix((data["weights"], (data["users"], data["items"])),
                               shape=(data["n_users"], data["n_items"]))
        result = {"trending": trending_vs_popularity(data, max_cutoffs=3, min_users=1),
                  "diversity": diversity_curve(matrix, data["genres"], epochs=2),
                  "cold_items": cold_items_auc(data, epochs=2, fraction=0.2)}
        print(json.dumps(result, indent=2))
        return 0
    if not (args.ml_small / "ratings.csv").exists() or not (args.ml_100k / "u.data").exists():
        print(f"skipped: MovieLens not found at {args.ml_small} / {args.ml_100k}")
        return 0
    small = load_latest_small(args.ml_small)
    trending = {}
    for name, data in (("ml-100k", load_100k_timed(args.ml_100k)), ("ml-latest-small", small)):
        t0 = time.perf_counter()
        trending[name] = trending_vs_popularity(data)
        trending[name]["seconds"] = round(time.perf_counter() - t0, 1)
        print("1. next week's P@10 (%s, %d weekly cutoffs, %d user-weeks)" % (
            name, trending[name]["cutoffs"], trending[name]["user_weeks"]))
        for ranking, value in trending[name]["p_at_10"].items():
            print(f"   {ranking:40s} {value}")
    t0 = time.perf_counter()
    matrix, genres = load_100k(args.ml_100k)
    diversity = diversity_curve(matrix, genres)
    diversity["seconds"] = round(time.perf_counter() - t0, 1)
    print("2. diversity (ml-100k, %d users, pool %d)" % (diversity["users"], diversity["pool"]))
    print("   diversity  P@10    ILD     genres  coverage")
    for d, v in diversity["curve"].items():
        print(f"   {d:9s}  {v['p_at_10']:.4f}  {v['intra_list_diversity']:.4f}  {v['distinct_genres_top10']:6.2f}  "
              f"{v['coverage']:.4f}")
    args.out.mkdir(parents=True, exist_ok=True)
    plot_curve(diversity["curve"], args.out / "discovery_diversity.png")
    t0 = time.perf_counter()
    cold = cold_items_auc(small)
    cold["seconds"] = round(time.perf_counter() - t0, 1)
    print("3. new items AUC (ml-latest-small, %d held-out movies, %d users)" % (cold["held_out_movies"], cold["users"]))
    for name, value in cold["auc"].items():
        print(f"   {name:40s} {value}")
    result = {"generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
              "seconds": round(time.perf_counter() - started, 1),
              "trending": trending, "diversity": diversity, "cold_items": cold,
              "plot": "bench/results/discovery_diversity.png"}
    (args.out / "discovery.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out / 'discovery.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
