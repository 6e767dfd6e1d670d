"""Promotions pin a type's model: after an engine arm of an experiment is promoted (app/services/experiments.py's
experiment_promote), each training of that type fits the arm's engine and parameters instead of selecting among the
candidates (app/services/training.py), until staff promote another engine arm of the type or clear the pin
(`DELETE /v1/experiments/promotions/<type>/`: the next trainings select again). Promoting a "current" arm keeps the
type's model, and so its pin or its selection, as it is.

A pin is a small JSON file beside the models (`<model key>_promotion.json` in MUSICBUD_MODEL_DIR, which every host
shares), one per type, replaced whole (a temporary file, fsync, rename) or removed: a reader sees the old pin or the
new one, never half. The training reads it there, so it needs no database (and works where none is migrated)."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings

from app.content_types import content_type_get

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Promotion:
    """The engine and parameters a type's trainings fit, and the experiment arm they were promoted from."""

    model_key: str
    experiment: str
    arm: str
    engine: str
    params: dict
    promoted_at: str

    @property
    def reason(self) -> str:
        return f"promoted from experiment {self.experiment} arm {self.arm}"

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "model_key"}


def _path(model_key: str) -> Path:
    return Path(settings.MUSICBUD_MODEL_DIR) / f"{model_key}_promotion.json"


def promotion_get(*, model_key: str) -> Promotion | None:
    """The type's pin, or None (its trainings select). A file that does not parse is no pin (a WARNING)."""
    path = _path(model_key)
    try:
        body = json.loads(path.read_text())
        return Promotion(model_key=model_key, experiment=body["experiment"], arm=body["arm"], engine=body["engine"],
                         params=body.get("params") or {}, promoted_at=body.get("promoted_at") or "")
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("%s is not a promotion (%s): the %s trainings select", path, exc, model_key)
        return None


def promotion_pin(*, promotion: Promotion) -> None:
    """Pin the type to the promotion (replacing any pin it had), atomically."""
    path = _path(promotion.model_key)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".promotion-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(promotion.as_dict(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    logger.info("The %s trainings fit %s from now on (%s)", promotion.model_key, promotion.engine, promotion.reason)


def promotion_clear_now(*, content_type: str) -> dict:
    """Remove the type's pin (sync); {content_type, cleared: the pin that was, or None}."""
    ct = content_type_get(key=content_type)
    pin = promotion_get(model_key=ct.model_key)
    _path(ct.model_key).unlink(missing_ok=True)
    if pin is not None:
        logger.info("The %s pin (%s) is cleared: its trainings select again", ct.model_key, pin.reason)
    return {"content_type": ct.key, "cleared": None if pin is None else pin.as_dict()}


async def promotion_aget(*, content_type: str) -> dict:
    """{content_type, promotion: the type's pin, or None}; 404 for an unknown type."""
    ct = content_type_get(key=content_type)
    pin = await asyncio.to_thread(promotion_get, model_key=ct.model_key)
    return {"content_type": ct.key, "promotion": None if pin is None else pin.as_dict()}


async def promotion_clear(*, content_type: str) -> dict:
    """The type's next trainings select among the candidates again (the served model stays until then). Idempotent;
    404 for an unknown type."""
    return await asyncio.to_thread(promotion_clear_now, content_type=content_type)
