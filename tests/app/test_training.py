"""app/services/training.py: how many epochs a training run fits with (LIGHTFM_EPOCH_BUDGET)."""
from app.services.training import epochs_for_run, lightfm_parameters

TYPES = ["movie", "anime", "track"]


def test_a_small_graph_keeps_the_tuned_epochs(settings):
    settings.LIGHTFM_EPOCH_BUDGET = 18_000_000
    counts = {"movie": 100_000, "anime": 0, "track": 0}  # a MovieLens-100k-sized graph
    assert epochs_for_run(interactions=counts, retrained=TYPES) == lightfm_parameters()["epochs"] == 60


def test_a_big_graph_gets_fewer_epochs_within_the_budget(settings):
    settings.LIGHTFM_EPOCH_BUDGET, settings.LIGHTFM_MIN_EPOCHS = 18_000_000, 2
    settings.MUSICBUD_REFIT_MAX_INTERACTIONS, settings.MUSICBUD_SELECT_FIT_INTERACTIONS = 250_000, 0
    counts = {"movie": 400_000, "anime": 200_000, "track": 100_000}
    epochs = epochs_for_run(interactions=counts, retrained=TYPES)
    # per epoch: every type once (400k + 200k + 100k), the two small ones again (refit), the taste model (700k)
    work = 700_000 + 300_000 + 700_000
    assert epochs == 18_000_000 // work == 10
    assert epochs * work <= 18_000_000


def test_a_sampled_type_counts_its_sample_per_candidate_one_full_fit_and_no_hybrid_over_its_cap(settings):
    settings.LIGHTFM_EPOCH_BUDGET, settings.LIGHTFM_MIN_EPOCHS = 18_000_000, 1
    settings.MUSICBUD_REFIT_MAX_INTERACTIONS, settings.MUSICBUD_SELECT_FIT_INTERACTIONS = 250_000, 50_000
    settings.MUSICBUD_CANDIDATES = ["lightfm", "lightfm_hybrid", "als"]
    settings.MUSICBUD_HYBRID_MAX_INTERACTIONS = 100_000
    counts = {"movie": 600_000, "anime": 40_000, "track": 0}
    # the taste model (640k); movie: LightFM on a 50k sample (the hybrid is left out over 100k), then the winner
    # on all 600k; anime (under both caps): the two LightFM candidates on all of it, then its refit
    work = 640_000 + (50_000 + 600_000) + (2 * 40_000 + 40_000)
    assert epochs_for_run(interactions=counts, retrained=TYPES) == 18_000_000 // work


def test_types_not_retrained_count_only_for_the_taste_model(settings):
    settings.LIGHTFM_EPOCH_BUDGET, settings.LIGHTFM_MIN_EPOCHS = 3_000_000, 1
    counts = {"movie": 100_000, "anime": 100_000, "track": 100_000}
    assert epochs_for_run(interactions=counts, retrained=["movie"]) == 3_000_000 // (300_000 + 200_000)


def test_it_never_goes_below_the_minimum_nor_scales_when_the_budget_is_off(settings):
    settings.LIGHTFM_EPOCH_BUDGET, settings.LIGHTFM_MIN_EPOCHS = 1_000, 5
    assert epochs_for_run(interactions={"movie": 10**6}, retrained=["movie"]) == 5
    settings.LIGHTFM_EPOCH_BUDGET = 0
    assert epochs_for_run(interactions={"movie": 10**6}, retrained=["movie"]) == 60


def test_lightfm_parameters_take_the_runs_epochs():
    assert lightfm_parameters(epochs=7)["epochs"] == 7
    assert lightfm_parameters()["epochs"] == 60


# --- model selection at every training (a real Neo4j, a small graph of two tribes) -------------------------------
import pytest  # noqa: E402

from app.content_types import BY_KEY  # noqa: E402
from app.services import training  # noqa: E402
from app.services.training_status import status_read  # noqa: E402


@pytest.fixture(scope="module")
def tribes_graph(neo4j):
    from app import graph
    from app.services import graph_writes

    graph.query("MATCH (n) DETACH DELETE n")
    movies = BY_KEY["movies"]
    genres = ["Action", "Romance"]
    graph_writes.items_upsert(content_type=movies, rows=[
        {"imdb_id": f"tt{i:07d}", "title": f"Movie {i}", "genres": str([genres[i % 2]]), "year": 1990 + i}
        for i in range(16)])
    users = [f"u{i}" for i in range(40)]
    graph_writes.users_upsert(rows=[{"uid": u, "username": f"user_{u}", "accounts": ["ImdbUser"]} for u in users])
    rows = []
    for n, user in enumerate(users):  # tribe = parity: 5 of the tribe's 8 movies, rotating
        tribe = [i for i in range(16) if i % 2 == n % 2]
        rows += [{"user_uid": user, "item_id": f"tt{tribe[(n + k) % 8]:07d}", "rel": "LIKES"} for k in range(5)]
    graph_writes.interactions_upsert(content_type=movies, rows=rows)
    return movies


def test_every_training_selects_among_the_candidates_and_the_held_out_part_never_reaches_it(
        tribes_graph, settings, tmp_path, monkeypatch):
    settings.MUSICBUD_MODEL_DIR = tmp_path
    settings.MUSICBUD_CANDIDATES = ["lightfm", "lightfm_hybrid", "ease", "als", "blend"]
    settings.MUSICBUD_SELECT_VALIDATION = 0.25
    seen = {}
    split, select = training.holdout_split, training.select_model

    def holdout_spy(matrix, **kwargs):
        seen["train"], seen["test"] = split(matrix, **kwargs)
        return seen["train"], seen["test"]

    def select_spy(*, train, **kwargs):
        seen["selected_on"] = train
        return select(train=train, **kwargs)

    monkeypatch.setattr(training, "holdout_split", holdout_spy)
    monkeypatch.setattr(training, "select_model", select_spy)
    trained = training.model_train(content_type=tribes_graph, epochs=10)
    assert seen["test"].nnz > 0
    assert seen["selected_on"] is seen["train"] and seen["selected_on"].multiply(seen["test"]).nnz == 0
    selection = trained.manifest["selection"]
    assert set(selection["candidates"]) == {"lightfm", "lightfm_hybrid", "ease", "als", "popularity", "blend"}
    assert selection["chosen"] == trained.manifest["engine"] != "popularity"
    for name, row in selection["candidates"].items():
        assert row["status"] == "scored", (name, row)
        assert {"precision_at_k", "ndcg_at_k"} <= set(row["validation"]) and "ndcg_at_k" in row["held_out"]
        assert row["fit_seconds"] is not None and row["memory_mb"] is not None
    assert trained.manifest["counts"]["item_features"] >= 2  # the two genres (and the decades)
    assert trained.manifest["metrics"]["ndcg_at_k"] == selection["candidates"][selection["chosen"]]["held_out"][
        "ndcg_at_k"]


def test_a_large_type_is_selected_on_a_sample_of_users_and_its_winner_served_from_every_interaction(
        tribes_graph, settings, tmp_path):
    settings.MUSICBUD_MODEL_DIR = tmp_path
    settings.MUSICBUD_CANDIDATES = ["lightfm", "lightfm_hybrid", "ease"]
    settings.MUSICBUD_SELECT_VALIDATION = 0.25
    settings.MUSICBUD_EVAL_USERS = settings.MUSICBUD_SELECT_USERS = 5
    settings.MUSICBUD_SELECT_FIT_INTERACTIONS, settings.MUSICBUD_HYBRID_MAX_INTERACTIONS = 70, 150
    trained = training.model_train(content_type=tribes_graph, epochs=10)  # 200 interactions: over both caps
    selection = trained.manifest["selection"]
    assert selection["protocol"]["fit_sample"] and selection["protocol"]["fit_interactions"] <= 70
    assert selection["protocol"]["fit_users"] < 40
    assert selection["served"] == "refitted on every interaction" and "refit_seconds" in trained.manifest["timings"]
    hybrid = selection["candidates"]["lightfm_hybrid"]
    assert hybrid["status"] == "skipped" and "MUSICBUD_HYBRID_MAX_INTERACTIONS" in hybrid["reason"]
    assert selection["candidates"]["ease"]["status"] == selection["candidates"]["lightfm"]["status"] == "scored"
    assert trained.model.score_items([0]).shape[1] == trained.matrix.shape[1]
    assert trained.manifest["counts"]["users"] == len(trained.user_map) == 40  # every user served, not the sample


def test_the_training_status_and_train_models_show_the_selection(tribes_graph, settings, tmp_path):
    from django.core.management import call_command
    from io import StringIO

    settings.MUSICBUD_MODEL_DIR = tmp_path
    settings.MUSICBUD_CANDIDATES = ["lightfm", "ease"]
    out = StringIO()
    call_command("train_models", "--type", "movies", stdout=out)
    status = status_read()["types"]["movie"]
    assert status["state"] == "done" and status["selection"]["chosen"] == status["engine"]
    assert set(status["selection"]["candidates"]) == {"lightfm", "ease", "popularity"}
    text = out.getvalue()
    assert "movie: served" in text and "val NDCG" in text and "ease" in text and "popularity" in text
