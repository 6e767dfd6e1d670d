"""Trending items: popularity that forgets, a link of every type's fallback chain (personalised -> cross-domain
-> trending -> popular).

An edge of weight w created at time t counts w * 2 ** (-(now - t) / half_life) towards its item: a like is worth
half as much a half-life later (default one week, MUSICBUD_TRENDING_HALF_LIFE_HOURS). Decay multiplies every
item by the same factor, so the state keeps each item's decayed weight as of one moment (`as_of`) and the
ranking never needs recomputing as time passes; only new edges change it (``add``: the change feed folds them
in between trainings, app/services/live.py). An edge without a time (MusicBud's own graph) is dated when it was
first seen: at the training (or feed read) that first counted it; ``untimed`` keeps, per item, how much untimed
weight was counted, so the next training dates only the new part now and lets the old part go on decaying.

The link ranks only items with a decayed weight of at least ``min_weight`` (one like of weight 1 as of `as_of`):
when nothing moved lately it passes and all-time popularity answers. Scores are the decayed weights as of
`as_of` (the moment of the latest edge counted), so an answer is the same until a new edge arrives.

No Django, no Neo4j: arrays in, arrays out.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ai.recommendation_engine import ChainLink, UserQuery
from ai.recommender_base import as_index_array, top_n

__all__ = ["DEFAULT_HALF_LIFE_SECONDS", "TRENDING", "TrendingLink", "TrendingScores", "decay"]

TRENDING = "trending"  # the link's name: each item's `reason`
DEFAULT_HALF_LIFE_SECONDS = 7 * 24 * 3600.0  # one week


def decay(age_seconds: np.ndarray | float, half_life_seconds: float) -> np.ndarray | float:
    """2 ** (-age / half_life): 1 for an edge made now, 0.5 one half-life ago (ages < 0, edges after `as_of`,
    count more than 1)."""
    return np.exp2(-np.asarray(age_seconds, dtype=np.float64) / float(half_life_seconds))


@dataclass(frozen=True)
class _Snapshot:
    scores: np.ndarray  # (n_items,) float64: decayed weight per item as of `as_of`
    untimed: np.ndarray  # (n_items,) float64: untimed weight counted so far, per item (first-seen dating)
    untimed_scores: np.ndarray  # (n_items,) float64: the decayed part of `scores` that came from untimed edges
    as_of: float  # epoch seconds
    version: int


class TrendingScores:
    """Per item, the time-decayed sum of the weights of its edges (see the module docstring). Thread-safe: a
    change publishes a new snapshot; readers take the current one without a lock."""

    def __init__(self, n_items: int, *, half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS, as_of: float = 0.0,
                 min_weight: float = 1.0) -> None:
        if not half_life_seconds > 0:
            raise ValueError(f"half_life_seconds must be > 0, got {half_life_seconds}")
        self.half_life_seconds = float(half_life_seconds)
        self.min_weight = float(min_weight)
        zeros = np.zeros(int(n_items), dtype=np.float64)
        self._snap = _Snapshot(zeros, zeros.copy(), zeros.copy(), float(as_of), 0)
        self._lock = threading.Lock()

    @classmethod
    def from_edges(cls, n_items: int, columns, weights, times, *, now: float,
                   half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS, min_weight: float = 1.0) -> TrendingScores:
        """Scores of edges (column, weight, epoch seconds) as of `now` (times NaN: untimed, first seen now)."""
        out = cls(n_items, half_life_seconds=half_life_seconds, as_of=now, min_weight=min_weight)
        out.add(columns, weights, times, now=now)
        return out

    @classmethod
    def from_totals(cls, *, timed_scores: np.ndarray, untimed: np.ndarray, now: float,
                    previous: TrendingScores | None = None, previous_columns: np.ndarray | None = None,
                    half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS, min_weight: float = 1.0) -> TrendingScores:
        """A training's scores from per-item totals: `timed_scores` (the decayed weights of the edges with a time,
        as of `now`) and `untimed` (the summed weight of the edges without one). Untimed weight the `previous`
        scores had counted (previous_columns[i]: item i's column there, -1 for a new item) keeps its decayed
        score; only the rest is dated now (first seen). Less untimed weight than before (an unlike) scales the
        old part down."""
        timed = np.asarray(timed_scores, dtype=np.float64)
        untimed = np.asarray(untimed, dtype=np.float64)
        out = cls(timed.size, half_life_seconds=half_life_seconds, as_of=now, min_weight=min_weight)
        old_weight = np.zeros_like(untimed)
        old_score = np.zeros_like(untimed)
        if previous is not None and previous_columns is not None:
            snap = previous._snap
            cols = as_index_array(previous_columns)
            known = (cols >= 0) & (cols < snap.untimed.size)
            old_weight[known] = snap.untimed[cols[known]]
            old_score[known] = snap.untimed_scores[cols[known]] * decay(now - snap.as_of, half_life_seconds)
        kept = np.where(old_weight > 0, np.minimum(untimed / np.maximum(old_weight, 1e-12), 1.0), 0.0)
        untimed_scores = old_score * kept + np.maximum(untimed - old_weight, 0.0)
        out._snap = _Snapshot(timed + untimed_scores, untimed, untimed_scores, float(now), 0)
        return out

    @property
    def n_items(self) -> int:
        return self._snap.scores.size

    @property
    def as_of(self) -> float:
        return self._snap.as_of

    @property
    def version(self) -> int:
        """How many times edges were added since it was built (part of a cached answer's key)."""
        return self._snap.version

    def scores(self, now: float | None = None) -> np.ndarray:
        """Each item's decayed weight as of `now` (default: as of `as_of`), a read-only view or a new array."""
        snap = self._snap
        if now is None or now == snap.as_of:
            return snap.scores
        return snap.scores * decay(now - snap.as_of, self.half_life_seconds)

    def add(self, columns, weights, times, *, now: float) -> None:
        """Count more edges (columns of this item space; columns outside it are ignored). times: epoch seconds,
        NaN for an untimed edge (dated `now`, its first sight). The state moves to the newest of its `as_of`,
        the edges' times and (for untimed edges) `now`."""
        cols = as_index_array(columns)
        w = np.asarray(weights, dtype=np.float64).ravel()
        t = np.asarray(times, dtype=np.float64).ravel()
        if not (cols.size == w.size == t.size):
            raise ValueError(f"columns, weights and times differ in length: {cols.size}, {w.size}, {t.size}")
        with self._lock:
            snap = self._snap
            keep = (cols >= 0) & (cols < snap.scores.size)
            cols, w, t = cols[keep], w[keep], t[keep]
            untimed_edge = np.isnan(t)
            t = np.where(untimed_edge, now, t)
            as_of = max([snap.as_of, *([float(t.max())] if t.size else [])])
            factor = decay(as_of - snap.as_of, self.half_life_seconds)
            scores = snap.scores * factor
            untimed_scores = snap.untimed_scores * factor
            contribution = w * decay(as_of - t, self.half_life_seconds)
            np.add.at(scores, cols, contribution)
            untimed = snap.untimed.copy()
            np.add.at(untimed, cols[untimed_edge], w[untimed_edge])
            np.add.at(untimed_scores, cols[untimed_edge], contribution[untimed_edge])
            self._snap = _Snapshot(scores, untimed, untimed_scores, as_of, snap.version + 1)

    def top(self, n: int, filter_items: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The n items with the highest decayed weight, at least min_weight, never one of filter_items."""
        snap = self._snap
        ranked = self.__dict__.get("_ranked")
        if ranked is None or ranked[0] is not snap:  # once per snapshot: float32, -inf below min_weight
            values = snap.scores.astype(np.float32)
            values[snap.scores < self.min_weight] = -np.inf
            ranked = self._ranked = (snap, values)
        return top_n(ranked[1].copy(), n, as_index_array(filter_items))

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        del state["_lock"]
        state.pop("_ranked", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class TrendingLink(ChainLink):
    """The chain's trending link: the same ranking for everyone (minus their items and the filter); passes when
    no item reaches min_weight."""

    name = TRENDING

    def __init__(self, scores: TrendingScores) -> None:
        self.scores = scores

    def recommend(self, user: UserQuery, n: int, filter_items: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        ids, values = self.scores.top(n, filter_items)
        return (ids, values) if ids.size else None
