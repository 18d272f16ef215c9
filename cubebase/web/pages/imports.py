"""Import of CSV and XLSX files into a table: upload, map columns to fields, a
preview with each row's problems and the duplicates on unique fields, fixing or
dropping bad rows, then an all-or-nothing commit as a background job with a
progress bar (see docs/web.md, "Import").

Nothing here validates a value itself: cells are converted by the field types'
own ``parse_text`` (the conversion a form uses), and the preview is the records
service's ``bulk_create`` run in a transaction that is always rolled back (a dry
run: every row, link, unique value, validation rule and permission checked,
nothing kept). The commit job runs ``bulk_create`` again as the same user, in one
transaction, chunk by chunk (the progress), and commits only when every chunk
went in.

The steps live in their own modules: ``importfile`` (reading the uploaded file),
``importrows`` (mapping, conversion and the dry run of the preview), ``importjob``
(the commit job), ``importmatch`` (link names and duplicates) and ``importstore``
(where an import waits between steps); this module holds the pages.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from flask import (
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField

from . import bp, importfile, importjob, importrows
from .common import require_create, service, visible_table
from .importfile import (
    ENCODINGS,
    MAX_COLUMNS,
    MAX_FILE_BYTES,
    MAX_ROWS,
    ImportFileError,
    read_file,
)
from .importjob import COMMIT_CHUNK, run_import
from .importmatch import DUPLICATE, matchable
from .importrows import (
    DUPLICATE_HINTS,
    SHOWN_PROBLEM_ROWS,
    check_rows,
    convert_rows,
    guess_mapping,
    importable_fields,
)
from .importstore import new_id, store_of

__all__ = [
    "COMMIT_CHUNK",
    "DUPLICATE_HINTS",
    "ENCODINGS",
    "MAX_COLUMNS",
    "MAX_FILE_BYTES",
    "MAX_ROWS",
    "PREVIEW_ROWS",
    "SHOWN_PROBLEM_ROWS",
    "ImportFileError",
    "StepForm",
    "UploadForm",
    "check_rows",
    "convert_rows",
    "guess_mapping",
    "importable_fields",
    "read_file",
    "run_import",
]

PREVIEW_ROWS = 20  # rows shown as they will be read


class UploadForm(FlaskForm):
    file = FileField("CSV or Excel (.xlsx) file", validators=[FileRequired("Choose a file.")])
    encoding = SelectField("Text encoding (CSV)", choices=ENCODINGS, default="utf-8")


class StepForm(FlaskForm):
    """Mapping, fixes, commit: their inputs are read by name; this carries the token."""


# --- pages ---------------------------------------------------------------------------------
def _load(import_id: str) -> dict[str, Any]:
    platform = current_app.extensions["cubebase"]
    state = store_of(platform).load(import_id) if len(import_id) < 64 else None
    if state is None or state.get("user_id") != g.actor.user_id:
        abort(404)
    return state


def _save(import_id: str, state: dict[str, Any]) -> None:
    store_of(current_app.extensions["cubebase"]).save(import_id, state)


@bp.route("/t/<table>/import", methods=["GET", "POST"])
def import_upload(table: str):
    svc = service()
    t = visible_table(svc, table)
    require_create(svc, t)
    form = UploadForm()
    error = None
    status = 200
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.stream.read(MAX_FILE_BYTES + 1)
        try:
            header, rows = read_file(upload.filename or "", data, form.encoding.data)
        except ImportFileError as exc:
            error, status = str(exc), 422
        else:
            import_id = new_id()
            fields = importable_fields(svc, t)
            _save(
                import_id,
                {
                    "user_id": g.actor.user_id,
                    "table": t.key,
                    "filename": (upload.filename or "file")[:200],
                    "header": header,
                    "rows": rows,
                    "mapping": guess_mapping(header, fields),
                    "mapped": False,
                },
            )
            return redirect(url_for("pages.import_step", import_id=import_id))
    elif request.method == "POST":
        error = "; ".join(e for errs in form.errors.values() for e in errs) or "Choose a file."
        status = 422 if form.file.errors else 400
    return render_template(
        "pages/import_upload.html",
        mode="import",
        table=t,
        form=form,
        error=error,
        max_mb=MAX_FILE_BYTES // 1024 // 1024,
        max_rows=MAX_ROWS,
    ), status


@bp.get("/imports/<import_id>")
def import_step(import_id: str):
    """The mapping, and once it is saved, the preview (the dry run)."""
    state = _load(import_id)
    svc = service()
    t = visible_table(svc, state["table"])
    store = store_of(current_app.extensions["cubebase"])
    progress = store.progress(import_id)
    if progress is not None:
        if progress["status"] != "failed":
            return redirect(url_for("pages.import_progress", import_id=import_id))
        store.reset(import_id)  # back to fixing after a refused commit
    fields = importable_fields(svc, t)
    problems: dict[int, dict[str, str]] = {}
    general: list[str] = []
    if state["mapped"]:
        problems, general = check_rows(current_app.extensions["cubebase"], g.actor, t.key, state)
    mapped = [(i, t.fields[k]) for i, k in enumerate(state["mapping"]) if k in t.fields]
    missing = [
        f
        for f in fields
        if f.required and not f.default and f.key not in {m.key for _, m in mapped}
    ]
    bad_rows = sorted(problems)
    duplicates = [
        (r, t.fields.get(k), m)
        for r in bad_rows
        for k, m in problems[r].items()
        if k == DUPLICATE
        or (k in t.fields and t.fields[k].unique and ("twice" in m or "already used" in m))
    ]
    return render_template(
        "pages/import.html",
        mode="import",
        table=t,
        import_id=import_id,
        state=state,
        fields=fields,
        matchable=matchable(fields),
        mapped=mapped,
        missing=missing,
        rows=state["rows"],
        preview_rows=state["rows"][:PREVIEW_ROWS],
        problems=problems,
        bad_rows=bad_rows[:SHOWN_PROBLEM_ROWS],
        bad_count=len(bad_rows),
        duplicates=duplicates[:SHOWN_PROBLEM_ROWS],
        duplicate_count=len(duplicates),
        general=general,
        form=StepForm(),
    )


@bp.post("/imports/<import_id>/map")
def import_map(import_id: str):
    state = _load(import_id)
    svc = service()
    t = visible_table(svc, state["table"])
    if not StepForm().validate_on_submit():
        abort(400)
    allowed = {f.key for f in importable_fields(svc, t)}
    mapping = []
    for i in range(len(state["header"])):
        key = request.form.get(f"map.{i}", "")
        mapping.append(key if key in allowed and key not in mapping else "")
    state["mapping"] = mapping
    comparable = {f.key for f in matchable(importable_fields(svc, t))}
    state["match"] = [k for k in request.form.getlist("match") if k in comparable and k in mapping]
    state["mapped"] = any(mapping)
    if not state["mapped"]:
        flash("Map at least one column to a field.", "error")
    _save(import_id, state)
    return redirect(url_for("pages.import_step", import_id=import_id))


@bp.post("/imports/<import_id>/fix")
def import_fix(import_id: str):
    """Corrected cells of rows with problems (``cell.ROW.COLUMN``), and rows to drop
    (``drop.ROW``); the preview then runs again."""
    state = _load(import_id)
    if not StepForm().validate_on_submit():
        abort(400)
    rows = state["rows"]
    width = len(state["header"])
    dropped: set[int] = set()
    changed = 0
    for name, value in request.form.items():
        parts = name.split(".")
        if parts[0] == "cell" and len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            r, c = int(parts[1]), int(parts[2])
            if r < len(rows) and c < width and rows[r][c + 1] != value[:100_000]:
                rows[r][c + 1] = value[:100_000]
                changed += 1
        elif parts[0] == "drop" and len(parts) == 2 and parts[1].isdigit():
            dropped.add(int(parts[1]))
    state["rows"] = [row for r, row in enumerate(rows) if r not in dropped]
    _save(import_id, state)
    if not state["rows"]:
        flash("Every row was dropped; there is nothing left to import.", "error")
    else:
        flash(f"{changed} cell(s) changed, {len(dropped)} row(s) dropped.", "info")
    return redirect(url_for("pages.import_step", import_id=import_id) + "#problems")


@bp.post("/imports/<import_id>/commit")
def import_commit(import_id: str):
    state = _load(import_id)
    svc = service()
    visible_table(svc, state["table"])
    if not StepForm().validate_on_submit():
        abort(400)
    if not state["mapped"] or not state["rows"]:
        abort(400)
    platform = current_app.extensions["cubebase"]
    store = store_of(platform)
    if store.progress(import_id) is None:
        store.set_progress(import_id, {"status": "queued", "done": 0, "total": len(state["rows"])})
        from ...workflows.jobs import submit

        submit(platform, run_import, import_id, job_id=f"import-{import_id}")
    return redirect(url_for("pages.import_progress", import_id=import_id))


@bp.get("/imports/<import_id>/progress")
def import_progress(import_id: str):
    state = _load(import_id)
    svc = service()
    t = visible_table(svc, state["table"])
    progress = store_of(current_app.extensions["cubebase"]).progress(import_id)
    if progress is None:
        return redirect(url_for("pages.import_step", import_id=import_id))
    template = (
        "pages/_import_progress.html"
        if request.headers.get("HX-Request")
        else ("pages/import_progress.html")
    )
    return render_template(
        template,
        mode="import",
        table=t,
        import_id=import_id,
        state=state,
        p=progress,
        running=progress["status"] in ("queued", "running"),
    )


# --- limits set on this module ---------------------------------------------------------
_HOMES: dict[str, ModuleType] = {
    "MAX_FILE_BYTES": importfile,
    "MAX_ROWS": importfile,
    "MAX_COLUMNS": importfile,
    "SHOWN_PROBLEM_ROWS": importrows,
    "COMMIT_CHUNK": importjob,
}


class _Limits(ModuleType):
    """Setting a limit on ``imports`` (``COMMIT_CHUNK``, ``MAX_FILE_BYTES``...), as it
    was set before the steps had modules of their own, sets it where it is used too."""

    def __setattr__(self, name: str, value: Any) -> None:
        home = _HOMES.get(name)
        if home is not None:
            setattr(home, name, value)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Limits
