"""ai/trending.py: time-decayed popularity and its chain link."""
import numpy as np
import pytest

from ai.recommendation_engine import FallbackChain, UserQuery
from ai.popularity import PopularityRecommender
from ai.trending import DEFAULT_HALF_LIFE_SECONDS, TRENDING, TrendingLink, TrendingScores, decay
import scipy.sparse as sp

DAY = 86400.0
NOW = 1_700_000_000.0


def test_a_like_counts_half_as_much_one_half_life_later():
    assert decay(DEFAULT_HALF_LIFE_SECONDS, DEFAULT_HALF_LIFE_SECONDS) == pytest.approx(0.5)
    assert DEFAULT_HALF_LIFE_SECONDS == 7 * DAY
    scores = TrendingScores.from_edges(2, [0, 1], [1.0, 1.0], [NOW, NOW - 7 * DAY], now=NOW)
    assert scores.scores() == pytest.approx([1.0, 0.5])


def test_a_burst_of_fresh_likes_ranks_above_an_old_larger_count():
    old = [0] * 50  # item 0: 50 likes, a year ago
    fresh = [1] * 5  # item 1: 5 likes today
    times = [NOW - 365 * DAY] * 50 + [NOW - 3600.0] * 5
    scores = TrendingScores.from_edges(3, old + fresh, [5.0] * 55, times, now=NOW)
    ids, _ = scores.top(3)
    assert ids.tolist() == [1]  # item 0 decayed below one like; item 2 has nothing


def test_decay_is_the_same_factor_for_every_item_so_the_order_holds_over_time():
    scores = TrendingScores.from_edges(3, [0, 1, 1, 2], [5, 3, 3, 1], [NOW, NOW - DAY, NOW - 2 * DAY, NOW], now=NOW)
    later = scores.scores(NOW + 30 * DAY)
    assert np.argsort(-later).tolist() == np.argsort(-scores.scores()).tolist()
    assert later == pytest.approx(scores.scores() * 0.5 ** (30 / 7))


def test_adding_edges_later_equals_computing_them_at_once():
    cols, weights = [0, 1, 2, 1], [5.0, 3.0, 4.0, 5.0]
    times = [NOW - 3 * DAY, NOW - DAY, NOW, NOW + 2 * DAY]
    at_once = TrendingScores.from_edges(3, cols, weights, times, now=NOW + 2 * DAY)
    stepwise = TrendingScores.from_edges(3, cols[:2], weights[:2], times[:2], now=NOW - DAY)
    stepwise.add(cols[2:], weights[2:], times[2:], now=NOW + 2 * DAY)
    assert stepwise.scores() == pytest.approx(at_once.scores())
    assert stepwise.version == at_once.version + 1


def test_untimed_edges_are_dated_when_first_seen_and_keep_decaying_after():
    first = TrendingScores.from_totals(timed_scores=np.zeros(2), untimed=np.array([10.0, 0.0]), now=NOW)
    assert first.scores() == pytest.approx([10.0, 0.0])  # first seen now
    # a week later: item 0 has the same 10 (old: decayed), item 1 got 4 new untimed weight (fresh)
    second = TrendingScores.from_totals(timed_scores=np.zeros(2), untimed=np.array([10.0, 4.0]), now=NOW + 7 * DAY,
                                        previous=first, previous_columns=np.array([0, 1]))
    assert second.scores() == pytest.approx([5.0, 4.0])


def test_the_link_passes_when_nothing_is_recent_and_popular_answers():
    popularity = PopularityRecommender().fit(sp.csr_matrix(np.array([[1.0, 0, 1], [1, 1, 0]])))
    stale = TrendingScores.from_edges(3, [0, 1], [1.0, 1.0], [NOW - 300 * DAY] * 2, now=NOW)
    chain = FallbackChain([TrendingLink(stale), popularity])
    assert {reason for _, _, reason in chain.recommend(UserQuery(), n=3)} == {"popularity"}
    fresh = TrendingScores.from_edges(3, [2], [5.0], [NOW], now=NOW)
    ranked = FallbackChain([TrendingLink(fresh), popularity]).recommend(UserQuery(), n=3)
    assert ranked[0][0] == 2 and ranked[0][2] == TRENDING
    assert [reason for _, _, reason in ranked[1:]] == ["popularity", "popularity"]


def test_it_never_returns_a_filtered_item():
    scores = TrendingScores.from_edges(3, [0, 1, 2], [5.0, 4.0, 3.0], [NOW] * 3, now=NOW)
    assert scores.top(3, np.array([0]))[0].tolist() == [1, 2]


def test_it_survives_a_pickle_round_trip():
    import pickle

    scores = TrendingScores.from_edges(2, [0], [5.0], [NOW], now=NOW)
    again = pickle.loads(pickle.dumps(scores))
    again.add([1], [5.0], [NOW + DAY], now=NOW + DAY)
    assert again.top(2)[0].tolist() == [1, 0]
