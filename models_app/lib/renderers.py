"""JSON rendering with orjson: the same bytes DRF's renderer writes for our data, in less time."""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_fallback = JSONEncoder()


class ORJSONRenderer(JSONRenderer):
    """DRF's ``JSONRenderer`` with orjson for the encoding.

    Serializers hand the renderer plain dicts, lists, strings and numbers; orjson writes those
    itself. Anything else (lazy translation strings in error messages, decimals, UUIDs, dates
    from hand-built responses) goes through DRF's encoder, as before. The browsable API and
    ``indent`` requests keep DRF's own rendering, and so does data orjson refuses: an integer
    past 64 bits, which the free JSON of a version (its overview, say) may hold.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if self.get_indent(accepted_media_type, renderer_context or {}):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            return orjson.dumps(data, default=_fallback.default, option=orjson.OPT_NON_STR_KEYS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
