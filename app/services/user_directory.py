"""Who an app user is in the graph: username -> ParentUser uid.

The directory saved beside the models answers from memory (model_registry); a username it does not hold (a
user newer than the last training) is looked up in the graph, off the event loop, and remembered. One the graph
does not have either is not asked about again until the change feed sees the graph's count of app users move
(a new user: app/services/live.py forgets every unknown username then, within the feed's interval), and for at
most MUSICBUD_UNKNOWN_USER_SECONDS (60 s: what bounds a user renamed, or added while another was removed, in one
interval): not a graph query per request, however many unknown usernames ask.
"""
from __future__ import annotations

import asyncio
import logging
import time

from django.conf import settings

from app.graph import GRAPH_ERRORS
from app.services import recommendation_data_service as data
from app.services.model_registry import registry

logger = logging.getLogger(__name__)


async def user_uid_aget(*, username: str) -> str | None:
    """user_uid_get for the event loop: from memory when the directory holds the user (or the graph said
    recently that it does not), else in a thread."""
    uid = (await registry.users_aget()).get(username)
    if uid is not None or time.monotonic() < _UNKNOWN.get(username, 0.0):
        return uid
    return await asyncio.to_thread(user_uid_get, username=username)


def user_uid_get(*, username: str) -> str | None:
    """The ParentUser uid of an app user, or None (no such ParentUser, or the graph is unreachable). A username
    the graph does not have is not asked about again for MUSICBUD_UNKNOWN_USER_SECONDS, or until
    unknown_users_forget()."""
    uid = registry.users().get(username)
    if uid is not None:
        return uid
    if time.monotonic() < _UNKNOWN.get(username, 0.0):
        return None
    try:
        uid = data.user_uid_for_username(username=username)
    except GRAPH_ERRORS as exc:
        logger.warning("Could not look up ParentUser %r in Neo4j (%s); serving as a new user", username, exc)
        return None
    if uid is not None:
        registry.remember_user(username, uid)
    else:
        if len(_UNKNOWN) > 100_000:
            _UNKNOWN.clear()
        _UNKNOWN[username] = time.monotonic() + settings.MUSICBUD_UNKNOWN_USER_SECONDS
    return uid


_UNKNOWN: dict[str, float] = {}  # username -> until when the graph is not asked about it again


def unknown_users_forget() -> None:
    """Ask the graph again about every username it did not have (the change feed calls it when the number of
    app users changed)."""
    _UNKNOWN.clear()


def usernames_by_uid() -> dict[str, str]:
    """ParentUser uid -> username, from the saved directory (for buds)."""
    return registry.usernames_by_uid()
