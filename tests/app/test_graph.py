"""app/graph.py: queries on the real Neo4j, a dead server fails fast (and at once for DOWN_SECONDS after), a
non-transient error is not retried, and a new driver forgets that the old server was down."""
from __future__ import annotations

import logging
import time

import pytest
from neo4j.exceptions import CypherSyntaxError, ServiceUnavailable

from app import graph

pytestmark = pytest.mark.neo4j


@pytest.fixture
def dead_neo4j(settings):
    """Settings pointed at a loopback port where nothing listens."""
    from scripts import neo4j_local

    settings.NEO4J_BOLT_URL = f"bolt://127.0.0.1:{neo4j_local.free_port()}"
    graph.close()
    yield
    graph.close()


def test_it_returns_records_as_dicts(neo4j):
    assert graph.query("RETURN $a + 1 AS b, 'x' AS c", a=1) == [{"b": 2, "c": "x"}]


def test_a_dead_server_fails_fast_after_a_short_backoff(dead_neo4j, caplog):
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="app.graph"), pytest.raises(ServiceUnavailable):
        graph.query("RETURN 1")
    took = time.monotonic() - started
    assert took < 1.5, f"{took:.2f}s to give up on a dead server"
    assert took >= sum(graph.RETRY_DELAYS) * 0.9
    assert len([r for r in caplog.records if "retrying" in r.getMessage()]) == len(graph.RETRY_DELAYS)


def test_after_a_failure_it_fails_at_once_for_a_while(dead_neo4j, caplog):
    with pytest.raises(ServiceUnavailable):
        graph.query("RETURN 1")
    caplog.clear()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="app.graph"), pytest.raises(ServiceUnavailable, match="unreachable"):
        graph.query("RETURN 1")
    assert time.monotonic() - started < 0.05
    assert not caplog.records  # no connection was even tried


def test_a_new_driver_forgets_the_dead_server(neo4j, settings, dead_neo4j):
    with pytest.raises(ServiceUnavailable):
        graph.query("RETURN 1")
    settings.NEO4J_BOLT_URL = neo4j.bolt_url
    graph.close()
    assert graph.query("RETURN 1 AS one") == [{"one": 1}]


def test_an_error_that_is_not_transient_is_raised_at_once(neo4j, caplog):
    with caplog.at_level(logging.WARNING, logger="app.graph"), pytest.raises(CypherSyntaxError):
        graph.query("RETURN RETURN")
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]
    assert graph.query("RETURN 1 AS one") == [{"one": 1}]  # and nothing is marked down


def test_health_says_down_at_once_for_a_dead_server(dead_neo4j):
    started = time.monotonic()
    assert graph.is_reachable() is False
    assert time.monotonic() - started < 1.0


# --- a cluster's routing URL, and reads as read transactions ---------------------------------------------------

@pytest.mark.parametrize("url", ["neo4j://db.example:7687", "neo4j+s://db.example:7687", "bolt+s://db.example"])
def test_routing_urls_are_accepted_in_neo4j_bolt_url(monkeypatch, url):
    from musicbud.env import ConfigError, env_url

    monkeypatch.setenv("NEO4J_BOLT_URL", url)
    assert env_url("NEO4J_BOLT_URL", "", schemes=("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")) == url
    monkeypatch.setenv("NEO4J_BOLT_URL", url.replace("neo4j", "http").replace("bolt", "http"))
    with pytest.raises(ConfigError):
        env_url("NEO4J_BOLT_URL", "", schemes=("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"))


@pytest.fixture
def routing_neo4j(neo4j, settings):
    """Settings pointed at the tests' Neo4j through a neo4j:// routing URL (the server answers the routing table)."""
    settings.NEO4J_BOLT_URL = neo4j.bolt_url.replace("bolt://", "neo4j://")
    graph.close()
    yield
    graph.close()


def test_a_routing_url_gives_a_routing_driver_that_reads_and_writes(routing_neo4j):
    from neo4j import Neo4jDriver

    assert isinstance(graph.driver(), Neo4jDriver)  # routing: reads to readers, writes to the leader
    graph.query("MERGE (p:RoutingProbe {name: 'x'})")
    try:
        assert graph.read("MATCH (p:RoutingProbe) RETURN p.name AS name") == [{"name": "x"}]
    finally:
        graph.query("MATCH (p:RoutingProbe) DELETE p")


def test_reads_run_in_read_transactions_which_refuse_a_write(routing_neo4j):
    from neo4j.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        graph.read("CREATE (:RoutingProbe {name: 'must not exist'})")
    assert "AccessMode" in refused.value.code or "read" in refused.value.message.lower()
    assert graph.read("MATCH (p:RoutingProbe) RETURN count(p) AS n") == [{"n": 0}]


def test_extraction_and_the_change_feed_read_through_the_routing_url(routing_neo4j, clean_graph):
    from datetime import datetime, timezone

    from app.content_types import CONTENT_TYPES, USER_LABEL
    from app.services import recommendation_data_service as data
    from app.services.demo_data import demo_graph_generate, demo_graph_write

    demo = demo_graph_generate(seed=3, users=20, items_per_type=10, interactions_per_user=6,
                               until=datetime(2025, 1, 1, tzinfo=timezone.utc))
    demo_graph_write(demo=demo, progress=False)
    ct = CONTENT_TYPES[0]
    extracted = data.interactions_for(content_type=ct)
    assert extracted.nnz == len(demo.interactions[ct.key]) > 0
    counts = data.edge_counts(content_types=[ct])
    assert counts.pop(USER_LABEL) == len(demo.users)  # the app users, beside the edges
    assert sum(counts.values()) == extracted.nnz
    assert data.edges_since(content_types=[ct], since=datetime(2000, 1, 1, tzinfo=timezone.utc), limit=5)
