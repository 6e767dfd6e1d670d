"""Schemathesis hooks of bench/fuzz_api.py (loaded with SCHEMATHESIS_HOOKS=bench.fuzz_hooks).

Random item ids almost never exist, so the similar-items operations would only ever answer 404: half of their
generated cases use an id the models know (MUSICBUD_FUZZ_ITEM_IDS, {type: [ids]}), the rest stay random.
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
