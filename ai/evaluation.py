"""Offline evaluation: a per-user split and ranking metrics, as Microsoft Recommenders defines them
(``recommenders/evaluation/python_evaluation.py``).

Conventions shared by the metrics:

- ``recommended``: int array (users x at least k), each row a user's ranked item indices, best first;
  -1 pads rows that have fewer than k items.
- ``relevant``: users x items sparse matrix, row u's non-zero columns are u's relevant (held-out) items.
- Users without any relevant item are skipped; a metric over no user at all is 0.0.
- Every metric is a mean of per-user values, so it lies in [0, 1].
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from ai.recommendation_engine import RecommenderBase

__all__ = [
    "auc",
    "catalogue_coverage",
    "evaluate",
    "evaluate_scores",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
    "train_test_split_per_user",
]


def _relevance(relevant: Any) -> sp.csr_matrix:
    matrix = sp.csr_matrix(relevant, copy=True)
    matrix.sum_duplicates()
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def _hits(recommended: np.ndarray, relevant: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(hits: bool users x k, hits[u, r] = the item at rank r is relevant to u; relevant count per user)."""
    if k < 1:
        raise ValueError(f"k={k}: k must be at least 1")
    rel = _relevance(relevant)
    n_users, n_items = rel.shape
    recs = np.asarray(recommended, dtype=np.int64)
    if recs.ndim != 2 or recs.shape[0] != n_users:
        raise ValueError(f"recommended {recs.shape} needs one row per row of relevant ({n_users} users)")
    recs = recs[:, :k]
    hits = np.zeros((n_users, k), dtype=bool)  # rows shorter than k: the missing ranks are misses
    if rel.nnz:
        keys = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(rel.indptr)) * n_items + rel.indices
        queries = np.arange(n_users, dtype=np.int64)[:, None] * n_items + recs
        found = keys[np.minimum(np.searchsorted(keys, queries), keys.size - 1)] == queries
        hits[:, :recs.shape[1]] = found & (recs >= 0) & (recs < n_items)
    return hits, np.diff(rel.indptr)


def precision_at_k(recommended: np.ndarray, relevant: Any, k: int = 10) -> float:
    """Mean over users of (relevant items among the top k) / k.

    Bounds: [0, 1]; 1.0 only when every user has at least k relevant items and all top-k are relevant,
    0.0 when no top-k item is relevant.
    """
    hits, n_relevant = _hits(recommended, relevant, k)
    users = n_relevant > 0
    return float(hits[users].sum(axis=1).mean() / k) if users.any() else 0.0


def recall_at_k(recommended: np.ndarray, relevant: Any, k: int = 10) -> float:
    """Mean over users of (relevant items among the top k) / (number of relevant items).

    Bounds: [0, 1]; 1.0 when every relevant item is in the top k (possible only with <= k of them),
    0.0 when none is.
    """
    hits, n_relevant = _hits(recommended, relevant, k)
    users = n_relevant > 0
    return float((hits[users].sum(axis=1) / n_relevant[users]).mean()) if users.any() else 0.0


def ndcg_at_k(recommended: np.ndarray, relevant: Any, k: int = 10) -> float:
    """Mean over users of DCG@k / ideal DCG@k, binary relevance, gain 1 / log2(rank + 1) (rank from 1).

    The ideal ranks min(k, relevant count) relevant items first. Bounds: [0, 1]; 1.0 when the top ranks
    are all relevant up to min(k, relevant count), 0.0 when no top-k item is relevant.
    """
    hits, n_relevant = _hits(recommended, relevant, k)
    users = n_relevant > 0
    if not users.any():
        return 0.0
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = hits[users] @ discounts
    ideal = np.cumsum(discounts)[np.minimum(n_relevant[users], k) - 1]
    return float((dcg / ideal).mean())


def _positive_rank_sums(scores: np.ndarray, rel: sp.csr_matrix, n_excluded: np.ndarray, block: int = 256
                        ) -> np.ndarray:
    """Per user, the sum of its positives' ranks among its candidates (1-based, ties averaged, excluded items
    at -inf below them all): what ranking every row would give, counted per positive instead (a row has a
    few positives and thousands of items, so this is ~50x cheaper than sorting every row)."""
    rows = np.repeat(np.arange(scores.shape[0]), np.diff(rel.indptr))
    sums = np.zeros(scores.shape[0], dtype=np.float64)
    for start in range(0, rows.size, block):
        r, c = rows[start:start + block], rel.indices[start:start + block]
        row_scores, own = scores[r], scores[r, c][:, None]
        below = (row_scores < own).sum(axis=1) - n_excluded[r]
        ties = (row_scores == own).sum(axis=1)  # the positive itself included
        np.add.at(sums, r, below + (ties + 1) / 2.0)
    return sums


def _auc_per_user(scores: np.ndarray, relevant: Any, exclude: Any | None = None) -> np.ndarray:
    """Per-user AUC (NaN where a user has no positive or no negative candidate)."""
    scores = np.array(scores, dtype=np.float64)  # a copy: excluded items are set to -inf below
    rel = _relevance(relevant)
    rel.data[:] = 1.0
    n_excluded = np.zeros(scores.shape[0], dtype=np.int64)
    if exclude is not None:
        ex = _relevance(exclude)
        ex.data[:] = 1.0
        rel = _relevance(rel - rel.multiply(ex))  # an excluded item is not a candidate, not even a positive
        coo = ex.tocoo()
        scores[coo.row, coo.col] = -np.inf
        n_excluded = np.diff(ex.indptr)
    n_pos = np.diff(rel.indptr)
    n_neg = scores.shape[1] - n_excluded - n_pos
    pos_rank_sum = _positive_rank_sums(scores, rel, n_excluded)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_user = (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), per_user, np.nan)


def auc(scores: np.ndarray, relevant: Any, exclude: Any | None = None) -> float:
    """Mean over users of the ROC AUC of `scores` (dense users x items): the probability that a relevant
    item outscores a non-relevant one, ties counting 1/2. Items in `exclude` (e.g. training items) are
    neither positives nor negatives. Bounds: [0, 1]; 1.0 perfect ranking, 0.5 random, 0.0 reversed.
    """
    per_user = _auc_per_user(scores, relevant, exclude)
    return float(np.nanmean(per_user)) if np.isfinite(per_user).any() else 0.0


def catalogue_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue recommended to at least one user: |distinct items in recommended| / n_items.

    Bounds: [0, 1]; 1.0 when every item appears in some list, 0.0 when the lists are empty (-1 only).
    """
    recs = np.asarray(recommended, dtype=np.int64).ravel()
    recs = recs[(recs >= 0) & (recs < n_items)]
    return float(np.unique(recs).size / n_items) if n_items > 0 else 0.0


def train_test_split_per_user(
    interactions: sp.csr_matrix, test_fraction: float = 0.25, seed: int = 42, min_user_items: int = 2
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Random per-user split into (train, test) of the same shape.

    Each user with at least `min_user_items` items holds out round(test_fraction * count) of them (half
    rounds up), at least 1, and keeps at least 1 in train; users with fewer items stay entirely in train.
    Deterministic for a given seed.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction}: use a fraction strictly between 0 and 1, e.g. 0.25")
    if min_user_items < 2:
        raise ValueError(f"min_user_items={min_user_items}: a user needs at least 2 items to split them")
    matrix = _relevance(interactions)
    counts = np.diff(matrix.indptr)
    n_test = np.clip(np.floor(test_fraction * counts + 0.5).astype(np.int64), 1, np.maximum(counts - 1, 1))
    n_test[counts < min_user_items] = 0
    rows = np.repeat(np.arange(matrix.shape[0]), counts)
    order = np.lexsort((np.random.default_rng(seed).random(matrix.nnz), rows))  # shuffled within each row
    rank = np.empty(matrix.nnz, dtype=np.int64)
    rank[order] = np.arange(matrix.nnz) - matrix.indptr[rows[order]]
    in_test = rank < n_test[rows]
    coo = matrix.tocoo()

    def part(mask: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=matrix.shape)

    return part(~in_test), part(in_test)


MAX_BATCH_SCORES = 32_000_000  # dense scores per evaluation batch: 128 MB of float32 (and the AUC's float64 copy)


def _top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Row-wise indices of the k best finite scores, best first; -1 where a row has fewer than k."""
    k = min(k, scores.shape[1])
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    best_scores = np.take_along_axis(scores, best, axis=1)
    order = np.argsort(-best_scores, axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)
    return np.where(np.isneginf(np.take_along_axis(best_scores, order, axis=1)), -1, best)


def evaluate(
    model: RecommenderBase, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10, *, batch_size: int = 2048
) -> dict[str, Any]:
    """Rank every item for each user with test items (train items excluded) and score the top k.

    Returns precision_at_k, recall_at_k, ndcg_at_k, auc (all in [0, 1]), coverage (share of items
    recommended to someone), k and users_evaluated. Users without test items are skipped.
    """
    if train.shape != test.shape or test.shape[1] != model.n_items:
        raise ValueError(
            f"train {train.shape}, test {test.shape} and the model's {model.n_items} items disagree: "
            "split one matrix with train_test_split_per_user() and fit the model on its train part"
        )
    return evaluate_scores(model.score_items, train, test, k, batch_size=batch_size)


def evaluate_scores(score_items: Any, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10, *,
                    batch_size: int = 2048, with_auc: bool = True) -> dict[str, Any]:
    """evaluate() for any scorer: score_items(user indices) -> (len, n_items) scores. with_auc=False skips the
    AUC (the costly part; reported as None). Users are scored `batch_size` at a time, fewer when a batch's
    dense scores would exceed MAX_BATCH_SCORES values (a 200k-item catalogue: ~160 users, not 2,048 users'
    1.6 GB and its copies); every metric is per user, so the batching never changes a result."""
    train, test = _relevance(train), _relevance(test)
    if train.shape != test.shape:
        raise ValueError(f"train {train.shape} and test {test.shape} must have the same shape")
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    batch_size = max(1, min(batch_size, MAX_BATCH_SCORES // max(test.shape[1], 1)))
    recommended, per_user_auc = [], []
    for start in range(0, users.size, batch_size):
        batch = users[start:start + batch_size]
        scores = np.array(score_items(batch), dtype=np.float32)
        seen = train[batch].tocoo()
        scores[seen.row, seen.col] = -np.inf
        recommended.append(_top_k_rows(scores, k))
        if with_auc:
            per_user_auc.append(_auc_per_user(scores, test[batch], train[batch]))
    recs = np.vstack(recommended) if recommended else np.empty((0, k), dtype=np.int64)
    relevant = test[users]
    aucs = np.concatenate(per_user_auc) if per_user_auc else np.empty(0)
    return {
        "precision_at_k": precision_at_k(recs, relevant, k),
        "recall_at_k": recall_at_k(recs, relevant, k),
        "ndcg_at_k": ndcg_at_k(recs, relevant, k),
        "auc": (float(np.nanmean(aucs)) if np.isfinite(aucs).any() else 0.0) if with_auc else None,
        "coverage": catalogue_coverage(recs, test.shape[1]),
        "k": int(k),
        "users_evaluated": int(users.size),
    }
