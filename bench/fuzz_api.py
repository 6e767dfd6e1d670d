"""Schemathesis against the service's own OpenAPI schema (/v1/schema/) on the real stack (uvicorn, 2 workers,
a real Neo4j), with a valid user's token: every generated request must get an answer that is not a server error
and that is valid against the schema (status code, content type, headers, body), invalid input must be refused
and valid input accepted (schemathesis `--checks all`).

    python -m bench.fuzz_api                  # a throwaway Neo4j of its own; 100 examples per operation and
                                              # every phase (coverage, fuzzing, stateful): about 3,000 cases
    python -m bench.fuzz_api --smoke          # coverage + fuzzing, 3 examples per operation: ~600 cases, seconds
    python -m bench.fuzz_api --bolt-url bolt://127.0.0.1:7687 --neo4j-password ...   # use that Neo4j instead
                                              # (its graph is REPLACED by the demo graph)

Writes bench/results/fuzz_api.json (fuzz_api-smoke.json for --smoke); exits 1 when anything failed. The throttles
are raised for the run (they are tested on their own), so that login and the guest endpoint are fuzzed too.
The similar-items operations get a known item id in half of their cases (bench/fuzz_hooks.py).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from bench.harness import result_write, table  # noqa: E402
from scripts import live_stack  # noqa: E402

ST = str(Path(sys.executable).with_name("st"))
DEMO = dict(seed=11, users=60, items_per_type=40, interactions_per_user=12)
FULL = dict(examples=100, phases="coverage,fuzzing,stateful")
SMOKE = dict(examples=3, phases="coverage,fuzzing")
# The throttles would answer most generated logins with 429 (they have tests of their own).
UNTHROTTLED = dict(MUSICBUD_LOGIN_RATE="100000/min", MUSICBUD_GUEST_RATE="100000/min")


def known_item_ids(base_url: str, token: str, n: int = 5) -> dict[str, list[str]]:
    """A few item ids of every type, as the API recommends them (so the models know them)."""
    import httpx

    from app.content_types import CONTENT_TYPES

    ids = {}
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as client:
        for ct in CONTENT_TYPES:
            response = client.get(f"/v1/recommendations/{ct.key}/", params={"n": n})
            response.raise_for_status()
            ids[ct.key] = [item["id"] for item in response.json()["data"]]
    return ids


def fuzz(*, base_url: str, token: str, examples: int, phases: str, seed: int | None = None,
         workers: int = 1, timeout: float = 3600) -> dict:
    """Run `st run` against base_url's /v1/schema/ and summarise its JSON report. One schemathesis worker: with
    two threads, Hypothesis' lambda-source parsing races in CPython 3.11's ast module ("AST constructor
    recursion depth mismatch") and an operation errors at random."""
    with tempfile.TemporaryDirectory(prefix="musicbud-fuzz-") as tmp:  # hypothesis' database and reports go here
        report = Path(tmp) / "schemathesis.json"
        cmd = [ST, "run", f"{base_url}/v1/schema/", "--header", f"Authorization: Bearer {token}",
               "--checks", "all", "--max-examples", str(examples), "--phases", phases, "--workers", str(workers),
               "--request-timeout", "60", "--no-color", "--report", "json", "--report-json-path", str(report)]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "bench.fuzz_hooks", "PYTHONPATH": str(ROOT),
               "MUSICBUD_FUZZ_ITEM_IDS": json.dumps(known_item_ids(base_url, token))}
        run = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)
        if not report.exists():
            raise RuntimeError(f"schemathesis wrote no report (exit {run.returncode}):\n{run.stdout[-4000:]}"
                               f"{run.stderr[-4000:]}")
        data = json.loads(report.read_text())
    failures = data.get("failures") or []
    cases = data["test_cases"]
    return {
        "schemathesis_version": data["schemathesis_version"],
        "seed": data.get("seed"),
        "examples_per_operation": examples,
        "phases": phases.split(","),
        "seconds": round(data["running_time"], 1),
        "operations_tested": data["operations"]["tested"],
        "cases": cases["generated"],
        "cases_with_failures": cases["with_failures"],
        "unique_failures": cases["unique_failures"],
        "errored": cases["errored"] + len(data.get("errors") or []),
        "server_errors": sum(1 for f in failures if "server error" in str(f.get("title", "")).lower()),
        "failures": failures[:20],
        "errors": (data.get("errors") or [])[:20],
        "warnings": {k: v for k, v in (data.get("warnings") or {}).items() if v},
        "exit_code": run.returncode,
        "output_tail": run.stdout[-3000:] if run.returncode else "",
    }


def passed(summary: dict) -> bool:
    return summary["exit_code"] == 0 and not summary["unique_failures"] and not summary["errored"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few cases per operation (CI)")
    parser.add_argument("--examples", type=int, help="examples per operation and phase (default 100; smoke 3)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--bolt-url", help="use this Neo4j (its graph is replaced) instead of a throwaway one")
    parser.add_argument("--neo4j-password", default=os.environ.get("NEO4J_PASSWORD", ""))
    parser.add_argument("--out", type=Path, help="the result file (default bench/results/fuzz_api[-smoke].json)")
    args = parser.parse_args(argv)
    size = dict(SMOKE if args.smoke else FULL)
    if args.examples:
        size["examples"] = args.examples
    log = lambda message: print(f"[fuzz] {message}", file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="musicbud-fuzz-stack-") as tmp, \
            live_stack.running_stack(tmp=Path(tmp), seed=DEMO, bolt_url=args.bolt_url,
                                     neo4j_password=args.neo4j_password, log=log, **UNTHROTTLED) as stack:
        log(f"schemathesis: {size['examples']} examples per operation, phases {size['phases']}")
        summary = fuzz(base_url=stack.server.url, token=stack.token(live_stack.USER), seed=args.seed, **size)
        server_log = stack.server.log_text()
    summary["server_log_errors"] = [line for line in server_log.splitlines() if " ERROR " in line][:20]
    print(table(["what", "value"], [
        ["schemathesis", summary["schemathesis_version"]], ["operations", summary["operations_tested"]],
        ["phases", ",".join(summary["phases"])], ["examples per operation", summary["examples_per_operation"]],
        ["cases generated", summary["cases"]], ["cases with failures", summary["cases_with_failures"]],
        ["unique failures", summary["unique_failures"]], ["server errors (5xx)", summary["server_errors"]],
        ["errors", summary["errored"]], ["ERROR lines in the server log", len(summary["server_log_errors"])],
        ["seconds", summary["seconds"]], ["passed", passed(summary) and not summary["server_log_errors"]],
    ]))
    for failure in summary["failures"]:
        print(f"FAILURE {failure.get('code')} {failure.get('title')}: {failure.get('operations')}")
    path = result_write("fuzz_api", summary, smoke=args.smoke, out=args.out)
    print(f"wrote {path}")
    return 0 if passed(summary) and not summary["server_log_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
