"""The staff dashboard and the API docs in a real browser: Debian's Chromium driven by Selenium (through
chromium-driver) against the real server (uvicorn, 2 workers). A browser that cannot start fails the test with
the reason; it never skips. Screenshots of every page are saved in the test's tmp_path (named in the output)."""
from __future__ import annotations

import json
import os
import signal
import time
from urllib.parse import urlparse

import httpx
import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app.services.model_registry import TASTE_KEY
from scripts import live_stack
from scripts.local_services import LocalServiceError, chromium_webdriver
from tests.reliability.conftest import training_running, wait_until

MODEL_KEYS = ["movie", "manga", "anime", "track", "artist", "album", "genre", TASTE_KEY]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture(scope="module")
def own_stack(stack, tmp_path_factory):
    """The stack with a model dir of its own (this module trains), served with 2 workers."""
    copy = stack.copy(tmp_path_factory.mktemp("dashboard"))
    server = live_stack.serve(copy.env, workers=2)
    yield copy, server
    server.stop()
    status_file = copy.model_dir / "training_status.json"  # the job's status, beside the models
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    if training_running(copy.model_dir) and status.get("pid"):
        os.killpg(int(status["pid"]), signal.SIGTERM)  # the job this module started (its own session), if a test failed


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    out = tmp_path_factory.mktemp("chromium")
    try:
        driver = chromium_webdriver(out / "profile", window_size=(1400, 1000), performance_log=True)
    except (LocalServiceError, WebDriverException) as exc:
        pytest.fail(f"The browser tests need Debian's chromium and chromium-driver (make deps-debian), and Chromium "
                    f"could not be started: {exc}", pytrace=False)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _shot(driver, tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")


def _log_in(driver, url: str, username: str, password: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{url}/dashboard/")  # not logged in: the login page
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "login-submit"))
    assert "/dashboard/login/" in driver.current_url
    driver.find_element(By.ID, "id_username").send_keys(username)
    driver.find_element(By.ID, "id_password").send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def _page_training(driver) -> tuple[str, float] | None:
    """The training state and progress the dashboard shows; None while the page reloads itself (it does
    when a job ends)."""
    try:
        return (driver.find_element(By.ID, "training-state").text,
                float(driver.find_element(By.ID, "training-progress-text").text))
    except (WebDriverException, ValueError):
        return None


def _requested_urls(driver) -> list[str]:
    """Every URL the pages asked for since the last call, but those the browser blocked itself (the pages'
    Content-Security-Policy): a blocked request never leaves the host."""
    urls, blocked = {}, set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls[message["params"]["requestId"]] = message["params"]["request"]["url"]
        elif message.get("method") == "Network.loadingFailed" and message["params"].get("blockedReason"):
            blocked.add(message["params"]["requestId"])
    return [url for request_id, url in urls.items() if request_id not in blocked]


def _non_local(urls: list[str]) -> list[str]:
    """The requests that would leave the host (chrome://, data: and blob: URLs never reach the network)."""
    return [u for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss", "ftp")
            and urlparse(u).hostname not in LOCAL_HOSTS]


def test_a_normal_user_is_refused(own_stack, browser, tmp_path):
    stack, server = own_stack
    _log_in(browser, server.url, "demo", stack.users["demo"]["password"])
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "forbidden"))
    assert "not a staff account" in browser.page_source
    _shot(browser, tmp_path, "dashboard-refused")


def test_the_pages_need_a_session_and_posts_need_csrf(own_stack):
    _, server = own_stack
    page = httpx.get(f"{server.url}/dashboard/")
    assert page.status_code == 302 and page.headers["location"].startswith("/dashboard/login/")
    assert httpx.post(f"{server.url}/dashboard/train/").status_code == 403  # no CSRF token: refused


def test_staff_reads_the_models_and_starts_a_training(own_stack, browser, tmp_path):
    stack, server = own_stack
    _log_in(browser, server.url, "admin", stack.users["admin"]["password"])
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "models-table"))
    _shot(browser, tmp_path, "dashboard")
    rows = {r.get_attribute("data-type"): r for r in browser.find_elements(By.CSS_SELECTOR, "#models-table > tbody > tr")}
    assert set(MODEL_KEYS) <= set(rows)
    for key in MODEL_KEYS:
        manifest = json.loads((stack.model_dir / f"{key}_manifest.json").read_text())
        assert rows[key].find_element(By.CLASS_NAME, "version").text.startswith(manifest["version"])
    assert "AUC" in rows["movie"].find_element(By.CLASS_NAME, "metrics").text
    assert browser.find_element(By.ID, "neo4j").text == "up"
    assert not _non_local(_requested_urls(browser))

    browser.find_element(By.ID, "train-now").click()
    WebDriverWait(browser, 30).until(lambda d: "started" in (d.find_elements(By.ID, "notice") or [None])[0].text
                                     if d.find_elements(By.ID, "notice") else False)
    # The job on this small graph ends in about 3 s, within a few of the page's 1-second polls. So the test
    # catches it between two types (its status file, 10 ms polls), stops it there (SIGSTOP to its process group)
    # and reads that progress off the page before letting it go on.
    status_file = stack.model_dir / "training_status.json"
    deadline = time.monotonic() + 400
    status: dict = {}
    while time.monotonic() < deadline:
        try:
            status = json.loads(status_file.read_text())
        except (OSError, ValueError):
            status = {}
        if status.get("state") == "running" and 0 < float(status.get("progress") or 0) < 1:
            break
        assert status.get("state") not in ("succeeded", "failed"), f"no progress between 0 and 1 was seen: {status}"
        time.sleep(0.01)
    pid = int(status["pid"])
    os.killpg(pid, signal.SIGSTOP)
    try:
        paused = json.loads(status_file.read_text())
        assert paused["state"] == "running" and 0 < paused["progress"] < 1, paused
        WebDriverWait(browser, 30).until(lambda d: _page_training(d) == ("running", paused["progress"]))
        _shot(browser, tmp_path, "dashboard-training")
    finally:
        os.killpg(pid, signal.SIGCONT)
    WebDriverWait(browser, 400, poll_frequency=0.3).until(lambda d: _page_training(d) == ("succeeded", 1.0))
    wait_until(lambda: not training_running(stack.model_dir), timeout=30)
    browser.get(f"{server.url}/dashboard/")
    WebDriverWait(browser, 30).until(lambda d: d.find_elements(By.ID, "models-table"))
    movie = browser.find_element(By.CSS_SELECTOR, '#models-table tr[data-type="movie"]')
    assert movie.find_elements(By.CSS_SELECTOR, "svg.plot polyline.series"), "no held-out plot after a training"
    manifest = json.loads((stack.model_dir / "movie_manifest.json").read_text())
    assert movie.find_element(By.CLASS_NAME, "version").text.startswith(manifest["version"])
    _shot(browser, tmp_path, "dashboard-trained")


@pytest.mark.parametrize("page, operation", [("/v1/docs/", ".opblock"), ("/v1/redoc/", "[data-section-id^='operation/']")])
def test_the_docs_render_every_operation_offline(own_stack, browser, tmp_path, page, operation):
    _, server = own_stack
    browser.get_log("performance")  # forget earlier pages' requests
    browser.get(f"{server.url}{page}")
    WebDriverWait(browser, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, operation)) >= 20)
    schema = httpx.get(f"{server.url}/v1/schema/?format=json").json()
    operations = sum(len([m for m in ops if m in ("get", "post", "put", "patch", "delete")])
                     for ops in schema["paths"].values())
    assert len(browser.find_elements(By.CSS_SELECTOR, operation)) == operations
    _shot(browser, tmp_path, page.strip("/").replace("/", "-"))
    urls = _requested_urls(browser)
    assert any("/static/drf_spectacular_sidecar/" in u for u in urls), urls
    assert not _non_local(urls), _non_local(urls)
