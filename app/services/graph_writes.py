"""Generic bulk writers of the MusicBud graph: items, app users with their accounts, and interactions.

One writer serves every row of the content-type table (app/content_types.py): labels, keys, account paths
and relationship types come from the table, never from the caller's strings. Relationship types cannot be
Cypher parameters, so rows are grouped by type and each group runs its own statement, built from the table
after the type was checked against it.

Every write is an `UNWIND $rows` statement sent in batches (10k rows by default), each batch its own
transaction (app/graph.py `write_batches`). Everything is a MERGE: writing the same rows twice changes nothing.

Conventions (documented here because every importer and the demo seed rely on them):
- an app user is `(:ParentUser {uid, username, email, ...})`; its account on a provider is
  `(:<account_label> {uid: "<provider>:<ParentUser uid>"})`, e.g. `(:ImdbUser {uid: "imdb:ml-1"})`, reached
  through the table's `account_rel`. An existing account of that label on the user is reused instead.
- every edge carries `created_at` (a Neo4j DATETIME, UTC). A row's `created_at` (an aware datetime or
  epoch seconds) is stored as given; a row without one keeps the edge's existing `created_at`, or gets the
  time of the write when the edge is new (so a second import changes nothing).
- score-weighted edge types (weight None in the table, e.g. TOP_ANIME) store the row's `score`; a row
  without a score removes it (the edge then weighs DEFAULT_SCORE_WEIGHT). Other types store no score.
- an item row's null/missing property never erases a property already present: `SET n += {non-null props}`;
  `fill_only` keeps present properties as they are and only fills the missing ones.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import neo4j.time

from app import graph
from app.content_types import ACCOUNT_LABELS, USER_KEY, USER_LABEL, ContentType

BATCH_SIZE = 10_000
CHUNK_SIZE = 200_000  # interactions are grouped by type and checked one chunk at a time (bounded memory)

# row.t (epoch seconds or null) -> the edge's created_at; `{var}` is the edge variable. Rows without a time
# carry row.now (the write's time) instead, so the statement text never changes (Neo4j caches its plan).
_CREATED_AT = ("CASE WHEN row.t IS NULL THEN coalesce({var}.created_at, datetime({{epochSeconds: row.now}})) "
               "ELSE datetime({{epochSeconds: row.t}}) END")

_USER_RESERVED = {"uid", "accounts", "created_at"}


class GraphWriteError(ValueError):
    """Rows that cannot be written as given (unknown relationship type, user or item): nothing was written."""


def account_uid(*, user_uid: str, account_label: str) -> str:
    """The uid of the account node the writers create for an app user: "imdb:ml-1" for ImdbUser of ml-1."""
    rel = ACCOUNT_LABELS.get(account_label)
    if rel is None:
        raise GraphWriteError(f"unknown account label {account_label!r}; known: {', '.join(ACCOUNT_LABELS)}")
    return f"{rel.removeprefix('CONNECTED_TO_').lower()}:{user_uid}"


def _epoch_seconds(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    if isinstance(value, bool):
        raise GraphWriteError(f"created_at {value!r} is neither a datetime nor epoch seconds")
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, neo4j.time.DateTime):  # read back from the graph
        return _epoch_seconds(value.to_native())
    raise GraphWriteError(f"created_at {value!r} is neither a datetime nor epoch seconds")


def _now() -> int:
    return int(datetime.now(timezone.utc).timestamp())


def _item_key(ct: ContentType, value: Any) -> Any:
    if value is None:
        raise GraphWriteError(f"a {ct.label} row has no {ct.id_property}")
    if ct.id_is_int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise GraphWriteError(f"{ct.label}.{ct.id_property} {value!r} is not an integer")
        try:
            return int(value)
        except ValueError:
            raise GraphWriteError(f"{ct.label}.{ct.id_property} {value!r} is not an integer") from None
    return str(value)


def items_upsert(*, content_type: ContentType, rows: list[dict], progress=None, fill_only: bool = False,
                 batch_size: int = BATCH_SIZE) -> int:
    """MERGE items on their key and set their properties; returns the number of rows written.

    A row is `{<id_property>: key, **properties}` (e.g. {"imdb_id": "tt0114709", "title": "Toy Story"}).
    None values are left out, so they never erase a property already present. With `fill_only`, a property
    the node already has is kept too: the rows only fill what is missing (catalogues merged from several
    files). `progress` is anything with `update(n)` (a tqdm bar).
    """
    ct = content_type
    payload = []
    for row in rows:
        props = {k: v for k, v in row.items() if k != ct.id_property and v is not None}
        payload.append({"id": _item_key(ct, row.get(ct.id_property)), "p": props})
    merge = f"UNWIND $rows AS row MERGE (n:{ct.label} {{{ct.id_property}: row.id}}) "
    if fill_only:  # `old` is a snapshot taken before the first SET: setting it again restores what was there
        cypher = merge + "WITH n, row, properties(n) AS old SET n += row.p SET n += old"
    else:
        cypher = merge + "SET n += row.p"
    return graph.write_batches(cypher, payload, batch_size=batch_size, progress=progress)


def users_upsert(*, rows: list[dict], progress=None, batch_size: int = BATCH_SIZE) -> int:
    """MERGE app users (ParentUser on uid), their accounts and the CONNECTED_TO_* edges; returns rows written.

    A row is `{"uid", "username", "email"?, "accounts": [account labels], "created_at"?, **properties}`;
    every key but uid/accounts/created_at is a ParentUser property (None values are left out). Accounts are
    labels of the table (ImdbUser, MalUser, SpotifyUser). `created_at` dates the CONNECTED_TO_* edges.
    `progress` advances by one per row for the users and again per account.
    """
    now = _now()
    users = []
    by_label: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        uid = row.get("uid")
        if not uid or not row.get("username"):
            raise GraphWriteError(f"a user row needs a uid and a username: {row!r}")
        t = _epoch_seconds(row.get("created_at"))
        props = {k: v for k, v in row.items() if k not in _USER_RESERVED and v is not None}
        users.append({"uid": str(uid), "p": props})
        for label in row.get("accounts") or ():
            account = {"uid": str(uid), "a": account_uid(user_uid=str(uid), account_label=label), "t": t}
            if t is None:
                account["now"] = now
            by_label[label].append(account)
    written = graph.write_batches(
        f"UNWIND $rows AS row MERGE (p:{USER_LABEL} {{{USER_KEY}: row.uid}}) SET p += row.p",
        users, batch_size=batch_size, progress=progress,
    )
    for label, account_rows in by_label.items():
        rel = ACCOUNT_LABELS[label]  # validated by account_uid above
        cypher = (
            f"UNWIND $rows AS row MATCH (p:{USER_LABEL} {{{USER_KEY}: row.uid}}) "
            # an account already connected (an existing MusicBud user) is kept, not duplicated
            f"WITH row, p WHERE NOT EXISTS {{ (p)-[:{rel}]->(:{label}) }} "
            f"MERGE (a:{label} {{uid: row.a}}) "
            f"MERGE (p)-[c:{rel}]->(a) SET c.created_at = {_CREATED_AT.format(var='c')}"
        )
        graph.write_batches(cypher, account_rows, batch_size=batch_size, progress=progress)
    return written


def _interaction_statement(ct: ContentType, rel: str) -> str:
    score = ", r.score = row.s" if ct.edges[rel] is None else ""
    return (
        f"UNWIND $rows AS row "
        f"MATCH (a:{ct.account_label} {{uid: row.a}}) "
        f"MATCH (i:{ct.label} {{{ct.id_property}: row.i}}) "
        f"MERGE (a)-[r:{rel}]->(i) "
        f"SET r.created_at = {_CREATED_AT.format(var='r')}{score}"
    )


def _chunks(rows: Iterable[dict], size: int) -> Iterator[list[dict]]:
    chunk: list[dict] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _accounts_and_missing_items(ct: ContentType, users: list[str], items: list) -> tuple[dict[str, str], list]:
    """(ParentUser uid -> uid of its account of this type, the first few `items` absent from the graph).

    One query, one record of lists (a record per user would cost a round trip per thousand users). A user
    with several accounts of the type gets the smallest uid.
    """
    record = graph.query(
        f"CALL () {{ UNWIND $users AS id "
        f"MATCH (:{USER_LABEL} {{{USER_KEY}: id}})-[:{ct.account_rel}]->(a:{ct.account_label}) "
        f"WITH id, min(a.uid) AS account RETURN collect(id) AS ids, collect(account) AS accounts }} "
        f"CALL () {{ UNWIND $items AS key OPTIONAL MATCH (i:{ct.label} {{{ct.id_property}: key}}) "
        f"WITH key, i WHERE i IS NULL RETURN collect(key)[..5] AS missing }} "
        f"RETURN ids, accounts, missing",
        users=users, items=items,
    )[0]
    return dict(zip(record["ids"], record["accounts"])), record["missing"]


def interactions_upsert(*, content_type: ContentType, rows: Iterable[dict], progress=None,
                        batch_size: int = BATCH_SIZE, chunk_size: int = CHUNK_SIZE) -> dict[str, int]:
    """MERGE one edge of type `rel` from the user's account to the item per row; returns edges per type.

    A row is `{"user_uid", "item_id", "rel", "created_at"?, "score"?}`; `user_uid` is the ParentUser uid
    (its account of this type must exist: users_upsert), `rel` one of the table's edge types for this content
    type. Rows are checked a chunk at a time (types, users, items) before that chunk is written: a chunk with
    an unknown type, user or item raises GraphWriteError and writes nothing. Writing twice changes nothing.
    """
    ct = content_type
    now = _now()
    counts: dict[str, int] = {rel: 0 for rel in ct.edges}
    for chunk in _chunks(rows, chunk_size):
        groups: dict[str, list[dict]] = defaultdict(list)
        users: set[str] = set()
        items: set = set()
        for row in chunk:
            rel = row.get("rel")
            if rel not in ct.edges:
                raise GraphWriteError(
                    f"{rel!r} is not an edge type of {ct.key}; expected one of {', '.join(ct.edges)}")
            user = str(row["user_uid"])
            item = _item_key(ct, row.get("item_id"))
            score = row.get("score")
            t = _epoch_seconds(row.get("created_at"))
            payload = {"a": user, "i": item, "t": t}
            if score is not None:
                payload["s"] = float(score)
            if t is None:
                payload["now"] = now
            groups[rel].append(payload)
            users.add(user)
            items.add(item)
        # resolve every user's account once (then each row seeks the account by its uid) and check the items
        accounts, missing_items = _accounts_and_missing_items(ct, sorted(users), sorted(items))
        missing_users = sorted(users - accounts.keys())[:5]
        if missing_users or missing_items:
            parts = []
            if missing_users:
                parts.append(f"users without a {ct.account_label} account: {', '.join(missing_users)}")
            if missing_items:
                parts.append(f"unknown {ct.label} ids: {', '.join(map(str, missing_items))}")
            raise GraphWriteError(f"cannot write {ct.key} interactions; " + "; ".join(parts))
        for rel, rel_rows in groups.items():
            for r in rel_rows:
                r["a"] = accounts[r["a"]]
            rel_rows.sort(key=lambda r: r["a"])  # one account's edges together in a batch
            counts[rel] += graph.write_batches(_interaction_statement(ct, rel), rel_rows, batch_size=batch_size,
                                               progress=progress)
    return {rel: n for rel, n in counts.items() if n}
