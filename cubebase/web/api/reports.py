"""Reports over the API: ``GET /api/v1/reports`` (the ones the caller finds) and
``GET /api/v1/reports/{key}`` (headers and rows as display text, run as the caller:
their row and field rules apply; ``?format=csv`` or ``?format=xlsx`` for a file)."""

from __future__ import annotations

from flask import Response, jsonify, request

from ...platform import reports as R
from ...platform.errors import BadRequest
from . import bp
from .visibility import service

FORMATS = ("json", "csv", "xlsx")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@bp.get("/reports")
def list_reports():
    svc = service()
    return jsonify(
        {
            "reports": [
                {"key": r.key, "label": r.label, "app": r.app} for r in R.visible_reports(svc)
            ]
        }
    )


@bp.get("/reports/<key>")
def get_report(key: str):
    svc = service()
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise BadRequest("format must be json, csv or xlsx")
    limit = request.args.get("limit")
    n = None
    if limit is not None:
        if not limit.isdigit() or not 1 <= int(limit) <= R.LIST_CAP:
            raise BadRequest(f"limit must be a whole number from 1 to {R.LIST_CAP}")
        n = int(limit)
    report = R.get_report(svc, key)
    result = R.run_report(svc, report, limit=n, narrow=request.args.get("filter"))
    if fmt == "csv":
        return Response(
            "\ufeff" + result.to_csv(),
            mimetype="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{report.key}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            result.to_xlsx(),
            mimetype=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{report.key}.xlsx"'},
        )
    return jsonify(
        {
            "key": report.key,
            "label": report.label,
            "table": report.table.key,
            "headers": result.headers,
            "rows": result.rows,
            "more": result.more,
        }
    )


def openapi_paths(responses, param) -> dict[str, dict]:
    """The report endpoints in the OpenAPI document (openapi.py's helpers)."""
    tag = ["Reports"]
    ok = responses(
        "200",
        {
            "type": "object",
            "required": ["key", "label", "table", "headers", "rows", "more"],
            "properties": {
                "key": {"type": "string"},
                "label": {"type": "string"},
                "table": {"type": "string"},
                "headers": {"type": "array", "items": {"type": "string"}},
                "rows": {
                    "type": "array",
                    "items": {"type": "array", "items": {"type": "string"}},
                },
                "more": {"type": "boolean"},
            },
        },
        "404",
    )
    ok["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    ok["200"]["content"][XLSX] = {"schema": {"type": "string", "format": "binary"}}
    return {
        "/reports": {
            "get": {
                "operationId": "reports.list",
                "summary": "The reports the caller finds (admins: every report)",
                "tags": tag,
                "responses": responses(
                    "200",
                    {
                        "type": "object",
                        "required": ["reports"],
                        "properties": {"reports": {"type": "array", "items": {"type": "object"}}},
                    },
                ),
            }
        },
        "/reports/{key}": {
            "get": {
                "operationId": "reports.run",
                "summary": "Run a report as the caller (their row and field rules apply)",
                "tags": tag,
                "parameters": [
                    param("key", "path", {"type": "string"}, "The report's key"),
                    param("format", "query", {"enum": list(FORMATS)}, "json (default), csv, xlsx"),
                    param(
                        "limit",
                        "query",
                        {"type": "integer", "minimum": 1, "maximum": R.LIST_CAP},
                        "At most this many rows",
                    ),
                    param(
                        "filter",
                        "query",
                        {"type": "string"},
                        "A filter formula of the caller's own, ANDed with the report's",
                    ),
                ],
                "responses": ok,
            }
        },
    }
