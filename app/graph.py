"""The one connection to Neo4j: a sync driver from settings, shared with neomodel.

Sync on purpose: the async driver binds to the event loop that first used it. Async views reach the graph
through `asyncio.to_thread` (see app/services), so one driver serves every loop and thread.
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from neo4j import Driver, GraphDatabase
from neomodel import db

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_driver: Driver | None = None


def driver() -> Driver:
    """The shared driver (created on first use from NEO4J_BOLT_URL / NEO4J_USER / NEO4J_PASSWORD)."""
    global _driver
    if _driver is None:
        with _lock:
            if _driver is None:
                d = GraphDatabase.driver(
                    settings.NEO4J_BOLT_URL,
                    auth=(settings.NEO4J_USER, settings.NEO4J_PASSWORD),
                    connection_timeout=5.0,
                    connection_acquisition_timeout=10.0,
                    max_transaction_retry_time=10.0,
                    notifications_min_severity="OFF",  # e.g. "property does not exist" for optional details
                )
                db.set_connection(driver=d)
                _driver = d
    return _driver


def close() -> None:
    global _driver
    with _lock:
        if _driver is not None:
            _driver.close()
            _driver = None


def query(cypher: str, **params: Any) -> list[dict[str, Any]]:
    """Run a read or write in an auto-retried transaction and return its records as dicts."""
    records, _, _ = driver().execute_query(cypher, params, database_=settings.NEO4J_DATABASE)
    return [r.data() for r in records]


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


def is_reachable() -> bool:
    try:
        driver().verify_connectivity()
        return True
    except Exception as exc:  # any driver or socket error means "not reachable" for health purposes
        logger.warning("Neo4j at %s is not reachable: %s", settings.NEO4J_BOLT_URL, exc)
        return False
