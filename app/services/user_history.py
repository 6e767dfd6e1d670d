"""A user's items of a type that the served model has not seen them with: a user newer than the model (the
model knows everything of the users it was trained on, so for them this is empty and reads nothing). Read from
the graph, off the event loop; never recommended to them."""
from __future__ import annotations

import asyncio
import logging

from app.content_types import ContentType
from app.graph import GRAPH_ERRORS
from app.services import recommendation_data_service as data
from app.services.served import Served

logger = logging.getLogger(__name__)


async def history_outside_model_aget(*, served: Served, uid: str | None) -> tuple[str, ...]:
    if uid is None or (not served.from_graph and uid in served.model.user_map):
        return ()
    return await asyncio.to_thread(_history_from_graph, served.ct, uid)


def _history_from_graph(ct: ContentType, uid: str) -> tuple[str, ...]:
    try:
        return tuple(data.user_history(content_type=ct, user_uid=uid))
    except GRAPH_ERRORS as exc:
        logger.warning("Could not read %s history of %s from Neo4j (%s); not filtering it", ct.key, uid, exc)
        return ()
