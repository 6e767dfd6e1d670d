"""app/services/shared_state.py against a real Redis (Debian's redis-server on a free loopback port, a password,
a temporary directory): the shared lock, the throttle cache and its fallback, new-version news, and what the
service does when that Redis stops: it serves, health says degraded, a training answers 503 with a message."""
from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import signal
import time

import pytest
from django.core.cache import caches

from scripts import local_services as ls


@pytest.fixture
def redis_server(tmp_path, settings):
    """A Redis of the test's own, and the settings pointing at it (throttle cache included)."""
    try:
        server = ls.redis_start(data_dir=tmp_path / "redis", port=ls.free_port(), password=secrets.token_urlsafe(12))
    except ls.LocalServiceError as exc:
        pytest.skip(f"no redis-server: {exc} (make deps-debian)")
    from app.services import shared_state

    settings.REDIS_URL = server.url
    settings.CACHES = {**settings.CACHES, "throttle": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": server.url, "KEY_PREFIX": "t",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1.0}}}
    shared_state._client = None  # noqa: SLF001 - a fresh client for this server
    shared_state._down_until = 0.0  # noqa: SLF001
    yield server
    server.stop()
    settings.REDIS_URL = ""
    shared_state._client = None  # noqa: SLF001
    shared_state._down_until = 0.0  # noqa: SLF001


def test_a_shared_lock_has_one_holder_at_a_time(redis_server):
    from app.services.shared_state import SharedLock

    first, second = SharedLock("test:lock", ttl=5), SharedLock("test:lock", ttl=5)
    assert first.acquire()
    assert not second.acquire()
    assert SharedLock.held("test:lock")
    first.release()
    assert not SharedLock.held("test:lock")
    assert second.acquire()
    second.release()


def test_a_held_lock_is_renewed_past_its_ttl(redis_server):
    from app.services.shared_state import SharedLock

    lock = SharedLock("test:renewed", ttl=0.6)
    assert lock.acquire()
    time.sleep(1.5)  # more than twice the TTL: only the renewals keep it
    assert SharedLock.held("test:renewed")
    assert not SharedLock("test:renewed", ttl=0.6).acquire()
    lock.release()


def _hold_forever(url: str) -> None:
    os.environ["REDIS_URL"] = url
    from app.services import shared_state

    shared_state._client = None  # noqa: SLF001 - the forked child's own connection
    lock = shared_state.SharedLock("test:dead", ttl=1.0)
    assert lock.acquire()
    time.sleep(60)


def test_a_killed_holder_frees_its_lock_within_the_ttl(redis_server):
    from app.services.shared_state import SharedLock

    child = multiprocessing.get_context("fork").Process(target=_hold_forever, args=(redis_server.url,))
    child.start()
    try:
        deadline = time.monotonic() + 20
        while not SharedLock.held("test:dead"):
            assert time.monotonic() < deadline, "the child never took the lock"
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        killed = time.monotonic()
        while SharedLock.held("test:dead"):
            assert time.monotonic() - killed < 3.0, "the lock of a dead holder did not expire"
            time.sleep(0.05)
    finally:
        child.kill()
        child.join()


def test_throttle_counts_go_to_redis_and_to_local_files_while_it_is_down(redis_server):
    from app.services import shared_state

    shared_state.throttle_cache.set("k", [1.0, 2.0], 60)
    with redis_server.client() as client:
        assert any(key.endswith(b"k") for key in client.keys("*")), "the count is not in Redis"
    assert shared_state.throttle_cache.get("k") == [1.0, 2.0]
    redis_server.stop()
    shared_state.throttle_cache.set("k", [3.0], 60)  # no error: this host's files take it
    assert shared_state.throttle_cache.get("k") == [3.0]
    assert caches["throttle_local"].get("k") == [3.0]


def test_new_versions_are_announced_to_followers(redis_server):
    from app.services import shared_state

    heard = []
    shared_state._follower = None  # noqa: SLF001
    shared_state.model_versions_follow(lambda key, version: heard.append((key, version)))
    deadline = time.monotonic() + 10
    while not heard and time.monotonic() < deadline:  # the subscription takes a moment: announce until heard
        shared_state.model_version_announce(model_key="movie", version="v-test")
        time.sleep(0.1)
    assert ("movie", "v-test") in heard


def test_health_says_degraded_and_training_answers_503_when_redis_is_down(redis_server, neo4j, tmp_path, settings):
    from app.services import shared_state
    from app.services.health import _health
    from app.services.training_jobs import training_job_start

    settings.MUSICBUD_MODEL_DIR = tmp_path / "models"
    assert _health()["redis"] == "up" and _health()["status"] == "ok"
    redis_server.stop()
    health = _health()
    assert health["redis"] == "down" and health["status"] == "degraded"
    assert health["neo4j"] == "up"
    with pytest.raises(shared_state.SharedStateUnavailableError) as refused:
        training_job_start()
    assert refused.value.status_code == 503
    assert "Redis" in refused.value.message and "no training can start" in refused.value.message
    assert not (tmp_path / "models" / "training_status.json").exists() or \
        json.loads((tmp_path / "models" / "training_status.json").read_text()).get("state") != "starting"
