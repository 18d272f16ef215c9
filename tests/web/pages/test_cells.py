"""How values show in a grid's cells: each column's display chosen once per page
(``table_rows``), the same text as ``display_value`` for every type and value, and
every cell escaped."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from markupsafe import escape

from cubebase.platform.fieldtypes import FIELD_TYPES
from cubebase.platform.records import Record
from cubebase.platform.schema import Field
from cubebase.web.pages.common import display_value, table_rows

VALUES = [
    None,
    "",
    "plain text",
    "Tom & Jerry <script>alert(\"x\")</script> 'quoted'",
    0,
    -7,
    True,
    False,
    Decimal("1.5463100000000000"),
    Decimal("-0.10"),
    Decimal("1234.5"),
    Decimal("6"),
    Decimal("1E+3"),
    Decimal("0.0000001"),
    date(2024, 2, 29),
    datetime(2024, 5, 1, 7, 30, 0, 123456, tzinfo=UTC),
    ["a", "b"],
    [3, 4],
]


class Names:
    """The link labels of a page: record 3 of ``people`` is Ann."""

    def name(self, target_key: str, rid: int) -> str | None:
        return "Ann" if (target_key, rid) == ("people", 3) else None


def _field(type_: str, key: str = "f", **config) -> Field:
    f = Field(id=1, table_id=1, table_key="t", key=key, label="F", type=type_, config=config)
    f.timezone = ZoneInfo("Asia/Shanghai")
    if type_ in ("link", "user", "reverse_link"):
        f.target_key = "people"
    return f


def _cells(f: Field, values: list) -> list[str]:
    records = [Record("t", i + 1, 1, {f.key: v}) for i, v in enumerate(values)]
    rows = table_rows([f], records, Names())
    out = []
    for _, html in rows:
        text = str(html)
        assert text.startswith("<td") and text.endswith("</td>")
        out.append(text[text.index(">") + 1 : -len("</td>")])
    return out


def _shown(f: Field, v) -> str | None:
    try:
        return display_value(f, v, Names())
    except (AttributeError, TypeError, ValueError, KeyError):
        return None  # a value this type never holds


FORMULA_CONFIGS = [
    {"result_type": r} for r in ("number", "text", "date", "datetime", "boolean", "record:people")
]


@pytest.mark.parametrize("type_", sorted(FIELD_TYPES))
def test_each_cell_is_the_escaped_display_text(type_):
    configs = FORMULA_CONFIGS if type_ == "formula" else [{}]
    for config in configs:
        f = _field(type_, **config)
        for v in VALUES:
            expected = _shown(f, v)
            if expected is None:
                continue
            assert _cells(f, [v]) == [str(escape(expected))], (type_, config, v)


def test_computed_numbers_show_without_trailing_zeros_and_right_aligned():
    f = _field("formula", result_type="number")
    values = [Decimal("1.5463100000000000"), Decimal("0.06000000000000000000"), Decimal("6")]
    assert _cells(f, values) == ["1.54631", "0.06", "6"]
    _, html = table_rows([f], [Record("t", 1, 1, {"f": Decimal("2.50")})], None)[0]
    assert str(html) == '<td class="num">2.5</td>'


def test_computed_true_false_shows_yes_and_no():
    f = _field("formula", result_type="boolean")
    assert _cells(f, [True, False, None]) == ["Yes", "No", ""]


def test_stored_fields_show_as_before():
    assert _cells(_field("currency"), [Decimal("1234.5")]) == ["1,234.50"]
    assert _cells(_field("boolean"), [False]) == ["No"]
    assert _cells(_field("datetime"), [datetime(2024, 5, 1, 7, 30, tzinfo=UTC)]) == [
        "2024-05-01 15:30"  # in the field's time zone
    ]
    assert _cells(_field("link"), [3, 9]) == ["Ann", "#9"]
    assert _cells(_field("multi_select"), [["a", "b"]]) == ["a, b"]


def test_text_is_escaped_in_every_cell():
    cells = _cells(_field("text"), ['<b onmouseover="x">&</b>', "it's"])
    assert cells == ["&lt;b onmouseover=&#34;x&#34;&gt;&amp;&lt;/b&gt;", "it&#39;s"]


@pytest.mark.parametrize(
    ("type_", "config", "value", "shown"),
    [
        ("text", {}, "Guangzhou", "Guangzhou"),
        ("text", {}, "", ""),
        ("number", {}, Decimal("1.50"), "1.50"),
        ("number", {}, Decimal("6"), "6"),
        ("currency", {}, Decimal("1234.5"), "1,234.50"),
        ("integer", {}, 42, "42"),
        ("boolean", {}, True, "Yes"),
        ("date", {}, date(2024, 2, 29), "2024-02-29"),
        ("datetime", {}, datetime(2024, 5, 1, 23, 30, tzinfo=UTC), "2024-05-02 07:30"),
        ("multi_select", {}, ["a", "b"], "a, b"),
        ("autonumber", {"prefix": "INV-"}, 7, "INV-7"),
        ("formula", {"result_type": "number"}, Decimal("0.06000000000000000000"), "0.06"),
        ("formula", {"result_type": "number"}, Decimal("1E-7"), "0.0000001"),
        ("formula", {"result_type": "number"}, Decimal("-12.50"), "-12.5"),
        ("formula", {"result_type": "boolean"}, False, "No"),
        ("formula", {"result_type": "boolean"}, "no", "no"),  # not a true/false: as it is
        ("formula", {"result_type": "text"}, "Ida Xu (North)", "Ida Xu (North)"),
        ("formula", {"result_type": "date"}, date(2026, 1, 31), "2026-01-31"),
    ],
)
def test_what_a_cell_shows(type_, config, value, shown):
    assert _cells(_field(type_, **config), [value]) == [shown]
