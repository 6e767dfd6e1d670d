"""A/B statistics: stable assignment, hand-computed intervals and p-values, the always-valid test's guarantee
under daily peeking, planning numbers and the verdict."""
from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ai.experiments import (
    MIXING_VARIANCE,
    ArmCounts,
    always_valid_interval,
    always_valid_p_value,
    always_valid_users_per_arm,
    arm_report,
    assign_arm,
    assignment_point,
    difference_interval,
    experiment_report,
    fixed_horizon_p_value,
    fixed_horizon_users_per_arm,
    log_mixture_likelihood_ratio,
    validate_arms,
    wilson_interval,
)

ROOT = Path(__file__).resolve().parent.parent.parent
THREE_ARMS = [("popularity", 0.5), ("lightfm", 0.3), ("taste", 0.2)]


def arm(name: str, converted: int, users: int, **events: int) -> ArmCounts:
    return ArmCounts(name=name, users=users, converted_users=converted, **events)


class TestAssignment:
    def test_the_point_is_the_top_53_bits_of_sha256_of_experiment_nul_user(self):
        digest = hashlib.sha256("ranker-v2\x00alice".encode()).hexdigest()
        assert digest[:16] == "f565d4131ff0b7d6"
        assert assignment_point(experiment="ranker-v2", user="alice") == (int(digest[:16], 16) >> 11) / 2**53

    def test_users_land_in_the_slice_of_their_point(self):
        # Points from the documented hash (digest prefixes above and in the previous test), slices in arm order:
        # popularity [0, 0.5), lightfm [0.5, 0.8), taste [0.8, 1).
        #   alice f565d413... -> 0.95859 taste      bob   47eeef1d... -> 0.28099 popularity
        #   carol 7a0fce63... -> 0.47680 popularity dave  bc8068ac... -> 0.73633 lightfm
        #   erin  05dec0d0... -> 0.02293 popularity
        expected = {"alice": "taste", "bob": "popularity", "carol": "popularity", "dave": "lightfm",
                    "erin": "popularity"}
        for user, arm_name in expected.items():
            point = (int(hashlib.sha256(f"ranker-v2\0{user}".encode()).hexdigest()[:16], 16) >> 11) / 2**53
            assert assignment_point(experiment="ranker-v2", user=user) == point
            assert assign_arm(experiment="ranker-v2", user=user, arms=THREE_ARMS) == arm_name, user
        assert assignment_point(experiment="ranker-v2", user="dave") == pytest.approx(0.7363343639732775, abs=1e-15)

    def test_another_process_with_another_hash_seed_gives_the_same_arms(self):
        users = [f"user-{i}" for i in range(50)]
        here = [assign_arm(experiment="ranker-v2", user=u, arms=THREE_ARMS) for u in users]
        code = ("from ai.experiments import assign_arm; "
                f"print(','.join(assign_arm(experiment='ranker-v2', user=u, arms={THREE_ARMS!r}) for u in {users!r}))")
        for seed in ("0", "4242"):
            out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                                 env={**os.environ, "PYTHONHASHSEED": seed})
            assert out.stdout.strip().split(",") == here

    def test_shares_hold_over_100k_users(self):
        n = 100_000
        arms = [assign_arm(experiment="share-check", user=str(i), arms=THREE_ARMS) for i in range(n)]
        for name, share in THREE_ARMS:
            observed = arms.count(name) / n
            assert abs(observed - share) < 4 * math.sqrt(share * (1 - share) / n), (name, observed)

    def test_two_experiments_split_users_independently(self):
        arms = [("A", 0.5), ("B", 0.5)]
        same = sum(assign_arm(experiment="one", user=str(i), arms=arms)
                   == assign_arm(experiment="two", user=str(i), arms=arms) for i in range(10_000))
        assert abs(same / 10_000 - 0.5) < 4 * 0.005  # 4 standard errors of a fair coin over 10k users

    @pytest.mark.parametrize("arms, message", [
        ([("A", 1.0)], "at least 2 arms"),
        ([("A", 0.5), ("A", 0.5)], r"unique: \['A'\] repeat"),
        ([("", 0.5), ("B", 0.5)], "non-empty strings"),
        ([("A", 0.0), ("B", 1.0)], "'A': its traffic share must be in \\(0, 1\\]"),
        ([("A", -0.5), ("B", 1.5)], "must be in \\(0, 1\\]"),
        ([("A", float("nan")), ("B", 0.5)], "must be in \\(0, 1\\]"),
        ([("A", 0.5), ("B", 0.6)], "must sum to 1, they sum to 1.1: scale them"),
        ([("A", 0.5), ("B", 0.5 - 1e-6)], "must sum to 1"),
    ])
    def test_it_refuses_arms_and_says_what_to_fix(self, arms, message):
        with pytest.raises(ValueError, match=message):
            validate_arms(arms)
        with pytest.raises(ValueError, match=message):
            assign_arm(experiment="e", user="u", arms=arms)

    def test_shares_within_1e_9_of_one_are_accepted(self):
        assert validate_arms([("A", 0.1), ("B", 0.2), ("C", 0.7)]) == (("A", 0.1), ("B", 0.2), ("C", 0.7))
        assert validate_arms([("A", 1 / 3), ("B", 1 / 3), ("C", 1 / 3 + 5e-10)])


class TestIntervals:
    def test_wilson_of_10_in_100_matches_the_hand_computation(self):
        # z = 1.959964, z² = 3.841459, p = 0.1, n = 100:
        # centre = (0.1 + z²/200) / (1 + z²/100) = 0.1192073 / 1.0384146 = 0.114797
        # half   = z / 1.0384146 * sqrt(0.1*0.9/100 + z²/40000) = 1.887457 * sqrt(0.00099604) = 0.059568
        low, high = wilson_interval(10, 100)
        assert low == pytest.approx(0.055229, abs=1e-6) and high == pytest.approx(0.174366, abs=1e-6)

    def test_wilson_at_the_limits(self):
        assert wilson_interval(0, 0) == (0.0, 1.0)
        low, high = wilson_interval(0, 50)
        assert low == 0.0 and 0 < high < 0.1
        low, high = wilson_interval(50, 50)
        assert high == 1.0 and 0.9 < low < 1
        # the interval narrows as n grows and always holds the observed rate
        widths = [np.subtract(*wilson_interval(n // 10, n)[::-1]) for n in (100, 1_000, 10_000)]
        assert widths[0] > widths[1] > widths[2] > 0
        with pytest.raises(ValueError, match="0 <= successes <= trials"):
            wilson_interval(11, 10)

    def test_newcombe_difference_matches_his_published_example(self):
        # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 - 48/80 = 0.2, method 10
        # (hybrid score): 0.0524 to 0.3339.
        low, high = difference_interval((56, 70), (48, 80))
        assert low == pytest.approx(0.0524, abs=5e-5) and high == pytest.approx(0.3339, abs=5e-5)

    def test_always_valid_interval_matches_the_hand_computation(self):
        # 60/500 vs 40/500: V = (0.12*0.88 + 0.08*0.92)/500 = 0.0003584, τ² = 0.0004, V + τ² = 0.0007584
        # half = sqrt(V (V+τ²)/τ² * (2 ln 20 + ln((V+τ²)/V)))
        #      = sqrt(0.00067953 * (5.991465 + 0.749565)) = 0.067681
        low, high = always_valid_interval((60, 500), (40, 500), alpha=0.05, mixing_variance=0.0004)
        assert low == pytest.approx(0.04 - 0.067681, abs=1e-6) and high == pytest.approx(0.04 + 0.067681, abs=1e-6)
        # wider than the fixed-horizon interval: the price of looking at any time
        fixed_low, fixed_high = difference_interval((60, 500), (40, 500))
        assert low < fixed_low < fixed_high < high
        assert always_valid_interval((0, 0), (40, 500)) == (-1.0, 1.0)


class TestPValues:
    def test_fixed_horizon_z_test_matches_the_hand_computation(self):
        # 60/500 vs 40/500: pooled 0.1, V = 0.1*0.9*(2/500) = 0.00036, z = 0.04 / 0.0189737 = 2.10819,
        # p = 2 (1 - Φ(2.10819)) = 0.035015
        assert fixed_horizon_p_value((60, 500), (40, 500)) == pytest.approx(0.035015, abs=1e-6)
        assert fixed_horizon_p_value((40, 500), (60, 500)) == pytest.approx(0.035015, abs=1e-6)  # two-sided

    def test_mixture_likelihood_ratio_matches_the_hand_computation(self):
        # same data, τ² = 0.0004: sqrt(0.00036/0.00076) = 0.6882472,
        # exp(0.0004 * 0.04² / (2 * 0.00036 * 0.00076)) = exp(1.1695906) = 3.2206740,
        # Λ = 0.6882472 * 3.2206740 = 2.2166198, p = 1/Λ = 0.4511373
        log_ratio = log_mixture_likelihood_ratio(difference=0.04, variance=0.00036, mixing_variance=0.0004)
        assert math.exp(log_ratio) == pytest.approx(2.2166198, abs=1e-6)
        assert always_valid_p_value((60, 500), (40, 500), mixing_variance=0.0004) == pytest.approx(0.4511373, abs=1e-6)
        assert MIXING_VARIANCE == 0.0004

    def test_identical_arms_give_an_always_valid_p_value_of_1(self):
        assert always_valid_p_value((50, 500), (50, 500)) == 1.0
        assert always_valid_p_value((51, 500), (50, 500)) == 1.0  # Λ < 1: no evidence at all
        assert fixed_horizon_p_value((50, 500), (50, 500)) == 1.0

    def test_a_large_difference_gives_a_tiny_always_valid_p_value(self):
        assert always_valid_p_value((150, 1000), (50, 1000)) < 1e-7  # 15 % vs 5 %: z-test p ~ 1e-13
        assert always_valid_p_value((5000, 10_000), (0, 10_000)) == 0.0  # underflow, still in [0, 1]

    def test_p_values_stay_in_0_1_and_the_always_valid_one_never_rises_with_previous(self):
        rng = np.random.default_rng(7)
        for _ in range(300):
            n_t, n_c = rng.integers(0, 300, size=2)
            t, c = (int(rng.integers(0, n_t + 1)), int(n_t)), (int(rng.integers(0, n_c + 1)), int(n_c))
            previous = float(rng.random())
            p = always_valid_p_value(t, c, previous=previous)
            assert 0.0 <= p <= previous
            assert 0.0 <= fixed_horizon_p_value(t, c) <= 1.0
        assert always_valid_p_value((0, 0), (10, 100)) == 1.0
        with pytest.raises(ValueError, match="last look's p-value"):
            always_valid_p_value((1, 10), (1, 10), previous=1.5)

    def test_a_a_sequences_peeked_at_20_times_rarely_ever_cross_alpha(self):
        # 200 A/A experiments, rate 0.1, 100 new users per arm before each of 20 looks. The always-valid test
        # may cross 0.05 at some look in at most ~5 % of them; the z-test, peeked at the same way, far more often.
        rng = np.random.default_rng(2024)
        conversions = rng.binomial(100, 0.1, size=(200, 20, 2)).cumsum(axis=1)
        users = 100 * np.arange(1, 21)
        always_valid = fixed = 0
        for run in conversions:
            looks = [((int(t), int(n)), (int(c), int(n))) for (t, c), n in zip(run, users)]
            always_valid += any(always_valid_p_value(t, c) < 0.05 for t, c in looks)
            fixed += any(fixed_horizon_p_value(t, c) < 0.05 for t, c in looks)
        assert always_valid / 200 < 0.08
        assert fixed / 200 > 0.15  # ~25 % expected for 20 looks


class TestPlanning:
    def test_fixed_horizon_users_per_arm_matches_the_textbook_case(self):
        # 10 % -> 12 %, alpha 0.05 two-sided, power 0.8: p̄ = 0.11,
        # n = (1.959964 * sqrt(2*0.11*0.89) + 0.841621 * sqrt(0.12*0.88 + 0.1*0.9))² / 0.02² = 3840.4 -> 3841
        assert fixed_horizon_users_per_arm(control_rate=0.10, treatment_rate=0.12) == 3841

    def test_always_valid_users_per_arm_is_where_the_expected_path_crosses_alpha(self):
        n = always_valid_users_per_arm(control_rate=0.10, treatment_rate=0.12)
        variance = lambda users: 2 * 0.11 * 0.89 / users  # noqa: E731  pooled, equal arms
        p_at = lambda users: math.exp(-log_mixture_likelihood_ratio(  # noqa: E731
            difference=0.02, variance=variance(users), mixing_variance=MIXING_VARIANCE))
        assert p_at(n) <= 0.05 < p_at(n - 1)
        # with τ matched to the lift it takes ~1.17x the users of an 80 %-power fixed-horizon test
        assert 1.1 < n / fixed_horizon_users_per_arm(control_rate=0.10, treatment_rate=0.12) < 1.25

    def test_planning_refuses_equal_rates(self):
        with pytest.raises(ValueError, match="must be in \\(0, 1\\) and differ"):
            always_valid_users_per_arm(control_rate=0.1, treatment_rate=0.1)


class TestReports:
    def test_a_clear_positive_lift_is_declared_the_winner(self):
        report = experiment_report(arms=[arm("A", 100, 1000, impressions=2000, clicks=300, dismissals=40),
                                         arm("B", 200, 1000)], control="A")
        b = report.arm("B")
        assert report.winner == "B" and report.verdict == "B beats A"
        assert b.rate == 0.2 and b.versus_control.absolute_lift == pytest.approx(0.1)
        assert b.versus_control.relative_lift == pytest.approx(1.0)
        assert b.versus_control.significant and b.versus_control.always_valid_p_value < 1e-4
        assert b.versus_control.always_valid_interval[0] > 0
        a = report.arm("A")
        assert a.versus_control is None and a.rate_interval == wilson_interval(100, 1000)
        assert a.clicks_per_impression == 0.15 and a.dismissals_per_impression == 0.02
        assert b.clicks_per_impression is None

    def test_a_significantly_worse_arm_is_no_winner(self):
        report = experiment_report(arms=[arm("A", 200, 1000), arm("B", 100, 1000)], control="A")
        assert report.winner is None and report.verdict == "no winner yet"
        assert report.arm("B").versus_control.significant and report.arm("B").versus_control.absolute_lift < 0

    def test_small_samples_give_no_winner_yet_even_when_the_z_test_says_significant(self):
        report = experiment_report(arms=[arm("A", 40, 500), arm("B", 60, 500)], control="A")
        lift = report.arm("B").versus_control
        assert lift.fixed_horizon_p_value < 0.05 and lift.always_valid_p_value > 0.05
        assert report.verdict == "no winner yet"

    def test_more_than_two_arms_split_alpha_bonferroni(self):
        # always-valid p = 0.0382 (between 0.025 and 0.05): a winner against one arm, not with three arms
        two = experiment_report(arms=[arm("A", 144, 2000), arm("B", 200, 2000)], control="A")
        three = experiment_report(arms=[arm("A", 144, 2000), arm("B", 200, 2000), arm("C", 144, 2000)], control="A")
        assert two.arm("B").versus_control.always_valid_p_value == pytest.approx(0.0382, abs=1e-4)
        assert two.winner == "B" and two.alpha_per_comparison == 0.05
        assert three.winner is None and three.alpha_per_comparison == 0.025

    def test_of_several_winners_the_highest_rate_wins(self):
        report = experiment_report(arms=[arm("A", 100, 1000), arm("B", 200, 1000), arm("C", 250, 1000)],
                                   control="A")
        assert report.winner == "C"

    def test_previous_p_values_keep_the_sequence_from_rising(self):
        first = experiment_report(arms=[arm("A", 100, 1000), arm("B", 200, 1000)], control="A")
        later = experiment_report(arms=[arm("A", 200, 2000), arm("B", 210, 2000)], control="A",
                                  previous=first.always_valid_p_values())
        assert later.arm("B").versus_control.always_valid_p_value == first.always_valid_p_values()["B"]
        assert later.winner == "B"  # once crossed, the always-valid p-value stays below alpha
        with pytest.raises(ValueError, match="treatment arms only"):
            experiment_report(arms=[arm("A", 1, 10), arm("B", 1, 10)], control="A", previous={"A": 0.5})

    def test_it_refuses_an_unknown_control_and_impossible_counts(self):
        with pytest.raises(ValueError, match="control 'Z' is not one of the arms"):
            experiment_report(arms=[arm("A", 1, 10), arm("B", 1, 10)], control="Z")
        with pytest.raises(ValueError, match="at least 2 arms with unique names"):
            experiment_report(arms=[arm("A", 1, 10), arm("A", 1, 10)], control="A")
        with pytest.raises(ValueError, match="11 converted users out of 10 assigned"):
            arm("A", 11, 10)
        with pytest.raises(ValueError, match="clicks must be a count"):
            arm("A", 1, 10, clicks=-1)

    def test_counts_may_come_from_numpy(self):
        counts = ArmCounts(name="A", users=np.int64(10), converted_users=np.int64(3))
        assert type(counts.users) is int and counts.conversion == (3, 10)
        assert arm_report(arm=counts, control=None).rate == pytest.approx(0.3)
