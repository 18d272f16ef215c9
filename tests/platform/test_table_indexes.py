"""A table's `indexes`: plain and unique indexes over several fields, added and
removed online; a unique one refuses a repeated combination on every write path."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from cubebase.platform.errors import BadRequest, ConflictError, ValidationError
from tests.platform.test_concurrency import _race, postgres_only

DEAL_PER_DAY = {"fields": ["customer", "closed_on"], "unique": True}


def _indexes(platform, table_key: str) -> dict[str, dict]:
    with platform.session() as session:
        name = platform.schema(session).table(table_key).sql.name
    return {ix["name"]: ix for ix in sa.inspect(platform.engine).get_indexes(name)}


def _ids(platform, table_key: str, *keys: str) -> tuple[int, list[int]]:
    with platform.session() as session:
        t = platform.schema(session).table(table_key)
        return t.id, [t.field(k).id for k in keys]


@pytest.fixture
def acme(crm, admin):
    with crm.session() as session:
        rs = crm.records(session, admin)
        ids = [rs.create("customers", {"name": n}).id for n in ("Acme", "Bolt")]
        session.commit()
    return ids


def test_indexes_are_named_from_ids_and_survive_a_rename(crm):
    with crm.schema_editor() as ed:
        ed.set_indexes("customers", [{"fields": ["stage", "name"]}])
        ed.set_indexes("deals", [DEAL_PER_DAY])
    tid, (stage, name) = _ids(crm, "customers", "stage", "name")
    assert f"ixm_t{tid}_f{stage}_f{name}" in _indexes(crm, "customers")
    with crm.schema_editor() as ed:
        ed.update_field("customers", "stage", key="status")
    assert f"ixm_t{tid}_f{stage}_f{name}" in _indexes(crm, "customers")
    with crm.session() as session:
        config = crm.schema(session).table("customers").config
    assert config["indexes"] == [{"fields": [stage, name]}]
    with crm.schema_editor() as ed:
        ed.set_indexes("customers", [])
    assert not any(n.startswith("ixm_") for n in _indexes(crm, "customers"))


def test_a_repeated_combination_is_a_problem_on_both_fields(crm, admin, acme):
    with crm.schema_editor() as ed:
        ed.set_indexes("deals", [DEAL_PER_DAY])
    with crm.session() as session:
        rs = crm.records(session, admin)
        first = rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-01"})
        with pytest.raises(ValidationError) as err:
            rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-01", "amount": 3})
        assert [p.field for p in err.value.problems] == ["customer", "closed_on"]
        assert err.value.problems[0].message == (
            "Another deal already has this customer and closed on"
        )
        # another day, another customer, or a blank day: no conflict
        other = rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-02"})
        rs.create("deals", {"customer": acme[1], "closed_on": "2024-05-01"})
        rs.create("deals", {"customer": acme[0]})
        rs.create("deals", {"customer": acme[0]})
        # an update into the combination, and back out of it
        with pytest.raises(ValidationError):
            rs.update("deals", other.id, {"closed_on": "2024-05-01"})
        rs.update("deals", other.id, {"amount": 10})  # fields outside the index: fine
        # the trash does not block it; restoring the trashed one then does
        rs.delete("deals", first.id)
        rs.update("deals", other.id, {"closed_on": "2024-05-01"})
        with pytest.raises(ConflictError) as err:
            rs.restore("deals", first.id)
        assert "Another deal already has this customer and closed on" in err.value.message


def test_bulk_and_the_message_of_the_index(crm, admin, acme):
    with crm.schema_editor() as ed:
        ed.set_indexes("deals", [{**DEAL_PER_DAY, "message": "One deal per customer and day"}])
    with crm.session() as session:
        rs = crm.records(session, admin)
        rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-01"})
        rows = [
            {"customer": acme[1], "closed_on": "2024-05-01"},
            {"customer": acme[0], "closed_on": "2024-05-01"},  # taken
            {"customer": acme[1], "closed_on": "2024-05-01"},  # twice in the batch
        ]
        with pytest.raises(ValidationError) as err:
            rs.bulk_create("deals", rows)
        got = {(p.extra["row"], p.field, p.message) for p in err.value.problems}
        assert (1, "customer", "One deal per customer and day") in got
        assert (
            2,
            "closed_on",
            "One deal per customer and day (the same combination is twice here)",
        ) in got
        assert {row for row, _, _ in got} == {1, 2}
        assert len(rs.list("deals").records) == 1


def test_a_unique_index_over_repeats_is_refused_and_nothing_changes(crm, admin, acme):
    with crm.session() as session:
        rs = crm.records(session, admin)
        for _ in range(3):
            rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-01"})
        session.commit()
    with pytest.raises(ConflictError) as err, crm.schema_editor() as ed:
        ed.set_indexes("deals", [DEAL_PER_DAY])
    assert "3 records repeat a combination" in err.value.message
    assert err.value.details == [{"index": ["customer", "closed_on"], "records": 3}]
    assert not any(n.startswith("uqm_") for n in _indexes(crm, "deals"))
    with crm.session() as session:
        assert "indexes" not in crm.schema(session).table("deals").config
    with crm.schema_editor() as ed:
        assert ed.count_index_conflicts("deals", ["customer", "closed_on"]) == 3
        ed.set_indexes("deals", [{"fields": ["customer", "closed_on"]}])  # plain: fine


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"fields": ["name", "nope"]}, "has no field `nope`"),
        ({"fields": ["name", "tags"]}, "(`tags`) cannot be in an index"),
        ({"fields": ["name"]}, "2 to 6 fields"),
        ({"fields": ["name", "name"]}, "names a field twice"),
        ({"fields": ["name", "phone"], "message": "x"}, "only a unique index has a `message`"),
    ],
)
def test_bad_indexes_are_refused(crm, spec, words):
    with pytest.raises(BadRequest) as err, crm.schema_editor() as ed:
        ed.set_indexes("customers", [spec])
    assert words in err.value.message


def test_the_same_unique_index_twice_is_refused(crm):
    with pytest.raises(BadRequest) as err, crm.schema_editor() as ed:
        ed.set_indexes(
            "customers",
            [
                {"fields": ["name", "phone"], "unique": True},
                {"fields": ["phone", "name"], "unique": True},
            ],
        )
    assert "Index 2 repeats index 1" in err.value.message


def test_deleting_a_field_removes_its_indexes_and_a_type_change_keeps_them(crm, admin, acme):
    with crm.schema_editor() as ed:
        ed.set_indexes("deals", [DEAL_PER_DAY, {"fields": ["stage", "amount"]}])
        ed.change_field_type("deals", "closed_on", "text")
    names = _indexes(crm, "deals")
    assert sum(n.startswith("uqm_") for n in names) == 1
    with crm.session() as session:
        rs = crm.records(session, admin)
        rs.create("deals", {"customer": acme[0], "closed_on": "May"})
        with pytest.raises(ValidationError):
            rs.create("deals", {"customer": acme[0], "closed_on": "May"})
    with crm.schema_editor() as ed:
        ed.delete_field("deals", "amount", confirm=True)
        with pytest.raises(BadRequest, match="remove the index first"):
            ed.change_field_type("deals", "closed_on", "multi_select", {"options": ["May"]})
    assert not any(n.startswith("ixm_") for n in _indexes(crm, "deals"))
    with crm.session() as session:
        config = crm.schema(session).table("deals").config
    assert len(config["indexes"]) == 1 and config["indexes"][0]["unique"]


def test_a_table_rebuilt_by_sqlite_keeps_its_unique_index(crm, admin, acme):
    # adding a link on SQLite rebuilds the table (batch mode): the index must stay
    with crm.schema_editor() as ed:
        ed.set_indexes("deals", [DEAL_PER_DAY])
        ed.add_field("deals", {"key": "region", "type": "link", "to": "regions"})
        ed.delete_field("deals", "region")
    with crm.session() as session:
        rs = crm.records(session, admin)
        rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-01"})
        with pytest.raises(ValidationError):
            rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-01"})
    assert any(n.startswith("uqm_") for n in _indexes(crm, "deals"))


@postgres_only
def test_the_same_combination_at_the_same_time(crm, admin, acme):
    with crm.schema_editor() as ed:
        ed.set_indexes("deals", [{**DEAL_PER_DAY, "message": "One deal per customer and day"}])
    values = {"customer": acme[0], "closed_on": "2024-05-01"}
    first, second = _race(
        crm,
        admin,
        lambda rs: rs.create("deals", {**values, "amount": 1}),
        lambda rs: rs.create("deals", {**values, "amount": 2}),
    )
    assert not isinstance(first, Exception), first
    assert isinstance(second, ValidationError), second
    assert [(p.field, p.message) for p in second.problems] == [
        ("customer", "One deal per customer and day"),
        ("closed_on", "One deal per customer and day"),
    ]
    with crm.session() as session:
        assert len(crm.records(session, admin).list("deals").records) == 1


def test_the_database_index_decides_when_the_check_is_passed(crm, admin, acme, monkeypatch):
    # what a writer that lost the race meets: the index itself, as the same problem
    from cubebase.platform.records import writing

    with crm.schema_editor() as ed:
        ed.set_indexes("deals", [DEAL_PER_DAY])
    monkeypatch.setattr(writing, "unique_together_problems", lambda *a, **k: [])
    with crm.session() as session:
        rs = crm.records(session, admin)
        rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-01"})
        with pytest.raises(ValidationError) as err:
            rs.create("deals", {"customer": acme[0], "closed_on": "2024-05-01"})
    assert [p.field for p in err.value.problems] == ["customer", "closed_on"]
    assert "Another deal already has this customer and closed on" in err.value.message
