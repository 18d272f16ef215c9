"""The app's JSON: orjson for what it can write, the standard library for the rest."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import DefaultJSONProvider

# datetimes and dataclasses go to ``default`` (Flask's own formats), never orjson's
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class FastJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider, writing responses with orjson: an API page of 50 records
    of 30 fields is 1,500 values, and the standard library's encoder took longer over
    them than the page's query. What orjson refuses (an integer beyond 64 bits, a key
    that is not text) is written by the standard library, so every response still
    comes out as before, except that non-ASCII text is sent as UTF-8 rather than as
    ``\\u`` escapes and a float that is not finite as null (JSON has no Infinity).
    ``dumps`` (the test client's requests) stays the standard library's. Keys keep
    their order: a record's fields in form order."""

    sort_keys = False
    ensure_ascii = False  # the standard library's documents too: UTF-8, as orjson's

    def response(self, *args: Any, **kwargs: Any) -> Response:
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)
        obj = self._prepare_response_obj(args, kwargs)
        try:
            body = orjson.dumps(
                obj, default=self.default, option=_OPTIONS | orjson.OPT_APPEND_NEWLINE
            )
        except TypeError:
            body = f"{super().dumps(obj, separators=(',', ':'))}\n".encode()
        return self._app.response_class(body, mimetype=self.mimetype)
