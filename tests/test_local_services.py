"""scripts/local_services.py against the real servers: each starts on a free loopback port in the test's tmp
dir and is used for real (no mocks). Runs with or without pytest-django (`-p no:django`)."""
from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
from scripts import local_services as ls  # noqa: E402


def test_free_port_is_loopback_and_free():
    port = ls.free_port()
    assert 0 < port < 65536 and not ls.port_in_use(port)
    with socket.socket() as s:
        s.bind((ls.LOOPBACK, port))  # really free


def test_debian_install_is_a_no_op_when_binaries_are_there():
    ls.debian_install(["coreutils"], binaries={"/bin/true": "coreutils", "ls": "coreutils"})


def test_find_binary_takes_names_paths_and_globs():
    assert ls.find_binary("sh") and ls.find_binary("/bin/sh") == "/bin/sh"
    assert ls.find_binary("/nonexistent/sh") is None
    initdb = ls.find_binary("/usr/lib/postgresql/*/bin/initdb")
    assert initdb and ls.postgres_bin_dir() == Path(initdb).parent


# --- Redis -----------------------------------------------------------------------------------------------

def test_redis_needs_its_password_and_stores_values(tmp_path):
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    once = dict(retry=Retry(NoBackoff(), 0))  # redis-py 6 retries a refused AUTH for seconds otherwise

    password = secrets.token_urlsafe(16)
    server = ls.redis_start(data_dir=tmp_path / "redis", port=ls.free_port(), password=password)
    try:
        assert server.url == f"redis://:{password}@127.0.0.1:{server.port}/0"
        with redis.Redis.from_url(server.url) as client:
            assert client.set("greeting", "hello")
            assert client.get("greeting") == b"hello"
        with redis.Redis(host="127.0.0.1", port=server.port, **once) as anonymous, \
                pytest.raises(redis.AuthenticationError):
            anonymous.get("greeting")
        with redis.Redis(host="127.0.0.1", port=server.port, password="wrong", **once) as wrong, \
                pytest.raises(redis.AuthenticationError):
            wrong.get("greeting")
        with server.client() as client:
            assert client.config_get("bind")["bind"] == "127.0.0.1"
            assert client.config_get("appendonly")["appendonly"] == "no"
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_redis_persist_writes_an_append_only_file(tmp_path):
    server = ls.redis_start(data_dir=tmp_path / "redis", port=ls.free_port(), password="pw-" + secrets.token_hex(8),
                            persist=True)
    try:
        with server.client() as client:
            client.set("kept", "1")
            assert client.config_get("appendonly")["appendonly"] == "yes"
    finally:
        server.stop()
    assert list((tmp_path / "redis").rglob("*.aof"))


def test_redis_kill_is_immediate(tmp_path):
    import redis

    server = ls.redis_start(data_dir=tmp_path / "redis", port=ls.free_port(), password=secrets.token_urlsafe(8))
    server.kill()
    assert server.process.returncode == -9 and not server.running()
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    with server.client(socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)) as client, \
            pytest.raises(redis.ConnectionError):
        client.ping()


def _our_processes(marker: str) -> list:
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        if marker in " ".join(proc.info["cmdline"] or []) or marker in (proc.info["cwd"] or ""):
            found.append(proc)
    return found


@pytest.mark.parametrize("service", ["redis", "postgres", "haproxy"])
def test_a_server_that_cannot_start_leaves_nothing_and_shows_its_log(tmp_path, pg_data_dir, service):
    port = ls.free_port()
    start = {
        "redis": lambda: ls.redis_start(data_dir=tmp_path / "redis", port=port, password="pw"),
        "postgres": lambda: ls.postgres_start(data_dir=pg_data_dir, port=port, password="pw"),
        "haproxy": lambda: ls.haproxy_start(config_dir=tmp_path / "lb", port=port, backends=[("127.0.0.1", 9)]),
    }[service]
    with socket.socket() as squatter:  # bound but not listening: port_in_use() sees it free, the server cannot bind
        squatter.bind(("127.0.0.1", port))
        with pytest.raises(ls.LocalServiceError, match="(?s)exited with code.*Log tail.*(in use|cannot bind)"):
            start()
    for marker in (str(tmp_path), str(pg_data_dir), f"127.0.0.1:{port}"):
        assert _our_processes(marker) == []


def test_a_port_in_use_is_refused_before_starting(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as listening:
        with pytest.raises(ls.LocalServiceError, match="already in use"):
            ls.redis_start(data_dir=tmp_path / "redis", port=listening.getsockname()[1], password="pw")


# --- PostgreSQL ------------------------------------------------------------------------------------------

@pytest.fixture
def pg_data_dir():
    """A new directory for a cluster, outside pytest's tmp root. As root the cluster runs as `postgres`, which
    reaches a tmp_path only through an ACL on /tmp/pytest-of-root; but every pytest session that starts on the
    machine resets that directory to 0700, which clears the ACL's mask, so another run starting meanwhile could
    cut initdb off (seen here, with several worktrees testing at once)."""
    base = Path(tempfile.mkdtemp(prefix="musicbud-pg-"))
    yield base / "pg"
    shutil.rmtree(base, ignore_errors=True)


def test_postgres_needs_the_password(pg_data_dir):
    import psycopg

    password = secrets.token_urlsafe(16)
    server = ls.postgres_start(data_dir=pg_data_dir, port=ls.free_port(), password=password)
    try:
        assert server.url == f"postgres://musicbud:{password}@127.0.0.1:{server.port}/musicbud"
        with psycopg.connect(server.url) as conn:
            row = conn.execute("SELECT current_user, current_database(), "
                               "(SELECT datdba::regrole::text FROM pg_database WHERE datname = current_database()), "
                               "current_setting('listen_addresses')").fetchone()
            assert row == ("musicbud", "musicbud", "musicbud", "127.0.0.1")
            conn.execute("CREATE TABLE t (x int)")
            conn.execute("INSERT INTO t VALUES (42)")
            assert conn.execute("SELECT x FROM t").fetchone() == (42,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host="127.0.0.1", port=server.port, user="musicbud", password="wrong",
                            dbname="musicbud", connect_timeout=5)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(host="127.0.0.1", port=server.port, user="musicbud", dbname="musicbud",
                            connect_timeout=5)  # no password at all
        assert (server.data_dir / f".s.PGSQL.{server.port}").is_socket()
    finally:
        server.stop()
    assert server.process.returncode == 0


def test_postgres_wants_a_fresh_data_dir(tmp_path):
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "something").write_text("x")
    with pytest.raises(ls.LocalServiceError, match="not empty"):
        ls.postgres_start(data_dir=tmp_path / "pg", port=ls.free_port(), password="pw")


# --- HAProxy ---------------------------------------------------------------------------------------------

class _Backend:
    """A tiny http.server backend in a thread: 200 on every GET, saying its name."""

    def __init__(self, name: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_haproxy_spreads_requests_and_routes_around_a_dead_backend(tmp_path):
    import httpx

    a, b = _Backend("a"), _Backend("b")
    lb = ls.haproxy_start(config_dir=tmp_path / "lb", port=ls.free_port(),
                          backends=[("127.0.0.1", a.port), ("127.0.0.1", b.port)], check_inter_ms=100)
    try:
        name_a, name_b = lb.servers
        lb.wait_server_state(name_a, "UP")
        lb.wait_server_state(name_b, "UP")
        with httpx.Client(base_url=lb.url, timeout=5) as client:
            served = Counter(client.get("/v1/recommendations/").text for _ in range(20))
            assert served == {"a": 10, "b": 10}

            b.stop()
            # before the checks notice, a request sent to b is retried on a (conn-failure, redispatch)
            assert all(client.get("/").status_code == 200 for _ in range(10))
            lb.wait_server_state(name_b, "DOWN", timeout=5)
            assert lb.server_states() == {name_a: "UP", name_b: "DOWN"}
            served = Counter(client.get("/").text for _ in range(10))
            assert served == {"a": 10}
    finally:
        lb.stop()
        a.stop()
    assert "DOWN" in lb.log_tail()


# --- Chromium --------------------------------------------------------------------------------------------

def test_selenium_drives_debian_chromium_to_a_screenshot(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html><title>MusicBud local</title>"
                                     "<h1 id=greeting style='color:#c00'>Hello from loopback</h1>")
    port = ls.free_port()
    httpd = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                              "--directory", str(site)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    driver = None
    try:
        deadline = time.monotonic() + 10
        while not ls.port_in_use(port):
            assert time.monotonic() < deadline and httpd.poll() is None, "http.server did not start"
            time.sleep(0.05)
        driver = ls.chromium_webdriver(tmp_path / "chrome")
        driver.get(f"http://127.0.0.1:{port}/")
        assert driver.title == "MusicBud local"
        assert driver.find_element("id", "greeting").text == "Hello from loopback"
        shot = tmp_path / "page.png"
        assert driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 1000
    finally:
        if driver is not None:
            driver.quit()
        httpd.terminate()
        httpd.wait()


def test_chromium_flags_are_the_known_good_ones(tmp_path):
    chromium, chromedriver = ls.chromium_paths()
    assert (chromium, chromedriver) == ("/usr/bin/chromium", "/usr/bin/chromedriver")
    flags = ls.chromium_flags(tmp_path)
    assert "--no-sandbox" in flags and "--headless=new" in flags and flags[-1] == f"--user-data-dir={tmp_path}"
