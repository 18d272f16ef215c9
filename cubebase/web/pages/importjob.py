"""The commit job of an import: every row through the records service's
``bulk_create`` again, as the user who uploaded the file, in one transaction,
chunk by chunk (each chunk a step of the progress bar), committed only when every
chunk went in. Runs in the background (``workflows.jobs``), once per import."""

from __future__ import annotations

import logging
from typing import Any

from ...platform.errors import CubebaseError, ValidationError
from ...platform.users import load_actor
from .importmatch import find_duplicates
from .importrows import SHOWN_PROBLEM_ROWS, _merge, convert_rows
from .importstore import store_of

log = logging.getLogger(__name__)

COMMIT_CHUNK = 500  # rows per bulk_create in the commit job (one progress step)


def run_import(platform, import_id: str) -> dict[str, Any]:
    """The background job: every row in one transaction, chunk by chunk, as the user
    who uploaded the file; committed only when all went in. Runs once per import
    (a claim in the store); the outcome is its progress record."""
    store = store_of(platform)
    state = store.load(import_id)
    if state is None or not store.claim(import_id):
        return store.progress(import_id) or {}
    total = len(state["rows"])

    def report(**p: Any) -> dict[str, Any]:
        p.setdefault("total", total)
        store.set_progress(import_id, p)
        return p

    report(status="running", done=0)
    try:
        with platform.session(write=True) as session:
            actor = load_actor(platform, session, state["user_id"])
            if actor is None:
                return report(status="failed", done=0, message="Your account is not active.")
            svc = platform.records(session, actor)
            table = svc.table(state["table"])
            values, problems = convert_rows(svc, table, state)
            find_duplicates(svc, table, state.get("match", []), state["rows"], values, problems)
            if problems:
                session.rollback()
                return _failed(report, state, problems)
            for start in range(0, total, COMMIT_CHUNK):
                try:
                    svc.bulk_create(table.key, values[start : start + COMMIT_CHUNK])
                except ValidationError as exc:
                    session.rollback()
                    found: dict[int, dict[str, str]] = {}
                    _merge(found, exc, start)
                    return _failed(report, state, found)
                report(status="running", done=min(start + COMMIT_CHUNK, total))
            session.commit()
    except CubebaseError as exc:
        return report(status="failed", done=0, message=exc.message)
    except Exception:
        log.exception("import %s failed", import_id)
        return report(
            status="failed", done=0, message="The import failed unexpectedly; nothing was written."
        )
    return report(status="done", done=total, created=total)


def _failed(report, state: dict[str, Any], problems: dict[int, dict[str, str]]):
    rows = state["rows"]
    listed = [
        {"line": rows[r][0], "field": k, "message": m}
        for r in sorted(problems)[:SHOWN_PROBLEM_ROWS]
        for k, m in problems[r].items()
    ]
    return report(
        status="failed",
        done=0,
        message=f"{len(problems)} row(s) were refused when writing (the data changed since "
        "the preview?); nothing was written.",
        problems=listed,
    )
