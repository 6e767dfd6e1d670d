"""bench/load_during_training.py --smoke on the tests' Neo4j (its graph is replaced by the bench's): requests while
a training swaps every model in, each answer exactly its named version's ranking, no error, no 5xx."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


def test_the_smoke_run_swaps_models_under_load_without_an_error(neo4j, tmp_path):
    out = tmp_path / "load.json"
    run = subprocess.run([sys.executable, "-m", "bench.load_during_training", "--smoke", "--bolt-url", neo4j.bolt_url,
                          "--neo4j-password", neo4j.password, "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["requests"] >= 400 and result["errors"] == 0 and result["status_5xx"] == 0
    assert result["verified_exact"] == result["requests"] and result["mismatched"] == 0
    assert result["answers_from_new_versions"] > 0
    assert all(v == 2 for v in result["versions_served_per_type"].values()), result["versions_served_per_type"]
    assert "p99" in result["latency_ms"]
