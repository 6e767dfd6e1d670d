"""The models a server process serves: loaded once, swapped whole when a newer version appears on disk.

Every process (uvicorn worker) has its own registry; a training in any process writes a new version and
switches the manifest atomically, and each registry notices within MUSICBUD_MODEL_RELOAD_SECONDS by
reading that small manifest (no restart), and at once when Redis announces it (app/services/shared_state.py). A model that fails its integrity check is refused with a
WARNING and the type falls back to popularity (or keeps the version it already serves).
"""
from __future__ import annotations

import asyncio
import ctypes
import gc
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from django.conf import settings

from ai.model_store import ModelIntegrityError, ModelNotFoundError, current_version, load_model
from ai.trained_model import TrainedModel

logger = logging.getLogger(__name__)

USER_DIRECTORY_FILE = "user_directory.json"
TASTE_KEY = "taste"  # the joint taste model's key, beside each content type's model key


def hmac_key() -> bytes:
    return settings.MUSICBUD_MODEL_HMAC_KEY.encode()


class ModelRegistry:
    def __init__(self, model_dir: Path | None = None):
        self._model_dir = model_dir
        self._models: dict[str, TrainedModel] = {}
        self._versions: dict[str, str | None] = {}
        self._checked: dict[str, float] = {}
        self._claimed: dict[str, float] = {}  # when aget() last sent a caller to check (see _claim)
        self._refused: dict[str, str] = {}
        self._settled: set[str] = set()  # model keys whose first look at the disk has finished
        self._users: dict[str, str] = {}
        self._users_mtime: float | None = None
        self._users_checked = 0.0
        self._users_settled = False  # a first users() has finished (the file read, or found missing)
        self._lock = threading.Lock()

    @property
    def model_dir(self) -> Path:
        return self._model_dir or Path(settings.MUSICBUD_MODEL_DIR)

    def get(self, model_key: str) -> TrainedModel | None:
        """The served model of a type, reloading it first if a newer version was saved (checked at most once
        per MUSICBUD_MODEL_RELOAD_SECONDS). None when there is none that passes its integrity check.

        Until a first look has finished every call looks: a thread arriving while another one loads the first
        version waits for it, rather than answer as if no model were trained."""
        now = time.monotonic()
        if model_key not in self._settled or \
                now - self._checked.get(model_key, -1e9) >= settings.MUSICBUD_MODEL_RELOAD_SECONDS:
            self._checked[model_key] = now
            try:
                self._refresh(model_key)
            finally:
                self._settled.add(model_key)
        return self._models.get(model_key)

    async def aget(self, model_key: str) -> TrainedModel | None:
        """get() for the event loop, which decides whether a thread is needed: while no check for a newer
        version is due, the loaded model at once (no file touched); when one is due, the first caller checks
        (and perhaps loads) in a worker thread while the others go on with what is loaded; until a first look
        has finished, every caller waits for it in a thread."""
        if model_key in self._settled and not self._claim(model_key, self._checked.get(model_key, -1e9)):
            return self._models.get(model_key)
        return await asyncio.to_thread(self.get, model_key)

    def _claim(self, key: str, checked: float) -> bool:
        """True once per due check: for the first caller after `checked` is MUSICBUD_MODEL_RELOAD_SECONDS old."""
        now, every = time.monotonic(), settings.MUSICBUD_MODEL_RELOAD_SECONDS
        if now - checked < every or now - self._claimed.get(key, -1e9) < every:
            return False
        self._claimed[key] = now
        return True

    def _refresh(self, model_key: str) -> None:
        try:
            version = current_version(self.model_dir, model_key)
        except (ModelIntegrityError, OSError) as exc:  # an unreadable manifest is treated like a corrupt model
            logger.warning("Manifest of %s model unreadable (%s); keeping what is served", model_key, exc)
            return
        if version is None or version == self._versions.get(model_key) or version == self._refused.get(model_key):
            return
        with self._lock:
            if version == self._versions.get(model_key) or version == self._refused.get(model_key):
                return  # another thread loaded (or refused) it while this one waited
            try:
                model = load_model(self.model_dir, model_key, hmac_key=hmac_key())
            except (ModelIntegrityError, ModelNotFoundError, OSError, ValueError, EOFError) as exc:
                self._refused[model_key] = version
                logger.warning("Refused %s model version %s: %s; %s", model_key, version, exc,
                               "keeping the served version" if model_key in self._models else "falling back to popularity")
                return
            model.warm()
            self._models[model_key] = model
            self._versions[model_key] = version
            # A model is ~10^5 long-lived objects (item details): keep the garbage collector's full passes
            # from walking them all again (a ~0.1 s pause each at 1M interactions). Reference counting still
            # frees a replaced version, which holds no reference cycle.
            gc.freeze()
            release_freed_memory()  # the file bytes and unpickling buffers
            logger.info("Serving %s model version %s", model_key, version)

    def announced(self, model_key: str, version: str) -> None:
        """Another process (any host, through Redis) saved `version` of a model: look at the model directory now
        rather than at the next poll (the files are verified as ever; a version not there yet is found by it)."""
        if version != self._versions.get(model_key):
            self._checked[model_key] = -1e9
            self.get(model_key)

    def current(self, model_key: str) -> TrainedModel | None:
        """What is served now, without looking for a newer version (no I/O)."""
        return self._models.get(model_key)

    def current_models(self) -> list[TrainedModel]:
        return list(self._models.values())

    def put(self, model_key: str, model: TrainedModel) -> None:
        """Serve a model this process just trained (and saved) without reading it back."""
        model.warm()
        with self._lock:
            self._models[model_key] = model
            self._versions[model_key] = model.manifest.get("version")
            self._checked[model_key] = time.monotonic()

    def version(self, model_key: str) -> dict | None:
        model = self.get(model_key)
        if model is None:
            return None
        return {"version": model.manifest.get("version"), "trained_at": model.manifest.get("trained_at")}

    # --- username -> ParentUser uid, written with the models so serving needs no graph round trip ---
    def users(self) -> dict[str, str]:
        now = time.monotonic()
        # until the directory has been read once, every call looks (another thread may be reading it right now)
        if self._users_mtime is None or now - self._users_checked >= settings.MUSICBUD_MODEL_RELOAD_SECONDS:
            self._users_checked = now
            path = self.model_dir / USER_DIRECTORY_FILE
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                self._users_settled = True
                return self._users
            if mtime != self._users_mtime:
                try:
                    self._users = {name: sys.intern(uid) for name, uid in json.loads(path.read_text()).items()}
                    self._users_mtime = mtime
                except (OSError, ValueError) as exc:
                    logger.warning("User directory %s unreadable: %s", path, exc)
            self._users_settled = True
        return self._users

    async def users_aget(self) -> dict[str, str]:
        """users() for the event loop: the directory at once while no check is due; the first caller after one
        fell due (or before the first read) reads the file in a worker thread."""
        if self._users_settled and not self._claim("\0users", self._users_checked):
            return self._users
        return await asyncio.to_thread(self.users)

    def remember_user(self, username: str, uid: str) -> None:
        self._users = {**self._users, username: uid}

    def usernames_by_uid(self) -> dict[str, str]:
        users = self.users()
        if getattr(self, "_by_uid_source", None) is not users:
            self._by_uid = {uid: name for name, uid in users.items()}
            self._by_uid_source = users
        return self._by_uid


def release_freed_memory() -> None:
    """Give the C heap's free pages back to the system (glibc's malloc_trim) after a big transient allocation
    (loading a model): glibc keeps them otherwise, and a worker's resident size would carry every load's peak.
    Nothing happens where there is no glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def malloc_tune(*, arenas: int = 2, mmap_threshold: int = 128 * 1024) -> None:
    """Keep a serving process's C heap close to what it uses (glibc's mallopt; nothing happens without glibc).
    Call it at start, before the threads exist.

    - At most `arenas` heaps (M_ARENA_MAX; default 8 per core): the threads serving requests share them instead
      of each keeping freed memory in one of its own (~15 MB less resident per worker under load).
    - Blocks of `mmap_threshold` bytes or more are mapped and unmapped on their own (M_MMAP_THRESHOLD), and the
      heap's free top is returned from that size on (M_TRIM_THRESHOLD). glibc's default threshold grows with
      every large block freed, up to 32 MB, after which the numpy temporaries of loading, scoring and
      evaluating are carved from the heap and leave it fragmented: ~35-45 MB more resident per worker with the
      1M models loaded (bench/memory.py). The cost is a mapping per temporary of 128 kB or more (a page of
      20k float32 scores is 80 kB: not one of them)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(-8, arenas)  # M_ARENA_MAX
        libc.mallopt(-3, mmap_threshold)  # M_MMAP_THRESHOLD (fixed: no dynamic growth)
        libc.mallopt(-1, mmap_threshold)  # M_TRIM_THRESHOLD


def _glibc():
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim, _libc.mallopt  # noqa: B018 - both exist (glibc), or neither is used
        except (OSError, AttributeError):
            _libc = False
    return _libc or None


_libc = None


def user_directory_save(*, model_dir: Path, usernames: dict[str, str]) -> None:
    """Atomically write {username: uid} beside the models (plain JSON: nothing in it runs when read)."""
    model_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=model_dir, prefix=".users-", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(usernames, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, model_dir / USER_DIRECTORY_FILE)


registry = ModelRegistry()
