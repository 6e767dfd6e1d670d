"""The models of experiments' engine arms (app/services/experiments.py): fitted, refitted at each training, deleted.

An engine arm's model is the arm's engine and parameters fitted on the interactions of the type's model (its
matrix, with the same item details, id maps and popularity), saved through the model store under the arm's own key
(`<type>_x<token>_<arm index>`: `arm_model_key`), so every worker and host loads it like any model.

- When an experiment is created, `experiment_arms_train` fits its arms in a job process (`manage.py
  experiment_arms`) on the type's served model.
- When a training retrains a type, `experiment_arms_refit` fits the running experiment's arms again on the fresh
  model's interactions, so that they stay comparable with the control (the fresh model). An arm whose refit fails
  keeps its model (a WARNING); the training goes on.
- When an experiment stops or is promoted, `experiment_arm_models_delete` removes its arms' files
  (ai/model_store.py's delete_model: never half a model); each training removes the files of arms of experiments
  that no longer run (`experiment_arm_models_collect`).
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from ai.model_store import delete_model, model_keys, save_model
from ai.recommendation_engine import make_recommender
from ai.trained_model import TrainedModel
from app.errors import ServiceUnavailableError
from app.services import shared_state
from app.services.model_registry import hmac_key, registry

logger = logging.getLogger(__name__)

ARM_KEY = re.compile(r"^[a-z0-9_]+_x[0-9a-f]{8}_\d+$")  # what arm_model_key makes
# An arm model no experiment names is an experiment's being created (its arms are saved before its row) or left by a
# creation that crashed: collected only once it is this old.
ORPHAN_GRACE = timedelta(hours=6)


def arm_model_key(*, model_key: str, token: str, index: int) -> str:
    """The model key of an experiment's engine arm: the type's, the experiment's token (8 hex digits), the arm's
    index."""
    return f"{model_key}_x{token}_{index}"


def arm_parameters(*, engine: str, params: dict, epochs: int | None = None) -> dict:
    """What an arm's engine is made with: LightFM starts from the service's parameters (threads, seed,
    SERVICE_DEFAULTS; a training's epochs when given), overridden by the arm's; other engines take the arm's."""
    from app.services.training import lightfm_parameters

    return {**lightfm_parameters(epochs=epochs), **params} if engine == "lightfm" else dict(params)


def arm_model_fit(*, base: TrainedModel, model_key: str, engine: str, params: dict, experiment: str, arm: str,
                  epochs: int | None = None) -> str:
    """Fit the arm's engine on `base`'s matrix and save it under `model_key`, with base's item details, id maps and
    popularity; its version."""
    parameters = arm_parameters(engine=engine, params=params, epochs=epochs)
    started = time.perf_counter()
    model = make_recommender(engine, **parameters)
    model.fit(base.matrix)
    seconds = round(time.perf_counter() - started, 3)
    trained = replace(base, content_type=model_key, model=model, manifest={
        "trained_at": timezone.now().isoformat(timespec="seconds"),
        "snapshot": (base.manifest or {}).get("snapshot"), "engine": model.name, "parameters": parameters,
        "experiment": {"name": experiment, "arm": arm, "base_version": base.version},
        "counts": {}, "metrics": {}, "timings": {"fit_seconds": seconds}})
    version = save_model(settings.MUSICBUD_MODEL_DIR, trained, hmac_key=hmac_key())
    logger.info("Experiment %s: arm %s (%s) fitted in %.1fs on %s version %s, saved as %s version %s", experiment,
                arm, engine, seconds, base.content_type, base.version, model_key, version)
    return version


def experiment_arms_train(*, spec: dict) -> dict[str, str]:
    """The job's work (`manage.py experiment_arms`): each arm of the spec ({experiment, type, arms: [{model_key,
    engine, params, name}]}) fitted on the type's served model and saved; {model key: version}."""
    key = spec["type"]
    base = registry.get(key)
    if base is None:
        raise ServiceUnavailableError(f"No {key} model is saved: nothing to fit the arms on.")
    return {arm["model_key"]: arm_model_fit(base=base, model_key=arm["model_key"], engine=arm["engine"],
                                            params=arm["params"], experiment=spec["experiment"], arm=arm["name"])
            for arm in spec["arms"]}


def experiment_arms_refit(*, base: TrainedModel, epochs: int | None = None) -> dict[str, dict]:
    """After a training of `base`'s type: fit the engine arms of the type's running experiment again on base's
    interactions and save each under its key (workers serve it within MUSICBUD_MODEL_RELOAD_SECONDS, at once with
    Redis); the experiment's arms then name the new versions (the "current" arm base's). An arm whose fit or save
    fails keeps its model (a WARNING). {arm name: {model_key, state: refitted | failed, version | error, seconds}};
    empty when the type runs no experiment (or the experiments cannot be read: a WARNING)."""
    from app.models import Experiment

    try:
        row = Experiment.objects.filter(content_type=base.content_type, state=Experiment.RUNNING).first()
    except DatabaseError as exc:
        logger.warning("Could not read the running experiments of %s (%s): their arms are not refitted",
                       base.content_type, exc)
        return {}
    if row is None:
        return {}
    report: dict[str, dict] = {}
    versions: dict[str, str] = {}
    for arm in row.arms:
        if not arm.get("model_key"):
            continue
        started = time.perf_counter()
        try:
            version = arm_model_fit(base=base, model_key=arm["model_key"], engine=arm["engine"],
                                    params=arm.get("params") or {}, experiment=row.name, arm=arm["name"],
                                    epochs=epochs)
        except Exception as exc:  # any engine's failure: the arm keeps the model it has, the training goes on
            logger.warning("Experiment %s: refitting arm %s (%s) on the new %s model failed: %s; it keeps version %s",
                           row.name, arm["name"], arm["engine"], base.content_type, exc, arm.get("version"),
                           exc_info=True)
            report[arm["name"]] = {"model_key": arm["model_key"], "state": "failed", "error": str(exc),
                                   "version": arm.get("version")}
            continue
        versions[arm["model_key"]] = version
        report[arm["name"]] = {"model_key": arm["model_key"], "state": "refitted", "version": version,
                               "seconds": round(time.perf_counter() - started, 1)}
    try:
        running = _versions_record(row.id, versions, base_version=base.version) if versions else True
    except DatabaseError as exc:  # the arms are refitted all the same; the experiment's listing names older versions
        logger.warning("Experiment %s: could not record its arms' new versions (%s)", row.name, exc)
        running = True
    if not running:  # stopped (and its arms deleted) while they were refitted: the files just saved go too
        experiment_arm_models_delete(model_keys=list(versions))
        return {name: {**part, "state": "stopped meanwhile"} for name, part in report.items()}
    for model_key, version in versions.items():
        shared_state.model_version_announce(model_key=model_key, version=version)
    return report


def _versions_record(experiment_id: int, versions: dict[str, str], *, base_version: str | None) -> bool:
    """Name the refitted versions in the experiment's arms (the "current" arm's: the new type model's); False when the
    experiment no longer runs."""
    from app.models import Experiment

    with transaction.atomic():
        row = Experiment.objects.select_for_update().filter(pk=experiment_id).first()
        if row is None or row.state != Experiment.RUNNING:
            return False
        row.arms = [{**arm, "version": versions.get(arm.get("model_key"), arm.get("version")) if arm.get("model_key")
                     else base_version} for arm in row.arms]
        row.save(update_fields=["arms"])
    return True


def experiment_arm_models_delete(*, model_keys: list[str]) -> list[str]:
    """Remove these arms' model files from MUSICBUD_MODEL_DIR (ai/model_store.py's delete_model: the manifest first,
    so nothing loads half a model; what a worker loaded stays in its memory); the keys that had files."""
    deleted = [key for key in model_keys if delete_model(settings.MUSICBUD_MODEL_DIR, key)]
    if deleted:
        logger.info("Deleted the arm model(s) %s", ", ".join(deleted))
    return deleted


def experiment_arm_models_collect() -> list[str]:
    """Garbage collection (each training): remove the arm models in MUSICBUD_MODEL_DIR of experiments that no longer
    run, and those no experiment names once ORPHAN_GRACE old; never a running experiment's. The keys removed (each
    logged at INFO); none when the experiments cannot be read (a WARNING)."""
    from app.models import Experiment

    on_disk = {key for key in model_keys(settings.MUSICBUD_MODEL_DIR) if ARM_KEY.match(key)}
    if not on_disk:
        return []
    try:
        rows = list(Experiment.objects.values_list("state", "arms"))
    except DatabaseError as exc:
        logger.warning("Could not read the experiments (%s): no arm model is collected", exc)
        return []
    named = {arm["model_key"]: state for state, arms in rows for arm in arms if arm.get("model_key")}
    removed = []
    for key in sorted(on_disk):
        state = named.get(key)
        if state == Experiment.RUNNING or (state is None and not _orphan_old(key)):
            continue
        if delete_model(settings.MUSICBUD_MODEL_DIR, key):
            removed.append(key)
            logger.info("Collected the arm model %s (%s)", key,
                        f"its experiment is {state}" if state else "no experiment names it")
    return removed


def _orphan_old(key: str) -> bool:
    """Whether the newest file of an arm model no experiment names (its manifest or a version) is ORPHAN_GRACE old."""
    directory = Path(settings.MUSICBUD_MODEL_DIR)
    times = []
    for path in [directory / f"{key}_manifest.json", *directory.glob(f"{key}-*")]:
        try:
            times.append(path.stat().st_mtime)
        except FileNotFoundError:
            continue
    return not times or time.time() - max(times) >= ORPHAN_GRACE.total_seconds()
