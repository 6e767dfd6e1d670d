"""/metrics on the real server (uvicorn, 2 workers, multiprocess mode): it parses, every worker's requests are
counted whichever worker is scraped, and it is never public, from loopback neither."""
import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.reliability.conftest import bearer, client_on_each_worker


def _requests(text: str, route: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text) for s in family.samples
               if s.name == "musicbud_http_requests_total" and s.labels.get("route") == route)


def test_it_needs_a_staff_token_or_the_scrape_token(api_server, stack):
    assert httpx.get(f"{api_server.url}/metrics").status_code == 401
    assert httpx.get(f"{api_server.url}/metrics", headers=bearer(stack.token("demo"))).status_code == 403
    assert httpx.get(f"{api_server.url}/metrics", headers=bearer("no-such-scrape-token")).status_code == 401


def test_every_worker_counts_whichever_is_scraped(api_server, stack):
    staff, user = bearer(stack.token("admin")), bearer(stack.token("demo"))
    clients = client_on_each_worker(api_server, stack.token("demo"))
    (pid_a, a), (pid_b, b) = clients.items()
    try:
        before = a.get("/metrics", headers=staff)
        assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
        for _ in range(5):
            assert b.get("/v1/ping/", headers=user).status_code == 200
        after_b = a.get("/metrics", headers=staff).text  # scraped on A: B's five pings are there
        assert _requests(after_b, "ping") - _requests(before.text, "ping") == 5
        for _ in range(3):
            assert a.get("/v1/ping/", headers=user).status_code == 200
        after_a = b.get("/metrics", headers=staff).text  # scraped on B: A's three too
        assert _requests(after_a, "ping") - _requests(before.text, "ping") == 8
        families = {f.name for f in text_string_to_metric_families(after_a)}
        assert {"musicbud_model_info", "musicbud_model_age_seconds", "musicbud_model_heldout", "musicbud_neo4j_up",
                "musicbud_http_request_duration_seconds", "musicbud_answer_cache"} <= families
    finally:
        for client in clients.values():
            client.close()


def test_the_server_starts_quietly(api_server):
    log = api_server.log_text()
    assert "lifespan" not in log.lower(), log[-2000:]
    assert "Error" not in log, log[-2000:]
