"""app/services/model_registry.py: a model being loaded for the first time is waited for by every thread that
asks for it meanwhile (none answers as if no model were trained); a refused version is refused once."""
from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from ai.model_store import save_model
from ai.trained_model import TrainedModel
from ai.recommendation_engine import PopularityRecommender
from app.services import model_registry
from app.services.model_registry import USER_DIRECTORY_FILE, ModelRegistry


def _saved(model_dir) -> str:
    matrix = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 1]], dtype=np.float32))
    popularity = PopularityRecommender().fit(matrix)
    model = TrainedModel(content_type="anime", model=popularity, popularity=popularity,
                         user_map={"u1": 0, "u2": 1}, item_map={"1": 0, "2": 1, "3": 2}, matrix=matrix,
                         items={k: {"id": k} for k in "123"})
    return save_model(model_dir, model, hmac_key=settings.MUSICBUD_MODEL_HMAC_KEY.encode())


def _slow_loads(monkeypatch, seconds: float) -> list[float]:
    calls = []
    real = model_registry.load_model

    def slow(*args, **kwargs):
        calls.append(time.monotonic())
        time.sleep(seconds)
        return real(*args, **kwargs)

    monkeypatch.setattr(model_registry, "load_model", slow)
    return calls


def _ask_while_the_first_one_reads(fn, started: list, n: int = 7) -> list:
    """fn() in one thread; once it has started reading (`started` is not empty), in n more threads."""
    results = [None] * (n + 1)

    def ask(i):
        results[i] = fn()

    first = threading.Thread(target=ask, args=(0,))
    first.start()
    deadline = time.monotonic() + 10
    while not started:
        assert time.monotonic() < deadline
        time.sleep(0.001)
    others = [threading.Thread(target=ask, args=(i,)) for i in range(1, n + 1)]
    for thread in others:
        thread.start()
    for thread in [first, *others]:
        thread.join()
    return results


def test_threads_asking_during_the_first_load_wait_for_it(tmp_path, monkeypatch):
    version = _saved(tmp_path)
    calls = _slow_loads(monkeypatch, 0.3)
    registry = ModelRegistry(model_dir=tmp_path)
    models = _ask_while_the_first_one_reads(lambda: registry.get("anime"), calls)
    assert all(m is not None and m.manifest["version"] == version for m in models)
    assert len(calls) == 1  # loaded once


def test_a_missing_model_is_none_and_looked_for_at_most_once_a_reload_interval(tmp_path, monkeypatch):
    registry = ModelRegistry(model_dir=tmp_path)
    assert registry.get("anime") is None and registry.get("anime") is None
    calls = _slow_loads(monkeypatch, 0.0)
    version = _saved(tmp_path)
    monkeypatch.setattr(settings, "MUSICBUD_MODEL_RELOAD_SECONDS", 0.2)
    deadline = time.monotonic() + 5
    while registry.get("anime") is None:
        assert time.monotonic() < deadline
    assert registry.get("anime").manifest["version"] == version and len(calls) == 1


def test_a_tampered_version_is_refused_once_with_a_warning_naming_the_file(tmp_path, monkeypatch, caplog):
    version = _saved(tmp_path)
    path = tmp_path / f"anime-{version}" / "anime_items.pkl"
    path.write_bytes(path.read_bytes() + b"\0")
    registry = ModelRegistry(model_dir=tmp_path)
    calls = _slow_loads(monkeypatch, 0.2)
    assert _ask_while_the_first_one_reads(lambda: registry.get("anime"), calls) == [None] * 8
    refusals = [r for r in caplog.records if r.levelname == "WARNING" and "Refused anime" in r.getMessage()]
    assert len(refusals) == 1 and str(path) in refusals[0].getMessage()
    assert "falling back to popularity" in refusals[0].getMessage()


def test_threads_asking_while_the_user_directory_is_first_read_get_it(tmp_path, monkeypatch):
    (tmp_path / USER_DIRECTORY_FILE).write_text(json.dumps({"demo": "uid-demo"}))
    started = []

    def slow_loads(text):
        started.append(time.monotonic())
        time.sleep(0.3)
        return json.loads(text)

    monkeypatch.setattr(model_registry, "json", SimpleNamespace(loads=slow_loads, dump=json.dump))
    registry = ModelRegistry(model_dir=tmp_path)
    assert _ask_while_the_first_one_reads(lambda: registry.users().get("demo"), started) == ["uid-demo"] * 8


async def test_once_a_check_falls_due_aget_sends_one_caller_to_check_in_a_thread_and_serves_the_rest(
        tmp_path, settings, thread_hops):
    import asyncio

    settings.MUSICBUD_MODEL_RELOAD_SECONDS = 0.2
    _saved(tmp_path)
    (tmp_path / USER_DIRECTORY_FILE).write_text(json.dumps({"demo": "uid-demo"}))
    registry = ModelRegistry(model_dir=tmp_path)
    hops = thread_hops
    model, users = await registry.aget("anime"), await registry.users_aget()  # nothing loaded yet: in a thread
    assert model is not None and users == {"demo": "uid-demo"} and hops == ["get", "users"]
    hops.clear()
    assert await registry.aget("anime") is model and await registry.users_aget() == users and hops == []
    time.sleep(0.25)
    models = await asyncio.gather(*(registry.aget("anime") for _ in range(6)))
    directories = await asyncio.gather(*(registry.users_aget() for _ in range(6)))
    assert all(m is model for m in models) and all(d == users for d in directories)
    assert hops == ["get", "users"]  # the first caller of each went to check; the others were served
