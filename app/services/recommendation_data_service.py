"""Reads the MusicBud graph for the recommender: interactions, item details, popularity, users.

One extraction function serves every row of the content-type table (app/content_types.py). Reads are
batched: one record per page of users (parallel lists) keeps the driver's per-record cost out of the way
(extraction runs at ~250k edges/s), and pages of users keep each read transaction bounded.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from itertools import chain

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from app import graph
from app.content_types import ContentType, weight_expression

logger = logging.getLogger(__name__)


@dataclass
class Interactions:
    """A users x items weight matrix with the external ids of its rows and columns."""

    user_ids: list[str]  # ParentUser uid by row
    item_ids: list[str]  # item key (as a string) by column
    matrix: sp.csr_matrix
    seconds: float

    @property
    def user_map(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}

    @property
    def item_map(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.item_ids)}

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)


def _interactions_cypher(ct: ContentType) -> str:
    """One record per page of users: their uids, and per user the item keys and edge weights (parallel lists).
    A record costs the driver ~20 us whatever its size, so a record per user (or per edge) would cost more
    than the query itself; several edges to one item are reduced (max) in numpy, not in Cypher."""
    rels = "|".join(ct.rel_types)
    return (
        f"MATCH (u:ParentUser)-[:{ct.account_rel}]->(:{ct.account_label})-[r:{rels}]->(i:{ct.label}) "
        f"WHERE u.uid >= $after AND u.uid < $until "
        f"WITH u, collect(toString(i.{ct.id_property})) AS items, collect({weight_expression(ct)}) AS weights "
        f"RETURN collect(u.uid) AS users, collect(items) AS items, collect(weights) AS weights"
    )


def _user_bounds(page: int) -> list[tuple[str, str]]:
    """Split the sorted ParentUser uids into ranges of `page` users: [after, until)."""
    records = graph.query("MATCH (u:ParentUser) WITH u.uid AS uid ORDER BY uid RETURN collect(uid) AS uids")
    uids = records[0]["uids"] if records else []
    if not uids:
        return []
    bounds = [uids[i] for i in range(0, len(uids), page)]
    ranges = list(zip(bounds, bounds[1:] + ["\U0010ffff"]))
    return ranges


def _strongest(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_items: int) -> np.ndarray:
    """Indices of the (row, col) entries to keep: one per pair, the one with the largest weight."""
    keys = rows.astype(np.int64) * max(n_items, 1) + cols
    order = np.lexsort((weights, keys))  # by pair, then weight: a pair's strongest entry comes last
    ordered = keys[order]
    last = np.ones(len(order), dtype=bool)
    last[:-1] = ordered[1:] != ordered[:-1]
    return order[last]


def interactions_for(*, content_type: ContentType, page_users: int = 20_000, progress=None) -> Interactions:
    """Every (user, item, weight) of a content type as a sparse matrix; several edges to one item keep the max."""
    started = time.perf_counter()
    cypher = _interactions_cypher(content_type)
    user_ids: list[str] = []
    counts: list[int] = []
    items: list[str] = []
    weights: list[float] = []
    with graph.driver().session(database=settings.NEO4J_DATABASE) as session:
        for after, until in _user_bounds(page_users):
            def read(tx, after=after, until=until):
                return tx.run(cypher, after=after, until=until).single()

            record = session.execute_read(read)
            if record is not None:
                user_ids.extend(record["users"])
                counts.extend(map(len, record["items"]))
                items.extend(chain.from_iterable(record["items"]))
                weights.extend(chain.from_iterable(record["weights"]))
            if progress is not None:
                progress.update(1)
    item_index: dict[str, int] = {}  # columns in order of first appearance
    cols = np.fromiter((item_index.setdefault(item, len(item_index)) for item in items), dtype=np.int32,
                       count=len(items))
    item_ids = list(item_index)
    rows = np.repeat(np.arange(len(user_ids), dtype=np.int32), counts)
    values = np.asarray(weights, dtype=np.float32)
    keep = _strongest(rows, cols, values, len(item_ids))
    matrix = sp.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=(len(user_ids), len(item_ids)))
    seconds = time.perf_counter() - started
    logger.info("Extracted %d %s interactions (%d users, %d items) in %.2fs (%.0f edges/s)",
                matrix.nnz, content_type.key, len(user_ids), len(item_ids), seconds,
                matrix.nnz / seconds if seconds else 0.0)
    return Interactions(user_ids=user_ids, item_ids=item_ids, matrix=matrix, seconds=seconds)


def interactions_count(*, content_type: ContentType) -> int:
    """How many interaction edges of a type the graph holds (counted, not read: it plans a training run)."""
    ct = content_type
    records = graph.query(f"MATCH (:{ct.account_label})-[r:{'|'.join(ct.rel_types)}]->(:{ct.label}) "
                          f"RETURN count(r) AS n")
    return int(records[0]["n"]) if records else 0


def _key_param(ct: ContentType, ids: list[str]) -> list:
    if not ct.id_is_int:
        return [str(i) for i in ids]
    out = []
    for i in ids:
        try:
            out.append(int(i))
        except (TypeError, ValueError):
            continue  # an id that cannot be a key of this type matches nothing
    return out


def _details(ct: ContentType, record: dict) -> dict:
    props = record["props"] or {}
    return {"id": str(record["id"]), **{p: props.get(p) for p in ct.detail_properties}}


def items_by_ids(*, content_type: ContentType, ids: list[str]) -> dict[str, dict]:
    """Details of the given items in one query: {id: {"id", *detail_properties}}; unknown ids are left out."""
    ct = content_type
    if not ids:
        return {}
    projection = ", ".join(f".{p}" for p in ct.detail_properties)
    records = graph.query(  # one record of two lists: the driver costs ~20 us per record, whatever its size
        f"UNWIND $ids AS key MATCH (i:{ct.label} {{{ct.id_property}: key}}) "
        f"RETURN collect(i.{ct.id_property}) AS ids, collect(i {{{projection}}}) AS props",
        ids=_key_param(ct, ids),
    )
    if not records:
        return {}
    return {str(key): _details(ct, {"id": key, "props": props})
            for key, props in zip(records[0]["ids"], records[0]["props"])}


def items_popular(*, content_type: ContentType, n: int) -> list[dict]:
    """The n items with the most interactions (weight summed), with details and `popularity`."""
    ct = content_type
    rels = "|".join(ct.rel_types)
    projection = ", ".join(f".{p}" for p in ct.detail_properties)
    records = graph.query(
        f"MATCH (:{ct.account_label})-[r:{rels}]->(i:{ct.label}) "
        f"WITH i, sum({weight_expression(ct)}) AS popularity ORDER BY popularity DESC, i.{ct.id_property} LIMIT $n "
        f"RETURN i.{ct.id_property} AS id, i {{{projection}}} AS props, popularity",
        n=n,
    )
    return [{**_details(ct, r), "popularity": r["popularity"]} for r in records]


def user_history(*, content_type: ContentType, user_uid: str) -> list[str]:
    """Ids of the items a user has (any edge of the type), strongest first."""
    ct = content_type
    rels = "|".join(ct.rel_types)
    records = graph.query(
        f"MATCH (u:ParentUser {{uid: $uid}})-[:{ct.account_rel}]->(:{ct.account_label})-[r:{rels}]->(i:{ct.label}) "
        f"WITH i, max({weight_expression(ct)}) AS w ORDER BY w DESC RETURN i.{ct.id_property} AS id",
        uid=user_uid,
    )
    return [str(r["id"]) for r in records]


def user_uid_for_username(*, username: str) -> str | None:
    records = graph.query("MATCH (u:ParentUser {username: $username}) RETURN u.uid AS uid", username=username)
    return records[0]["uid"] if records else None


def users_directory() -> dict[str, dict]:
    """uid -> {username} of every app user (for buds and the username lookup kept with the models)."""
    records = graph.query("MATCH (u:ParentUser) RETURN u.uid AS uid, u.username AS username")
    return {r["uid"]: {"username": r["username"]} for r in records}
