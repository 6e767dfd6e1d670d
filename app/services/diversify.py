"""The `diversity` parameter: an answer's candidates re-ranked by maximal marginal relevance (ai/diversity.py)
over the similarity of their items: the served model's item embeddings (a factor model's; new items' from
ai/cold_items.py) and their genres. Called only when diversity > 0: the default answer does none of this."""
from __future__ import annotations

from typing import TypeVar

import numpy as np

from ai.diversity import mmr_order, similarity_matrix
from ai.recommender_base import FactorModelBase
from ai.trained_model import TrainedModel
from app.services.filters import casefolded_genres
from app.services.new_items import NewItems

__all__ = ["diversified"]

T = TypeVar("T")


def diversified(*, ranked: list[T], columns: list[int], model: TrainedModel, new: NewItems, n: int,
                diversity: float) -> list[T]:
    """n of `ranked` (best first; columns[i]: the extended column of ranked[i]) in the order MMR takes them."""
    if diversity <= 0 or not ranked:
        return ranked[:n]
    cols = np.asarray(columns, dtype=np.int64)
    n_items = len(model.item_ids)
    embeddings = None
    if isinstance(model.model, FactorModelBase):
        factors = model.model.item_factors
        embeddings = np.zeros((cols.size, factors.shape[1] - 1), dtype=np.float32)
        trained = cols < n_items
        embeddings[trained] = factors[cols[trained], :-1]
        if new.cold is not None and (~trained).any():
            embeddings[~trained] = new.cold.factors[cols[~trained] - n_items, :-1]
    ids = new.all_ids if new.all_ids is not None else model.item_ids
    genres = [casefolded_genres(model.items.value(key, "genres") if c < n_items else
                                new.details.get(key, {}).get("genres"))
              for c, key in zip(cols.tolist(), ids[cols].tolist())]
    order = mmr_order(similarity_matrix(embeddings, genres), n, diversity)
    return [ranked[i] for i in order]
