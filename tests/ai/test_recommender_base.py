"""What ai/recommender_base.py's FactorModelBase adds to every factor model's state: user factors stored as float16
unit directions and float32 lengths (half the memory), read as float32, ranking as the float32 factors do. The
contract itself is in tests/ai/test_recommendation_engine.py."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ai.lightfm_model import LightFMRecommender
from ai.recommender_base import USER_FACTOR_DTYPE, FactorModelBase, FactorState, norms, stored_user_factors

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


def as_saved_before_float16(model: FactorModelBase, embeddings: np.ndarray) -> None:
    """Give `model` the fitted state a file saved before float16 storage holds once unpickled: float32
    user_factors ([embedding, 1.0]) and their lengths, no user_directions."""
    fields = {k: v for k, v in vars(model._fitted()).items() if k != "user_directions"}
    fields["user_factors"] = np.hstack([embeddings, np.ones((embeddings.shape[0], 1), np.float32)])
    fields["user_norms"] = norms(embeddings)
    old = object.__new__(FactorState)
    old.__dict__.update(fields)
    model._state = old


def float32_scores(planted) -> np.ndarray:
    _, users, items, biases = planted
    return users @ items.T + biases


def test_user_factors_are_stored_as_read_only_float16_unit_directions_and_float32_lengths(model, planted):
    state = model._fitted()
    directions, lengths = state.user_directions, state.user_norms
    assert directions.dtype == USER_FACTOR_DTYPE == np.float16 and directions.shape == (USERS, 32 + 1)
    assert directions.flags.c_contiguous and not directions.flags.writeable and not lengths.flags.writeable
    assert np.all(directions[:, -1] == 1.0) and lengths.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(directions[:, :-1].astype(np.float32), axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(model.user_factors[:, :-1], planted[1], rtol=1e-3, atol=1e-6)
    assert model.user_factors.dtype == model.item_factors.dtype == np.float32  # the big product stays float32


def test_a_tiny_embedding_keeps_its_precision():
    # ALS shrinks users of few interactions to such lengths: raw float16 would keep 3 bits of these, or none
    tiny = np.array([[3e-6, -1e-6, 2e-7], [0.0, 0.0, 0.0]], dtype=np.float32)
    directions, lengths = stored_user_factors(tiny)
    np.testing.assert_allclose(directions[:, :-1].astype(np.float32) * lengths[:, None], tiny, rtol=1e-3, atol=0)


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
    assert same >= 0.99 * USERS  # all 1000 here (999 with raw float16 rows)
    assert worst < 1e-2  # 8e-4 here, on scores spread over [-7, 7]


def test_similar_users_are_the_cosines_of_the_learned_vectors(model, planted):
    ids, sims = model.similar_users(3, n=10)
    users = planted[1]
    cosines = users @ users[3] / (np.linalg.norm(users, axis=1) * np.linalg.norm(users[3]))
    np.testing.assert_allclose(sims, (cosines[ids] + 1) / 2, atol=1e-3)
    assert set(ids.tolist()) >= set(np.argsort(-cosines)[1:6].tolist())  # the five closest, at least


def test_a_model_saved_with_float32_user_factors_loads_with_float16_directions(model, planted, tmp_path):
    expected = [model.recommend(user, n=10)[0].tolist() for user in range(0, USERS, 97)]
    old = LightFMRecommender()
    old._state = model._fitted()
    as_saved_before_float16(old, planted[1])
    old.save(tmp_path / "old.joblib")
    loaded = LightFMRecommender.load(tmp_path / "old.joblib")
    state = loaded._fitted()
    assert "user_factors" not in vars(state) and not state.user_directions.flags.writeable
    np.testing.assert_array_equal(state.user_directions, model._fitted().user_directions)
    np.testing.assert_array_equal(state.user_norms, model._fitted().user_norms)
    assert [loaded.recommend(user, n=10)[0].tolist() for user in range(0, USERS, 97)] == expected
