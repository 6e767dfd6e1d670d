"""Generic bulk writers of the MusicBud graph: items, app users with their accounts, and interactions.

One writer serves every row of the content-type table (app/content_types.py): labels, keys, account paths
and relationship types come from the table, never from the caller's strings. Relationship types cannot be
Cypher parameters, so rows are grouped by type and each group runs its own statement, built from the table
after the type was checked against it.

Every write is an `UNWIND $rows` statement sent in batches (10k rows by default), each batch its own
transaction (app/graph.py `write_batches`). Everything is a MERGE: writing the same rows twice changes nothing.

Conventions (documented here because every importer and the demo seed rely on them): the writers write the
MusicBud graph's own shape (musicbud/backend app/db_models), so what they write *is* a MusicBud graph.
- an app user is `(:ParentUser {uid, username, email, ...})`; its account on a provider is a node of the
  table's account labels (neomodel's inherited ones too: `:User:MalUser`), keyed as MusicBud keys it:
  `ImdbUser {user_id: "imdb:<uid>"}` (a string), `MalUser {user_id: <int>}` (the MAL user id when the row
  gives it, else a stable 63-bit number derived from the ParentUser uid), `SpotifyUser {uid: "spotify:<uid>"}`;
  reached through the table's account rel. An existing account of that label on the user is reused instead.
- items carry MusicBud's labels (`:LikedItem:Track:SpotifyTrack`); item links (a track PERFORMED_BY its
  artists, BELONGS_TO its album) are item_links_upsert rows.
- our edges carry `created_at` (a Neo4j DATETIME, UTC; MusicBud's own edges carry no property at all, and the
  service works with both). A row's `created_at` (an aware datetime or epoch seconds) is stored as given; a
  row without one keeps the edge's existing `created_at`, or gets the time of the write when the edge is new
  (so a second import changes nothing). `timed=False` writes edges without any property, as MusicBud does.
- edge types weighed by an edge property (TOP_ANIME's `score`, RATED's `rating`) store the row's `score` under
  that name; a row without one removes it (the edge then weighs as the table says). Other types store none.
- an item row's null/missing property never erases a property already present: `SET n += {non-null props}`;
  `fill_only` keeps present properties as they are and only fills the missing ones.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

import neo4j.time

from app import graph
from app.content_types import ACCOUNTS, USER_KEY, USER_LABEL, Account, ContentType

BATCH_SIZE = 10_000
CHUNK_SIZE = 200_000  # interactions are grouped by type and checked one chunk at a time (bounded memory)

# row.t (epoch seconds or null) -> the edge's created_at; `{var}` is the edge variable. Rows without a time
# carry row.now (the write's time) instead, so the statement text never changes (Neo4j caches its plan).
_CREATED_AT = ("CASE WHEN row.t IS NULL THEN coalesce({var}.created_at, datetime({{epochSeconds: row.now}})) "
               "ELSE datetime({{epochSeconds: row.t}}) END")

_USER_RESERVED = {"uid", "accounts", "created_at"}


class GraphWriteError(ValueError):
    """Rows that cannot be written as given (unknown relationship type, user or item): nothing was written."""


def account_of(label: str) -> Account:
    account = ACCOUNTS.get(label)
    if account is None:
        raise GraphWriteError(f"unknown account label {label!r}; known: {', '.join(ACCOUNTS)}")
    return account


def account_key(*, user_uid: str, account_label: str) -> str | int:
    """The key of the account node the writers create for an app user: "imdb:ml-1" for ImdbUser.user_id of
    ml-1; for an integer key (MalUser.user_id), a stable number from the uid (SHA-256, 63 bits)."""
    account = account_of(account_label)
    if account.key_is_int:
        return int.from_bytes(hashlib.sha256(f"{account.provider}:{user_uid}".encode()).digest()[:8], "big") >> 1
    return f"{account.provider}:{user_uid}"


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
    """MERGE items on their key (a new one gets MusicBud's labels) and set their properties; returns the number
    of rows written.

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
    labels = "".join(f":{label}" for label in ct.item_labels if label != ct.label)
    merge = f"UNWIND $rows AS row MERGE (n:{ct.label} {{{ct.id_property}: row.id}}) " + \
        (f"ON CREATE SET n{labels} " if labels else "")
    if fill_only:  # `old` is a snapshot taken before the first SET: setting it again restores what was there
        cypher = merge + "WITH n, row, properties(n) AS old SET n += row.p SET n += old"
    else:
        cypher = merge + "SET n += row.p"
    return graph.write_batches(cypher, payload, batch_size=batch_size, progress=progress)


def users_upsert(*, rows: list[dict], progress=None, batch_size: int = BATCH_SIZE) -> int:
    """MERGE app users (ParentUser on uid), their accounts and the CONNECTED_TO_* edges; returns rows written.

    A row is `{"uid", "username", "email"?, "accounts": [account labels] or {label: key}, "created_at"?,
    **properties}`; every key but uid/accounts/created_at is a ParentUser property (None values are left out).
    Accounts are labels of the table (ImdbUser, MalUser, SpotifyUser, LastfmUser, YtmusicUser), with their
    key when the row knows it (a MAL user id), else account_key's. `created_at` dates the CONNECTED_TO_* edges.
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
        accounts = row.get("accounts") or ()
        keys = accounts if isinstance(accounts, dict) else dict.fromkeys(accounts)
        for label, key in keys.items():
            account = account_of(label)
            key = account_key(user_uid=str(uid), account_label=label) if key is None else key
            if account.key_is_int and (isinstance(key, bool) or not isinstance(key, int)):
                raise GraphWriteError(f"{label}.{account.key} must be an integer, got {key!r} for user {uid}")
            entry = {"uid": str(uid), "a": key, "au": f"{account.provider}:{uid}", "t": t}
            if t is None:
                entry["now"] = now
            by_label[label].append(entry)
    written = graph.write_batches(
        f"UNWIND $rows AS row MERGE (p:{USER_LABEL} {{{USER_KEY}: row.uid}}) SET p += row.p",
        users, batch_size=batch_size, progress=progress,
    )
    for label, account_rows in by_label.items():
        account = ACCOUNTS[label]
        extra = "".join(f":{other}" for other in account.all_labels if other != label)
        uid = " ON CREATE SET a.uid = row.au" if account.key != "uid" and "User" in account.all_labels else ""
        cypher = (
            f"UNWIND $rows AS row MATCH (p:{USER_LABEL} {{{USER_KEY}: row.uid}}) "
            # an account already connected (an existing MusicBud user) is kept, not duplicated
            f"WITH row, p WHERE NOT EXISTS {{ (p)-[:{account.rel}]->(:{label}) }} "
            f"MERGE (a:{label} {{{account.key}: row.a}}){uid} "
            + (f"SET a{extra} " if extra else "")
            + f"MERGE (p)-[c:{account.rel}]->(a) SET c.created_at = {_CREATED_AT.format(var='c')}"
        )
        graph.write_batches(cypher, account_rows, batch_size=batch_size, progress=progress)
    return written


def item_links_upsert(*, content_type: ContentType, rel: str, target: ContentType, rows: list[dict],
                      progress=None, batch_size: int = BATCH_SIZE) -> int:
    """MERGE (item)-[rel]->(target item) for rows {"item_id", "target_id"} (a track PERFORMED_BY its artists,
    BELONGS_TO its album); both items must exist (a missing one is skipped). Returns the rows sent."""
    if not rel.replace("_", "").isalnum() or not rel.isupper():
        raise GraphWriteError(f"{rel!r} is not a relationship type (UPPER_SNAKE_CASE)")
    payload = [{"i": _item_key(content_type, r.get("item_id")), "t": _item_key(target, r.get("target_id"))}
               for r in rows]
    cypher = (f"UNWIND $rows AS row MATCH (i:{content_type.label} {{{content_type.id_property}: row.i}}) "
              f"MATCH (t:{target.label} {{{target.id_property}: row.t}}) MERGE (i)-[:{rel}]->(t)")
    return graph.write_batches(cypher, payload, batch_size=batch_size, progress=progress)


def _interaction_statement(ct: ContentType, account: Account, rel: str, *, timed: bool) -> str:
    prop = ct.edges[rel].edge_property
    sets = []
    if timed:
        sets.append(f"r.created_at = {_CREATED_AT.format(var='r')}")
    if prop:
        sets.append(f"r.{prop} = row.s")
    return (
        f"UNWIND $rows AS row "
        f"MATCH (a:{account.label} {{{account.key}: row.a}}) "
        f"MATCH (i:{ct.label} {{{ct.id_property}: row.i}}) "
        f"MERGE (a)-[r:{rel}]->(i)" + (f" SET {', '.join(sets)}" if sets else "")
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


def _accounts_and_missing_items(ct: ContentType, account: Account, users: list[str], items: list
                                ) -> tuple[dict[str, Any], list]:
    """(ParentUser uid -> key of its account of that kind, the first few `items` absent from the graph).

    One query, one record of lists (a record per user would cost a round trip per thousand users). A user
    with several accounts of the kind gets the smallest key.
    """
    record = graph.read(
        f"CALL () {{ UNWIND $users AS id "
        f"MATCH (:{USER_LABEL} {{{USER_KEY}: id}})-[:{account.rel}]->(a:{account.label}) "
        f"WITH id, min(a.{account.key}) AS account RETURN collect(id) AS ids, collect(account) AS accounts }} "
        f"CALL () {{ UNWIND $items AS key OPTIONAL MATCH (i:{ct.label} {{{ct.id_property}: key}}) "
        f"WITH key, i WHERE i IS NULL RETURN collect(key)[..5] AS missing }} "
        f"RETURN ids, accounts, missing",
        users=users, items=items,
    )[0]
    return dict(zip(record["ids"], record["accounts"])), record["missing"]


def interactions_upsert(*, content_type: ContentType, rows: Iterable[dict], progress=None, timed: bool = True,
                        batch_size: int = BATCH_SIZE, chunk_size: int = CHUNK_SIZE) -> dict[str, int]:
    """MERGE one edge of type `rel` from the user's account to the item per row; returns edges per type.

    A row is `{"user_uid", "item_id", "rel", "account"?, "created_at"?, "score"?}`; `user_uid` is the
    ParentUser uid (its account must exist: users_upsert), `account` the account label (default: the type's
    first, e.g. SpotifyUser for music), `rel` one of the table's edge types for this content type. Rows are
    checked a chunk at a time (types, accounts, users, items) before that chunk is written: a chunk with an
    unknown type, user or item raises GraphWriteError and writes nothing. Writing twice changes nothing.
    `timed=False` writes the edges without created_at (MusicBud's own edges carry no property).
    """
    ct = content_type
    by_label = {a.label: a for a in ct.accounts}
    now = _now()
    counts: dict[str, int] = {rel: 0 for rel in ct.edges}
    for chunk in _chunks(rows, chunk_size):
        groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
        users: dict[str, set[str]] = defaultdict(set)
        items: set = set()
        for row in chunk:
            rel = row.get("rel")
            if rel not in ct.edges:
                raise GraphWriteError(
                    f"{rel!r} is not an edge type of {ct.key}; expected one of {', '.join(ct.edges)}")
            label = row.get("account") or ct.account.label
            if label not in by_label:
                raise GraphWriteError(f"{label!r} is not an account of {ct.key}; expected one of "
                                      f"{', '.join(by_label)}")
            user = str(row["user_uid"])
            item = _item_key(ct, row.get("item_id"))
            score = row.get("score")
            t = _epoch_seconds(row.get("created_at"))
            payload = {"a": user, "i": item, "t": t}
            if score is not None:
                payload["s"] = float(score)
            if t is None:
                payload["now"] = now
            groups[(label, rel)].append(payload)
            users[label].add(user)
            items.add(item)
        # resolve every user's account once (then each row seeks the account by its key) and check the items
        accounts: dict[str, dict[str, Any]] = {}
        for label, wanted in users.items():
            accounts[label], missing_items = _accounts_and_missing_items(ct, by_label[label], sorted(wanted),
                                                                         sorted(items))
            missing_users = sorted(wanted - accounts[label].keys())[:5]
            if missing_users or missing_items:
                parts = []
                if missing_users:
                    parts.append(f"users without a {label} account: {', '.join(missing_users)}")
                if missing_items:
                    parts.append(f"unknown {ct.label} ids: {', '.join(map(str, missing_items))}")
                raise GraphWriteError(f"cannot write {ct.key} interactions; " + "; ".join(parts))
        for (label, rel), rel_rows in groups.items():
            for r in rel_rows:
                r["a"] = accounts[label][r["a"]]
            rel_rows.sort(key=lambda r: r["a"])  # one account's edges together in a batch
            statement = _interaction_statement(ct, by_label[label], rel, timed=timed)
            counts[rel] += graph.write_batches(statement, rel_rows, batch_size=batch_size, progress=progress)
    return {rel: n for rel, n in counts.items() if n}
