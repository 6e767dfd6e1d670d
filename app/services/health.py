"""Liveness: whether Neo4j answers, whether the shared Redis does ("off" without one; "down" makes the status
"degraded": serving goes on, trainings refuse), and each served model's version and trained_at."""
from __future__ import annotations

import asyncio
import os

from app import graph
from app.content_types import CONTENT_TYPES
from app.services.model_registry import TASTE_KEY, registry
from app.services.shared_state import redis_state

MODEL_KEYS = [ct.model_key for ct in CONTENT_TYPES] + [TASTE_KEY]


def models_status() -> dict[str, dict | None]:
    """{model key: {version, trained_at} or None} of every model this process serves (may read manifests)."""
    return {key: registry.version(key) for key in MODEL_KEYS}


async def health_get() -> dict:
    """Asks Neo4j (a round trip) and reads the manifests: in a worker thread."""
    return await asyncio.to_thread(_health)


def _health() -> dict:
    from app.services.live import live, types_followed

    redis = redis_state()
    return {"status": "degraded" if redis == "down" else "ok", "neo4j": "up" if graph.is_reachable() else "down",
            "redis": redis, "models": models_status(),
            "change_feed": {"worker": os.getpid(), "polls": live.polls, "lag_seconds": live.lag_seconds,
                            "followed": types_followed()}}
