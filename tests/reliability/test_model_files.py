"""Model files on disk, end to end through the server: a tampered, truncated or garbled model is refused with a
WARNING naming the file (the type keeps the version it serves, or falls back to popularity); a training killed
mid-way (kill -9) leaves the previous models in service and loadable; the model directory is created 0700."""
from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import httpx
import pytest

from scripts import live_stack
from ai.model_store import current_version, load_model, read_manifest, save_model
from ai.trained_model import TrainedModel
from app.content_types import CONTENT_TYPES
from tests.reliability.conftest import bearer, client_on_each_worker, training_running, wait_until

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

MODEL_KEYS = [ct.model_key for ct in CONTENT_TYPES] + ["taste"]


def _hmac(stack) -> bytes:
    return stack.env["MUSICBUD_MODEL_HMAC_KEY"].encode()


def _resave(stack, model_key: str) -> tuple[str, TrainedModel]:
    """The current version of a type saved again as a new version (what a training would switch to)."""
    model = load_model(stack.model_dir, model_key, hmac_key=_hmac(stack))
    version = save_model(stack.model_dir, model, hmac_key=_hmac(stack))
    return version, model


def _version_dir(stack, model_key: str, version: str):
    return stack.model_dir / f"{model_key}-{version}"


def _get(server, stack, type_key: str) -> httpx.Response:
    response = httpx.get(f"{server.url}/v1/recommendations/{type_key}/?n=5", headers=bearer(stack.token("demo")),
                         timeout=30)
    assert response.status_code == 200, response.text
    return response


def test_broken_model_files_are_refused_naming_the_file(stack, tmp_path):
    mine = stack.copy(tmp_path)
    server = live_stack.serve(mine.env, workers=2)
    clients = {}
    try:
        clients = client_on_each_worker(server, mine.token("demo"))
        user = bearer(mine.token("demo"))

        def served_by_each_worker() -> dict[str, set[str]]:
            versions: dict[str, set[str]] = {}
            for client in clients.values():
                for key in ("anime", "manga", "genres"):
                    response = client.get(f"/v1/recommendations/{key}/?n=5", headers=user)
                    assert response.status_code == 200
                    versions.setdefault(key, set()).add(response.headers["X-Model-Version"])
            return versions

        served = served_by_each_worker()
        assert all(len(v) == 1 for v in served.values())

        # new versions, each broken on disk after it was saved (the manifest switched to it)
        tampered, _ = _resave(mine, "anime")
        path = _version_dir(mine, "anime", tampered) / "anime_model.pkl"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
        truncated, _ = _resave(mine, "manga")
        short = _version_dir(mine, "manga", truncated) / "manga_items.pkl"
        short.write_bytes(short.read_bytes()[:-100])
        (mine.model_dir / "genre_manifest.json").write_text('{"version": "20990101T000000000000Z-abcdef", ')

        # the running workers notice the new versions (on their next requests), refuse them and keep serving
        # what they served
        def refused_by_both_workers() -> bool:
            assert served_by_each_worker() == served
            log = server.log_text()
            return log.count("anime_model.pkl: HMAC mismatch") == 2 and log.count("manga_items.pkl: ") == 2

        wait_until(refused_by_both_workers, timeout=30, interval=0.1, message="the workers never refused the files")
        log = server.log_text()
    finally:
        for client in clients.values():
            client.close()
        server.stop()
    assert f"WARNING app.services.model_registry: Refused anime model version {tampered}" in log
    assert "keeping the served version" in log and "falling back to popularity" not in log
    assert str(path) in log and str(short) in log
    assert "genre_manifest.json: not valid JSON" in log

    # a server started now has nothing valid for those types: popular items, and health says so
    server = live_stack.serve(mine.env, workers=1)
    try:
        for key, model_key in (("anime", "anime"), ("manga", "manga"), ("genres", "genre")):
            response = _get(server, mine, key)
            assert "X-Model-Version" not in response.headers
            items = response.json()["data"]
            assert items and all(i["reason"] == "popular" for i in items)
            health = httpx.get(f"{server.url}/v1/health/", timeout=30).json()["data"]
            assert health["models"][model_key] is None
        assert _get(server, mine, "movies").headers["X-Model-Version"]  # the others are untouched
        log = server.log_text()
    finally:
        server.stop()
    assert str(path) in log and "falling back to popularity" in log


def test_a_training_killed_mid_save_leaves_the_previous_models_in_service(stack, tmp_path):
    mine = stack.copy(tmp_path)
    before = {key: current_version(mine.model_dir, key) for key in MODEL_KEYS}
    server = live_stack.serve(mine.env, workers=2)
    try:
        training = subprocess.Popen([sys.executable, "manage.py", "train_models"], cwd=live_stack.ROOT, env=mine.env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        caught = None
        deadline = time.monotonic() + 120
        while training.poll() is None and time.monotonic() < deadline:
            saving = [e.name for e in os.scandir(mine.model_dir) if e.name.endswith(".tmp") and e.is_dir()]
            switched = [k for k in MODEL_KEYS if current_version(mine.model_dir, k) != before[k]]
            if saving or len(switched) >= 3:
                os.kill(training.pid, signal.SIGKILL)
                caught = saving or switched
                break
            time.sleep(0.002)
        training.wait(30)
        assert training.returncode == -signal.SIGKILL, "the training ended before it could be killed"
        print(f"killed the training while it saved {caught}")

        # every type: a complete version on disk (the old one, or a new one whose switch had finished)
        for key in MODEL_KEYS:
            model = load_model(mine.model_dir, key, hmac_key=_hmac(mine))
            assert model.manifest["version"] == current_version(mine.model_dir, key)
        assert sum(current_version(mine.model_dir, k) == before[k] for k in MODEL_KEYS) >= 1
        # and the server serves exactly those versions
        time.sleep(float(mine.env.get("MUSICBUD_MODEL_RELOAD_SECONDS", 1)) + 0.5)
        for ct in CONTENT_TYPES:
            served = _get(server, mine, ct.key).headers["X-Model-Version"]
            assert served == current_version(mine.model_dir, ct.model_key)
        # the lock died with the process: the next training runs, and the half-written version is never used
        assert not training_running(mine.model_dir)
        retrained = httpx.post(f"{server.url}/v1/recommendations/train/models/",
                               headers=bearer(mine.token("admin")), timeout=300)
        assert retrained.status_code == 200 and all(retrained.json()["data"].values())
        for key in MODEL_KEYS:
            load_model(mine.model_dir, key, hmac_key=_hmac(mine))
            assert read_manifest(mine.model_dir, key)["version"] != before[key]
    finally:
        server.stop()


def test_the_model_directory_is_created_0700(stack, tmp_path):
    env = {**stack.env, "MUSICBUD_MODEL_DIR": str(tmp_path / "fresh" / "models"),
           "MUSICBUD_VAR_DIR": str(tmp_path / "var")}
    old_umask = os.umask(0o022)
    try:
        server = live_stack.serve(env, workers=1)
    finally:
        os.umask(old_umask)
    try:
        response = httpx.post(f"{server.url}/v1/recommendations/train/models/", headers=bearer(stack.token("admin")),
                              timeout=300)
        assert response.status_code == 200
    finally:
        server.stop()
    model_dir = tmp_path / "fresh" / "models"
    assert stat.S_IMODE(model_dir.stat().st_mode) == 0o700
    for path in model_dir.rglob("*"):
        assert not path.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH), path
        if path.is_dir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
