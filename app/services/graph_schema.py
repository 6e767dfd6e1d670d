"""Schema services: the indexes and constraints the service's reads need, derived from the node classes
(app/graph_models.py) and the content-type table, installed idempotently and safely on any graph.

- a `unique_index` property gets a uniqueness constraint (named as neomodel names it, so a MusicBud graph that
  already has it is left alone); if the graph already holds duplicates there (MusicBud's own data need not
  obey our constraints), a plain index is made instead and a WARNING says which duplicates prevent it;
- an `index=True` property gets a range index;
- every edge type of the table, and DISMISSED, gets a range index on `created_at` (the change feed reads
  edges newer than a watermark).

Every statement is `IF NOT EXISTS`: installing twice prints nothing and changes nothing.
"""
from __future__ import annotations

import logging

from neo4j.exceptions import ClientError, DatabaseError

from app import graph
from app.content_types import CONTENT_TYPES
from app.graph_models import NODE_CLASSES
from app.services.recommendation_data_service import DISMISSED

logger = logging.getLogger(__name__)

CREATED_AT = "created_at"


def schema_plan() -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]:
    """(unique (label, property) pairs, indexed (label, property) pairs, edge types indexed on created_at)."""
    unique: list[tuple[str, str]] = []
    indexed: list[tuple[str, str]] = []
    for cls in NODE_CLASSES:
        if getattr(cls, "__abstract_node__", False):
            continue
        for name, prop in cls.defined_properties(aliases=False, rels=False).items():
            if prop.unique_index:
                unique.append((cls.__label__, name))
            elif prop.index:
                indexed.append((cls.__label__, name))
    rels = sorted({rel for ct in CONTENT_TYPES for rel in ct.edges} | {DISMISSED})
    return list(dict.fromkeys(unique)), list(dict.fromkeys(indexed)), rels


def _index(label: str, prop: str) -> None:
    graph.query(f"CREATE INDEX `index_{label}_{prop}` IF NOT EXISTS FOR (n:`{label}`) ON (n.`{prop}`)")


def constraints_install() -> list[str]:
    """Install every constraint and index of schema_plan (idempotent). Returns the names of the constraints."""
    unique, indexed, rels = schema_plan()
    for label, prop in unique:
        try:
            graph.query(f"CREATE CONSTRAINT `constraint_unique_{label}_{prop}` IF NOT EXISTS "
                        f"FOR (n:`{label}`) REQUIRE n.`{prop}` IS UNIQUE")
        except (ClientError, DatabaseError) as exc:  # duplicates in the graph already: index the key instead
            if "ConstraintCreationFailed" not in (exc.code or ""):
                raise
            logger.warning("%s.%s is not unique in this graph (%s): indexed instead of constrained", label, prop,
                           exc.message)
            _index(label, prop)
    for label, prop in indexed:
        _index(label, prop)
    for rel in rels:
        graph.query(f"CREATE INDEX `index_{rel}_{CREATED_AT}` IF NOT EXISTS FOR ()-[r:`{rel}`]-() ON (r.`{CREATED_AT}`)")
    names = [c["name"] for c in graph.query("SHOW CONSTRAINTS YIELD name RETURN name")]
    logger.info("Neo4j schema installed: %d constraints, %d indexes", len(names),
                len(indexed) + len(rels))
    return names


def constraints_list() -> list[dict]:
    """(label, property) of every uniqueness constraint in the graph."""
    rows = graph.query(
        "SHOW CONSTRAINTS YIELD type, labelsOrTypes, properties "
        "WHERE type = 'UNIQUENESS' RETURN labelsOrTypes[0] AS label, properties[0] AS property"
    )
    return rows


def indexes_list() -> list[dict]:
    """(label or edge type, property, entity) of every range index in the graph."""
    return graph.query(
        "SHOW INDEXES YIELD type, entityType, labelsOrTypes, properties WHERE type = 'RANGE' "
        "RETURN labelsOrTypes[0] AS label, properties[0] AS property, entityType AS entity"
    )
