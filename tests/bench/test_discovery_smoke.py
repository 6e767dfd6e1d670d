"""bench/discovery.py end to end on its tiny synthetic data (--smoke): every measurement runs and has its fields.
No value is asserted beyond its bounds: the numbers mean something only on MovieLens (make bench-discovery)."""
import scipy.sparse as sp

from bench import discovery


def test_the_discovery_bench_runs_at_a_tiny_size():
    assert discovery.main(["--smoke"]) == 0
    data = discovery.synthetic_data()
    trending = discovery.trending_vs_popularity(data, max_cutoffs=3, min_users=1)
    assert trending["cutoffs"] >= 1 and all(0 <= v <= 1 for v in trending["p_at_10"].values())
    matrix = sp.csr_matrix((data["weights"], (data["users"], data["items"])), shape=(data["n_users"], data["n_items"]))
    curve = discovery.diversity_curve(matrix, data["genres"], epochs=2)["curve"]
    assert list(curve) == [str(d) for d in discovery.DIVERSITIES]
    assert all({"p_at_10", "intra_list_diversity", "distinct_genres_top10", "coverage"} <= set(v) for v in curve.values())
    cold = discovery.cold_items_auc(data, epochs=2, fraction=0.2)
    assert set(cold["auc"]) == {"cold factors (genres -> factors)", "genre popularity", "random"}
