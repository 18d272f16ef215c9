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
"""

from __future__ import annotations

import csv
import io
import logging
import zipfile
from datetime import date, datetime, time
from decimal import Decimal
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

from ...platform.errors import CubebaseError, ValidationError
from ...platform.fieldtypes import ConversionError
from ...platform.records import RecordsService
from ...platform.schema import Field, Table
from ...platform.users import load_actor
from . import bp
from .common import service, visible_fields, visible_table
from .importmatch import DUPLICATE, LinkNames, find_duplicates, link_names, matchable
from .importstore import new_id, store_of

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 10 * 1024 * 1024  # a file larger than this is refused, unread
MAX_ROWS = 50_000
MAX_COLUMNS = 200
PREVIEW_ROWS = 20  # rows shown as they will be read
SHOWN_PROBLEM_ROWS = 100  # rows with problems listed (and editable) at once
COMMIT_CHUNK = 500  # rows per bulk_create in the commit job (one progress step)
ENCODINGS = [
    ("utf-8", "UTF-8 (CSV UTF-8)"),
    ("cp1252", "Windows Western European (Excel's CSV)"),
    ("latin-1", "ISO-8859-1 (Latin-1)"),
]
DUPLICATE_HINTS = ("appears twice in this batch", "is already used by another record")


class ImportFileError(Exception):
    """A file that cannot be imported, with what to do about it."""


class UploadForm(FlaskForm):
    file = FileField("CSV or Excel (.xlsx) file", validators=[FileRequired("Choose a file.")])
    encoding = SelectField("Text encoding (CSV)", choices=ENCODINGS, default="utf-8")


class StepForm(FlaskForm):
    """Mapping, fixes, commit: their inputs are read by name; this carries the token."""


# --- reading files ---------------------------------------------------------------------
def read_file(
    filename: str, data: bytes, encoding: str = "utf-8"
) -> tuple[list[str], list[list[str]]]:
    """The header and the rows of a CSV or XLSX file, every cell as text.
    Raises ImportFileError with a message for the person who uploaded it."""
    name = (filename or "").lower()
    if len(data) > MAX_FILE_BYTES:
        raise ImportFileError(
            f"The file is {len(data) / 1024 / 1024:.1f} MB; files up to "
            f"{MAX_FILE_BYTES // 1024 // 1024} MB can be imported. Split it into smaller files."
        )
    if not data.strip():
        raise ImportFileError("The file is empty.")
    if name.endswith(".xls") or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise ImportFileError(
            "This is an old Excel file (.xls). Open it in Excel and save it as .xlsx or CSV."
        )
    if data[:4] == b"PK\x03\x04" or name.endswith((".xlsx", ".xlsm")):
        header, rows = _read_xlsx(data)
    elif name.endswith((".csv", ".txt", ".tsv")) or "." not in name:
        header, rows = _read_csv(data, encoding)
    else:
        raise ImportFileError(
            "Only CSV (.csv) and Excel (.xlsx) files can be imported; this file is neither."
        )
    return _tidy(header, rows)


def _read_csv(data: bytes, encoding: str) -> tuple[list[Any], list[list[Any]]]:
    if encoding not in dict(ENCODINGS):
        encoding = "utf-8"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise ImportFileError(
            "This is not a CSV text file: it holds binary data (or UTF-16 text). "
            "Save it as CSV UTF-8 or as .xlsx."
        )
    try:
        text = data.decode("utf-8-sig" if encoding == "utf-8" else encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(
            f"The file is not {dict(ENCODINGS)[encoding].split(' (')[0]} text: line {line} "
            f"holds a byte that cannot be read (0x{data[exc.start]:02x}). Choose the file's "
            "encoding below (Excel on Windows usually saves Windows Western European), or "
            "save it as CSV UTF-8."
        ) from None
    sample = text[:20_000]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    out: list[list[Any]] = []
    try:
        for row in reader:
            if len(out) > MAX_ROWS + 1:
                raise ImportFileError(
                    f"The file has more than {MAX_ROWS:,} rows; import it in parts."
                )
            out.append(row)
    except csv.Error as exc:
        raise ImportFileError(f"Line {reader.line_num} of the CSV file: {exc}") from None
    if not out:
        raise ImportFileError("The file is empty.")
    return out[0], out[1:]


def _read_xlsx(data: bytes) -> tuple[list[Any], list[list[Any]]]:
    from openpyxl import load_workbook

    try:
        # read_only streams the sheet; data_only takes cached values: formulas never run
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
        log.info("unreadable xlsx: %s", exc)
        raise ImportFileError(
            "This is not an Excel .xlsx file, or it is damaged. Save it again from Excel "
            "as .xlsx or CSV."
        ) from None
    except Exception as exc:  # openpyxl raises many kinds for broken files
        log.info("unreadable xlsx: %r", exc)
        raise ImportFileError("The Excel file could not be read; save it again as .xlsx.") from None
    try:
        if not wb.worksheets:
            raise ImportFileError("The Excel file has no sheet.")
        ws = wb.worksheets[0]
        rows: list[list[Any]] = []
        for row in ws.iter_rows(values_only=True):
            if len(rows) > MAX_ROWS + 1:
                raise ImportFileError(
                    f"The first sheet has more than {MAX_ROWS:,} rows; import it in parts."
                )
            rows.append([_cell_text(v) for v in row[: MAX_COLUMNS + 1]])
    finally:
        wb.close()
    if not rows:
        raise ImportFileError("The first sheet of the Excel file is empty.")
    return rows[0], rows[1:]


def _cell_text(v: Any) -> str:
    """An Excel cell as the text a person would type for it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == time(0) else v.isoformat(sep=" ")
    if isinstance(v, date | time):
        return v.isoformat()
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if isinstance(v, int | Decimal):
        return str(v)
    return str(v)


def _tidy(header: list[Any], rows: list[list[Any]]) -> tuple[list[str], list[list[str]]]:
    """Names for every column, rows as long as the header, blank rows left out."""
    header = [str(h or "").strip() for h in header]
    while header and not header[-1]:
        header.pop()
    if not header:
        raise ImportFileError("The first row must name the columns; it is blank.")
    if len(header) > MAX_COLUMNS:
        raise ImportFileError(f"The file has {len(header)} columns; at most {MAX_COLUMNS}.")
    names: list[str] = []
    for i, h in enumerate(header):
        name = h or f"Column {i + 1}"
        base, n = name, 2
        while name in names:
            name, n = f"{base} ({n})", n + 1
        names.append(name)
    width = len(names)
    out: list[list[str]] = []
    lines: list[int] = []
    for i, row in enumerate(rows):
        cells = [str(c) if c is not None else "" for c in row[:width]]
        if not any(c.strip() for c in cells):
            continue
        out.append(cells + [""] * (width - len(cells)))
        lines.append(i + 2)
    if not out:
        raise ImportFileError("The file has a header row but no records under it.")
    if len(out) > MAX_ROWS:
        raise ImportFileError(f"The file has {len(out):,} rows; at most {MAX_ROWS:,} at once.")
    return names, [[str(n), *r] for n, r in zip(lines, out, strict=True)]


# --- mapping and converting ----------------------------------------------------------------
def importable_fields(svc: RecordsService, table: Table) -> list[Field]:
    return [f for f in visible_fields(svc, table) if f.writable and f.type != "file"]


def _norm(s: str) -> str:
    return "".join(c for c in s.lower() if c.isalnum())


def guess_mapping(header: list[str], fields: list[Field]) -> list[str]:
    """A field key (or "") per column: the field whose key or label the column names."""
    by_name: dict[str, str] = {}
    for f in fields:
        by_name.setdefault(_norm(f.label), f.key)
        by_name.setdefault(_norm(f.key), f.key)
    used: set[str] = set()
    out = []
    for h in header:
        key = by_name.get(_norm(h), "")
        if key in used:
            key = ""
        used.add(key)
        out.append(key)
    return out


def convert_rows(
    svc: RecordsService, table: Table, state: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[int, dict[str, str]]]:
    """Field values for every row (by the field types' ``parse_text``; links also by
    the target's display name, looked up through the records service), and the cells
    that did not convert: {row index: {field key: message}}."""
    mapping = [(i, table.fields[k]) for i, k in enumerate(state["mapping"]) if k in table.fields]
    rows = state["rows"]
    names = _link_names(svc, mapping, rows)
    values: list[dict[str, Any]] = []
    problems: dict[int, dict[str, str]] = {}
    for r, row in enumerate(rows):
        out: dict[str, Any] = {}
        for i, f in mapping:
            text = row[i + 1]
            try:
                if f.link_kind in ("one", "many") and text.strip():
                    out[f.key] = _link_value(f, text, names)
                else:
                    out[f.key] = f.ftype.parse_text(f, text)
            except ConversionError as exc:
                problems.setdefault(r, {})[f.key] = str(exc)
        values.append(out)
    return values, problems


def _link_names(svc: RecordsService, mapping, rows) -> dict[str, LinkNames]:
    """For link columns given by name (or another unique value of the target, such
    as a user's e-mail): the target's records by those values, per target."""
    out: dict[str, LinkNames] = {}
    for i, f in mapping:
        if f.link_kind not in ("one", "many") or f.target_key is None:
            continue
        wanted: set[str] = set()
        for row in rows:
            parts = row[i + 1].split(",") if f.link_kind == "many" else [row[i + 1]]
            wanted.update(p.strip() for p in parts if p.strip() and not p.strip().isdigit())
        found = link_names(svc, svc.table(f.target_key), wanted)
        if f.target_key in out:
            for name, ids in found.ids.items():
                for rec_id in ids:
                    out[f.target_key].add(name, rec_id)
        else:
            out[f.target_key] = found
    return out


def _link_value(f: Field, text: str, names: dict[str, LinkNames]) -> Any:
    known = names.get(f.target_key or "") or LinkNames()
    found = known.ids
    parts = [p.strip() for p in text.split(",")] if f.link_kind == "many" else [text.strip()]
    ids: list[Any] = []
    for p in parts:
        if not p:
            continue
        if p.isdigit():
            ids.append(p)
            continue
        hits = found.get(p.lower(), [])
        if not hits:
            raise ConversionError(f"no record {known.how} `{p[:60]}`")
        if len(hits) > 1:
            raise ConversionError(f"{len(hits)} records are named `{p[:60]}`; give its id")
        ids.append(hits[0])
    return f.ftype.to_python(f, ids if f.link_kind == "many" else (ids[0] if ids else None))


def check_rows(
    platform, actor, table_key: str, state: dict[str, Any]
) -> tuple[dict[int, dict[str, str]], list[str]]:
    """The dry run: every row through the records service's ``bulk_create`` as
    ``actor``, in a transaction that is rolled back whatever happens. Returns the
    problems per row ({row index: {field key or "": message}}) and general ones."""
    with platform.session(write=True) as session:
        try:
            svc = platform.records(session, actor)
            table = svc.table(table_key)
            values, problems = convert_rows(svc, table, state)
            find_duplicates(svc, table, state.get("match", []), state["rows"], values, problems)
            general: list[str] = []
            try:
                svc.bulk_create(table.key, values)
            except ValidationError as exc:
                _merge(problems, exc, 0)
            except CubebaseError as exc:
                general.append(exc.message)
            return problems, general
        finally:
            session.rollback()


def _merge(problems: dict[int, dict[str, str]], exc: ValidationError, offset: int) -> None:
    for p in exc.problems:
        row = p.extra.get("row")
        if not isinstance(row, int):
            continue
        mine = problems.setdefault(row + offset, {})
        key = p.field or ""
        if key in mine:
            continue  # the cell's own conversion problem says it already
        message = p.message
        for hint in DUPLICATE_HINTS[:1]:
            message = message.replace(hint, "appears twice in this file")
        mine[key] = message


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


# --- the commit job ------------------------------------------------------------------------
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
