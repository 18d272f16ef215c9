"""Every validation message: file, line and key, all mistakes at once."""

from __future__ import annotations

import textwrap

import pytest

from cubebase.schema_defs import AppFileError, plan_app
from cubebase.schema_defs.loader import Source, load_app, load_sources

APP = "app: shop\nroles: [clerk, {key: finance, label: Finance}]\n"


def problems_of(files: dict[str, str]) -> list[str]:
    sources = [Source(f"shop/{n}", textwrap.dedent(t).lstrip("\n")) for n, t in files.items()]
    with pytest.raises(AppFileError) as exc:
        load_sources(sources)
    return [str(p) for p in exc.value.problems]


def meaning_of(platform, files: dict[str, str]) -> list[str]:
    sources = [Source(f"shop/{n}", textwrap.dedent(t).lstrip("\n")) for n, t in files.items()]
    app = load_sources(sources)
    with pytest.raises(AppFileError) as exc:
        plan_app(platform, app)
    return [str(p) for p in exc.value.problems]


def has(problems: list[str], *expected: str) -> None:
    for text in expected:
        assert any(text in p for p in problems), f"{text!r} not in:\n" + "\n".join(problems)


# --- form: the loader ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("key: t\ncolour: red\n", "shop/t.yaml:2 colour: unknown key `colour`"),
        ("key: t\nlable: T\n", "unknown key `lable` — did you mean `label`?"),
        (
            "key: t\nfields:\n  - {key: a, type: txt}\n",
            "shop/t.yaml:3 fields[0].type: `txt` is not one of",
        ),
        ("key: t\nfields:\n  - {key: a, type: txt}\n", "did you mean `text`?"),
        ("key: t\nfields:\n  - {key: a, type: text, colour: x}\n", "fields[0].colour: unknown key"),
        ("key: t\nfields:\n  - {type: text}\n", "shop/t.yaml:3 fields[0]: `key` is missing"),
        ("label: T\n", "shop/t.yaml:1: `key` is missing"),
        ("key: t\nkey: u\n", "shop/t.yaml:2 key: `key` is given twice (first on line 1)"),
        ("key: Bad-Key\n", "key: `Bad-Key` is not a valid key"),
        ("key: t\nfields: {a: 1}\n", "shop/t.yaml:2 fields: expected a list"),
        ("key: t\nfields:\n  - text\n", "fields[0]: expected a mapping of keys"),
        ("key: t\nfields:\n  -\n", "fields[0]: a blank entry"),
        (
            "key: t\nlabel: 12\n",
            "label: expected a text, got the number 12 (write it in quotes: '12')",
        ),
        (
            "key: t\nfields:\n  - {key: a, type: text, required: maybe}\n",
            "required: expected true or false, got a text",
        ),
        (
            "key: t\nfields:\n  - {key: a, type: number, precision: two}\n",
            "precision: expected a whole number",
        ),
        ("key: t\nlock: ''\n", "shop/t.yaml:2 lock: the formula is empty"),
        ("key: t\nlock: 42\n", "lock: expected a text or true or false, got the number 42"),
        (
            "key: t\npermissions:\n  - {role: clerk, read: [1]}\n",
            "permissions[0].read: expected a text or true or false",
        ),
        ("key: t\nseed: [1]\n", "seed[0]: expected a mapping of keys"),
        ("key: t\nseed:\n  - {a: 1, a: 2}\n", "seed[0].a: `a` is given twice"),
        ("key: t\n1: x\n", "keys must be plain words"),
        ("base: &b {key: t}\n<<: *b\n", "unknown key `base`"),
        ("key: t\nfields:\n  - {key: a, type: text, default: }\n", None),
        ("[1, 2]\n", "shop/t.yaml:1: expected an app file (with `app:`), a table file"),
        ("key: t\nlabel: 'unclosed\n", "shop/t.yaml:3: not valid YAML"),
        ("key: t\n  label: x\n", "not valid YAML: mapping values are not allowed here"),
        ("", "shop/t.yaml: the file is empty"),
        ("key: t\nlabel: !!int abc\n", "label: not a valid value"),
    ],
)
def test_form_problems_name_file_line_and_key(table, expected):
    if expected is None:  # a blank optional setting is the default, not a mistake
        load_sources([Source("shop/app.yaml", APP), Source("shop/t.yaml", table)])
        return
    has(problems_of({"app.yaml": APP, "t.yaml": table}), expected)


def test_merge_keys_are_refused():
    text = "key: t\nfields:\n  - &f {key: a, type: text}\n  - {<<: *f, key: b}\n"
    has(
        problems_of({"app.yaml": APP, "t.yaml": text}),
        "fields[1]: `<<` merge keys are not supported",
    )


def test_app_file_problems():
    has(
        problems_of({"app.yaml": "app: shop\nroles: clerk\nkey: x\n"}),
        "shop/app.yaml:2 roles: expected a list",
        "shop/app.yaml:3 key: unknown key `key`: an app file has app, roles, tables",
    )
    has(problems_of({"a.yaml": "key: t\n"}), "no app file: one file needs `app: <key>`")
    has(
        problems_of({"a.yaml": APP, "b.yaml": "app: other\n"}),
        "shop/b.yaml:1 app: a second app file (the app is already named in shop/a.yaml)",
    )
    has(problems_of({"app.yaml": "app: shop\nroles: [{label: x}]\n"}), "roles[0]: `key` is missing")


def test_every_mistake_of_every_file_at_once():
    found = problems_of(
        {
            "app.yaml": APP + "colour: red\n",
            "a.yaml": "key: a\nfields:\n  - {key: x, type: txt}\n",
            "b.yaml": "key: b\nlock: 7\nviews: {}\n",
            "c.yaml": "key: c\n  bad: yaml\n",
        }
    )
    assert len(found) == 5, found
    has(found, "shop/app.yaml:3 colour", "shop/a.yaml:3 fields[0].type", "shop/b.yaml:2 lock")
    has(found, "shop/b.yaml:3 views: expected a list", "shop/c.yaml:2: not valid YAML")


def test_alias_bombs_are_refused():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        lines.append(
            f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        )
    text = "key: t\nseed:\n  - " + "\n    ".join(lines) + "\n"
    has(problems_of({"app.yaml": APP, "t.yaml": text}), "more than 500,000 values")


def test_files_and_folders(tmp_path):
    with pytest.raises(AppFileError, match="no such file or folder"):
        load_app(tmp_path / "missing")
    with pytest.raises(AppFileError, match="no .yaml files in this folder"):
        load_app(tmp_path)
    (tmp_path / "app.yaml").write_bytes(b"app: shop\nroles: [\xff]\n")
    with pytest.raises(AppFileError, match="not UTF-8 text"):
        load_app(tmp_path)


def test_a_50_mb_file_is_refused_by_size_before_parsing(tmp_path, monkeypatch):
    import cubebase.schema_defs.loader as loader

    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "app.yaml").write_text("app: big\n")
    with open(folder / "huge.yaml", "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: 50 MB without writing them

    def no_parsing(*args, **kwargs):
        raise AssertionError("a file over the limit must not be parsed")

    monkeypatch.setattr(loader.yaml, "compose", no_parsing)
    with pytest.raises(AppFileError) as exc:
        load_app(folder)
    assert str(exc.value.problems[0]) == (
        "big/huge.yaml: the file is 52.4 MB; app files are limited to 5 MB each "
        "(split it into table files)"
    )


# --- meaning: against the schema the app would make ------------------------------------------


def test_reports_and_dashboards_are_checked(platform):
    # (every report and dashboard message: tests/schema_defs/test_reports_format.py)
    found = meaning_of(platform, {"app.yaml": APP + "dashboards:\n  - {key: w, roles: [boss]}\n"})
    has(found, "shop/app.yaml:4 dashboards[0].roles[0]: unknown role `boss`")


def test_roles_and_keys(platform):
    found = meaning_of(
        platform,
        {
            "app.yaml": "app: shop\nroles: [clerk, clerk, admin]\n",
            "t.yaml": """
                key: t
                fields:
                  - {key: a, type: text}
                  - {key: a, type: number}
                  - {key: created_at, type: text}
                  - {key: fields, type: text}
            """,
            "u.yaml": "key: t\n",
            "v.yaml": "key: user\n",
        },
    )
    has(
        found,
        "shop/app.yaml:2 roles[1]: role `clerk` is listed twice",
        "shop/app.yaml:2 roles[2]: `admin` is built in; leave it out",
        "shop/t.yaml:4 fields[1].key: field `a` is defined twice in table `t`",
        "shop/t.yaml:5 fields[2].key: `created_at` is an automatic field every table has",
        "shop/t.yaml:6 fields[3].key: `fields` is a reserved word",
        "shop/u.yaml:1 key: table `t` is defined twice (also shop/t.yaml:1)",
        "shop/v.yaml:1 key: `user` is a reserved word and cannot be a table key",
    )


def test_field_settings(platform):
    found = meaning_of(
        platform,
        {
            "app.yaml": APP,
            "t.yaml": """
                key: t
                fields:
                  - {key: a, type: text, options: [x]}
                  - {key: b, type: select}
                  - {key: c, type: formula, formula: '1', unique: true}
                  - {key: d, type: multi_select, options: [x], indexed: true}
                  - {key: e, type: autonumber, default: '1'}
                  - {key: f, type: formula, formula: '1', required: true}
                  - {key: g, type: number, precision: 11}
                  - {key: h, type: select, options: [x, x]}
                  - {key: i, type: link}
            """,
        },
    )
    has(
        found,
        "shop/t.yaml:3 fields[0].options: `options` is not a setting of a text field",
        "shop/t.yaml:4 fields[1]: a select field needs `options`",
        "shop/t.yaml:5 fields[2].unique: a formula field cannot be unique",
        "shop/t.yaml:6 fields[3].indexed: a multi_select field cannot be indexed",
        "shop/t.yaml:7 fields[4].default: a autonumber field is calculated and cannot have a default",
        "shop/t.yaml:8 fields[5].required: a formula field is calculated and cannot be required",
        "shop/t.yaml:9 fields[6]: precision must be a whole number from 0 to 10",
        "shop/t.yaml:10 fields[7]: options must not repeat",
        "shop/t.yaml:11 fields[8]: a link field needs `to`",
    )


def test_links_display_views_seed(platform):
    found = meaning_of(
        platform,
        {
            "app.yaml": APP,
            "orders.yaml": """
                key: orders
                display: titel
                fields:
                  - {key: title, type: text}
                  - {key: customer, type: link, to: custmers}
                  - {key: owner, type: user, related_name: email}
                  - {key: total, type: formula, formula: '1'}
                views:
                  - {key: open, fields: [title, stat], sort: '-titel'}
                  - {key: open}
                seed:
                  - {title: x, colour: red}
                  - {total: 3}
                demo:
                  - {title: [1, 2]}
            """,
            "customers.yaml": "key: customers\nfields:\n  - {key: name, type: text}\n",
        },
    )
    has(
        found,
        "shop/orders.yaml:2 display: unknown field `titel` — did you mean `title`?",
        "shop/orders.yaml:5 fields[1].to: unknown table `custmers` — did you mean `customers`?",
        "shop/orders.yaml:6 fields[2].related_name: `email` is already a field of `users`",
        "shop/orders.yaml:9 views[0].fields[1]: unknown field `stat`",
        "shop/orders.yaml:9 views[0].sort: unknown field `titel` — did you mean `title`?",
        "shop/orders.yaml:10 views[1].key: view `open` is defined twice",
        "shop/orders.yaml:12 seed[0]: unknown field `colour`",
        "shop/orders.yaml:13 seed[1]: `total` is calculated; a seed row cannot set it",
        "shop/orders.yaml:15 demo[0]: `title`: expected text, got a list",
    )


def test_permissions(platform):
    found = meaning_of(
        platform,
        {
            "app.yaml": APP,
            "customers.yaml": """
                key: customers
                fields:
                  - {key: name, type: text}
                  - {key: region, type: text}
                  - {key: amount, type: number}
                permissions:
                  - {role: clerk, read: 'regoin = "x"'}
                  - {role: clerk, read: true}
                  - {role: admin, read: true}
                  - {role: boss, read: true}
                  - {role: finance, read: amount}
                field_permissions:
                  - {field: nmae, role: clerk, read: false}
                  - {field: name, role: finance, read: false}
                  - {field: name, role: finance, write: false}
                lock: 'name & "x"'
                validations:
                  - {rule: 'LEN(name) >= 7', message: ok}
                  - rule: |
                      LEN(name) >= 7 AND
                        nmae != ""
                    message: second
            """,
        },
    )
    has(
        found,
        "shop/customers.yaml:7 permissions[0].read: unknown field `regoin` — did you mean `region`?",
        "shop/customers.yaml:8 permissions[1].role: role `clerk` already has a rule here; merge the two",
        "shop/customers.yaml:9 permissions[2].role: administrators are not limited by rules",
        "shop/customers.yaml:10 permissions[3].role: unknown role `boss`",
        "shop/customers.yaml:11 permissions[4].read: this formula must give a Boolean, but it gives a Number",
        "shop/customers.yaml:13 field_permissions[0].field: unknown field `nmae` — did you mean `name`?",
        "shop/customers.yaml:15 field_permissions[2].role: field `name` already has a rule for role `finance`",
        "shop/customers.yaml:16 lock: this formula must give a Boolean",
        # a block formula: the error is on its second line, two lines below `rule:`
        "shop/customers.yaml:21 validations[1].rule: unknown field `nmae` — did you mean `name`?",
    )
    caret = next(p for p in found if "permissions[0].read" in p)
    assert caret.endswith('regoin = "x"\n    ^^^^^^')


def test_a_formula_cycle_across_tables(platform):
    found = meaning_of(
        platform,
        {
            "app.yaml": APP,
            "customers.yaml": """
                key: customers
                fields:
                  - {key: name, type: text}
                  - {key: total, type: formula, formula: 'SUM(deals.share)'}
            """,
            "deals.yaml": """
                key: deals
                fields:
                  - {key: customer, type: link, to: customers, related_name: deals}
                  - {key: share, type: formula, formula: 'customer.total / 2'}
            """,
        },
    )
    has(
        found,
        "shop/customers.yaml:4 fields[1].formula: formula field `share` has an invalid formula: "
        "formula fields refer to each other in a cycle",
        "shop/deals.yaml:4 fields[1].formula:",
    )


def test_a_formula_may_use_a_table_the_same_app_creates(platform):
    from cubebase.schema_defs.loader import load_sources as load

    app = load(
        [
            Source("shop/app.yaml", APP),
            Source(
                "shop/a.yaml",
                "key: a\nfields:\n  - {key: n, type: formula, formula: 'COUNT(bs)'}\n",
            ),
            Source(
                "shop/b.yaml",
                "key: b\nfields:\n  - {key: a, type: link, to: a, related_name: bs}\n",
            ),
        ]
    )
    plan = plan_app(platform, app)
    assert [s.kind for s in plan.steps].count("add_field") == 2


def test_live_conflicts(platform):
    from cubebase.schema_defs import apply_app

    app = load_sources(
        [
            Source("other/app.yaml", "app: other\n"),
            Source(
                "other/t.yaml",
                "key: taken\nfields:\n  - {key: a, type: text}\n  - {key: l, type: link, to: taken, related_name: back}\n",
            ),
        ]
    )
    apply_app(platform, app)
    found = meaning_of(
        platform,
        {
            "app.yaml": APP,
            "t.yaml": "key: taken\n",
            "u.yaml": "key: users\nlabel: People\nfields:\n  - {key: email, type: text}\n",
        },
    )
    has(
        found,
        "shop/t.yaml:1 key: table `taken` belongs to the app `other`; choose another key",
        "shop/u.yaml:2 label: the built-in users table takes only `fields` here",
        "shop/u.yaml:4 fields[0].key: `users.email` is built in and cannot be redefined",
    )
    found = meaning_of(
        platform,
        {
            "app.yaml": "app: other\n",
            "t.yaml": """
                key: taken
                fields:
                  - {key: a, type: link, to: users}
                  - {key: l, type: link, to: users, many: true}
                  - {key: back, type: text}
            """,
        },
    )
    has(
        found,
        "shop/t.yaml:3 fields[0].type: `taken.a` cannot change from text to link",
        "shop/t.yaml:4 fields[1].to: where `taken.l` links to cannot change in place",
        "shop/t.yaml:4 fields[1].many: `taken.l` cannot switch between one and many links",
        "shop/t.yaml:5 fields[2].key: `taken.back` is the other side of the link `taken.l`",
    )
