"""Record forms generated from the schema with WTForms: one fitting widget per field
type. The form only collects text; the field types convert it (the same
conversion an import uses) and the records service validates and decides, so a
refusal is the service's message, shown beside the field it names."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from wtforms import (
    BooleanField,
    HiddenField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)

from ...platform.fieldtypes import ConversionError
from ...platform.files import file_store
from ...platform.listing import Condition
from ...platform.records import Record, RecordsService
from ...platform.schema import Field, Table
from .common import always_visible, input_text, readable, record_title, visible_fields

LINK_CHOICES = 100  # options a link picker lists before the user searches
TEXT_INPUTS = {"email": "email", "phone": "tel", "url": "url", "text": "text"}


class RecordForm(FlaskForm):
    version = HiddenField()

    class Meta:
        locales = ("en",)


def form_fields(svc: RecordsService, table: Table, record: Record | None) -> list[Field]:
    """Fields shown on the form: every field the user may see on this record."""
    out = []
    withheld = record.withheld if record is not None else frozenset()
    for f in visible_fields(svc, table):
        if f.key in withheld or f.link_kind in ("reverse", "reverse_many"):
            continue
        if f.system and record is None:
            continue
        out.append(f)
    return out


def editable(f: Field) -> bool:
    return f.writable


def link_choices(
    svc: RecordsService, f: Field, selected: list[int], search: str = ""
) -> list[tuple[str, str]] | None:
    """Options of a link picker: the first records of the target table (or those
    matching ``search``) and the selected ones, read through the records service.
    None when the user may not read the target table (the picker is then a plain
    id input)."""
    target = svc.table(f.target_key)
    if not readable(svc, target):
        return None
    shown_key = target.display_field
    if shown_key and shown_key not in {x.key for x in always_visible(svc, target)}:
        shown_key = None
    fields = [shown_key] if shown_key else []
    where = []
    if search:
        if shown_key and target.fields[shown_key].column_name is not None:
            from .views import quick_search

            where.append(quick_search(svc, target, search))
        elif search.isdigit():
            where.append(Condition("id", "eq", search))
    page = svc.list(target.key, where=where, sort=shown_key, limit=LINK_CHOICES, fields=fields)
    choices = [(str(r.id), record_title(target, r)) for r in page.records]
    have = {r.id for r in page.records}
    missing = [i for i in selected if i not in have]
    if missing:
        extra = svc.list(
            target.key, where=Condition("id", "in", missing), limit=len(missing), fields=fields
        )
        found = {r.id: record_title(target, r) for r in extra.records}
        choices = [(str(i), found.get(i, f"#{i}")) for i in missing] + choices
    return choices


def build_form(
    svc: RecordsService,
    table: Table,
    record: Record | None,
    formdata=None,
    writable: frozenset[str] | None = None,
) -> tuple[RecordForm, list[Field]]:
    """A WTForms form for ``table`` (filled from ``record`` when editing). With
    ``writable`` (the records service's ``rights``), a field outside it gets no
    input: it is shown read-only and whatever is posted for it is ignored."""
    fields = form_fields(svc, table, record)
    attrs: dict[str, Any] = {}
    values = record.values if record is not None else {}
    for f in fields:
        if not editable(f) or (writable is not None and f.key not in writable):
            continue
        kw: dict[str, Any] = {"description": f.help or ""}
        render: dict[str, Any] = {"id": f"f-{f.key}"}
        if f.required:
            render["aria-required"] = "true"
        value = values.get(f.key)
        if f.type == "boolean":
            field = BooleanField(f.label, default=bool(value), render_kw=render, **kw)
        elif f.type == "select":
            options = [("", "—")] + [(o, o) for o in f.ftype.options(f)]
            if value and value not in f.ftype.options(f):
                options.append((value, value))
            field = SelectField(
                f.label,
                choices=options,
                default=value or "",
                validate_choice=False,
                render_kw=render,
                **kw,
            )
        elif f.type == "multi_select":
            field = SelectMultipleField(
                f.label,
                choices=[(o, o) for o in f.ftype.options(f)],
                default=value or [],
                validate_choice=False,
                render_kw=render,
                **kw,
            )
        elif f.link_kind in ("one", "many"):
            selected = value if isinstance(value, list) else ([value] if value else [])
            choices = link_choices(svc, f, selected)
            if choices is None:
                render["inputmode"] = "numeric"
                field = StringField(
                    f.label + " (id)",
                    default=", ".join(str(i) for i in selected),
                    render_kw=render,
                    **kw,
                )
            elif f.link_kind == "one":
                render["data-link-picker"] = f.target_key
                field = SelectField(
                    f.label,
                    choices=[("", "—"), *choices],
                    default=str(value) if value else "",
                    validate_choice=False,
                    render_kw=render,
                    **kw,
                )
            else:
                render["data-link-picker"] = f.target_key
                field = SelectMultipleField(
                    f.label,
                    choices=choices,
                    default=[str(i) for i in selected],
                    validate_choice=False,
                    render_kw=render,
                    **kw,
                )
        elif f.type == "file":
            field = FileField(f.label, render_kw=render, **kw)
            attrs[f"{f.key}__clear"] = BooleanField(f"Remove the file of {f.label}")
        elif f.type == "long_text":
            render["rows"] = 4
            field = TextAreaField(f.label, default=input_text(f, value), render_kw=render, **kw)
        else:
            render["type"] = _input_type(f)
            if f.type in ("number", "currency"):
                render["step"] = "any"
                render["inputmode"] = "decimal"
            elif f.type == "integer":
                render["step"] = "1"
            field = StringField(f.label, default=input_text(f, value), render_kw=render, **kw)
        attrs[f.key] = field
    form_class = type(f"{table.key.title()}Form", (RecordForm,), attrs)
    form = form_class(formdata=formdata, version=str(record.version) if record else "")
    return form, fields


def _input_type(f: Field) -> str:
    if f.type in ("number", "currency", "integer"):
        return "number"
    if f.type == "date":
        return "date"
    if f.type == "datetime":
        return "datetime-local"
    return TEXT_INPUTS.get(f.type, "text")


def form_values(
    form: RecordForm, fields: list[Field], *, only_given: bool = False
) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's input as field values, and the fields whose text did not convert."""
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for f in fields:
        if not editable(f) or f.key not in form:
            continue
        data = form[f.key].data
        if f.type == "file":
            upload = data if isinstance(data, FileStorage) and data.filename else None
            if upload is not None:
                values[f.key] = file_store(current_app.extensions["cubebase"]).put(
                    upload.stream, upload.filename, upload.mimetype
                )
            elif form[f"{f.key}__clear"].data:
                values[f.key] = None
            continue
        try:
            if f.type == "boolean":
                values[f.key] = bool(data)
            elif isinstance(data, list):
                values[f.key] = f.ftype.to_python(f, [d for d in data if d != ""])
            elif f.link_kind == "many":
                values[f.key] = f.ftype.parse_text(f, data or "")
            else:
                values[f.key] = f.ftype.parse_text(f, data or "")
        except ConversionError as exc:
            # the service converts the text again and reports it with every other problem
            values[f.key] = data
            problems[f.key] = str(exc)
    return values, problems


def raw_values(table: Table, fields: list[Field], formdata) -> dict[str, Any]:
    """Form input converted as far as it goes, for the live preview (bad input left out)."""
    out: dict[str, Any] = {}
    for f in fields:
        if not editable(f) or f.type == "file":
            continue
        try:
            if f.type == "boolean":
                out[f.key] = formdata.get(f.key) in ("y", "on", "true", "1")
            elif f.type == "multi_select" or f.link_kind == "many":
                out[f.key] = f.ftype.to_python(f, [v for v in formdata.getlist(f.key) if v])
            elif f.key in formdata:
                out[f.key] = f.ftype.parse_text(f, formdata.get(f.key, ""))
        except ConversionError:
            continue
    return out
