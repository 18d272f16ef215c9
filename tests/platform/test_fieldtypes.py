"""Every field type: what goes in comes back (normalized), through get and list,
on both databases; and input a type cannot take is refused with a clear message."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cubebase.platform.errors import ValidationError
from cubebase.platform.fieldtypes import FIELD_TYPES, ConversionError, get_type
from cubebase.platform.schema import Field

FILE = {
    "key": "ab" * 32,
    "name": "report.pdf",
    "size": 1234,
    "content_type": "application/pdf",
}

THINGS_FIELDS = [
    {"key": "title", "type": "text"},
    {"key": "notes", "type": "long_text"},
    {"key": "ratio", "type": "number", "precision": 3},
    {"key": "measure", "type": "number"},
    {"key": "price", "type": "currency"},
    {"key": "count", "type": "integer"},
    {"key": "done", "type": "boolean"},
    {"key": "due", "type": "date"},
    {"key": "at", "type": "datetime"},
    {"key": "size", "type": "select", "options": ["small", "medium", "large"]},
    {"key": "colors", "type": "multi_select", "options": ["red", "green", "blue"]},
    {"key": "email", "type": "email"},
    {"key": "phone", "type": "phone"},
    {"key": "site", "type": "url"},
    {"key": "region", "type": "link", "to": "regions"},
    {"key": "tags", "type": "link", "to": "tags", "many": True},
    {"key": "owner", "type": "user"},
    {"key": "attachment", "type": "file"},
    {"key": "number", "type": "autonumber"},
]


def build_things(platform) -> None:
    """A table with a field of every type."""
    with platform.schema_editor() as ed:
        ed.create_table("things", "Things", fields=THINGS_FIELDS)


pytestmark = pytest.mark.schema.with_args(build_things)


@pytest.fixture
def things(crm):
    return crm


def _json(records, table: str, record) -> dict:
    return record.to_json(records.table(table))["fields"]


def test_every_user_type_is_covered():
    automatic = {"created_at", "created_by", "updated_at", "updated_by", "formula"}
    covered = {spec["type"] for spec in THINGS_FIELDS}
    assert set(FIELD_TYPES) - automatic <= covered


def test_every_type_round_trips(things, records, admin):
    region = records.create("regions", {"name": "North"})
    t1 = records.create("tags", {"name": "one"})
    t2 = records.create("tags", {"name": "two"})
    sent = {
        "title": "Hello  world ",
        "notes": "line 1\nline 2\n\ttabbed — ünïcödé ✓",
        "ratio": "3.14159",
        "measure": "1.50",
        "price": 1234.5,
        "count": "-7",
        "done": False,
        "due": "2024-02-29",
        "at": "2024-05-01T09:30:00.123456+02:00",
        "size": "medium",
        "colors": ["blue", "red", "blue"],
        "email": " Ann.Lee@Example.COM ",
        "phone": "+1 (555) 010-0200 ext. 12",
        "site": "https://example.com/a?b=c#d",
        "region": region.id,
        "tags": [t2.id, str(t1.id), t2.id],
        "owner": admin.user_id,
        "attachment": FILE,
    }
    expected = {
        "title": "Hello  world ",
        "notes": "line 1\nline 2\n\ttabbed — ünïcödé ✓",
        "ratio": "3.142",
        "measure": "1.5",
        "price": "1234.50",
        "count": -7,
        "done": False,
        "due": "2024-02-29",
        "at": "2024-05-01T07:30:00.123456Z",
        "size": "medium",
        "colors": ["blue", "red"],
        "email": "ann.lee@example.com",
        "phone": "+1 (555) 010-0200 ext. 12",
        "site": "https://example.com/a?b=c#d",
        "region": region.id,
        "tags": sorted([t1.id, t2.id]),
        "owner": admin.user_id,
        "attachment": FILE,
        "number": 1,
    }
    created = records.create("things", sent)
    got = records.get("things", created.id)
    got_json = _json(records, "things", got)
    assert {k: got_json[k] for k in expected} == expected
    assert _json(records, "things", created) == got_json
    listed = records.list("things").records
    assert [_json(records, "things", r) for r in listed] == [got_json]
    # Python values have the documented types
    v = got.values
    assert v["ratio"] == Decimal("3.142") and isinstance(v["price"], Decimal)
    assert v["due"] == date(2024, 2, 29)
    assert v["at"] == datetime(2024, 5, 1, 7, 30, 0, 123456, tzinfo=UTC)
    assert v["done"] is False


def test_blank_values_round_trip(things, records):
    created = records.create("things", {k["key"]: None for k in THINGS_FIELDS[:-1]})
    got = _json(records, "things", records.get("things", created.id))
    for spec in THINGS_FIELDS[:-1]:
        blank = [] if spec["type"] == "multi_select" or spec.get("many") else None
        assert got[spec["key"]] == blank, spec["key"]
    assert got["number"] == 1
    listed = _json(records, "things", records.list("things").records[0])
    assert listed == got


def test_automatic_fields_are_filled(things, records, admin):
    before = datetime.now(UTC)
    r = records.create("things", {"title": "x"})
    doc = _json(records, "things", r)
    assert doc["created_by"] == admin.user_id == doc["updated_by"]
    created_at = datetime.fromisoformat(doc["created_at"].replace("Z", "+00:00"))
    assert before <= created_at <= datetime.now(UTC)
    assert doc["updated_at"] == doc["created_at"]


SINGLE_VALUES = [
    ("ratio", "-0.0005", "-0.001"),  # half away from zero
    ("ratio", 2, "2.000"),
    ("measure", "0.1234567891", "0.1234567891"),
    ("measure", "0.12345678915", "0.1234567892"),
    ("measure", "100", "100"),
    ("measure", "1e3", "1000"),
    ("measure", "1,234.5", "1234.5"),
    ("measure", "-0", "0"),
    ("price", "123456789012.34", "123456789012.34"),
    ("price", "9999999999999.99", "9999999999999.99"),  # 15 digits: exact on SQLite too
    ("price", "1000000000000000000000", "1000000000000000000000.00"),
    ("count", 9_007_199_254_740_993, 9_007_199_254_740_993),  # beyond float precision
    ("count", "12.0", 12),
    ("done", True, True),
    ("due", "2000-01-01", "2000-01-01"),
    ("at", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
    ("at", "2024-06-30T23:59:59-07:00", "2024-07-01T06:59:59Z"),
    ("at", "2024-03-10", "2024-03-10T00:00:00Z"),
    ("at", "1900-01-01T00:00:00Z", "1900-01-01T00:00:00Z"),
    ("colors", [], []),
    ("title", "", ""),
    ("title", "x" * 1000, "x" * 1000),
    ("notes", "y" * 100_000, "y" * 100_000),
]


def test_single_values_round_trip(things, records):
    failures = []
    for field, value, expected in SINGLE_VALUES:
        r = records.create("things", {field: value})
        got = _json(records, "things", records.get("things", r.id))[field]
        listed = records.list("things", where=lambda t, rid=r.id: t.sql.c.id == rid).records
        if got != expected or _json(records, "things", listed[0])[field] != expected:
            failures.append((field, value, expected, got))
    assert failures == []


def test_numbers_are_exact_or_refused(things, records):
    """PostgreSQL keeps 28 digits; SQLite stores floats, so it refuses what it would
    change rather than silently rounding."""
    big = "12345678901234567.89"
    if records.platform.dialect == "sqlite":
        with pytest.raises(ValidationError) as err:
            records.create("things", {"price": big, "measure": "123456789.123456789"})
        assert {p.field for p in err.value.problems} == {"price", "measure"}
        assert "at most 15 significant digits" in err.value.problems[0].message
        assert records.count("things") == 0
    else:
        r = records.create("things", {"price": big, "measure": "12345678.1234567891"})
        doc = _json(records, "things", records.get("things", r.id))
        assert doc["price"] == big
        assert doc["measure"] == "12345678.1234567891"


def test_datetime_without_zone_is_read_in_the_workspace_time_zone(engine, tmp_path):
    from cubebase.platform.bootstrap import init_platform
    from cubebase.platform.config import Config
    from cubebase.platform.core import Platform
    from cubebase.platform.users import find_user_id, load_actor

    p = Platform(
        Config(database_url="sqlite://", data_dir=tmp_path, timezone="Europe/Berlin"),
        engine=engine,
    )
    init_platform(p, admin_password="admin-password-1")
    with p.schema_editor() as ed:
        ed.create_table("events", fields=[{"key": "at", "type": "datetime"}])
    with p.session() as s:
        actor = load_actor(p, s, find_user_id(p, s, "admin@example.com"))
        rs = p.records(s, actor)
        summer = rs.create("events", {"at": "2024-07-01T12:00:00"})
        winter = rs.create("events", {"at": "2024-01-15T12:00:00"})
        table = rs.table("events")
        assert summer.to_json(table)["fields"]["at"] == "2024-07-01T10:00:00Z"
        assert winter.to_json(table)["fields"]["at"] == "2024-01-15T11:00:00Z"
        berlin = winter.values["at"].astimezone(ZoneInfo("Europe/Berlin"))
        assert berlin.hour == 12


def test_random_values_round_trip(things, records):
    """Whatever a type accepts comes back from either database exactly as the type
    itself normalizes it (to_json(to_python(input)))."""
    table = records.table("things")
    finite = st.decimals(allow_nan=False, allow_infinity=False, places=None)
    values = st.fixed_dictionaries(
        {},
        optional={
            "title": st.text(max_size=30),
            "notes": st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
            "ratio": st.one_of(finite, st.integers(-(10**17), 10**17)),
            "price": st.decimals(min_value=-(10**12), max_value=10**12, places=2),
            "count": st.integers(-(2**63) + 1, 2**63 - 1),
            "done": st.booleans(),
            "due": st.dates(),
            "at": st.datetimes(
                timezones=st.one_of(st.none(), st.timezones()),
                min_value=datetime(1, 1, 3),
                max_value=datetime(9999, 12, 29),
            ).map(lambda d: d.isoformat()),
            "size": st.sampled_from(["small", "medium", "large"]),
            "colors": st.lists(st.sampled_from(["red", "green", "blue"]), max_size=4),
            "email": st.emails(),
        },
    )

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(values)
    def check(sent):
        expected = {}
        for key, raw in sent.items():
            f = table.fields[key]
            try:
                py = f.ftype.to_python(f, raw)
                f.ftype.check_storable(f, py, records.platform.dialect)
            except ConversionError:
                return  # refused input is tested elsewhere
            expected[key] = f.ftype.to_json(f, py)
        savepoint = records.session.begin_nested()
        try:
            r = records.create("things", sent)
            doc = _json(records, "things", records.get("things", r.id))
            assert {k: doc[k] for k in expected} == expected
        finally:
            savepoint.rollback()

    check()


def test_dates_at_the_edge_of_the_calendar_are_refused_cleanly(things, records):
    for value in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        with pytest.raises(ValidationError) as err:
            records.create("things", {"at": value})
        assert err.value.problems[0].field == "at"


# --- refused input ------------------------------------------------------------------


BAD_VALUES = [
    ("title", 12, "expected text"),
    ("title", "x" * 1_000_001, "too long"),
    ("title", "a\x00b", "NUL"),
    ("notes", "x" * 100_001, "too long"),
    ("ratio", "abc", "is not a number"),
    ("ratio", "NaN", "finite"),
    ("ratio", "1e100", "too large"),
    ("ratio", "-1e30", "too large"),
    ("ratio", True, "true/false"),
    ("price", [1], "expected a number"),
    ("count", "1.5", "not a whole number"),
    ("count", 2**63, "too large"),
    ("count", "1e400", "too large"),
    ("done", "yes", "expected true or false"),
    ("due", "2024-02-30", "is not a date"),
    ("due", "2024-01-01T10:00:00", "is not a date"),
    ("at", "yesterday", "is not a date and time"),
    ("at", 1700000000, "expected a date and time"),
    ("size", "huge", "is not one of the options"),
    ("size", ["small"], "expected one of the options"),
    ("colors", "red", "expected a list"),
    ("colors", ["red", "pink"], "`pink` is not one of the options"),
    ("email", "not-an-email", "is not an e-mail address"),
    ("phone", "call me", "is not a phone number"),
    ("site", "javascript:alert(1)", "is not a web address"),
    ("site", "example.com", "is not a web address"),
    ("region", "abc", "expected a record id"),
    ("region", -1, "expected a record id"),
    ("tags", 5, "expected a list of record ids"),
    ("owner", True, "expected a record id"),
    ("attachment", "report.pdf", "expected an uploaded file"),
    ("attachment", {**FILE, "key": "../../etc/passwd"}, "refers to no uploaded file"),
    ("attachment", {**FILE, "name": "../x"}, "invalid file name"),
    ("attachment", {**FILE, "size": -1}, "invalid size"),
    ("number", 5, "calculated automatically"),
    ("created_at", "2024-01-01T00:00:00Z", "calculated automatically"),
    ("updated_by", 1, "calculated automatically"),
]


def test_bad_values_are_refused_naming_the_field(things, records):
    failures = []
    for field, value, message in BAD_VALUES:
        try:
            records.create("things", {field: value})
        except ValidationError as err:
            problems = [(p.field, p.message) for p in err.problems]
            if len(problems) != 1 or problems[0][0] != field or message not in problems[0][1]:
                failures.append((field, message, problems))
        else:
            failures.append((field, message, "accepted"))
    assert failures == []
    assert records.count("things") == 0


# --- the registry alone (no database) ---------------------------------------------


def _field(type_: str, **config) -> Field:
    return Field(id=1, table_id=1, table_key="t", key="f", label="F", type=type_, config=config)


@pytest.mark.parametrize(
    ("type_", "text", "expected"),
    [
        ("boolean", " Yes ", True),
        ("boolean", "0", False),
        ("boolean", "", None),
        ("number", " 1,5 ", Decimal("15")),
        ("integer", "42", 42),
        ("multi_select", "a, b ,a", ["a", "b"]),
        ("link", "12", 12),
        ("date", "2024-05-06", date(2024, 5, 6)),
        ("text", "  kept  ", "  kept  "),
        ("email", "   ", None),
    ],
)
def test_parse_text(type_, text, expected):
    f = _field(type_, options=["a", "b"]) if "select" in type_ else _field(type_)
    assert get_type(type_).parse_text(f, text) == expected


def test_file_cannot_be_given_as_text():
    with pytest.raises(ConversionError, match="upload"):
        get_type("file").parse_text(_field("file"), "x.pdf")


@pytest.mark.parametrize(
    ("type_", "config", "problem"),
    [
        ("number", {"precision": 11}, "precision"),
        ("number", {"precision": "2"}, "precision"),
        ("select", {}, "needs a list of options"),
        ("select", {"options": ["a", "a"]}, "must not repeat"),
        ("select", {"options": ["a", ""]}, "non-empty"),
        ("text", {"colour": "red"}, "unknown setting `colour`"),
    ],
)
def test_bad_field_settings(type_, config, problem):
    problems = get_type(type_).check_config(config)
    assert any(problem in p for p in problems), problems


def test_display():
    assert get_type("currency").display(_field("currency"), Decimal("1234.5")) == "1,234.50"
    assert get_type("boolean").display(_field("boolean"), False) == "No"
    assert get_type("multi_select").display(_field("multi_select"), ["a", "b"]) == "a, b"
    assert get_type("autonumber").display(_field("autonumber", prefix="INV-"), 7) == "INV-7"
    assert get_type("file").display(_field("file"), FILE) == "report.pdf"


@pytest.mark.parametrize("type_", sorted(FIELD_TYPES))
def test_json_of_a_page_is_each_values_to_json(type_):
    """An API page turns values into JSON through per-field writers worked out once;
    they answer exactly what ``to_json`` answers, for every type and value."""
    values = [
        None,
        "text",
        "",
        0,
        -7,
        True,
        Decimal("1.5463100000000000"),
        Decimal("-0.10"),
        date(2024, 2, 29),
        datetime(2024, 5, 1, 7, 30, 0, 123456, tzinfo=UTC),
        ["a", "b"],
        FILE,
    ]
    ftype = get_type(type_)
    configs = (
        [{"result_type": r} for r in ("number", "text", "date", "datetime", "boolean")]
        if type_ == "formula"
        else [{}]
    )
    for config in configs:
        f = _field(type_, **config)
        write = ftype.writer(f) or (lambda v: v)
        for v in values:
            try:
                expected = ftype.to_json(f, v)
            except (AttributeError, TypeError, ValueError):
                continue  # a value this type never holds
            assert write(v) == expected, (type_, v)
