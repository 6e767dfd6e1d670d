"""musicbud/settings.py read in a fresh process: safe defaults with nothing set (DEBUG off, loopback hosts and
Neo4j, secrets generated 0600 under var/), values from the environment, and nonsense refused at startup."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW = """
import json
from musicbud import settings as s
print(json.dumps({"DEBUG": s.DEBUG, "ALLOWED_HOSTS": s.ALLOWED_HOSTS, "SECRET_KEY": s.SECRET_KEY,
    "HMAC": s.MUSICBUD_MODEL_HMAC_KEY, "NEO4J_BOLT_URL": s.NEO4J_BOLT_URL, "NEO4J_PASSWORD": s.NEO4J_PASSWORD,
    "JWT": [s.SIMPLE_JWT["ALGORITHM"], s.SIMPLE_JWT["SIGNING_KEY"] == s.SECRET_KEY],
    "RATES": s.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "MAX_BODY": s.DATA_UPLOAD_MAX_MEMORY_SIZE,
    "THROTTLE_CACHE": s.CACHES["throttle"]["LOCATION"], "MODEL_DIR": str(s.MUSICBUD_MODEL_DIR)}))
"""


def _settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "MUSICBUD_", "NEO4J_", "JWT_", "LIGHTFM_", "DATABASE_URL"))}
    clean.update(MUSICBUD_VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env=clean, capture_output=True, text=True,
                          timeout=60)


def test_with_nothing_set_the_defaults_are_safe(tmp_path):
    run = _settings(tmp_path)
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout)
    assert s["DEBUG"] is False
    assert set(s["ALLOWED_HOSTS"]) <= {"127.0.0.1", "localhost", "testserver", "::1"}
    assert s["NEO4J_BOLT_URL"].startswith("bolt://127.0.0.1:")
    assert s["JWT"] == ["HS256", True]
    assert s["MAX_BODY"] == 64 * 1024
    assert len(s["SECRET_KEY"]) >= 32 and len(s["HMAC"]) >= 32 and s["SECRET_KEY"] != s["HMAC"]
    var = tmp_path / "var"
    for name, value in (("django_secret_key", s["SECRET_KEY"]), ("model_hmac_key", s["HMAC"])):
        assert (var / name).read_text().strip() == value
        assert stat.S_IMODE((var / name).stat().st_mode) == 0o600
    assert s["THROTTLE_CACHE"].startswith(str(var))
    again = json.loads(_settings(tmp_path).stdout)
    assert (again["SECRET_KEY"], again["HMAC"]) == (s["SECRET_KEY"], s["HMAC"])  # kept across restarts


def test_every_setting_comes_from_the_environment(tmp_path):
    run = _settings(tmp_path, DJANGO_DEBUG="true", DJANGO_ALLOWED_HOSTS="api.example.org, 10.0.0.5",
                    DJANGO_SECRET_KEY="k" * 50, MUSICBUD_MODEL_HMAC_KEY="h" * 40, NEO4J_PASSWORD="from-the-env",
                    NEO4J_BOLT_URL="neo4j+s://db.example.org", MUSICBUD_GUEST_RATE="5/second",
                    MUSICBUD_MAX_BODY_BYTES="2048")
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout)
    assert s["DEBUG"] is True and s["ALLOWED_HOSTS"] == ["api.example.org", "10.0.0.5"]
    assert (s["SECRET_KEY"], s["HMAC"], s["NEO4J_PASSWORD"]) == ("k" * 50, "h" * 40, "from-the-env")
    assert s["NEO4J_BOLT_URL"] == "neo4j+s://db.example.org" and s["RATES"]["guest"] == "5/second"
    assert s["MAX_BODY"] == 2048
    assert not (tmp_path / "var" / "django_secret_key").exists()


def test_the_neo4j_password_defaults_to_the_local_one_kept_in_var(tmp_path):
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "neo4j_password").write_text("kept-locally-123\n")
    assert json.loads(_settings(tmp_path).stdout)["NEO4J_PASSWORD"] == "kept-locally-123"


@pytest.mark.parametrize("name, value", [
    ("DJANGO_DEBUG", "maybe"),
    ("DJANGO_SECRET_KEY", "changeme"),
    ("MUSICBUD_MODEL_HMAC_KEY", "short"),
    ("NEO4J_PORT", "70000"),
    ("NEO4J_BOLT_URL", "localhost:7687"),
    ("MUSICBUD_MAX_BODY_BYTES", "10"),
    ("MUSICBUD_GUEST_RATE", "lots"),
    ("MUSICBUD_LOGIN_RATE", "10/fortnight"),
    ("JWT_ACCESS_MINUTES", "0"),
    ("MUSICBUD_MODEL_RELOAD_SECONDS", "-1"),
    ("LIGHTFM_EPOCHS", "many"),
])
def test_nonsense_is_refused_at_startup_naming_the_variable(tmp_path, name, value):
    run = _settings(tmp_path, **{name: value})
    assert run.returncode != 0
    assert "ConfigError" in run.stderr and name in run.stderr
    assert value not in run.stderr or name not in ("DJANGO_SECRET_KEY", "MUSICBUD_MODEL_HMAC_KEY")
