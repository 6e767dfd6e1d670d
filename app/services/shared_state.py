"""What several hosts must share, on Redis (REDIS_URL): the throttles' counts, the training lock and the training
job's status, and the news that a new model version was saved. Without REDIS_URL (and no Redis of `make run`'s,
see settings) every function here says "off" and the callers keep today's single-host ways: the throttle counts in
a file cache, the training lock is a file lock in the model directory, the status a file beside the models.

    redis_state()                   "off" (not configured), "up" or "down" (health says degraded)
    SharedLock(name, ttl=...)       a lock with a TTL, renewed by a thread while held (a holder that dies
                                    frees it within the TTL)
    model_version_announce(...)     PUBLISH on CHANNEL: a new version of a model was saved
    model_versions_follow(...)      each worker: on that news, check the model directory at once (the files are
                                    still verified; the polling of app/services/model_registry.py stays)
    throttle_cache                  the throttles' cache: Redis, or this host's file cache while Redis is down

Redis being down never stops serving: throttles count per host, models are still found by polling the model
directory. Only a training refuses (503), since it could not be sure it runs alone.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from typing import Any, Callable

import redis
from django.conf import settings
from django.core.cache import caches
from redis.backoff import NoBackoff
from redis.exceptions import LockError
from redis.lock import Lock
from redis.retry import Retry

from app.errors import ServiceUnavailableError

logger = logging.getLogger(__name__)

PREFIX = "musicbud:"
CHANNEL = PREFIX + "models"  # JSON {"model": key, "version": version} for every model version saved
# What redis-py raises when Redis cannot answer (refused, timed out, reset, a failover in progress).
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError, OSError)
DOWN_SECONDS = 2.0  # after a failure, callers with a fallback use it at once for this long, without trying

_client: redis.Redis | None = None
_client_pid: int | None = None
_down_until = 0.0
_lock = threading.Lock()


class SharedStateUnavailableError(ServiceUnavailableError):
    default_message = "Redis is unreachable."


def redis_configured() -> bool:
    return bool(settings.REDIS_URL)


def client() -> redis.Redis:
    """This process's client (one per process: a forked worker makes its own). Short timeouts, no retries: a
    caller with a fallback takes it at once."""
    global _client, _client_pid
    if _client is None or _client_pid != os.getpid():
        with _lock:
            if _client is None or _client_pid != os.getpid():
                _client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1.0, socket_timeout=2.0,
                                               retry=Retry(NoBackoff(), 0), health_check_interval=30)
                _client_pid = os.getpid()
    return _client


def mark_down(exc: BaseException) -> None:
    global _down_until
    if time.monotonic() >= _down_until:
        logger.warning("Redis is unreachable (%s: %s): throttles count per host, trainings refuse, for now",
                       type(exc).__name__, exc)
    _down_until = time.monotonic() + DOWN_SECONDS


def recently_down() -> bool:
    return time.monotonic() < _down_until


def redis_state() -> str:
    """"off" when no Redis is configured, else "up" or "down" (a PING)."""
    if not redis_configured():
        return "off"
    try:
        client().ping()
        return "up"
    except REDIS_ERRORS as exc:
        mark_down(exc)
        return "down"


def redis_required(what: str) -> redis.Redis:
    """The client, or SharedStateUnavailableError (503) naming what cannot be done without Redis."""
    try:
        c = client()
        c.ping()
        return c
    except REDIS_ERRORS as exc:
        mark_down(exc)
        raise SharedStateUnavailableError(
            f"Redis ({_where()}) is unreachable, so {what}: hosts share it to run one training at a time. "
            f"The models already trained go on serving. ({type(exc).__name__}: {exc})") from exc


def _where() -> str:
    """REDIS_URL without its password."""
    url = settings.REDIS_URL
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}"


# --- locks ------------------------------------------------------------------------------------------------

class SharedLock:
    """A lock every host sees: SET key token NX PX ttl; a thread renews it every ttl/3 while held; released only
    by its holder (compare and delete). A holder that dies (killed, its host gone) frees it within `ttl`."""

    def __init__(self, name: str, *, ttl: float = 30.0) -> None:
        self.key = PREFIX + name
        self.ttl = ttl
        self._lock = Lock(client(), self.key, timeout=ttl, thread_local=False)
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, *, blocking_timeout: float | None = None) -> bool:
        """Take it (waiting up to blocking_timeout seconds; None: not at all). REDIS_ERRORS when Redis is down."""
        got = self._lock.acquire(blocking=blocking_timeout is not None, blocking_timeout=blocking_timeout,
                                 token=secrets.token_hex(16))
        if got:
            self._stop.clear()
            self._renewer = threading.Thread(target=self._renew, name=f"lock-renew {self.key}", daemon=True)
            self._renewer.start()
        return got

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self._lock.reacquire():
                    logger.error("Lost the shared lock %s (it expired): another holder may take it", self.key)
                    return
            except LockError:
                logger.error("Lost the shared lock %s (it expired): another holder may take it", self.key)
                return
            except REDIS_ERRORS as exc:
                logger.error("Could not renew the shared lock %s: %s (it expires in %.0fs unless Redis is back)",
                             self.key, exc, self.ttl)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
        try:
            self._lock.release()
        except LockError:
            logger.warning("The shared lock %s had expired before it was released", self.key)
        except REDIS_ERRORS as exc:
            logger.warning("Could not release the shared lock %s (%s): it expires within %.0fs", self.key, exc,
                           self.ttl)

    @staticmethod
    def held(name: str) -> bool:
        """Whether anyone holds the lock `name` now (REDIS_ERRORS when Redis is down)."""
        return bool(client().exists(PREFIX + name))


def lock_take(name: str, *, ttl: float, what: str, blocking_timeout: float | None = None) -> SharedLock | None:
    """The shared lock `name`, held (the caller releases it), or None when another holder has it;
    SharedStateUnavailableError (503, saying that `what` cannot happen) when Redis is down."""
    redis_required(what)
    try:
        lock = SharedLock(name, ttl=ttl)
        return lock if lock.acquire(blocking_timeout=blocking_timeout) else None
    except REDIS_ERRORS as exc:
        mark_down(exc)
        raise SharedStateUnavailableError(f"Redis became unreachable, so {what}: {exc}") from exc


# --- values -----------------------------------------------------------------------------------------------

def value_set(name: str, value: dict) -> bool:
    """Store a JSON value; False (and a WARNING) when Redis is down."""
    try:
        client().set(PREFIX + name, json.dumps(value))
        return True
    except REDIS_ERRORS as exc:
        mark_down(exc)
        return False


def value_get(name: str) -> dict | None:
    """A stored JSON value ({} when never set), or None when Redis cannot say (down)."""
    try:
        raw = client().get(PREFIX + name)
    except REDIS_ERRORS as exc:
        mark_down(exc)
        return None
    return json.loads(raw) if raw else {}


# --- new model versions -------------------------------------------------------------------------------------

def model_version_announce(*, model_key: str, version: str) -> None:
    """Tell every host's workers that `model_key` has a new version in the model directory (no-op without Redis;
    a WARNING when Redis is down: they still find it by polling)."""
    if not redis_configured():
        return
    try:
        client().publish(CHANNEL, json.dumps({"model": model_key, "version": version}))
    except REDIS_ERRORS as exc:
        mark_down(exc)


_follower: threading.Thread | None = None


def model_versions_follow(on_version: Callable[[str, str], Any]) -> None:
    """In this worker, a thread that calls on_version(model_key, version) for every announced version;
    reconnects (every few seconds) when Redis goes away. No-op without Redis."""
    global _follower
    if not redis_configured() or (_follower is not None and _follower.is_alive()):
        return

    def run() -> None:
        while redis_configured():  # (a test may unset it)
            try:
                pubsub = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1.0,
                                              socket_keepalive=True).pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL)
                for message in pubsub.listen():
                    try:
                        news = json.loads(message["data"])
                        on_version(str(news["model"]), str(news["version"]))
                    except (ValueError, KeyError, TypeError) as exc:
                        logger.warning("Ignored a malformed model announcement %r: %s", message.get("data"), exc)
            except REDIS_ERRORS as exc:
                mark_down(exc)
                time.sleep(DOWN_SECONDS)

    _follower = threading.Thread(target=run, name="musicbud-model-announcements", daemon=True)
    _follower.start()


# --- throttles ----------------------------------------------------------------------------------------------

class ThrottleCache:
    """What DRF's throttles call (get, set): the shared cache (Redis with REDIS_URL), else, and while Redis is
    down, this host's file cache ("throttle_local"): a login throttle then counts per host until Redis is back."""

    def _cache(self):
        return caches["throttle_local" if redis_configured() and recently_down() else "throttle"]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self._cache().get(key, default)
        except REDIS_ERRORS as exc:
            mark_down(exc)
            return caches["throttle_local"].get(key, default)

    def set(self, key: str, value: Any, timeout: float | None = None) -> None:
        try:
            self._cache().set(key, value, timeout)
        except REDIS_ERRORS as exc:
            mark_down(exc)
            caches["throttle_local"].set(key, value, timeout)


throttle_cache = ThrottleCache()
