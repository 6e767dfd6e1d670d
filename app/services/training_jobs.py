"""Training as a job of its own process: serving workers never run a training in their threads.

    training_job_start()   spawns `python manage.py train_models --job <id>` (its own session) and returns
    training_status_get()  the running or last job: state, per type state / metrics / seconds / error
    training_job_run()     start, and (wait) the job's results when it ends: what the training endpoint answers

Every training run (the job's process, `manage.py train_models`, test_recommendations.py) reports into one
status file beside the models (MUSICBUD_MODEL_DIR/training_status.json, replaced atomically), so whoever asks
sees the same job. Only one training runs at a time across every process and worker sharing the model
directory: the training lock (app/services/training.py) guarantees it, and a spawn lock keeps two workers
from starting two jobs at once. A job whose process died (killed, out of memory) holds no lock any more: its
status then says failed, and the models it did not finish were never switched (ai/model_store.py), so the old
ones go on serving.

MUSICBUD_TRAIN_EVERY (e.g. 60m; off by default, 60m in `make run`) starts a job in every worker's scheduler
thread when the last training is that old; the locks make it one job. With Redis (REDIS_URL) the locks and the
status are shared by every host (app/services/shared_state.py), so hosts sharing a model directory and a graph
run one job between them, and a training refuses (503) while Redis is unreachable.
"""
from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings

from app.content_types import CONTENT_TYPES, content_type_get
from app.errors import ApplicationError, ServiceUnavailableError, TrainingInProgressError
from app.services import shared_state
from app.services.model_registry import TASTE_KEY
from app.services.training import training_running
from app.services.training_status import now_iso, status_read, status_write

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
HOST = socket.gethostname()  # a job's pid means something only on its own host
START_SECONDS = 60.0  # another host's job may take this long from "starting" to holding the training lock
FINISHED = ("succeeded", "failed")


class TrainingFailedError(ApplicationError):
    status_code = 503
    default_message = "The training failed; the models already served go on serving."


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:  # a child of this process that ended but was not reaped yet is not alive either
        return os.waitpid(int(pid), os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True  # not our child: it exists


def training_status_get() -> dict:
    """The running or last training job ({} when none ever ran). A job said to run whose process holds no lock
    any more (and is gone) died: reported failed."""
    status = status_read()
    if status.get("state") in ("starting", "running") and not training_running() and not (
            status.get("state") == "starting" and _starting_alive(status)):
        status = {**status, "state": "failed", "finished_at": status.get("finished_at") or now_iso(),
                  "error": status.get("error") or f"the training process (pid {status.get('pid')}) ended before it "
                                                  "finished; the models it did not save were not switched"}
        for key, part in status.get("types", {}).items():
            if part.get("state") not in ("done", "failed", "skipped"):
                part["state"] = "failed"
    return status


@contextmanager
def _spawn_lock():
    """One job start at a time: in this host (a file lock), and across hosts with Redis (503 when it is down)."""
    path = Path(settings.MUSICBUD_MODEL_DIR) / ".training.spawn.lock"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    shared = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if shared_state.redis_configured():
            shared = shared_state.lock_take("training:spawn", ttl=30.0, what="no training can start",
                                            blocking_timeout=10.0)
            if shared is None:
                raise TrainingInProgressError()
        yield
    finally:
        if shared is not None:
            shared.release()
        os.close(fd)


def _starting_alive(status: dict) -> bool:
    """Whether a job said to be starting may still be: its process lives (this host), or (another host's) it was
    requested less than START_SECONDS ago."""
    if status.get("host", HOST) == HOST:
        return _alive(status.get("pid"))
    requested = status.get("requested_at")
    return bool(requested) and time.time() - datetime.fromisoformat(requested).timestamp() < START_SECONDS


def training_job_start(*, content_types: list[str] | None = None, if_due: bool = False) -> dict | None:
    """Spawn a training job (TrainingInProgressError when one runs); returns its status as it starts. `if_due`
    (the schedule): only when one is still due once the start is ours (None otherwise), so that workers and
    hosts which found it due at the same time start one job, not one after another."""
    keys = [content_type_get(key=k).model_key for k in content_types] if content_types else \
        [ct.model_key for ct in CONTENT_TYPES]
    with _spawn_lock():
        current = training_status_get()
        if training_running() or (current.get("state") == "starting" and _starting_alive(current)):
            raise TrainingInProgressError()
        if if_due and not training_due():
            return None
        job_id = secrets.token_hex(6)
        status = {"job_id": job_id, "state": "starting", "requested_at": now_iso(), "progress": 0.0, "host": HOST,
                  "types": {key: {"state": "pending"} for key in [*keys, TASTE_KEY]}}
        status_write(status)
        log_dir = Path(settings.VAR_DIR) / "training"
        log_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, str(ROOT / "manage.py"), "train_models", "--job", job_id]
        for key in content_types or ():
            cmd += ["--type", content_type_get(key=key).key]
        with open(log_dir / f"{job_id}.log", "ab") as log:
            process = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                       env=job_environment())
        status["pid"] = process.pid
        status_write(status)
    logger.info("Training job %s started (pid %d)", job_id, process.pid)
    return status


def job_environment() -> dict[str, str]:
    """The job's environment: this process's, with the graph and model settings it serves with (which may have
    been set other than from the environment), and no follower or schedule of its own."""
    return {**os.environ, "NEO4J_BOLT_URL": settings.NEO4J_BOLT_URL, "NEO4J_PASSWORD": settings.NEO4J_PASSWORD,
            "NEO4J_DATABASE": settings.NEO4J_DATABASE, "MUSICBUD_MODEL_DIR": str(settings.MUSICBUD_MODEL_DIR),
            "MUSICBUD_MODEL_HMAC_KEY": settings.MUSICBUD_MODEL_HMAC_KEY, "MUSICBUD_VAR_DIR": str(settings.VAR_DIR),
            "REDIS_URL": settings.REDIS_URL, "MUSICBUD_LIVE": "false", "MUSICBUD_TRAIN_EVERY": "off"}


async def training_status_aget() -> dict:
    """training_status_get off the event loop (it reads a file and probes the lock)."""
    return await asyncio.to_thread(training_status_get)


async def training_job_run(*, content_types: list[str] | None = None, wait: bool = True) -> dict:
    """Start a job; with `wait`, its results when it ends ({model key: trained}); else its starting status. A job
    that could not train at all is an error in the envelope (503: the graph was unreachable, or it died)."""
    status = await asyncio.to_thread(training_job_start, content_types=content_types)
    if not wait:
        return status
    while True:
        await asyncio.sleep(0.25)
        current = await asyncio.to_thread(training_status_get)
        if current.get("job_id") != status["job_id"]:
            raise TrainingFailedError("The training job's status was replaced by another job's.")
        if current.get("state") in FINISHED:
            break
    if current["state"] == "failed":
        if current.get("error_kind") == "in_progress":
            raise TrainingInProgressError()
        if current.get("error_kind") == "unavailable":
            raise ServiceUnavailableError(current["error"])
        raise TrainingFailedError(f"The training failed: {current.get('error')}")
    return current.get("results", {})


def _last_training_at() -> float | None:
    """When the last training finished (or the newest model was trained), epoch seconds."""
    from ai.model_store import ModelIntegrityError, read_manifest
    from app.services.health import MODEL_KEYS

    stamps = []
    finished = status_read().get("finished_at") or status_read().get("started_at")
    if finished:
        stamps.append(datetime.fromisoformat(finished).timestamp())
    for key in MODEL_KEYS:
        try:
            manifest = read_manifest(settings.MUSICBUD_MODEL_DIR, key)
        except ModelIntegrityError:  # an unreadable manifest says nothing of when the last training was
            manifest = None
        if manifest and manifest.get("trained_at"):
            stamps.append(datetime.fromisoformat(manifest["trained_at"]).timestamp())
    return max(stamps) if stamps else None


def training_due() -> bool:
    every = settings.MUSICBUD_TRAIN_EVERY
    if not every:
        return False
    last = _last_training_at()
    return last is None or time.time() - last >= every


_scheduler: threading.Thread | None = None


def training_schedule_start() -> None:
    """In this worker, start a training job whenever one is due (MUSICBUD_TRAIN_EVERY); no-op when off."""
    global _scheduler
    every = settings.MUSICBUD_TRAIN_EVERY
    if not every or (_scheduler is not None and _scheduler.is_alive()):
        return

    def run() -> None:
        check = min(60.0, max(1.0, every / 10))
        while True:
            time.sleep(check)
            try:
                if training_due() and not training_running():
                    training_job_start(if_due=True)
            except TrainingInProgressError:
                pass  # another worker (or host) started it
            except shared_state.SharedStateUnavailableError as exc:
                logger.warning("The scheduled training waits for Redis: %s", exc)
            except OSError as exc:
                logger.error("The training schedule could not start a job: %s", exc)

    _scheduler = threading.Thread(target=run, name="musicbud-training-schedule", daemon=True)
    _scheduler.start()
