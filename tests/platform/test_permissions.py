"""Permissions as formulas: row rules, field rules and the lock rule on every path.

The world: a region tree (Europe > North > Oslo, Europe > South), salespeople who
own customers, a regional manager of North, a director, finance (no phone
numbers), and notes closed by a lock rule.
"""

from __future__ import annotations

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.errors import (
    BadRequest,
    Forbidden,
    LockedError,
    NotFound,
    ValidationError,
)
from cubebase.platform.records import Condition, FormulaFilter
from cubebase.platform.users import add_role, create_user, load_actor

CUSTOMER_RULES = [
    {
        "role": "salesperson",
        "read": "owner = USER()",
        "create": "TRUE",
        "update": "owner = USER()",
    },
    {
        "role": "regional_manager",
        "read": "ISUNDER(region, USER().region)",
        "update": "ISUNDER(region, USER().region)",
        "delete": "ISUNDER(region, USER().region)",
        "create": "ISUNDER(region, USER().region)",
    },
    {"role": "director", "read": "TRUE"},
    {"role": "finance", "read": "TRUE"},
]


def build_rules(platform) -> None:
    with platform.schema_editor() as ed:
        for role in ("salesperson", "regional_manager", "director", "finance", "intern"):
            add_role(ed, role)
        ed.add_field("users", {"key": "region", "type": "link", "to": "regions"})
        ed.add_field("customers", {"key": "score", "type": "integer"})
        ed.add_field("customers", {"key": "notes", "type": "text"})
        ed.create_table(
            "notes",
            "Notes",
            fields=[
                {"key": "customer", "type": "link", "to": "customers", "related_name": "notes_"},
                {"key": "text", "type": "long_text"},
                {"key": "closed", "type": "boolean"},
                {"key": "author", "type": "user", "default": "USER()"},
            ],
        )
        ed.set_permissions("customers", CUSTOMER_RULES)
        ed.set_field_permissions("customers", "phone", [{"role": "finance", "read": "FALSE"}])
        ed.set_field_permissions(
            "customers", "score", [{"role": "salesperson", "read": "TRUE", "write": "FALSE"}]
        )
        # salespeople see notes only on real customers, not on leads
        ed.set_field_permissions(
            "customers", "notes", [{"role": "salesperson", "read": 'stage = "customer"'}]
        )
        ed.set_permissions(
            "deals",
            [
                {"role": "salesperson", "read": "customer.owner = USER()", "create": "TRUE"},
                {"role": "director", "read": "TRUE"},
            ],
        )
        ed.set_field_permissions("deals", "closed_on", [{"role": "salesperson", "read": "FALSE"}])
        everyone = ["salesperson", "regional_manager", "director", "finance"]
        ed.set_permissions("users", [{"role": r, "read": "TRUE"} for r in everyone])
        ed.set_permissions("regions", [{"role": r, "read": "TRUE"} for r in everyone])
        ed.set_permissions(
            "notes",
            [
                {
                    "role": "salesperson",
                    "read": "customer.owner = USER()",
                    "create": "TRUE",
                    "update": "TRUE",
                    "delete": "TRUE",
                }
            ],
        )
        ed.set_lock("notes", "closed")


pytestmark = pytest.mark.schema.with_args(build_rules)


@pytest.fixture
def world(records):
    """Regions, users and customers; returns a dict of ids and a ``service(name)``."""
    s = records
    europe = s.create("regions", {"name": "Europe"}).id
    north = s.create("regions", {"name": "North", "parent": europe}).id
    oslo = s.create("regions", {"name": "Oslo", "parent": north}).id
    south = s.create("regions", {"name": "South", "parent": europe}).id
    users = {}
    for name, roles, region in [
        ("ann", ["salesperson"], oslo),
        ("bo", ["salesperson"], south),
        ("mia", ["regional_manager"], north),
        ("dan", ["director"], None),
        ("fay", ["finance"], None),
        ("ivy", ["intern"], None),
        ("sam", ["salesperson", "finance"], south),
    ]:
        uid = create_user(s.platform, s.session, f"{name}@example.com", name=name, roles=roles)
        s.update("users", uid, {"region": region})
        users[name] = uid
    c = {}
    for key, owner, region, stage in [
        ("a1", "ann", oslo, "customer"),
        ("a2", "ann", north, "lead"),
        ("b1", "bo", south, "customer"),
        ("b2", "bo", oslo, "lead"),
        ("x", None, europe, "lead"),
    ]:
        c[key] = s.create(
            "customers",
            {
                "name": key,
                "owner": users[owner] if owner else None,
                "region": region,
                "stage": stage,
                "phone": "+47 1234 5678",
                "score": 5,
                "notes": f"about {key}",
            },
        ).id
    d = {k: s.create("deals", {"customer": c[k], "amount": "100"}).id for k in ("a1", "b1")}

    def service(name: str):
        actor = load_actor(s.platform, s.session, users[name])
        return s.platform.records(s.session, actor)

    return {"users": users, "c": c, "d": d, "service": service, "regions": {"north": north}}


def ids(page) -> set[int]:
    return {r.id for r in page.records}


def names(service, table="customers", **kw) -> set[str]:
    return {r.values["name"] for r in service.list(table, **kw).records}


# --- row rules on every read path -----------------------------------------------------


def test_each_role_sees_its_rows_in_lists_counts_and_searches(world):
    ann, mia, dan, ivy = (world["service"](n) for n in ("ann", "mia", "dan", "ivy"))
    assert names(ann) == {"a1", "a2"}
    assert names(mia) == {"a1", "a2", "b2"}  # North and below: Oslo
    assert names(dan) == {"a1", "a2", "b1", "b2", "x"}
    assert names(ivy) == set()  # a role without a rule gets nothing
    assert ann.count("customers") == 2
    assert mia.count("customers") == 3
    assert ivy.count("customers") == 0
    search = FormulaFilter('CONTAINS(name, "1")')
    assert names(ann, where=search) == {"a1"}
    assert names(mia, where=search) == {"a1"}
    assert ann.count("customers", where=search) == 1
    # the ids a sweep acts on: the same rows, in id order
    c = world["c"]
    assert ann.ids("customers") == sorted([c["a1"], c["a2"]])
    assert ann.ids("customers", where=search) == [c["a1"]]
    assert ivy.ids("customers") == []
    # the second page path (cursor) and a sort by another field keep the rule
    page = ann.list("customers", sort="-name", limit=1)
    assert [r.values["name"] for r in page.records] == ["a2"]
    nxt = ann.list("customers", sort="-name", limit=1, cursor=page.next_cursor)
    assert [r.values["name"] for r in nxt.records] == ["a1"]
    assert nxt.next_cursor is None


def test_a_user_with_two_roles_gets_the_union(world):
    sam = world["service"]("sam")  # salesperson + finance: finance reads every customer
    assert names(sam) == {"a1", "a2", "b1", "b2", "x"}


def test_a_statement_shared_between_users_keeps_each_users_rows(world):
    """Lists reuse statement templates across users with the same roles: the user id
    is a parameter, never baked in."""
    ann, bo = world["service"]("ann"), world["service"]("bo")
    for _ in range(2):
        assert names(ann, sort="name") == {"a1", "a2"}
        assert names(bo, sort="name") == {"b1", "b2"}


def test_a_record_outside_the_rule_does_not_exist_for_the_user(world):
    ann, c = world["service"]("ann"), world["c"]
    assert ann.get("customers", c["a1"]).values["name"] == "a1"
    for call in (
        lambda: ann.get("customers", c["b1"]),
        lambda: ann.update("customers", c["b1"], {"name": "mine"}),
        lambda: ann.delete("customers", c["b1"]),
        lambda: ann.history("customers", c["b1"]),
        lambda: ann.related("customers", c["b1"], "deals"),
        lambda: ann.preview("customers", {}, c["b1"]),
    ):
        with pytest.raises(NotFound) as err:
            call()
        assert "No customer with id" in err.value.message
    # guessing ids never tells an existing record from a missing one
    with pytest.raises(NotFound) as missing:
        ann.get("customers", 999_999)
    with pytest.raises(NotFound) as hidden:
        ann.get("customers", c["b1"])
    assert missing.value.message.replace("999999", "?") == hidden.value.message.replace(
        str(c["b1"]), "?"
    )


def test_related_lists_show_only_readable_records(world):
    dan, ann = world["service"]("dan"), world["service"]("ann")
    assert [r.id for r in dan.related("customers", world["c"]["a1"], "deals")] == [world["d"]["a1"]]
    assert [r.id for r in ann.related("customers", world["c"]["a1"], "deals")] == [world["d"]["a1"]]
    mia = world["service"]("mia")  # may read the customer, but no deals at all
    assert mia.related("customers", world["c"]["a1"], "deals") == []


def test_aggregates_in_a_users_filter_count_only_what_the_user_can_read(world, records):
    c = world["c"]
    records.create("deals", {"customer": c["b2"], "amount": "7"})
    mia = world["service"]("mia")  # reads customer b2, but no deals
    probe = FormulaFilter("COUNT(deals) > 0")
    assert names(mia, where=probe) == set()
    dan = world["service"]("dan")
    assert names(dan, where=probe) == {"a1", "b1", "b2"}
    # a link path in a filter does not read through to records the user cannot see
    ann = world["service"]("ann")
    assert ann.count("deals", where=FormulaFilter('customer.name = "b1"')) == 0


def test_a_users_filter_cannot_probe_a_hidden_field(world):
    fay, ann = world["service"]("fay"), world["service"]("ann")
    for where in (
        FormulaFilter('phone = "+47 1234 5678"'),
        FormulaFilter('LEN(phone) > 3 OR name = "x"'),
        Condition("phone", "=", "+47 1234 5678"),
    ):
        with pytest.raises(BadRequest) as err:
            fay.list("customers", where=where)
        assert "phone" in err.value.message
    with pytest.raises(BadRequest):
        fay.list("customers", sort="phone")
    # a hidden field of another table, reached through an aggregate
    with pytest.raises(BadRequest) as err:
        ann.list("customers", where=FormulaFilter("COUNTIF(deals, ISBLANK(deals.closed_on)) > 0"))
    assert "closed_on" in err.value.message


# --- field rules ----------------------------------------------------------------------


def test_a_hidden_field_is_absent_not_blank_everywhere(world, records):
    fay, c = world["service"]("fay"), world["c"]
    rec = fay.get("customers", c["a1"])
    assert "phone" not in rec.values and rec.values["name"] == "a1"
    assert all("phone" not in r.values for r in fay.list("customers").records)
    assert all("phone" not in r.values for r in fay.list("customers", sort="name").records)
    listed = fay.list("customers", fields=["name", "phone"]).records
    assert listed and all(set(r.values) == {"name"} for r in listed)
    assert "phone" not in rec.to_json(fay.table("customers"))["fields"]
    records.update("customers", c["a1"], {"phone": "+47 9999 0000"})
    changes = [ch["field"] for h in fay.history("customers", c["a1"]) for ch in h["changes"]]
    assert "phone" not in changes and "name" in changes
    admin_changes = [
        ch["field"] for h in records.history("customers", c["a1"]) for ch in h["changes"]
    ]
    assert "phone" in admin_changes


def test_a_field_hidden_on_some_records_is_absent_only_there(world):
    ann, c = world["service"]("ann"), world["c"]
    by_name = {r.values["name"]: r for r in ann.list("customers").records}
    assert by_name["a1"].values["notes"] == "about a1"  # a customer
    assert "notes" not in by_name["a2"].values  # a lead
    assert "notes" not in ann.get("customers", c["a2"]).values
    sorted_ = {r.values["name"]: r for r in ann.list("customers", sort="name").records}
    assert "notes" in sorted_["a1"].values and "notes" not in sorted_["a2"].values


def test_writing_a_field_the_user_may_not_write_is_refused_naming_it(world):
    ann, fay, c = world["service"]("ann"), world["service"]("fay"), world["c"]
    with pytest.raises(Forbidden) as err:
        ann.update("customers", c["a1"], {"score": 9})
    assert "`score`" in err.value.message
    assert err.value.details == [{"field": "score", "message": "you may not change this field"}]
    with pytest.raises(Forbidden) as err:
        ann.create("customers", {"name": "new", "owner": world["users"]["ann"], "score": 1})
    assert "`score`" in str(err.value.details)
    ann.update("customers", c["a1"], {"score": 5})  # unchanged: nothing to refuse
    assert ann.get("customers", c["a1"]).values["score"] == 5
    with pytest.raises(Forbidden):  # finance may read the row, but has no update rule
        fay.update("customers", c["a1"], {"phone": "1"})


def test_only_admins_change_roles_and_active(world, records):
    # users may not give themselves roles, even with an update rule on users
    ann_id = world["users"]["ann"]
    records.session.commit()
    with records.platform.schema_editor() as ed:
        ed.set_permissions(
            "users", [{"role": "salesperson", "read": "TRUE", "update": "email = USER().email"}]
        )
    with records.platform.session() as session:
        ann = records.platform.records(session, load_actor(records.platform, session, ann_id))
        ann.update("users", ann_id, {"name": "Ann B."})
        for change in ({"roles": ["salesperson", "admin"]}, {"active": False}):
            with pytest.raises(Forbidden):
                ann.update("users", ann_id, change)
        session.rollback()


# --- writes: no escaping one's own reach ------------------------------------------------


def test_nobody_moves_a_record_out_of_their_own_reach(world):
    ann, mia, c, u = (world["service"]("ann"), world["service"]("mia"), world["c"], world["users"])
    with pytest.raises(Forbidden) as err:
        ann.update("customers", c["a1"], {"owner": u["bo"]})
    assert "out of your reach" in err.value.message
    assert ann.get("customers", c["a1"]).values["owner"] == u["ann"]
    # a regional manager may move customers within the region, not out of it
    mia.update("customers", c["a2"], {"region": world["regions"]["north"]})
    south = world["service"]("dan").get("customers", c["b1"]).values["region"]
    with pytest.raises(Forbidden):
        mia.update("customers", c["a2"], {"region": south})


def test_nobody_creates_a_record_they_could_not_read(world):
    ann, u = world["service"]("ann"), world["users"]
    with pytest.raises(Forbidden) as err:
        ann.create("customers", {"name": "for bo", "owner": u["bo"]})
    assert "could not see" in err.value.message
    created = ann.create("customers", {"name": "mine", "owner": u["ann"]})
    assert created.values["owner"] == u["ann"]
    with pytest.raises(Forbidden) as err:
        world["service"]("dan").create("customers", {"name": "no create rule"})
    assert "may not add customers" in err.value.message
    with pytest.raises(Forbidden) as err:
        ann.bulk_create(
            "customers", [{"name": "ok", "owner": u["ann"]}, {"name": "no", "owner": u["bo"]}]
        )
    assert [d["row"] for d in err.value.details] == [1]
    assert names(world["service"]("dan")) >= {"mine"} and "ok" not in names(world["service"]("dan"))


def test_a_link_to_a_record_the_user_cannot_read_is_refused_like_a_missing_one(world):
    ann, c = world["service"]("ann"), world["c"]
    with pytest.raises(ValidationError) as err:
        ann.create("deals", {"customer": c["b1"], "amount": "5"})
    assert err.value.problems[0].field == "customer"
    assert "does not exist" in err.value.problems[0].message


def test_delete_and_restore_need_the_delete_rule_and_purge_needs_an_admin(world, records):
    ann, mia, c = world["service"]("ann"), world["service"]("mia"), world["c"]
    with pytest.raises(Forbidden):
        ann.delete("customers", c["a1"])  # salespeople have no delete rule
    mia.delete("customers", c["a2"])
    assert "a2" not in names(mia)
    assert ids(mia.list("customers", trashed=True)) == {c["a2"]}
    assert ids(ann.list("customers", trashed=True)) == {c["a2"]}  # her own customer
    assert world["service"]("bo").list("customers", trashed=True).records == []
    mia.restore("customers", c["a2"])
    mia.delete("customers", c["a2"])
    with pytest.raises(Forbidden):
        mia.purge("customers", c["a2"])
    records.purge("customers", c["a2"])


# --- the lock rule binds everyone --------------------------------------------------------


def test_a_locked_record_is_read_only_for_everyone_on_every_write_path(world, records):
    ann = world["service"]("ann")
    note = ann.create("notes", {"customer": world["c"]["a1"], "text": "call back"})
    closed = ann.update("notes", note.id, {"closed": True})  # closing is the last change
    assert closed.values["closed"] is True
    system = records.system()
    for service in (ann, records, system):
        for call in (
            lambda s=service: s.update("notes", note.id, {"text": "changed"}),
            lambda s=service: s.update("notes", note.id, {"closed": False}),
            lambda s=service: s.delete("notes", note.id),
        ):
            with pytest.raises(LockedError) as err:
                call()
            assert err.value.http_status == 409 and err.value.code == "locked"
    assert records.get("notes", note.id).values["text"] == "call back"
    assert records.get("notes", note.id).version == closed.version


# --- admins and the system ---------------------------------------------------------------


def test_admins_are_not_limited_by_row_or_field_rules(world, records):
    assert names(records) == {"a1", "a2", "b1", "b2", "x"}
    rec = records.get("customers", world["c"]["a1"])
    assert rec.values["phone"] and rec.values["notes"]
    records.update("customers", world["c"]["b1"], {"score": 1, "owner": world["users"]["ann"]})


def test_removing_a_role_takes_effect_on_the_next_request(world, records):
    uid = world["users"]["ann"]
    assert names(world["service"]("ann")) == {"a1", "a2"}
    records.update("users", uid, {"roles": []})
    again = records.platform.records(
        records.session, load_actor(records.platform, records.session, uid)
    )
    assert names(again) == set()
    records.update("users", uid, {"active": False})
    assert load_actor(records.platform, records.session, uid) is None


def test_the_system_actor_reads_everything(world, records):
    assert names(records.platform.records(records.session, Actor.system_actor())) == names(records)


# --- rules are checked like any formula -------------------------------------------------


def test_rules_are_checked_when_saved(crm):
    with pytest.raises(Exception) as err, crm.schema_editor() as ed:
        ed.set_permissions("customers", [{"role": "salesperson", "read": "regoin = 1"}])
    assert "regoin" in str(err.value)
    with pytest.raises(BadRequest) as err, crm.schema_editor() as ed:
        ed.set_permissions("customers", [{"role": "nobody", "read": "TRUE"}])
    assert "unknown role" in err.value.message
    with pytest.raises(Exception) as err, crm.schema_editor() as ed:
        ed.set_permissions("customers", [{"role": "salesperson", "read": "name"}])
    assert "Boolean" in str(err.value) or "TRUE or FALSE" in str(err.value)
    with pytest.raises(BadRequest) as err, crm.schema_editor() as ed:
        ed.set_permissions("customers", [{"role": "salesperson", "reed": "TRUE"}])
    assert "reed" in err.value.message
    with crm.session() as session:
        table = crm.schema(session).table("customers")
        assert [r["role"] for r in table.config["permissions"]] == [
            r["role"] for r in CUSTOMER_RULES
        ]


def test_a_field_used_by_a_rule_cannot_be_deleted(crm):
    with pytest.raises(Exception) as err, crm.schema_editor() as ed:
        ed.delete_field("customers", "owner", confirm=True)
    assert "read rule" in str(err.value)


# --- preview and explain ------------------------------------------------------------------


def test_explain_table_shows_the_rules_in_effect_and_the_visible_rows(world, records):
    from cubebase.platform.explain import describe, explain_table

    session, platform = records.session, records.platform
    mia = load_actor(platform, session, world["users"]["mia"])
    result = explain_table(platform, session, mia, "customers")
    assert result["visible_rows"] == 3 and not result["more_than_cap"]
    assert result["actions"]["read"]["rules"] == [
        {"role": "regional_manager", "rule": "ISUNDER(region, USER().region)"}
    ]
    fay = load_actor(platform, session, world["users"]["fay"])
    text = describe(explain_table(platform, session, fay, "customers"))
    assert "5 records visible" in text
    assert "hidden fields: phone" in text
    assert "delete  nothing: none of the user's roles has a rule for this" in text
    capped = explain_table(platform, session, fay, "customers", cap=2)
    assert capped["visible_rows"] == 2 and capped["more_than_cap"]


def test_explain_record_says_which_rule_grants_or_denies(world, records):
    from cubebase.platform.explain import describe, explain_record

    session, platform, c = records.session, records.platform, world["c"]
    ann = load_actor(platform, session, world["users"]["ann"])
    mine = explain_record(platform, session, ann, "customers", c["a1"])
    assert mine["actions"]["read"]["allowed"]
    assert mine["actions"]["read"]["because"] == (
        "role salesperson: `owner = USER()` is TRUE for this customer"
    )
    assert not mine["actions"]["delete"]["allowed"]
    assert "has a delete rule" in mine["actions"]["delete"]["because"]
    assert mine["fields"]["score"]["read"] and not mine["fields"]["score"]["write"]
    theirs = explain_record(platform, session, ann, "customers", c["b1"], "notes")
    assert not theirs["actions"]["read"]["allowed"]
    assert "`owner = USER()` is FALSE" in theirs["actions"]["read"]["because"]
    assert theirs["fields"] == {
        "notes": {
            "read": False,
            "read_because": theirs["actions"]["read"]["because"],
            "write": False,
            "write_because": theirs["actions"]["update"]["because"],
        }
    }
    lead = explain_record(platform, session, ann, "customers", c["a2"], "notes")
    assert lead["fields"]["notes"]["read"] is False
    assert 'read `stage = "customer"`' in lead["fields"]["notes"]["read_because"]
    assert "customers #" in describe(lead)


def test_explain_tells_admins_they_are_unlimited_but_locked_out_of_closed_records(world, records):
    from cubebase.platform.explain import explain_record

    ann = world["service"]("ann")
    note = ann.create("notes", {"customer": world["c"]["a1"], "closed": True})
    admin = load_actor(records.platform, records.session, 1)
    result = explain_record(records.platform, records.session, admin, "notes", note.id)
    assert result["actions"]["read"]["because"].endswith("rules do not limit them")
    assert result["locked"] and not result["actions"]["update"]["allowed"]
    assert "locked by `closed`" in result["actions"]["update"]["because"]


def test_the_access_command_explains_in_words(world, records, monkeypatch, tmp_path):
    from click.testing import CliRunner

    from cubebase.cli import main

    records.session.commit()
    url = records.platform.engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("CUBEBASE_DATABASE_URL", url)
    monkeypatch.setenv("CUBEBASE_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    table = runner.invoke(main, ["access", "ann@example.com", "customers"])
    assert table.exit_code == 0, table.output
    assert "customers: 2 records visible" in table.output
    why = runner.invoke(main, ["access", "ann@example.com", "customers", str(world["c"]["b1"])])
    assert why.exit_code == 0, why.output
    assert "read    no" in why.output and "is FALSE for this customer" in why.output
    missing = runner.invoke(main, ["access", "nobody@example.com", "customers"])
    assert missing.exit_code == 1 and "No user with e-mail" in missing.output


def test_a_default_of_user_is_the_user_creating_the_record(world, records):
    ann = world["service"]("ann")
    note = ann.create("notes", {"customer": world["c"]["a1"], "text": "hello"})
    assert note.values["author"] == world["users"]["ann"]
    assert records.system().create("notes", {"text": "by the platform"}).values["author"] is None
