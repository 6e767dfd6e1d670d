"""Fixtures of the reliability tests: the API served for real (`uvicorn musicbud.asgi:application --workers 2`)
against the tests' Neo4j, with its own model dir, var dir (throttle cache) and sqlite auth database.

The server shares this process's DJANGO_SECRET_KEY and MUSICBUD_MODEL_HMAC_KEY, so tokens minted here are
valid there and model files can be checked (and tampered with) here. One prepared stack (migrated, seeded,
trained) serves the whole session; a module gets it back re-seeded when another module wiped the graph.
"""
from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from django.conf import settings

from scripts import live_stack

STACK_DEMO = dict(seed=11, users=60, items_per_type=40, interactions_per_user=12)


@dataclass
class Stack:
    env: dict[str, str]
    users: dict[str, dict]

    @property
    def model_dir(self) -> Path:
        return Path(self.env["MUSICBUD_MODEL_DIR"])

    def token(self, username: str, **claims) -> str:
        """An access token of a login of the stack ('admin' is staff, 'demo' is not) or of any ParentUser name
        (recommendation views read only the token's signed claims)."""
        user_id = self.users[username]["id"] if username in self.users else 10_000 + len(username)
        return live_stack.access_token(self.env["DJANGO_SECRET_KEY"], user_id=user_id, username=username, **claims)

    def copy(self, tmp: Path, **extra: str) -> Stack:
        """The same graph, logins and secrets with a copy of the model dir and a var dir of its own (for tests
        that break model files or kill a training)."""
        env = {**self.env, **extra, "MUSICBUD_MODEL_DIR": str(tmp / "models"), "MUSICBUD_VAR_DIR": str(tmp / "var")}
        shutil.copytree(self.model_dir, tmp / "models", ignore=shutil.ignore_patterns(".*.lock"))
        os.chmod(tmp / "models", 0o700)
        return Stack(env=env, users=self.users)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _graph_is_ours() -> bool:
    from app import graph

    return bool(graph.query("MATCH (m:TestMarker {name: 'reliability'}) RETURN m"))


def _mark_graph() -> None:
    from app import graph

    graph.query("CREATE (:TestMarker {name: 'reliability'})")


@pytest.fixture(scope="session")
def _prepared_stack(neo4j, tmp_path_factory) -> Stack:
    env = live_stack.stack_env(tmp=tmp_path_factory.mktemp("stack"), bolt_url=neo4j.bolt_url,
                               neo4j_password=neo4j.password, secret_key=settings.SECRET_KEY,
                               hmac_key=settings.MUSICBUD_MODEL_HMAC_KEY)
    info = live_stack.prepare(env, seed=STACK_DEMO, train=True)
    _mark_graph()
    return Stack(env=env, users=info["users"])


@pytest.fixture(scope="module")
def stack(_prepared_stack) -> Stack:
    """The prepared stack, its demo graph in the tests' Neo4j (seeded again if another module wiped it; the
    same arguments give the same graph, so the saved models still match it)."""
    if not _graph_is_ours():
        live_stack.prepare(_prepared_stack.env, seed=STACK_DEMO)
        _mark_graph()
    return _prepared_stack


@pytest.fixture(scope="module")
def api_server(stack):
    """The stack served by uvicorn with 2 workers (the module's own server: a fresh throttle count)."""
    server = live_stack.serve(stack.env, workers=2)
    yield server
    server.stop()


def worker_of(server: live_stack.LiveServer, response: httpx.Response) -> int:
    """The pid of the worker that answered `response` (its connection is still open: keep-alive)."""
    client_port = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    for pid in server.worker_pids():
        for conn in psutil.Process(pid).net_connections("tcp"):
            if conn.raddr and conn.raddr.port == client_port and conn.laddr.port == server.port:
                return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def client_on_each_worker(server: live_stack.LiveServer, token: str, *, tries: int = 40) -> dict[int, httpx.Client]:
    """One open connection (an httpx.Client holding a single keep-alive connection) to every worker."""
    clients: dict[int, httpx.Client] = {}
    for _ in range(tries):
        client = httpx.Client(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=1))
        response = client.get("/v1/recommendations/genres/?n=1", headers=bearer(token))
        assert response.status_code == 200, response.text
        pid = worker_of(server, response)
        if pid in clients:
            client.close()
        else:
            clients[pid] = client
        if len(clients) == server.workers:
            return clients
    raise AssertionError(f"only {len(clients)} of {server.workers} workers were reached in {tries} connections")


def training_running(model_dir: Path) -> bool:
    """Whether some process holds the training lock of that model directory (a server's, in another process)."""
    from app.services.training import training_running as held

    return held(model_dir=model_dir)


def wait_until(predicate, *, timeout: float, interval: float = 0.05, message: str = "") -> float:
    """Poll until predicate() is true; the seconds it took. AssertionError after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(message or f"not true after {timeout}s")
        time.sleep(interval)
    return time.monotonic() - started
