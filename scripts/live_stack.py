"""The API as it runs for real (uvicorn, several workers) against a given Neo4j, in temporary directories.

Used by tests/reliability and by the load benchmarks in bench/: they need the real stack, not Django's test
client. Nothing here mocks anything: the server is `uvicorn musicbud.asgi:application --workers N`.

    env = stack_env(tmp=..., bolt_url=..., neo4j_password=...)       # every setting the server reads
    info = prepare(env, seed=dict(users=80, ...), train=True)       # migrate, logins, demo graph, models
    server = serve(env, workers=2)                                  # waits until /v1/health/ answers
    ...
    server.stop()

`prepare` runs in a subprocess with that environment (`python -m scripts.live_stack prepare ...`), so the caller's
own Django settings (a test session's) are left alone. The logins it creates are `admin` (staff) and `demo`;
their passwords are in the returned dict, with an access token of each.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
UVICORN = str(Path(PYTHON).with_name("uvicorn"))

from scripts import neo4j_local  # noqa: E402
from scripts.neo4j_local import free_port  # noqa: E402

ADMIN, USER = "admin", "demo"


def stack_env(*, tmp: Path, bolt_url: str, neo4j_password: str, secret_key: str | None = None,
              hmac_key: str | None = None, **extra: str) -> dict[str, str]:
    """The server's environment: its own model dir, var dir (throttle cache) and sqlite auth database under
    `tmp`; the secrets given (or fresh ones) so that the caller can mint tokens and verify model files."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICBUD_", "NEO4J_", "DJANGO_", "LIGHTFM_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "musicbud.settings",
        "NEO4J_BOLT_URL": bolt_url,
        "NEO4J_PASSWORD": neo4j_password,
        "MUSICBUD_MODEL_DIR": str(tmp / "models"),
        "MUSICBUD_VAR_DIR": str(tmp / "var"),
        "DATABASE_URL": f"sqlite:///{tmp / 'auth.sqlite3'}",
        "DJANGO_SECRET_KEY": secret_key or secrets.token_urlsafe(48),
        "MUSICBUD_MODEL_HMAC_KEY": hmac_key or secrets.token_urlsafe(48),
        "MUSICBUD_DEMO_ADMIN_PASSWORD": secrets.token_urlsafe(12),
        "MUSICBUD_DEMO_USER_PASSWORD": secrets.token_urlsafe(12),
        "LIGHTFM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    })
    env.update(extra)
    return env


def prepare(env: dict[str, str], *, seed: dict | None = None, train: bool = False, timeout: float = 600) -> dict:
    """Migrate the auth database and create the logins; with `seed`, replace the graph by a demo graph of those
    arguments (seed_demo's); with `train`, train every model. Returns {"users": {name: {id, password, token}}}."""
    args = [PYTHON, "-m", "scripts.live_stack", "prepare", json.dumps({"seed": seed, "train": train})]
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"preparing the stack failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _prepare_here(options: dict) -> dict:
    """Runs inside the subprocess, with the stack's environment."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if options.get("seed"):
        from app import graph
        from app.services.graph_schema import constraints_install

        constraints_install()
        graph.query("MATCH (n) DETACH DELETE n")
        call_command("seed_demo", **options["seed"], verbosity=0, stdout=open(os.devnull, "w"))
    User = get_user_model()
    users = {}
    for name, staff, var in ((ADMIN, True, "MUSICBUD_DEMO_ADMIN_PASSWORD"),
                             (USER, False, "MUSICBUD_DEMO_USER_PASSWORD")):
        user, _ = User.objects.get_or_create(username=name)
        user.set_password(os.environ[var])
        user.is_staff = staff
        user.save()
        users[name] = {"id": user.pk, "password": os.environ[var]}
    if options.get("train"):
        from app.services.recommendation_service import models_train

        results = models_train()
        if not all(results.values()):
            raise SystemExit(f"training failed: {results}")
    return {"users": users}


def access_token(secret_key: str, *, user_id: int | str, username: str, lifetime: timedelta = timedelta(hours=1),
                 **claims) -> str:
    """An access token as simplejwt issues it (HS256 with the server's DJANGO_SECRET_KEY)."""
    import jwt

    now = datetime.now(timezone.utc)
    payload = {"token_type": "access", "exp": int((now + lifetime).timestamp()), "iat": int(now.timestamp()),
               "jti": uuid.uuid4().hex, "user_id": str(user_id), "username": username, **claims}
    return jwt.encode(payload, secret_key, algorithm="HS256")


@dataclass
class LiveServer:
    process: subprocess.Popen
    port: int
    env: dict[str, str]
    log_path: Path
    workers: int
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def model_dir(self) -> Path:
        return Path(self.env["MUSICBUD_MODEL_DIR"])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the supervisor that serve requests)."""
        import psutil

        if self.workers == 1:
            return [self.process.pid]
        pids = []
        for child in psutil.Process(self.process.pid).children():
            try:
                if "resource_tracker" not in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return pids

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def serve(env: dict[str, str], *, workers: int = 2, port: int | None = None, log_path: Path | None = None,
          timeout: float = 120, host: str = "127.0.0.1") -> LiveServer:
    """Start uvicorn as `make serve` does and wait until every worker answers GET /v1/health/."""
    import httpx

    import shutil

    port = port or free_port()
    log_path = log_path or Path(env["MUSICBUD_VAR_DIR"]).parent / f"uvicorn-{host}-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # every worker's metrics in files of this run's own (as `make serve` does): emptied before it starts
    metrics_dir = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or Path(env["MUSICBUD_VAR_DIR"]) / f"prometheus-{port}")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    log = open(log_path, "ab")
    cmd = [UVICORN, "musicbud.asgi:application", "--host", host, "--port", str(port),
           "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "off"]
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = LiveServer(process=process, port=port, env=env, log_path=log_path, workers=workers, host=host)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{server.log_text()[-4000:]}")
            started = server.log_text().count("Started server process")  # after the app (and models) loaded
            if started >= workers:
                try:
                    if httpx.get(f"{server.url}/v1/health/", timeout=10).status_code == 200:
                        return server
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not answer within {timeout:.0f}s:\n{server.log_text()[-4000:]}")
            time.sleep(0.2)
    except BaseException:
        server.stop()
        raise


@dataclass
class RunningStack:
    env: dict[str, str]
    users: dict[str, dict]
    server: LiveServer
    neo4j: neo4j_local.LocalNeo4j | None  # None: a Neo4j given by the caller

    def token(self, username: str) -> str:
        user_id = self.users[username]["id"] if username in self.users else 0
        return access_token(self.env["DJANGO_SECRET_KEY"], user_id=user_id, username=username)


@contextlib.contextmanager
def running_stack(*, tmp: Path, seed: dict, bolt_url: str | None = None, neo4j_password: str | None = None,
                  workers: int = 2, log=print, **extra: str) -> Iterator[RunningStack]:
    """A whole stack for a benchmark: a throwaway Neo4j (unless bolt_url is given: its graph is REPLACED by the
    demo graph), the demo graph, trained models, and uvicorn serving them. Everything stops at the end."""
    instance = None
    server = None
    try:
        if bolt_url is None:
            started = time.perf_counter()
            neo4j_password = secrets.token_urlsafe(16)
            instance = neo4j_local.start(data_dir=tmp / "neo4j", port=free_port(), password=neo4j_password,
                                         heap="768m")
            bolt_url = instance.bolt_url
            log(f"Neo4j up on {bolt_url} in {time.perf_counter() - started:.1f}s")
        env = stack_env(tmp=tmp, bolt_url=bolt_url, neo4j_password=neo4j_password or "", **extra)
        started = time.perf_counter()
        info = prepare(env, seed=seed, train=True)
        log(f"demo graph seeded and models trained in {time.perf_counter() - started:.1f}s")
        server = serve(env, workers=workers)
        log(f"uvicorn serving on {server.url} with {workers} workers")
        yield RunningStack(env=env, users=info["users"], server=server, neo4j=instance)
    finally:
        if server is not None:
            server.stop()
        if instance is not None:
            instance.stop()


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        print(json.dumps(_prepare_here(json.loads(sys.argv[2]))))
    else:
        sys.exit(f"usage: {sys.argv[0]} prepare '{{\"seed\": {{...}}, \"train\": true}}'")
