"""The seed's serving design, kept only to measure the service against (bench/serving.py).

Per request the seed loaded the type's joblib files (model, user map, item map, matrix), called LightFM's
`predict` on every item for the user, sorted every score, and read the top items' details from Neo4j. This
does the same with today's files: each file's HMAC is still checked before it is unpickled (nothing
unverified is ever unpickled), and a LightFM object is rebuilt from the saved factors, since the service
keeps factors rather than LightFM objects. When the selection serves a model with no LightFM factors (a blend,
EASE), that model's own score of every item stands in for `predict`: still everything loaded, scored and
sorted again per request. Mounted only when MUSICBUD_BENCH_BASELINE is set (app/urls.py).
"""
from __future__ import annotations

import asyncio
import io
from pathlib import Path

import joblib
import numpy as np
from django.conf import settings

from ai import model_store
from ai.recommender_base import FactorModelBase
from app.errors import ServiceUnavailableError
from app.services import recommendation_data_service as data
from app.content_types import content_type_get
from app.services.model_registry import hmac_key
from app.services.user_directory import user_uid_get

_SEED_PARTS = ("model", "user_map", "item_map", "matrix")  # the seed's four files


def _load_verified(model_key: str) -> dict:
    directory = Path(settings.MUSICBUD_MODEL_DIR)
    try:
        blobs = model_store.verified_files(directory, model_key, hmac_key=hmac_key())
    except model_store.ModelNotFoundError:
        raise ServiceUnavailableError(f"No {model_key} model is trained yet.") from None
    return {part: joblib.load(io.BytesIO(blobs[part])) for part in _SEED_PARTS}


def _lightfm_from_factors(recommender):
    from lightfm import LightFM

    user_factors, item_factors = recommender.user_factors, recommender.item_factors
    d = item_factors.shape[1] - 1
    lfm = LightFM(no_components=d)
    lfm._initialize(d, item_factors.shape[0], user_factors.shape[0])
    lfm.item_embeddings = np.array(item_factors[:, :d], order="C")  # writeable copies: LightFM wants them
    lfm.item_biases = np.array(item_factors[:, d])
    lfm.user_embeddings = np.array(user_factors[:, :d], order="C")
    lfm.user_biases = np.zeros(user_factors.shape[0], dtype=np.float32)
    return lfm


async def recommendations_seed_design(*, username: str, content_type: str, n: int) -> list[dict]:
    """The n best items as the seed computed them: everything loaded and scored again for every request (in a
    worker thread, as the seed's synchronous view did)."""
    return await asyncio.to_thread(_seed_design, username, content_type, n)


def _seed_design(username: str, content_type: str, n: int) -> list[dict]:
    ct = content_type_get(key=content_type)
    uid = user_uid_get(username=username)
    files = _load_verified(ct.model_key)
    row = files["user_map"].get(uid) if uid is not None else None
    if row is None:
        raise ServiceUnavailableError("The seed's design only served users the model knows.")
    model = files["model"]["model"]
    if isinstance(model, FactorModelBase):
        lfm = _lightfm_from_factors(model)
        n_items = len(files["item_map"])
        scores = lfm.predict(int(row), np.arange(n_items, dtype=np.int32), num_threads=1)
    else:  # the selection chose a model with no LightFM factors (a blend, EASE): its own score of every item
        scores = np.array(model.score_items(np.array([int(row)]))[0], dtype=np.float64)
    scores[files["matrix"][row].indices] = -np.inf  # what the user already has
    item_ids = {col: key for key, col in files["item_map"].items()}
    top = [item_ids[int(i)] for i in np.argsort(-scores)[:n]]
    details = data.items_by_ids(content_type=ct, ids=top)
    return [{**details.get(i, {"id": i}), "recommendation_score": round(float(scores[files["item_map"][i]]), 6),
             "reason": "personalised", "because": []} for i in top]
