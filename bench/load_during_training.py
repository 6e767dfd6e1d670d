"""Load while trainings swap models in: N requests at C connections on the real stack (uvicorn --workers 2, a real
Neo4j) while the graph grows and trainings run back to back through the API (one worker trains, the other picks
the new versions up from the model directory). Every answer must be a 200 from one complete model:

  * each answer of GET /v1/recommendations/<type>/ names its model in X-Model-Version;
  * this script loads every version as soon as it is saved (HMAC-checked, like the server) and ranks the same
    user with it: the answer must be exactly that ranking (the same ids, in order, with the same scores), and all
    its items must be columns of that version's matrix;
  * between trainings new items (and edges to them) are added to the graph, so consecutive versions rank
    differently: the table says how many answers only their own version could have produced.

New items (MUSICBUD_NEW_ITEMS: items in the graph the served model lacks, ranked from their features) are off
here: an answer would hold the ones a worker saw at its last look at the graph, which no saved version says, so
the check could not be exact (tests/app/test_discovery.py checks them).

    python -m bench.load_during_training               # 10,000 requests, 32 connections, a throwaway Neo4j
    python -m bench.load_during_training --smoke       # 400 requests, 8 connections, one training (CI)
    python -m bench.load_during_training --bolt-url bolt://127.0.0.1:7687 --neo4j-password ...
                                                       # use that Neo4j instead (its graph is REPLACED)

Writes bench/results/load_during_training.json (-smoke.json for --smoke); exits 1 unless there were no errors, no
5xx, no answer off its version, and at least one new version was served during the load.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from ai.model_store import current_version, load_model  # noqa: E402
from app.content_types import CONTENT_TYPES  # noqa: E402
from bench.harness import result_write, table  # noqa: E402
from scripts import live_stack  # noqa: E402

FULL = dict(requests=10_000, connections=32, seed=dict(seed=42, users=500, items_per_type=400,
                                                         interactions_per_user=30))
SMOKE = dict(requests=400, connections=8, seed=dict(seed=11, users=60, items_per_type=40, interactions_per_user=12))
N = 10  # items per answer
USERS = 24  # users asked about (each known to every type's model)
NEW_ITEMS = 5  # items added to each type before each training
NEW_EDGES = 12  # users who get an edge to each new item


class Versions:
    """Every model version saved during the run, loaded (and HMAC-checked) as soon as the manifest names it."""

    def __init__(self, model_dir: Path, hmac_key: bytes):
        self.model_dir, self.hmac_key = model_dir, hmac_key
        self.models: dict[tuple[str, str], object] = {}
        self.stop = threading.Event()
        self.failures: list[str] = []

    def poll_once(self) -> None:
        for ct in CONTENT_TYPES:
            version = current_version(self.model_dir, ct.model_key)
            if version and (ct.key, version) not in self.models:
                try:
                    model = load_model(self.model_dir, ct.model_key, hmac_key=self.hmac_key)
                except Exception as exc:  # a version this script cannot load is a torn one
                    self.failures.append(f"{ct.model_key} {version}: {exc}")
                    continue
                self.models[(ct.key, model.manifest["version"])] = model

    def watch(self) -> None:
        while not self.stop.is_set():
            self.poll_once()
            time.sleep(0.02)


def _grow_graph(round_: int, rng: random.Random, probed: set[str]) -> int:
    """Add NEW_ITEMS items to every type, each liked by NEW_EDGES users who have that type's (first) account and
    are not among the users asked about (whose answers must stay a function of the model version alone: the
    others' answers change at once, folded in from their new edges)."""
    from app import graph
    from app.services.graph_writes import interactions_upsert, items_upsert

    edges = 0
    for ct in CONTENT_TYPES:
        uids = [r["uid"] for r in graph.query(
            f"MATCH (u:ParentUser)-[:{ct.account.rel}]->(:{ct.account.label}) RETURN DISTINCT u.uid AS uid "
            f"ORDER BY uid") if r["uid"] not in probed]
        ids = [(9_000_000 + round_ * 100 + j) if ct.id_is_int else f"bench-{ct.model_key}-{round_}-{j}"
               for j in range(NEW_ITEMS)]
        items_upsert(content_type=ct, rows=[{ct.id_property: i, ct.title_property: f"New {ct.label} {i}"}
                                            for i in ids])
        rel = next(iter(ct.edges))
        rows = [{"user_uid": uid, "item_id": i, "rel": rel} for i in ids
                for uid in rng.sample(uids, min(NEW_EDGES, len(uids)))]
        edges += sum(interactions_upsert(content_type=ct, rows=rows).values())
    return edges


def _trainer(stack: live_stack.RunningStack, done: threading.Event, trainings: list[dict], *, rounds: int | None,
             rng: random.Random, probed: set[str], failed: list[BaseException]) -> None:
    try:
        _train_rounds(stack, done, trainings, rounds=rounds, rng=rng, probed=probed)
    except BaseException as exc:  # the load stops too: say why
        failed.append(exc)
        raise


def _train_rounds(stack: live_stack.RunningStack, done: threading.Event, trainings: list[dict], *,
                  rounds: int | None, rng: random.Random, probed: set[str]) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {stack.token(live_stack.ADMIN)}"}
    round_ = 0
    while not done.is_set() and (rounds is None or round_ < rounds):
        round_ += 1
        edges = _grow_graph(round_, rng, probed)
        started = time.perf_counter()
        response = httpx.post(f"{stack.server.url}/v1/recommendations/train/models/", headers=headers, timeout=900)
        trainings.append({"round": round_, "status": response.status_code, "new_edges": edges,
                          "seconds": round(time.perf_counter() - started, 2), "finished": time.monotonic(),
                          "trained": response.json().get("data") if response.status_code == 200 else response.text})


async def _load(url: str, plan, connections: int) -> list[dict]:
    """Send the (username, type key, token) requests of `plan` (an iterator) over `connections` keep-alive
    connections."""
    import httpx

    answers: list[dict] = []
    queue = enumerate(plan)
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        async def worker() -> None:
            for i, (username, key, token) in queue:
                started = time.perf_counter()
                answer = {"i": i, "user": username, "type": key}
                try:
                    response = await client.get(f"/v1/recommendations/{key}/", params={"n": N},
                                                headers={"Authorization": f"Bearer {token}"})
                    answer["status"] = response.status_code
                    answer["version"] = response.headers.get("X-Model-Version")
                    if response.status_code == 200:
                        answer["items"] = [(it["id"], it["recommendation_score"]) for it in response.json()["data"]]
                except httpx.HTTPError as exc:
                    answer["status"], answer["error"] = 0, f"{type(exc).__name__}: {exc}"
                answer["seconds"] = time.perf_counter() - started
                answers.append(answer)

        await asyncio.gather(*(worker() for _ in range(connections)))
    return answers


def _expected(model, uid: str) -> list[tuple[str, float]]:
    return [(str(item), round(float(score), 6)) for item, score, _ in model.recommend(uid, n=N)]


def verify(answers: list[dict], versions: Versions, uids: dict[str, str]) -> dict:
    """Each 200 against its own version's ranking; also whether another version would have given the same."""
    expected: dict[tuple[str, str, str], list] = {}

    def ranking(key: str, version: str, user: str):
        if (key, version, user) not in expected:
            model = versions.models.get((key, version))
            expected[(key, version, user)] = None if model is None else _expected(model, uids[user])
        return expected[(key, version, user)]

    counts = Counter()
    mismatches = []
    by_type: dict[str, set[str]] = {}
    for a in answers:
        if a.get("status") != 200:
            continue
        key, version = a["type"], a.get("version")
        by_type.setdefault(key, set()).add(version)
        want = ranking(key, version, a["user"]) if version else None
        if want is None:
            counts["unverifiable"] += 1
            mismatches.append({**a, "why": "no such version was saved" if version else "no X-Model-Version"})
            continue
        got = [(i, s) for i, s in a["items"]]
        columns = versions.models[(key, version)].item_map
        if [i for i, _ in got] != [i for i, _ in want] or any(abs(s - w) > 2e-6 for (_, s), (_, w) in zip(got, want)) \
                or any(i not in columns for i, _ in got):
            counts["mismatched"] += 1
            mismatches.append({**a, "why": "not that version's ranking", "expected": want})
            continue
        counts["verified"] += 1
        others = [v for (k, v) in versions.models if k == key and v != version]
        if all(ranking(key, v, a["user"]) != want for v in others):
            counts["only_its_version"] += 1
    return {"counts": dict(counts), "mismatches": mismatches[:10],
            "versions_served": {k: len(v) for k, v in sorted(by_type.items())}}


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def run(*, requests: int, connections: int, seed: dict, bolt_url: str | None, neo4j_password: str,
        trainings_max: int | None, log) -> dict:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="musicbud-load-") as tmp, \
            live_stack.running_stack(tmp=Path(tmp), seed=seed, bolt_url=bolt_url, neo4j_password=neo4j_password,
                                     log=log, MUSICBUD_NEW_ITEMS="false") as stack:
        os.environ.update({k: v for k, v in stack.env.items() if k.startswith(("NEO4J_", "MUSICBUD_", "DJANGO_"))})
        os.environ["MUSICBUD_LOG_LEVEL"] = "WARNING"  # this process's own log (the server's is in its log file)
        import django

        django.setup()
        model_dir = Path(stack.env["MUSICBUD_MODEL_DIR"])
        versions = Versions(model_dir, stack.env["MUSICBUD_MODEL_HMAC_KEY"].encode())
        versions.poll_once()
        first = dict(versions.models)
        directory = json.loads((model_dir / "user_directory.json").read_text())
        everywhere = [name for name, uid in sorted(directory.items())
                      if all(uid in m.user_map for (_, _), m in first.items())]
        users = rng.sample(everywhere, min(USERS, len(everywhere)))
        tokens = {u: stack.token(u) for u in users}
        reload_seconds = float(stack.env.get("MUSICBUD_MODEL_RELOAD_SECONDS", 1))

        def plan():
            """`requests` requests, and more until a training has finished and every worker had time to reload."""
            sent = 0
            while not failed and (sent < requests or not trainings
                                  or time.monotonic() < trainings[0]["finished"] + reload_seconds + 1):
                user = rng.choice(users)
                yield user, rng.choice(CONTENT_TYPES).key, tokens[user]
                sent += 1

        watcher = threading.Thread(target=versions.watch, daemon=True)
        watcher.start()
        done, trainings, failed = threading.Event(), [], []
        trainer = threading.Thread(target=_trainer, args=(stack, done, trainings),
                                   kwargs={"rounds": trainings_max, "rng": rng, "probed": {directory[u] for u in users},
                                           "failed": failed})
        log(f"load: {requests:,} requests at {connections} connections for {len(users)} users, trainings back to back")
        started = time.perf_counter()
        trainer.start()
        answers = asyncio.run(_load(stack.server.url, plan(), connections))
        seconds = time.perf_counter() - started
        done.set()
        trainer.join()
        if failed:
            raise RuntimeError(f"the trainings stopped: {failed[0]!r}") from failed[0]
        versions.poll_once()
        versions.stop.set()
        watcher.join()
        server_errors = [line for line in stack.server.log_text().splitlines() if " ERROR " in line]

    statuses = Counter(a["status"] for a in answers)
    latencies = [a["seconds"] for a in answers]
    checked = verify(answers, versions, directory)
    swapped = sum(1 for (key, version) in versions.models if (key, version) not in first)
    new_served = sum(1 for a in answers if a.get("status") == 200 and (a["type"], a.get("version")) not in first)
    return {
        "requests": len(answers), "connections": connections, "users": len(users), "seconds": round(seconds, 2),
        "requests_per_second": round(len(answers) / seconds, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": statuses.get(0, 0), "status_5xx": sum(v for k, v in statuses.items() if k >= 500),
        "non_200": sum(v for k, v in statuses.items() if k != 200),
        "latency_ms": {"p50": round(_percentile(latencies, 0.50) * 1000, 1),
                       "p90": round(_percentile(latencies, 0.90) * 1000, 1),
                       "p99": round(_percentile(latencies, 0.99) * 1000, 1),
                       "max": round(max(latencies, default=0) * 1000, 1)},
        "trainings": trainings,
        "versions_saved_during_load": swapped,
        "answers_from_new_versions": new_served,
        "versions_served_per_type": checked["versions_served"],
        "verified_exact": checked["counts"].get("verified", 0),
        "only_their_version_could_give": checked["counts"].get("only_its_version", 0),
        "mismatched": checked["counts"].get("mismatched", 0),
        "unverifiable": checked["counts"].get("unverifiable", 0),
        "mismatch_examples": checked["mismatches"],
        "error_examples": [a for a in answers if a["status"] != 200][:10],
        "versions_unloadable": versions.failures,
        "server_log_errors": server_errors[:20],
        "graph": seed,
    }


def passed(r: dict) -> bool:
    return (r["errors"] == 0 and r["non_200"] == 0 and r["mismatched"] == 0 and r["unverifiable"] == 0
            and r["verified_exact"] == r["requests"] and r["answers_from_new_versions"] > 0
            and not r["versions_unloadable"] and not r["server_log_errors"]
            and all(t["status"] == 200 for t in r["trainings"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="400 requests, 8 connections, one training (CI)")
    parser.add_argument("--requests", type=int)
    parser.add_argument("--connections", type=int)
    parser.add_argument("--bolt-url", help="use this Neo4j (its graph is replaced) instead of a throwaway one")
    parser.add_argument("--neo4j-password", default=os.environ.get("NEO4J_PASSWORD", ""))
    parser.add_argument("--out", type=Path,
                        help="the result file (default bench/results/load_during_training[-smoke].json)")
    args = parser.parse_args(argv)
    size = SMOKE if args.smoke else FULL
    log = lambda message: print(f"[load] {message}", file=sys.stderr, flush=True)  # noqa: E731
    r = run(requests=args.requests or size["requests"], connections=args.connections or size["connections"],
            seed=size["seed"], bolt_url=args.bolt_url, neo4j_password=args.neo4j_password,
            trainings_max=1 if args.smoke else None, log=log)
    ok = passed(r)
    print(table(["what", "value"], [
        ["requests", r["requests"]], ["connections", r["connections"]], ["seconds", r["seconds"]],
        ["requests/s", r["requests_per_second"]], ["errors (no answer)", r["errors"]], ["5xx", r["status_5xx"]],
        ["other non-200", r["non_200"] - r["status_5xx"] - r["errors"]],
        ["p50 ms", r["latency_ms"]["p50"]], ["p90 ms", r["latency_ms"]["p90"]], ["p99 ms", r["latency_ms"]["p99"]],
        ["max ms", r["latency_ms"]["max"]],
        ["trainings (200)", f"{sum(t['status'] == 200 for t in r['trainings'])} of {len(r['trainings'])}"],
        ["new versions saved during the load", r["versions_saved_during_load"]],
        ["answers from a new version", r["answers_from_new_versions"]],
        ["answers = their version's ranking", r["verified_exact"]],
        ["... that no other version gives", r["only_their_version_could_give"]],
        ["answers off their version", r["mismatched"] + r["unverifiable"]],
        ["ERROR lines in the server log", len(r["server_log_errors"])], ["passed", ok],
    ]))
    print("versions served per type: " + ", ".join(f"{k} {v}" for k, v in r["versions_served_per_type"].items()))
    path = result_write("load_during_training", r, smoke=args.smoke, out=args.out)
    print(f"wrote {path}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
