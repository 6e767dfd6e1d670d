"""What every performance benchmark shares: a throwaway Neo4j seeded with the demo graph, trained models, the
API served exactly as `make run` serves it, a Bearer token, and the result files.

    with BenchStack(SIZES["1m"]) as stack:       # Neo4j on a free port, seeded (cached, see below)
        stack.models_ensure()                    # manage.py train_models when no model is saved yet
        with stack.serve() as server:            # uvicorn ... --workers 2 --loop uvloop --http httptools
            token = stack.token(server)          # the seeded ParentUser 'demo' as a Django login

The seeded Neo4j data dir is cached under var/bench/<size key>/ (with its password, the auth database and
the model HMAC key), so a rerun at the same size skips the seeding; delete the directory to seed afresh.
The demo graph ends on a fixed date (UNTIL), so one key always means one graph. A lock file keeps two runs
from using one cache at once.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
from scripts import neo4j_local  # noqa: E402

from app.content_types import CONTENT_TYPES  # noqa: E402  (a plain table: no Django needed)

MODEL_KEYS = [ct.model_key for ct in CONTENT_TYPES] + ["taste"]

CACHE = ROOT / "var" / "bench"
RESULTS = ROOT / "bench" / "results"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
UVICORN = [PYTHON, "-m", "uvicorn"]
UNTIL = "2025-01-01"  # the demo graph's last day: fixed, so a cache key always means the same graph
DEMO_USER = "demo"
WORKERS = 2


@dataclass(frozen=True)
class GraphSize:
    """A demo graph size (manage.py seed_demo's arguments)."""

    users: int
    items_per_type: int
    interactions_per_user: float  # mean over every content type
    seed: int = 42
    epochs: int | None = None  # LIGHTFM_EPOCHS for this graph's trainings (None: the service's own)

    @property
    def key(self) -> str:
        from app.services.demo_data import DEMO_FORMAT  # what the same arguments write changes with it

        return (f"u{self.users}-i{self.items_per_type}-ipu{self.interactions_per_user:g}-s{self.seed}-{UNTIL}"
                f"-f{DEMO_FORMAT}")

    @property
    def interactions(self) -> int:
        return round(self.users * self.interactions_per_user)


SIZES: dict[str, GraphSize] = {
    "smoke": GraphSize(users=200, items_per_type=60, interactions_per_user=12, epochs=10),  # seconds, not quality
    "100k": GraphSize(users=5_000, items_per_type=2_000, interactions_per_user=20),
    "1m": GraphSize(users=50_000, items_per_type=20_000, interactions_per_user=20),
    "10m": GraphSize(users=500_000, items_per_type=200_000, interactions_per_user=20),  # bench/training_curve.py
}


class BenchError(RuntimeError):
    pass


def machine() -> dict[str, Any]:
    """What the numbers were measured on, and how busy the machine was (load average) when they were."""
    return {
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else None
    except OSError:
        return None


def result_write(name: str, payload: dict[str, Any], *, smoke: bool, out: Path | None = None) -> Path:
    """bench/results/<name>.json (<name>-smoke.json for --smoke) with the machine and the commit added."""
    path = out or RESULTS / (f"{name}-smoke.json" if smoke else f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"benchmark": name, "smoke": smoke,
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "commit": git_commit(), **payload}
    body.setdefault("machine", machine())
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain text table (right-aligned numbers)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda vals: "  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths)))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "-" if value is None else str(value)


def peak_rss_mb(rusage) -> float:
    return round(rusage.ru_maxrss / 1024, 1)  # Linux: kilobytes


class Measured(tuple):
    """(wall seconds, peak resident MB, output), and .cpu_seconds: the process's user + system CPU time, which a
    busy machine inflates far less than the wall time (bench/training_curve.py reports both)."""

    cpu_seconds: float = 0.0


def run_measured(cmd: list[str], *, env: dict[str, str], cwd: Path = ROOT, log: Path | None = None
                 ) -> tuple[float, float, str]:
    """Run a command to its end: (wall seconds, peak resident MB of that process, its output); a Measured, whose
    cpu_seconds is the process's CPU time. Raises on failure."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode(errors="replace")
    _, status, rusage = os.wait4(proc.pid, 0)  # this child's own peak memory
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if log is not None:
        log.write_text(output)
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n{output[-4000:]}")
    measured = Measured((seconds, peak_rss_mb(rusage), output))
    measured.cpu_seconds = round(rusage.ru_utime + rusage.ru_stime, 2)
    return measured


class BenchStack:
    """A seeded Neo4j of the benchmark's own (cached per size) and the environment that points at it. A `with`
    nested in another one of the same size (in one process) shares the outer stack: one Neo4j start."""

    _open: dict[str, BenchStack] = {}

    def __init__(self, size: GraphSize, *, heap: str = "1g", pagecache: str = "1g", quiet: bool = False):
        self.size = size
        self.dir = CACHE / size.key
        self.heap = heap
        self.pagecache = pagecache
        self.quiet = quiet
        self.neo4j: neo4j_local.LocalNeo4j | None = None
        self.seed_info: dict[str, Any] = {}
        self._lock_fd: int | None = None
        self._shared: BenchStack | None = None

    # --- paths -------------------------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.dir / "models"

    @property
    def var_dir(self) -> Path:
        return self.dir / "var"

    def _secret(self, name: str) -> str:
        path = self.dir / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
        return path.read_text().strip()

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> BenchStack:
        self._shared = BenchStack._open.get(self.size.key)
        if self._shared is not None:
            return self._shared
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise BenchError(f"another benchmark is using {self.dir}; wait for it to finish") from None
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        BenchStack._open[self.size.key] = self
        return self

    def __exit__(self, *exc) -> None:
        if self._shared is not None:  # the outer `with` stops it
            self._shared = None
            return
        if BenchStack._open.get(self.size.key) is self:
            del BenchStack._open[self.size.key]
        if self.neo4j is not None:
            self.neo4j.stop()
            self.neo4j = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _start(self) -> None:
        marker = self.dir / "seeded.json"
        if not marker.exists():  # an interrupted seeding leaves half a graph: start afresh
            shutil.rmtree(self.dir / "neo4j", ignore_errors=True)
            shutil.rmtree(self.models_dir, ignore_errors=True)
            for name in ("neo4j_password", "demo_password"):
                (self.dir / name).unlink(missing_ok=True)
        os.environ["NEO4J_PAGECACHE"] = self.pagecache  # read by the launcher
        t0 = time.perf_counter()
        self.neo4j = neo4j_local.start(data_dir=self.dir / "neo4j", port=neo4j_local.free_port(),
                                       password=self._secret("neo4j_password"), heap=self.heap)
        self.log(f"Neo4j up on {self.neo4j.bolt_url} in {time.perf_counter() - t0:.1f}s ({self.dir})")
        if marker.exists():
            self.seed_info = {**json.loads(marker.read_text()), "cached": True}
            return
        self.manage("migrate", "--noinput", "-v", "0")
        self.manage("install_constraints")
        s = self.size
        self.log(f"seeding the demo graph: {s.users:,} users, {s.items_per_type:,} items per type, "
                 f"~{s.interactions:,} interactions (once per size; cached in {self.dir})")
        seconds, _, out = run_measured(
            [PYTHON, "manage.py", "seed_demo", "--seed", str(s.seed), "--users", str(s.users),
             "--items-per-type", str(s.items_per_type), "--interactions-per-user", str(s.interactions_per_user),
             "--until", UNTIL, "-v", "0" if self.quiet else "1"],
            env=self.env(), log=self.dir / "seed.log")
        edges = self.query_scalar("MATCH (:ParentUser)-[]->(a)-[r]->() WHERE NOT a:ParentUser RETURN count(r) AS n")
        self.seed_info = {"seconds": round(seconds, 1), "edges": edges, "size": asdict(s), "cached": False}
        marker.write_text(json.dumps(self.seed_info, indent=2))
        self.log(f"seeded {edges:,} interaction edges in {seconds:.0f}s")

    def log(self, message: str) -> None:
        if not self.quiet:
            print(f"[bench] {message}", file=sys.stderr, flush=True)

    # --- commands ----------------------------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every process of the stack (manage.py, uvicorn)."""
        assert self.neo4j is not None, "start the stack first (with BenchStack(...) as stack)"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MUSICBUD_", "NEO4J_", "LIGHTFM_",
                                                                           "DJANGO_", "DATABASE_URL"))}
        env.update(
            NEO4J_BOLT_URL=self.neo4j.bolt_url, NEO4J_PASSWORD=self.neo4j.password,
            MUSICBUD_VAR_DIR=str(self.var_dir), MUSICBUD_MODEL_DIR=str(self.models_dir),
            MUSICBUD_DEMO_USER=DEMO_USER, MUSICBUD_DEMO_ADMIN_USER="admin",
            MUSICBUD_DEMO_USER_PASSWORD=self._secret("demo_password"),
            MUSICBUD_DEMO_ADMIN_PASSWORD=self._secret("demo_password"),
            MUSICBUD_LOG_LEVEL="WARNING", OPENBLAS_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
        )
        if self.size.epochs is not None:
            env["LIGHTFM_EPOCHS"] = str(self.size.epochs)
        env.update(extra)
        return env

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        return run_measured([PYTHON, "manage.py", *args], env=env or self.env())[2]

    def query_scalar(self, cypher: str) -> Any:
        from neo4j import GraphDatabase

        with GraphDatabase.driver(self.neo4j.bolt_url, auth=("neo4j", self.neo4j.password)) as driver:
            records, _, _ = driver.execute_query(cypher)
            return records[0][0]

    def train(self, models_dir: Path | None = None, **env: str) -> dict[str, Any]:
        """manage.py train_models into `models_dir` (default: the cached one): wall seconds, peak RSS, manifests."""
        target = models_dir or self.models_dir
        seconds, peak_mb, out = run_measured([PYTHON, "manage.py", "train_models"],
                                             env=self.env(MUSICBUD_MODEL_DIR=str(target), **env))
        manifests = {p.name.removesuffix("_manifest.json"): json.loads(p.read_text())
                     for p in sorted(target.glob("*_manifest.json"))}
        return {"seconds": seconds, "peak_rss_mb": peak_mb, "output": out, "manifests": manifests}

    def models_ensure(self, retrain: bool = False) -> None:
        from ai.model_store import model_saved

        if retrain or not all(model_saved(self.models_dir, key) for key in MODEL_KEYS):
            self.log("training the models (manage.py train_models)")
            info = self.train()
            self.log(f"trained in {info['seconds']:.0f}s (peak RSS {info['peak_rss_mb']:.0f} MB)")

    @contextlib.contextmanager
    def serve(self, *, workers: int = WORKERS, **env: str) -> Iterator[Server]:
        """The API as `make serve` runs it, on a free port; stopped (SIGTERM, then SIGKILL) at the end."""
        port = neo4j_local.free_port()
        metrics_dir = self.dir / f"prometheus-{port}"  # every worker's /metrics counters, as `make serve` keeps them
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **env}
        cmd = [*UVICORN, "musicbud.asgi:application", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
        log = open(self.dir / "server.log", "ab")
        proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env(**env), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        server = Server(url=f"http://127.0.0.1:{port}", process=proc, workers=workers, command=cmd)
        try:
            server.wait_ready(log_path=self.dir / "server.log")
            yield server
        finally:
            server.stop()
            log.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def token(self, server: Server, username: str = DEMO_USER) -> str:
        """An access token of the Django login matching the seeded ParentUser `username` (created if missing)."""
        password = self._secret("demo_password")
        self.manage("shell", "-c", (
            "from django.contrib.auth import get_user_model; U = get_user_model(); "
            f"u, _ = U.objects.get_or_create(username={username!r}); u.set_password({password!r}); u.save()"))
        body = json.dumps({"username": username, "password": password}).encode()
        request = urllib.request.Request(server.url + "/v1/login/", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]


    def tokens_of(self, names_code: str, name: str, *, first_id: int = 2_000_000) -> Path:
        """Access tokens (one per line, in bench/<size>/<name>.txt) of the usernames a Python expression over the
        served `registry` gives (a list), each with a login's claims (user ids from `first_id`) and the server's
        key."""
        code = (
            "from rest_framework_simplejwt.tokens import AccessToken\n"
            "from app.services.model_registry import registry\n"
            f"names = {names_code}\n"
            "for number, name in enumerate(names):\n"
            "    token = AccessToken()\n"
            f"    token['user_id'], token['username'] = str({int(first_id)} + number), name\n"
            "    print('TOKEN', token)\n")
        out = self.manage("shell", "-c", code, env=self.env(MUSICBUD_LOG_LEVEL="WARNING"))
        tokens = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("TOKEN ")]
        if not tokens:
            raise BenchError(f"no user for {name}:\n{out[-2000:]}")
        path = self.dir / f"{name}.txt"
        path.write_text("\n".join(tokens) + "\n")
        return path

    def tokens_of_many_users(self, count: int) -> Path:
        """Access tokens of up to `count` distinct seeded users that the movie model knows, each with the claims a
        login gives (user id, username), signed with the server's key: load in which no user (so no cached
        answer and no verified token) repeats while there are more tokens than requests. Written one per line to
        a file of the stack's directory (what bench/wrk_many_users.lua reads); returns its path."""
        known = ("sorted(name for movie in [registry.get('movie')] for name, uid in registry.users().items() "
                 f"if uid in movie.user_map)[:{int(count)}]")
        return self.tokens_of(known, "many_users_tokens", first_id=1_000_000)

@contextlib.contextmanager
def stack_waiting(size: GraphSize, *, wait_seconds: float = 1800, **options: Any) -> Iterator[BenchStack]:
    """`with BenchStack(size, **options)`, waiting (up to wait_seconds) while another benchmark holds that graph."""
    deadline = time.monotonic() + wait_seconds
    while True:
        stack = BenchStack(size, **options)
        try:
            entered = stack.__enter__()
            break
        except BenchError as exc:
            if "another benchmark" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(10)
    try:
        yield entered
    finally:
        stack.__exit__(None, None, None)


@contextlib.contextmanager
def neo4j_in_process(prefix: str) -> Iterator[Path]:
    """For a benchmark that runs the service in its own process (it sets Django up itself): a fresh Neo4j on a
    free port in a new temporary directory, and this process's environment pointing at it (model and var
    directories there too); stopped at the end. Yields the directory."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    password = secrets.token_urlsafe(16)
    server = neo4j_local.start(data_dir=tmp / "neo4j", port=neo4j_local.free_port(), password=password)
    os.environ.update(NEO4J_BOLT_URL=server.bolt_url, NEO4J_PASSWORD=password, MUSICBUD_MODEL_DIR=str(tmp / "models"),
                      MUSICBUD_VAR_DIR=str(tmp / "var"), DJANGO_SETTINGS_MODULE="musicbud.settings",
                      MUSICBUD_LOG_LEVEL="WARNING")
    try:
        yield tmp
    finally:
        server.stop()

@dataclass
class Server:
    url: str
    process: subprocess.Popen
    workers: int
    command: list[str]

    def wait_ready(self, *, log_path: Path, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"uvicorn exited ({self.process.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/v1/health/", timeout=5) as response:
                    if response.status == 200 and len(self.worker_pids()) >= self.workers:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise BenchError(f"the API did not answer on {self.url} within {timeout:.0f}s")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the master that are not multiprocessing helpers)."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        return [c.pid for c in children if "resource_tracker" not in " ".join(c.cmdline())]

    def get(self, path: str, token: str | None = None, timeout: float = 60) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def main(argv: list[str] | None = None) -> int:
    """python -m bench.harness SIZE...: seed (and cache) those demo graphs and train their models ahead of time."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("sizes", nargs="+", choices=sorted(SIZES))
    parser.add_argument("--retrain", action="store_true", help="train again even when models are saved")
    args = parser.parse_args(argv)
    for name in args.sizes:
        with BenchStack(SIZES[name]) as stack:
            stack.models_ensure(retrain=args.retrain)
    return 0


if __name__ == "__main__":
    sys.exit(main())
