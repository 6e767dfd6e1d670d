"""app/services/training.py: how many epochs a training run fits with (LIGHTFM_EPOCH_BUDGET)."""
from app.services.training import epochs_for_run, lightfm_parameters

TYPES = ["movie", "anime", "track"]


def test_a_small_graph_keeps_the_tuned_epochs(settings):
    settings.LIGHTFM_EPOCH_BUDGET = 18_000_000
    counts = {"movie": 100_000, "anime": 0, "track": 0}  # a MovieLens-100k-sized graph
    assert epochs_for_run(interactions=counts, retrained=TYPES) == lightfm_parameters()["epochs"] == 60


def test_a_big_graph_gets_fewer_epochs_within_the_budget(settings):
    settings.LIGHTFM_EPOCH_BUDGET, settings.LIGHTFM_MIN_EPOCHS = 18_000_000, 2
    settings.MUSICBUD_REFIT_MAX_INTERACTIONS = 250_000
    counts = {"movie": 400_000, "anime": 200_000, "track": 100_000}
    epochs = epochs_for_run(interactions=counts, retrained=TYPES)
    # per epoch: every type once (400k + 200k + 100k), the two small ones again (refit), the taste model (700k)
    work = 700_000 + 300_000 + 700_000
    assert epochs == 18_000_000 // work == 10
    assert epochs * work <= 18_000_000


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
