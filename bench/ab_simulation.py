"""A/B simulation: how soon the always-valid test (ai.experiments) finds a better recommender when the experiment
is looked at every day, and how often it, or the naive z-test looked at the same way, finds a difference between
two identical arms.

    .venv/bin/python -m bench.ab_simulation            # 100 A/B + 500 A/A runs, ~1 minute on 2 cores:
                                                       # bench/results/ab_simulation.json
    .venv/bin/python -m bench.ab_simulation --smoke    # seconds: bench/results/ab_simulation-smoke.json

Run it from the repository root (python -m puts the current directory on sys.path).

The world (fixed by --seed): 500 items with 8-dimensional latent vectors v_i and a popularity bias b_i ~ N(0, 0.7²);
a user has a latent taste u ~ N(0, I). Their affinity for item i is a = u·v_i/√8 + b_i, and they like the item,
once shown it, with probability sigmoid(-7 + 1.2 a). A user *converts* when they like at least one of the 10 items
their arm recommends: P(convert) = 1 - Π (1 - p_i) over the list, known exactly for every user.

Arms (50/50 by ai.experiments.assign_arm, a new experiment name per run): A, the control, recommends the 10 items
most liked by a historical sample of 20,000 users (popularity); B the 10 items of highest true affinity plus
N(0, 1.4²) noise per item (a taste model that is good, not perfect). In the A/A runs both arms recommend by
popularity. The true rates are the mean P(convert) of 200,000 users under each arm.

Time: each day Poisson(400) new users arrive and are assigned; their outcome is known by that evening's look (a
one-day window). After every day ai.experiments.experiment_report is computed with the previous look's p-values.
Served answers per user are 1 + Poisson(1.5), each clicked with probability min(1, 2 P(convert)), each unclicked
one dismissed with probability 0.2 (the secondary metrics are only reported, never tested).

Reported: for the A/B runs, the day B is first declared the winner (median and 90th percentile, nearest rank;
runs that never cross count as later than the horizon), against two planning numbers for the true lift; for the
A/A runs, the share of runs in which a test *ever* says p < 0.05 during the horizon, with Wilson 95 % intervals.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ai.experiments import (
    MIXING_VARIANCE,
    ArmCounts,
    always_valid_users_per_arm,
    assign_arm,
    experiment_report,
    fixed_horizon_users_per_arm,
    wilson_interval,
)
from bench.harness import result_write, table

ARMS = [("A", 0.5), ("B", 0.5)]
ALPHA = 0.05
ITEMS, DIMENSIONS, LIST_LENGTH = 500, 8, 10
ITEM_BIAS_SD, LIKE_INTERCEPT, LIKE_SLOPE, TASTE_NOISE_SD = 0.7, -7.0, 1.2, 1.4
HISTORY_USERS, TRUE_RATE_USERS = 20_000, 200_000


@dataclass(frozen=True)
class Setup:
    days: int
    users_per_day: float
    ab_runs: int
    aa_runs: int
    seed: int
    true_rate_users: int = TRUE_RATE_USERS


FULL = Setup(days=28, users_per_day=400, ab_runs=100, aa_runs=500, seed=7)
SMOKE = Setup(days=8, users_per_day=200, ab_runs=3, aa_runs=4, seed=7, true_rate_users=20_000)


@dataclass(frozen=True)
class World:
    item_vectors: np.ndarray  # items x DIMENSIONS
    item_bias: np.ndarray  # items
    popular: np.ndarray  # the control's list: the LIST_LENGTH items the historical sample liked most


def affinities(world: World, tastes: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
    """users x items (every item, or the given ones): u·v_i/√DIMENSIONS + b_i."""
    vectors, bias = (world.item_vectors, world.item_bias) if items is None else (world.item_vectors[items],
                                                                                world.item_bias[items])
    return tastes @ vectors.T / math.sqrt(DIMENSIONS) + bias


def like_probability(affinity: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(LIKE_INTERCEPT + LIKE_SLOPE * affinity)))


def world_make(seed: int) -> World:
    rng = np.random.default_rng([seed, 0])
    vectors, bias = rng.normal(size=(ITEMS, DIMENSIONS)), rng.normal(0.0, ITEM_BIAS_SD, size=ITEMS)
    partial = World(item_vectors=vectors, item_bias=bias, popular=np.arange(LIST_LENGTH))
    liked = rng.random((HISTORY_USERS, ITEMS)) < like_probability(
        affinities(partial, rng.normal(size=(HISTORY_USERS, DIMENSIONS))))
    return World(item_vectors=vectors, item_bias=bias, popular=np.argsort(-liked.sum(axis=0))[:LIST_LENGTH])


def conversion_popular(world: World, tastes: np.ndarray) -> np.ndarray:
    """P(convert) per user under arm A: 1 - Π (1 - p) over the popular list."""
    probability = like_probability(affinities(world, tastes, world.popular))
    return 1.0 - np.prod(1.0 - probability, axis=1)


def conversion_taste(world: World, tastes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """P(convert) per user under arm B: its list is the top LIST_LENGTH of (true affinity + noise)."""
    affinity = affinities(world, tastes)
    chosen = np.argpartition(-(affinity + rng.normal(0.0, TASTE_NOISE_SD, size=affinity.shape)), LIST_LENGTH,
                             axis=1)[:, :LIST_LENGTH]
    return 1.0 - np.prod(1.0 - like_probability(np.take_along_axis(affinity, chosen, axis=1)), axis=1)


def true_rates(world: World, *, users: int, seed: int) -> tuple[float, float]:
    rng, batch, a, b = np.random.default_rng([seed, 1]), 20_000, 0.0, 0.0
    for start in range(0, users, batch):
        tastes = rng.normal(size=(min(batch, users - start), DIMENSIONS))
        a, b = a + conversion_popular(world, tastes).sum(), b + conversion_taste(world, tastes, rng).sum()
    return a / users, b / users


@dataclass(frozen=True)
class RunResult:
    winner_day: int | None  # first day B is declared the winner (1-based)
    always_valid_day: int | None  # first day the always-valid p-value < alpha, either direction
    fixed_peeking_day: int | None  # first day the fixed-horizon z-test p-value < alpha
    fixed_last_day_rejects: bool  # the z-test looked at once, on the last day
    wrong_direction: bool  # the always-valid test ever said B is significantly worse


def cumulative_by_day_and_arm(day: np.ndarray, in_b: np.ndarray, values: np.ndarray, days: int) -> np.ndarray:
    """days x 2 array: the running total of values over days, per arm (column 0 = A, 1 = B)."""
    totals = np.bincount(day * 2 + in_b, weights=values, minlength=2 * days).reshape(days, 2)
    return np.rint(totals.cumsum(axis=0)).astype(np.int64)


def experiment_run(world: World, setup: Setup, *, kind: str, run: int) -> RunResult:
    rng = np.random.default_rng([setup.seed, 2 if kind == "ab" else 3, run])
    day = np.repeat(np.arange(setup.days), rng.poisson(setup.users_per_day, size=setup.days))
    name = f"ab-simulation-{kind}-{setup.seed}-{run}"
    in_b = np.array([assign_arm(experiment=name, user=f"user-{j}", arms=ARMS) == "B" for j in range(day.size)])
    tastes = rng.normal(size=(day.size, DIMENSIONS))
    probability = conversion_popular(world, tastes)
    if kind == "ab":
        probability[in_b] = conversion_taste(world, tastes[in_b], rng)
    answers = 1 + rng.poisson(1.5, size=day.size)
    clicks = rng.binomial(answers, np.minimum(1.0, 2.0 * probability))
    counts = {field: cumulative_by_day_and_arm(day, in_b.astype(np.int64), values, setup.days) for field, values in {
        "users": np.ones(day.size), "converted_users": rng.random(day.size) < probability, "impressions": answers,
        "clicks": clicks, "dismissals": rng.binomial(answers - clicks, 0.2)}.items()}

    winner_day = always_valid_day = fixed_day = None
    wrong, previous, report = False, None, None
    for d in range(setup.days):
        arms = [ArmCounts(name=arm, **{field: int(c[d, column]) for field, c in counts.items()})
                for column, (arm, _) in enumerate(ARMS)]
        report = experiment_report(arms=arms, control="A", alpha=ALPHA, previous=previous)
        previous, lift = report.always_valid_p_values(), report.arm("B").versus_control
        if winner_day is None and report.winner == "B":
            winner_day = d + 1
        if always_valid_day is None and lift.significant:
            always_valid_day = d + 1
        if fixed_day is None and lift.fixed_horizon_p_value < ALPHA:
            fixed_day = d + 1
        wrong |= lift.significant and lift.absolute_lift < 0
    return RunResult(winner_day=winner_day, always_valid_day=always_valid_day, fixed_peeking_day=fixed_day,
                     fixed_last_day_rejects=report.arm("B").versus_control.fixed_horizon_p_value < ALPHA,
                     wrong_direction=wrong)


def nearest_rank_day(days: list[int | None], q: float) -> int | None:
    """The q-quantile day by nearest rank, runs that never crossed counting as after the horizon (None)."""
    ordered = sorted(d for d in days if d is not None)
    rank = max(1, math.ceil(q * len(days)))
    return ordered[rank - 1] if rank <= len(ordered) else None


def share(hits: int, runs: int) -> dict[str, Any]:
    low, high = wilson_interval(hits, runs, confidence=0.95)
    return {"runs": hits, "of": runs, "rate": round(hits / runs, 4), "interval_95": [round(low, 4), round(high, 4)]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a tiny run (seconds)")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/ab_simulation[-smoke].json)")
    parser.add_argument("--ab-runs", type=int, help=f"A/B runs (default {FULL.ab_runs})")
    parser.add_argument("--aa-runs", type=int, help=f"A/A runs (default {FULL.aa_runs})")
    args = parser.parse_args(argv)
    setup = SMOKE if args.smoke else FULL
    setup = Setup(**{**setup.__dict__, **{k: v for k, v in (("ab_runs", args.ab_runs), ("aa_runs", args.aa_runs))
                                          if v is not None}})
    started = time.perf_counter()

    world = world_make(setup.seed)
    rate_a, rate_b = true_rates(world, users=setup.true_rate_users, seed=setup.seed)
    per_arm_per_day = setup.users_per_day * dict(ARMS)["A"]
    always_valid_n = always_valid_users_per_arm(control_rate=rate_a, treatment_rate=rate_b, alpha=ALPHA)
    fixed_n = fixed_horizon_users_per_arm(control_rate=rate_a, treatment_rate=rate_b, alpha=ALPHA, power=0.8)
    ab = [experiment_run(world, setup, kind="ab", run=r) for r in range(setup.ab_runs)]
    aa = [experiment_run(world, setup, kind="aa", run=r) for r in range(setup.aa_runs)]
    seconds = time.perf_counter() - started

    winner_days = [r.winner_day for r in ab]
    detection = {"median_day": nearest_rank_day(winner_days, 0.5), "p90_day": nearest_rank_day(winner_days, 0.9),
                 "detected_within_horizon": share(sum(d is not None for d in winner_days), len(ab)),
                 "days": winner_days, "wrong_direction_runs": sum(r.wrong_direction for r in ab)}
    expected = {
        "always_valid_expected_path_day": math.ceil(always_valid_n / per_arm_per_day),
        "always_valid_users_per_arm": always_valid_n,
        "fixed_horizon_80_percent_power_day": math.ceil(fixed_n / per_arm_per_day),
        "fixed_horizon_users_per_arm": fixed_n,
        "how": ("users per arm over the expected users per arm per day (users_per_day x 0.5), rounded up. "
                "always_valid_expected_path: ai.experiments.always_valid_users_per_arm, the n at which the "
                "always-valid p-value of the expected counts (observed lift = the true lift, pooled variance "
                "2 p(1-p)/n) reaches alpha = 0.05 with the default mixing variance. fixed_horizon_80_percent_power: "
                "ai.experiments.fixed_horizon_users_per_arm, the textbook two-sided two-proportion sample size at "
                "alpha 0.05 and power 0.8, i.e. the day of the single planned look of a classic test."),
    }
    false_positives = {
        "always_valid_daily_peeking": share(sum(r.always_valid_day is not None for r in aa), len(aa)),
        "always_valid_winner_declared": share(sum(r.winner_day is not None for r in aa), len(aa)),
        "fixed_horizon_daily_peeking": share(sum(r.fixed_peeking_day is not None for r in aa), len(aa)),
        "fixed_horizon_last_day_only": share(sum(r.fixed_last_day_rejects for r in aa), len(aa)),
    }
    aa_rate = false_positives["always_valid_daily_peeking"]["rate"]
    targets = [
        {"name": "aa_always_valid_false_positive_rate_daily_peeking", "kind": "at most", "target": ALPHA,
         "value": aa_rate, "met": aa_rate <= ALPHA},
        {"name": "ab_share_of_runs_with_b_declared_winner", "kind": "at least", "target": 0.9,
         "value": detection["detected_within_horizon"]["rate"],
         "met": detection["detected_within_horizon"]["rate"] >= 0.9},
    ]
    payload = {
        "setup": {**setup.__dict__, "arms": ARMS, "alpha": ALPHA, "mixing_variance": MIXING_VARIANCE,
                  "items": ITEMS, "dimensions": DIMENSIONS, "list_length": LIST_LENGTH,
                  "like_probability": f"sigmoid({LIKE_INTERCEPT} + {LIKE_SLOPE} * affinity)",
                  "item_bias_sd": ITEM_BIAS_SD, "taste_noise_sd": TASTE_NOISE_SD,
                  "history_users": HISTORY_USERS},
        "true_rates": {"A": round(rate_a, 5), "B": round(rate_b, 5), "absolute_lift": round(rate_b - rate_a, 5),
                       "relative_lift": round((rate_b - rate_a) / rate_a, 4)},
        "ab_detection": detection,
        "ab_expected": expected,
        "aa_false_positives": false_positives,
        "targets": targets,
        "seconds": round(seconds, 1),
    }
    path = result_write("ab_simulation", payload, smoke=args.smoke, out=args.out)

    print(f"true conversion rates: A {rate_a:.4f}, B {rate_b:.4f} (lift {rate_b - rate_a:+.4f}, "
          f"{(rate_b - rate_a) / rate_a:+.1%}); {setup.users_per_day:g} users/day, {setup.days} daily looks")
    print(table(["A/B: day B is first declared the winner", "day"], [
        ["median over runs", detection["median_day"]], ["90th percentile", detection["p90_day"]],
        ["expected path of the always-valid test", expected["always_valid_expected_path_day"]],
        ["fixed-horizon plan, 80 % power (one look)", expected["fixed_horizon_80_percent_power_day"]]]))
    print(f"B declared winner within the horizon in {detection['detected_within_horizon']['runs']}/{len(ab)} runs; "
          f"wrong direction in {detection['wrong_direction_runs']}")
    print(table(["A/A: runs with p < 0.05 at some look", "rate", "95 % interval"], [
        [name, f"{f['rate']:.1%} ({f['runs']}/{f['of']})", f"{f['interval_95'][0]:.1%}-{f['interval_95'][1]:.1%}"]
        for name, f in false_positives.items()]))
    print(f"{seconds:.1f} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
