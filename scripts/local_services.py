"""Throwaway local servers for tests and `make run`: Redis, PostgreSQL, HAProxy and headless Chromium, each from
Debian's packages, each bound to 127.0.0.1 only, on a port the caller chooses (free_port()), with its files in
a directory the caller owns. The same style as neo4j_local.py: small functions, a dataclass per running server
with .stop(), and errors that say what to do next (with the tail of the server's log when it failed to start).

Usage:
    python scripts/local_services.py install all        # apt-get what is missing (as root); wrk is optional
    python scripts/local_services.py install redis      # or postgres, haproxy, chromium, wrk
    python scripts/local_services.py redis-start        # the Redis of `make run` (var/redis_url); redis-stop

    from scripts.local_services import free_port, redis_start, postgres_start, haproxy_start, chromium_webdriver
    redis = redis_start(data_dir=tmp / "redis", port=free_port(), password=pw)          # redis.url
    pg = postgres_start(data_dir=tmp / "pg", port=free_port(), password=pw)             # pg.url
    lb = haproxy_start(config_dir=tmp / "lb", port=free_port(), backends=[("127.0.0.1", 8001), ...])
    lb.server_states()                                  # {"127.0.0.1:8001": "UP", ...}
    driver = chromium_webdriver(tmp / "chrome")         # Selenium on Debian's chromium + chromedriver
    ...
    redis.stop(); pg.stop(); lb.stop(); driver.quit()

A start function that fails stops what it started before raising. As root, PostgreSQL (which refuses to run as
root) runs as the `postgres` system user: its data dir is chowned to it, and directories above it that this
user cannot traverse (pytest's tmp dirs are 0700) get an ACL entry granting it traverse (x) only. pytest resets
/tmp/pytest-of-<user> to 0700 whenever a session starts, which clears that ACL's mask: with other pytest runs on
the machine, keep a cluster out of tmp_path (tempfile.mkdtemp()) so that none can cut initdb off.
"""
from __future__ import annotations

import argparse
import csv
import glob
import io
import ipaddress
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

LOOPBACK = "127.0.0.1"
LOG_TAIL_CHARS = 3000
UNIX_SOCKET_MAX = 107  # sun_path is 108 bytes with its NUL

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
POSTGRES_OS_USER = "postgres"  # the system user Debian's postgresql package creates

# What `install NAME` installs: Debian packages and the binaries that show they are there (a name on PATH, an
# absolute path, or a glob of paths) with the package that provides each.
TOOLS: dict[str, tuple[list[str], dict[str, str]]] = {
    "redis": (["redis-server"], {"redis-server": "redis-server"}),
    "postgres": (["postgresql"], {f"{POSTGRES_BIN_GLOB}/{b}": "postgresql" for b in ("initdb", "pg_ctl", "postgres")}),
    "haproxy": (["haproxy"], {"haproxy": "haproxy"}),
    "chromium": (["chromium", "chromium-driver"], {CHROMIUM: "chromium", CHROMEDRIVER: "chromium-driver"}),
    "wrk": (["wrk"], {"wrk": "wrk"}),
}
# As root, PostgreSQL runs as `postgres` and setfacl lets that user reach a data dir inside a 0700 tree.
ROOT_EXTRAS: dict[str, tuple[list[str], dict[str, str]]] = {"postgres": (["acl"], {"setfacl": "acl"})}
OPTIONAL_TOOLS = {"wrk": "wrk could not be installed: the serving smoke test uses its built-in load generator"}


class LocalServiceError(RuntimeError):
    """Raised with a message that says what to do next."""


# --- Debian packages -------------------------------------------------------------------------------------

_apt_updated = False


def find_binary(spec: str) -> str | None:
    """The path of a binary given as a name on PATH, an absolute path or a glob (the highest version wins)."""
    if any(c in spec for c in "*?["):
        matches = [p for p in glob.glob(spec) if os.access(p, os.X_OK)]
        return max(matches, key=_version_key) if matches else None
    if "/" in spec:
        return spec if os.path.isfile(spec) and os.access(spec, os.X_OK) else None
    return shutil.which(spec) or shutil.which(spec, path="/usr/sbin:/sbin")  # haproxy is in sbin


def _version_key(path: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", path)]


def _package_installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.strip().endswith(" installed")


def debian_install(packages: list[str], *, binaries: dict[str, str] | None = None) -> None:
    """Install those Debian packages whose binaries are missing (`binaries` maps each binary, see find_binary,
    to its package; by default each package provides a binary of its own name). Needs root for apt-get; the
    package list is updated once per process. Raises LocalServiceError naming what is missing otherwise."""
    global _apt_updated
    binaries = dict(binaries) if binaries is not None else {p: p for p in packages}
    missing = {b: pkg for b, pkg in binaries.items() if find_binary(b) is None}
    unchecked = [p for p in packages if p not in binaries.values()]
    wanted = [p for p in packages if p in missing.values()]
    wanted += [p for p in missing.values() if p not in wanted]
    wanted += [p for p in unchecked if shutil.which("dpkg-query") and not _package_installed(p)]
    if not wanted:
        return
    what = ", ".join(f"{b} (Debian package {pkg})" for b, pkg in missing.items()) or ", ".join(wanted)
    command = f"apt-get install -y --no-install-recommends {' '.join(wanted)}"
    if not shutil.which("apt-get"):
        raise LocalServiceError(f"Missing: {what}, and there is no apt-get here: install the equivalent package.")
    if os.geteuid() != 0:
        raise LocalServiceError(f"Missing: {what}. Installing needs root: run `sudo {command}`.")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    with _no_service_starts():  # installing redis-server or postgresql must not start the system-wide daemons
        if not _apt_updated:
            result = subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
            if result.returncode != 0:
                raise LocalServiceError(f"Missing: {what}; `apt-get update` failed (exit {result.returncode}):\n"
                                        f"{(result.stdout + result.stderr)[-LOG_TAIL_CHARS:]}")
            _apt_updated = True
        result = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *wanted],
                                env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise LocalServiceError(f"Missing: {what}; `{command}` failed (exit {result.returncode}):\n"
                                f"{(result.stdout + result.stderr)[-LOG_TAIL_CHARS:]}")
    still = {b: pkg for b, pkg in binaries.items() if find_binary(b) is None}
    if still:
        raise LocalServiceError("Installed " + " ".join(wanted) + " but still missing: "
                                + ", ".join(f"{b} (from {pkg})" for b, pkg in still.items())
                                + ": check `dpkg -L <package>` for where it put its files.")


class _no_service_starts:
    """Debian's policy-rc.d convention (exit 101: action forbidden) while apt-get runs, unless one is in place."""
    path = Path("/usr/sbin/policy-rc.d")

    def __enter__(self) -> None:
        self.created = False
        if not self.path.exists():
            self.path.write_text("#!/bin/sh\n# written by local_services.py during apt-get install\nexit 101\n")
            self.path.chmod(0o755)
            self.created = True

    def __exit__(self, *exc: object) -> None:
        if self.created:
            self.path.unlink(missing_ok=True)


def install_tool(name: str) -> None:
    """Install one of TOOLS by name ("redis", "postgres", "haproxy", "chromium", "wrk")."""
    packages, binaries = TOOLS[name]
    if os.geteuid() == 0 and name in ROOT_EXTRAS:
        extra_packages, extra_binaries = ROOT_EXTRAS[name]
        packages, binaries = [*packages, *extra_packages], {**binaries, **extra_binaries}
    debian_install(packages, binaries=binaries)


# --- processes, ports, logs ------------------------------------------------------------------------------

def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on right now (the kernel's pick; as neo4j_local.free_port, with a host)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def _check_port(port: int, what: str) -> None:
    if not 0 < port < 65536:
        raise LocalServiceError(f"{what}: port {port} is not a TCP port.")
    if port_in_use(port):
        raise LocalServiceError(f"{what}: port {port} on {LOOPBACK} is already in use: stop what listens there "
                                "or choose another (free_port()).")


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (configs hold passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    path.chmod(0o600)


def _spawn(cmd: list[str], *, log_path: Path, cwd: Path, env: dict[str, str] | None = None,
           **popen: object) -> subprocess.Popen:
    """Start a server in its own session (so that stop() reaches its children), output appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                env=env, start_new_session=True, **popen)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the group of start_new_session; the leader is not reaped yet
    except ProcessLookupError:
        pass


@dataclass
class LocalProcess:
    """A server started by this module; subclasses say which signal stops it cleanly."""
    process: subprocess.Popen
    port: int
    log_path: Path

    stop_signal = signal.SIGTERM

    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return log_tail(self.log_path, chars)

    def stop(self, timeout: float = 30) -> None:
        """Clean shutdown; SIGKILL to the whole process group when it takes longer than timeout."""
        if self.process.poll() is not None:
            return
        _signal_group(self.process, self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL to the server and its children at once (for failure tests: no shutdown at all)."""
        if self.process.returncode is None:
            _signal_group(self.process, signal.SIGKILL)
        self.process.wait()


def _wait_until_ready(check: Callable[[], object], *, what: str, instance: LocalProcess, timeout: float,
                      retry_on: tuple[type[BaseException], ...]) -> None:
    """Call check() until it returns without one of retry_on; fail with the log tail when the server exits or
    the time runs out. Any other exception from check() is raised at once."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        if instance.process.poll() is not None:
            raise LocalServiceError(f"{what} exited with code {instance.process.returncode} before it answered. "
                                    f"Log tail ({instance.log_path}):\n{instance.log_tail()}")
        try:
            check()
            return
        except retry_on as exc:
            last = exc
        if time.monotonic() > deadline:
            raise LocalServiceError(f"{what} did not answer within {timeout:.0f}s (last error: {last}). "
                                    f"Log tail ({instance.log_path}):\n{instance.log_tail()}")
        time.sleep(0.1)


def _start_guarded(instance: LocalProcess, ready: Callable[[], None]) -> None:
    """Run ready(); on any failure (Ctrl-C included) stop the server before raising: nothing half-started."""
    try:
        ready()
    except BaseException:
        instance.kill()
        raise


def _config_string(value: str, what: str) -> str:
    if any(ord(c) < 32 for c in value):
        raise LocalServiceError(f"{what} must not contain control characters (newlines): choose another.")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- Redis -----------------------------------------------------------------------------------------------

@dataclass
class LocalRedis(LocalProcess):
    password: str
    data_dir: Path
    config_path: Path

    @property
    def url(self) -> str:
        return f"redis://:{quote(self.password, safe='')}@{LOOPBACK}:{self.port}/0"

    def client(self, **kwargs: object):
        """A redis-py client with the password (the caller closes it)."""
        import redis

        return redis.Redis(host=LOOPBACK, port=self.port, password=self.password, **kwargs)


def redis_server_bin() -> str:
    install_tool("redis")
    return find_binary("redis-server")  # type: ignore[return-value]


def redis_config(*, data_dir: Path, port: int, password: str, persist: bool = False) -> str:
    """redis.conf for a private Redis: loopback only, a password, files in data_dir; persist=True keeps an
    append-only file there (for `make run`), otherwise nothing is written to disk."""
    lines = [
        f"bind {LOOPBACK}",
        f"port {port}",
        "protected-mode yes",
        f"requirepass {_config_string(password, 'The Redis password')}",
        f"dir {_config_string(str(data_dir), 'The Redis data dir')}",
        "daemonize no",
        'logfile ""',  # stdout, which goes to the log file
        "always-show-logo no",
        'save ""',
        f"appendonly {'yes' if persist else 'no'}",
    ]
    if persist:
        lines.append("appendfsync everysec")
    return "\n".join(lines) + "\n"


def redis_start(*, data_dir: Path, port: int, password: str, persist: bool = False, log_path: Path | None = None,
                timeout: float = 20) -> LocalRedis:
    """Start redis-server on 127.0.0.1:port and return once PING answers with the password."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    server = redis_server_bin()
    if not password:
        raise LocalServiceError("Redis needs a password: pass one (secrets.token_urlsafe()).")
    _check_port(port, "Redis")
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = data_dir / "redis.conf"
    _write_private(config_path, redis_config(data_dir=data_dir, port=port, password=password, persist=persist))
    log_path = log_path or data_dir / "redis.log"
    process = _spawn([server, str(config_path)], log_path=log_path, cwd=data_dir)
    instance = LocalRedis(process=process, port=port, log_path=log_path, password=password, data_dir=data_dir,
                          config_path=config_path)

    def ping() -> None:
        # no retries inside redis-py (its default backs off for seconds, even on a refused password)
        with instance.client(socket_connect_timeout=1, socket_timeout=2, retry=Retry(NoBackoff(), 0)) as client:
            try:
                client.ping()
            except redis.AuthenticationError as exc:
                raise LocalServiceError(f"The Redis on port {port} refused the password: is it ours? "
                                        f"Log tail ({log_path}):\n{instance.log_tail()}") from exc

    _start_guarded(instance, lambda: _wait_until_ready(
        ping, what=f"redis-server on {LOOPBACK}:{port}", instance=instance, timeout=timeout,
        retry_on=(redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)))
    return instance


# --- PostgreSQL ------------------------------------------------------------------------------------------

@dataclass
class LocalPostgres(LocalProcess):
    password: str
    user: str
    database: str
    superuser: str
    data_dir: Path

    stop_signal = signal.SIGINT  # "fast" shutdown: SIGTERM would wait for every client to disconnect

    @property
    def url(self) -> str:
        return (f"postgres://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
                f"@{LOOPBACK}:{self.port}/{quote(self.database, safe='')}")

    def connect(self, **kwargs: object):
        """A psycopg connection as the user to the database (the caller closes it)."""
        import psycopg

        return psycopg.connect(host=LOOPBACK, port=self.port, user=self.user, password=self.password,
                               dbname=self.database, connect_timeout=5, **kwargs)


def postgres_bin_dir() -> Path:
    """/usr/lib/postgresql/<highest version>/bin with initdb, pg_ctl and postgres (installed when missing)."""
    install_tool("postgres")
    for bin_dir in sorted(glob.glob(POSTGRES_BIN_GLOB), key=_version_key, reverse=True):
        if all(os.access(Path(bin_dir, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(bin_dir)
    raise LocalServiceError(f"No {POSTGRES_BIN_GLOB} has initdb, pg_ctl and postgres: reinstall the Debian "
                            "package (apt-get install --reinstall postgresql).")


def _postgres_os_user() -> pwd.struct_passwd | None:
    """Whom PostgreSQL runs as: None (ourselves) unless we are root, which it refuses; then `postgres`."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_OS_USER)
    except KeyError:
        result = subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                                 "--shell", "/usr/sbin/nologin", POSTGRES_OS_USER], capture_output=True, text=True)
        if result.returncode != 0:
            raise LocalServiceError(f"PostgreSQL cannot run as root and there is no `{POSTGRES_OS_USER}` user; "
                                    f"useradd failed: {result.stderr.strip()}. Create a system user of that name.")
        return pwd.getpwnam(POSTGRES_OS_USER)


def _can_traverse(st: os.stat_result, user: pwd.struct_passwd) -> bool:
    groups = {user.pw_gid, *os.getgrouplist(user.pw_name, user.pw_gid)}
    if st.st_uid == user.pw_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in groups:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def _grant_traverse(path: Path, user: pwd.struct_passwd) -> None:
    """Let `user` reach `path`: each directory above it that the user cannot enter gets an ACL entry u:user:x
    (traverse only, no listing), which changes nothing for anyone else."""
    blocked = [p for p in reversed(path.parents) if not _can_traverse(p.stat(), user)]
    if not blocked:
        return
    debian_install(["acl"], binaries={"setfacl": "acl"})
    for directory in blocked:
        result = subprocess.run(["setfacl", "-m", f"u:{user.pw_name}:x", str(directory)],
                                capture_output=True, text=True)
        if result.returncode != 0 or not _user_can_enter(directory, user):
            raise LocalServiceError(
                f"PostgreSQL runs as `{user.pw_name}` (it refuses root), which cannot enter {directory}; setfacl "
                f"failed ({result.stderr.strip() or 'no effect'}): choose a data dir under a directory it can "
                "reach (e.g. under /tmp or /var/lib/postgresql).")


def _user_can_enter(directory: Path, user: pwd.struct_passwd) -> bool:
    """Asked of the system as that user (ACLs included), not worked out from the mode bits."""
    probe = subprocess.run(["runuser", "-u", user.pw_name, "--", "test", "-x", str(directory)])
    return probe.returncode == 0


def _postgres_conf(*, port: int, data_dir: Path) -> str:
    return "\n".join([
        "",
        "# --- local_services.py: loopback only, socket in the data dir ---",
        f"listen_addresses = '{LOOPBACK}'",
        f"port = {port}",
        f"unix_socket_directories = '{data_dir}'",
        "password_encryption = 'scram-sha-256'",
        "",
    ])


PG_HBA = """\
# local_services.py: a password (SCRAM) for everyone, on the data dir's socket and 127.0.0.1 only
local   all   all                 scram-sha-256
host    all   all   127.0.0.1/32  scram-sha-256
"""


def postgres_start(*, data_dir: Path, port: int, password: str, user: str = "musicbud", database: str = "musicbud",
                   log_path: Path | None = None, timeout: float = 60) -> LocalPostgres:
    """initdb a fresh cluster in data_dir (new or empty), serve it on 127.0.0.1:port with SCRAM password auth,
    and create `user` (LOGIN CREATEDB, so that Django's test runner can create its test database) and
    `database` owned by it. The superuser `postgres` gets the same password. Returns once `user` can connect."""
    import psycopg
    from psycopg import sql

    bin_dir = postgres_bin_dir()
    if not password or any(ord(c) < 32 for c in password):
        raise LocalServiceError("PostgreSQL needs a password without control characters (secrets.token_urlsafe()).")
    _check_port(port, "PostgreSQL")
    data_dir = data_dir.resolve()
    if data_dir.exists() and any(data_dir.iterdir()):
        raise LocalServiceError(f"{data_dir} is not empty: initdb needs a new or empty directory. Remove it or "
                                "choose another.")
    socket_path = data_dir / f".s.PGSQL.{port}"
    if len(str(socket_path).encode()) > UNIX_SOCKET_MAX:
        raise LocalServiceError(f"The socket path {socket_path} is longer than {UNIX_SOCKET_MAX} bytes: choose a "
                                "data dir with a shorter path.")
    superuser = user if user == POSTGRES_OS_USER else "postgres"
    os_user = _postgres_os_user()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    as_user: dict[str, object] = {}
    if os_user is not None:
        os.chown(data_dir, os_user.pw_uid, os_user.pw_gid)
        _grant_traverse(data_dir, os_user)
        as_user = {"user": os_user.pw_uid, "group": os_user.pw_gid, "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8",
           "HOME": str(data_dir)}
    log_path = log_path or data_dir / "postgres.log"

    pwfile = data_dir.parent / f".{data_dir.name}.pwfile-{os.getpid()}"
    _write_private(pwfile, password + "\n")
    try:
        if os_user is not None:
            os.chown(pwfile, os_user.pw_uid, os_user.pw_gid)
        result = subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data_dir), "-U", superuser, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            cwd=data_dir, env=env, capture_output=True, text=True, **as_user)
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise LocalServiceError(f"initdb failed (exit {result.returncode}) for {data_dir}:\n"
                                f"{(result.stdout + result.stderr)[-LOG_TAIL_CHARS:]}")
    with open(data_dir / "postgresql.conf", "a") as conf:
        conf.write(_postgres_conf(port=port, data_dir=data_dir))
    (data_dir / "pg_hba.conf").write_text(PG_HBA)
    with open(log_path, "a") as log:
        log.write(result.stdout + result.stderr)

    process = _spawn([str(bin_dir / "postgres"), "-D", str(data_dir)], log_path=log_path, cwd=data_dir, env=env,
                     **as_user)
    instance = LocalPostgres(process=process, port=port, log_path=log_path, password=password, user=user,
                             database=database, superuser=superuser, data_dir=data_dir)

    def connect_as_superuser() -> None:
        try:
            conn = psycopg.connect(host=LOOPBACK, port=port, user=superuser, password=password, dbname="postgres",
                                   connect_timeout=2, autocommit=True)
        except psycopg.OperationalError as exc:
            if "password authentication failed" in str(exc):
                raise LocalServiceError(f"The PostgreSQL on port {port} refused the password: is it ours? "
                                        f"Log tail ({log_path}):\n{instance.log_tail()}") from exc
            raise
        with conn:
            if user != superuser:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database),
                                                                       sql.Identifier(user)))

    def ready() -> None:
        _wait_until_ready(connect_as_superuser, what=f"postgres on {LOOPBACK}:{port}", instance=instance,
                          timeout=timeout, retry_on=(psycopg.OperationalError,))
        instance.connect().close()

    _start_guarded(instance, ready)
    return instance


# --- HAProxy ---------------------------------------------------------------------------------------------

@dataclass
class LocalHAProxy(LocalProcess):
    config_path: Path
    stats_socket: Path
    servers: list[str]  # the backend servers' names in the config and in server_states(): "host:port"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stats(self) -> list[dict[str, str]]:
        """`show stat` from the stats socket, one dict per row (pxname, svname, status, ...)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.stats_socket))
            s.sendall(b"show stat\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        text = b"".join(chunks).decode(errors="replace").lstrip("# ")
        return [row for row in csv.DictReader(io.StringIO(text)) if row.get("pxname")]

    def server_states(self) -> dict[str, str]:
        """Each backend server's status: "UP", "DOWN", "UP 1/2" (going down), "DOWN 1/1" (going up), "MAINT"..."""
        return {row["svname"]: row["status"] for row in self.stats()
                if row["pxname"] == "be_app" and row["svname"] not in ("FRONTEND", "BACKEND")}

    def wait_server_state(self, server: str, state: str, timeout: float = 10) -> None:
        """Wait until `server` (a "host:port" of backends) has exactly `state` ("UP", "DOWN")."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.server_states()
            if states.get(server) == state:
                return
            if time.monotonic() > deadline:
                raise LocalServiceError(f"HAProxy did not mark {server} {state} within {timeout:.0f}s: {states}")
            time.sleep(0.05)


def haproxy_bin() -> str:
    install_tool("haproxy")
    return find_binary("haproxy")  # type: ignore[return-value]


def haproxy_version(haproxy: str | None = None) -> tuple[int, int]:
    out = subprocess.run([haproxy or haproxy_bin(), "-v"], capture_output=True, text=True).stdout
    match = re.search(r"version (\d+)\.(\d+)", out)
    if not match:
        raise LocalServiceError(f"Cannot read the version of haproxy from `haproxy -v`: {out[:200]!r}")
    return int(match.group(1)), int(match.group(2))


def haproxy_config(*, port: int, backends: list[tuple[str, int]], stats_socket: Path, health_path: str,
                   check_inter_ms: int, fall: int, rise: int, version: tuple[int, int]) -> str:
    """haproxy.cfg: one HTTP frontend on 127.0.0.1:port, round robin over the backends with HTTP health checks;
    a request whose connection fails is retried (redispatched) on another server."""
    retry = ["    retries 3", "    option redispatch"]
    if version >= (2, 0):  # L7 retries; never replay a request that may have changed something
        retry += ["    retry-on conn-failure empty-response response-timeout",
                  "    http-request disable-l7-retry unless METH_GET || METH_OPTIONS"]
    servers = [f"    server {host}:{bport} {host}:{bport} check inter {check_inter_ms} fall {fall} rise {rise}"
               for host, bport in backends]
    return "\n".join([
        "global",
        f"    stats socket {stats_socket} mode 600 level admin",
        "    stats timeout 10s",
        "    log stdout format raw local0 notice",
        "    maxconn 2000",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option dontlognull",
        "    timeout connect 2s",
        "    timeout client 30s",
        "    timeout server 30s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
        "    timeout queue 10s",
        "    timeout check 2s",
        "",
        "frontend fe_main",
        f"    bind {LOOPBACK}:{port}",
        "    default_backend be_app",
        "",
        "backend be_app",
        "    balance roundrobin",
        f"    option httpchk GET {health_path}",
        "    http-check expect status 200",
        *retry,
        *servers,
        "",
    ])


def haproxy_start(*, config_dir: Path, port: int, backends: list[tuple[str, int]], health_path: str = "/v1/health/",
                  check_inter_ms: int = 500, fall: int = 2, rise: int = 1, log_path: Path | None = None,
                  timeout: float = 15) -> LocalHAProxy:
    """Run `haproxy -f <config_dir>/haproxy.cfg -db` (foreground) on 127.0.0.1:port in front of the backends
    and return once the port accepts connections. Servers are named "host:port" (see server_states())."""
    haproxy = haproxy_bin()
    if not backends:
        raise LocalServiceError("HAProxy needs at least one backend (host, port).")
    for host, _ in backends:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise LocalServiceError(f"Backend host {host!r} is not an IP address: give one (e.g. 127.0.0.1).")
    if not re.fullmatch(r"/[\x21-\x7e]*", health_path):
        raise LocalServiceError(f"health_path {health_path!r} must start with / and contain no spaces.")
    _check_port(port, "HAProxy")
    config_dir = config_dir.resolve()
    config_dir.mkdir(parents=True, exist_ok=True)
    stats_socket = config_dir / "haproxy.sock"
    if len(str(stats_socket).encode()) > UNIX_SOCKET_MAX:
        raise LocalServiceError(f"The stats socket path {stats_socket} is too long: choose a shorter config_dir.")
    stats_socket.unlink(missing_ok=True)
    config_path = config_dir / "haproxy.cfg"
    _write_private(config_path, haproxy_config(
        port=port, backends=backends, stats_socket=stats_socket, health_path=health_path,
        check_inter_ms=check_inter_ms, fall=fall, rise=rise, version=haproxy_version(haproxy)))
    log_path = log_path or config_dir / "haproxy.log"
    process = _spawn([haproxy, "-f", str(config_path), "-db"], log_path=log_path, cwd=config_dir)
    instance = LocalHAProxy(process=process, port=port, log_path=log_path, config_path=config_path,
                            stats_socket=stats_socket, servers=[f"{h}:{p}" for h, p in backends])

    def accepting() -> None:
        with socket.create_connection((LOOPBACK, port), timeout=1):
            pass
        instance.stats()

    _start_guarded(instance, lambda: _wait_until_ready(
        accepting, what=f"haproxy on {LOOPBACK}:{port}", instance=instance, timeout=timeout, retry_on=(OSError,)))
    return instance


# --- Chromium --------------------------------------------------------------------------------------------

def chromium_paths() -> tuple[str, str]:
    """(chromium, chromedriver) from Debian's packages, installed when missing."""
    install_tool("chromium")
    return CHROMIUM, CHROMEDRIVER


def chromium_flags(user_data_dir: Path) -> list[str]:
    """The flags headless Chromium needs here, as root and without network: no sandbox (it refuses root
    otherwise), no GPU, no QUIC, no background downloads or sync, /tmp instead of a small /dev/shm."""
    return ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={user_data_dir}"]


def chromium_webdriver(user_data_dir: Path, *, window_size: tuple[int, int] = (1280, 800),
                       log_path: Path | None = None, performance_log: bool = False):
    """A Selenium Chrome WebDriver on Debian's chromium and chromedriver (explicit paths, so Selenium Manager
    never runs, and SE_OFFLINE=true should it try). performance_log: keep DevTools' network events, read with
    driver.get_log("performance") (every request the page made). The caller quits it."""
    from selenium import webdriver

    chromium, chromedriver = chromium_paths()
    os.environ.setdefault("SE_OFFLINE", "true")
    user_data_dir.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in [*chromium_flags(user_data_dir), f"--window-size={window_size[0]},{window_size[1]}"]:
        options.add_argument(flag)
    if performance_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    log_path = log_path or user_data_dir.parent / f"{user_data_dir.name}-chromedriver.log"
    service = webdriver.ChromeService(executable_path=chromedriver, log_output=str(log_path))
    try:
        return webdriver.Chrome(service=service, options=options)
    except Exception as exc:
        raise LocalServiceError(f"Chromium did not start under chromedriver: {exc}. "
                                f"chromedriver log tail ({log_path}):\n{log_tail(log_path)}") from exc


# --- the Redis of `make run` ------------------------------------------------------------------------------
# Like neo4j_local.py's Neo4j: on 127.0.0.1:REDIS_PORT (6379) with a generated password kept in var/redis_password,
# its files (append-only) in var/redis/; its URL, with the password, in var/redis_url (0600), which settings read
# when REDIS_URL is unset. `redis-stop` removes that file: the service then runs single-host (file cache, locks).

def redis_url_file(var_dir: Path) -> Path:
    return var_dir / "redis_url"


def redis_local_start(*, var_dir: Path, port: int = 6379) -> str:
    """Start the project's Redis unless it already answers; write var/redis_url; return the URL."""
    import redis
    import secrets as _secrets

    password_path = var_dir / "redis_password"
    if not password_path.exists():
        _write_private(password_path, _secrets.token_urlsafe(24))
    password = password_path.read_text().strip()
    url = f"redis://:{quote(password, safe='')}@{LOOPBACK}:{port}/0"
    try:
        with redis.Redis(host=LOOPBACK, port=port, password=password, socket_connect_timeout=1) as client:
            client.ping()
        running = True
    except (redis.ConnectionError, redis.TimeoutError, redis.AuthenticationError, redis.ResponseError):
        running = False
    if not running:
        server = redis_start(data_dir=var_dir / "redis", port=port, password=password, persist=True)
        _write_private(var_dir / "redis" / "redis.pid", str(server.process.pid))
    _write_private(redis_url_file(var_dir), url)
    return url


def redis_local_stop(*, var_dir: Path) -> bool:
    """Stop the project's Redis (SIGTERM to the pid it wrote) and remove var/redis_url; False if none ran."""
    redis_url_file(var_dir).unlink(missing_ok=True)
    pid_path = var_dir / "redis" / "redis.pid"
    try:
        pid = int(pid_path.read_text())
    except (FileNotFoundError, ValueError):
        return False
    pid_path.unlink()
    try:
        os.kill(pid, signal.SIGTERM)
        return True
    except ProcessLookupError:
        return False


# --- CLI -------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install", help="apt-get the Debian packages of a service when missing")
    install.add_argument("what", choices=[*TOOLS, "all"])
    for name, what in (("redis-start", "start the Redis of `make run` (var/redis, var/redis_url)"),
                       ("redis-stop", "stop it (the service is single-host again)")):
        command = sub.add_parser(name, help=what)
        command.add_argument("--var-dir", type=Path, default=Path(__file__).resolve().parent.parent / "var")
        command.add_argument("--port", type=int, default=int(os.environ.get("REDIS_PORT", "6379")))
    args = parser.parse_args(argv)
    if args.command == "redis-start":
        try:
            redis_local_start(var_dir=args.var_dir, port=args.port)
        except LocalServiceError as exc:
            print(f"error: Redis: {exc}", file=sys.stderr)
            return 1
        print(f"Redis up on {LOOPBACK}:{args.port} (password in {args.var_dir / 'redis_password'})")
        return 0
    if args.command == "redis-stop":
        print("Redis stopped" if redis_local_stop(var_dir=args.var_dir) else "no Redis of make run was running")
        return 0
    names = list(TOOLS) if args.what == "all" else [args.what]
    failed = False
    for name in names:
        try:
            install_tool(name)
            print(f"{name}: ok")
        except LocalServiceError as exc:
            if args.what == "all" and name in OPTIONAL_TOOLS:
                print(f"{name}: {OPTIONAL_TOOLS[name]} ({exc})", file=sys.stderr)
                continue
            print(f"error: {name}: {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
