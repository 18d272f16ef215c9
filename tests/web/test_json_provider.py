"""The app's JSON responses: orjson where it can, the standard library otherwise; the
same documents either way."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Flask

from cubebase.web.json_provider import FastJSONProvider


def _app() -> Flask:
    app = Flask(__name__)
    app.json = FastJSONProvider(app)
    return app


def test_a_response_keeps_key_order_and_sends_utf8():
    app = _app()
    with app.app_context():
        resp = app.json.response({"z": 1, "a": "广州", "m": [True, None, 2.5]})
    assert resp.mimetype == "application/json"
    body = resp.get_data()
    assert body == '{"z":1,"a":"广州","m":[true,null,2.5]}\n'.encode()
    assert list(json.loads(body)) == ["z", "a", "m"]


def test_what_orjson_refuses_is_written_by_the_standard_library():
    app = _app()
    with app.app_context():
        big = app.json.response({"n": 2**70, "1": "x"})
        keys = app.json.response({1: "one"})
    assert json.loads(big.get_data()) == {"n": 2**70, "1": "x"}
    assert json.loads(keys.get_data()) == {"1": "one"}


def test_datetimes_keep_flasks_format():
    app = _app()
    when = datetime(2026, 11, 22, 21, 58, 28, tzinfo=UTC)
    with app.app_context():
        ours = app.json.response({"at": when}).get_data()
        flasks = Flask("plain").json.dumps({"at": when})
    assert json.loads(ours) == json.loads(flasks)


def test_debug_responses_are_indented():
    app = _app()
    app.debug = True
    with app.app_context():
        body = app.json.response({"a": 1}).get_data(as_text=True)
    assert body == '{\n  "a": 1\n}\n'
