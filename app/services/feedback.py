"""Feedback the graph does not hold otherwise: a user dismissing an item ("not interested"), clicking one,
being shown one. Stored in Neo4j beside the MusicBud edges, one edge per (user, item) whatever the number of
events, so the graph grows with distinct pairs, never with traffic:

    (ParentUser)-[:DISMISSED {created_at}]->(item)          never recommended to that user again; at the next
                                                             training the pair is no positive of theirs
    (ParentUser)-[:CLICKED {count, first_at, last_at}]->(item)    counters, for measuring recommendations
    (ParentUser)-[:IMPRESSED {count, first_at, last_at}]->(item)  (the A/B reports)

A batch is checked whole (the user and every item must exist) before anything is written, and written in one
transaction: it is stored entirely or not at all. A dismissal reaches this worker's answers at once and the
other workers' within the change feed's interval (app/services/live.py reads DISMISSED edges too).
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

from app import graph
from app.content_types import ContentType, item_match
from app.errors import ApplicationError, UnknownItemError
from app.services import recommendation_data_service as data
from app.services.experiment_outcomes import outcomes
from app.services.experiments import experiments_running_aget
from app.services.live import live
from app.services.user_directory import user_uid_get

logger = logging.getLogger(__name__)

EVENTS = ("dismiss", "click", "impression")
MAX_BATCH = 100
_COUNTED = {"click": "CLICKED", "impression": "IMPRESSED"}


class UnknownUserProfileError(ApplicationError):
    status_code = 404


@dataclass(frozen=True)
class FeedbackEvent:
    content_type: ContentType
    item_id: str
    event: str  # one of EVENTS


async def feedback_record(*, username: str, events: list[FeedbackEvent]) -> dict[str, int]:
    """Store a batch of feedback (in a worker thread: it reads and writes the graph); {event: how many}. Clicks
    and dismissals of a type with a running experiment count for the user's arm (in memory; written in batches)."""
    counts = await asyncio.to_thread(_record, username, events)
    running = await experiments_running_aget()
    for key, experiment in running.items():
        clicks = sum(1 for e in events if e.content_type.model_key == key and e.event == "click")
        dismissals = sum(1 for e in events if e.content_type.model_key == key and e.event == "dismiss")
        if clicks or dismissals:
            outcomes.feedback(experiment=experiment, arm=experiment.arm_for(username), clicks=clicks,
                              dismissals=dismissals)
    return counts


def _record(username: str, events: list[FeedbackEvent]) -> dict[str, int]:
    uid = user_uid_get(username=username)
    if uid is None:
        raise UnknownUserProfileError(f"No MusicBud profile (ParentUser) named {username!r} in the graph: "
                                      "feedback needs one.")
    by_type: dict[str, tuple[ContentType, set[str]]] = {}
    for e in events:
        by_type.setdefault(e.content_type.key, (e.content_type, set()))[1].add(e.item_id)
    for ct, ids in by_type.values():
        found = data.items_by_ids(content_type=ct, ids=sorted(ids))
        missing = sorted(ids - found.keys())
        if missing:
            raise UnknownItemError(f"Unknown {ct.key} id(s): {', '.join(missing[:10])}; nothing was stored.")
    statements = []
    for (key, event), rows in _grouped(events).items():
        ct = by_type[key][0]
        statements.append((_statement(ct, event), [{"i": data.key_param(ct, [item])[0], "n": n}
                                                    for item, n in rows.items()]))
    graph.write_all(statements, uid=uid)
    for e in events:  # this worker knows at once; the others from the change feed
        if e.event == "dismiss":
            live.dismiss(uid, e.content_type.model_key, e.item_id)
    counts = Counter(e.event for e in events)
    logger.info("Feedback of %s: %s", uid, dict(counts))
    return {event: counts.get(event, 0) for event in EVENTS}


def _grouped(events: list[FeedbackEvent]) -> dict[tuple[str, str], Counter]:
    out: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for e in events:
        out[(e.content_type.key, e.event)][e.item_id] += 1
    return out


def _statement(ct: ContentType, event: str) -> str:
    """One UNWIND statement of the batch's events of one kind for one type, $uid the user's."""
    head = ("MATCH (p:ParentUser {uid: $uid}) UNWIND $rows AS row WITH p, row, row.i AS key "
            f"{item_match(ct, 'key', 'i')} ")
    if event == "dismiss":
        return head + "MERGE (p)-[d:DISMISSED]->(i) ON CREATE SET d.created_at = datetime()"
    return (head + f"MERGE (p)-[c:{_COUNTED[event]}]->(i) ON CREATE SET c.count = 0, c.first_at = datetime() "
            "SET c.count = c.count + row.n, c.last_at = datetime()")
