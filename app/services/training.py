"""Training: one run at a time (a lock shared by every process using the model directory), each content type
extracted from the graph, its item details read, its model chosen among the candidates on a validation split of
its training part (ai/model_selection.py: the held-out slice is kept out of it), measured on the held-out slice,
saved atomically with the whole selection table, then the joint taste model over every type. `models_train` is the run; the API, the management command and
test_recommendations.py start it through the recommendation service's façade.

A/B experiments (app/services/experiments.py): a type whose model was pinned by a promotion fits the promoted arm's
engine and parameters instead of selecting (app/services/promotions.py); with MUSICBUD_EXPERIMENTS on, after a type
is trained the engine arms of its running experiment are fitted again on the same interactions, and at the end of
the run the arm models of experiments that no longer run are deleted (app/services/experiment_arms.py)."""
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

from ai.item_features import item_features_from_details
from ai.model_selection import (
    BLEND,
    CandidateResult,
    LIGHTFM_FAMILY,
    candidate_factories,
    candidates_for_size,
    held_out_report,
    select_model,
    users_holdout_split,
)
from ai.model_store import save_model
from ai.popularity import PopularityRecommender
from ai.recommendation_engine import SERVICE_DEFAULTS, make_recommender
from ai.taste import TasteModel, TastePart, joint_interactions
from ai.trained_model import TrainedModel
from ai.trending import TrendingScores
from app.content_types import BY_MODEL_KEY, CONTENT_TYPES, ContentType, content_type_get
from app.errors import ServiceUnavailableError, TrainingInProgressError
from app.graph import GRAPH_ERRORS
from app.services import recommendation_data_service as data
from app.services import shared_state
from app.services.experiment_arms import arm_parameters, experiment_arm_models_collect, experiment_arms_refit
from app.services.model_registry import TASTE_KEY, hmac_key, malloc_tune, registry, user_directory_save
from app.services.promotions import Promotion, promotion_get
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
    `retrained`: the model keys fitted in this run: once per LightFM candidate (MUSICBUD_CANDIDATES: lightfm,
    lightfm_hybrid; on a sample of users above MUSICBUD_SELECT_FIT_INTERACTIONS), once more when the winner is
    fitted again (small enough to refit, or selected on a sample)."""
    epochs = lightfm_parameters()["epochs"]
    refit = settings.MUSICBUD_EVAL_HOLDOUT > 0 and settings.MUSICBUD_EVAL_USERS > 0
    cap = settings.MUSICBUD_SELECT_FIT_INTERACTIONS or None

    def type_work(n: int) -> int:  # the candidates' fits (on a sample above the cap), then the winner's refit
        names, _ = candidates_for_size(settings.MUSICBUD_CANDIDATES, interactions=n,
                                       hybrid_max_interactions=settings.MUSICBUD_HYBRID_MAX_INTERACTIONS)
        fits = max(1, sum(name in names for name in LIGHTFM_FAMILY))
        sampled = cap is not None and n > cap
        return fits * (cap if sampled else n) + (
            n if sampled or (refit and n <= settings.MUSICBUD_REFIT_MAX_INTERACTIONS) else 0)

    work = sum(interactions.values()) + sum(type_work(n) for key, n in interactions.items() if key in retrained)
    budget = settings.LIGHTFM_EPOCH_BUDGET
    if budget <= 0 or work * epochs <= budget:
        return epochs
    return max(min(settings.LIGHTFM_MIN_EPOCHS, epochs), budget // work)


def holdout_split(matrix: sp.csr_matrix, *, fraction: float, max_users: int, seed: int = 42
                  ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(train, test): a per-user random hold-out of `fraction` of the items of at most `max_users` users.

    Model selection sees only `train` (its validation split is carved out of it: ai/model_selection.py), so
    the held-out metrics are of data no choice was made on; the held-out interactions are a small share of the
    whole and are still filtered from that user's recommendations."""
    return users_holdout_split(matrix, fraction=fraction, max_users=max_users, seed=seed)


class PinnedModelError(RuntimeError):
    """The engine a promotion pinned could not be fitted: the type's served model stays."""


def model_train(*, content_type: ContentType, show_progress: bool = False, epochs: int | None = None
                ) -> TrainedModel | None:
    """Train, evaluate and save one type's model; None when the graph has no interactions of that type. A type pinned
    by a promotion fits the promoted arm's engine (the only candidate, beside the popularity baseline that is scored
    for reference), whatever the memory budget; PinnedModelError when it cannot be fitted."""
    ct = content_type
    pin = promotion_get(model_key=ct.model_key)
    timings = {}
    t0 = time.perf_counter()
    inter = data.interactions_for(content_type=ct)
    timings["extract_seconds"] = round(time.perf_counter() - t0, 3)
    if inter.nnz == 0:
        logger.warning("No %s interactions in the graph: no model trained", ct.key)
        return None
    train, test = holdout_split(inter.matrix, fraction=settings.MUSICBUD_EVAL_HOLDOUT,
                                max_users=settings.MUSICBUD_EVAL_USERS)
    t0 = time.perf_counter()
    items: dict[str, dict] = {}
    for start in range(0, len(inter.item_ids), 20_000):
        items.update(data.items_by_ids(content_type=ct, ids=inter.item_ids[start:start + 20_000]))
    timings["details_seconds"] = round(time.perf_counter() - t0, 3)
    features, feature_names = item_features_from_details(inter.item_ids, items)
    names, hybrid_left_out = candidates_for_size(settings.MUSICBUD_CANDIDATES, interactions=inter.nnz,
                                                 hybrid_max_interactions=settings.MUSICBUD_HYBRID_MAX_INTERACTIONS)
    params = lightfm_parameters(epochs=epochs)
    if pin is None:
        candidates = candidate_factories(names, threads=settings.LIGHTFM_THREADS,
                                         random_state=settings.LIGHTFM_RANDOM_STATE, lightfm_params=params,
                                         item_features=features, feature_names=feature_names,
                                         ease_max_items=settings.MUSICBUD_EASE_MAX_ITEMS)
    else:
        candidates = pinned_candidate(pin=pin, epochs=epochs)
    selection = select_model(
        train=train, fraction=settings.MUSICBUD_SELECT_VALIDATION, max_users=settings.MUSICBUD_SELECT_USERS,
        blend=pin is None and BLEND in names, show_progress=show_progress, candidates=candidates,
        max_memory_mb=(settings.MUSICBUD_MODEL_MAX_MB or None) if pin is None else None,
        max_fit_interactions=settings.MUSICBUD_SELECT_FIT_INTERACTIONS or None,
        keep_users=np.flatnonzero(np.diff(test.indptr) > 0))
    if pin is not None:
        pinned = selection.results[pin.engine]
        if selection.chosen != pin.engine:
            raise PinnedModelError(f"The {ct.model_key} model is pinned to {pin.engine} ({pin.reason}), which could "
                                   f"not be fitted: {pinned.reason or pinned.status}. The served model stays; clear "
                                   f"the pin (DELETE /v1/experiments/promotions/{ct.key}/) to select again.")
        pinned.reason = pin.reason
    timings["fit_seconds"] = round(selection.seconds, 3)  # every candidate fitted and validated
    if hybrid_left_out and pin is None:
        selection.results["lightfm_hybrid"] = CandidateResult(
            name="lightfm_hybrid", engine="lightfm_hybrid", params={}, status="skipped", reason=hybrid_left_out)
    model = selection.fitted[selection.chosen]  # fitted on train minus the validation split
    popularity = PopularityRecommender().fit(inter.matrix)
    t0 = time.perf_counter()
    trending = trending_compute(content_type=ct, inter=inter)
    timings["trending_seconds"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    held_out_report(selection, train=train, test=test, k=10)
    timings["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    chosen = selection.results[selection.chosen]
    metrics = {**chosen.held_out, "k": 10} if chosen.held_out else {}
    if metrics:
        logger.info("%s model (%s): P@10 %.4f R@10 %.4f NDCG@10 %.4f AUC %.4f coverage %.4f on %d held-out users",
                    ct.model_key, selection.chosen, metrics["precision_at_k"], metrics["recall_at_k"],
                    metrics["ndcg_at_k"], metrics["auc"], metrics["coverage"], metrics["users_evaluated"])
    if selection.sampled or (inter.nnz <= settings.MUSICBUD_REFIT_MAX_INTERACTIONS
                             and (test.nnz or selection.protocol["validation_users"])):
        # the candidates saw a sample of the users, or the type is small enough to fit again: serve the chosen
        # candidate learned from every interaction (held-out ones too)
        t0 = time.perf_counter()
        model = selection.build().fit(inter.matrix, show_progress=show_progress)
        timings["refit_seconds"] = round(time.perf_counter() - t0, 3)
    trained = TrainedModel(
        content_type=ct.model_key,
        model=model,
        popularity=popularity,
        user_map=inter.user_map,
        item_map=inter.item_map,
        matrix=inter.matrix,
        items=items,
        dismissed=inter.dismissed,
        trending=trending,
        manifest={
            "trained_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            # where the change feed goes on from (app/services/live.py); untimed edges: it cannot follow them
            "snapshot": {"read_at": inter.read_at.isoformat() if inter.read_at else None,
                         "untimed_edges": inter.untimed_edges},
            "engine": model.name,
            "counts": {"users": len(inter.user_ids), "items": len(inter.item_ids), "interactions": inter.nnz,
                       "held_out": int(test.nnz), "served_model_saw_held_out": "refit_seconds" in timings,
                       "item_features": len(feature_names)},
            # the served candidate's, as fitted for the selection (train minus validation), on the held-out slice
            "metrics": metrics,
            "parameters": model.get_params(),
            "selection": {**selection.table(), "served": "refitted on every interaction" if "refit_seconds" in
                          timings else "as fitted for the selection (train minus the validation split)",
                          **({"reason": pin.reason, "pinned": pin.as_dict()} if pin else {})},
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


def pinned_candidate(*, pin: Promotion, epochs: int | None = None) -> dict:
    """The one candidate of a pinned type: the promoted arm's engine made as its arm was (arm_parameters)."""
    parameters = arm_parameters(engine=pin.engine, params=pin.params, epochs=epochs)
    return {pin.engine: lambda: make_recommender(pin.engine, **parameters)}


def selection_summary(selection: dict | None) -> dict:
    """The selection table in short (what the training status, train_models and test_recommendations.py show):
    per candidate its status, validation and held-out P@10 / NDCG@10, fit seconds and memory."""
    if not selection:
        return {}
    short = lambda m: {k: round(m[k], 4) for k in ("precision_at_k", "ndcg_at_k") if k in m}  # noqa: E731
    return {"chosen": selection["chosen"], "seconds": selection.get("seconds"),
            **({"reason": selection["reason"]} if selection.get("reason") else {}),
            "candidates": {name: {"status": row["status"], "reason": row.get("reason"),
                                  "validation": short(row.get("validation") or {}),
                                  "held_out": short(row.get("held_out") or {}),
                                  "fit_seconds": row.get("fit_seconds"), "memory_mb": row.get("memory_mb")}
                           for name, row in selection["candidates"].items()}}


def selection_table_lines(*, key: str, selection: dict) -> list[str]:
    """The selection table of one type as text lines (train_models, test_recommendations.py)."""
    pinned = f"; {selection['reason']}" if selection.get("reason") else ""
    lines = [f"\n{key}: served {selection['chosen']}{pinned} (selection {selection.get('seconds', 0):.1f}s; "
             f"{selection.get('protocol', {}).get('validation_users', 0)} validation users)",
             f"  {'candidate':15s} {'status':8s} {'val P@10':>8s} {'val NDCG':>8s} {'held P@10':>9s} "
             f"{'held NDCG':>9s} {'fit s':>7s} {'MB':>6s}"]
    fmt = lambda m, k: f"{m[k]:.4f}" if m.get(k) is not None else "-"  # noqa: E731
    for name, row in selection["candidates"].items():
        val, held = row.get("validation") or {}, row.get("held_out") or {}
        mark = "*" if name == selection["chosen"] else " "
        note = f"  ({row['reason']})" if row.get("reason") else ""
        lines.append(f" {mark}{name:15s} {row['status']:8s} {fmt(val, 'precision_at_k'):>8s} {fmt(val, 'ndcg_at_k'):>8s} "
                     f"{fmt(held, 'precision_at_k'):>9s} {fmt(held, 'ndcg_at_k'):>9s} "
                     f"{row.get('fit_seconds') if row.get('fit_seconds') is not None else '-':>7} "
                     f"{row.get('memory_mb') if row.get('memory_mb') is not None else '-':>6}{note}")
    return lines


def trending_compute(*, content_type: ContentType, inter: data.Interactions) -> TrendingScores:
    """The type's trending scores as of the extraction (ai/trending.py): edges with created_at decayed from it;
    edges without one dated when first seen, i.e. the untimed weight the served model's scores had not counted
    yet is dated now (the served model is read only when there are untimed edges: MusicBud's own graph)."""
    now = inter.read_at or datetime.now(timezone.utc)
    half_life = settings.MUSICBUD_TRENDING_HALF_LIFE_HOURS * 3600.0
    decayed, untimed = data.trending_totals(inter=inter, now=now, half_life_seconds=half_life)
    previous = registry.get(content_type.model_key) if inter.untimed_edges else None
    previous_trending = previous.trending if previous is not None else None
    columns = None
    if previous_trending is not None:
        columns = np.fromiter((previous.item_map.get(key, -1) for key in inter.item_ids), dtype=np.int64,
                              count=len(inter.item_ids))
    return TrendingScores.from_totals(timed_scores=decayed, untimed=untimed, now=now.timestamp(),
                                      previous=previous_trending, previous_columns=columns,
                                      half_life_seconds=half_life)


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
    malloc_tune()  # the fits' large temporaries go back to the system when freed: a lower peak (model_registry.py)
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
                          metrics=trained.manifest.get("metrics") or {}, engine=trained.manifest.get("engine"),
                          selection=selection_summary(trained.manifest.get("selection")))
        # the running experiment's arms, on the same interactions (with experiments off: none is served, none refitted)
        arms = experiment_arms_refit(base=trained, epochs=epochs) if settings.MUSICBUD_EXPERIMENTS else {}
        if arms:
            report.type_state(ct.model_key, "done", experiment_arms=arms)
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
    collected = experiment_arm_models_collect() if settings.MUSICBUD_EXPERIMENTS else []
    if collected:
        report.status["collected_arm_models"] = collected
    logger.info("Training finished in %.1fs: %s", time.perf_counter() - started, results)
    report.finish(results)
    return results

