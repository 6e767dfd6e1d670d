"""Training one content type: extract from the graph, hold out a slice to measure, fit, cache item details,
save atomically. Only the recommendation service calls this (under its training lock)."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from ai import evaluation
from ai.model_store import TrainedModel, save_model
from ai.recommendation_engine import SERVICE_DEFAULTS, PopularityRecommender, make_recommender
from app.content_types import ContentType
from app.services import recommendation_data_service as data
from app.services.model_registry import hmac_key, user_directory_save

logger = logging.getLogger(__name__)


def lightfm_parameters(*, epochs: int | None = None) -> dict:
    params = {**SERVICE_DEFAULTS, **settings.LIGHTFM_OVERRIDES}
    if epochs is not None:
        params["epochs"] = epochs
    params["num_threads"] = settings.LIGHTFM_THREADS
    params["random_state"] = settings.LIGHTFM_RANDOM_STATE
    return params


def epochs_for_run(*, interactions: dict[str, int], retrained: list[str]) -> int:
    """The epochs of every fit of one training run: the configured ones (SERVICE_DEFAULTS or LIGHTFM_EPOCHS),
    fewer when the run's fits would do more than LIGHTFM_EPOCH_BUDGET interaction-epochs in all, never fewer
    than LIGHTFM_MIN_EPOCHS. `interactions`: the edges of every type (the taste model learns them all);
    `retrained`: the model keys fitted in this run (twice when small enough to be refitted)."""
    epochs = lightfm_parameters()["epochs"]
    refit = settings.MUSICBUD_EVAL_HOLDOUT > 0 and settings.MUSICBUD_EVAL_USERS > 0
    work = sum(interactions.values()) + sum(
        n * (2 if refit and n <= settings.MUSICBUD_REFIT_MAX_INTERACTIONS else 1)
        for key, n in interactions.items() if key in retrained)
    budget = settings.LIGHTFM_EPOCH_BUDGET
    if budget <= 0 or work * epochs <= budget:
        return epochs
    return max(min(settings.LIGHTFM_MIN_EPOCHS, epochs), budget // work)


def holdout_split(matrix: sp.csr_matrix, *, fraction: float, max_users: int, seed: int = 42
                  ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(train, test): a per-user random hold-out of `fraction` of the items of at most `max_users` users.

    The served model is the one fitted on `train`, so evaluating costs no second fit; the held-out
    interactions are a small share of the whole and are still filtered from that user's recommendations."""
    if fraction <= 0 or max_users <= 0 or matrix.nnz == 0:
        return matrix, sp.csr_matrix(matrix.shape, dtype=matrix.dtype)
    train_all, test_all = evaluation.train_test_split_per_user(matrix, test_fraction=fraction, seed=seed)
    candidates = np.flatnonzero(np.diff(test_all.indptr) > 0)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(candidates, size=min(max_users, len(candidates)), replace=False) if len(candidates) else []
    keep = np.zeros(matrix.shape[0], dtype=np.float32)
    keep[chosen] = 1.0
    test = (sp.diags(keep) @ test_all).tocsr()
    test.eliminate_zeros()
    train = (matrix - test).tocsr()
    train.eliminate_zeros()
    return train, test


def model_train(*, content_type: ContentType, show_progress: bool = False, epochs: int | None = None
                ) -> TrainedModel | None:
    """Train, evaluate and save one type's model; None when the graph has no interactions of that type."""
    ct = content_type
    timings = {}
    t0 = time.perf_counter()
    inter = data.interactions_for(content_type=ct)
    timings["extract_seconds"] = round(time.perf_counter() - t0, 3)
    if inter.nnz == 0:
        logger.warning("No %s interactions in the graph: no model trained", ct.key)
        return None
    train, test = holdout_split(inter.matrix, fraction=settings.MUSICBUD_EVAL_HOLDOUT,
                                max_users=settings.MUSICBUD_EVAL_USERS)
    params = lightfm_parameters(epochs=epochs)
    t0 = time.perf_counter()
    model = make_recommender(**params)
    model.fit(train, show_progress=show_progress)
    timings["fit_seconds"] = round(time.perf_counter() - t0, 3)
    popularity = PopularityRecommender().fit(inter.matrix)
    t0 = time.perf_counter()
    metrics = evaluation.evaluate(model, train, test, k=10) if test.nnz else {}
    timings["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    if metrics:
        logger.info("%s model: P@10 %.4f R@10 %.4f NDCG@10 %.4f AUC %.4f coverage %.4f on %d held-out users",
                    ct.model_key, metrics["precision_at_k"], metrics["recall_at_k"], metrics["ndcg_at_k"],
                    metrics["auc"], metrics["coverage"], metrics["users_evaluated"])
    if test.nnz and inter.nnz <= settings.MUSICBUD_REFIT_MAX_INTERACTIONS:
        # small enough to fit twice: serve a model that learned from every interaction, held-out ones too
        t0 = time.perf_counter()
        model = make_recommender(**params)
        model.fit(inter.matrix, show_progress=show_progress)
        timings["refit_seconds"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    items: dict[str, dict] = {}
    for start in range(0, len(inter.item_ids), 20_000):
        items.update(data.items_by_ids(content_type=ct, ids=inter.item_ids[start:start + 20_000]))
    timings["details_seconds"] = round(time.perf_counter() - t0, 3)
    trained = TrainedModel(
        content_type=ct.model_key,
        model=model,
        popularity=popularity,
        user_map=inter.user_map,
        item_map=inter.item_map,
        matrix=inter.matrix,
        items=items,
        manifest={
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "engine": model.name,
            "counts": {"users": len(inter.user_ids), "items": len(inter.item_ids), "interactions": inter.nnz,
                       "held_out": int(test.nnz), "served_model_saw_held_out": "refit_seconds" in timings},
            "metrics": metrics,
            "parameters": {k: v for k, v in params.items()},
            "timings": timings,
        },
    )
    t0 = time.perf_counter()
    version = save_model(settings.MUSICBUD_MODEL_DIR, trained, hmac_key=hmac_key())
    trained.manifest["version"] = version
    timings["save_seconds"] = round(time.perf_counter() - t0, 3)
    trained.manifest.setdefault("timings", {})["save_seconds"] = timings["save_seconds"]  # known only after saving
    logger.info("Trained %s model version %s: %s", ct.model_key, version, timings)
    return trained


def users_directory_refresh() -> int:
    """Save {username: uid} of every app user beside the models; returns how many."""
    directory = data.users_directory()
    user_directory_save(model_dir=settings.MUSICBUD_MODEL_DIR,
                        usernames={v["username"]: uid for uid, v in directory.items() if v["username"]})
    return len(directory)


TASTE_KEY = "taste"


def taste_key(ct: ContentType, item_id: str) -> str:
    """An item's column name in the joint taste model: "<model key>:<item id>" (e.g. "movie:tt0114709")."""
    return f"{ct.model_key}:{item_id}"


def taste_model_train(*, trained: dict[str, TrainedModel], show_progress: bool = False,
                      epochs: int | None = None) -> TrainedModel | None:
    """One LightFM model over every item type at once, from the per-type models' matrices.

    Its user representations describe a user's taste across domains: they rank buds (similar users), and
    they recommend items of a type the user has no history in from their history in the others
    (cross-domain). Columns are "<type>:<id>"; rows are ParentUser uids."""
    from app.content_types import BY_MODEL_KEY

    parts = [(BY_MODEL_KEY[key], model) for key, model in trained.items() if model is not None]
    if not parts:
        return None
    users: dict[str, int] = {}
    for _, model in parts:
        for uid in model.user_map:
            users.setdefault(uid, len(users))
    blocks, item_map, items = [], {}, {}
    for ct, model in parts:
        rows = np.empty(len(model.user_map), dtype=np.int64)
        for uid, row in model.user_map.items():
            rows[row] = users[uid]
        coo = model.matrix.tocoo()
        offset = len(item_map)
        blocks.append((rows[coo.row], coo.col + offset, coo.data))
        for item_id, col in sorted(model.item_map.items(), key=lambda kv: kv[1]):
            key = taste_key(ct, item_id)
            item_map[key] = offset + col
            details = model.items.get(item_id) or {}
            items[key] = {"id": item_id, "type": ct.key, "title": details.get(ct.title_property)}
    r = np.concatenate([b[0] for b in blocks])
    c = np.concatenate([b[1] for b in blocks])
    w = np.concatenate([b[2] for b in blocks]).astype(np.float32)
    matrix = sp.csr_matrix((w, (r, c)), shape=(len(users), len(item_map)))
    params = lightfm_parameters(epochs=epochs)
    t0 = time.perf_counter()
    model = make_recommender(**params)
    model.fit(matrix, show_progress=show_progress)
    fit_seconds = round(time.perf_counter() - t0, 3)
    taste = TrainedModel(
        content_type=TASTE_KEY, model=model, popularity=PopularityRecommender().fit(matrix),
        user_map=users, item_map=item_map, matrix=matrix, items=items,
        manifest={
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "engine": model.name,
            "counts": {"users": len(users), "items": len(item_map), "interactions": int(matrix.nnz)},
            "metrics": {}, "parameters": params, "timings": {"fit_seconds": fit_seconds},
        },
    )
    t0 = time.perf_counter()
    taste.manifest["version"] = save_model(settings.MUSICBUD_MODEL_DIR, taste, hmac_key=hmac_key())
    taste.manifest["timings"]["save_seconds"] = round(time.perf_counter() - t0, 3)
    logger.info("Trained the joint taste model (%d users, %d items, %d interactions) in %.1fs",
                len(users), len(item_map), matrix.nnz, fit_seconds)
    return taste
