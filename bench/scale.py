#!/usr/bin/env python
"""Two hosts on this machine, proven: two uvicorn servers bound to 127.0.0.2 and 127.0.0.3 (2 workers each) behind
HAProxy (health checks on /v1/health/), sharing one Redis, one Neo4j, one model directory and one auth database,
each with a var directory of its own (what a host keeps to itself).

    python -m bench.scale             # the 100k demo graph (bench/harness.py, cached): bench/results/scale.json
    python -m bench.scale --smoke     # the tiny graph: bench/results/scale-smoke.json

It measures, in this order:
  1. the login throttle holds across hosts: failed logins alternately to each host until the first 429; with
     counts per host it would take twice MUSICBUD_LOGIN_RATE;
  2. a training started through host A (POST train/models/) is served by every worker of both hosts: seconds
     from the new movie manifest's switch on disk until each of the 4 workers' health reports that version;
  3. scheduled trainings (MUSICBUD_TRAIN_EVERY on every worker of both hosts) never overlap: the most `train_models`
     processes of the stack at once (sampled every 20 ms) whose job had not yet reported its end (a finished job's
     process may still be exiting when the next starts: counted apart), and the jobs run;
  4. failover: wrk, 32 connections, on HAProxy's address (GET /v1/recommendations/movies/): before; then host B
     is killed (SIGKILL to its server and workers) while wrk runs, and the seconds until HAProxy marks it DOWN are
     the failover window; the failed requests of that run; then wrk again: no request may fail after the window.

The test version is tests/bench/test_scale.py (the reliability stack's small graph; the first three points).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx

from scripts import live_stack
from scripts.local_services import LocalHAProxy, LocalRedis, free_port, haproxy_start, redis_start, port_in_use

HOSTS = ("127.0.0.2", "127.0.0.3")
LOGIN_RATE = 6  # per minute, in the stack: small enough to reach quickly
RELOAD_SECONDS = 1.0  # MUSICBUD_MODEL_RELOAD_SECONDS of both hosts
CHECK_INTER_MS = 500  # HAProxy's health check interval; fall 2: a dead host is DOWN within ~1 s
FALL = 2
TRAINING_EPOCHS = 5  # of the trainings the benchmark starts on the hosts (the cached models keep the service's own)


@dataclass
class TwoHosts:
    redis: LocalRedis
    lb: LocalHAProxy
    servers: dict[str, live_stack.LiveServer]  # host address -> its server
    envs: dict[str, dict[str, str]]
    shared_dir: Path
    users: dict[str, dict] = field(default_factory=dict)

    @property
    def model_dir(self) -> Path:
        return self.shared_dir / "models"

    def token(self, username: str) -> str:
        env = next(iter(self.envs.values()))
        user_id = self.users[username]["id"] if username in self.users else 0
        return live_stack.access_token(env["DJANGO_SECRET_KEY"], user_id=user_id, username=username)

    def redis_status(self) -> dict:
        with self.redis.client(socket_timeout=2) as client:
            raw = client.get("musicbud:training:status")
        return json.loads(raw) if raw else {}


def _common_port() -> int:
    """A port free on both host addresses (each host serves on the same port, as real hosts would)."""
    for _ in range(50):
        port = free_port(HOSTS[0])
        if not port_in_use(port, HOSTS[1]):
            return port
    raise RuntimeError("no port free on both 127.0.0.2 and 127.0.0.3")


def host_env(*, shared: Path, host: str, bolt_url: str, neo4j_password: str, redis_url: str, secret_key: str,
             hmac_key: str, **extra: str) -> dict[str, str]:
    """One host's environment: the shared graph, Redis, model directory, auth database and secrets; its own var
    directory (throttle fallback files, the change feed's per-host leader lock, job logs)."""
    env = live_stack.stack_env(tmp=shared / host, bolt_url=bolt_url, neo4j_password=neo4j_password,
                               secret_key=secret_key, hmac_key=hmac_key,
                               REDIS_URL=redis_url, MUSICBUD_MODEL_DIR=str(shared / "models"),
                               DATABASE_URL=f"sqlite:///{shared / 'auth.sqlite3'}",
                               MUSICBUD_MODEL_RELOAD_SECONDS=str(RELOAD_SECONDS),
                               MUSICBUD_LOGIN_RATE=f"{LOGIN_RATE}/min", MUSICBUD_LOG_LEVEL="WARNING",
                               DJANGO_ALLOWED_HOSTS="*", **extra)
    env["MUSICBUD_DEMO_ADMIN_PASSWORD"] = env["MUSICBUD_DEMO_USER_PASSWORD"] = "scale-" + secret_key[:12]
    return env


@contextlib.contextmanager
def two_hosts(*, tmp: Path, bolt_url: str, neo4j_password: str, models_from: Path, hmac_key: str, workers: int = 2,
              log=print, **extra: str) -> Iterator[TwoHosts]:
    """Redis, the two hosts (models copied from `models_from` into the shared directory) and HAProxy in front;
    everything stopped at the end."""
    tmp.mkdir(parents=True, exist_ok=True)
    shared = tmp / "shared"
    shutil.copytree(models_from, shared / "models", ignore=shutil.ignore_patterns(".*.lock", "training_status.json"))
    os.chmod(shared / "models", 0o700)
    redis = redis_start(data_dir=tmp / "redis", port=free_port(), password=secrets.token_urlsafe(16))
    servers: dict[str, live_stack.LiveServer] = {}
    lb = None
    try:
        secret_key = secrets.token_urlsafe(48)
        envs = {host: host_env(shared=shared, host=host, bolt_url=bolt_url, neo4j_password=neo4j_password,
                               redis_url=redis.url, secret_key=secret_key, hmac_key=hmac_key, **extra)
                for host in HOSTS}
        info = live_stack.prepare(envs[HOSTS[0]])  # the shared auth database: migrated, admin and demo logins
        port = _common_port()
        for host in HOSTS:
            started = time.perf_counter()
            servers[host] = live_stack.serve(envs[host], workers=workers, port=port, host=host)
            log(f"host {host}:{port} serving ({workers} workers) in {time.perf_counter() - started:.1f}s")
        lb = haproxy_start(config_dir=tmp / "lb", port=free_port(), backends=[(h, port) for h in HOSTS],
                           check_inter_ms=CHECK_INTER_MS, fall=FALL, rise=1)
        for name in lb.servers:
            lb.wait_server_state(name, "UP", timeout=20)
        log(f"HAProxy on {lb.url} in front of {', '.join(lb.servers)}")
        yield TwoHosts(redis=redis, lb=lb, servers=servers, envs=envs, shared_dir=shared, users=info["users"])
    finally:
        if lb is not None:
            lb.stop()
        for server in servers.values():
            server.stop()
        redis.stop()


# --- 1. the login throttle -------------------------------------------------------------------------------------

def login_throttle_across_hosts(stack: TwoHosts) -> dict:
    """Failed logins alternately to each host (never through the balancer) until the first 429."""
    answered: list[tuple[str, int]] = []
    for attempt in range(4 * LOGIN_RATE):
        host = HOSTS[attempt % 2]
        response = httpx.post(f"{stack.servers[host].url}/v1/login/", timeout=30,
                              json={"username": "admin", "password": "wrong-" + secrets.token_hex(4)})
        answered.append((host, response.status_code))
        if response.status_code == 429:
            break
    allowed = sum(code != 429 for _, code in answered)
    return {"rate_per_minute": LOGIN_RATE, "attempts_before_429": allowed,
            "per_host": {h: sum(1 for host, code in answered if host == h and code != 429) for h in HOSTS},
            "first_429_on": next((h for h, code in answered if code == 429), None),
            "holds": answered[-1][1] == 429 and allowed == LOGIN_RATE}


# --- 2. a training through one host is served by both ------------------------------------------------------------

def _manifest_version(stack: TwoHosts, model_key: str) -> str | None:
    try:
        return json.loads((stack.model_dir / f"{model_key}_manifest.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def training_served_by_both(stack: TwoHosts, *, model_key: str = "movie", timeout: float = 900) -> dict:
    """POST train/models/ through host A while probing every worker's health (fresh connections, both hosts):
    seconds from the moment the new manifest was switched on disk until each worker first reports that version
    (an upper bound: a probe's own time is in it)."""
    old = _manifest_version(stack, model_key)
    answer: dict = {}

    def train() -> None:
        started = time.perf_counter()
        response = httpx.post(f"{stack.servers[HOSTS[0]].url}/v1/recommendations/train/models/", timeout=timeout,
                              headers={"Authorization": f"Bearer {stack.token('admin')}"})
        answer.update(status=response.status_code, text=response.text, seconds=time.perf_counter() - started)

    trainer = threading.Thread(target=train)
    trainer.start()
    switched = new = None
    served: dict[str, float] = {}
    probes = 0
    workers = sum(s.workers for s in stack.servers.values())
    deadline = time.perf_counter() + timeout
    while (len(served) < workers or trainer.is_alive()) and time.perf_counter() < deadline:
        if switched is None and (version := _manifest_version(stack, model_key)) not in (None, old):
            switched, new = time.perf_counter(), version
        for host, server in stack.servers.items():
            try:
                body = httpx.get(f"{server.url}/v1/health/", timeout=30, headers={"Connection": "close"}).json()
            except httpx.HTTPError:
                continue
            probes += 1
            seen = (body["data"]["models"].get(model_key) or {}).get("version")
            if new is not None and seen == new:
                served.setdefault(f"{host}/{body['data']['change_feed']['worker']}",
                                  round(time.perf_counter() - switched, 3))
        if not trainer.is_alive() and answer.get("status") != 200:
            break
    trainer.join()
    if answer.get("status") != 200:
        raise RuntimeError(f"the training through {HOSTS[0]} answered {answer.get('status')}: {answer.get('text')}")
    return {"trained_through": HOSTS[0], "train_seconds": round(answer["seconds"], 1), "model": model_key,
            "old_version": old, "new_version": new, "health_probes": probes,
            "seconds_from_switch_until_served_by_worker": served, "workers": workers,
            "max_seconds": max(served.values()) if served else None,
            "reload_interval_seconds": RELOAD_SECONDS,
            "served_by_every_worker_within_interval": len(served) == workers and
            max(served.values()) <= RELOAD_SECONDS + 0.5}  # + a probe's own time


# --- 3. scheduled trainings never overlap ------------------------------------------------------------------------

def _training_processes(model_dir: Path) -> list[int]:
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            cmd = proc.info["cmdline"] or []
            if "train_models" in cmd and proc.environ().get("MUSICBUD_MODEL_DIR") == str(model_dir):
                pids.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return pids


def scheduled_trainings(*, tmp: Path, bolt_url: str, neo4j_password: str, models_from: Path, hmac_key: str,
                        every: str, jobs_wanted: int, timeout: float, log=print, **extra: str) -> dict:
    """Both hosts with MUSICBUD_TRAIN_EVERY=every (4 schedulers): the jobs run and the most alive at once."""
    with two_hosts(tmp=tmp, bolt_url=bolt_url, neo4j_password=neo4j_password, models_from=models_from,
                   MUSICBUD_TRAIN_EVERY=every, hmac_key=hmac_key, log=log, **extra) as stack:
        jobs: dict[str, dict] = {}
        finished: set[int] = set()  # pids whose job reported its end (the process may take a moment to exit)
        most = most_processes = 0
        samples = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alive = set(_training_processes(stack.model_dir))
            status = stack.redis_status()  # read after the processes: a job that ended in between is known ended
            samples += 1
            if status.get("job_id"):
                jobs.setdefault(status["job_id"], {}).update(
                    {k: status.get(k) for k in ("state", "host", "pid", "started_at", "finished_at", "error")})
                if status.get("state") in ("succeeded", "failed") and status.get("pid"):
                    finished.add(int(status["pid"]))
            most_processes = max(most_processes, len(alive))
            most = max(most, len(alive - finished))
            if sum(j["state"] == "succeeded" for j in jobs.values()) >= jobs_wanted:
                break
            time.sleep(0.02)
        succeeded = sum(j["state"] == "succeeded" for j in jobs.values())
        return {"every": every, "schedulers": sum(s.workers for s in stack.servers.values()), "jobs": jobs,
                "succeeded": succeeded, "samples": samples, "most_training_processes_at_once": most,
                "most_train_models_processes_alive_at_once": most_processes,
                "never_overlap": most <= 1 and succeeded >= jobs_wanted}


# --- 4. failover under load --------------------------------------------------------------------------------------

def failover_under_load(stack: TwoHosts, *, seconds: float, connections: int = 32) -> dict:
    from bench.serving import wrk

    token = stack.token("demo")
    url = f"{stack.lb.url}/v1/recommendations/movies/"
    wrk(url, token, connections=connections, seconds=1)  # warm both hosts
    before = wrk(url, token, connections=connections, seconds=seconds)
    victim = HOSTS[1]
    name = next(n for n in stack.lb.servers if n.startswith(victim))
    during: dict = {}
    runner = threading.Thread(target=lambda: during.update(wrk(url, token, connections=connections,
                                                               seconds=seconds)))
    runner.start()
    time.sleep(min(1.0, seconds / 3))
    killed = time.perf_counter()
    os.killpg(stack.servers[victim].process.pid, signal.SIGKILL)  # the host's server and workers, no shutdown
    stack.lb.wait_server_state(name, "DOWN", timeout=30)
    window = time.perf_counter() - killed
    runner.join()
    stack.servers[victim].process.wait()
    after = wrk(url, token, connections=connections, seconds=seconds)
    return {"connections": connections, "url_path": "/v1/recommendations/movies/", "killed": victim,
            "haproxy": {"check_inter_ms": CHECK_INTER_MS, "fall": FALL, "retries": 3, "redispatch": True},
            "failover_window_seconds": round(window, 3),
            "before": before, "during_kill": during, "after": after,
            "failed_in_the_run_with_the_kill": during.get("errors"),
            "failed_after_the_window": after["errors"],
            "no_failure_after_window": after["errors"] == 0}


# --- the benchmark ------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    from bench.harness import ROOT, SIZES, machine, result_write, stack_waiting, table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="the tiny graph, short load")
    parser.add_argument("--size", choices=sorted(SIZES), default="100k")
    parser.add_argument("--seconds", type=float, default=5.0, help="each wrk run (default 5)")
    args = parser.parse_args(argv)
    size = "smoke" if args.smoke else args.size
    seconds = 2.0 if args.smoke else args.seconds
    load_before = machine()["load_average"]
    with stack_waiting(SIZES[size], quiet=args.smoke) as bench, \
            tempfile.TemporaryDirectory(prefix="musicbud-scale-") as tmp_name:
        bench.models_ensure()
        tmp = Path(tmp_name)
        common = dict(bolt_url=bench.neo4j.bolt_url, neo4j_password=bench.neo4j.password,
                      models_from=bench.models_dir,
                      hmac_key=(bench.var_dir / "model_hmac_key").read_text().strip())  # the cached models' key
        # the hosts' trainings (through the API, scheduled) are what is shared here, not their quality: 5 epochs
        epochs = {"LIGHTFM_EPOCHS": str(bench.size.epochs or TRAINING_EPOCHS)}
        with two_hosts(tmp=tmp / "a", **common, **epochs, log=bench.log) as stack:
            throttle = login_throttle_across_hosts(stack)
            training = training_served_by_both(stack)
            failover = failover_under_load(stack, seconds=seconds)
        scheduled = scheduled_trainings(tmp=tmp / "b", **common, **epochs, every="2s", jobs_wanted=2, timeout=600,
                                        log=bench.log)
        graph = bench.seed_info
    payload = {"graph": graph, "size": size, "hosts": list(HOSTS), "workers_per_host": 2,
               "machine": {**machine(), "load_average_before": load_before},
               "login_throttle": throttle, "training": training, "scheduled_trainings": scheduled,
               "failover": failover}
    path = result_write("scale", payload, smoke=args.smoke)
    print(table(["check", "measured", "holds"], [
        ["login throttle: failed logins before 429 (alternating hosts)",
         f"{throttle['attempts_before_429']} (rate {LOGIN_RATE}/min)", throttle["holds"]],
        ["training via A served by all 4 workers (s after it answered)", training["max_seconds"],
         training["served_by_every_worker_within_interval"]],
        ["scheduled trainings: most at once / jobs", f"{scheduled['most_training_processes_at_once']} / "
                                                     f"{scheduled['succeeded']}", scheduled["never_overlap"]],
        ["failover window (kill to DOWN, s)", failover["failover_window_seconds"], None],
        ["failed requests in the run with the kill", failover["failed_in_the_run_with_the_kill"], None],
        ["failed requests after the window", failover["failed_after_the_window"], failover["no_failure_after_window"]],
        ["req/s before (2 hosts) / during / after (1 host)",
         f"{failover['before']['rps']:,.0f} / {failover['during_kill'].get('rps', 0):,.0f} / "
         f"{failover['after']['rps']:,.0f}", None],
    ]))
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
