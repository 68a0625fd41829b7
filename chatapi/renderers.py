"""JSON answers written by orjson: the same JSON as DRF's renderer, at a fraction of its CPU."""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder().default  # DRF's own handling of what orjson does not know (Decimal, lazy text)


def json_bytes(data) -> bytes:
    """`data` as the API writes JSON (UTC datetimes end in Z), for bodies written outside a renderer."""
    return orjson.dumps(data, default=_fallback, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS)


class FastJSONRenderer(JSONRenderer):
    """orjson with DRF's conventions: UTC datetimes end in Z, other values as DRF's encoder writes them."""

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if data is None:
            return b""
        return json_bytes(data)
