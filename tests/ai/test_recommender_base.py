"""What ai/recommender_base.py's FactorModelBase adds to every factor model's state: user factors stored as
float16 (half the memory), read as float32, ranking as the float32 factors do. The contract itself is in
tests/ai/test_recommendation_engine.py."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp

from ai.lightfm_model import LightFMRecommender
from ai.recommender_base import USER_FACTOR_DTYPE, norms, readonly, stored_user_factors

USERS, ITEMS, PER_USER = 1000, 800, 30


@pytest.fixture(scope="module")
def planted():
    """1000 users who each pick 30 of 800 items by a planted 6-dimensional taste plus a Zipf popularity, and the
    float32 factors LightFM (WARP, 32 components) learns from them: (matrix, user embeddings, item embeddings,
    item biases)."""
    from lightfm import LightFM

    rng = np.random.default_rng(7)
    logits = rng.normal(size=(USERS, 6)) @ rng.normal(size=(ITEMS, 6)).T
    logits += np.log(rng.zipf(1.5, ITEMS).clip(max=50))[None, :]
    rows, cols = [], []
    for user in range(USERS):
        p = np.exp(logits[user] - logits[user].max())
        cols.extend(rng.choice(ITEMS, size=PER_USER, replace=False, p=p / p.sum()).tolist())
        rows.extend([user] * PER_USER)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(USERS, ITEMS))
    lfm = LightFM(no_components=32, loss="warp", random_state=42)
    lfm.fit(matrix.tocoo(), epochs=15, num_threads=1)
    return matrix, lfm.user_embeddings.copy(), lfm.item_embeddings.copy(), lfm.item_biases.copy()


@pytest.fixture(scope="module")
def model(planted) -> LightFMRecommender:
    matrix, users, items, biases = planted
    model = LightFMRecommender()
    model._state = LightFMRecommender._factor_state(matrix, users, items, biases)
    return model


def float32_scores(planted) -> np.ndarray:
    _, users, items, biases = planted
    return users @ items.T + biases


def test_user_factors_are_stored_as_read_only_c_contiguous_float16_rows_ending_in_one(model, planted):
    stored = model.user_factors
    assert stored.dtype == USER_FACTOR_DTYPE == np.float16 and stored.shape == (USERS, 32 + 1)
    assert stored.flags.c_contiguous and not stored.flags.writeable
    assert np.all(stored[:, -1] == 1.0)
    np.testing.assert_allclose(stored[:, :-1], planted[1], rtol=2.0 ** -11, atol=2.0 ** -24)
    assert model.item_factors.dtype == np.float32  # the big product stays float32


def test_a_users_vector_is_read_as_float32_and_scores_as_recommend_does(model):
    vector = model.user_vector(5)
    assert vector.dtype == np.float32 and vector.shape == (33,)
    ids, scores = model.recommend(5, n=10)
    np.testing.assert_allclose(scores, model.item_factors[ids] @ vector, rtol=1e-6)
    bulk = model.score_items(np.array([5, 9]))
    assert bulk.dtype == np.float32
    np.testing.assert_allclose(bulk[0, ids], scores, rtol=1e-6)


def test_float16_user_factors_rank_the_top_10_as_the_float32_ones_for_99_percent_of_users(model, planted):
    matrix = planted[0]
    reference = float32_scores(planted)
    same, worst = 0, 0.0
    for user in range(USERS):
        wanted = reference[user].copy()
        wanted[matrix[user].indices] = -np.inf
        ids, scores = model.recommend(user, n=10)
        same += set(ids.tolist()) == set(np.argsort(-wanted, kind="stable")[:10].tolist())
        worst = max(worst, float(np.abs(scores - reference[user, ids]).max()))
    assert same >= 0.99 * USERS  # 999 of 1000 here; the one that moves swaps a near-tie at rank 10
    assert worst < 1e-2  # 8e-4 here, on scores spread over [-7, 7]


def test_similar_users_are_the_cosines_of_the_stored_vectors(model, planted):
    ids, sims = model.similar_users(3, n=10)
    users = planted[1]
    cosines = users @ users[3] / (np.linalg.norm(users, axis=1) * np.linalg.norm(users[3]))
    np.testing.assert_allclose(sims, (cosines[ids] + 1) / 2, atol=1e-3)
    assert set(ids.tolist()) >= set(np.argsort(-cosines)[1:6].tolist())  # the five closest, at least
    assert model._fitted().user_norms.dtype == np.float32


def test_user_factors_beyond_float16_range_stay_float32():
    big = np.array([[1e5, 1.0], [2.0, -3.0]], dtype=np.float32)
    factors, lengths = stored_user_factors(big)
    assert factors.dtype == np.float32 and np.isfinite(factors).all()
    np.testing.assert_allclose(lengths, norms(big))


def test_a_model_saved_with_float32_user_factors_loads_with_float16_ones(model, planted, tmp_path):
    state = model._fitted()
    old = LightFMRecommender()
    old._state = replace(state, user_factors=readonly(np.hstack([planted[1], np.ones((USERS, 1), np.float32)])),
                         user_norms=readonly(norms(planted[1])))
    old.save(tmp_path / "old.joblib")
    loaded = LightFMRecommender.load(tmp_path / "old.joblib")
    assert loaded.user_factors.dtype == np.float16 and not loaded.user_factors.flags.writeable
    np.testing.assert_array_equal(loaded.user_factors, state.user_factors)
    np.testing.assert_array_equal(loaded._fitted().user_norms, state.user_norms)
    assert loaded.recommend(7, n=10)[0].tolist() == old.recommend(7, n=10)[0].tolist()
