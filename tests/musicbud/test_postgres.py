"""The auth database on PostgreSQL, for real: Debian's PostgreSQL (scripts/local_services.py; `make test`
installs it) on a free loopback port with a temporary data dir, and the login, token, /auth/me and permission
tests (every endpoint's 401s, the staff-only endpoints' 403s) run against it, DATABASE_URL pointing there."""
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scripts.local_services import LocalServiceError, free_port, postgres_start

ROOT = Path(__file__).resolve().parents[2]
AUTH_TESTS = ["tests/musicbud/test_database_backend.py", "tests/app/apis/test_login.py",
              "tests/app/apis/test_token_refresh.py", "tests/app/apis/test_auth_me.py",
              "tests/app/apis/test_authentication.py"]


@pytest.fixture
def postgres():
    base = Path(tempfile.mkdtemp(prefix="musicbud-pg-"))  # outside pytest's tmp dirs (see local_services)
    try:
        server = postgres_start(data_dir=base / "pg", port=free_port(), password=secrets.token_urlsafe(16))
    except LocalServiceError as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL could not be started (make deps-debian installs it): {exc}", pytrace=False)
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


def test_the_auth_and_permission_tests_pass_on_postgresql(postgres, tmp_path):
    env = {**os.environ, "DATABASE_URL": postgres.url, "MUSICBUD_TEST_TMP": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *AUTH_TESTS],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    tail = (result.stdout + result.stderr)[-4000:]
    assert result.returncode == 0, tail
    summary = re.search(r"^(\d+) passed(.*)$", tail, re.MULTILINE)
    assert summary and int(summary.group(1)) >= 100 and "failed" not in summary.group(2), tail
