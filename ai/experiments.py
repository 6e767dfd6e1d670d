"""A/B testing statistics: stable assignment of users to arms, per-arm rates with intervals, and a test that may
be looked at after every day without inflating false positives.

The unit is the user. ``assign_arm`` puts each user in one arm by a stable hash. A user *converts* when they
like or watch an item their arm recommended to them within the experiment's window; an arm's conversion rate is
converted users / assigned users. Clicks and dismissals per served answer are secondary, descriptive numbers
(one user's answers are not independent of each other, so they get no interval and no test).

Peeking. An experiment here is monitored continuously, so its decision rests on an always-valid test: the
mixture sequential probability ratio test (mSPRT) of Johari, Pekelis and Walsh, "Always valid inference:
continuous monitoring of A/B tests", Operations Research 70(3), 2022 (arXiv:1512.04922). Its p-value is valid
at any stopping time: the chance that an experiment without any real difference *ever* shows p < alpha, however
often and whenever it is looked at, is at most alpha (Ville's inequality for the mixture likelihood ratio, a
martingale under the null). The classic two-proportion z-test p-value is reported beside it, labelled
fixed-horizon: it means what it says only when looked at once, at a sample size fixed in advance.

Assumptions shared by the tests and intervals: users are independent, assignment does not depend on outcomes,
and the difference of two rates is close to normal (the normal approximation wants roughly ten or more
conversions and ten or more non-conversions per arm; before that the p-values are rough).

Mixing variance. The mSPRT averages the likelihood ratio over a normal prior N(0, tau^2) on the difference of
the two rates. The default tau = 0.02 (``MIXING_VARIANCE = 0.02 ** 2``) aims it at lifts of about two percentage
points of conversion, the size worth switching a recommender for. For a true lift theta the expected detection
sample is smallest near tau = 0.94 * theta (at alpha = 0.05, whatever the rates), and it is flat around there: tau
2.5 times too large or too small costs 10-25 % more users. Johari et al. fit tau^2 to the effects of past
experiments; once there are some, pass theirs.
"""
from __future__ import annotations

import functools
import hashlib
import math
import numbers
from dataclasses import dataclass
from typing import Mapping, Sequence

from statistics import NormalDist


__all__ = [
    "MIXING_VARIANCE",
    "ArmCounts",
    "ArmReport",
    "ExperimentReport",
    "LiftVersusControl",
    "Proportion",
    "always_valid_interval",
    "always_valid_p_value",
    "always_valid_users_per_arm",
    "arm_report",
    "assign_arm",
    "assignment_point",
    "difference_interval",
    "experiment_report",
    "fixed_horizon_p_value",
    "fixed_horizon_users_per_arm",
    "log_mixture_likelihood_ratio",
    "validate_arms",
    "wilson_interval",
]

MIXING_VARIANCE = 0.02 ** 2  # tau^2 of the mSPRT's normal mixture, on the scale of a difference of rates

Proportion = tuple[int, int]  # (successes, trials): converted users and assigned users of one arm

_SHARE_TOLERANCE = 1e-9
_NORMAL = NormalDist()  # the stdlib's quantile (Wichura's AS241): exact to ~1e-16 and 100x cheaper than scipy's


# --- Assignment ---------------------------------------------------------------------------------------------

def validate_arms(arms: Sequence[tuple[str, float]]) -> tuple[tuple[str, float], ...]:
    """The arms as a tuple of (name, traffic share), or a ValueError that says what to fix.

    Needs at least 2 arms, unique non-empty names, each share in (0, 1] and the shares summing to 1 within 1e-9.
    """
    arms = tuple((name, share) for name, share in arms)
    if len(arms) < 2:
        raise ValueError(f"an experiment needs at least 2 arms (a control and a treatment), got {len(arms)}")
    names = [name for name, _ in arms]
    if any(not isinstance(name, str) or not name for name in names):
        raise ValueError(f"arm names must be non-empty strings, got {names!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"arm names must be unique: {sorted({n for n in names if names.count(n) > 1})} repeat")
    for name, share in arms:
        if not (isinstance(share, (int, float)) and 0.0 < share <= 1.0):  # NaN fails the comparison too
            raise ValueError(f"arm {name!r}: its traffic share must be in (0, 1], got {share!r}")
    total = math.fsum(share for _, share in arms)
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        raise ValueError(f"the traffic shares must sum to 1, they sum to {total!r}: "
                         f"scale them (e.g. divide each by {total!r})")
    return arms


@functools.lru_cache(maxsize=256)
def _validated(arms: tuple[tuple[str, float], ...]) -> tuple[tuple[str, float], ...]:
    return validate_arms(arms)  # a refusal raises, and is not cached


def assignment_point(*, experiment: str, user: str) -> float:
    """The user's uniform point in [0, 1) for this experiment: the top 53 bits of SHA-256(f"{experiment}\\0{user}")
    (UTF-8) over 2**53.

    The same in every process, on every machine and after a restart (no Python ``hash()``); independent across
    experiments, so a user's arm in one experiment says nothing about their arm in another.
    """
    digest = hashlib.sha256(f"{experiment}\0{user}".encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2.0**53  # 53 bits: exact in a float, never 1.0


def assign_arm(*, experiment: str, user: str, arms: Sequence[tuple[str, float]]) -> str:
    """The name of the user's arm: the arm whose slice of [0, 1), in the order given and sized by its share,
    holds the user's ``assignment_point``.

    Stable as long as the experiment's name and arms do not change. The shares are checked by ``validate_arms``
    (once per distinct arms list: the answer is cached).
    """
    arms = _validated(tuple(tuple(arm) for arm in arms))
    point, upper = assignment_point(experiment=experiment, user=user), 0.0
    for name, share in arms:
        upper += share
        if point < upper:
            return name
    return arms[-1][0]  # the shares summed to a hair under 1 and the point fell in that hair


# --- Rates, intervals and tests -----------------------------------------------------------------------------

def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence!r}: it must be in (0, 1), e.g. 0.95")
    return _NORMAL.inv_cdf(0.5 + confidence / 2.0)


def _rate(successes: int, trials: int) -> float:
    return successes / trials if trials else 0.0


def wilson_interval(successes: int, trials: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial rate: centre (p + z²/2n) / (1 + z²/n), half-width
    z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²).

    Bounds: 0 <= low <= successes/trials <= high <= 1, never empty; (0, 1) when trials == 0 (no information).
    Good coverage even near 0 and 1, where the Wald interval collapses.
    """
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes in {trials} trials: need 0 <= successes <= trials")
    if trials == 0:
        return 0.0, 1.0
    z2, p = _z(confidence) ** 2, successes / trials
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = math.sqrt(z2) / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials**2))
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(treatment: Proportion, control: Proportion, *, confidence: float = 0.95
                        ) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10, 1998) for treatment rate - control rate, built from the
    two Wilson intervals. Fixed-horizon: valid for one look at a sample size fixed in advance, not under peeking.

    Bounds: -1 <= low <= difference <= high <= 1.
    """
    (x_t, n_t), (x_c, n_c) = treatment, control
    p_t, p_c = _rate(x_t, n_t), _rate(x_c, n_c)
    (l_t, u_t), (l_c, u_c) = (wilson_interval(x_t, n_t, confidence=confidence),
                              wilson_interval(x_c, n_c, confidence=confidence))
    d = p_t - p_c
    return max(-1.0, d - math.hypot(p_t - l_t, u_c - p_c)), min(1.0, d + math.hypot(u_t - p_t, p_c - l_c))


def _difference_and_pooled_variance(treatment: Proportion, control: Proportion) -> tuple[float, float]:
    """(observed difference of rates, its variance under the null of one common rate: p̄(1-p̄)(1/n_t + 1/n_c))."""
    (x_t, n_t), (x_c, n_c) = treatment, control
    for x, n in (treatment, control):
        if not 0 <= x <= n:
            raise ValueError(f"{x} successes in {n} trials: need 0 <= successes <= trials")
    if n_t == 0 or n_c == 0:
        return 0.0, 0.0
    pooled = (x_t + x_c) / (n_t + n_c)
    return x_t / n_t - x_c / n_c, pooled * (1 - pooled) * (1 / n_t + 1 / n_c)


def fixed_horizon_p_value(treatment: Proportion, control: Proportion) -> float:
    """Two-sided p-value of the pooled two-proportion z-test, z = difference / sqrt(pooled variance).

    FIXED-HORIZON, NOT VALID UNDER PEEKING: it controls false positives only when computed once, at a sample size
    chosen in advance; checked after every day it crosses 0.05 far more often than 5 % of the time.
    Bounds: [0, 1]; 1.0 when an arm is empty or both arms are all 0s or all 1s.
    """
    difference, variance = _difference_and_pooled_variance(treatment, control)
    if variance == 0.0:
        return 1.0
    return float(math.erfc(abs(difference) / math.sqrt(2.0 * variance)))


def log_mixture_likelihood_ratio(*, difference: float, variance: float, mixing_variance: float) -> float:
    """log Λ of the mSPRT with a N(0, τ²) mixture over the difference θ, in the normal approximation:
    Λ = sqrt(V / (V + τ²)) * exp(τ² θ̂² / (2 V (V + τ²))), θ̂ the observed difference, V its variance.

    Bounds: log Λ >= 0.5 log(V / (V + τ²)) (reached at θ̂ = 0), unbounded above. V must be > 0, τ² > 0.
    """
    if not (variance > 0.0 and mixing_variance > 0.0):
        raise ValueError(f"variance={variance!r}, mixing_variance={mixing_variance!r}: both must be > 0")
    total = variance + mixing_variance
    return 0.5 * math.log(variance / total) + mixing_variance * difference**2 / (2.0 * variance * total)


def always_valid_p_value(treatment: Proportion, control: Proportion, *, mixing_variance: float = MIXING_VARIANCE,
                         previous: float = 1.0) -> float:
    """The mSPRT's always-valid p-value for "the two rates are equal": min(previous, 1 / Λ), Λ from
    ``log_mixture_likelihood_ratio`` with the pooled variance (the null's own; the z-test uses the same one).

    Valid at any stopping time: under the null, P(p < alpha at any look) <= alpha however often it is looked at.
    Pass the last look's value as ``previous`` to make the sequence non-increasing, as Johari et al. define it;
    without it each look's value is still a valid p-value at that look. Bounds: [0, 1], <= previous;
    1.0 when an arm is empty or both arms are all 0s or all 1s.
    """
    if not 0.0 <= previous <= 1.0:
        raise ValueError(f"previous={previous!r}: pass the last look's p-value, in [0, 1] (1.0 for the first look)")
    difference, variance = _difference_and_pooled_variance(treatment, control)
    if variance == 0.0:
        return previous
    log_ratio = log_mixture_likelihood_ratio(difference=difference, variance=variance,
                                             mixing_variance=mixing_variance)
    return min(previous, math.exp(-log_ratio)) if log_ratio > 0.0 else previous


def always_valid_interval(treatment: Proportion, control: Proportion, *, alpha: float = 0.05,
                          mixing_variance: float = MIXING_VARIANCE) -> tuple[float, float]:
    """Confidence sequence for treatment rate - control rate: the θ0 with Λ(θ̂ - θ0) < 1/alpha, i.e.
    θ̂ ± sqrt(V (V + τ²) / τ² * (2 log(1/alpha) + log((V + τ²) / V))), V the unpooled variance
    p_t(1-p_t)/n_t + p_c(1-p_c)/n_c.

    Covers the true difference at every look at once with probability >= 1 - alpha (always valid, like the
    p-value; it uses the unpooled variance, so at the edge it can disagree with the p-value's verdict).
    Bounds: -1 <= low <= θ̂ <= high <= 1; (-1, 1) while V is 0 (an arm empty, or each at rate 0 or 1).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r}: it must be in (0, 1), e.g. 0.05")
    (x_t, n_t), (x_c, n_c) = treatment, control
    p_t, p_c = _rate(x_t, n_t), _rate(x_c, n_c)
    variance = (p_t * (1 - p_t) / n_t if n_t else 0.0) + (p_c * (1 - p_c) / n_c if n_c else 0.0)
    if variance == 0.0 or not (n_t and n_c):
        return -1.0, 1.0
    total = variance + mixing_variance
    half = math.sqrt(variance * total / mixing_variance * (2 * math.log(1 / alpha) + math.log(total / variance)))
    return max(-1.0, p_t - p_c - half), min(1.0, p_t - p_c + half)


# --- Planning -----------------------------------------------------------------------------------------------

def _check_rates(control_rate: float, treatment_rate: float, alpha: float) -> None:
    if not (0.0 < control_rate < 1.0 and 0.0 < treatment_rate < 1.0 and control_rate != treatment_rate):
        raise ValueError(f"rates {control_rate!r} and {treatment_rate!r}: both must be in (0, 1) and differ")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r}: it must be in (0, 1), e.g. 0.05")


def fixed_horizon_users_per_arm(*, control_rate: float, treatment_rate: float, alpha: float = 0.05,
                                power: float = 0.8) -> int:
    """Users per arm for the fixed-horizon z-test (two-sided, equal arms) to reach ``power`` at ``alpha``:
    n = (z_{1-alpha/2} sqrt(2 p̄(1-p̄)) + z_power sqrt(p_t(1-p_t) + p_c(1-p_c)))² / (p_t - p_c)², rounded up.

    For one look at that n; it says nothing about peeking. Bounds: >= 1.
    """
    _check_rates(control_rate, treatment_rate, alpha)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power={power!r}: it must be in (0, 1), e.g. 0.8")
    mean = (control_rate + treatment_rate) / 2
    each = treatment_rate * (1 - treatment_rate) + control_rate * (1 - control_rate)
    spread = (_NORMAL.inv_cdf(1 - alpha / 2) * math.sqrt(2 * mean * (1 - mean))
              + _NORMAL.inv_cdf(power) * math.sqrt(each))
    return max(1, math.ceil(spread**2 / (treatment_rate - control_rate) ** 2))


def always_valid_users_per_arm(*, control_rate: float, treatment_rate: float, alpha: float = 0.05,
                               mixing_variance: float = MIXING_VARIANCE) -> int:
    """Users per arm at which the always-valid p-value of the *expected* counts (θ̂ = the true lift, V its
    pooled variance 2 p̄(1-p̄)/n, equal arms) first drops below alpha: the expected-path detection time.

    With r = n τ² / (2 p̄(1-p̄)) and k = θ² / τ², log Λ = -½ log(1 + r) + ½ k r² / (1 + r): it dips below 0,
    then rises for good, so log Λ = log(1/alpha) has one root. Real experiments cross around it, some earlier
    and some later (a planning number, not a power guarantee). Bounds: >= 1.
    """
    from scipy.optimize import brentq  # here, not at the top: scipy.optimize is ~14 MB in every server worker

    _check_rates(control_rate, treatment_rate, alpha)
    mean = (control_rate + treatment_rate) / 2
    scale, k = 2 * mean * (1 - mean) / mixing_variance, (treatment_rate - control_rate) ** 2 / mixing_variance
    excess = lambda r: -0.5 * math.log1p(r) + 0.5 * k * r * r / (1 + r) - math.log(1 / alpha)  # noqa: E731
    high = 1.0
    while excess(high) <= 0.0:
        high *= 2.0
    return max(1, math.ceil(brentq(excess, 0.0, high, xtol=1e-12, rtol=1e-12) * scale))


# --- Reports ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class ArmCounts:
    """What one arm has seen so far. The unit is the user: ``converted_users`` are the assigned users who liked
    or watched an item this arm recommended to them, within the experiment's window.

    users: users assigned to the arm; impressions: recommendation answers served to them; clicks and dismissals:
    clicks on and dismissals of recommended items (an answer can get several).
    """

    name: str
    users: int
    converted_users: int
    impressions: int = 0
    clicks: int = 0
    dismissals: int = 0

    def __post_init__(self) -> None:
        for field in ("users", "converted_users", "impressions", "clicks", "dismissals"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
                raise ValueError(f"arm {self.name!r}: {field} must be a count (an int >= 0), got {value!r}")
            object.__setattr__(self, field, int(value))  # numpy counts become plain ints
        if self.converted_users > self.users:
            raise ValueError(f"arm {self.name!r}: {self.converted_users} converted users out of {self.users} "
                             "assigned: count each converted user once, and only assigned users")

    @property
    def conversion(self) -> Proportion:
        return self.converted_users, self.users


@dataclass(frozen=True)
class LiftVersusControl:
    """One arm against the control; lifts are this arm's rate minus the control's."""

    absolute_lift: float  # in [-1, 1]
    relative_lift: float | None  # absolute lift / control rate; None while the control rate is 0
    always_valid_p_value: float  # mSPRT, valid under peeking: the decision uses this one
    always_valid_interval: tuple[float, float]  # confidence sequence for the absolute lift, at alpha_per_comparison
    fixed_horizon_p_value: float  # z-test: fixed-horizon, NOT valid under peeking
    fixed_horizon_interval: tuple[float, float]  # Newcombe, at 1 - alpha: fixed-horizon, NOT valid under peeking
    significant: bool  # always_valid_p_value < alpha_per_comparison


@dataclass(frozen=True)
class ArmReport:
    counts: ArmCounts
    rate: float  # converted users / users, 0.0 while no user is assigned
    rate_interval: tuple[float, float]  # Wilson, at 1 - alpha
    clicks_per_impression: float | None  # descriptive, None before the first impression
    dismissals_per_impression: float | None
    versus_control: LiftVersusControl | None  # None for the control itself

    @property
    def name(self) -> str:
        return self.counts.name


@dataclass(frozen=True)
class ExperimentReport:
    control: str
    alpha: float
    alpha_per_comparison: float  # alpha / (arms - 1): Bonferroni over the comparisons with the control
    mixing_variance: float
    arms: tuple[ArmReport, ...]
    winner: str | None  # the best arm that significantly beats the control, None for "no winner yet"
    verdict: str  # "<winner> beats <control>" or "no winner yet"

    def arm(self, name: str) -> ArmReport:
        for report in self.arms:
            if report.name == name:
                return report
        raise KeyError(f"no arm {name!r} in this experiment (arms: {[a.name for a in self.arms]})")

    def always_valid_p_values(self) -> dict[str, float]:
        """Each treatment arm's always-valid p-value: pass it as the next look's ``previous``."""
        return {a.name: a.versus_control.always_valid_p_value for a in self.arms if a.versus_control}


def _per_impression(count: int, impressions: int) -> float | None:
    return count / impressions if impressions else None


def arm_report(*, arm: ArmCounts, control: ArmCounts | None, alpha: float = 0.05, comparisons: int = 1,
               mixing_variance: float = MIXING_VARIANCE, previous_p_value: float = 1.0) -> ArmReport:
    """One arm's rate with its Wilson interval and, unless it is the control (``control=None``), its lift over
    the control with both p-values and both intervals. Significant means always-valid p < alpha / comparisons.
    """
    lift = None
    if control is not None:
        rate_t, rate_c = _rate(*arm.conversion), _rate(*control.conversion)
        p_value = always_valid_p_value(arm.conversion, control.conversion, mixing_variance=mixing_variance,
                                       previous=previous_p_value)
        lift = LiftVersusControl(
            absolute_lift=rate_t - rate_c,
            relative_lift=(rate_t - rate_c) / rate_c if rate_c else None,
            always_valid_p_value=p_value,
            always_valid_interval=always_valid_interval(arm.conversion, control.conversion, alpha=alpha / comparisons,
                                                        mixing_variance=mixing_variance),
            fixed_horizon_p_value=fixed_horizon_p_value(arm.conversion, control.conversion),
            fixed_horizon_interval=difference_interval(arm.conversion, control.conversion, confidence=1 - alpha),
            significant=p_value < alpha / comparisons,
        )
    return ArmReport(counts=arm, rate=_rate(*arm.conversion),
                     rate_interval=wilson_interval(*arm.conversion, confidence=1 - alpha),
                     clicks_per_impression=_per_impression(arm.clicks, arm.impressions),
                     dismissals_per_impression=_per_impression(arm.dismissals, arm.impressions),
                     versus_control=lift)


def experiment_report(*, arms: Sequence[ArmCounts], control: str, alpha: float = 0.05,
                      mixing_variance: float = MIXING_VARIANCE, previous: Mapping[str, float] | None = None
                      ) -> ExperimentReport:
    """Every arm's report and the verdict. A winner is declared only when its always-valid p-value is below
    alpha / (arms - 1) (Bonferroni; alpha itself with 2 arms) and its lift is positive; of several, the highest
    rate wins. Otherwise "no winner yet" (a significantly worse arm is visible in its report, not a winner).

    ``previous``: each treatment arm's always-valid p-value at the last look (``report.always_valid_p_values()``),
    which keeps them non-increasing over looks.
    """
    names = [a.name for a in arms]
    if len(arms) < 2 or len(set(names)) != len(names):
        raise ValueError(f"arms {names}: an experiment needs at least 2 arms with unique names")
    if control not in names:
        raise ValueError(f"control {control!r} is not one of the arms {names}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha={alpha!r}: it must be in (0, 1), e.g. 0.05")
    previous = dict(previous or {})
    if unknown := set(previous) - (set(names) - {control}):
        raise ValueError(f"previous p-values for {sorted(unknown)}: give them for treatment arms only {names}")
    control_counts, comparisons = arms[names.index(control)], len(arms) - 1
    reports = tuple(
        arm_report(arm=a, control=None if a.name == control else control_counts, alpha=alpha,
                   comparisons=comparisons, mixing_variance=mixing_variance,
                   previous_p_value=previous.get(a.name, 1.0))
        for a in arms)
    winners = [r for r in reports if r.versus_control and r.versus_control.significant
               and r.versus_control.absolute_lift > 0]
    winner = max(winners, key=lambda r: r.rate).name if winners else None
    return ExperimentReport(control=control, alpha=alpha, alpha_per_comparison=alpha / comparisons,
                            mixing_variance=mixing_variance, arms=reports, winner=winner,
                            verdict=f"{winner} beats {control}" if winner else "no winner yet")
