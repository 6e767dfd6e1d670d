"""This worker's answer cache (app/services/answer_cache.py), sized by MUSICBUD_ANSWER_CACHE_MB: every
answer of the recommendation and buds services goes through it."""
from __future__ import annotations

from django.conf import settings

from app.services.answer_cache import AnswerCache

_ANSWERS = AnswerCache(int(settings.MUSICBUD_ANSWER_CACHE_MB * 1024 * 1024))


def answers() -> AnswerCache:
    """This worker's answer cache (for its statistics, and for tests to start from an empty one)."""
    return _ANSWERS
