"""Reads the MusicBud graph for the recommender: interactions, item details, popularity, users.

One extraction function serves every row of the content-type table (app/content_types.py). Reads are
batched: one record per user (two parallel lists) keeps the Bolt stream small, and pages of users keep
each read transaction bounded.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

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
    rels = "|".join(ct.rel_types)
    return (
        f"MATCH (u:ParentUser)-[:{ct.account_rel}]->(:{ct.account_label})-[r:{rels}]->(i:{ct.label}) "
        f"WHERE u.uid >= $after AND u.uid < $until "
        f"WITH u.uid AS user, i.{ct.id_property} AS item, max({weight_expression(ct)}) AS weight "
        f"RETURN user, collect(toString(item)) AS items, collect(weight) AS weights"
    )


def _user_bounds(page: int) -> list[tuple[str, str]]:
    """Split the sorted ParentUser uids into ranges of `page` users: [after, until)."""
    uids = [r["uid"] for r in graph.query("MATCH (u:ParentUser) RETURN u.uid AS uid ORDER BY uid")]
    if not uids:
        return []
    bounds = [uids[i] for i in range(0, len(uids), page)]
    ranges = list(zip(bounds, bounds[1:] + ["\U0010ffff"]))
    return ranges


def interactions_for(*, content_type: ContentType, page_users: int = 20_000, progress=None) -> Interactions:
    """Every (user, item, weight) of a content type as a sparse matrix; several edges to one item keep the max."""
    started = time.perf_counter()
    cypher = _interactions_cypher(content_type)
    user_ids: list[str] = []
    item_index: dict[str, int] = {}
    item_ids: list[str] = []
    rows: list[np.ndarray] = []
    cols: list[int] = []
    weights: list[float] = []
    with graph.driver().session(database=settings.NEO4J_DATABASE, fetch_size=5000) as session:
        for after, until in _user_bounds(page_users):
            def read(tx, after=after, until=until):
                return [(r[0], r[1], r[2]) for r in tx.run(cypher, after=after, until=until)]

            for user, items, ws in session.execute_read(read):
                row = len(user_ids)
                user_ids.append(user)
                for item in items:
                    col = item_index.get(item)
                    if col is None:
                        col = item_index[item] = len(item_ids)
                        item_ids.append(item)
                    cols.append(col)
                rows.append(np.full(len(items), row, dtype=np.int32))
                weights.extend(ws)
            if progress is not None:
                progress.update(1)
    row_arr = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int32)
    matrix = sp.csr_matrix(
        (np.asarray(weights, dtype=np.float32), (row_arr, np.asarray(cols, dtype=np.int32))),
        shape=(len(user_ids), len(item_ids)),
    )
    seconds = time.perf_counter() - started
    logger.info("Extracted %d %s interactions (%d users, %d items) in %.2fs (%.0f edges/s)",
                matrix.nnz, content_type.key, len(user_ids), len(item_ids), seconds,
                matrix.nnz / seconds if seconds else 0.0)
    return Interactions(user_ids=user_ids, item_ids=item_ids, matrix=matrix, seconds=seconds)


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
    records = graph.query(
        f"UNWIND $ids AS key MATCH (i:{ct.label} {{{ct.id_property}: key}}) "
        f"RETURN i.{ct.id_property} AS id, i {{{projection}}} AS props",
        ids=_key_param(ct, ids),
    )
    return {str(r["id"]): _details(ct, r) for r in records}


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
