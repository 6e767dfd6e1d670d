"""`make run`'s start sequence, and what it prints at the end.

    python -m scripts.start prepare     # migrate, install the graph's constraints, seed the demo graph when it is
                                        # empty, train when no model is saved (each step's output as it goes)
    python -m scripts.start banner URL  # once URL/v1/health/ answers: the API, docs and dashboard URLs and, the
                                        # first time (the demo users were just created), their logins

The demo logins seed_demo prints when it creates the users are kept (var/demo_logins.txt, 0600) until the banner
has shown them once, so they are the last thing a first `make run` prints, not lost above the server's log.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    ["migrate", "--noinput", "-v", "0"],
    ["install_constraints"],
    ["seed_demo", "--if-empty"],
    ["train_models", "--if-missing"],
]
LOGIN_MARK = "with password"
LOGINS_FILE = "demo_logins.txt"


def var_dir() -> Path:
    return Path(os.environ.get("MUSICBUD_VAR_DIR", ROOT / "var"))


def logins_path() -> Path:
    return var_dir() / LOGINS_FILE


def prepare(seed_args: list[str]) -> int:
    """Run every step (stopping at the first that fails, with its exit code); remember the demo logins."""
    logins: list[str] = []
    for step in STEPS:
        args = [*step, *seed_args] if step[0] == "seed_demo" else step
        process = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT,
                                   stdout=subprocess.PIPE, text=True)
        for line in process.stdout:
            sys.stdout.write(line)
            if step[0] == "seed_demo" and LOGIN_MARK in line:
                logins.append(line.strip())
        if process.wait() != 0:
            print(f"make run: `manage.py {' '.join(args)}` failed (exit {process.returncode}): see above.",
                  file=sys.stderr)
            return process.returncode
        sys.stdout.flush()
    if logins:
        path = logins_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(logins) + "\n")
    return 0


def banner_text(url: str) -> str:
    lines = ["", "MusicBud Recommendations is serving:",
             f"  API        {url}/v1/   (health: {url}/v1/health/)",
             f"  docs       {url}/v1/docs/   (Redoc: {url}/v1/redoc/, OpenAPI: {url}/v1/schema/)",
             f"  dashboard  {url}/dashboard/   (staff logins)",
             f"  metrics    {url}/metrics   (staff token, or Bearer $MUSICBUD_METRICS_TOKEN)"]
    path = logins_path()
    if path.exists():
        lines += ["", "Demo logins (shown this once; `python manage.py changepassword NAME` to change one):"]
        lines += [f"  {line}" for line in path.read_text().splitlines() if line.strip()]
        path.unlink()
    return "\n".join(lines) + "\n"


def banner(url: str, timeout: float = 300) -> int:
    """Wait until the server answers, then print the banner."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v1/health/", timeout=5) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            print(f"make run: the server did not answer at {url} within {timeout:.0f}s.", file=sys.stderr)
            return 1
        time.sleep(0.5)
    sys.stdout.write(banner_text(url))
    sys.stdout.flush()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["prepare"]:
        return prepare(argv[1:])
    if argv[:1] == ["banner"] and len(argv) == 2:
        return banner(argv[1].rstrip("/"))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
