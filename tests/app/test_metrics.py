"""app/services/metrics.py: the quantile of a cumulative histogram, and the request counter's labels."""
import math

from app.services.metrics import REQUESTS, histogram_quantile, request_observe


def test_a_quantile_is_interpolated_inside_its_bucket():
    buckets = {0.001: 0.0, 0.002: 50.0, 0.005: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == 0.002  # the 50th of 100 is the top of the second bucket
    assert abs(histogram_quantile(0.25, buckets) - 0.0015) < 1e-12  # halfway through (0.001, 0.002]
    assert abs(histogram_quantile(0.99, buckets) - 0.00494) < 1e-9


def test_it_is_none_without_observations_and_capped_at_the_last_finite_bound():
    assert histogram_quantile(0.5, {}) is None
    assert histogram_quantile(0.5, {0.1: 0.0, math.inf: 0.0}) is None
    assert histogram_quantile(0.99, {0.1: 0.0, 1.0: 1.0, math.inf: 10.0}) == 1.0


def test_an_unknown_method_is_counted_as_other():
    request_observe(route="ping", method="BREW", status=405, seconds=0.001)
    assert REQUESTS.labels(route="ping", method="OTHER", status="405")._value.get() >= 1
