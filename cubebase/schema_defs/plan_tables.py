"""The plan's table steps (hooks of ``plan._Builder``): a table's label, the field that
names its records, its views, and which fields of the built-in users table the app
owns (kept in the users table's settings, so exporting and deleting know them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..formula import types as ft
from ..platform.schema import USERS
from ..platform.schema_changes import RULE_KEYS, SchemaEditor
from . import ir
from .export import default_label
from .plan_words import list_change_words
from .resolved import APP_FIELDS, app_user_fields

if TYPE_CHECKING:
    from .plan import _Builder


def plan_table_settings(b: _Builder) -> None:
    """Each table's label, display field and views."""
    for t in b.app.tables:
        if t.key == USERS:
            continue
        live_t = b.res.tables[t.key]
        label = t.label or default_label(t.key, table=True)
        if live_t is not None and label != live_t.label:
            b.add(
                "change_table",
                f"Rename table `{t.key}` to {label} (its label)",
                lambda ed, t=t, label=label: ed.update_table(t.key, label=label),
                t.key,
            )
        old_display = live_t.display_field if live_t is not None else None
        if live_t is not None and old_display is not None:
            lf = b.res.fields.get((t.key, t.display or ""))
            if lf is not None and lf.key == old_display:
                old_display = t.display  # the display field was renamed with it
        if (t.display or None) != (old_display or None):
            if t.display:
                b.add(
                    "change_table",
                    f"Name the records of `{t.key}` by `{t.display}`",
                    lambda ed, t=t: ed.update_table(t.key, display_field=t.display),
                    t.key,
                )
            else:
                b.add(
                    "change_table",
                    f"Stop naming the records of `{t.key}` by a field",
                    lambda ed, t=t: ed.clear_display_field(t.key),
                    t.key,
                )
        views = [_view_stored(b, t, v) for v in t.views]
        old_views = live_t.config.get("views") or [] if live_t is not None else []
        if views != old_views:
            b.add(
                "set_views",
                list_change_words(
                    f"Views of `{t.key}`",
                    [v["key"] for v in views],
                    [v["key"] for v in old_views],
                ),
                lambda ed, t=t: _set_views(ed, t),
                t.key,
            )


def _view_stored(b: _Builder, t: ir.TableSpec, v: ir.ViewDef) -> dict[str, Any]:
    stored = b.res.stored[(t.key, f"view:{v.key}:filter")] if v.filter is not None else None
    return _view_doc(v, stored)


def _view_doc(v: ir.ViewDef, stored_filter: str | None) -> dict[str, Any]:
    """A view as the table's config keeps it (``stored_filter``: its filter in stored
    form), the same for the plan's comparison and for the change it applies."""
    out: dict[str, Any] = {"key": v.key}
    if v.label is not None:
        out["label"] = v.label
    if v.fields is not None:
        out["fields"] = list(v.fields)
    if stored_filter is not None:
        out["filter"] = stored_filter
    if v.sort is not None:
        out["sort"] = v.sort
    return out


def plan_users_fields(b: _Builder) -> None:
    """Record which users fields the app owns, so export and deletion know them."""
    users = b.live.tables.get(USERS)
    if users is None:
        return
    want = [f.key for t in b.app.tables if t.key == USERS for f in t.fields]
    have = app_user_fields(b.live, b.app.app)
    if want == have:
        return
    b.add(
        "users_fields",
        f"Record the users fields of app `{b.app.app}`: {', '.join(want) or 'none'}",
        lambda ed, want=want: _set_user_fields(ed, b.app.app, want),
        USERS,
    )


def table_settings(ed: SchemaEditor, table_key: str) -> dict[str, Any]:
    cfg = ed.schema.table(table_key).config
    return {k: v for k, v in cfg.items() if k not in RULE_KEYS}


def _set_views(ed: SchemaEditor, t: ir.TableSpec) -> None:
    from ..platform import formulas

    views = []
    for v in t.views:
        stored = None
        if v.filter is not None:
            stored, _ = formulas.store(
                ed.schema, t.key, v.filter, f"The filter of view `{v.key}`", ft.BOOLEAN
            )
        views.append(_view_doc(v, stored))
    config = table_settings(ed, t.key)
    if views:
        config["views"] = views
    else:
        config.pop("views", None)
    ed.update_table(t.key, config=config)


def _set_user_fields(ed: SchemaEditor, app_key: str, keys: list[str]) -> None:
    config = table_settings(ed, USERS)
    owned = dict(config.get(APP_FIELDS) or {})
    if keys:
        owned[app_key] = keys
    else:
        owned.pop(app_key, None)
    config[APP_FIELDS] = owned
    ed.update_table(USERS, config=config)
