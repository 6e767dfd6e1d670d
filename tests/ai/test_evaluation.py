"""Metrics at their limits, one hand-computed case each, the split's guarantees, and evaluate()."""
from __future__ import annotations


import numpy as np
import pytest
import scipy.sparse as sp

from ai.evaluation import (
    auc,
    catalogue_coverage,
    evaluate,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    train_test_split_per_user,
)
from ai.recommendation_engine import LightFMRecommender, PopularityRecommender

METRICS = (precision_at_k, recall_at_k, ndcg_at_k)


def relevance(rows: list[list[int]], n_items: int = 20) -> sp.csr_matrix:
    data = [(u, i) for u, items in enumerate(rows) for i in items]
    users, items = zip(*data) if data else ((), ())
    return sp.csr_matrix((np.ones(len(data)), (users, items)), shape=(len(rows), n_items))


class OracleModel(PopularityRecommender):
    """Scores the given matrix's items 1.0 and everything else 0.0 (a perfect ranker for it)."""

    def __init__(self, truth: sp.csr_matrix) -> None:
        super().__init__()
        self.truth = truth

    def score_items(self, userids):
        return self.truth[userids].toarray().astype(np.float32)


class TestRankingMetrics:
    @pytest.mark.parametrize("metric", METRICS)
    def test_a_perfect_ranking_scores_1(self, metric):
        recommended = np.array([[0, 1, 2], [5, 6, 7]])
        assert metric(recommended, relevance([[0, 1, 2], [7, 6, 5]]), k=3) == pytest.approx(1.0)

    @pytest.mark.parametrize("metric", METRICS)
    def test_no_hit_scores_0(self, metric):
        recommended = np.array([[0, 1, 2], [5, 6, 7]])
        assert metric(recommended, relevance([[3, 4], [8]]), k=3) == 0.0

    def test_precision_is_hits_over_k(self):
        # user 0: ranks 2 and 4 hit out of k=4 -> 2/4
        assert precision_at_k(np.array([[3, 1, 7, 5]]), relevance([[1, 5, 9]]), k=4) == pytest.approx(0.5)

    def test_recall_is_hits_over_the_relevant_count(self):
        assert recall_at_k(np.array([[3, 1, 7, 5]]), relevance([[1, 5, 9]]), k=4) == pytest.approx(2 / 3)

    def test_ndcg_discounts_by_log2_of_the_rank_against_the_ideal(self):
        dcg = 1 / np.log2(3) + 1 / np.log2(5)  # hits at ranks 2 and 4
        ideal = 1 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)  # 3 relevant items, k = 4
        got = ndcg_at_k(np.array([[3, 1, 7, 5]]), relevance([[1, 5, 9]]), k=4)
        assert got == pytest.approx(dcg / ideal) and got == pytest.approx(0.498189, abs=1e-6)

    def test_precision_cannot_reach_1_with_fewer_relevant_items_than_k(self):
        assert precision_at_k(np.array([[1, 2, 3, 4]]), relevance([[1]]), k=4) == pytest.approx(0.25)
        assert ndcg_at_k(np.array([[1, 2, 3, 4]]), relevance([[1]]), k=4) == pytest.approx(1.0)

    def test_users_without_relevant_items_are_skipped(self):
        recommended = np.array([[0, 1], [2, 3]])
        assert precision_at_k(recommended, relevance([[0, 1], []]), k=2) == pytest.approx(1.0)
        assert precision_at_k(recommended, relevance([[], []]), k=2) == 0.0

    def test_padding_and_short_rows_count_as_misses(self):
        assert precision_at_k(np.array([[4, -1, -1]]), relevance([[4, 5]]), k=3) == pytest.approx(1 / 3)
        assert recall_at_k(np.array([[4]]), relevance([[4, 5]]), k=3) == pytest.approx(1 / 2)

    def test_it_wants_one_row_of_recommendations_per_user(self):
        with pytest.raises(ValueError, match="one row per row"):
            precision_at_k(np.array([[0, 1]]), relevance([[0], [1]]), k=2)


class TestAUC:
    def test_a_perfect_ranking_scores_1_and_a_reversed_one_0(self):
        scores = np.array([[0.9, 0.8, 0.1, 0.0]])
        assert auc(scores, relevance([[0, 1]], n_items=4)) == 1.0
        assert auc(-scores, relevance([[0, 1]], n_items=4)) == 0.0

    def test_ties_count_one_half(self):
        assert auc(np.zeros((1, 4)), relevance([[0]], n_items=4)) == pytest.approx(0.5)

    def test_a_hand_computed_case(self):
        # positive 1 (0.5) beats negatives 0.2 and 0.1 but not 0.9: 2 of 3 pairs
        scores = np.array([[0.9, 0.5, 0.2, 0.1]])
        assert auc(scores, relevance([[1]], n_items=4)) == pytest.approx(2 / 3)

    def test_excluded_items_are_neither_positive_nor_negative(self):
        scores = np.array([[0.9, 0.5, 0.2, 0.1]])
        assert auc(scores, relevance([[1]], n_items=4), exclude=relevance([[0]], n_items=4)) == 1.0

    def test_it_averages_per_user(self):
        scores = np.array([[0.9, 0.1], [0.9, 0.1]])
        assert auc(scores, relevance([[0], [1]], n_items=2)) == pytest.approx(0.5)


    def test_it_equals_the_rank_sum_over_sorted_rows_with_ties_and_exclusions(self):
        from scipy.stats import rankdata

        rng = np.random.default_rng(7)
        for trial in range(20):
            n_users, n_items = int(rng.integers(1, 40)), int(rng.integers(3, 300))
            scores = np.round(rng.normal(size=(n_users, n_items)), trial % 3)
            rel = sp.random(n_users, n_items, density=0.08, format="csr", random_state=trial)
            exclude = sp.random(n_users, n_items, density=0.08, format="csr", random_state=trial + 99)
            rel.data[:], exclude.data[:] = 1.0, 1.0
            rel = (rel - rel.multiply(exclude)).tocsr()
            masked = scores.copy()
            masked[exclude.nonzero()] = -np.inf
            ranks = rankdata(masked, axis=1) - np.diff(exclude.indptr)[:, None]
            n_pos = np.diff(rel.indptr)
            n_neg = n_items - np.diff(exclude.indptr) - n_pos
            rank_sums = np.asarray(rel.multiply(ranks).sum(axis=1)).ravel()
            with np.errstate(divide="ignore", invalid="ignore"):
                per_user = (rank_sums - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
            expected = float(np.nanmean(np.where((n_pos > 0) & (n_neg > 0), per_user, np.nan))) \
                if ((n_pos > 0) & (n_neg > 0)).any() else None
            if expected is not None:
                assert auc(scores, rel, exclude=exclude) == pytest.approx(expected, abs=1e-12)


class TestCatalogueCoverage:
    def test_it_is_the_share_of_items_recommended_to_someone(self):
        assert catalogue_coverage(np.array([[0, 1], [1, 2]]), n_items=6) == pytest.approx(0.5)

    def test_it_reaches_1_when_every_item_is_recommended_and_0_for_empty_lists(self):
        assert catalogue_coverage(np.array([[0, 1], [2, 3]]), n_items=4) == 1.0
        assert catalogue_coverage(np.full((2, 3), -1), n_items=4) == 0.0


class TestTrainTestSplitPerUser:
    @pytest.fixture
    def interactions(self) -> sp.csr_matrix:
        rng = np.random.default_rng(1)
        matrix = sp.random(60, 80, density=0.2, format="csr", random_state=rng, dtype=np.float32)
        matrix.data[:] = rng.integers(1, 6, matrix.nnz)
        matrix = matrix.tolil()
        matrix[0] = 0
        matrix[0, 3] = 4.0  # a user with a single item
        return matrix.tocsr()

    def test_it_partitions_the_interactions_with_their_weights(self, interactions):
        train, test = train_test_split_per_user(interactions)
        assert (train + test != interactions).nnz == 0
        assert train.multiply(test).nnz == 0

    def test_every_user_holds_out_a_quarter_but_keeps_one_in_train(self, interactions):
        train, test = train_test_split_per_user(interactions, test_fraction=0.25)
        counts = np.diff(interactions.indptr)
        n_test, n_train = np.diff(test.indptr), np.diff(train.indptr)
        for user in np.flatnonzero(counts >= 2):
            assert n_test[user] == max(1, min(int(np.floor(0.25 * counts[user] + 0.5)), counts[user] - 1))
            assert n_train[user] >= 1
        assert n_test[0] == 0 and n_train[0] == 1  # too few items to split

    def test_it_holds_out_one_of_two_items_even_for_a_small_fraction(self):
        train, test = train_test_split_per_user(relevance([[1, 2]]), test_fraction=0.1)
        assert train.nnz == 1 and test.nnz == 1

    def test_the_same_seed_gives_the_same_split(self, interactions):
        first, second = train_test_split_per_user(interactions, seed=3), train_test_split_per_user(interactions, seed=3)
        other = train_test_split_per_user(interactions, seed=4)
        assert (first[1] != second[1]).nnz == 0 and (first[1] != other[1]).nnz > 0

    def test_it_refuses_a_fraction_outside_0_1(self, interactions):
        with pytest.raises(ValueError, match="strictly between 0 and 1"):
            train_test_split_per_user(interactions, test_fraction=1.0)


class TestEvaluate:
    def test_a_perfect_model_scores_1_and_reports_every_field(self):
        train = relevance([[0, 1], [2, 3]], n_items=8)
        test = relevance([[4, 5], [6]], n_items=8)
        result = evaluate(OracleModel(test).fit(train + test), train, test, k=2)
        assert result == {
            "precision_at_k": pytest.approx(0.75),  # user 1 has a single test item: 1/2
            "recall_at_k": 1.0, "ndcg_at_k": pytest.approx(1.0), "auc": 1.0,
            "coverage": pytest.approx(4 / 8), "k": 2, "users_evaluated": 2,
        }

    def test_it_never_counts_training_items_as_recommendations(self):
        train = relevance([[0, 1]], n_items=6)
        test = relevance([[2]], n_items=6)
        model = OracleModel(train * 2 + test).fit(train + test)  # ranks its train items above the test one
        assert evaluate(model, train, test, k=1)["precision_at_k"] == 1.0

    def test_users_without_test_items_are_skipped(self):
        train = relevance([[0, 1], [2, 3], [4]], n_items=6)
        test = relevance([[5], [], []], n_items=6)
        assert evaluate(OracleModel(test).fit(train + test), train, test, k=3)["users_evaluated"] == 1

    def test_it_agrees_with_lightfms_own_evaluation(self):
        from lightfm.evaluation import auc_score
        from lightfm.evaluation import precision_at_k as lightfm_precision

        rng = np.random.default_rng(5)
        matrix = sp.random(80, 60, density=0.15, format="csr", random_state=rng, dtype=np.float32)
        matrix.data[:] = 1.0
        train, test = train_test_split_per_user(matrix, seed=1)
        model = LightFMRecommender(no_components=8, epochs=5, num_threads=1).fit(train)
        result = evaluate(model, train, test, k=5)
        # rebuild the equivalent LightFM model from the factors to score it with lightfm.evaluation
        from lightfm import LightFM

        reference = LightFM(no_components=8)
        reference.fit(sp.coo_matrix(train), epochs=1)
        reference.user_embeddings[:] = model.user_factors[:, :-1]
        reference.item_embeddings[:] = model.item_factors[:, :-1]
        reference.item_biases[:] = model.item_factors[:, -1]
        reference.user_biases[:] = 0.0
        # lightfm.evaluation also averages over the users with test items, excluding train items
        assert result["precision_at_k"] == pytest.approx(lightfm_precision(reference, test, train, k=5).mean())
        assert result["auc"] == pytest.approx(auc_score(reference, test, train).mean(), abs=1e-4)

    def test_it_evaluates_every_user_of_a_movielens_100k_sized_matrix(self):
        # its speed is bench/quality.py's to report (a timed unit test fails on a loaded machine)
        rng = np.random.default_rng(0)
        matrix = sp.random(943, 1682, density=0.063, format="csr", random_state=rng, dtype=np.float32)
        matrix.data[:] = 1.0
        train, test = train_test_split_per_user(matrix)
        model = PopularityRecommender().fit(train)
        result = evaluate(model, train, test, k=10)
        assert result["users_evaluated"] == 943
        assert 0.0 < result["precision_at_k"] <= 1.0

    def test_it_refuses_matrices_that_do_not_match_the_model(self):
        train = relevance([[0, 1]], n_items=6)
        with pytest.raises(ValueError, match="train_test_split_per_user"):
            evaluate(PopularityRecommender().fit(train), train, relevance([[2]], n_items=7))
