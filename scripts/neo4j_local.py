"""Start, stop and wait for the project's embedded Neo4j (Community 5.26, see neo4j_launcher/).

Usage:
    python scripts/neo4j_local.py start     # build the launcher if needed, start in background, wait for Bolt
    python scripts/neo4j_local.py stop
    python scripts/neo4j_local.py status
    python scripts/neo4j_local.py build     # fetch the jars with Maven and compile the launcher

Environment: NEO4J_DATA_DIR (default var/neo4j), NEO4J_PORT (default 7687), NEO4J_PASSWORD (default: a
generated one kept in var/neo4j_password, mode 0600). NEO4J_BOLT_URL set to anything else means a Neo4j
that is not ours: `start` then does nothing.

The same functions serve the test suite, which starts a throwaway instance on a free port.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "neo4j_launcher"
JAR = LAUNCHER / "target" / "neo4j-launcher-1.0.jar"
VAR = ROOT / "var"


class Neo4jLaunchError(RuntimeError):
    """Raised with a message that says what to do next."""


@dataclass
class LocalNeo4j:
    process: subprocess.Popen
    port: int
    password: str
    data_dir: Path

    @property
    def bolt_url(self) -> str:
        return f"bolt://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 60) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def java_bin() -> str:
    java = os.environ.get("JAVA_BIN") or shutil.which("java")
    if not java:
        raise Neo4jLaunchError("Java 17+ is needed to run the local Neo4j: install a JDK (apt-get install openjdk-17-jdk).")
    return java


def build(quiet: bool = True) -> None:
    """Fetch Neo4j's jars from Maven Central and compile the launcher (again when its sources changed)."""
    sources = [LAUNCHER / "pom.xml", *LAUNCHER.joinpath("src").rglob("*.java")]
    if JAR.exists() and (LAUNCHER / "target" / "lib").is_dir() and \
            JAR.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return
    mvn = shutil.which("mvn")
    if not mvn:
        raise Neo4jLaunchError("Maven is needed to fetch Neo4j's jars: install it (apt-get install maven).")
    cmd = [mvn, "-B", "-q" if quiet else "-B", "package", "-DskipTests"]
    print("Building the Neo4j launcher (Maven fetches Neo4j 5.26 from Maven Central, once)...", file=sys.stderr)
    result = subprocess.run(cmd, cwd=LAUNCHER)
    if result.returncode != 0:
        raise Neo4jLaunchError(f"Maven failed to build {LAUNCHER} (exit {result.returncode}); see its output above.")


def local_password() -> str:
    """NEO4J_PASSWORD, or a generated one kept in var/neo4j_password (created 0600)."""
    pw = os.environ.get("NEO4J_PASSWORD")
    if pw:
        return pw
    path = VAR / "neo4j_password"
    if path.exists():
        return path.read_text().strip()
    VAR.mkdir(parents=True, exist_ok=True)
    pw = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pw + "\n")
    return pw


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def start(*, data_dir: Path, port: int, password: str, log_path: Path | None = None,
          timeout: float = 180, heap: str = "1g") -> LocalNeo4j:
    """Start the launcher and return once Bolt accepts connections with the given password."""
    build()
    if port_in_use(port):
        raise Neo4jLaunchError(f"Port {port} on 127.0.0.1 is already in use: stop what listens there or set NEO4J_PORT.")
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_path or data_dir / "launcher.log"
    log = open(log_path, "ab")
    env = dict(os.environ, NEO4J_PASSWORD=password)
    cmd = [java_bin(), f"-Xmx{heap}", "-XX:+UseG1GC", "-cp",
           f"{JAR}{os.pathsep}{LAUNCHER / 'target' / 'lib' / '*'}",
           "musicbud.Neo4jLauncher", str(data_dir), str(port)]
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    instance = LocalNeo4j(process=process, port=port, password=password, data_dir=data_dir)
    try:
        wait_for_bolt(instance.bolt_url, password, timeout=timeout, process=process, log_path=log_path)
    except BaseException:
        instance.stop()  # never leave a half-started Neo4j behind
        raise
    return instance


def wait_for_bolt(url: str, password: str, *, timeout: float = 180, process: subprocess.Popen | None = None,
                  log_path: Path | None = None) -> None:
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError, ServiceUnavailable

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:] if log_path and log_path.exists() else ""
            raise Neo4jLaunchError(f"Neo4j exited with code {process.returncode} before Bolt answered. Log tail:\n{tail}")
        if log_path is not None and b"NEO4J_READY" not in log_path.read_bytes():
            time.sleep(0.3)  # Bolt may answer before the launcher has set the password: wait for its word
            continue
        try:
            with GraphDatabase.driver(url, auth=("neo4j", password)) as driver:
                driver.verify_connectivity()
                return
        except AuthError as exc:
            raise Neo4jLaunchError(
                f"Neo4j at {url} refused the password: the data dir was created with another one. "
                "Set NEO4J_PASSWORD to it, or remove the data dir to start afresh.") from exc
        except (ServiceUnavailable, OSError) as exc:
            last = exc
            time.sleep(0.5)
    raise Neo4jLaunchError(f"Neo4j did not answer on {url} within {timeout:.0f}s (last error: {last}).")


def _pid_file() -> Path:
    return VAR / "neo4j.pid"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status", "build", "password"])
    args = parser.parse_args(argv)
    port = int(os.environ.get("NEO4J_PORT", "7687"))
    data_dir = Path(os.environ.get("NEO4J_DATA_DIR", VAR / "neo4j"))
    external = os.environ.get("NEO4J_BOLT_URL")
    try:
        if args.command == "build":
            build(quiet=False)
        elif args.command == "password":
            print(local_password())
        elif args.command == "start":
            if external and external != f"bolt://127.0.0.1:{port}":
                print(f"NEO4J_BOLT_URL={external}: using that Neo4j, not starting the local one.")
                return 0
            pid_file = _pid_file()
            if pid_file.exists() and _alive(int(pid_file.read_text())):
                print(f"Local Neo4j already running (pid {pid_file.read_text().strip()}) on bolt://127.0.0.1:{port}")
                return 0
            instance = start(data_dir=data_dir, port=port, password=local_password())
            VAR.mkdir(parents=True, exist_ok=True)
            pid_file.write_text(str(instance.process.pid))
            print(f"Local Neo4j ready on {instance.bolt_url} (data in {data_dir}, pid {instance.process.pid})")
        elif args.command == "stop":
            pid_file = _pid_file()
            if not pid_file.exists():
                print("Local Neo4j is not running.")
                return 0
            pid = int(pid_file.read_text())
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
                for _ in range(120):
                    if not _alive(pid):
                        break
                    time.sleep(0.5)
            pid_file.unlink(missing_ok=True)
            print("Local Neo4j stopped.")
        elif args.command == "status":
            pid_file = _pid_file()
            running = pid_file.exists() and _alive(int(pid_file.read_text()))
            print("running" if running else "stopped")
            return 0 if running else 1
    except Neo4jLaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
