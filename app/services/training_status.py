"""The training status file: what the running or last training run reports as it goes (per type state,
metrics, seconds, errors), replaced atomically beside the models (MUSICBUD_MODEL_DIR/training_status.json)
so that every process and worker sharing the model directory reads the same job; with Redis (REDIS_URL) also
there, which every host reads (app/services/shared_state.py; the file when Redis cannot answer)."""
from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path

from django.conf import settings

from app.services import shared_state

logger = logging.getLogger(__name__)

STATUS_FILE = "training_status.json"
HISTORY_FILE = "training_history.jsonl"  # one line per finished training run: each type's version and metrics
HISTORY_KEEP = 50
STATUS_KEY = "training:status"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def status_path() -> Path:
    return Path(settings.MUSICBUD_MODEL_DIR) / STATUS_FILE


def status_read() -> dict:
    if shared_state.redis_configured():
        status = shared_state.value_get(STATUS_KEY)
        if status is not None:
            return status
    try:
        return json.loads(status_path().read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        logger.warning("%s is not valid JSON: ignored", status_path())
        return {}


def status_write(status: dict) -> None:
    path = status_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".status-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(status, f, indent=1)
    os.replace(tmp, path)
    if shared_state.redis_configured():
        shared_state.value_set(STATUS_KEY, status)


class JobReport:
    """What a training run reports as it goes (app/services/training.py's models_train calls it)."""

    def __init__(self, job_id: str | None = None, *, keys: list[str]) -> None:
        previous = status_read()
        if job_id and previous.get("job_id") == job_id:
            self.status = previous
        else:
            self.status = {"job_id": job_id or secrets.token_hex(6), "requested_at": now_iso(),
                           "types": {key: {"state": "pending"} for key in keys}}
        self.status.update(state="running", pid=os.getpid(), host=socket.gethostname(), started_at=now_iso(),
                           finished_at=None, error=None)
        self._lock = threading.Lock()

    def _save(self) -> None:
        with self._lock:
            status_write(self.status)

    def begin(self) -> None:
        self._save()

    def type_state(self, key: str, state: str, **fields) -> None:
        self.status["types"].setdefault(key, {}).update(state=state, **fields)
        done = sum(p.get("state") in ("done", "failed", "skipped") for p in self.status["types"].values())
        self.status["progress"] = round(done / max(len(self.status["types"]), 1), 3)
        self._save()

    def finish(self, results: dict[str, bool] | None, error: str | None = None, kind: str | None = None) -> None:
        self.status.update(state="failed" if error else "succeeded", finished_at=now_iso(), error=error,
                           error_kind=kind, results=results or {}, progress=1.0)
        self._save()
        if results:
            history_append(entry={"job_id": self.status["job_id"], "finished_at": self.status["finished_at"],
                                  "types": {key: {f: part[f] for f in ("version", "metrics", "seconds") if f in part}
                                            for key, part in self.status["types"].items()
                                            if part.get("state") == "done"}})


def history_path() -> Path:
    return Path(settings.MUSICBUD_MODEL_DIR) / HISTORY_FILE


def history_read() -> list[dict]:
    """The last HISTORY_KEEP finished training runs, oldest first (lines that do not parse are skipped)."""
    try:
        lines = history_path().read_text().splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines[-HISTORY_KEEP:]:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


def history_append(*, entry: dict) -> None:
    """Add one run to the history, keeping the last HISTORY_KEEP (replaced atomically, as the status is)."""
    path = history_path()
    lines = [json.dumps(e, separators=(",", ":")) for e in history_read()][-(HISTORY_KEEP - 1):]
    lines.append(json.dumps(entry, separators=(",", ":")))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".history-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
