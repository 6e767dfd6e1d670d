"""ai/trained_model.py: a trained model serves any user through its fallback chain (personalised, then
popular), by external ids."""
from __future__ import annotations

import pytest

from ai.recommender_base import UnknownItemError
from ai.trained_model import TrainedModel
from tests.ai.test_model_store import CT, build_trained


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return build_trained()


class TestServing:
    def test_a_known_user_gets_lightfm_items_never_ones_they_have(self, trained):
        results = trained.recommend("u0", n=5)
        assert len(results) == 5 and results[0][2] == "personalised"
        assert not {item for item, _, _ in results} & {"tt0000000", "tt0000001", "tt0000002"}
        assert all(isinstance(item, str) and isinstance(score, float) for item, score, _ in results)

    def test_an_unknown_or_anonymous_user_gets_popular_items(self, trained):
        for user in ("stranger", None):
            results = trained.recommend(user, n=3)
            assert [source for _, _, source in results] == ["popular"] * 3
            assert results[0][0] == "tt0000000"

    def test_excluded_ids_are_never_recommended(self, trained):
        excluded = {"tt0000000", "tt0000005", "not-in-the-model"}
        for user in ("u1", "stranger"):
            assert not {item for item, _, _ in trained.recommend(user, n=10, exclude=excluded)} & excluded

    def test_the_list_tops_up_to_n_from_popularity_without_repeats(self, trained):
        results = trained.recommend("u0", n=50)
        assert len(results) == 7  # 10 items minus the user's 3
        assert len({item for item, _, _ in results}) == 7

    def test_similar_items_are_external_ids_and_unknown_ids_raise(self, trained):
        similar = trained.similar_items("tt0000003", n=3)
        assert 0 < len(similar) <= 3 and all(item != "tt0000003" for item, _ in similar)
        with pytest.raises(UnknownItemError):
            trained.similar_items("tt9999999")

    def test_explain_names_items_of_the_users_history(self, trained):
        reasons = trained.explain("u0", "tt0000003", k=2)
        assert len(reasons) <= 2 and set(reasons) <= {"tt0000000", "tt0000001", "tt0000002"}
        assert trained.explain("stranger", "tt0000003") == []
        assert trained.explain("u0", "tt9999999") == []

    def test_similar_users_are_other_users(self, trained):
        similar = trained.similar_users("u0", n=3)
        assert len(similar) == 3 and all(user != "u0" and 0 <= score <= 1 for user, score in similar)

    def test_a_popularity_only_model_serves_and_explains_nothing(self, trained):
        fallback = TrainedModel(CT, trained.popularity, trained.popularity, trained.user_map, trained.item_map,
                                trained.matrix, trained.items, {})
        assert {source for _, _, source in fallback.recommend("u0", n=4)} == {"popular"}
        assert fallback.explain("u0", "tt0000003") == []

    def test_it_refuses_maps_that_do_not_match_the_matrix(self, trained):
        with pytest.raises(ValueError, match="len\\(user_map\\)"):
            TrainedModel(CT, trained.model, trained.popularity, {"u0": 0}, trained.item_map, trained.matrix,
                         trained.items, {})

    def test_item_ids_follow_the_columns(self, trained):
        assert trained.item_ids[3] == "tt0000003" and len(trained.item_ids) == 10
