"""ai/cold_items.py: factors of new items from their genres, with any factor model."""
import numpy as np
import scipy.sparse as sp

from ai.cold_items import ColdItems, ColdStartLink
from ai.recommendation_engine import FallbackChain, LightFMRecommender, RecommenderLink, UserQuery


def _two_genre_world():
    """20 users: the first 10 like items 0-4 (thrillers), the others items 5-9 (comedies)."""
    rows, cols = [], []
    for u in range(20):
        for i in (range(5) if u < 10 else range(5, 10)):
            rows.append(u)
            cols.append(i)
    matrix = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(20, 10))
    model = LightFMRecommender(no_components=8, epochs=40, random_state=1, num_threads=1).fit(matrix)
    genres = [["Thriller"]] * 5 + [["Comedy"]] * 5
    return matrix, model, genres


def test_a_new_item_is_ranked_first_for_users_of_its_genre():
    matrix, model, genres = _two_genre_world()
    cold = ColdItems(model, genres, ["new-thriller", "new-comedy", "new-opera"], [["thriller"], ["Comedy"], ["Opera"]])
    assert cold.has_factors.tolist() == [True, True, False]  # no trained item is an opera
    for user, mine in ((0, 0), (15, 1)):
        scores = cold.scores(model.user_factors[user])
        assert int(np.argmax(scores)) == mine and scores[2] == -np.inf


def test_the_link_merges_new_items_into_the_personalised_ranking():
    matrix, model, genres = _two_genre_world()
    cold = ColdItems(model, genres, ["new-thriller", "new-comedy"], [["Thriller"], ["Comedy"]])
    link = ColdStartLink(RecommenderLink(model, name="personalised"), cold)
    # a user who has seen 4 of the 5 thrillers: the fifth and the new thriller are their best
    user = UserQuery(key="x", items=np.array([0, 1, 2, 3]), changed=True)
    link.inner.fold_in = True
    ranked = FallbackChain([link]).recommend(user, n=3)
    assert {column for column, _, _ in ranked[:2]} == {4, 10}  # column 10: the new thriller
    excluded = FallbackChain([link]).recommend(user, n=3, filter_items=np.array([10]))
    assert 10 not in [column for column, _, _ in excluded]


def test_similar_items_of_a_trained_item_are_new_items_of_its_genre():
    matrix, model, genres = _two_genre_world()
    cold = ColdItems(model, genres, ["new-thriller", "new-comedy"], [["Thriller"], ["Comedy"]])
    ids, _ = cold.similar(0, 1)
    assert ids.tolist() == [10]
    ids, _ = cold.similar(11, 3)  # the new comedy's neighbours: comedies
    assert set(ids.tolist()) <= set(range(5, 10))
