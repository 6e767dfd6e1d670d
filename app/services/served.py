"""What a content type is served from right now: its trained model and the fallback chain around it
(personalised -> cross-domain taste -> trending -> popular, ai/recommendation_engine.py; the personalised and cross-domain
links fold in a user whose history changed since training), or, while no model is trained, the graph's popular
items as a chain of one link.

`served_aget` is where the serving path decides between the event loop and a thread: the loaded models come
from memory (model_registry's aget), and only the graph's popular items (no model yet) are read in a thread.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from django.conf import settings

from ai.cold_items import ColdItems
from ai.popularity import PopularityRecommender
from ai.recommendation_engine import FallbackChain
from ai.taste import TasteModel
from ai.trained_model import TrainedModel
from app.content_types import ContentType
from app.errors import ServiceUnavailableError
from app.graph import GRAPH_ERRORS
from app.services import recommendation_data_service as data
from app.services.model_registry import TASTE_KEY, registry

logger = logging.getLogger(__name__)

GRAPH_POPULAR_ITEMS = 200  # read at most every MUSICBUD_MODEL_RELOAD_SECONDS while a type has no model


@dataclass(frozen=True)
class Served:
    """A type's model and chain. version: the model's (None for the graph's popular items); answers_version:
    everything the answers depend on besides the user (the type and taste model versions); cache_key: the
    answer cache's model key (the type's, or an experiment arm's model key: each keeps its own answers)."""

    ct: ContentType
    model: TrainedModel
    chain: FallbackChain
    version: str | None
    answers_version: str
    from_graph: bool = False
    taste: TasteModel | None = None
    between: tuple = ()  # the links between personalised and trending (cross-domain taste)
    cache_key: str = ""  # the answer cache's model key: the type's, or an experiment arm's model key

    def chain_for(self, *, trending: bool = True, cold: ColdItems | None = None) -> FallbackChain:
        """The chain with or without its trending link (a guest's popular items: without), and with the new
        items ranked by its personalised link (`cold`); `chain` is chain_for() (built once per model)."""
        if trending and cold is None:
            return self.chain
        return self.model.chain(title_property=self.ct.title_property, between=self.between,
                                fold_in=not self.from_graph, trending=trending, cold=cold)


async def served_aget(*, ct: ContentType, model_key: str | None = None) -> Served | None:
    """The type's model and chain; with `model_key` (an experiment arm's model, app/services/experiments.py),
    that model in the same chain, or None when it cannot be loaded."""
    model = await registry.aget(model_key or ct.model_key)
    if model is None:
        return None if model_key else await asyncio.to_thread(_graph_popular, ct)
    taste = await registry.aget(TASTE_KEY)
    taste = taste if isinstance(taste, TasteModel) else None
    between = (taste.cross_domain_link(ct.model_key, model),) if taste is not None else ()
    chain = model.chain(title_property=ct.title_property, between=between, fold_in=True)
    return Served(ct=ct, model=model, chain=chain, version=model.version, taste=taste, between=between,
                  answers_version=f"{model.version}+{taste.version if taste is not None else '-'}",
                  cache_key=model_key or ct.model_key)


_GRAPH_POPULAR: dict[str, tuple[float, Served]] = {}
_GRAPH_LOCK = threading.Lock()


def _graph_popular(ct: ContentType) -> Served:
    """The graph's most popular items of a type as a one-link chain (scores relative to the top item's), read
    again at most every MUSICBUD_MODEL_RELOAD_SECONDS."""
    with _GRAPH_LOCK:
        cached = _GRAPH_POPULAR.get(ct.model_key)
        if cached is not None and time.monotonic() - cached[0] < settings.MUSICBUD_MODEL_RELOAD_SECONDS:
            return cached[1]
        logger.warning("No trained %s model: serving popular items from the graph", ct.model_key)
        try:
            popular = data.items_popular(content_type=ct, n=GRAPH_POPULAR_ITEMS)
        except GRAPH_ERRORS as exc:
            logger.error("Neither a %s model nor Neo4j is available: %s", ct.model_key, exc)
            raise ServiceUnavailableError(
                f"No {ct.key} model is trained and the graph database is unreachable; try again later.") from exc
        weights = np.array([item.pop("popularity") for item in popular] or [1.0], dtype=np.float32)
        top = float(weights.max()) or 1.0
        matrix = sp.csr_matrix((weights[:len(popular)] / top, (np.zeros(len(popular), np.int64),
                                                              np.arange(len(popular)))), shape=(1, len(popular)))
        popularity = PopularityRecommender()
        if matrix.nnz:
            popularity.fit(matrix)
        model = TrainedModel(content_type=ct.model_key, model=popularity, popularity=popularity,
                             user_map={"\0graph": 0}, item_map={item["id"]: i for i, item in enumerate(popular)},
                             matrix=matrix, items={item["id"]: item for item in popular})
        stamp = time.monotonic()
        served = Served(ct=ct, model=model, chain=model.chain(title_property=ct.title_property), version=None,
                        answers_version=f"graph@{stamp}", from_graph=True, cache_key=ct.model_key)
        _GRAPH_POPULAR[ct.model_key] = (stamp, served)
        return served
