"""bench/fuzz_api.py --smoke on the tests' Neo4j (its graph is replaced by the bench's): schemathesis against
/v1/schema/ with a valid token finds no server error and no answer off the schema. MUSICBUD_FUZZ_EXAMPLES sets
the examples per operation (the full run, `python -m bench.fuzz_api`, is about 3,000 cases)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.neo4j, pytest.mark.slow]


def test_no_generated_request_gets_a_server_error_or_an_answer_off_its_schema(neo4j, tmp_path):
    out = tmp_path / "fuzz.json"
    examples = os.environ.get("MUSICBUD_FUZZ_EXAMPLES", "3")
    run = subprocess.run([sys.executable, "-m", "bench.fuzz_api", "--smoke", "--examples", examples, "--seed", "20261127",
                          "--bolt-url", neo4j.bolt_url, "--neo4j-password", neo4j.password, "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    print(f"schemathesis {result['schemathesis_version']}: {result['cases']} cases in {result['seconds']}s")
    assert result["cases"] >= 100 and result["operations_tested"] >= 20
    assert result["server_errors"] == 0 and result["unique_failures"] == 0 and result["errored"] == 0
    assert not result["server_log_errors"]
