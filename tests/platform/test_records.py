"""The records service: validation, conflicts, bulk writes, history, trash,
automatic fields and autonumbers, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from cubebase.platform.errors import (
    BadRequest,
    ConflictError,
    CubebaseError,
    NotFound,
    ValidationError,
)
from cubebase.platform.models import HistoryEntry
from cubebase.platform.users import create_user, load_actor


def _history_rows(records) -> int:
    return records.session.scalar(sa.select(sa.func.count()).select_from(HistoryEntry))


def _problems(err: ValidationError) -> dict:
    return {p.field: p.message for p in err.problems}


@pytest.fixture
def north(records):
    return records.create("regions", {"name": "North"})


@pytest.fixture
def acme(records, north):
    return records.create(
        "customers", {"name": "Acme", "email": "info@acme.test", "region": north.id}
    )


@pytest.fixture
def other_user(crm, records):
    """A second administrator, acting in the same transaction."""
    uid = create_user(crm, records.session, "bob@example.com", name="Bob", roles=["admin"])
    return load_actor(crm, records.session, uid)


# --- validation --------------------------------------------------------------------


def test_validation_reports_one_problem_per_field_all_at_once(records):
    before = _history_rows(records)
    with pytest.raises(ValidationError) as err:
        records.create(
            "customers",
            {
                "email": "not-an-email",
                "stage": "sold",
                "phone": "call me maybe",
                "region": 999,
                "colour": "red",
            },
        )
    problems = _problems(err.value)
    assert set(problems) == {"name", "email", "stage", "phone", "region", "colour"}
    assert len(err.value.problems) == 6
    assert problems["name"] == "is required"
    assert "not one of the options" in problems["stage"]
    assert "does not exist" in problems["region"]
    assert "no field `colour`" in problems["colour"]
    assert err.value.http_status == 422
    details = err.value.to_dict()["error"]["details"]
    assert {d["field"] for d in details} == set(problems)
    assert records.count("customers") == 0
    assert _history_rows(records) == before


def test_link_and_unique_problems_come_with_conversion_problems(records, acme):
    with pytest.raises(ValidationError) as err:
        records.create("customers", {"name": "Other", "email": "INFO@acme.test", "phone": "?"})
    assert set(_problems(err.value)) == {"email", "phone"}
    assert "already used" in _problems(err.value)["email"]


def test_unknown_table_and_record(records):
    with pytest.raises(NotFound, match="no table `nope`"):
        records.create("nope", {"name": "x"})
    with pytest.raises(NotFound, match="no table `nope`"):
        records.list("nope")
    for bad_id in (12345, "abc", None, True, -1, 2**70):
        with pytest.raises(NotFound):
            records.get("regions", bad_id)


def test_values_must_be_a_mapping(records):
    with pytest.raises(BadRequest):
        records.create("regions", ["North"])


def test_a_link_to_a_missing_or_trashed_record_is_refused(records, north):
    south = records.create("regions", {"name": "South"})
    records.delete("regions", south.id)
    for region in (south.id, 424242):
        with pytest.raises(ValidationError) as err:
            records.create("customers", {"name": "X", "region": region})
        assert list(_problems(err.value)) == ["region"]
        assert str(region) in _problems(err.value)["region"]
    tag = records.create("tags", {"name": "vip"})
    with pytest.raises(ValidationError) as err:
        records.create("customers", {"name": "X", "tags": [tag.id, 5555]})
    assert "5555" in _problems(err.value)["tags"]
    with pytest.raises(ValidationError):
        records.create("customers", {"name": "X", "owner": 999})
    assert records.count("customers") == 0


def test_duplicate_unique_value_is_refused(records, acme):
    with pytest.raises(ValidationError) as err:
        records.create("customers", {"name": "Copy", "email": "info@acme.test"})
    assert list(_problems(err.value)) == ["email"]
    assert "info@acme.test" in _problems(err.value)["email"]
    other = records.create("customers", {"name": "Other", "email": "other@acme.test"})
    with pytest.raises(ValidationError):
        records.update("customers", other.id, {"email": "info@acme.test"})
    assert records.get("customers", other.id).values["email"] == "other@acme.test"
    # keeping one's own value is not a duplicate
    records.update("customers", acme.id, {"email": "info@acme.test", "name": "Acme Inc"})


def test_a_trashed_record_does_not_block_its_unique_value(records, acme):
    records.delete("customers", acme.id)
    again = records.create("customers", {"name": "Acme 2", "email": "info@acme.test"})
    assert again.values["email"] == "info@acme.test"
    records.delete("regions", records.create("regions", {"name": "West"}).id)
    records.create("regions", {"name": "West"})  # regions were rebuilt on SQLite (batch)


def test_required_field_cannot_be_cleared(records, acme):
    with pytest.raises(ValidationError) as err:
        records.update("customers", acme.id, {"name": ""})
    assert _problems(err.value) == {"name": "is required"}
    with pytest.raises(ValidationError):
        records.update("customers", acme.id, {"name": None})
    assert records.get("customers", acme.id).values["name"] == "Acme"


def test_a_failed_write_leaves_the_transaction_usable(records, acme):
    with pytest.raises(ValidationError):
        records.create("customers", {"name": "Copy", "email": "info@acme.test"})
    with pytest.raises(ConflictError):
        records.update("customers", acme.id, {"name": "B"}, version=99)
    records.create("customers", {"name": "Fine"})
    records.session.commit()
    assert records.count("customers") == 2


def test_a_hook_can_refuse_a_write_and_nothing_is_written(crm, records):
    def refuse(service, table, record_id, old, new):
        if table.key == "deals" and new.get("stage") == "lost":
            raise ConflictError("lost deals need a reason")

    customer = records.create("customers", {"name": "Acme"})
    before = _history_rows(records)
    crm.hooks.before_write.append(refuse)
    with pytest.raises(ConflictError, match="reason"):
        records.create("deals", {"customer": customer.id, "stage": "lost"})
    assert records.count("deals") == 0
    assert _history_rows(records) == before
    deal = records.create("deals", {"customer": customer.id, "stage": "new"})
    assert deal.values["number"] == 1  # the refused write did not use up a number
    with pytest.raises(ConflictError):
        records.update("deals", deal.id, {"stage": "lost"})
    assert records.get("deals", deal.id).values["stage"] == "new"
    assert records.get("deals", deal.id).version == 1


# --- optimistic locking --------------------------------------------------------------


def test_stale_version_is_a_conflict_and_writes_nothing(records, acme):
    v2 = records.update("customers", acme.id, {"phone": "+1 555 0100"}, version=1)
    assert v2.version == 2
    before = _history_rows(records)
    with pytest.raises(ConflictError) as err:
        records.update("customers", acme.id, {"name": "Stale"}, version=1)
    assert err.value.http_status == 409
    assert err.value.details[0]["current_version"] == 2
    assert err.value.details[0]["record"]["fields"]["phone"] == "+1 555 0100"
    assert "version 2" in err.value.message
    got = records.get("customers", acme.id)
    assert (got.version, got.values["name"]) == (2, "Acme")
    assert _history_rows(records) == before
    with pytest.raises(ConflictError):
        records.delete("customers", acme.id, version=1)
    assert records.count("customers") == 1


def test_the_same_links_in_another_order_are_no_change(records, acme):
    t1, t2 = records.bulk_create("tags", [{"name": "a"}, {"name": "b"}])
    records.update("customers", acme.id, {"tags": [t2, t1]})
    again = records.update("customers", acme.id, {"tags": [t2, t1, t2]})
    assert again.version == 2 and again.values["tags"] == [t1, t2]
    assert len(records.history("customers", acme.id)) == 2


def test_bad_version_is_a_bad_request(records, acme):
    for bad in ("1", True, 1.0):
        with pytest.raises(BadRequest):
            records.update("customers", acme.id, {"name": "X"}, version=bad)


def test_an_update_without_changes_writes_nothing(records, acme):
    before = _history_rows(records)
    same = records.update("customers", acme.id, {"name": "Acme", "email": "INFO@acme.test"})
    assert same.version == 1
    assert _history_rows(records) == before


# --- bulk ----------------------------------------------------------------------------


def test_bulk_create_is_all_or_nothing_and_names_the_row(records):
    rows = [{"name": f"R{i}"} for i in range(10)]
    rows[7] = {"name": ""}
    rows[3] = {"name": "R3", "parent": 999}
    before = _history_rows(records)
    with pytest.raises(ValidationError) as err:
        records.bulk_create("regions", rows)
    found = sorted((p.extra["row"], p.field) for p in err.value.problems)
    assert found == [(3, "parent"), (7, "name")]
    assert all(d["row"] in (3, 7) for d in err.value.details)
    assert records.count("regions") == 0
    assert _history_rows(records) == before


def test_bulk_create_refuses_a_duplicate_within_the_batch_and_against_the_table(records):
    records.create("regions", {"name": "Old"})
    with pytest.raises(ValidationError) as err:
        records.bulk_create(
            "regions", [{"name": "A"}, {"name": "B"}, {"name": "A"}, {"name": "Old"}]
        )
    rows = sorted((p.extra["row"], p.field) for p in err.value.problems)
    assert (2, "name") in rows and (3, "name") in rows
    assert all("A" in p.message or "Old" in p.message for p in err.value.problems)
    assert records.count("regions") == 1


def test_bulk_create_writes_everything_with_history(records, admin):
    tags = records.bulk_create("tags", [{"name": "a"}, {"name": "b"}])
    ids = records.bulk_create(
        "customers",
        [{"name": f"C{i}", "tags": tags[: i % 3], "email": f"c{i}@x.test"} for i in range(25)],
    )
    assert len(ids) == 25 == len(set(ids)) == records.count("customers")
    got = records.get("customers", ids[4])
    assert got.values["tags"] == tags[:1] and got.values["name"] == "C4"
    h = records.history("customers", ids[2])
    assert [e["action"] for e in h] == ["create"]
    assert h[0]["by"] == admin.user_id
    changed = {c["field"]: c["new"] for c in h[0]["changes"]}
    assert changed["tags"] == tags[:2] and changed["email"] == "c2@x.test"


def test_bulk_create_of_nothing(records):
    assert records.bulk_create("regions", []) == []


def test_bulk_create_takes_any_iterable_and_names_rows_that_are_not_objects(records):
    assert len(records.bulk_create("regions", ({"name": n} for n in "ab"))) == 2
    with pytest.raises(ValidationError) as err:
        records.bulk_create("regions", [{"name": "c"}, "d", {"name": ""}])
    assert sorted((p.extra["row"], p.field) for p in err.value.problems) == [
        (1, None),
        (2, "name"),
    ]
    with pytest.raises(BadRequest):
        records.bulk_create("regions", {"name": "x"})
    assert records.count("regions") == 2


def test_a_field_with_a_default_is_not_missing_when_other_fields_fail(crm, records):
    records.session.commit()
    with crm.schema_editor() as ed:
        ed.update_field("customers", "stage", required=True, default='"lead"')
    rs = crm.records(records.session, records.actor)
    with pytest.raises(ValidationError) as err:
        rs.create("customers", {"name": "A", "email": "bad"})
    assert _problems(err.value).keys() == {"email"}
    assert rs.create("customers", {"name": "A"}).values["stage"] == "lead"


# --- automatic fields and autonumbers ---------------------------------------------


def test_created_and_updated_at_by_are_kept(records, acme, admin, other_user):
    created = records.get("customers", acme.id).values
    assert created["created_by"] == created["updated_by"] == admin.user_id
    bob = records.platform.records(records.session, other_user)
    updated = bob.update("customers", acme.id, {"name": "Acme Ltd"}).values
    assert updated["created_by"] == admin.user_id
    assert updated["updated_by"] == other_user.user_id
    assert updated["created_at"] == created["created_at"]
    assert created["updated_at"] <= updated["updated_at"] <= datetime.now(UTC)
    with pytest.raises(ValidationError) as err:
        bob.update("customers", acme.id, {"created_by": other_user.user_id})
    assert list(_problems(err.value)) == ["created_by"]


def test_autonumber_counts_one_to_n_also_in_bulk(records, acme):
    first = records.create("deals", {"customer": acme.id})
    ids = records.bulk_create("deals", [{"customer": acme.id} for _ in range(5)])
    last = records.create("deals", {"customer": acme.id})
    numbers = [records.get("deals", i).values["number"] for i in [first.id, *ids, last.id]]
    assert numbers == list(range(1, 8))
    records.delete("deals", last.id)
    assert records.create("deals", {"customer": acme.id}).values["number"] == 8  # never reused


def test_a_failed_bulk_create_uses_up_no_numbers(records, acme):
    with pytest.raises(ValidationError):
        records.bulk_create("deals", [{"customer": acme.id}, {"customer": 999}])
    assert records.create("deals", {"customer": acme.id}).values["number"] == 1


def test_adding_an_autonumber_numbers_existing_records(crm, records):
    ids = records.bulk_create("tags", [{"name": n} for n in "cab"])
    records.delete("tags", ids[1])
    records.session.commit()
    with crm.schema_editor() as ed:
        ed.add_field("tags", {"key": "code", "type": "autonumber", "prefix": "T-"})
    rs = crm.records(records.session, records.actor)
    assert [rs.get("tags", i, trashed=i == ids[1]).values["code"] for i in ids] == [1, 2, 3]
    assert rs.create("tags", {"name": "d"}).values["code"] == 4


# --- history ------------------------------------------------------------------------


def test_history_is_complete(records, acme, north, admin, other_user):
    t1 = records.create("tags", {"name": "a"})
    t2 = records.create("tags", {"name": "b"})
    bob = records.platform.records(records.session, other_user)
    records.update("customers", acme.id, {"tags": [t1.id, t2.id], "phone": "+44 20 1234"})
    bob.update("customers", acme.id, {"tags": [t2.id], "phone": None, "stage": "lead"})
    bob.delete("customers", acme.id)
    records.restore("customers", acme.id)
    h = records.history("customers", acme.id)
    assert [e["action"] for e in h] == ["create", "update", "update", "delete", "restore"]
    assert [e["version"] for e in h] == [1, 2, 3, 4, 5]
    assert [e["by"] for e in h] == [admin.user_id] * 2 + [other_user.user_id] * 2 + [admin.user_id]
    for e in h:
        at = datetime.fromisoformat(e["at"].replace("Z", "+00:00"))
        assert at.tzinfo is not None and at <= datetime.now(UTC)
    changes = [{c["field"]: (c["old"], c["new"]) for c in e["changes"]} for e in h]
    assert changes[0] == {
        "name": (None, "Acme"),
        "email": (None, "info@acme.test"),
        "region": (None, north.id),
    }
    assert changes[1] == {"tags": ([], [t1.id, t2.id]), "phone": (None, "+44 20 1234")}
    assert changes[2] == {
        "tags": ([t1.id, t2.id], [t2.id]),
        "phone": ("+44 20 1234", None),
        "stage": (None, "lead"),
    }
    assert changes[3] == changes[4] == {}


def test_history_of_a_missing_record(records):
    with pytest.raises(NotFound):
        records.history("customers", 77)


# --- trash, restore, purge -----------------------------------------------------------


def test_trash_hides_and_restore_brings_back(records, acme):
    other = records.create("customers", {"name": "Other"})
    records.delete("customers", acme.id)
    with pytest.raises(NotFound):
        records.get("customers", acme.id)
    assert [r.id for r in records.list("customers").records] == [other.id]
    assert records.count("customers") == 1
    trashed = records.list("customers", trashed=True).records
    assert [r.id for r in trashed] == [acme.id]
    assert trashed[0].deleted_at is not None
    assert "deleted_at" in trashed[0].to_json(records.table("customers"))
    assert records.get("customers", acme.id, trashed=True).values["name"] == "Acme"
    with pytest.raises(NotFound):
        records.update("customers", acme.id, {"name": "X"})
    with pytest.raises(NotFound):
        records.delete("customers", acme.id)
    back = records.restore("customers", acme.id)
    assert back.values["email"] == "info@acme.test" and back.deleted_at is None
    assert records.count("customers") == 2
    with pytest.raises(NotFound):
        records.restore("customers", acme.id)  # not in the trash any more


def test_restore_is_refused_when_the_unique_value_was_reused(records, acme):
    records.delete("customers", acme.id)
    records.create("customers", {"name": "New Acme", "email": "info@acme.test"})
    with pytest.raises(ConflictError) as err:
        records.restore("customers", acme.id)
    assert "email" in err.value.message and "info@acme.test" in err.value.message
    assert records.get("customers", acme.id, trashed=True).deleted_at is not None


def test_purge_is_refused_while_other_records_link_to_it(records, acme, north):
    records.delete("regions", north.id)
    with pytest.raises(ConflictError, match="region"):
        records.purge("regions", north.id)
    tag = records.create("tags", {"name": "vip"})
    records.update("customers", acme.id, {"tags": [tag.id]})
    records.delete("tags", tag.id)
    with pytest.raises(ConflictError, match="tags"):
        records.purge("tags", tag.id)
    assert records.get("customers", acme.id).values["tags"] == [tag.id]
    records.update("customers", acme.id, {"tags": [], "region": None})
    records.purge("tags", tag.id)
    records.purge("regions", north.id)
    with pytest.raises(NotFound):
        records.get("regions", north.id, trashed=True)


def test_purge_needs_the_record_in_the_trash(records, north):
    with pytest.raises(NotFound):
        records.purge("regions", north.id)


def test_errors_carry_their_http_status(records):
    for exc, status in ((ValidationError([]), 422), (ConflictError("x"), 409)):
        assert isinstance(exc, CubebaseError) and exc.http_status == status
