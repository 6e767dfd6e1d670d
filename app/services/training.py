"""Training: one run at a time (a lock shared by every process using the model directory), each content type
extracted from the graph, measured on a held-out slice, fitted, its item details cached and saved atomically,
then the joint taste model over every type. `models_train` is the run; the API, the management command and
test_recommendations.py start it through the recommendation service's façade."""
from __future__ import annotations

import fcntl
import logging
import os
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from ai import evaluation
from ai.model_store import save_model
from ai.popularity import PopularityRecommender
from ai.recommendation_engine import SERVICE_DEFAULTS, make_recommender
from ai.taste import TasteModel, TastePart, joint_interactions
from ai.trained_model import TrainedModel
from app.content_types import BY_MODEL_KEY, CONTENT_TYPES, ContentType, content_type_get
from app.errors import ServiceUnavailableError, TrainingInProgressError
from app.graph import GRAPH_ERRORS
from app.services import recommendation_data_service as data
from app.services import shared_state
from app.services.model_registry import TASTE_KEY, hmac_key, registry, user_directory_save
from app.services.training_status import JobReport, status_read

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
        dismissed=inter.dismissed,
        manifest={
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            # where the change feed goes on from (app/services/live.py); untimed edges: it cannot follow them
            "snapshot": {"read_at": inter.read_at.isoformat() if inter.read_at else None,
                         "untimed_edges": inter.untimed_edges},
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
    shared_state.model_version_announce(model_key=ct.model_key, version=version)
    logger.info("Trained %s model version %s: %s", ct.model_key, version, timings)
    return trained


def users_directory_refresh() -> int:
    """Save {username: uid} of every app user beside the models; returns how many."""
    directory = data.users_directory()
    user_directory_save(model_dir=settings.MUSICBUD_MODEL_DIR,
                        usernames={v["username"]: uid for uid, v in directory.items() if v["username"]})
    return len(directory)


def taste_model_train(*, trained: dict[str, TrainedModel | None], show_progress: bool = False,
                      epochs: int | None = None) -> TasteModel | None:
    """One factor model over every item type at once, from the per-type models' matrices (ai/taste.py): buds
    and cross-domain recommendations come from it. Columns are "<type>:<id>"; rows are ParentUser uids."""
    parts = [TastePart(prefix=key, type_key=BY_MODEL_KEY[key].key, title_property=BY_MODEL_KEY[key].title_property,
                       model=model) for key, model in trained.items() if model is not None]
    if not parts:
        return None
    matrix, users, item_map, items = joint_interactions(parts)
    params = lightfm_parameters(epochs=epochs)
    t0 = time.perf_counter()
    model = make_recommender(**params)
    model.fit(matrix, show_progress=show_progress)
    fit_seconds = round(time.perf_counter() - t0, 3)
    taste = TasteModel(
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
    shared_state.model_version_announce(model_key=TASTE_KEY, version=taste.manifest["version"])
    logger.info("Trained the joint taste model (%d users, %d items, %d interactions) in %.1fs",
                len(users), len(item_map), matrix.nnz, fit_seconds)
    return taste


# --- the run ------------------------------------------------------------------------------------------------

def training_lock_path(model_dir: Path | None = None) -> Path:
    return Path(model_dir or settings.MUSICBUD_MODEL_DIR) / ".training.lock"


TRAINING_LOCK = "training:lock"  # the shared lock's name (app/services/shared_state.py)
TRAINING_LOCK_TTL = 30.0  # seconds a dead holder keeps it; renewed every TTL/3 while a training runs


@contextmanager
def training_lock():
    """One training at a time across every process sharing the model directory and, with Redis, every host
    sharing it (a lock with a TTL, renewed while held); 409 for the second, 503 when Redis is configured but down
    (a training could not know it runs alone)."""
    path = training_lock_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    shared = None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise TrainingInProgressError() from None
        if shared_state.redis_configured():
            shared = shared_state.lock_take(TRAINING_LOCK, ttl=TRAINING_LOCK_TTL, what="no training can start")
            if shared is None:
                raise TrainingInProgressError()
        yield
    finally:
        if shared is not None:
            shared.release()
        os.close(fd)


def training_running(*, model_dir: Path | None = None) -> bool:
    """Whether some process holds the training lock of `model_dir` (default: the configured one) right now, or,
    with Redis, any host does (a Redis that is down: what this host's file lock says)."""
    if model_dir is None and shared_state.redis_configured():
        try:
            if shared_state.SharedLock.held(TRAINING_LOCK):
                return True
        except shared_state.REDIS_ERRORS as exc:
            shared_state.mark_down(exc)
    try:
        fd = os.open(training_lock_path(model_dir), os.O_RDWR)
    except FileNotFoundError:
        return False  # no training ever started there
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def models_train(*, content_types: list[str] | None = None, show_progress: bool = False,
                 job_id: str | None = None) -> dict[str, bool]:
    """Train every content type (or the given ones), then the taste model; {model_key: trained}. One failing
    type does not stop the others; each failure is logged with its reason. Reports as it goes into the training
    status file (app/services/training_status.py; `job_id`: the job this run is). Raises TrainingInProgressError
    when one is running, ServiceUnavailableError when the graph cannot be read at all."""
    rows = [content_type_get(key=k) for k in content_types] if content_types else list(CONTENT_TYPES)
    try:
        with training_lock():
            return _run(rows, show_progress, JobReport(job_id, keys=[*[ct.model_key for ct in rows], TASTE_KEY]))
    except TrainingInProgressError:
        if job_id and status_read().get("job_id") == job_id:  # our job's spawn lost a race: say so in its status
            JobReport(job_id, keys=[]).finish(None, "another training was already running", kind="in_progress")
        raise
    except shared_state.SharedStateUnavailableError as exc:  # Redis configured but down: refused, said so
        if job_id:
            JobReport(job_id, keys=[]).finish(None, str(exc), kind="unavailable")
        raise


def _run(rows: list[ContentType], show_progress: bool, report: JobReport) -> dict[str, bool]:
    results: dict[str, bool] = {}
    report.begin()
    started = time.perf_counter()
    try:
        users_directory_refresh()
        counts = {ct.model_key: data.interactions_count(content_type=ct) for ct in CONTENT_TYPES}
    except GRAPH_ERRORS as exc:
        logger.error("Could not refresh the user directory: %s", exc)
        message = f"The graph database is unreachable, so nothing can be trained: {exc}"
        report.finish(None, message, kind="unavailable")
        raise ServiceUnavailableError(message) from exc
    epochs = epochs_for_run(interactions=counts, retrained=[ct.model_key for ct in rows])
    logger.info("Training with %d epochs (%d interactions in the graph, LIGHTFM_EPOCH_BUDGET %d)", epochs,
                sum(counts.values()), settings.LIGHTFM_EPOCH_BUDGET)
    for ct in rows:
        t0 = time.perf_counter()
        report.type_state(ct.model_key, "training")
        try:
            trained = model_train(content_type=ct, show_progress=show_progress, epochs=epochs)
        except Exception as exc:  # a training that fails for any reason leaves the served model; logged
            logger.error("Training the %s model failed: %s", ct.model_key, exc, exc_info=True)
            results[ct.model_key] = False
            report.type_state(ct.model_key, "failed", error=str(exc), seconds=round(time.perf_counter() - t0, 1))
            continue
        results[ct.model_key] = trained is not None
        if trained is None:
            report.type_state(ct.model_key, "skipped", error="no interactions in the graph")
            continue
        registry.put(ct.model_key, trained)
        report.type_state(ct.model_key, "done", version=trained.version, seconds=round(time.perf_counter() - t0, 1),
                          metrics=trained.manifest.get("metrics") or {})
    t0 = time.perf_counter()
    report.type_state(TASTE_KEY, "training")
    try:
        served = {ct.model_key: registry.get(ct.model_key) for ct in CONTENT_TYPES}
        taste = taste_model_train(trained=served, show_progress=show_progress, epochs=epochs)
        if taste is not None:
            registry.put(TASTE_KEY, taste)
        results[TASTE_KEY] = taste is not None
        report.type_state(TASTE_KEY, "done" if taste is not None else "skipped",
                          seconds=round(time.perf_counter() - t0, 1))
    except Exception as exc:  # as above: the served taste model stays
        logger.error("Training the joint taste model failed: %s", exc, exc_info=True)
        results[TASTE_KEY] = False
        report.type_state(TASTE_KEY, "failed", error=str(exc))
    logger.info("Training finished in %.1fs: %s", time.perf_counter() - started, results)
    report.finish(results)
    return results

