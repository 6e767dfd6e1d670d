"""`make run`'s start sequence (scripts/start.py) on the tests' Neo4j: run twice, the second run prints no error
text; the server it then starts (`--lifespan off`, as `make serve`) logs none either, and the banner names the
API, docs and dashboard URLs, with the demo logins only the first time they are printed."""
import os
import subprocess
import sys
from pathlib import Path

from scripts import live_stack, start

ROOT = live_stack.ROOT


def _prepare(env: dict) -> str:
    result = subprocess.run([sys.executable, "-m", "scripts.start", "prepare"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def test_a_second_start_prints_no_error(stack, tmp_path):
    copy = stack.copy(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'auth.sqlite3'}", MUSICBUD_LOG_LEVEL="INFO")
    first = _prepare(copy.env)
    assert "schema installed" in first or "constraints in place" in first
    second = _prepare(copy.env)
    for text in ("Error", "error", "Unexpected", "Traceback", "EquivalentSchemaRule"):
        assert text not in second, second
    assert "nothing seeded" in second and "already trained" in second

    server = live_stack.serve(copy.env, workers=2)
    try:
        logins = Path(copy.env["MUSICBUD_VAR_DIR"]) / start.LOGINS_FILE
        logins.write_text("Created Django staff 'admin' with password s3cret  (shown once: note it)\n")
        env = {**copy.env, "PYTHONPATH": str(ROOT)}
        shown = subprocess.run([sys.executable, "-m", "scripts.start", "banner", server.url], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
        again = subprocess.run([sys.executable, "-m", "scripts.start", "banner", server.url], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
    finally:
        server.stop()
    assert shown.returncode == 0, shown.stderr
    for path in ("/v1/", "/v1/docs/", "/dashboard/", "/metrics"):
        assert f"{server.url}{path}" in shown.stdout
    assert "s3cret" in shown.stdout and "s3cret" not in again.stdout  # the logins, once
    log = server.log_text()
    assert "Error" not in log and "lifespan" not in log.lower(), log[-3000:]
    assert not os.path.exists(logins)
