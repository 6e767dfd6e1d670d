"""Reads the MusicBud graph for the recommender: interactions, item details, popularity, users.

One extraction function serves every row of the content-type table (app/content_types.py). Reads are
batched: one record per page of users (parallel lists) keeps the driver's per-record cost out of the way
(extraction runs at ~250k edges/s), and pages of users keep each read transaction bounded.
"""
from __future__ import annotations

import ast
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from app import graph
from app.content_types import (
    USER_LABEL,
    ContentType,
    account_pattern,
    details_projection,
    item_match,
    weight_expression,
)

logger = logging.getLogger(__name__)


@dataclass
class Interactions:
    """A users x items weight matrix with the external ids of its rows and columns, what the users dismissed
    (never in the matrix), and what the change feed needs to go on from it: the graph's clock when the read
    began and how many edges carried no created_at (MusicBud's own edges carry none)."""

    user_ids: list[str]  # ParentUser uid by row
    item_ids: list[str]  # item key (as a string) by column
    matrix: sp.csr_matrix
    seconds: float
    read_at: datetime | None = None  # Neo4j's datetime() when the read began
    untimed_edges: int = 0
    dismissed: dict[str, list[str]] = field(default_factory=dict)  # uid -> item ids
    # every edge as read (before pairs and dismissals are reduced): its column, weight and created_at in epoch
    # seconds (UNTIMED when it has none); what trending_totals sums, so the edges are not read twice
    edge_cols: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int32))
    edge_weights: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))
    edge_times: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))

    @property
    def user_map(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.user_ids)}

    @property
    def item_map(self) -> dict[str, int]:
        return {k: i for i, k in enumerate(self.item_ids)}

    @property
    def nnz(self) -> int:
        return int(self.matrix.nnz)


UNTIMED = -(2 ** 62)  # the creation time (epoch seconds) the extraction gives an edge without created_at


def _interactions_cypher(ct: ContentType) -> str:
    """One record per page of users (every account of the type: a user with Spotify and Last.fm has one
    history): their uids, and per user the item keys, edge weights and edge creation times (parallel lists).
    A record costs the driver ~20 us whatever its size, so a record per user (or per edge) would cost more
    than the query itself; several edges to one item are reduced (max) in numpy, not in Cypher."""
    rels = "|".join(ct.rel_types)
    return (
        f"MATCH {account_pattern(ct)}-[r:{rels}]->(i:{ct.label_expression}) "
        f"WHERE u.uid >= $after AND u.uid < $until "
        f"WITH u, collect(toString(i.{ct.id_property})) AS items, collect({weight_expression(ct)}) AS weights, "
        f"collect(coalesce(r.created_at.epochSeconds, {UNTIMED})) AS times "
        f"RETURN collect(u.uid) AS users, collect(items) AS items, collect(weights) AS weights, collect(times) AS times"
    )


def _user_bounds(page: int) -> list[tuple[str, str]]:
    """Split the sorted ParentUser uids into ranges of `page` users: [after, until)."""
    records = graph.read("MATCH (u:ParentUser) WITH u.uid AS uid ORDER BY uid RETURN collect(uid) AS uids")
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
    times: list[int] = []
    read_at = graph_now()
    with graph.read_session() as session:
        for after, until in _user_bounds(page_users):
            def read(tx, after=after, until=until):
                return tx.run(cypher, after=after, until=until).single()

            record = session.execute_read(read)
            if record is not None:
                user_ids.extend(record["users"])
                counts.extend(map(len, record["items"]))
                items.extend(chain.from_iterable(record["items"]))
                weights.extend(chain.from_iterable(record["weights"]))
                times.extend(chain.from_iterable(record["times"]))
            if progress is not None:
                progress.update(1)
    # rows and columns sorted by id: the matrix (and so a seeded fit) is the same whatever order Neo4j's storage
    # gives the edges in (after deletes and writes it is not the order of insertion)
    item_ids = sorted(set(items))
    item_index = {item: col for col, item in enumerate(item_ids)}
    cols = np.fromiter((item_index[item] for item in items), dtype=np.int32, count=len(items))
    order = sorted(range(len(user_ids)), key=user_ids.__getitem__)  # the users of a page come in any order
    row_of = np.empty(len(user_ids), dtype=np.int32)
    row_of[order] = np.arange(len(user_ids), dtype=np.int32)
    rows = np.repeat(row_of, counts)
    user_ids = [user_ids[i] for i in order]
    values = np.asarray(weights, dtype=np.float32)
    edge_times = np.asarray(times, dtype=np.int64)
    del items, weights, times
    keep = _strongest(rows, cols, values, len(item_ids))
    dismissed = dismissed_items(content_type=content_type)
    if dismissed:  # a dismissed item is not a positive of that user any more, whatever edges they have to it
        user_index = {u: r for r, u in enumerate(user_ids)}
        banned = {user_index[u] * max(len(item_ids), 1) + item_index[i] for u, ids in dismissed.items()
                  if u in user_index for i in ids if i in item_index}
        if banned:
            keys = rows[keep].astype(np.int64) * max(len(item_ids), 1) + cols[keep]
            keep = keep[~np.isin(keys, np.fromiter(banned, dtype=np.int64, count=len(banned)))]
    matrix = sp.csr_matrix((values[keep], (rows[keep], cols[keep])), shape=(len(user_ids), len(item_ids)))
    seconds = time.perf_counter() - started
    logger.info("Extracted %d %s interactions (%d users, %d items, %d dismissals) in %.2fs (%.0f edges/s)",
                matrix.nnz, content_type.key, len(user_ids), len(item_ids), sum(map(len, dismissed.values())),
                seconds, matrix.nnz / seconds if seconds else 0.0)
    return Interactions(user_ids=user_ids, item_ids=item_ids, matrix=matrix, seconds=seconds, read_at=read_at,
                        untimed_edges=int((edge_times == UNTIMED).sum()), dismissed=dismissed, edge_cols=cols,
                        edge_weights=values, edge_times=edge_times)


def trending_totals(*, inter: Interactions, now: datetime, half_life_seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column of the interactions: (the summed weight of its edges with a created_at, each decayed by
    2 ** (-age / half_life) as of `now`; the summed weight of its edges without one), over every edge the
    extraction read (ai/trending.py): no second read of the graph."""
    n_items = len(inter.item_ids)
    timed = inter.edge_times != UNTIMED
    weights = inter.edge_weights.astype(np.float64)
    ages = now.timestamp() - inter.edge_times[timed].astype(np.float64)
    decayed = np.bincount(inter.edge_cols[timed], weights=weights[timed] * np.exp2(-ages / half_life_seconds),
                          minlength=n_items)
    untimed = np.bincount(inter.edge_cols[~timed], weights=weights[~timed], minlength=n_items)
    return decayed, untimed


def item_keys(*, content_type: ContentType) -> list[str]:
    """The key of every item of a type in the graph, interactions or not (as strings)."""
    ct = content_type
    records = graph.query(f"MATCH (i:{ct.label_expression}) WHERE i.{ct.id_property} IS NOT NULL "
                          f"RETURN collect(toString(i.{ct.id_property})) AS ids")
    return list(records[0]["ids"]) if records else []


def graph_now() -> datetime:
    """Neo4j's clock (the change feed compares edges' created_at with it)."""
    return graph.read("RETURN datetime() AS now")[0]["now"].to_native()


DISMISSED = "DISMISSED"  # (ParentUser)-[:DISMISSED {created_at}]->(item): "not interested", written by the feedback API


def dismissed_items(*, content_type: ContentType) -> dict[str, list[str]]:
    """{ParentUser uid: [item ids]} of every dismissal of a type."""
    ct = content_type
    rows = graph.read(f"MATCH (u:ParentUser)-[:{DISMISSED}]->(i:{ct.label_expression}) "
                       f"RETURN u.uid AS uid, collect(toString(i.{ct.id_property})) AS items")
    return {r["uid"]: r["items"] for r in rows}


def interactions_count(*, content_type: ContentType) -> int:
    """How many interaction edges of a type the graph holds, to plan a training run: the edges of its
    relationship types into its items, whatever they start from, which Neo4j answers from its count store
    (nothing read: 0.1 s at 10M edges, where matching the accounts too read every edge, ~5 s)."""
    ct = content_type
    records = graph.read(f"MATCH ()-[r:{'|'.join(ct.rel_types)}]->(:{ct.label_expression}) RETURN count(r) AS n")
    return int(records[0]["n"]) if records else 0


def key_param(ct: ContentType, ids: list[str]) -> list:
    """Item ids as the graph keys them (MAL's as integers; an id that cannot be one is left out)."""
    if not ct.id_is_int:
        return [str(i) for i in ids]
    out = []
    for i in ids:
        try:
            out.append(int(i))
        except (TypeError, ValueError):
            continue  # an id that cannot be a key of this type matches nothing
    return out


def _as_list(value) -> list:
    """A list field as the API gives it: a list of strings. ImdbMovie.genres is stored as the text of a Python list
    ("['Drama', 'Crime']") by MusicBud's importer: parsed; a bare string is one element; missing, []."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = None
            if isinstance(parsed, (list, tuple)):
                return [str(v) for v in parsed if v is not None]
        return [text] if text else []
    return [str(v) for v in value if v is not None]


def _as_int(value):
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value)
    digits = str(value).strip()[:4]  # a date such as "1998-05-01" gives its year
    return int(digits) if digits.isdigit() else None


def _as_float(value):
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


_KINDS = {"list": _as_list, "maps": lambda v: list(v or []), "int": _as_int, "float": _as_float,
          "str": lambda v: None if v is None else str(v)}


def _details(ct: ContentType, record: dict) -> dict:
    props = record["props"] or {}
    out = {"id": str(record["id"])}
    for f in ct.details:
        if f.kind == "join":
            out[f.name] = ", ".join(out.get(f.property) or []) or None
        else:
            out[f.name] = _KINDS[f.kind](props.get(f.name))
    return out


def items_by_ids(*, content_type: ContentType, ids: list[str]) -> dict[str, dict]:
    """Details of the given items in one query: {id: {"id", *detail fields}}; unknown ids are left out. Fields on
    related nodes (pictures, artists, albums) are read in the same query."""
    ct = content_type
    if not ids:
        return {}
    records = graph.read(  # one record of two lists: the driver costs ~20 us per record, whatever its size
        f"UNWIND $ids AS key {item_match(ct, 'key')} "
        f"RETURN collect(i.{ct.id_property}) AS ids, collect({details_projection(ct)}) AS props",
        ids=key_param(ct, ids),
    )
    if not records:
        return {}
    return {str(key): _details(ct, {"id": key, "props": props})
            for key, props in zip(records[0]["ids"], records[0]["props"])}


def items_popular(*, content_type: ContentType, n: int) -> list[dict]:
    """The n items with the most interactions (weight summed), with details and `popularity`."""
    ct = content_type
    rels = "|".join(ct.rel_types)
    records = graph.read(
        f"MATCH (:{ct.account_labels})-[r:{rels}]->(i:{ct.label_expression}) "
        f"WITH i, sum({weight_expression(ct)}) AS popularity ORDER BY popularity DESC, i.{ct.id_property} LIMIT $n "
        f"RETURN i.{ct.id_property} AS id, {details_projection(ct)} AS props, popularity",
        n=n,
    )
    return [{**_details(ct, r), "popularity": r["popularity"]} for r in records]


def user_history(*, content_type: ContentType, user_uid: str) -> list[str]:
    """Ids of the items a user has (any edge of the type), strongest first."""
    ct = content_type
    rels = "|".join(ct.rel_types)
    records = graph.read(
        f"MATCH {account_pattern(ct)}-[r:{rels}]->(i:{ct.label_expression}) WHERE u.uid = $uid "
        f"WITH i, max({weight_expression(ct)}) AS w ORDER BY w DESC RETURN i.{ct.id_property} AS id",
        uid=user_uid,
    )
    return [str(r["id"]) for r in records]


def user_uid_for_username(*, username: str) -> str | None:
    records = graph.read("MATCH (u:ParentUser {username: $username}) RETURN u.uid AS uid", username=username)
    return records[0]["uid"] if records else None


def users_directory() -> dict[str, dict]:
    """uid -> {username} of every app user (for buds and the username lookup kept with the models)."""
    records = graph.read(  # one record of [uid, username] pairs: a record per user cost 11 s at 500k users, this 3 s
        "MATCH (u:ParentUser) RETURN collect([u.uid, u.username]) AS pairs")
    return {uid: {"username": username} for uid, username in (records[0]["pairs"] if records else [])}


# --- what changed: the change feed and users' histories read again (app/services/live.py) -------------------

def _feed_branches(ct: ContentType) -> list[str]:
    """One UNION branch per edge type of a row (each seeks its own created_at index), and one for dismissals."""
    out = f"'{ct.model_key}' AS type, type(r) AS rel, u.uid AS user, toString(i.{ct.id_property}) AS item"
    branches = [
        f"MATCH (a:{ct.account_labels})-[r:{rel}]->(i:{ct.label_expression}) WHERE r.created_at > $since "
        f"WITH a, r, i ORDER BY r.created_at LIMIT $limit MATCH (u:ParentUser)-[:{ct.account_rels}]->(a) "
        f"RETURN {out}, {weight_expression(ct)} AS weight, r.created_at AS t, elementId(r) AS id"
        for rel in ct.rel_types]
    branches.append(
        f"MATCH (u:ParentUser)-[r:{DISMISSED}]->(i:{ct.label_expression}) WHERE r.created_at > $since "
        f"WITH u, r, i ORDER BY r.created_at LIMIT $limit "
        f"RETURN {out}, -1.0 AS weight, r.created_at AS t, elementId(r) AS id")
    return branches


def edge_counts(*, content_types: list[ContentType]) -> dict[str, int]:
    """{edge type: how many edges of it the graph holds}, every type of the table and DISMISSED, and under
    USER_LABEL how many app users it holds, all from Neo4j's count store (nothing is read: a fraction of a
    millisecond however big the graph)."""
    rels = sorted({rel for ct in content_types for rel in ct.rel_types} | {DISMISSED})
    record = graph.read("RETURN " + ", ".join(f"COUNT {{ ()-[:{rel}]->() }} AS `{rel}`" for rel in rels)
                        + f", COUNT {{ (:{USER_LABEL}) }} AS `{USER_LABEL}`")[0]
    return {key: int(record[key]) for key in [*rels, USER_LABEL]}


def edges_since(*, content_types: list[ContentType], since: datetime, limit: int = 5000) -> list[dict]:
    """Every edge of those types (and every dismissal: weight -1) whose created_at is after `since`, oldest first,
    at most `limit` per edge type and type: {type (model key), rel, user (ParentUser uid), item, weight, t
    (datetime), id (the edge's element id)}."""
    branches = " UNION ALL ".join(b for ct in content_types for b in _feed_branches(ct))
    records = graph.read(f"CALL () {{ {branches} }} RETURN type, rel, user, item, weight, t, id ORDER BY t",
                          since=since, limit=limit)
    return [{**r, "t": r["t"].to_native()} for r in records]


def histories_of_users(*, content_type: ContentType, uids: list[str]) -> dict[str, tuple[dict[str, float], list[str]]]:
    """{uid: ({item id: weight (the strongest edge)}, [dismissed item ids])} of the given app users' whole
    current history of a type, in one query; users the graph does not have are left out."""
    ct = content_type
    rels = "|".join(ct.rel_types)
    records = graph.read(
        f"UNWIND $uids AS uid MATCH (u:ParentUser {{uid: uid}}) "
        f"OPTIONAL MATCH (u)-[:{ct.account_rels}]->(:{ct.account_labels})-[r:{rels}]->(i:{ct.label_expression}) "
        f"WITH uid, u, i, max({weight_expression(ct)}) AS weight "
        f"WITH uid, u, collect(toString(i.{ct.id_property})) AS items, collect(weight) AS weights "
        f"OPTIONAL MATCH (u)-[:{DISMISSED}]->(d:{ct.label_expression}) "
        f"RETURN uid, items, weights, collect(toString(d.{ct.id_property})) AS dismissed",
        uids=list(uids))
    return {r["uid"]: (dict(zip(r["items"], map(float, r["weights"]))), r["dismissed"]) for r in records}


def history_sizes(*, content_types: list[ContentType], uids: list[str]) -> dict[str, dict[str, int]]:
    """{uid: {model key: how many items of the type the user has now (dismissed ones left out)}}, every type in
    ONE query answering one record of lists: a cheap check of whether a user's history may have changed (an
    unlike changes it) before it is read whole. Users the graph does not have are left out."""
    # the user's dismissed items are collected once (a user has few), not looked for from each item: an item's
    # side of the DISMISSED check expands its many edges (~2x the query's cost on the 1M demo graph)
    counts = ", ".join(
        f"COUNT {{ MATCH (u)-[:{ct.account_rels}]->(:{ct.account_labels})-[:{'|'.join(ct.rel_types)}]->"
        f"(i:{ct.label_expression}) WHERE NOT i IN dismissed RETURN DISTINCT i }} AS `{ct.model_key}`"
        for ct in content_types)
    record = graph.read(
        f"UNWIND $uids AS uid MATCH (u:ParentUser {{uid: uid}}) "
        f"WITH uid, u, [(u)-[:{DISMISSED}]->(d) | d] AS dismissed WITH uid, u, {counts} "
        f"RETURN collect(uid) AS uids, " + ", ".join(f"collect(`{ct.model_key}`) AS `{ct.model_key}`"
                                                      for ct in content_types),
        uids=list(uids))[0]
    return {uid: {ct.model_key: int(record[ct.model_key][k]) for ct in content_types}
            for k, uid in enumerate(record["uids"])}
