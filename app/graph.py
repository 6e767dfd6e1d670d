"""The one connection to Neo4j: a sync driver from settings, shared with neomodel.

NEO4J_BOLT_URL may be a single server's `bolt://` URL or a cluster's `neo4j://` / `neo4j+s://` routing URL: every
read the service makes (extraction, the change feed, details, users) is a read transaction (`read`,
`read_session`), which the routing driver sends to followers; writes go to the leader.

Sync on purpose: the async driver binds to the event loop that first used it. Async views reach the graph
through `asyncio.to_thread` (see app/services), so one driver serves every loop and thread.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

from django.conf import settings
from neo4j import READ_ACCESS, WRITE_ACCESS, Driver, GraphDatabase
from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable
from neomodel import db

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_driver: Driver | None = None

# `query` retries a transient failure (a deadlock, a dropped connection, Neo4j restarting) after these pauses
# (plus up to half again, at random); then it gives up. Once Neo4j is found unreachable, queries fail at once for
# DOWN_SECONDS without trying, so a request never queues behind a dead server.
RETRY_DELAYS = (0.05, 0.2)
# What the driver raises when the graph cannot answer: callers that fall back (serve from memory, say "down")
# catch these, and let anything else (a bug) surface.
GRAPH_ERRORS = (DriverError, Neo4jError, OSError)
DOWN_SECONDS = 1.0
_down_until = 0.0


def driver() -> Driver:
    """The shared driver (created on first use from NEO4J_BOLT_URL / NEO4J_USER / NEO4J_PASSWORD)."""
    global _driver
    if _driver is None:
        with _lock:
            if _driver is None:
                d = GraphDatabase.driver(
                    settings.NEO4J_BOLT_URL,
                    auth=(settings.NEO4J_USER, settings.NEO4J_PASSWORD),
                    connection_timeout=2.0,  # fail fast on a dead server (loopback: refused at once anyway)
                    connection_acquisition_timeout=5.0,
                    max_transaction_retry_time=10.0,
                    notifications_min_severity="OFF",  # e.g. "property does not exist" for optional details
                )
                db.set_connection(driver=d)
                _driver = d
    return _driver


def close() -> None:
    global _driver, _down_until
    with _lock:
        if _driver is not None:
            _driver.close()
            _driver = None
        _down_until = 0.0


def query(cypher: str, **params: Any) -> list[dict[str, Any]]:
    """Run a write (or a schema command) as one auto-commit transaction with WRITE access (a cluster's leader) and
    return its records as dicts. Reads go through `read`.

    Transient errors are retried with a short backoff (RETRY_DELAYS); when Neo4j stays unreachable the
    ServiceUnavailable is raised within a fraction of a second, and again at once for DOWN_SECONDS after."""
    return _run(cypher, params, WRITE_ACCESS)


def read(cypher: str, **params: Any) -> list[dict[str, Any]]:
    """Run a read as a read transaction (READ access: with a `neo4j://` routing URL, a cluster's followers and
    read replicas serve it; Neo4j refuses a write inside one). Retries and fails fast as `query` does."""
    return _run(cypher, params, READ_ACCESS)


def read_session():
    """A session whose transactions go to readers (`session.execute_read(...)` for several reads in a row)."""
    return driver().session(database=settings.NEO4J_DATABASE, default_access_mode=READ_ACCESS)


def _run(cypher: str, params: dict[str, Any], access: str) -> list[dict[str, Any]]:
    global _down_until
    if time.monotonic() < _down_until:
        raise ServiceUnavailable(f"Neo4j at {settings.NEO4J_BOLT_URL} was unreachable less than {DOWN_SECONDS:g}s ago")
    attempt = 0
    while True:
        try:
            with driver().session(database=settings.NEO4J_DATABASE, default_access_mode=access) as session:
                if access == WRITE_ACCESS:
                    return [r.data() for r in session.run(cypher, params)]
                # an explicit transaction, not execute_read: its retries (for seconds) would hide a dead server
                with session.begin_transaction() as tx:
                    records = [r.data() for r in tx.run(cypher, params)]
                    tx.commit()
                    return records
        except (DriverError, Neo4jError) as exc:
            if attempt == len(RETRY_DELAYS) or not exc.is_retryable():
                if isinstance(exc, ServiceUnavailable):
                    _down_until = time.monotonic() + DOWN_SECONDS
                raise
            delay = RETRY_DELAYS[attempt] * (1 + random.random() / 2)
            attempt += 1
            logger.warning("Neo4j query failed (%s: %s); retrying in %.2fs", type(exc).__name__, exc, delay)
            time.sleep(delay)


def write_batches(cypher: str, rows: list[dict[str, Any]], *, batch_size: int = 10_000, progress=None) -> int:
    """Run an `UNWIND $rows AS row ...` statement over rows in batches, each its own transaction.

    A failing batch rolls back alone: what earlier batches wrote stays, nothing of the failing one does.
    Returns the number of rows sent.
    """
    sent = 0
    with driver().session(database=settings.NEO4J_DATABASE) as session:
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            session.execute_write(lambda tx, b=batch: tx.run(cypher, rows=b).consume())
            sent += len(batch)
            if progress is not None:
                progress.update(len(batch))
    return sent


def write_all(statements: list[tuple[str, list[dict[str, Any]]]], **params: Any) -> None:
    """Run several `UNWIND $rows ...` statements (each with its rows, and `params`) in ONE transaction: all of them
    are written, or (an error) none."""
    def work(tx):
        for cypher, rows in statements:
            tx.run(cypher, rows=rows, **params).consume()

    with driver().session(database=settings.NEO4J_DATABASE) as session:
        session.execute_write(work)


def is_reachable() -> bool:
    try:
        driver().verify_connectivity()
        return True
    except GRAPH_ERRORS as exc:
        logger.warning("Neo4j at %s is not reachable: %s", settings.NEO4J_BOLT_URL, exc)
        return False
