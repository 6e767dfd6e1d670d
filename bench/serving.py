#!/usr/bin/env python
"""Serving under HTTP load: latency and throughput of the recommendation endpoints, next to a trivial
authenticated endpoint on the same server and to the seed's design, in one run.

    python -m bench.serving                  # 1M interactions (50k users, 20k items per type), 10 s per point
    python -m bench.serving --size 100k --duration 5
    python -m bench.serving --smoke          # tiny graph, 1 s per point (CI): bench/results/serving-smoke.json

The harness (bench/harness.py) starts a throwaway Neo4j with the demo graph (cached under var/bench/),
trains the models if none are saved for that graph, and serves the API exactly as `make run` does (uvicorn,
2 workers, uvloop, httptools, no access log, OPENBLAS_NUM_THREADS=1) with MUSICBUD_BENCH_BASELINE=1, which
mounts the seed's design at /v1/bench/seed-baseline/<type>/ (joblib-load the model files and LightFM
`predict` every item, per request). wrk (a separate process, one thread) drives each endpoint at 1, 8 and
32 connections with the seeded user's Bearer token, as the targets are defined; the movies endpoint is also
driven as many users, a different one per request (bench/wrk_many_users.lua), where each worker's answer
cache never has the answer: the cost of computing recommendations. Prints a table and writes
bench/results/serving.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import ROOT, SIZES, WORKERS, BenchError, BenchStack, machine, result_write, table  # noqa: E402

ENDPOINTS = {
    "ping": "/v1/ping/",
    "movies": "/v1/recommendations/movies/",
    # the same endpoint, each request as another user (MANY_USERS of them): no cached answer, no verified token
    "movies_many_users": "/v1/recommendations/movies/",
    "all": "/v1/recommendations/",
    "seed_baseline": "/v1/bench/seed-baseline/movies/",
}
CONNECTIONS = (1, 8, 32)
TARGETS = {
    "movies_p50_ms_at_1": 3.0,  # at most
    "movies_p99_ms_at_1": 10.0,  # at most
    "movies_rps_at_32": 800.0,  # at least
    "movies_share_of_ping_rps_at_32": 0.85,  # at least
    "speedup_vs_seed_p50_at_1": 10.0,  # at least
}
LUA = Path(__file__).resolve().parent / "wrk_report.lua"
LUA_MANY_USERS = Path(__file__).resolve().parent / "wrk_many_users.lua"
MANY_USERS = 30_000  # more than a 10 s point sends, so no user repeats within a point


def wrk(url: str, token: str | Path, *, connections: int, seconds: float, start: int = 0, timeout: float = 30.0
        ) -> dict:
    """One wrk run (one thread): requests/s and latency percentiles in ms, errors (non-2xx included). `token`:
    one Bearer token for every request, or a file of many, used in turn from line `start` on."""
    seconds = max(1, round(seconds))  # wrk takes whole seconds
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout:g}s"]
    if isinstance(token, Path):
        cmd += ["-s", str(LUA_MANY_USERS), url, "--", str(token), str(start)]
    else:
        cmd += ["-s", str(LUA), "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + timeout + 30)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    ms = lambda us: round(us / 1000, 3)  # noqa: E731
    return {
        "connections": connections, "requests": raw["requests"],
        "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
        "p50_ms": ms(raw["p50_us"]), "p90_ms": ms(raw["p90_us"]), "p99_ms": ms(raw["p99_us"]),
        "p999_ms": ms(raw["p999_us"]), "max_ms": ms(raw["max_us"]), "mean_ms": ms(raw["mean_us"]),
        "errors": errors, "non_2xx": raw["status_errors"],
    }


def pyload(url: str, token: str | Path, *, connections: int, seconds: float, start: int = 0) -> dict:
    """A small keep-alive HTTP/1.1 load generator (asyncio), for --smoke where wrk is not installed; wrk()'s shape."""
    import asyncio
    import itertools
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    tokens = token.read_text().split() if isinstance(token, Path) else [token]
    requests = [(f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 f"Authorization: Bearer {t}\r\n\r\n").encode() for t in tokens]
    turns = itertools.islice(itertools.cycle(requests), start % len(requests), None)
    latencies: list[float] = []
    errors = non_2xx = 0

    async def client(deadline: float) -> None:
        nonlocal errors, non_2xx
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(next(turns))
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                non_2xx += not head.startswith((b"HTTP/1.1 2", b"HTTP/1.0 2"))
        except (OSError, asyncio.IncompleteReadError, StopIteration):
            errors += 1
        finally:
            writer.close()

    async def run() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(client(started + seconds) for _ in range(connections)))
        return time.perf_counter() - started

    elapsed = asyncio.run(run())
    ms = sorted(x * 1000 for x in latencies) or [0.0]
    pct = lambda q: round(ms[min(len(ms) - 1, int(q / 100 * len(ms)))], 3)  # noqa: E731
    return {"connections": connections, "requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(50), "p90_ms": pct(90), "p99_ms": pct(99), "p999_ms": pct(99.9), "max_ms": pct(100),
            "mean_ms": round(sum(ms) / len(ms), 3), "errors": errors + non_2xx, "non_2xx": non_2xx}


def check_answers(server, token: str) -> dict[str, int]:
    """Every endpoint answers 200 with the envelope before it is measured (else the numbers mean nothing)."""
    sizes = {}
    for name, path in ENDPOINTS.items():
        status, body = server.get(path, token)
        payload = json.loads(body)
        if status != 200 or payload.get("success") is not True:
            raise BenchError(f"GET {path} answered {status}: {body[:300]!r}")
        sizes[name] = len(body)
    status, _ = server.get(ENDPOINTS["movies"])
    if status != 401:
        raise BenchError(f"GET {ENDPOINTS['movies']} without a token answered {status}, not 401")
    return sizes


def load_generator(smoke: bool):
    """wrk, or (only for --smoke, where CI may lack it) the built-in generator; (callable, description)."""
    if shutil.which("wrk"):
        return wrk, "wrk -t1 (one thread, its own process), keep-alive connections"
    if smoke:
        return pyload, "built-in asyncio generator (wrk not installed; smoke only)"
    raise BenchError("wrk is not installed: apt-get install -y wrk (make bench does it)")


def warm_up(server, token: str, seconds: float, load) -> None:
    """Load every model in every worker (the registry loads lazily) before anything is measured."""
    for path in (ENDPOINTS["all"], ENDPOINTS["movies"], ENDPOINTS["ping"]):
        load(server.url + path, token, connections=8, seconds=seconds)


def median_of(rounds: list[dict]) -> dict:
    """One point from several rounds: the median round's rps and percentiles (a burst of other work on the
    shared machine spoils one round, not the point), requests and errors summed."""
    out = dict(rounds[0])
    for key in ("rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"):
        out[key] = statistics.median(r[key] for r in rounds)
    for key in ("requests", "errors", "non_2xx"):
        out[key] = sum(r[key] for r in rounds)
    out["rounds"] = [{k: r[k] for k in ("rps", "p50_ms", "p99_ms")} for r in rounds]
    return out


def targets(results: dict[str, dict[int, dict]]) -> list[dict]:
    movies, ping, seed = results["movies"], results["ping"], results["seed_baseline"]
    values = {
        "movies_p50_ms_at_1": movies[1]["p50_ms"],
        "movies_p99_ms_at_1": movies[1]["p99_ms"],
        "movies_rps_at_32": movies[32]["rps"],
        "movies_share_of_ping_rps_at_32": round(movies[32]["rps"] / ping[32]["rps"], 3),
        "speedup_vs_seed_p50_at_1": round(seed[1]["p50_ms"] / movies[1]["p50_ms"], 1),
    }
    out = []
    for name, target in TARGETS.items():
        at_most = name.endswith(("_ms_at_1",))
        value = values[name]
        out.append({"name": name, "target": target, "value": value,
                    "met": value <= target if at_most else value >= target,
                    "kind": "at most" if at_most else "at least"})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny graph, 1 s per point (seconds in all)")
    parser.add_argument("--size", choices=sorted(SIZES), default="1m")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per (endpoint, connections) point")
    parser.add_argument("--rounds", type=int, default=3,
                        help="each point is the median of this many turns of duration/rounds seconds")
    parser.add_argument("--retrain", action="store_true", help="train again even when models are saved")
    parser.add_argument("--out", type=Path, help="result file (default bench/results/serving[-smoke].json)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.size, args.duration, args.rounds = "smoke", 1.0, 1
    load, generator = load_generator(args.smoke)
    load_before = machine()["load_average"]
    with BenchStack(SIZES[args.size], quiet=args.smoke) as stack:
        stack.models_ensure(retrain=args.retrain)
        with stack.serve(MUSICBUD_BENCH_BASELINE="1") as server:
            token = stack.token(server)
            body_bytes = check_answers(server, token)
            many_users = stack.tokens_of_many_users(MANY_USERS)
            users_count = len(many_users.read_text().split())
            warm_up(server, token, 1.0 if args.smoke else 3.0, load)
            rounds: dict[str, dict[int, list[dict]]] = {name: {c: [] for c in CONNECTIONS} for name in ENDPOINTS}
            position = 0  # the many-users tokens go on where the last turn stopped: a user comes back after all
            started = time.perf_counter()
            for connections in CONNECTIONS:  # the endpoints take turns at one concurrency: same conditions
                for _ in range(args.rounds):
                    for name, path in ENDPOINTS.items():
                        many = name == "movies_many_users"
                        result = load(server.url + path, many_users if many else token, connections=connections,
                                      seconds=args.duration / args.rounds, start=position)
                        position += result["requests"] + connections if many else 0
                        rounds[name][connections].append(result)
            load_seconds = time.perf_counter() - started
            from bench.memory import workers_memory

            workers = workers_memory(server)
        seed_info = stack.seed_info
    results = {name: {c: median_of(rs) for c, rs in by_c.items()} for name, by_c in rounds.items()}
    rows, flat = [], []
    for name in ENDPOINTS:
        for connections in CONNECTIONS:
            r = results[name][connections]
            flat.append({"endpoint": name, "path": ENDPOINTS[name], **r})
            rows.append([name, connections, r["rps"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["requests"],
                         r["errors"]])
    checked = targets(results)
    ratios = {f"{name}_rps_vs_ping_at_{c}": round(results[name][c]["rps"] / results["ping"][c]["rps"], 3)
              for name in ("movies", "movies_many_users", "all", "seed_baseline") for c in CONNECTIONS}
    def ratio(a: float, b: float) -> float | None:  # None: the seed's design answered nothing in the time
        return round(a / b, 1) if b else None

    speedups = {f"movies_vs_seed_{metric}_at_{c}": (
        ratio(results["seed_baseline"][c][metric], results["movies"][c][metric]) if metric != "rps"
        else ratio(results["movies"][c]["rps"], results["seed_baseline"][c]["rps"]))
        for c in CONNECTIONS for metric in ("p50_ms", "rps")}
    after = machine()
    payload = {
        "machine": {**after, "load_average_before": load_before, "load_average_after": after["load_average"]},
        "graph": seed_info,
        "server": {"workers": WORKERS, "command": " ".join(server.command[1:]),
                   "env": {"OPENBLAS_NUM_THREADS": "1", "MUSICBUD_BENCH_BASELINE": "1"}},
        "load_generator": generator,
        "duration_seconds_per_point": args.duration,
        "rounds_per_point": args.rounds,
        "measured_seconds": round(load_seconds, 1),
        "response_bytes": body_bytes,
        "many_users": {"users": users_count, "note": "movies_many_users: every request is another user known to "
                       "the movie model (minted access tokens with a login's claims), in turn, so no answer comes "
                       "from the answer cache and no token from the verified-token cache while fewer requests "
                       "than users were sent since that user's last one"},
        "results": flat,
        "ratios": ratios,
        "speedups": speedups,
        "worker_memory": workers,
        "targets": checked,
    }
    path = result_write("serving", payload, smoke=args.smoke, out=args.out)
    print(f"Serving: {args.size} graph ({seed_info.get('edges', 0):,} edges), {args.duration:g} s per point, "
          f"load average {load_before} before, {after['load_average']} after ({after['cpus']} cores)")
    print(table(["endpoint", "conns", "req/s", "p50 ms", "p90 ms", "p99 ms", "requests", "errors"], rows))
    print()
    print(table(["target", "kind", "target value", "measured", "met"],
                [[t["name"], t["kind"], t["target"], t["value"], t["met"]] for t in checked]))
    print(f"Every request another user ({users_count:,} users, no cached answer): movies at 32 connections "
          f"{results['movies_many_users'][32]['rps']} req/s, "
          f"{ratios['movies_many_users_rps_vs_ping_at_32']:.0%} of ping's")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
