"""Schemathesis hooks of bench/fuzz_api.py (loaded with SCHEMATHESIS_HOOKS=bench.fuzz_hooks).

Random item ids almost never exist, so the similar-items operations would only ever answer 404: half of their
generated cases use an id the models know (MUSICBUD_FUZZ_ITEM_IDS, {type: [ids]}), the rest stay random.
Cases that break a constraint the schema cannot state (two names of one parameter that differ; a year range on
the guest endpoint for a type without years; year_min after year_max) are dropped, and so are cases whose URL is over 60 KB: uvicorn
refuses a request line of about 64 KB or more with its own plain-text 400 before the application sees it (the
largest request the schema allows at its bounds is well under that; no MusicBud client sends one).
"""
from __future__ import annotations

import json
import os
import re

import schemathesis
from hypothesis import strategies as st

from app.content_types import CONTENT_TYPES

_IDS: dict[str, list[str]] = json.loads(os.environ.get("MUSICBUD_FUZZ_ITEM_IDS") or "{}")
_SIMILAR = re.compile(r"/recommendations/([^/{}]+)/\{item_id\}/similar/$")


@schemathesis.hook
def before_generate_path_parameters(context, strategy):
    match = _SIMILAR.search(context.operation.path)
    ids = _IDS.get(match.group(1)) if match else None
    if not ids:
        return strategy
    return st.one_of(strategy, st.fixed_dictionaries({"item_id": st.sampled_from(ids)}))


# One query parameter under two names (the MusicBud apps' names beside ours): the API answers 400 when both are
# given and differ, a constraint OpenAPI 3.0 cannot state, so such cases are not generated (filter_case: every
# phase; a filter_query hook does not reach the coverage phase).
_ALIASED_QUERY = (("n", "limit"), ("type", "content_type"))


# /v1/recommendations/public/ filters by year only for a type whose items have one (a 400 says so otherwise).
_YEAR_TYPES = {ct.key for ct in CONTENT_TYPES if ct.has_years}
_URL_MAX = 60_000


def _url_length(case) -> int:
    from urllib.parse import urlencode

    query = case.query if isinstance(case.query, dict) else {}
    return len(case.formatted_path) + len(urlencode(query, doseq=True))


@schemathesis.hook
def filter_case(context, case):
    query = case.query if isinstance(case.query, dict) else {}
    if not all(len({str(query[name]) for name in pair if name in query}) <= 1 for pair in _ALIASED_QUERY):
        return False
    if case.operation.path.startswith("/v1/recommendations/public") and \
            ({"year_min", "year_max"} & set(query)) and str(query.get("type", "all")) not in _YEAR_TYPES:
        return False
    try:
        if int(query["year_min"]) > int(query["year_max"]):
            return False
    except (KeyError, TypeError, ValueError):
        pass
    return _url_length(case) <= _URL_MAX
