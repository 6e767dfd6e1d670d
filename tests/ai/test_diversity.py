"""ai/diversity.py: maximal marginal relevance."""
import numpy as np
import pytest

from ai.diversity import genre_similarity, intra_list_diversity, mmr_order, pool_size, similarity_matrix


def _clustered_pool():
    """Ten thrillers first (alike), then five comedies and five dramas."""
    genres = [frozenset({"thriller"})] * 10 + [frozenset({"comedy"})] * 5 + [frozenset({"drama"})] * 5
    return genres, similarity_matrix(None, genres)


def test_diversity_zero_keeps_the_pools_order():
    _, sims = _clustered_pool()
    assert mmr_order(sims, 10, 0.0) == list(range(10))


def test_diversity_one_gives_more_distinct_genres():
    genres, sims = _clustered_pool()
    plain = {g for i in range(10) for g in genres[i]}
    diverse = {g for i in mmr_order(sims, 10, 1.0) for g in genres[i]}
    assert plain == {"thriller"} and diverse == {"thriller", "comedy", "drama"}
    assert mmr_order(sims, 10, 1.0)[0] == 0  # the best item first


def test_higher_diversity_never_lowers_intra_list_diversity_here():
    _, sims = _clustered_pool()
    values = [intra_list_diversity(sims[np.ix_(o, o)]) for o in (mmr_order(sims, 10, d) for d in (0, .5, 1))]
    assert values == sorted(values) and values[0] == 0.0 and values[-1] > 0.3


def test_similarity_averages_embeddings_and_genres_where_both_are_known():
    embeddings = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    sims = similarity_matrix(embeddings, [frozenset({"a"}), frozenset({"b"}), None])
    assert sims[0, 1] == pytest.approx(0.5)  # cosine 1, jaccard 0
    assert sims[0, 2] == pytest.approx(0.0)  # cosine 0; genres unknown for item 2
    jaccard, known = genre_similarity([{"a", "b"}, {"b", "c"}])
    assert jaccard[0, 1] == pytest.approx(1 / 3) and known.all()


def test_bad_diversity_and_pool_sizes():
    with pytest.raises(ValueError):
        mmr_order(np.zeros((2, 2)), 1, 1.5)
    assert pool_size(10, 1000) == 50 and pool_size(20, 1000) == 80 and pool_size(10, 30) == 30
    assert intra_list_diversity(np.zeros((1, 1))) == 0.0
