"""DRF's JSON renderer on orjson: the same bytes for every answer this API gives, several times faster (the
largest serialisation cost of a recommendation response after the scoring itself)."""
from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

from app.services.answer_cache import JsonFragment


class _Encoder(JSONEncoder):
    """DRF's encoder, which also takes the JSON that services hand over ready-made (JsonFragment)."""

    def default(self, obj):
        if isinstance(obj, JsonFragment):
            return orjson.loads(obj.text)
        return super().default(obj)


_FALLBACK = _Encoder()


def _default(obj):
    """What orjson does not know: a JsonFragment is embedded as it is; the rest as DRF's encoder does it
    (Decimal, lazy strings...)."""
    if isinstance(obj, JsonFragment):
        return obj.fragment
    return _FALLBACK.default(obj)


_LINE_SEPARATORS = (b"\xe2\x80\xa8", b"\xe2\x80\xa9")  # U+2028 / U+2029 in UTF-8


class ORJSONRenderer(JSONRenderer):
    """Compact UTF-8 JSON like DRF's JSONRenderer (COMPACT_JSON, UNICODE_JSON), U+2028/U+2029 escaped as it
    does. A client asking for `application/json; indent=N`, and anything orjson refuses, gets DRF's own.
    A JsonFragment in the data (a cached answer's JSON) is embedded as it is."""

    encoder_class = _Encoder

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            out = orjson.dumps(data, default=_default, option=orjson.OPT_SERIALIZE_NUMPY)
        except orjson.JSONEncodeError:  # what orjson refuses (an int beyond 64 bits...): DRF's own rendering
            return super().render(data, accepted_media_type, renderer_context)
        # both separators start with byte E2: one memchr rules them out (a 3-byte search of 8 KB costs ~6 us)
        if b"\xe2" in out and (_LINE_SEPARATORS[0] in out or _LINE_SEPARATORS[1] in out):
            out = out.replace(_LINE_SEPARATORS[0], b"\\u2028").replace(_LINE_SEPARATORS[1], b"\\u2029")
        return out
