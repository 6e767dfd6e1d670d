"""bench/training_curve.py's fitted growth: the exponent b of seconds = a · n^b."""
import pytest

from bench.training_curve import slope


def test_the_slope_of_a_power_law_is_its_exponent():
    assert slope([(1e5, 3 * 1e5 ** 2), (1e6, 3 * 1e6 ** 2), (1e7, 3 * 1e7 ** 2)]) == pytest.approx(2.0)
    assert slope([(1e5, 7.0), (1e6, 7.0)]) == pytest.approx(0.0)


def test_a_linear_cost_has_slope_one_and_too_few_points_have_none():
    assert slope([(1e5, 0.5), (1e6, 5.0), (1e7, 50.0)]) == pytest.approx(1.0)
    assert slope([(1e5, 1.0)]) is None
    assert slope([(1e5, 0.0), (1e6, 1.0)]) is None  # a zero cannot be on a power law
