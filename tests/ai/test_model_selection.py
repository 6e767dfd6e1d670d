"""ai/model_selection.py: the candidate that is best on the validation split is chosen, every candidate is in the
table, the caller's held-out part plays no part in the choice, and what cannot fit or is too big is never served."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ai.ease import EASERecommender
from ai.item_features import item_features_from_details
from ai.model_selection import (
    BASELINE,
    BLEND,
    candidate_factories,
    held_out_report,
    select_model,
    users_holdout_split,
    users_sample,
)
from ai.popularity import PopularityRecommender
from ai.recommender_base import FittedMatrix, RecommenderBase


def tribes(n_users: int = 120, n_items: int = 60, seed: int = 0) -> sp.csr_matrix:
    """Three tribes, each liking 12 items of its own third of the catalogue (the first of each third the most
    often): an item-item model recovers the tribe from any history, popularity knows only the popular items,
    and the reversed candidate ranks the unpopular first."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    third = n_items // 3
    skew = 1.0 / np.arange(1, third + 1)
    for user in range(n_users):
        tribe = user % 3
        items = rng.choice(np.arange(tribe * third, (tribe + 1) * third), size=12, replace=False, p=skew / skew.sum())
        rows += [user] * items.size
        cols += items.tolist()
    return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n_users, n_items))


class Reversed(RecommenderBase):
    """A deliberately bad candidate: ranks the least popular items first."""

    name = "reversed"
    fitted_on: list[sp.csr_matrix] = []

    def fit(self, interactions, *, show_progress=False):
        matrix = sp.csr_matrix(interactions, dtype=np.float32)
        type(self).fitted_on.append(matrix)
        self._state = type("State", (), {"seen": FittedMatrix.of(matrix, use_weights=False)})()
        return self

    def _user_scores(self, state, userid, user_items, recalculate_user):
        return -state.seen.popularity.copy()

    def score_items(self, userids):
        return np.tile(-self._fitted().seen.popularity, (len(userids), 1))

    def similar_items(self, itemid, n=10):
        raise NotImplementedError


@pytest.fixture(scope="module")
def matrix() -> sp.csr_matrix:
    return tribes()


def test_it_chooses_the_candidate_that_must_win_and_shows_every_one(matrix):
    selection = select_model(train=matrix, candidates={"reversed": Reversed, "ease": lambda: EASERecommender(
        regularization=5.0)}, fraction=0.25, max_users=1000, blend=False)
    assert selection.chosen == "ease"
    table = selection.table()
    assert list(table["candidates"]) == ["reversed", "ease", BASELINE]
    rows = table["candidates"]
    assert rows["ease"]["validation"]["ndcg_at_k"] > rows[BASELINE]["validation"]["ndcg_at_k"] > \
        rows["reversed"]["validation"]["ndcg_at_k"]
    assert all(row["status"] == "scored" and row["fit_seconds"] is not None and row["memory_mb"] is not None
               for row in rows.values())
    assert selection.build().fit(matrix).recommend(0, matrix[0], n=3)[0].size == 3


def test_popularity_is_scored_but_never_served_while_a_candidate_fits(matrix):
    selection = select_model(train=matrix, candidates={"reversed": Reversed}, fraction=0.25, blend=False)
    rows = selection.table()["candidates"]
    assert rows[BASELINE]["validation"]["ndcg_at_k"] > rows["reversed"]["validation"]["ndcg_at_k"]
    assert selection.chosen == "reversed"


def test_the_held_out_part_never_reaches_the_candidates_and_does_not_change_the_choice(matrix):
    train, test = users_holdout_split(matrix, fraction=0.2, max_users=60, seed=42)
    assert test.nnz > 0 and train.multiply(test).nnz == 0
    Reversed.fitted_on = []
    candidates = {"reversed": Reversed, "ease": lambda: EASERecommender(regularization=5.0)}
    selection = select_model(train=train, candidates=candidates, fraction=0.25, blend=False)
    assert Reversed.fitted_on and all(m.multiply(test).nnz == 0 for m in Reversed.fitted_on)
    chosen, validation = selection.chosen, selection.table()["candidates"]["ease"]["validation"]
    held_out_report(selection, train=train, test=test)
    assert selection.chosen == chosen and selection.table()["candidates"]["ease"]["validation"] == validation
    assert selection.results["ease"].held_out["users_evaluated"] > 0
    assert not selection.fitted  # the fitted candidates are let go once reported


def test_a_blend_of_the_best_candidates_is_scored_with_weights_chosen_on_validation(matrix):
    selection = select_model(train=matrix, candidates={"ease": lambda: EASERecommender(regularization=5.0),
                                                       "reversed": Reversed}, fraction=0.25, blend=True)
    row = selection.results[BLEND]
    assert row.status == "scored" and row.params["components"] and len(row.params["weights"]) >= 2
    assert abs(sum(row.params["weights"]) - 1.0) < 1e-6
    assert selection.results[BLEND].validation["ndcg_at_k"] <= selection.results["ease"].validation["ndcg_at_k"] \
        or selection.chosen == BLEND


def test_a_candidate_that_cannot_fit_is_skipped_with_its_reason(matrix):
    selection = select_model(train=matrix, candidates={"ease": lambda: EASERecommender(max_items=10),
                                                       "popularity": PopularityRecommender}, blend=False)
    row = selection.results["ease"]
    assert row.status == "skipped" and "max_items=10" in row.reason
    assert selection.chosen == BASELINE  # nothing else fits: the baseline is served


def test_a_candidate_over_the_memory_budget_is_shown_but_never_served(matrix):
    selection = select_model(train=matrix, candidates={"ease": lambda: EASERecommender(regularization=5.0),
                                                       "reversed": Reversed}, blend=False, max_memory_mb=0.001)
    assert selection.results["ease"].status == "scored" and not selection.results["ease"].eligible
    assert "memory budget" in selection.results["ease"].reason
    assert selection.chosen == "reversed"


def test_when_every_candidate_is_over_the_memory_budget_the_smallest_is_served_not_popularity():
    from ai.lightfm_model import LightFMRecommender

    selection = select_model(train=tribes(n_users=2000, n_items=600), candidates={
        "ease": lambda: EASERecommender(regularization=5.0),
        "lightfm": lambda: LightFMRecommender(no_components=8, epochs=2, random_state=0, num_threads=1)},
        blend=False, max_memory_mb=0.01)
    rows = selection.results
    assert rows["lightfm"].memory_mb < rows["ease"].memory_mb
    assert selection.chosen == "lightfm" and "served all the same" in rows["lightfm"].reason
    assert not rows["ease"].eligible and rows[BASELINE].status == "scored"


def test_candidate_factories_refuse_an_unknown_name_and_leave_out_a_hybrid_without_features():
    with pytest.raises(ValueError, match="unknown candidate"):
        candidate_factories(["lightfm", "svd"], threads=1, random_state=0)
    assert list(candidate_factories(["lightfm_hybrid", "ease", "blend"], threads=1, random_state=0)) == ["ease"]


def test_item_features_come_from_genres_decades_types_and_artists():
    details = {"a": {"genres": ["Action", "Drama"], "year": 1994}, "b": {"genres": ["action"], "year": "1999"},
               "c": {"type": "TV", "artists": ["X"]}, "d": {"type": "tv", "artists": ["x"], "year": None}}
    features, names = item_features_from_details(["a", "b", "c", "d", "e"], details)
    assert names == ["artist:x", "decade:1990", "genre:action", "type:tv"]  # drama: one item only
    assert features.toarray().tolist() == [[0, 1, 1, 0], [0, 1, 1, 0], [1, 0, 0, 1], [1, 0, 0, 1], [0, 0, 0, 0]]


def test_a_user_sample_keeps_whole_rows_the_kept_users_and_about_the_budget():
    matrix = tribes(n_users=600)
    keep = np.array([0, 5, 599])
    sample = users_sample(matrix, max_interactions=1200, keep=keep, seed=1)
    assert sample.shape == matrix.shape
    rows = np.flatnonzero(np.diff(sample.indptr) > 0)
    assert set(keep.tolist()) <= set(rows.tolist())
    assert 1200 - 12 < sample.nnz <= 1200  # whole users of 12 items each, up to the budget
    for row in rows:  # a sampled user keeps every item they have
        assert (sample[row] != matrix[row]).nnz == 0
    assert users_sample(matrix, max_interactions=matrix.nnz, keep=keep) is matrix


def test_candidates_of_a_large_type_are_fitted_on_a_sample_with_every_validation_and_kept_user(matrix):
    train, test = users_holdout_split(matrix, fraction=0.2, max_users=30, seed=42)
    held = np.flatnonzero(np.diff(test.indptr) > 0)
    Reversed.fitted_on = []
    selection = select_model(train=train, candidates={"reversed": Reversed, "ease": lambda: EASERecommender(
        regularization=5.0)}, fraction=0.25, max_users=30, blend=False, max_fit_interactions=500, keep_users=held)
    assert selection.sampled and selection.protocol["fit_sample"]
    fitted_on = Reversed.fitted_on[0]
    fitted_users = set(np.flatnonzero(np.diff(fitted_on.indptr) > 0).tolist())
    assert fitted_on.nnz <= 500 + 12 and fitted_on.nnz < train.nnz * 0.7
    assert set(held.tolist()) <= fitted_users  # the held-out users are there to be measured
    assert selection.protocol["fit_users"] == len(fitted_users) < matrix.shape[0]
    assert selection.chosen == "ease"  # the item-item model still wins on a sample
    held_out_report(selection, train=train, test=test)
    assert selection.results["ease"].held_out["ndcg_at_k"] > selection.results["reversed"].held_out["ndcg_at_k"]
    unsampled = select_model(train=train, candidates={"ease": lambda: EASERecommender(regularization=5.0)},
                             fraction=0.25, max_users=30, blend=False, max_fit_interactions=train.nnz)
    assert not unsampled.sampled and unsampled.protocol["fit_sample"] is None
