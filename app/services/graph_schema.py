"""Schema services: uniqueness constraints on every key of the graph (app/graph_models.py)."""
from __future__ import annotations

import logging

from neomodel import db

from app import graph
from app.graph_models import NODE_CLASSES

logger = logging.getLogger(__name__)


def constraints_install() -> list[str]:
    """Install the uniqueness constraints of every node class (idempotent). Returns the constraint names."""
    graph.driver()  # binds neomodel to the shared driver
    for cls in NODE_CLASSES:
        db.install_labels(cls)
    names = [c["name"] for c in graph.query("SHOW CONSTRAINTS YIELD name RETURN name")]
    logger.info("Neo4j constraints installed: %d", len(names))
    return names


def constraints_list() -> list[dict]:
    """(label, property) of every uniqueness constraint in the graph."""
    rows = graph.query(
        "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties "
        "WHERE type = 'UNIQUENESS' RETURN labelsOrTypes[0] AS label, properties[0] AS property"
    )
    return rows
