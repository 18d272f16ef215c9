"""Round trip on an app of CRM size (generated here: 12 tables, 150+ fields of every
type, with formulas across tables, defaults, rules, views): apply, export, and the
export is the same app; applying the export is an empty plan."""

from __future__ import annotations

import time

import yaml

from cubebase.schema_defs import apply_app, live_app, load_app, plan_app, write_app
from cubebase.schema_defs.export import to_data

from .test_plan import _by_key, normalized

N_TABLES = 12


def big_app() -> dict[str, dict]:
    files: dict[str, dict] = {
        "app.yaml": {
            "app": "big",
            "roles": ["sales", {"key": "boss", "label": "The boss"}],
            "tables": [
                {
                    "key": "users",
                    "fields": [{"key": "team", "type": "select", "options": ["a", "b"]}],
                }
            ],
            "reports": [
                {
                    "key": "value_by_month",
                    "label": "Value by owner and month",
                    "table": "table_3",
                    "filter": 'stage = "won"',
                    "group_by": ["owner", "due:month"],
                    "measures": ["count", "sum(price)", "avg(amount)", "max(seen_at)"],
                    "sort": "-sum(price)",
                    "limit": 50,
                    "roles": ["sales", "boss"],
                },
                {"key": "stages", "table": "table_0", "group_by": ["stage"]},
                {
                    "key": "open_list",
                    "table": "table_5",
                    "filter": "NOT done",
                    "columns": ["name", "parent", "price"],
                    "sort": "-price,name",
                },
            ],
            "dashboards": [
                {
                    "key": "boss",
                    "label": "The boss's morning",
                    "roles": ["boss"],
                    "items": [
                        {"report": "stages", "chart": "funnel"},
                        {"report": "value_by_month", "chart": "line", "label": "Per month"},
                        {"report": "open_list"},
                    ],
                }
            ],
        }
    }
    for i in range(N_TABLES):
        key = f"table_{i}"
        fields = [
            {"key": "name", "type": "text", "required": True, "max_length": 200},
            {"key": "notes", "type": "long_text", "help": "Anything worth keeping"},
            {"key": "amount", "type": "number", "precision": 3, "default": "1"},
            {"key": "price", "type": "currency", "currency": "EUR"},
            {"key": "qty", "type": "integer", "indexed": True},
            {"key": "done", "type": "boolean", "default": "FALSE"},
            {"key": "due", "type": "date", "default": "TODAY()"},
            {"key": "seen_at", "type": "datetime"},
            {
                "key": "stage",
                "type": "select",
                "options": ["new", "won", "lost"],
                "default": '"new"',
            },
            {"key": "tags", "type": "multi_select", "options": ["x", "y", "z"]},
            {"key": "email", "type": "email", "unique": True},
            {"key": "phone", "type": "phone", "label": "Telephone"},
            {"key": "site", "type": "url"},
            {"key": "owner", "type": "user", "related_name": f"owned_{i}"},
            {"key": "attachment", "type": "file"},
            {"key": "number", "type": "autonumber", "prefix": f"T{i}-"},
            {"key": "total", "type": "formula", "formula": "amount * qty"},
        ]
        if i:
            prev = f"table_{i - 1}"
            fields += [
                {"key": "parent", "type": "link", "to": prev, "related_name": "children"},
                {
                    "key": "friends",
                    "type": "link",
                    "to": prev,
                    "many": True,
                    "related_name": "friends_of",
                },
                {"key": "parent_total", "type": "formula", "formula": "parent.total + 1"},
            ]
        if i < N_TABLES - 1:
            fields.append(
                {"key": "children_total", "type": "formula", "formula": "SUM(children.total)"}
            )
        table = {
            "key": key,
            "label": f"Table number {i}",
            "display": "name",
            "fields": fields,
            "validations": [
                {"rule": "qty >= 0 OR ISBLANK(qty)", "message": "No negative quantities"}
            ],
            "permissions": [
                {"role": "sales", "read": "owner = USER()", "create": True, "update": "NOT done"},
                {"role": "boss", "read": True},
            ],
            "field_permissions": [
                {"field": "price", "role": "sales", "read": True, "write": False}
            ],
            "lock": "done",
            "views": [
                {
                    "key": "open",
                    "label": "Open",
                    "fields": ["name", "stage"],
                    "filter": 'stage = "new"',
                    "sort": "-qty,name",
                }
            ],
        }
        files[f"{key}.yaml"] = table
    return files


def test_crm_size_round_trip(platform, tmp_path):
    folder = tmp_path / "big"
    folder.mkdir()
    for name, data in big_app().items():
        (folder / name).write_text(yaml.safe_dump(data, sort_keys=False))
    app = load_app(folder)
    n_fields = sum(len(t.fields) for t in app.tables)
    assert len(app.tables) > 10 and n_fields > 150
    started = time.perf_counter()
    result = apply_app(platform, app)
    took = time.perf_counter() - started
    assert result.applied and len(result.plan.steps) > 200
    assert took < 120, f"installing {n_fields} fields took {took:.1f} s"

    assert plan_app(platform, load_app(folder)).empty
    with platform.session() as s:
        exported = live_app(platform.schema(s), s, "big")
    assert _by_key(to_data(exported)) == _by_key(normalized(app))

    out = tmp_path / "exported"
    write_app(exported, out)
    assert plan_app(platform, load_app(out)).empty
    again = load_app(out)
    assert _by_key(to_data(again)) == _by_key(to_data(exported))


def test_users_fields_come_back_in_the_order_of_the_file(platform, tmp_path):
    """A users link field is added once its target table exists, so the users table
    holds the app's fields in another order than the file; the export writes the file's
    order, and planning the export is empty (it was "Record the users fields")."""
    folder = tmp_path / "org"
    folder.mkdir()
    users_fields = [
        {"key": "region", "type": "link", "to": "regions", "related_name": "staff"},
        {"key": "position", "type": "text"},
        {"key": "manager", "type": "user", "related_name": "reports"},
        {"key": "badge", "type": "text"},
    ]
    app_yaml = {
        "app": "org",
        "roles": ["staff"],
        "tables": [
            {
                "key": "users",
                "fields": users_fields,
                "permissions": [{"role": "staff", "read": "active"}],
            }
        ],
    }
    regions = {"key": "regions", "display": "name", "fields": [{"key": "name", "type": "text"}]}
    (folder / "app.yaml").write_text(yaml.safe_dump(app_yaml, sort_keys=False))
    (folder / "regions.yaml").write_text(yaml.safe_dump(regions, sort_keys=False))
    assert apply_app(platform, load_app(folder)).applied

    with platform.session() as s:
        exported = live_app(platform.schema(s), s, "org")
    users = next(t for t in exported.tables if t.key == "users")
    assert [f.key for f in users.fields] == [f["key"] for f in users_fields]
    out = tmp_path / "exported"
    write_app(exported, out)
    plan = plan_app(platform, load_app(out))
    assert plan.empty, [s.text for s in plan.steps]
    with platform.session() as s:  # every table at once: the same order
        everything = live_app(platform.schema(s), s, None)
    users = next(t for t in everything.tables if t.key == "users")
    assert [f.key for f in users.fields] == [f["key"] for f in users_fields]
