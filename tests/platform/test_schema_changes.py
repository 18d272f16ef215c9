"""Schema changes keep the data: add, rename, retype and delete fields and tables
on a live database with records, on both databases; refused changes and failures
leave schema and data exactly as they were."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from cubebase.platform.core import Platform
from cubebase.platform.errors import BadRequest, ConflictError, NotFound, ValidationError
from cubebase.platform.records import RecordsService
from cubebase.platform.schema_changes import DataLossError


@contextmanager
def service(platform: Platform, actor) -> Iterator[RecordsService]:
    """A records service in its own committed transaction."""
    with platform.session() as s:
        yield platform.records(s, actor)
        s.commit()


def columns(platform: Platform, table_key: str) -> set[str]:
    with platform.session() as s:
        table = platform.schema(s).table(table_key)
    return {c["name"] for c in sa.inspect(platform.engine).get_columns(table.sql.name)}


def table_names(platform: Platform) -> set[str]:
    return set(sa.inspect(platform.engine).get_table_names())


def snapshot(platform: Platform, actor, table_key: str) -> list[dict]:
    """Every record of a table (trash included) as JSON, to compare before/after."""
    with service(platform, actor) as rs:
        table = rs.table(table_key)
        live = rs.list(table_key, limit=1000).records
        trashed = rs.list(table_key, limit=1000, trashed=True).records
        return [r.to_json(table) for r in live + trashed]


def field_keys(platform: Platform, table_key: str) -> list[str]:
    with platform.session() as s:
        return list(platform.schema(s).table(table_key).fields)


PEOPLE = [
    {"name": "Ann", "age": "41", "born": "1983-04-05", "score": "7.25", "level": "gold"},
    {"name": "Bob", "age": "about 30", "born": "last spring", "score": "12", "level": "silver"},
    {"name": "Cy", "age": " 1,200 ", "born": "2001-12-31", "level": "platinum"},
    {"name": "Di", "seen": "2024-05-01T23:30:00+02:00"},
    {"name": "Ed", "age": "", "seen": "2024-05-02T08:00:00Z", "level": "gold"},
]


def build_people(platform: Platform) -> None:
    """A table of people with text that is sometimes a number, sometimes a date."""
    from cubebase.platform.actor import Actor

    with platform.schema_editor() as ed:
        ed.create_table(
            "people",
            "People",
            fields=[
                {"key": "name", "type": "text", "required": True},
                {"key": "age", "type": "text"},
                {"key": "born", "type": "text"},
                {"key": "score", "type": "number", "precision": 2},
                {"key": "seen", "type": "datetime"},
                {"key": "level", "type": "text"},
            ],
        )
    with service(platform, Actor.system_actor()) as rs:
        rs.bulk_create("people", PEOPLE)


pytestmark = pytest.mark.schema.with_args(build_people)


@pytest.fixture
def people(crm, admin) -> dict[str, int]:
    """Name -> id of the people records."""
    with service(crm, admin) as rs:
        return {r.values["name"]: r.id for r in rs.list("people").records}


# --- adding ------------------------------------------------------------------------


def test_add_fields_to_a_table_with_records(crm, admin, people):
    before = snapshot(crm, admin, "people")
    with crm.schema_editor() as ed:
        ed.add_field("people", {"key": "nickname", "type": "text", "unique": True})
        ed.add_field("people", {"key": "region", "type": "link", "to": "regions"})
        ed.add_field("people", {"key": "friends", "type": "link", "to": "people", "many": True})
        ed.add_field("people", {"key": "tags", "type": "multi_select", "options": ["a", "b"]})
        ed.add_field("people", {"key": "member", "type": "autonumber"})
    after = snapshot(crm, admin, "people")
    for old, new in zip(before, after, strict=True):
        assert {k: v for k, v in new["fields"].items() if k in old["fields"]} == old["fields"]
        assert new["fields"]["nickname"] is None and new["fields"]["region"] is None
        assert new["fields"]["friends"] == [] and new["fields"]["tags"] == []
        assert new["version"] == old["version"]
    assert sorted(r["fields"]["member"] for r in after) == [1, 2, 3, 4, 5]
    with service(crm, admin) as rs:
        north = rs.create("regions", {"name": "North"})
        rs.update(
            "people",
            people["Ann"],
            {"nickname": "annie", "region": north.id, "friends": [people["Bob"]], "tags": ["a"]},
        )
        with pytest.raises(ValidationError):
            rs.update("people", people["Bob"], {"nickname": "annie"})
        assert rs.create("people", {"name": "Flo"}).values["member"] == 6


def test_add_field_refusals(crm, people):
    cases = [
        ({"key": "Name", "type": "text"}, BadRequest, "not a valid field key"),
        ({"key": "id", "type": "text"}, BadRequest, "reserved"),
        ({"key": "name", "type": "text"}, ConflictError, "already has a field `name`"),
        ({"key": "x", "type": "colour"}, BadRequest, "not a field type"),
        ({"key": "x", "type": "created_at"}, BadRequest, "not a field type"),
        ({"key": "x", "type": "link", "to": "nope"}, BadRequest, "needs `to`"),
        ({"key": "x", "type": "select"}, BadRequest, "options"),
        ({"key": "x", "type": "boolean", "unique": True}, BadRequest, "cannot be unique"),
        (
            {"key": "x", "type": "link", "to": "tags", "many": True, "unique": True},
            BadRequest,
            "many-to-many link field cannot be unique",
        ),
        ({"key": "x", "type": "number", "precision": 99}, BadRequest, "precision"),
        (
            {"key": "x", "type": "link", "to": "regions", "related_name": "name"},
            ConflictError,
            "already a field",
        ),
    ]
    for spec, exc, message in cases:
        with pytest.raises(exc, match=message), crm.schema_editor() as ed:
            ed.add_field("people", spec)
    assert field_keys(crm, "people")[:6] == ["name", "age", "born", "score", "seen", "level"]
    assert "x" not in field_keys(crm, "people")
    assert "name" in field_keys(crm, "regions")


# --- a failed change leaves nothing behind ---------------------------------------


class Boom(Exception):
    pass


def test_a_failure_inside_the_editor_rolls_back_every_change(crm, admin, people):
    before = snapshot(crm, admin, "people")
    cols = columns(crm, "people")
    tables = table_names(crm)
    with pytest.raises(Boom), crm.schema_editor() as ed:
        ed.add_field("people", {"key": "extra", "type": "text", "unique": True})
        ed.add_field("people", {"key": "region", "type": "link", "to": "regions"})
        ed.add_field("people", {"key": "friends", "type": "link", "to": "people", "many": True})
        ed.update_field("people", "name", key="full_name", label="Full name")
        ed.change_field_type("people", "score", "text")
        ed.delete_field("people", "level", confirm=True)
        ed.update_table("people", new_key="persons")
        ed.create_table("projects", fields=[{"key": "title", "type": "text"}])
        raise Boom
    assert columns(crm, "people") == cols
    assert table_names(crm) == tables
    assert snapshot(crm, admin, "people") == before
    with crm.session() as s:
        schema = crm.schema(s)
        assert not schema.has_table("persons") and not schema.has_table("projects")
        t = schema.table("people")
        assert list(t.fields)[:6] == ["name", "age", "born", "score", "seen", "level"]
        assert t.field("score").type == "number"
    with service(crm, admin) as rs:  # and the table still works
        rs.create("people", {"name": "Gus", "score": "1.5"})


def test_a_refused_change_in_the_middle_rolls_back_the_earlier_ones(crm, admin, people):
    before = snapshot(crm, admin, "people")
    with pytest.raises(DataLossError), crm.schema_editor() as ed:
        ed.add_field("people", {"key": "extra", "type": "integer"})
        ed.change_field_type("people", "age", "integer")  # "about 30" cannot convert
    assert "extra" not in field_keys(crm, "people")
    assert not any(c.endswith("_new") for c in columns(crm, "people"))
    assert snapshot(crm, admin, "people") == before


# --- renames ---------------------------------------------------------------------


def test_rename_field_and_table_touch_metadata_only(crm, admin):
    with service(crm, admin) as rs:
        north = rs.create("regions", {"name": "North"})
        acme = rs.create("customers", {"name": "Acme", "email": "a@acme.test", "region": north.id})
        rs.create("deals", {"customer": acme.id, "amount": "10"})
        rs.update("customers", acme.id, {"name": "Acme Ltd"})
    before = snapshot(crm, admin, "customers")
    cols = columns(crm, "customers")
    with crm.schema_editor() as ed:
        ed.update_field("customers", "name", key="company", label="Company")
        ed.update_table("customers", new_key="clients", label="Clients")
    assert columns(crm, "clients") == cols
    after = snapshot(crm, admin, "clients")
    renamed = [
        {**r, "fields": {("name" if k == "company" else k): v for k, v in r["fields"].items()}}
        for r in after
    ]
    assert renamed == before
    with service(crm, admin) as rs:
        assert rs.table("clients").display_field == "company"
        with pytest.raises(NotFound):
            rs.list("customers")
        deal = rs.list("deals").records[0]
        assert deal.values["customer"] == acme.id
        assert rs.table("deals").fields["customer"].target_key == "clients"
        assert "deals" in rs.table("clients").fields  # the reverse side follows
        history = rs.history("clients", acme.id)
        assert {c["field"] for c in history[1]["changes"]} == {"company"}
        rs.create("deals", {"customer": acme.id})


def test_rename_refusals(crm):
    cases = [
        (lambda ed: ed.update_field("customers", "name", key="email"), ConflictError),
        (lambda ed: ed.update_field("customers", "name", key="Bad Key"), BadRequest),
        (lambda ed: ed.update_table("customers", new_key="deals"), ConflictError),
        (lambda ed: ed.update_table("users", new_key="people"), BadRequest),
        (lambda ed: ed.update_field("users", "email", key="mail"), BadRequest),
        (lambda ed: ed.update_field("customers", "created_at", key="made"), BadRequest),
        (lambda ed: ed.update_field("customers", "name", label=""), BadRequest),
    ]
    for change, exc in cases:
        with pytest.raises(exc), crm.schema_editor() as ed:
            change(ed)
    assert "name" in field_keys(crm, "customers")


# --- type changes --------------------------------------------------------------------


def test_text_to_number_previews_refuses_then_blanks_with_history(crm, admin, people):
    with crm.schema_editor() as ed:
        preview = ed.preview_type_change("people", "age", "integer")
    assert (preview.total, preview.failed) == (3, 1)
    assert preview.examples == [
        {"id": people["Bob"], "value": "about 30", "message": preview.examples[0]["message"]}
    ]
    assert "about 30" in preview.examples[0]["message"]
    before = snapshot(crm, admin, "people")
    with pytest.raises(DataLossError) as err, crm.schema_editor() as ed:
        ed.change_field_type("people", "age", "integer")
    assert "1 of 3 values" in err.value.message
    assert err.value.details[0]["examples"][0]["value"] == "about 30"
    assert snapshot(crm, admin, "people") == before
    with crm.schema_editor() as ed:
        result = ed.change_field_type("people", "age", "integer", confirm=True)
    assert result.failed == 1
    with service(crm, admin) as rs:
        ages = {n: rs.get("people", i).values["age"] for n, i in people.items()}
        assert ages == {"Ann": 41, "Bob": None, "Cy": 1200, "Di": None, "Ed": None}
        bob = rs.history("people", people["Bob"])
        assert bob[-1]["action"] == "schema"
        assert "integer" in bob[-1]["note"]
        assert bob[-1]["changes"] == [
            {
                "field": "age",
                "field_id": bob[-1]["changes"][0]["field_id"],
                "old": "about 30",
                "new": None,
            }
        ]
        assert [e["action"] for e in rs.history("people", people["Ann"])] == ["create"]
        with pytest.raises(ValidationError):
            rs.create("people", {"name": "Gus", "age": "twelve"})


def test_every_lost_value_is_in_the_history(crm, admin):
    with crm.schema_editor() as ed:
        ed.create_table("notes", fields=[{"key": "text", "type": "text"}])
    with service(crm, admin) as rs:
        ids = rs.bulk_create("notes", [{"text": f"note {i}"} for i in range(30)])
    with crm.schema_editor() as ed:
        result = ed.change_field_type("notes", "text", "number", confirm=True)
    assert result.failed == 30 and len(result.examples) == 20  # the preview is short
    with service(crm, admin) as rs:
        lost = [h for i in ids for h in rs.history("notes", i) if h["action"] == "schema"]
        assert len(lost) == 30


@pytest.mark.parametrize(
    ("field", "new_type", "config", "expected"),
    [
        ("score", "text", {}, {"Ann": "7.25", "Bob": "12.00", "Cy": None}),
        ("score", "integer", {}, None),  # 7.25 is not whole
        (
            "score",
            "number",
            {"precision": 4},
            {"Ann": Decimal("7.2500"), "Bob": Decimal("12.0000")},
        ),
        ("born", "date", {}, {"Ann": date(1983, 4, 5), "Bob": None, "Cy": date(2001, 12, 31)}),
        ("level", "select", {"options": ["gold", "silver"]}, {"Ann": "gold", "Cy": None}),
        (
            "level",
            "multi_select",
            {"options": ["gold", "silver", "platinum"]},
            {"Ann": ["gold"], "Di": [], "Cy": ["platinum"]},
        ),
        ("seen", "date", {}, {"Di": date(2024, 5, 1), "Ed": date(2024, 5, 2), "Ann": None}),
        ("seen", "text", {}, {"Di": "2024-05-01T21:30:00Z"}),
        ("name", "long_text", {}, {"Ann": "Ann"}),
    ],
)
def test_type_changes_convert_values(crm, admin, people, field, new_type, config, expected):
    with crm.schema_editor() as ed:
        ed.change_field_type("people", field, new_type, config, confirm=True)
    with service(crm, admin) as rs:
        f = rs.table("people").field(field)
        assert f.type == new_type
        got = {n: rs.get("people", i).values[field] for n, i in people.items()}
        if expected is None:
            assert all(v is None for v in got.values()) or got["Ann"] is None
        else:
            assert {n: got[n] for n in expected} == expected
        listed = {r.id: r.values[field] for r in rs.list("people").records}
        assert listed == {people[n]: v for n, v in got.items()}


def test_narrowing_a_type_is_refused_unless_confirmed(crm, admin, people):
    """Fewer decimals round values and a date drops the time of day: the preview says
    so, the change needs confirming, and the history keeps what was there."""
    before = snapshot(crm, admin, "people")
    with crm.schema_editor() as ed:
        preview = ed.preview_type_change("people", "score", "number", {"precision": 0})
        assert (preview.total, preview.failed, preview.changed) == (2, 0, 1)
        assert preview.examples[0]["value"] == "7.25"
        assert "would become 7" in preview.examples[0]["message"]
        seen = ed.preview_type_change("people", "seen", "date")
        assert (seen.total, seen.changed) == (2, 2)
    for field, new_type, config in (("score", "number", {"precision": 0}), ("seen", "date", {})):
        with pytest.raises(DataLossError, match="rounded or lose their time"):
            with crm.schema_editor() as ed:
                ed.change_field_type("people", field, new_type, config)
    assert snapshot(crm, admin, "people") == before
    with crm.schema_editor() as ed:
        ed.change_field_type("people", "score", "number", {"precision": 0}, confirm=True)
        ed.change_field_type("people", "seen", "date", confirm=True)
        ed.change_field_type("people", "score", "number", {"precision": 3})  # widening
    with service(crm, admin) as rs:
        ann = rs.get("people", people["Ann"]).values
        assert ann["score"] == Decimal("7.000")
        assert rs.get("people", people["Di"]).values["seen"] == date(2024, 5, 1)
        last = rs.history("people", people["Ann"])[-1]
        assert last["action"] == "schema" and last["changes"][0]["old"] == "7.25"
        assert last["changes"][0]["new"] == "7"
        assert [e["action"] for e in rs.history("people", people["Bob"])] == ["create"]


def test_date_to_datetime_and_back(crm, admin, people):
    with crm.schema_editor() as ed:
        ed.change_field_type("people", "born", "date", confirm=True)
        ed.change_field_type("people", "born", "datetime")
    with service(crm, admin) as rs:
        assert rs.get("people", people["Ann"]).values["born"] == datetime(1983, 4, 5, tzinfo=UTC)
    with crm.schema_editor() as ed:
        ed.change_field_type("people", "born", "date")
    with service(crm, admin) as rs:
        assert rs.get("people", people["Ann"]).values["born"] == date(1983, 4, 5)


def test_type_change_keeps_unique_and_refuses_new_duplicates(crm, admin):
    with crm.schema_editor() as ed:
        ed.create_table("codes", fields=[{"key": "code", "type": "text", "unique": True}])
    with service(crm, admin) as rs:
        rs.bulk_create("codes", [{"code": "1"}, {"code": "1.0"}, {"code": "2"}])
    with pytest.raises(ConflictError, match="repeat"), crm.schema_editor() as ed:
        ed.change_field_type("codes", "code", "number")
    with service(crm, admin) as rs:
        assert sorted(r.values["code"] for r in rs.list("codes").records) == ["1", "1.0", "2"]
        assert rs.table("codes").field("code").type == "text"
        rs.update("codes", rs.list("codes").records[1].id, {"code": "3"})
    with crm.schema_editor() as ed:
        ed.change_field_type("codes", "code", "integer")
    with service(crm, admin) as rs:
        assert rs.table("codes").field("code").unique
        with pytest.raises(ValidationError):
            rs.create("codes", {"code": 2})


def test_fields_that_cannot_change_type(crm):
    for table, field, new in [
        ("customers", "region", "text"),
        ("customers", "tags", "text"),
        ("customers", "owner", "integer"),
        ("deals", "number", "integer"),
        ("customers", "created_at", "text"),
        ("customers", "name", "link"),
        ("users", "email", "text"),
        ("customers", "name", "select"),  # no options
    ]:
        with pytest.raises(BadRequest), crm.schema_editor() as ed:
            ed.change_field_type(table, field, new, confirm=True)


# --- deleting ----------------------------------------------------------------------


def test_delete_field_refused_while_it_holds_values(crm, admin, people):
    before = snapshot(crm, admin, "people")
    with pytest.raises(DataLossError) as err, crm.schema_editor() as ed:
        ed.delete_field("people", "level")
    assert "4 values" in err.value.message
    assert snapshot(crm, admin, "people") == before
    with crm.schema_editor() as ed:
        assert ed.delete_field("people", "level", confirm=True) == 4
    assert "level" not in field_keys(crm, "people")
    after = snapshot(crm, admin, "people")
    for old, new in zip(before, after, strict=True):
        old["fields"].pop("level")
        assert new == old


def test_delete_blank_fields_needs_no_confirmation(crm, admin, people):
    with crm.schema_editor() as ed:
        ed.add_field("people", {"key": "tags", "type": "multi_select", "options": ["a"]})
        ed.add_field("people", {"key": "cv", "type": "file"})
        ed.add_field("people", {"key": "friends", "type": "link", "to": "people", "many": True})
        ed.add_field("people", {"key": "boss", "type": "link", "to": "people"})
    with service(crm, admin) as rs:
        rs.update("people", people["Ann"], {"tags": ["a"]})
        rs.update("people", people["Ann"], {"tags": []})
        rs.create("people", {"name": "New", "tags": [], "cv": None})
    with crm.schema_editor() as ed:
        for key in ("tags", "cv", "friends", "boss"):
            assert ed.delete_field("people", key) == 0
    assert {"tags", "cv", "friends", "boss"}.isdisjoint(field_keys(crm, "people"))


def test_delete_link_fields_with_values(crm, admin):
    with service(crm, admin) as rs:
        north = rs.create("regions", {"name": "North"})
        tag = rs.create("tags", {"name": "vip"})
        acme = rs.create("customers", {"name": "Acme", "region": north.id, "tags": [tag.id]})
    with pytest.raises(DataLossError), crm.schema_editor() as ed:
        ed.delete_field("customers", "tags")
    with crm.schema_editor() as ed:
        assert ed.delete_field("customers", "tags", confirm=True) == 1
        assert ed.delete_field("customers", "region", confirm=True) == 1
    with service(crm, admin) as rs:
        got = rs.get("customers", acme.id)
        assert "tags" not in got.values and "region" not in got.values
        assert got.values["name"] == "Acme"
        assert "customers" not in rs.table("regions").fields
        assert "customers" not in rs.table("tags").fields
        rs.purge("regions", rs.delete("regions", north.id) or north.id)


def test_automatic_and_builtin_fields_cannot_be_deleted(crm):
    for table, field in [("customers", "created_at"), ("users", "email"), ("users", "roles")]:
        with pytest.raises(BadRequest), crm.schema_editor() as ed:
            ed.delete_field(table, field, confirm=True)


def test_delete_table(crm, admin):
    with service(crm, admin) as rs:
        acme = rs.create("customers", {"name": "Acme"})
        rs.create("deals", {"customer": acme.id})
    with pytest.raises(ConflictError, match="deals.customer"), crm.schema_editor() as ed:
        ed.delete_table("customers", confirm=True)
    with pytest.raises(ConflictError, match="customers.tags"), crm.schema_editor() as ed:
        ed.delete_table("tags", confirm=True)
    with pytest.raises(DataLossError, match="1 records"), crm.schema_editor() as ed:
        ed.delete_table("deals")
    with pytest.raises(BadRequest), crm.schema_editor() as ed:
        ed.delete_table("users", confirm=True)
    with crm.schema_editor() as ed:
        assert ed.delete_table("deals", confirm=True) == 1  # it has an autonumber
        ed.delete_field("customers", "tags")
        assert ed.delete_table("tags") == 0
    with service(crm, admin) as rs:
        assert not rs.schema.has_table("deals")
        assert "deals" not in rs.table("customers").fields
        assert rs.get("customers", acme.id).values["name"] == "Acme"
    with crm.schema_editor() as ed:  # the key can be used again
        ed.create_table("deals", fields=[{"key": "customer", "type": "link", "to": "customers"}])


# --- unique and options ---------------------------------------------------------


def test_unique_refused_while_values_repeat(crm, admin, people):
    with service(crm, admin) as rs:
        rs.update("people", people["Ed"], {"level": "gold"})
    with pytest.raises(ConflictError) as err, crm.schema_editor() as ed:
        ed.update_field("people", "level", unique=True)
    assert "`gold` (2x)" in err.value.message
    with service(crm, admin) as rs:
        rs.delete("people", people["Ed"])  # a trashed record does not count
    with crm.schema_editor() as ed:
        ed.update_field("people", "level", unique=True)
    with service(crm, admin) as rs:
        with pytest.raises(ValidationError):
            rs.create("people", {"name": "X", "level": "gold"})
        with pytest.raises(ConflictError):
            rs.restore("people", people["Ed"])
    with crm.schema_editor() as ed:
        ed.update_field("people", "level", unique=False)
    with service(crm, admin) as rs:
        rs.create("people", {"name": "X", "level": "gold"})
        rs.restore("people", people["Ed"])


def test_unique_on_a_link_field(crm, admin):
    with service(crm, admin) as rs:
        north = rs.create("regions", {"name": "North"})
        rs.create("customers", {"name": "A", "region": north.id})
    with crm.schema_editor() as ed:
        ed.update_field("customers", "region", unique=True)
    with service(crm, admin) as rs:
        with pytest.raises(ValidationError):
            rs.create("customers", {"name": "B", "region": north.id})
    with crm.schema_editor() as ed:
        ed.update_field("customers", "region", unique=False)


def test_fields_without_a_column_cannot_be_made_unique(crm):
    for table, field in (("customers", "tags"), ("tags", "customers"), ("regions", "children")):
        with pytest.raises(BadRequest, match="cannot be unique"), crm.schema_editor() as ed:
            ed.update_field(table, field, unique=True)


def test_removing_a_select_option_in_use_is_refused(crm, admin):
    with crm.schema_editor() as ed:
        ed.add_field(
            "customers",
            {"key": "labels", "type": "multi_select", "options": ["hot", "cold", "new"]},
        )
    with service(crm, admin) as rs:
        rs.create("customers", {"name": "A", "stage": "lead", "labels": ["cold"]})
    for field, options in (("stage", ["potential", "customer"]), ("labels", ["hot", "new"])):
        with pytest.raises(ConflictError, match="still in use") as err, crm.schema_editor() as ed:
            ed.update_field("customers", field, config={"options": options})
        assert ("lead" if field == "stage" else "cold") in err.value.message
    with crm.schema_editor() as ed:
        ed.update_field("customers", "stage", config={"options": ["lead", "won"]})
        ed.update_field("customers", "labels", config={"options": ["cold", "warm"]})
    with service(crm, admin) as rs:
        assert rs.table("customers").field("stage").config["options"] == ["lead", "won"]
        with pytest.raises(ValidationError):
            rs.create("customers", {"name": "B", "stage": "potential"})


def test_link_settings_cannot_be_changed_in_place(crm, admin):
    with service(crm, admin) as rs:
        north = rs.create("regions", {"name": "North"})
        rs.create("customers", {"name": "A", "region": north.id})
    for config in ({"many": True}, {"to": "tags"}, {"reverse_of": 1}):
        with pytest.raises(BadRequest), crm.schema_editor() as ed:
            ed.update_field("customers", "region", config=config)
    with pytest.raises(BadRequest), crm.schema_editor() as ed:
        ed.update_field("customers", "tags", config={"many": False})
    with service(crm, admin) as rs:
        assert rs.list("customers").records[0].values["region"] == north.id


def test_related_name_can_be_renamed(crm, admin):
    with crm.schema_editor() as ed:
        ed.update_field("deals", "customer", config={"related_name": "opportunities"})
    with service(crm, admin) as rs:
        fields = rs.table("customers").fields
        assert "opportunities" in fields and "deals" not in fields


# --- other processes see changes ---------------------------------------------------


def test_another_process_sees_the_new_schema(crm, admin):
    other = Platform(crm.config, engine=crm.engine)
    with other.session() as s:
        assert "vip" not in other.schema(s).table("customers").fields
    with crm.schema_editor() as ed:
        ed.add_field("customers", {"key": "vip", "type": "boolean"})
    with other.session() as s:
        rs = other.records(s, admin)
        assert rs.create("customers", {"name": "A", "vip": True}).values["vip"] is True


def test_type_change_keeps_a_plain_index(crm, admin):
    with crm.schema_editor() as ed:
        ed.create_table("codes", fields=[{"key": "code", "type": "text", "indexed": True}])
    with service(crm, admin) as rs:
        rs.bulk_create("codes", [{"code": "1"}, {"code": "2"}])
        table = rs.table("codes")
        name = table.sql.name
        wanted = f"ix_t{table.id}_f{table.field('code').id}"
    with crm.schema_editor() as ed:
        ed.change_field_type("codes", "code", "integer")
    with crm.engine.connect() as conn:
        names = {ix["name"] for ix in sa.inspect(conn).get_indexes(name)}
    assert wanted in names
    with service(crm, admin) as rs:
        assert rs.table("codes").field("code").config.get("indexed")
        assert sorted(r.values["code"] for r in rs.list("codes").records) == [1, 2]
