"""`indexes:` in app files: applied, planned in words, exported back (round trip),
renames kept, removal planned, repeats refused with their count, mistakes with file,
line and key."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cubebase.platform.errors import ConflictError, ValidationError

from .conftest import snapshot
from .test_plan import add, apply, assert_in_sync, kinds
from .test_validation import has, meaning_of

APP = "app: shop\nroles: [clerk]\n"
STATEMENTS = """
key: statements
fields:
  - {key: seller, type: user}
  - {key: month, type: text}
  - {key: total, type: currency}
  - {key: labels, type: multi_select, options: [a, b]}
indexes:
  - {fields: [seller, month], unique: true, message: One statement per seller and month}
  - {fields: [month, total]}
"""


def _index_names(platform, table_key: str) -> set[str]:
    with platform.session() as s:
        name = platform.schema(s).table(table_key).sql.name
    return {ix["name"] for ix in sa.inspect(platform.engine).get_indexes(name)}


def _admin_id(platform) -> int:
    from cubebase.platform.users import find_user_id

    with platform.session() as s:
        return find_user_id(platform, s, "admin@example.com")


def test_indexes_apply_export_and_round_trip(platform, write_app):
    path = write_app({"app.yaml": APP, "statements.yaml": STATEMENTS})
    result = apply(platform, path)
    text = result.plan.describe()
    assert "Indexes of `statements`: add no two records with the same seller, month" in text
    assert "“One statement per seller and month”" in text
    assert "add an index over month, total (faster lists and filters)" in text
    names = _index_names(platform, "statements")
    assert sum(n.startswith("uqm_") for n in names) == 1
    assert sum(n.startswith("ixm_") for n in names) == 1
    assert_in_sync(platform, path)  # the export writes `indexes:` back the same
    add(platform, "statements", {"seller": _admin_id(platform), "month": "2024-05"})
    with pytest.raises(ValidationError) as err:
        add(platform, "statements", {"seller": _admin_id(platform), "month": "2024-05"})
    assert err.value.problems[0].message == "One statement per seller and month"


def test_a_renamed_field_keeps_its_index_and_removing_one_is_a_step(platform, write_app):
    path = write_app({"app.yaml": APP, "statements.yaml": STATEMENTS}, "shop")
    apply(platform, path)
    before = _index_names(platform, "statements")
    renamed = (
        STATEMENTS.replace(
            "{key: month, type: text}", "{key: period, type: text, renamed_from: month}"
        )
        .replace("[seller, month]", "[seller, period]")
        .replace("[month, total]", "[period, total]")
    )
    path = write_app({"app.yaml": APP, "statements.yaml": renamed}, "shop")
    assert kinds(apply(platform, path).plan) == ["rename_field", "change_field"]  # its label
    assert _index_names(platform, "statements") == before
    assert_in_sync(platform, path)
    fewer = renamed.replace("  - {fields: [period, total]}\n", "")
    path = write_app({"app.yaml": APP, "statements.yaml": fewer}, "shop")
    result = apply(platform, path)
    assert kinds(result.plan) == ["set_indexes"]
    assert "remove an index over period, total" in result.plan.describe()
    assert not any(n.startswith("ixm_") for n in _index_names(platform, "statements"))
    assert_in_sync(platform, path)


def test_a_unique_index_over_repeats_is_reported_and_refused(platform, write_app):
    plain = STATEMENTS.replace(
        "  - {fields: [seller, month], unique: true, message: One statement per seller and month}\n",
        "",
    )
    path = write_app({"app.yaml": APP, "statements.yaml": plain}, "shop")
    apply(platform, path)
    me = _admin_id(platform)
    add(platform, "statements", *[{"seller": me, "month": "2024-05"}] * 2)
    path = write_app({"app.yaml": APP, "statements.yaml": STATEMENTS}, "shop")
    from cubebase.schema_defs import load_app, plan_app

    plan = plan_app(platform, load_app(path))
    assert "! 2 records repeat a combination of seller, month" in plan.describe()
    before = snapshot(platform)
    with pytest.raises(ConflictError) as err:
        apply(platform, path, dry_run=True)
    assert "2 records repeat a combination" in err.value.message
    with pytest.raises(ConflictError):
        apply(platform, path)
    assert snapshot(platform) == before


def test_index_mistakes_name_file_line_and_key(platform):
    problems = meaning_of(
        platform,
        {
            "app.yaml": APP,
            "t.yaml": """
            key: t
            fields:
              - {key: a, type: text}
              - {key: b, type: multi_select, options: [x]}
            indexes:
              - {fields: [a, nope]}
              - {fields: [a, b]}
              - {fields: [a]}
              - {fields: [a, a]}
              - {fields: [a, created_at], message: Hello}
              - {fields: [a, created_at]}
            """,
        },
    )
    has(
        problems,
        "shop/t.yaml:6 indexes[0].fields[1]: unknown field `nope`",
        "shop/t.yaml:7 indexes[1].fields[1]: a multi_select field (`b`) cannot be in an index",
        "shop/t.yaml:8 indexes[2].fields: an index needs 2 to 6 fields",
        "shop/t.yaml:9 indexes[3].fields[1]: `a` is listed twice in this index",
        "shop/t.yaml:10 indexes[4].message: only a unique index has a `message`",
        "shop/t.yaml:11 indexes[5]: this index repeats index 5 of `t`",
    )
