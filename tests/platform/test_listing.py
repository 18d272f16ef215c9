"""Lists: conditions, sort orders and keyset paging, on both databases.

Paging must visit every record exactly once, in the documented order: blanks
after values ascending and before them descending, ties broken by id (in the
direction of the last sort key).
"""

from __future__ import annotations

import base64
import json
import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cubebase.platform.errors import BadRequest
from cubebase.platform.listing import Condition

ITEM_FIELDS = [
    {"key": "amount", "type": "number", "precision": 2},
    {"key": "rank", "type": "integer"},
    {"key": "label", "type": "text"},
    {"key": "day", "type": "date"},
    {"key": "at", "type": "datetime"},
    {"key": "flag", "type": "boolean"},
    {"key": "size", "type": "select", "options": ["s", "m", "l"]},
    {"key": "colors", "type": "multi_select", "options": ["red", "blue"]},
    {"key": "attachment", "type": "file"},
]
SORTABLE = ["amount", "rank", "label", "day", "at", "flag", "size"]


def build_items(platform) -> None:
    with platform.schema_editor() as ed:
        ed.create_table("items", "Items", fields=ITEM_FIELDS)


pytestmark = pytest.mark.schema.with_args(build_items)


@pytest.fixture
def items(records):
    return records


def _value(field: str, n: int | None) -> Any:
    """A value of ``field`` from a small number (None: blank); few values, many ties."""
    if n is None:
        return None
    return {
        "amount": str(Decimal(n) - Decimal("1.5")),
        "rank": n * 3 - 4,
        "label": "abcde"[n % 5] * (1 + n % 2),
        "day": date(2024, 1, 1 + n).isoformat(),
        "at": f"2024-01-01T{n:02d}:30:00Z",
        "flag": n % 2 == 0,
        "size": "sml"[n % 3],
    }[field]


def _python(items, field: str, value: Any) -> Any:
    table = items.table("items")
    f = table.fields[field]
    return f.ftype.to_python(f, value)


def _expected(rows: dict[int, dict], keys: list[tuple[str, bool]]) -> list[int]:
    """Record ids in the documented order, computed in Python."""
    ids = sorted(rows)
    tie_desc = keys[-1][1] if keys else False
    ids.sort(reverse=tie_desc)
    for field, desc in reversed(keys):
        ids.sort(
            key=lambda i, field=field: (rows[i][field] is None, rows[i][field] or 0),
            reverse=desc,
        )
    return ids


def _page_all(items, sort: str, limit: int, where=None) -> list[int]:
    seen: list[int] = []
    cursor = None
    for _ in range(1000):
        page = items.list("items", sort=sort, limit=limit, cursor=cursor, where=where)
        assert len(page.records) <= limit
        seen.extend(r.id for r in page.records)
        cursor = page.next_cursor
        if cursor is None:
            return seen
        assert page.records, "a page with a next cursor must not be empty"
    raise AssertionError("paging did not end")


def _make(items, numbers: list[dict[str, int | None]]) -> dict[int, dict]:
    rows = [{k: _value(k, n) for k, n in spec.items()} for spec in numbers]
    ids = items.bulk_create("items", rows)
    return {
        rid: {k: _python(items, k, row.get(k)) for k in SORTABLE}
        for rid, row in zip(ids, rows, strict=True)
    }


def _numbers(i: int) -> dict[str, int | None]:
    """Deterministic data with blanks and ties in every field."""
    rnd = random.Random(i)
    return {f: rnd.choice([None, 0, 1, 2, 3]) for f in SORTABLE}


@pytest.mark.parametrize(
    "sort",
    [
        "",
        "id",
        "-id",
        "amount",
        "-amount",
        "label",
        "-label",
        "day",
        "-at",
        "flag",
        "-size",
        "rank,label",
        "-rank,label",
        "rank,-label",
        "-flag,-day,amount",
        "size,flag,label,-rank,at",
    ],
)
def test_paging_visits_every_record_once_in_order(items, sort):
    rows = _make(items, [_numbers(i) for i in range(23)])
    keys = [(k.lstrip("-"), k.startswith("-")) for k in sort.split(",") if k]
    keys = [k for k in keys if k[0] != "id"] if sort in ("id", "-id") else keys
    expected = _expected(rows, keys) if sort not in ("id", "-id") else sorted(rows)
    if sort == "-id":
        expected.reverse()
    for limit in (1, 4, 23, 50):
        assert _page_all(items, sort, limit) == expected, (sort, limit)
    page = items.list("items", sort=sort, limit=23)
    assert [r.id for r in page.records] == expected and page.next_cursor is None


def test_iter_records_reads_every_match_page_by_page_up_to_a_limit(items):
    rows = _make(items, [_numbers(i) for i in range(23)])
    expected = _expected(rows, [("rank", False), ("label", True)])
    got = [r.id for r in items.iter_records("items", sort="rank,-label", page_size=4)]
    assert got == expected
    assert [r.id for r in items.iter_records("items", sort="rank,-label", limit=9)] == expected[:9]
    assert list(items.iter_records("items", limit=0)) == []
    flagged = [r.id for r in items.iter_records("items", where=Condition("flag", "eq", True))]
    assert flagged == sorted(rid for rid, r in rows.items() if r["flag"] is True)


@pytest.mark.parametrize(
    ("sort", "where", "keep"),
    [
        (
            "amount",
            Condition("amount", "ge", "0.5"),
            lambda r: r["amount"] is not None and r["amount"] >= Decimal("0.5"),
        ),
        (
            "-label",
            Condition("label", "in", ["a", "bb", "c"]),
            lambda r: r["label"] in ("a", "bb", "c"),
        ),
        ("rank,-day", Condition("flag", "eq", True), lambda r: r["flag"] is True),
        ("-amount,label", Condition("day", "isblank"), lambda r: r["day"] is None),
        (
            "at",
            [Condition("size", "ne", "s"), Condition("rank", "notblank")],
            lambda r: r["size"] != "s" and r["rank"] is not None,
        ),
    ],
)
def test_paging_with_conditions(items, sort, where, keep):
    rows = _make(items, [_numbers(i) for i in range(30)])
    kept = {i: r for i, r in rows.items() if keep(r)}
    keys = [(k.lstrip("-"), k.startswith("-")) for k in sort.split(",")]
    expected = _expected(kept, keys)
    assert expected, "the condition should keep some records"
    assert _page_all(items, sort, 3, where) == expected
    assert items.count("items", where=where) == len(expected)


def test_paging_skips_the_trash_and_survives_deletes_between_pages(items):
    rows = _make(items, [_numbers(i) for i in range(12)])
    order = _expected(rows, [("amount", False)])
    page = items.list("items", sort="amount", limit=5)
    assert [r.id for r in page.records] == order[:5]
    items.delete("items", order[6])
    items.delete("items", order[2])  # already seen: no effect on what follows
    rest = items.list("items", sort="amount", limit=50, cursor=page.next_cursor)
    assert [r.id for r in rest.records] == [i for i in order[5:] if i != order[6]]


def test_paging_property_based(items):
    """Random small data, sort keys and page sizes: every record once, in order."""
    small = st.one_of(st.none(), st.integers(0, 3))
    row = st.fixed_dictionaries({f: small for f in SORTABLE})
    key = st.tuples(st.sampled_from(SORTABLE), st.booleans())

    @settings(
        max_examples=30,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        data=st.lists(row, min_size=0, max_size=12),
        keys=st.lists(key, min_size=1, max_size=3, unique_by=lambda k: k[0]),
        limit=st.integers(1, 5),
    )
    def check(data, keys, limit):
        savepoint = items.session.begin_nested()
        try:
            rows = _make(items, data)
            sort = ",".join(("-" if d else "") + f for f, d in keys)
            assert _page_all(items, sort, limit) == _expected(rows, keys)
        finally:
            savepoint.rollback()

    check()


# --- fields, limits, bad requests --------------------------------------------------


def test_list_with_some_fields_sorted_by_another(items):
    rows = _make(items, [_numbers(i) for i in range(5)])
    page = items.list("items", sort="-rank", fields=["label"], limit=2)
    assert all(set(r.values) == {"label"} for r in page.records)
    rest = items.list("items", sort="-rank", fields=["label"], limit=10, cursor=page.next_cursor)
    ids = [r.id for r in page.records + rest.records]
    assert ids == _expected(rows, [("rank", True)])


@pytest.mark.parametrize("limit", [0, -1, 1001, "10", True, 2.5])
def test_bad_limit(items, limit):
    with pytest.raises(BadRequest, match="limit"):
        items.list("items", limit=limit)


@pytest.mark.parametrize(
    ("sort", "message"),
    [
        ("nope", "no such field"),
        ("colors", "has no order"),
        ("attachment", "has no order"),
        ("a,b,c,d,e,f", "no such field"),
        ("amount,rank,label,day,at,flag", "at most 5"),
    ],
)
def test_bad_sort(items, sort, message):
    with pytest.raises(BadRequest, match=message):
        items.list("items", sort=sort)


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def test_bad_or_tampered_cursors_are_bad_requests(items):
    _make(items, [_numbers(i) for i in range(6)])
    good = items.list("items", sort="amount", limit=2).next_cursor
    assert good
    decoded = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))
    bad = [
        "garbage",
        "!!!!",
        "é",
        good[:-3],
        good + "x",
        _cursor("just text"),
        _cursor(["amount"]),
        _cursor(["amount", []]),
        _cursor(["amount", ["1.00"]]),
        _cursor(["amount", [{"n": "abc"}, 3]]),
        _cursor(["amount", [{"x": "1"}, 3]]),
        _cursor(["amount", [{"n": "1", "d": "2"}, 3]]),
        _cursor(["amount", [{"n": 5}, 3]]),
        _cursor(["amount", ["not a number", 3]]),
        _cursor(["amount", [{"d": "2024-01-01"}, 3]]),
        _cursor(["amount", [True, 3]]),
        _cursor(["amount", [[1], 3]]),
        _cursor(["amount", [{"n": "1"}, "3"]]),
        _cursor(["amount", [{"n": "1"}, 2**80]]),
        _cursor(["amount", [{"n": "1e400"}, 3]]),
        _cursor(["amount", [{"n": "NaN"}, 3]]),
        _cursor(["amount", [{"n": "1"}, 3, 4]]),
        _cursor(["-amount", decoded[1]]),  # another sort order
        _cursor({"a": 1}),
        _cursor(12),
    ]
    failures = []
    for cursor in bad:
        try:
            items.list("items", sort="amount", limit=2, cursor=cursor)
        except BadRequest as exc:
            if "cursor" not in exc.message:
                failures.append((cursor, exc.message))
        except Exception as exc:  # noqa: BLE001 - we want to list every kind of failure
            failures.append((cursor, repr(exc)))
        else:
            failures.append((cursor, "accepted"))
    assert failures == []
    assert items.list("items", sort="amount", limit=2, cursor=good).records


def test_tampered_cursors_for_other_sort_types(items):
    _make(items, [_numbers(i) for i in range(6)])
    for sort in ("day", "at", "rank", "label", "flag", "rank,-at", ""):
        good = items.list("items", sort=sort, limit=2).next_cursor
        sig = json.loads(base64.urlsafe_b64decode(good + "=" * (-len(good) % 4)))[0]
        n = len(sort.split(",")) if sort else 0
        for wrong in ({"n": "1.5"}, "text", {"d": "2024-13-45"}, {"dt": "x"}, 10**30, 1.5):
            cursor = _cursor([sig, [wrong] * n + [1]])
            if sort == "":
                cursor = _cursor([sig, [wrong]])
            try:
                items.list("items", sort=sort, limit=2, cursor=cursor)
            except BadRequest:
                pass
            except Exception as exc:  # noqa: BLE001
                raise AssertionError(f"{sort} {wrong!r}: {exc!r}") from exc


# --- conditions ------------------------------------------------------------------


def test_conditions(items):
    rows = _make(items, [_numbers(i) for i in range(20)])
    items.update("items", next(iter(rows)), {"colors": ["red", "blue"]})

    def ids(where) -> set[int]:
        return {r.id for r in items.list("items", where=where, limit=100).records}

    def py(pred) -> set[int]:
        return {i for i, r in rows.items() if pred(r)}

    assert ids(Condition("label", "startswith", "b")) == py(
        lambda r: (r["label"] or "").startswith("b")
    )
    assert ids(Condition("label", "contains", "b")) == py(lambda r: "b" in (r["label"] or ""))
    assert ids(Condition("amount", "lt", 0)) == py(
        lambda r: r["amount"] is not None and r["amount"] < 0
    )
    assert ids(Condition("rank", "le", "2")) == py(
        lambda r: r["rank"] is not None and r["rank"] <= 2
    )
    assert ids(Condition("day", "gt", "2024-01-02")) == py(
        lambda r: r["day"] is not None and r["day"] > date(2024, 1, 2)
    )
    assert ids(Condition("flag", "eq", "no")) == py(lambda r: r["flag"] is False)
    assert ids(Condition("flag", "lt", True)) == py(lambda r: r["flag"] is False)
    assert ids(Condition("flag", "ge", False)) == py(lambda r: r["flag"] is not None)
    assert ids(Condition("size", "eq", None)) == py(lambda r: r["size"] is None)
    assert ids(Condition("size", "ne", "m")) == py(lambda r: r["size"] != "m")
    assert ids(Condition("id", "in", list(rows)[:3])) == set(list(rows)[:3])
    assert ids(Condition("label", "contains", "%")) == set()
    assert ids(Condition("label", "contains", "_")) == set()
    assert ids(Condition("colors", "isblank")) == set(rows) - {next(iter(rows))}
    assert ids(Condition("colors", "notblank")) == {next(iter(rows))}
    assert ids(Condition("attachment", "isblank")) == set(rows)
    assert ids(lambda t: t.sql.c.id == next(iter(rows))) == {next(iter(rows))}


@pytest.mark.parametrize(
    ("cond", "message"),
    [
        (Condition("nope", "eq", 1), "no such field"),
        (Condition("amount", "like", 1), "not a filter operator"),
        (Condition("amount", "eq", "abc"), "amount"),
        (Condition("day", "gt", "someday"), "day"),
        (Condition("size", "eq", "xl"), "size"),
        (Condition("id", "eq", "abc"), "record id"),
        (Condition("amount", "contains", "1"), "text"),
        (Condition("label", "contains", 5), "text"),
        (Condition("flag", "startswith", "t"), "text"),
        (Condition("day", "contains", "2024"), "text"),
        (Condition("colors", "eq", "red"), "blanks"),
        (Condition("colors", "contains", "red"), "blanks"),
        (Condition("attachment", "eq", "x"), "blanks"),
        (Condition("id", "eq", True), "record id"),
        (Condition("id", "gt", 2**80), "record id"),
        (Condition("rank", "in", ["1", "x"]), "rank"),
    ],
)
def test_bad_conditions(items, cond, message):
    _make(items, [_numbers(i) for i in range(3)])
    with pytest.raises(BadRequest, match=message):
        items.list("items", where=cond)
    with pytest.raises(BadRequest, match=message):
        items.count("items", where=cond)
