"""What every recommender must do (a contract mixin, after implicit's tests/recommender_base_test.py),
then what each engine and the fallback chain add."""
from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from ai import recommendation_engine as engine
from ai.recommendation_engine import (
    SERVICE_DEFAULTS,
    FallbackChain,
    LightFMRecommender,
    ModelNotFittedError,
    PopularityRecommender,
    RecommenderBase,
    UnknownItemError,
    UnknownUserError,
    UserQuery,
    make_recommender,
)
from ai.blend import BlendRecommender, normalised
from ai.ease import CatalogueTooLargeError, EASERecommender
from ai.implicit_models import ALSRecommender, BPRRecommender
from ai.lightfm_model import LightFMHybridRecommender
from ai.recommender_base import FittedMatrix, best_k

SIZE = 50
ROOT = Path(__file__).resolve().parents[2]


def checker_board(size: int = SIZE) -> sp.csr_matrix:
    """Every even user likes every even item, every odd user every odd item; the diagonal is withheld,
    so the right top item for user u is item u (implicit's get_checker_board)."""
    board = np.zeros((size, size), dtype=np.float32)
    for user in range(size):
        board[user, user % 2::2] = 1.0
    return sp.csr_matrix(board - np.eye(size, dtype=np.float32))


@pytest.fixture(scope="module")
def board() -> sp.csr_matrix:
    return checker_board()


def small_lightfm(**params) -> LightFMRecommender:
    settings = {"no_components": 8, "epochs": 20, "num_threads": 1, "random_state": 42, **params}
    return LightFMRecommender(**settings)


class RecommenderContract:
    """Each engine's test class says only how to build its model."""

    def make_model(self) -> RecommenderBase:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    def fitted(self, board) -> RecommenderBase:
        return self.make_model().fit(board)

    def test_fit_returns_the_fitted_recommender(self, board):
        model = self.make_model()
        assert model.fit(board) is model
        assert model.is_fitted

    def test_it_knows_the_shape_it_was_fitted_on(self, fitted):
        assert (fitted.n_users, fitted.n_items) == (SIZE, SIZE)

    def test_it_refuses_to_recommend_before_fit(self):
        model = self.make_model()
        with pytest.raises(ModelNotFittedError, match="call fit\\(\\) first"):
            model.recommend(0)
        with pytest.raises(ModelNotFittedError):
            model.similar_items(0)
        with pytest.raises(ModelNotFittedError):
            model.popular()

    def test_it_returns_at_most_n_int64_ids_with_float32_scores(self, fitted, board):
        ids, scores = fitted.recommend(0, board[0], n=5)
        assert ids.dtype == np.int64 and scores.dtype == np.float32
        assert len(ids) == len(scores) == 5

    def test_it_returns_nothing_for_n_zero(self, fitted, board):
        ids, scores = fitted.recommend(0, board[0], n=0)
        assert len(ids) == len(scores) == 0

    def test_it_sorts_scores_best_first(self, fitted, board):
        for user in range(0, SIZE, 7):
            _, scores = fitted.recommend(user, board[user], n=20)
            assert np.all(np.diff(scores) <= 0)

    def test_it_never_returns_items_the_user_has(self, fitted, board):
        for user in range(SIZE):
            ids, _ = fitted.recommend(user, board[user], n=SIZE)
            assert not set(ids) & set(board[user].indices)

    def test_it_uses_the_row_seen_in_fit_when_user_items_is_omitted(self, fitted, board):
        ids, _ = fitted.recommend(3, n=SIZE)
        assert not set(ids) & set(board[3].indices)

    def test_it_may_return_items_the_user_has_when_asked_to(self, fitted, board):
        ids, _ = fitted.recommend(0, board[0], n=SIZE, filter_already_liked_items=False)
        assert len(ids) == SIZE

    def test_it_never_returns_filtered_items(self, fitted, board):
        blocked = np.array([0, 1, 2, 3, 4, 5])
        ids, _ = fitted.recommend(7, board[7], n=SIZE, filter_items=blocked)
        assert not set(ids) & set(blocked)

    def test_it_returns_only_what_is_left_when_n_exceeds_the_catalogue(self, fitted, board):
        ids, _ = fitted.recommend(0, board[0], n=10_000)
        assert len(ids) == SIZE - board[0].nnz
        assert len(set(ids)) == len(ids)

    def test_it_wants_the_users_single_row_as_user_items(self, fitted, board):
        with pytest.raises(ValueError, match="interactions\\[userid\\]"):
            fitted.recommend(0, board, n=3)

    def test_similar_items_share_the_parity_and_never_the_item_itself(self, fitted):
        for item in range(0, SIZE, 5):
            ids, scores = fitted.similar_items(item, n=10)
            assert 0 < len(ids) <= 10 and item not in ids
            assert all(other % 2 == item % 2 for other in ids)
            assert np.all(np.diff(scores) <= 0)

    def test_similar_items_of_an_unknown_item_raise(self, fitted):
        with pytest.raises(UnknownItemError, match="Make sure you call the fit method"):
            fitted.similar_items(SIZE)

    def test_popular_ranks_by_interactions_and_honours_exclude(self):
        matrix = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 0]], dtype=np.float32))
        model = self.make_model().fit(matrix)
        ids, scores = model.popular(n=3)
        assert ids.tolist() == [1, 3, 0] and scores.tolist() == [3.0, 2.0, 1.0]
        ids, _ = model.popular(n=3, exclude=np.array([1]))
        assert ids.tolist() == [3, 0, 2]

    def test_it_refuses_negative_weights_and_says_what_to_do(self):
        bad = sp.csr_matrix(np.array([[1.0, -1.0], [0.0, 1.0]]))
        with pytest.raises(ValueError, match="drop them or rescale"):
            self.make_model().fit(bad)

    def test_it_refuses_a_dense_matrix(self):
        with pytest.raises(TypeError, match="scipy.sparse"):
            self.make_model().fit(np.ones((3, 3)))

    def test_it_gives_the_same_recommendations_after_save_and_load(self, fitted, board, tmp_path):
        path = tmp_path / "model.joblib"
        fitted.save(path)
        loaded = type(fitted).load(path)
        for user in (0, 1, 17):
            before, after = fitted.recommend(user, board[user], n=10), loaded.recommend(user, board[user], n=10)
            np.testing.assert_array_equal(before[0], after[0])
            np.testing.assert_allclose(before[1], after[1])
        assert list(tmp_path.iterdir()) == [path]  # no temp file left behind

    def test_fit_builds_a_new_state_and_leaves_the_old_one_intact(self, board):
        model = self.make_model().fit(board)
        old_state = model._state
        old_popularity = old_state.seen.popularity.copy()
        model.fit(board[:, ::-1].tocsr())
        assert model._state is not old_state
        np.testing.assert_array_equal(old_state.seen.popularity, old_popularity)


class TestLightFMRecommender(RecommenderContract):
    def make_model(self) -> RecommenderBase:
        return small_lightfm()

    def test_lightfm_is_really_installed(self):
        from lightfm import LightFM

        model = LightFM(no_components=4, loss="warp", random_state=0)
        model.fit(sp.coo_matrix(checker_board(10)), epochs=1)
        assert model.item_embeddings.shape == (10, 4)

    def test_it_ranks_the_withheld_item_first_on_the_checker_board(self, fitted, board):
        for user in range(SIZE):
            ids, _ = fitted.recommend(user, board[user], n=1)
            assert ids.tolist() == [user]

    def test_scores_are_item_factors_times_user_factors(self, fitted, board):
        ids, scores = fitted.recommend(4, board[4], n=5)
        expected = fitted.item_factors[ids] @ fitted.user_factors[4]
        np.testing.assert_allclose(scores, expected, rtol=1e-5)
        assert fitted.user_factors.dtype == fitted.item_factors.dtype == fitted.user_vector(4).dtype == np.float32
        assert np.all(fitted.user_factors[:, -1] == 1.0)
        assert fitted.item_factors.shape == (SIZE, 8 + 1)

    def test_the_factors_cannot_be_modified_by_a_caller(self, fitted):
        with pytest.raises(ValueError):
            fitted.item_factors[0, 0] = 1.0

    def test_it_raises_unknown_user_for_a_user_outside_the_training_range(self, fitted):
        with pytest.raises(UnknownUserError, match="User id 50 not in user id mapping. Make sure you call the fit"):
            fitted.recommend(SIZE)
        with pytest.raises(UnknownUserError):
            fitted.recommend(-1)

    def test_similar_users_share_the_parity_with_similarities_in_0_1(self, fitted):
        ids, scores = fitted.similar_users(6, n=10)
        assert 6 not in ids and len(ids) == 10
        assert all(user % 2 == 0 for user in ids)
        assert np.all((scores >= 0) & (scores <= 1)) and np.all(np.diff(scores) <= 0)

    def test_explain_names_similar_items_of_the_users_history(self, fitted, board):
        reasons = fitted.explain(0, 0, board[0], k=3)
        assert 0 < len(reasons) <= 3
        assert all(item in board[0].indices and item % 2 == 0 and weight > 0 for item, weight in reasons)
        assert [w for _, w in reasons] == sorted((w for _, w in reasons), reverse=True)

    def test_explain_gives_nothing_for_an_empty_history(self, fitted):
        assert fitted.explain(0, 0, sp.csr_matrix((1, SIZE))) == []

    def test_explain_leaves_out_items_that_are_not_alike(self, fitted, board):
        odd_history = board[1]  # odd items only: all point away from item 0 (an even one)
        assert fitted.explain(1, 0, odd_history, k=5) == []

    def test_explain_many_gives_what_explain_gives_for_each_item(self, fitted, board):
        items = [0, 2, 5, 7, 49]
        together = fitted.explain_many(3, items, board[3], k=3)
        alone = [fitted.explain(3, i, board[3], k=3) for i in items]
        assert [[item for item, _ in r] for r in together] == [[item for item, _ in r] for r in alone]
        assert [w for r in together for _, w in r] == pytest.approx([w for r in alone for _, w in r], rel=1e-5)

    def test_explain_takes_the_users_item_indices_as_well_as_their_row(self, fitted, board):
        assert fitted.explain(0, 0, board[0].indices, k=3) == fitted.explain(0, 0, board[0], k=3)

    def test_explain_many_refuses_an_unknown_item(self, fitted, board):
        with pytest.raises(UnknownItemError):
            fitted.explain_many(0, [0, SIZE], board[0])

    def test_item_factors_are_column_major_for_scoring_even_from_an_older_row_major_file(self, fitted, board,
                                                                                          tmp_path):
        from dataclasses import replace

        assert fitted.item_factors.flags.f_contiguous
        old = small_lightfm().fit(board)
        old._state = replace(old._state, item_factors=np.ascontiguousarray(old._state.item_factors))
        old.save(tmp_path / "old.joblib")
        loaded = LightFMRecommender.load(tmp_path / "old.joblib")
        assert loaded.item_factors.flags.f_contiguous and not loaded.item_factors.flags.writeable
        assert loaded.recommend(0, board[0], n=5)[0].tolist() == old.recommend(0, board[0], n=5)[0].tolist()

    def test_it_learns_from_weights_when_asked_to(self, board):
        weighted = small_lightfm(use_weights=True).fit(board * 3.0)
        ids, _ = weighted.recommend(2, board[2], n=1)
        assert ids.tolist() == [2]

    def test_it_refuses_an_unknown_loss(self):
        with pytest.raises(ValueError, match="'warp'"):
            LightFMRecommender(loss="hinge")

    def test_a_saved_model_loads_without_lightfm(self, fitted, board, tmp_path, monkeypatch):
        fitted.save(tmp_path / "m.joblib")
        monkeypatch.setitem(sys.modules, "lightfm", None)
        loaded = LightFMRecommender.load(tmp_path / "m.joblib")
        assert loaded.recommend(0, board[0], n=1)[0].tolist() == [0]

    def test_recommend_over_20k_items_is_the_best_of_one_product_of_the_stored_factors(self):
        # how fast that is, is bench/serving.py's business (no timed unit tests); here: what it computes
        rng = np.random.default_rng(0)
        users, items = rng.integers(0, 50, 4000), rng.integers(0, 20_000, 4000)
        matrix = sp.csr_matrix((np.ones(4000, dtype=np.float32), (users, items)), shape=(50, 20_000))
        model = LightFMRecommender(no_components=30, epochs=1, num_threads=2).fit(matrix)
        for user in (3, 17):
            scores = model.user_factors[user] @ model.item_factors.T
            scores[matrix[user].indices] = -np.inf
            ids, got = model.recommend(user, matrix[user], n=10)
            np.testing.assert_array_equal(ids, np.argsort(-scores, kind="stable")[:10])
            np.testing.assert_allclose(got, scores[ids], rtol=1e-6)

    def test_recommend_keeps_answering_while_another_thread_refits(self, board):
        model = small_lightfm().fit(board)
        errors: list[BaseException] = []
        stop = threading.Event()

        def serve():
            try:
                while not stop.is_set():
                    ids, _ = model.recommend(0, board[0], n=5)
                    assert len(ids) == 5
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        readers = [threading.Thread(target=serve) for _ in range(2)]
        for thread in readers:
            thread.start()
        for _ in range(3):
            model.fit(board)
        stop.set()
        for thread in readers:
            thread.join()
        assert errors == []


def parity_features(size: int = SIZE) -> sp.csr_matrix:
    """One "genre" per parity: even items are genre 0, odd items genre 1 (the checker board's two tastes)."""
    return sp.csr_matrix((np.ones(size, dtype=np.float32), (np.arange(size), np.arange(size) % 2)), shape=(size, 2))


def small_hybrid(**params) -> LightFMHybridRecommender:
    return LightFMHybridRecommender(item_features=parity_features(), **{"no_components": 8, "epochs": 20,
                                                                          "num_threads": 1, "random_state": 42, **params})


class FoldsInFromTheCurrentHistory:
    """What a served model must do for Live: answer for a user from their current history row."""

    def test_a_user_folded_in_from_their_history_gets_their_own_parity(self, fitted, board):
        for user in (0, 1, 6, 7):
            history = board[user].indices[:10]  # a history shorter than what was learned: 15 of the parity left
            ids, _ = fitted.recommend(None, history, n=5, recalculate_user=True)
            assert len(ids) == 5 and all(item % 2 == user % 2 for item in ids)
            assert not set(ids) & set(history)


class TestEASERecommender(RecommenderContract, FoldsInFromTheCurrentHistory):
    def make_model(self) -> RecommenderBase:
        return EASERecommender(regularization=10.0)

    def test_it_ranks_the_withheld_item_first_on_the_checker_board(self, fitted, board):
        for user in range(SIZE):
            assert fitted.recommend(user, board[user], n=1)[0].tolist() == [user]

    def test_scores_are_the_history_row_times_the_weights(self, fitted, board):
        ids, scores = fitted.recommend(3, board[3], n=5)
        np.testing.assert_allclose(scores, (board[3] @ fitted._state.weights).toarray().ravel()[ids], rtol=1e-5)

    def test_the_served_weights_are_sparsified_to_keep_per_row(self, board):
        model = EASERecommender(regularization=10.0, keep=5).fit(board)
        assert np.diff(model._state.weights.indptr).max() <= 5
        ids, scores = model.recommend(0, board[0].indices[:10], n=5)
        assert all(item % 2 == 0 for item in ids[scores > 0])

    def test_it_refuses_a_catalogue_over_its_bound_and_says_what_to_do(self, board):
        with pytest.raises(CatalogueTooLargeError, match="MUSICBUD_EASE_MAX_ITEMS"):
            EASERecommender(max_items=SIZE - 1).fit(board)

    def test_explain_names_the_largest_terms_of_the_score(self, fitted, board):
        reasons = fitted.explain(0, 0, board[0], k=3)
        assert 0 < len(reasons) <= 3 and all(item % 2 == 0 and item != 0 for item, _ in reasons)


class TestALSRecommender(RecommenderContract, FoldsInFromTheCurrentHistory):
    def make_model(self) -> RecommenderBase:
        return ALSRecommender(factors=8, regularization=0.1, alpha=2.0, iterations=10, num_threads=1)

    def test_scores_are_item_factors_times_user_factors(self, fitted, board):
        ids, scores = fitted.recommend(4, board[4], n=5)
        np.testing.assert_allclose(scores, fitted.item_factors[ids] @ fitted.user_factors[4], rtol=1e-5)

    def test_similar_users_share_the_parity(self, fitted):
        ids, _ = fitted.similar_users(6, n=10)
        assert 6 not in ids and all(user % 2 == 0 for user in ids)

    def test_a_saved_model_loads_without_implicit(self, fitted, board, tmp_path, monkeypatch):
        fitted.save(tmp_path / "m.joblib")
        monkeypatch.setitem(sys.modules, "implicit", None)
        assert ALSRecommender.load(tmp_path / "m.joblib").recommend(0, board[0], n=3)[0].size == 3


class TestBPRRecommender(RecommenderContract, FoldsInFromTheCurrentHistory):
    def make_model(self) -> RecommenderBase:
        return BPRRecommender(factors=8, learning_rate=0.05, iterations=200, num_threads=1)


class TestLightFMHybridRecommender(RecommenderContract, FoldsInFromTheCurrentHistory):
    def make_model(self) -> RecommenderBase:
        return small_hybrid()

    def test_popular_ranks_by_interactions_and_honours_exclude(self):
        matrix = sp.csr_matrix(np.array([[1, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 0]], dtype=np.float32))
        model = LightFMHybridRecommender(item_features=parity_features(4), epochs=1).fit(matrix)
        assert model.popular(n=3)[0].tolist() == [1, 3, 0]
        assert model.popular(n=3, exclude=np.array([1]))[0].tolist() == [3, 0, 2]

    def test_it_refuses_features_of_another_catalogue(self, board):
        with pytest.raises(ValueError, match="column order"):
            LightFMHybridRecommender(item_features=parity_features(SIZE + 1), epochs=1).fit(board)

    def test_a_new_item_with_a_genre_is_recommended_to_the_users_of_that_genre(self):
        # item 49 (odd: genre 1) has no interaction at all; its genre is all the model knows of it
        board = checker_board().tolil()
        board[:, SIZE - 1] = 0
        board = board.tocsr()
        board.eliminate_zeros()
        assert board[:, SIZE - 1].nnz == 0
        model = small_hybrid(epochs=30).fit(board)
        new = SIZE - 1
        for user in range(1, SIZE - 1, 2):  # odd users: above every item of the other genre
            ids, _ = model.recommend(user, board[user], n=SIZE)
            rank = ids.tolist().index(new)
            assert all(item % 2 == 1 for item in ids[:rank]), f"user {user}: {ids[:rank + 1]}"
        for user in range(0, SIZE, 2):  # even users: below every item of their own genre
            ids, _ = model.recommend(user, board[user], n=SIZE)
            assert all(item % 2 == 1 for item in ids[ids.tolist().index(new):]), f"user {user}: {ids}"
        plain = small_lightfm(epochs=30).fit(board)  # without the genre: nothing says which users it is for
        odd_ranks = [plain.recommend(u, board[u], n=SIZE)[0].tolist().index(new) for u in range(1, SIZE - 1, 2)]
        assert max(odd_ranks) > 1


class TestBlendRecommender(RecommenderContract, FoldsInFromTheCurrentHistory):
    def make_model(self) -> RecommenderBase:
        return BlendRecommender(components=[EASERecommender(regularization=10.0), small_lightfm()], weights=[0.5, 0.5])

    def test_scores_are_the_weighted_sum_of_the_normalised_scores(self, fitted, board):
        ease, lightfm = fitted._state.components
        expected = 0.5 * normalised(ease.score_items(np.array([2]))) + 0.5 * normalised(lightfm.score_items(np.array([2])))
        np.testing.assert_allclose(fitted.score_items(np.array([2])), expected, rtol=1e-5)

    def test_refitting_never_touches_the_components_it_was_built_with(self, board):
        prototype = EASERecommender(regularization=10.0)
        BlendRecommender(components=[prototype, small_lightfm()], weights=[1, 1]).fit(board)
        assert not prototype.is_fitted

    def test_it_refuses_weights_that_do_not_match_its_components(self):
        with pytest.raises(ValueError, match="one non-negative number per component"):
            BlendRecommender(components=[EASERecommender()], weights=[0.5, 0.5])


class TestNormalised:
    def test_each_row_has_mean_0_and_deviation_1_over_its_finite_scores(self):
        scores = np.array([[1.0, 2.0, 3.0, -np.inf], [5.0, 5.0, 5.0, 5.0]], dtype=np.float32)
        out = normalised(scores)
        np.testing.assert_allclose(out[0, :3], [-1.2247449, 0.0, 1.2247449], rtol=1e-5)
        assert np.isneginf(out[0, 3]) and np.all(out[1] == 0.0)


class TestBestK:
    @pytest.mark.parametrize("seed", range(40))
    def test_it_finds_the_k_largest_scores_whatever_the_ties(self, seed):
        rng = np.random.default_rng(seed)
        n, k = int(rng.integers(1, 40_000)), int(rng.integers(1, 120))
        scores = rng.normal(size=n).astype(np.float32)
        if seed % 3 == 0:
            scores = np.round(scores, 1)  # many ties
        if seed % 4 == 0:
            scores[rng.integers(0, n, n // 2)] = -np.inf  # excluded items
        best = best_k(scores, k)
        assert len(set(best.tolist())) == len(best) == min(k, n)
        assert np.array_equal(np.sort(scores[best]), np.sort(scores)[-min(k, n):])


class TestPopularityRecommender(RecommenderContract):
    def make_model(self) -> RecommenderBase:
        return PopularityRecommender()

    def test_it_answers_any_user_even_unseen_ones(self, fitted):
        expected, _ = fitted.popular(n=5)
        for user in (None, 10**6, -3):
            ids, _ = fitted.recommend(user, n=5)
            assert ids.tolist() == expected.tolist()

    def test_it_sums_weights_or_counts_users(self):
        matrix = sp.csr_matrix(np.array([[5, 1], [0, 1], [0, 1]], dtype=np.float32))
        assert PopularityRecommender(use_weights=True).fit(matrix).popular(n=1)[0].tolist() == [0]
        assert PopularityRecommender(use_weights=False).fit(matrix).popular(n=1)[0].tolist() == [1]

    def test_similar_items_are_co_occurrence_cosines_in_0_1(self):
        matrix = sp.csr_matrix(np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1]], dtype=np.float32))
        ids, scores = PopularityRecommender().fit(matrix).similar_items(0, n=5)
        assert ids.tolist() == [1, 2]
        np.testing.assert_allclose(scores, [2 / np.sqrt(3 * 2), 1 / np.sqrt(3 * 1)], rtol=1e-6)


class FixedRecommender(RecommenderBase):
    """A test double that always proposes the same items (minus the filtered ones)."""

    name = "fixed"

    def __init__(self, items: list[int]) -> None:
        super().__init__()
        self.items = items

    def fit(self, interactions, *, show_progress=False):
        matrix = sp.csr_matrix(interactions, dtype=np.float32)
        self._state = type("State", (), {"seen": FittedMatrix.of(matrix, use_weights=False)})()
        return self

    def _user_scores(self, state, userid, user_items, recalculate_user):
        scores = np.full(state.seen.matrix.shape[1], -np.inf, dtype=np.float32)  # -inf: never returned
        scores[self.items] = np.arange(len(self.items), 0, -1)
        return scores

    def score_items(self, userids):
        return np.stack([self._user_scores(self._state, u, None, False) for u in userids])

    def similar_items(self, itemid, n=10):
        raise NotImplementedError


class TestFallbackChain:
    @pytest.fixture
    def matrix(self) -> sp.csr_matrix:
        rows = np.array([[1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=np.float32)
        rows[:, 3] = [1, 1, 0]  # item 3 is the most popular after 1
        return sp.csr_matrix(rows)

    def test_it_takes_from_the_first_then_fills_up_to_n_from_the_next(self, matrix):
        chain = FallbackChain([FixedRecommender([4, 5]).fit(matrix), PopularityRecommender().fit(matrix)])
        results = chain.recommend(UserQuery(row=0, items=matrix[0].indices), n=4)  # user 0 has items 0, 1, 3: 2, 4, 5 are left
        assert [(item, source) for item, _, source in results] == [(4, "fixed"), (5, "fixed"), (2, "popularity")]

    def test_it_never_repeats_an_item_nor_returns_one_the_user_has(self, matrix):
        chain = FallbackChain([FixedRecommender([3, 4, 1]).fit(matrix), PopularityRecommender().fit(matrix)])
        results = chain.recommend(UserQuery(row=1, items=matrix[1].indices), n=6)
        items = [item for item, _, _ in results]
        assert len(items) == len(set(items))
        assert not set(items) & set(matrix[1].indices)
        assert sorted(items) == [0, 4, 5]

    def test_it_never_returns_filtered_items(self, matrix):
        chain = FallbackChain([PopularityRecommender().fit(matrix)])
        items = [item for item, _, _ in chain.recommend(UserQuery(row=2, items=matrix[2].indices), n=6,
                                                                  filter_items=np.array([1, 3]))]
        assert 1 not in items and 3 not in items and len(items) == 4

    def test_it_falls_back_to_popular_items_for_a_new_user(self, board):
        lightfm = small_lightfm().fit(board)
        popularity = PopularityRecommender().fit(board)
        chain = FallbackChain([lightfm, popularity])
        for user in (None, SIZE + 10):
            results = chain.recommend(UserQuery(row=user), n=5)
            assert [source for _, _, source in results] == ["popularity"] * 5
            assert [item for item, _, _ in results] == popularity.popular(n=5)[0].tolist()

    def test_it_uses_lightfm_first_for_a_known_user(self, board):
        chain = FallbackChain([small_lightfm().fit(board), PopularityRecommender().fit(board)])
        results = chain.recommend(UserQuery(row=8, items=board[8].indices), n=3)
        assert results[0][:1] == (8,) and {source for _, _, source in results} == {"lightfm"}

    def test_it_skips_a_recommender_that_is_not_fitted(self, matrix):
        chain = FallbackChain([small_lightfm(), PopularityRecommender().fit(matrix)])
        assert {source for _, _, source in chain.recommend(UserQuery(row=0, items=matrix[0].indices), n=2)} == {"popularity"}

    def test_it_skips_lightfm_for_a_user_without_interactions(self, matrix):
        chain = FallbackChain([small_lightfm(epochs=1).fit(matrix), PopularityRecommender().fit(matrix)])
        assert {source for _, _, source in chain.recommend(UserQuery(row=2, items=matrix[2].indices), n=3)} == {"popularity"}


class TestMakeRecommender:
    @pytest.mark.parametrize("engine,cls", [("lightfm", LightFMRecommender), ("lightfm_hybrid", LightFMHybridRecommender),
                                            ("ease", EASERecommender), ("als", ALSRecommender), ("bpr", BPRRecommender),
                                            ("popularity", PopularityRecommender)])
    def test_it_builds_every_engine_by_name(self, engine, cls):
        assert type(make_recommender(engine)) is cls

    def test_it_builds_a_blend_of_named_components(self, board):
        model = make_recommender("blend", components=["ease", {"engine": "lightfm", "params": {"epochs": 5}}],
                                 weights=[0.3, 0.7])
        assert isinstance(model, BlendRecommender) and model.components[1].epochs == 5
        assert model.fit(board).recommend(0, board[0], n=3)[0].size == 3

    @pytest.mark.parametrize("engine,params,message", [
        ("svd", {}, "unknown engine 'svd'"),
        ("ease", {"lambda_": 3}, "bad parameters for engine 'ease'"),
        ("ease", {"regularization": -1}, "positive lambda"),
        ("als", {"factors": 0}, "at least 1"),
        ("blend", {"components": ["ease", "nope"]}, "unknown engine 'nope'"),
        ("blend", {"components": ["ease"], "weights": [1, 2]}, "one non-negative number per component"),
        ("blend", {"components": ["ease"], "extra": 1}, "not extra"),
    ])
    def test_an_unknown_engine_or_bad_parameters_raise_value_error(self, engine, params, message):
        with pytest.raises(ValueError, match=message):
            make_recommender(engine, **params)

    def test_it_builds_lightfm_with_the_service_defaults(self):
        model = make_recommender(num_threads=1)
        assert isinstance(model, LightFMRecommender)
        assert model.no_components == SERVICE_DEFAULTS["no_components"]
        assert model.use_weights == SERVICE_DEFAULTS["use_weights"]

    def test_it_falls_back_to_popularity_with_a_warning_without_lightfm(self, monkeypatch, caplog, board):
        monkeypatch.setitem(sys.modules, "lightfm", None)  # `import lightfm` now raises ImportError
        with caplog.at_level(logging.WARNING, logger=engine.__name__):
            model = make_recommender()
        assert isinstance(model, PopularityRecommender)
        assert "pip install lightfm-next" in caplog.text
        assert model.fit(board).recommend(None, n=3)[0].size == 3

    def test_lightfm_fit_says_how_to_install_it_when_it_is_missing(self, monkeypatch, board):
        monkeypatch.setitem(sys.modules, "lightfm", None)
        with pytest.raises(ImportError, match="pip install lightfm-next"):
            small_lightfm().fit(board)

    def test_the_module_imports_without_lightfm(self):
        code = ("import sys; sys.modules['lightfm'] = None; import ai.recommendation_engine as e; "
                "print(e.lightfm_available(), type(e.make_recommender()).__name__)")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
        assert done.stdout.split() == ["False", "PopularityRecommender"]
