"""A/B experiments: staff define them, every worker serves them.

An experiment compares recommenders on one content type. Each arm is either the type's served model ("current")
or an engine of ai/recommendation_engine.py's registry (`make_recommender(engine, **params)`) fitted on the same
interactions the type's served model learned from (its matrix), saved through the model store under a key of its
own (`<type>_x<token>_<arm index>`), so every worker and host loads it like any model. The fits run in a job
process of their own (`manage.py experiment_arms`), never in a serving worker, while the creating request waits;
each training of the type fits them again on its fresh interactions; stopping or promoting the experiment deletes
their files (app/services/experiment_arms.py). Promoting an engine arm pins the type's trainings to its engine
(app/services/promotions.py).

Experiments live in Django's database (app/models.py): every worker reads the running ones at most every
MUSICBUD_EXPERIMENT_REFRESH_SECONDS (in a thread; the request path reads memory). A user's arm is
ai.experiments.assign_arm of (username, experiment name): SHA-256, the same in every worker, host and restart.
At most one experiment runs per type (a constraint of the table).

Services: experiment_create, experiments_list, experiment_get, experiment_stop, experiment_promote; serving asks
experiments_running_aget and arm_for_user. Outcomes and the report: app/services/experiment_outcomes.py.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from ai import experiments as stats
from ai.model_store import ModelIntegrityError, ModelNotFoundError, load_model, save_model
from ai.recommendation_engine import ENGINES, make_recommender
from app.content_types import BY_KEY, BY_MODEL_KEY, ContentType
from app.errors import ApplicationError, ServiceUnavailableError
from app.services.experiment_arms import arm_model_key, experiment_arm_models_delete
from app.services.model_registry import hmac_key, registry
from app.services.promotions import Promotion, promotion_pin

logger = logging.getLogger(__name__)

CURRENT = "current"  # an arm served by the type's model as it is
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # experiment names: they go into a header
ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
MAX_ARMS = 5
MAX_WINDOW_DAYS = 90.0
ROOT = Path(__file__).resolve().parents[2]


class ExperimentInputError(ApplicationError):
    """400: what is wrong, naming the field (also in `errors`)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}", extra={field: [message]})


class ExperimentConflictError(ApplicationError):
    status_code = 409


class UnknownExperimentError(ApplicationError):
    status_code = 404


class ArmTrainingError(ApplicationError):
    status_code = 503
    default_message = "The arms' models could not be trained; nothing was created."


@dataclass(frozen=True)
class Arm:
    name: str
    engine: str  # CURRENT or a make_recommender engine
    params: dict
    share: float
    model_key: str | None = None  # None for CURRENT: the type's own model
    version: str | None = None  # the version saved when the experiment was created


@dataclass(frozen=True)
class RunningExperiment:
    id: int
    name: str
    model_key: str  # the type's
    arms: tuple[Arm, ...]
    window_days: float

    @property
    def control(self) -> str:
        return self.arms[0].name

    def arm_for(self, username: str) -> Arm:
        """The user's arm: a stable hash of (username, experiment name) (ai.experiments.assign_arm)."""
        name = stats.assign_arm(experiment=self.name, user=username, arms=[(a.name, a.share) for a in self.arms])
        return next(a for a in self.arms if a.name == name)

    def label(self, arm: Arm) -> str:
        return f"{self.name}:{arm.name}"  # the X-Experiment header


def experiment_arm_for(*, experiment: str, username: str, arms: list[tuple[str, float]]) -> str:
    """The arm name a user gets in an experiment of those arms (what every worker computes)."""
    return stats.assign_arm(experiment=experiment, user=username, arms=arms)


# --- the running experiments, per worker --------------------------------------------------------------------

class _Running:
    def __init__(self) -> None:
        self.by_type: dict[str, RunningExperiment] = {}
        self.loaded_at: float | None = None
        self.refreshing = False


_running = _Running()


def _from_row(row) -> RunningExperiment:
    return RunningExperiment(id=row.id, name=row.name, model_key=row.content_type, window_days=row.window_days,
                             arms=tuple(Arm(name=a["name"], engine=a["engine"], params=a.get("params") or {},
                                            share=a["share"], model_key=a.get("model_key"),
                                            version=a.get("version")) for a in row.arms))


def experiments_running_read() -> dict[str, RunningExperiment]:
    """{type model key: its running experiment}, from the database (sync: call it in a thread)."""
    from app.models import Experiment

    return {row.content_type: _from_row(row) for row in Experiment.objects.filter(state=Experiment.RUNNING)}


def _refresh() -> dict[str, RunningExperiment]:
    try:
        _running.by_type = experiments_running_read()
    except DatabaseError as exc:  # keep serving what was read last; say why
        logger.warning("Could not read the running experiments (%s); keeping the %d known", exc,
                       len(_running.by_type))
    _running.loaded_at = time.monotonic()
    return _running.by_type


async def experiments_running_aget() -> dict[str, RunningExperiment]:
    """The running experiments by type, as this worker last read them: memory while a read is not due (one
    read in a thread every MUSICBUD_EXPERIMENT_REFRESH_SECONDS, by the first caller after it fell due; the
    others go on with what was read). Empty when MUSICBUD_EXPERIMENTS is off."""
    if not settings.MUSICBUD_EXPERIMENTS:
        return {}
    loaded = _running.loaded_at
    if loaded is None:
        return await asyncio.to_thread(_refresh)
    if time.monotonic() - loaded >= settings.MUSICBUD_EXPERIMENT_REFRESH_SECONDS and not _running.refreshing:
        _running.refreshing = True
        try:
            return await asyncio.to_thread(_refresh)
        finally:
            _running.refreshing = False
    return _running.by_type


def experiments_running_now() -> dict[str, RunningExperiment]:
    """What this worker read last, without any I/O (the change feed's thread asks it for every batch)."""
    return _running.by_type if settings.MUSICBUD_EXPERIMENTS else {}


def experiments_cache_clear() -> None:
    """Forget what this worker read (the next request reads the database again)."""
    _running.__init__()


# --- definition -----------------------------------------------------------------------------------------------

def _content_type(key: str) -> ContentType:
    ct = BY_KEY.get(key) or BY_MODEL_KEY.get(key)
    if ct is None:
        raise ExperimentInputError("content_type", f"unknown type {key!r}; use one of {sorted(BY_KEY)}")
    return ct


def _validated_arms(arms: list[dict]) -> list[Arm]:
    if not isinstance(arms, list) or not 2 <= len(arms) <= MAX_ARMS:
        raise ExperimentInputError("arms", f"give 2 to {MAX_ARMS} arms (the first is the control)")
    out = []
    for i, arm in enumerate(arms):
        name, engine, params = arm.get("name"), arm.get("engine"), arm.get("params") or {}
        if not isinstance(name, str) or not ARM_NAME.match(name):
            raise ExperimentInputError(f"arms[{i}].name", "1 to 32 letters, digits, '_', '.', '-'")
        if not isinstance(params, dict):
            raise ExperimentInputError(f"arms[{i}].params", "an object of the engine's parameters")
        if engine == CURRENT:
            if params:
                raise ExperimentInputError(f"arms[{i}].params", "the current model takes no parameters")
        else:
            if engine not in ENGINES:
                raise ExperimentInputError(f"arms[{i}].engine", f"unknown engine {engine!r}; use {CURRENT!r} or one "
                                                                 f"of {', '.join(ENGINES)}")
            try:  # the engine registry says which parameters exist
                make_recommender(engine, **params)
            except (ValueError, TypeError) as exc:
                raise ExperimentInputError(f"arms[{i}].params", str(exc)) from None
        share = arm.get("share")
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share):
            raise ExperimentInputError(f"arms[{i}].share", "a number in (0, 1]")
        out.append(Arm(name=name, engine=engine, params=params, share=float(share)))
    try:
        stats.validate_arms([(a.name, a.share) for a in out])
    except ValueError as exc:
        field = "arms.share" if "share" in str(exc) else "arms.name"
        raise ExperimentInputError(field, str(exc)) from None
    return out


def _experiment_json(row) -> dict:
    return {"id": row.id, "name": row.name, "content_type": BY_MODEL_KEY[row.content_type].key,
            "state": row.state, "control": row.arms[0]["name"], "window_days": row.window_days,
            "arms": [{k: a.get(k) for k in ("name", "engine", "params", "share", "model_key", "version")}
                     for a in row.arms],
            "promoted_arm": row.promoted_arm or None, "created_at": row.created_at.isoformat(),
            "stopped_at": row.stopped_at.isoformat() if row.stopped_at else None}


async def experiment_create(*, name: str, content_type: str, arms: list[dict], window_days: float | None = None
                            ) -> dict:
    """Validate, fit the engine arms in a job process (the request waits), then store the experiment, running.
    400 naming the field for bad input, 409 for a taken name or a type with a running experiment already."""
    if not isinstance(name, str) or not NAME.match(name):
        raise ExperimentInputError("name", "1 to 64 letters, digits, '_', '.', '-', starting with a letter or digit")
    ct = _content_type(content_type)
    valid = _validated_arms(arms)
    window = settings.MUSICBUD_EXPERIMENT_WINDOW_DAYS if window_days is None else window_days
    if not (isinstance(window, (int, float)) and 0 < window <= MAX_WINDOW_DAYS):
        raise ExperimentInputError("window_days", f"a number of days in (0, {MAX_WINDOW_DAYS:g}]")
    await asyncio.to_thread(_check_free, name, ct)
    base = await registry.aget(ct.model_key)
    if base is None:
        raise ServiceUnavailableError(f"No {ct.key} model is trained yet: train one before experimenting on it.")
    token = secrets.token_hex(4)
    valid = [replace(a, model_key=None if a.engine == CURRENT else arm_model_key(model_key=ct.model_key, token=token,
                                                                                 index=i))
             for i, a in enumerate(valid)]
    try:
        versions = await _arms_train(ct, [a for a in valid if a.model_key], name=name)
        valid = [replace(a, version=versions.get(a.model_key) if a.model_key else base.version) for a in valid]
        row = await asyncio.to_thread(_store, name, ct, valid, float(window))
    except Exception:  # nothing was created: neither are the arms' models kept
        await asyncio.to_thread(experiment_arm_models_delete, model_keys=[a.model_key for a in valid if a.model_key])
        raise
    experiments_cache_clear()
    logger.info("Experiment %s on %s started: %s", name, ct.key, [(a.name, a.engine, a.share) for a in valid])
    return _experiment_json(row)


def _check_free(name: str, ct: ContentType) -> None:
    from app.models import Experiment

    if Experiment.objects.filter(name=name).exists():
        raise ExperimentConflictError(f"An experiment named {name!r} exists already; choose another name.")
    running = Experiment.objects.filter(content_type=ct.model_key, state=Experiment.RUNNING).first()
    if running is not None:
        raise ExperimentConflictError(f"Experiment {running.name!r} is running on {ct.key}: stop it first "
                                      "(one experiment per type at a time).")


def _store(name: str, ct: ContentType, arms: list[Arm], window: float):
    from app.models import Experiment, ExperimentArmCounter

    try:
        with transaction.atomic():
            row = Experiment.objects.create(
                name=name, content_type=ct.model_key, window_days=window,
                arms=[{"name": a.name, "engine": a.engine, "params": a.params, "share": a.share,
                       "model_key": a.model_key, "version": a.version} for a in arms])
            ExperimentArmCounter.objects.bulk_create([ExperimentArmCounter(experiment=row, arm=a.name) for a in arms])
    except IntegrityError:  # another request took the name or the type meanwhile
        _check_free(name, ct)
        raise
    return row


async def _arms_train(ct: ContentType, arms: list[Arm], *, name: str) -> dict[str, str]:
    """Fit and save each engine arm in a job process of its own (`manage.py experiment_arms`); {model key:
    version}."""
    if not arms:
        return {}
    from app.services.training_jobs import job_environment

    with tempfile.TemporaryDirectory(prefix="musicbud-arms-") as tmp:
        spec, out = Path(tmp) / "spec.json", Path(tmp) / "out.json"
        spec.write_text(json.dumps({"experiment": name, "type": ct.model_key,
                                    "arms": [{"model_key": a.model_key, "engine": a.engine, "params": a.params,
                                              "name": a.name} for a in arms]}))
        log_dir = Path(settings.VAR_DIR) / "training"
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / f"experiment-{name}.log", "ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, str(ROOT / "manage.py"), "experiment_arms", "--spec", str(spec), "--out", str(out),
                cwd=ROOT, stdout=log, stderr=log, env=job_environment(), start_new_session=True)
            code = await process.wait()
        if code != 0 or not out.exists():
            raise ArmTrainingError(f"Training the arms' models failed (exit {code}; see "
                                   f"{log_dir / f'experiment-{name}.log'}); nothing was created.")
        return json.loads(out.read_text())


# --- reading, stopping, promoting -----------------------------------------------------------------------------

def experiment_row(experiment_id: int):
    """The experiment's row (404 in the envelope for an unknown id; sync)."""
    from app.models import Experiment

    try:
        return Experiment.objects.get(pk=experiment_id)
    except Experiment.DoesNotExist:
        raise UnknownExperimentError(f"No experiment {experiment_id}.") from None


def experiments_rows() -> list[dict]:
    """Every experiment, newest first (the database read: call it from a thread or a sync view)."""
    from app.models import Experiment

    return [_experiment_json(r) for r in Experiment.objects.order_by("-id")]


async def experiments_list() -> list[dict]:
    return await asyncio.to_thread(experiments_rows)


async def experiment_get(*, experiment_id: int) -> dict:
    return _experiment_json(await asyncio.to_thread(experiment_row, experiment_id))


async def experiment_stop(*, experiment_id: int) -> dict:
    """Stop serving the experiment (its counts stay; its report can still be read) and delete its arms' model files.
    Idempotent."""
    def stop():
        from app.models import Experiment

        with transaction.atomic():
            row = experiment_row(experiment_id)
            if row.state == Experiment.RUNNING:
                row.state, row.stopped_at = Experiment.STOPPED, timezone.now()
                row.save(update_fields=["state", "stopped_at"])
        return row

    row = await asyncio.to_thread(stop)
    experiments_cache_clear()
    await _flush_now()
    await asyncio.to_thread(experiment_arm_models_delete, model_keys=_arm_keys(row))
    return _experiment_json(row)


def _arm_keys(row) -> list[str]:
    return [a["model_key"] for a in row.arms if a.get("model_key")]


async def experiment_promote(*, experiment_id: int, arm: str) -> dict:
    """The arm's model becomes the type's served model (saved as a new version of the type's model: every worker
    serves it within MUSICBUD_MODEL_RELOAD_SECONDS), the experiment stops and its arms' model files are deleted. An
    engine arm pins the type: its next trainings fit the arm's engine and parameters instead of selecting
    (app/services/promotions.py). The model promoted is the arm's while the experiment runs; once stopped (its arms'
    files deleted), the arm is fitted again on the type's served model's interactions (a job, as at creation).
    The "current" arm keeps the type's model, and how it is trained, as they are."""
    from app.models import Experiment

    row = await asyncio.to_thread(experiment_row, experiment_id)
    chosen = next((a for a in row.arms if a["name"] == arm), None)
    if chosen is None:
        raise ExperimentInputError("arm", f"no arm {arm!r}; arms: {[a['name'] for a in row.arms]}")
    if row.state == Experiment.PROMOTED:
        raise ExperimentConflictError(f"Experiment {row.name!r} was promoted already ({row.promoted_arm}).")
    if chosen.get("model_key"):
        if row.state != Experiment.RUNNING:
            ct = BY_MODEL_KEY[row.content_type]
            await _arms_train(ct, [Arm(name=chosen["name"], engine=chosen["engine"], params=chosen.get("params") or {},
                                       share=chosen["share"], model_key=chosen["model_key"])], name=row.name)
        await asyncio.to_thread(_promote_model, row, chosen)
        await asyncio.to_thread(promotion_pin, promotion=Promotion(
            model_key=row.content_type, experiment=row.name, arm=chosen["name"], engine=chosen["engine"],
            params=chosen.get("params") or {}, promoted_at=timezone.now().isoformat(timespec="seconds")))

    def mark():
        row.state, row.promoted_arm = Experiment.PROMOTED, arm
        row.stopped_at = row.stopped_at or timezone.now()
        row.save(update_fields=["state", "promoted_arm", "stopped_at"])
        return row

    row = await asyncio.to_thread(mark)
    experiments_cache_clear()
    await _flush_now()
    await asyncio.to_thread(experiment_arm_models_delete, model_keys=_arm_keys(row))
    logger.info("Experiment %s: arm %s promoted to the %s model", row.name, arm, row.content_type)
    return _experiment_json(row)


def _promote_model(row, arm: dict) -> None:
    """Save the arm's model, as its file is (not as some worker holds it), as the type's new version."""
    try:
        model = load_model(settings.MUSICBUD_MODEL_DIR, arm["model_key"], hmac_key=hmac_key())
    except (ModelNotFoundError, ModelIntegrityError) as exc:
        raise ServiceUnavailableError(f"The model of arm {arm['name']!r} ({arm['model_key']}) cannot be loaded: "
                                      f"{exc}") from None
    manifest = {k: v for k, v in (model.manifest or {}).items()
                if k not in ("version", "files", "signature", "directory", "content_type", "format", "kind")}
    manifest["promoted_from"] = {"experiment": row.name, "arm": arm["name"], "model_key": arm["model_key"],
                                 "version": model.version}
    promoted = replace(model, content_type=row.content_type, manifest=manifest)
    save_model(settings.MUSICBUD_MODEL_DIR, promoted, hmac_key=hmac_key())
    registry.put(row.content_type, promoted)


async def _flush_now() -> None:
    from app.services.experiment_outcomes import outcomes

    await asyncio.to_thread(outcomes.flush)
