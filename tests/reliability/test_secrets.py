"""No secret in the repository: every file git tracks (or would add: untracked and not ignored) is scanned for
private keys, known token formats, signed JWTs, URLs with a password and long random literals assigned to
secret-sounding names; none holds this machine's own secrets; var/ (where they are generated) is ignored."""
from __future__ import annotations

import math
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

PATTERNS = {
    "a private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "an AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_\w{22,}"),
    "a Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "a Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
    "a signed JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}"),
    "a URL with a password": re.compile(r"\b[a-z][a-z0-9+]*://[^/\s:@'\"]+:[^/\s:@'\"<>{}$]{6,}@"),
}
ASSIGNED = re.compile(r"""(?ix)\b[\w-]*(?:secret|passw(?:or)?d|token|api_?key|hmac_?key|signing_?key|private_?key)
                          [\w-]*["']?\s*[:=]\s*[rbf]?["']([^"'\s]{20,})["']""")
SECRET_FILES = re.compile(
    r"(^|/)(\.env(\..*)?|.*\.(pem|key|p12|pfx|jks)|id_[rd]sa.*|.*_secret_key|.*hmac_key|neo4j_password)$")


def _files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def _text(path: Path) -> str | None:
    data = path.read_bytes()[:2_000_000]
    return None if b"\0" in data else data.decode(errors="replace")


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(c / len(value) * math.log2(c / len(value)) for c in counts.values())


def _random_looking(value: str) -> bool:
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d"))
    return classes >= 2 and _entropy(value) >= 3.5 and not re.fullmatch(r"[\w.]+\(.*|\$\{?\w+\}?|<[^>]+>", value)


@pytest.fixture(scope="module")
def files() -> dict[Path, str]:
    texts = {path: _text(path) for path in _files()}
    return {path: text for path, text in texts.items() if text is not None}


def test_the_scan_sees_the_repository(files):
    names = {p.relative_to(ROOT).as_posix() for p in files}
    assert {"README.md", "musicbud/settings.py", "app/views/recommendations_views.py", "tests/reliability/test_secrets.py"} <= names


def test_no_file_holds_a_key_a_token_or_a_password_in_a_url(files):
    found = [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {what}"
             for path, text in files.items() for what, pattern in PATTERNS.items() for m in pattern.finditer(text)]
    assert not found, found


def test_no_random_looking_literal_is_assigned_to_a_secret_name(files):
    found = [f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
             for path, text in files.items() for m in ASSIGNED.finditer(text) if _random_looking(m.group(1))]
    assert not found, found


def test_no_secret_file_is_in_the_repository(files):
    assert not [p for p in files if SECRET_FILES.search(p.relative_to(ROOT).as_posix())]
    assert not [p for p in files if p.relative_to(ROOT).parts[0] == "var"]


def test_the_generated_secrets_are_ignored_by_git():
    for name in ("var/django_secret_key", "var/model_hmac_key", "var/neo4j_password", "var/auth.sqlite3", ".env.local"):
        assert subprocess.run(["git", "check-ignore", "-q", name], cwd=ROOT).returncode == 0, name


def test_none_of_this_machines_secrets_is_in_a_file(files):
    secrets = {settings.SECRET_KEY, settings.MUSICBUD_MODEL_HMAC_KEY, settings.NEO4J_PASSWORD}
    for name in ("django_secret_key", "model_hmac_key", "neo4j_password"):
        for var in {ROOT / "var", Path(settings.VAR_DIR)}:
            if (var / name).is_file():
                secrets.add((var / name).read_text().strip())
    secrets |= {os.environ[k] for k in ("NEO4J_PASSWORD", "DJANGO_SECRET_KEY", "MUSICBUD_MODEL_HMAC_KEY")
                if os.environ.get(k)}
    secrets = {s for s in secrets if len(s) >= 12}
    assert secrets
    leaked = [path.relative_to(ROOT) for path, text in files.items() if any(s in text for s in secrets)]
    assert not leaked, leaked
