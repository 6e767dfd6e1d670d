"""Schemathesis hooks of bench/fuzz_api.py (loaded with SCHEMATHESIS_HOOKS=bench.fuzz_hooks).

Random item ids almost never exist, so the similar-items operations would only ever answer 404: half of their
generated cases use an id the models know (MUSICBUD_FUZZ_ITEM_IDS, {type: [ids]}), the rest stay random.
Cases that break a constraint the schema cannot state (two names of one parameter that differ) are dropped.
"""
from __future__ import annotations

import json
import os
import re

import schemathesis
from hypothesis import strategies as st

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


@schemathesis.hook
def filter_case(context, case):
    query = case.query if isinstance(case.query, dict) else {}
    return all(len({str(query[name]) for name in pair if name in query}) <= 1 for pair in _ALIASED_QUERY)
