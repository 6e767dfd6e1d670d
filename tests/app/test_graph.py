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
