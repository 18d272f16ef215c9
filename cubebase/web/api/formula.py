"""POST /api/v1/formula/check: the type of a formula, or its errors with positions."""

from __future__ import annotations

from flask import current_app, g, jsonify

from ...platform.errors import BadRequest
from ...platform.formulas import check_formula
from . import bp, error_response, json_body
from .auth import db_session
from .visibility import service, visible_table


@bp.post("/formula/check")
def formula_check():
    data = json_body()
    table, formula = data.get("table"), data.get("formula")
    if not isinstance(table, str) or not isinstance(formula, str):
        raise BadRequest('Send {"table": "...", "formula": "..."}')
    visible_table(service(), table)  # a table the caller may not read is not there
    result = check_formula(
        current_app.extensions["cubebase"], db_session(), g.actor, table, formula
    )
    if "errors" in result:
        first = result["errors"][0]
        return error_response("formula_error", first["message"], 400, result["errors"])
    return jsonify(result)
