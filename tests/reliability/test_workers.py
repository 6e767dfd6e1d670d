"""Two uvicorn workers sharing one model directory: a training through one is served by the other within
MUSICBUD_MODEL_RELOAD_SECONDS, two trainings at once are serialised (409 for the second), model files are never
seen half written, and the throttles count across both workers (their cache is a shared file cache)."""
from __future__ import annotations

import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from ai.model_store import current_version, load_model
from app.content_types import CONTENT_TYPES
from tests.reliability.conftest import bearer, client_on_each_worker, training_running, wait_until, worker_of

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]

TRAIN = "/v1/recommendations/train/models/"
MODEL_KEYS = [ct.model_key for ct in CONTENT_TYPES] + ["taste"]


def test_a_training_through_one_worker_is_served_by_every_worker_within_the_reload_interval(stack, api_server):
    clients = client_on_each_worker(api_server, stack.token("demo"))
    (trainer_pid, trainer), (other_pid, other) = clients.items()
    user = bearer(stack.token("demo"))
    before = {pid: c.get("/v1/recommendations/anime/?n=3", headers=user).headers["X-Model-Version"]
              for pid, c in clients.items()}
    assert len(set(before.values())) == 1

    trained = trainer.post(TRAIN, headers=bearer(stack.token("admin")))
    assert trained.status_code == 200, trained.text
    assert all(trained.json()["data"].values())
    new_version = current_version(stack.model_dir, "anime")
    assert new_version != before[trainer_pid]

    def served_versions() -> dict[int, str]:
        seen = {}
        for _ in range(20):  # fresh connections land on either worker
            with httpx.Client(base_url=api_server.url, timeout=30) as client:
                response = client.get("/v1/recommendations/anime/?n=3", headers=bearer(stack.token("demo")))
                assert response.status_code == 200
                seen[worker_of(api_server, response)] = response.headers["X-Model-Version"]
            if len(seen) == 2:
                break
        return seen

    reload_seconds = float(stack.env.get("MUSICBUD_MODEL_RELOAD_SECONDS", 1))
    took = wait_until(lambda: set(served_versions().values()) == {new_version}, timeout=reload_seconds + 5,
                      interval=0.1, message="a worker kept serving the old anime model")
    assert set(served_versions()) == {trainer_pid, other_pid}
    print(f"both workers serve anime {new_version} {took:.2f}s after the training answered")
    for client in clients.values():
        client.close()


def test_two_trainings_at_once_through_two_workers_are_serialised_and_files_never_torn(stack, api_server):
    clients = client_on_each_worker(api_server, stack.token("demo"))
    (_, first), (_, second) = clients.items()
    admin = bearer(stack.token("admin"))
    torn: list[str] = []
    loads = 0
    stop = threading.Event()

    def read_models_while_training() -> None:
        nonlocal loads
        while not stop.is_set():
            for key in MODEL_KEYS:
                try:
                    load_model(stack.model_dir, key, hmac_key=stack.env["MUSICBUD_MODEL_HMAC_KEY"].encode())
                    loads += 1
                except Exception as exc:  # any failure here is a torn or half-switched model
                    torn.append(f"{key}: {type(exc).__name__}: {exc}")

    reader = threading.Thread(target=read_models_while_training)
    reader.start()
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(first.post, TRAIN, headers=admin)
            wait_until(lambda: training_running(stack.model_dir) or running.done(), timeout=30)
            assert training_running(stack.model_dir), "the first training finished before the second was sent"
            refused = second.post(TRAIN, headers=admin)
            finished = running.result(timeout=300)
    finally:
        stop.set()
        reader.join()
    assert refused.status_code == 409
    assert "already running" in refused.json()["message"] and refused.json()["data"] is None
    assert finished.status_code == 200 and all(finished.json()["data"].values())
    assert not torn, torn[:5]
    assert loads > 0
    again = second.post(TRAIN, headers=admin)  # the lock is released: the other worker may train now
    assert again.status_code == 200
    for key in MODEL_KEYS:
        load_model(stack.model_dir, key, hmac_key=stack.env["MUSICBUD_MODEL_HMAC_KEY"].encode())
    for client in clients.values():
        client.close()


def _fresh_throttle(stack) -> None:
    shutil.rmtree(Path(stack.env["MUSICBUD_VAR_DIR"]) / "throttle_cache", ignore_errors=True)


def test_login_is_throttled_across_both_workers(stack, api_server):
    _fresh_throttle(stack)
    answers: list[tuple[int, int]] = []
    for _ in range(40):
        with httpx.Client(base_url=api_server.url, timeout=30) as client:
            response = client.post("/v1/login/", json={"username": "demo", "password": "a-wrong-guess"})
            answers.append((response.status_code, worker_of(api_server, response)))
        refused_by = {pid for code, pid in answers if code == 429}
        if len(answers) >= 12 and len(refused_by) == 2:
            break
    codes = [code for code, _ in answers]
    assert codes[:10] == [401] * 10, codes  # the default MUSICBUD_LOGIN_RATE: 10/min per client, all workers
    assert set(codes[10:]) == {429}, codes
    # Both workers refuse, and neither can have counted 10 guesses of its own when the 10 allowed ones were
    # shared between them (or all taken by the other): each refusal shows the count is shared. Which worker
    # takes which connection is the kernel's choice, so the split itself is not asserted.
    assert {pid for code, pid in answers if code == 429} == set(api_server.worker_pids())
    _fresh_throttle(stack)


def test_the_guest_endpoint_is_throttled_across_both_workers(stack, api_server):
    _fresh_throttle(stack)
    answers: list[tuple[int, int]] = []
    for _ in range(120):
        with httpx.Client(base_url=api_server.url, timeout=30) as client:
            response = client.get("/v1/recommendations/public/?type=genres&n=1")
            answers.append((response.status_code, worker_of(api_server, response)))
        if len(answers) > 60 and len({pid for code, pid in answers if code == 429}) == 2:
            break
    codes = [code for code, _ in answers]
    assert codes[:60] == [200] * 60, codes  # the default MUSICBUD_GUEST_RATE: 60/min per client
    assert set(codes[60:]) == {429}, codes
    assert {pid for code, pid in answers if code == 429} == set(api_server.worker_pids())
    assert "Retry-After" in response.headers
    _fresh_throttle(stack)



def test_no_secret_reaches_the_server_log(stack, api_server):
    _fresh_throttle(stack)
    demo = stack.users["demo"]
    with httpx.Client(base_url=api_server.url, timeout=60) as client:
        login = client.post("/v1/login/", json={"username": "demo", "password": demo["password"]}).json()
        refreshed = client.post("/v1/token/refresh/", json={"refresh": login["refresh_token"]}).json()
        assert client.post("/v1/login/", json={"username": "admin", "password": "a-wrong-one-123"}).status_code == 401
        sent = stack.token("demo")
        assert client.get("/v1/recommendations/movies/", headers=bearer(sent)).status_code == 200
        assert client.get("/v1/recommendations/movies/", headers=bearer(sent[:-4] + "AAAA")).status_code == 401
        unknown = client.get("/v1/no-such-page/")
    assert unknown.status_code == 404 and "Traceback" not in unknown.text and "DEBUG" not in unknown.text
    secrets = {stack.env[k] for k in ("DJANGO_SECRET_KEY", "MUSICBUD_MODEL_HMAC_KEY", "NEO4J_PASSWORD",
                                      "MUSICBUD_DEMO_ADMIN_PASSWORD", "MUSICBUD_DEMO_USER_PASSWORD")}
    secrets |= {demo["password"], stack.users["admin"]["password"], login["access_token"], login["refresh_token"],
                refreshed["data"]["access_token"], sent, "a-wrong-one-123"}
    log = api_server.log_text()
    leaked = [s[:6] + "..." for s in secrets if s and s in log]
    assert not leaked, f"secrets in the server log: {leaked}"
    _fresh_throttle(stack)
