"""Reports as text people read and files they download: display text of values
(link names, select labels, ISO dates, numbers with thousands separators), CSV and
XLSX with formula injection escaped."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import CubebaseError
from .listing import Condition
from .records import MAX_PAGE, RecordsService
from .schema import Field

if TYPE_CHECKING:
    from .reports import GroupBy, Measure, ReportDef

DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class ReportResult:
    """``headers`` and ``rows`` as display text; ``values`` the same cells as values
    (numbers stay numbers, for charts and spreadsheets); ``groups``: how many of the
    first columns are groups; ``more``: rows were left out (limit or cap)."""

    report: ReportDef
    headers: list[str]
    rows: list[list[str]]
    values: list[list[Any]]
    groups: int = 0
    more: bool = False
    note: str | None = None

    def to_csv(self) -> str:
        """CSV (numbers without thousands separators; a cell a spreadsheet would run as a
        formula starts with an apostrophe)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow([safe_cell(h) for h in self.headers])
        for texts, values in zip(self.rows, self.values, strict=True):
            writer.writerow([_csv_cell(t, v) for t, v in zip(texts, values, strict=True)])
        return out.getvalue()

    def to_xlsx(self) -> bytes:
        """An XLSX workbook: one sheet, a bold header row, numbers as numbers, every text
        cell stored as text (never a formula)."""
        from openpyxl import Workbook
        from openpyxl.cell.cell import TYPE_STRING
        from openpyxl.styles import Font

        wb = Workbook()
        ws = wb.active
        ws.title = "".join(c for c in self.report.label if c not in "[]:*?/\\")[:31] or "Report"
        ws.append([safe_cell(h) for h in self.headers])
        for texts, values in zip(self.rows, self.values, strict=True):
            ws.append(
                [
                    (clean(v) if isinstance(v, Decimal) else v)
                    if is_number(v)
                    else (safe_cell(t) if t != "" else None)
                    for t, v in zip(texts, values, strict=True)
                ]
            )
        for cells in ws.iter_rows():
            for cell in cells:
                if isinstance(cell.value, str):
                    cell.data_type = TYPE_STRING
        for cell in ws[1]:
            cell.font = Font(bold=True)
        buf = io.BytesIO()
        wb.save(buf)
        return buf.getvalue()


def safe_cell(value: Any) -> Any:
    """Text a spreadsheet would run (= + - @ tab CR first) gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(DANGEROUS_START):
        return "'" + value
    return value


def is_number(v: Any) -> bool:
    return isinstance(v, int | Decimal | float) and not isinstance(v, bool)


def _csv_cell(text: str, value: Any) -> str:
    if is_number(value):
        if isinstance(value, Decimal):
            return format(clean(value), "f")
        return str(value)
    return safe_cell(text)


# --- display text --------------------------------------------------------------------------


class LinkNames:
    """Names of linked records, read through the records service (one list per table
    and page); a record the viewer may not read shows as #id."""

    def __init__(self, service: RecordsService):
        self.service = service
        self.names: dict[tuple[str, int], str] = {}

    def fetch(self, table_key: str, ids: list[Any]) -> None:
        wanted = sorted(
            {i for i in ids if isinstance(i, int)} - {k for t, k in self.names if t == table_key}
        )
        target = self.service.table(table_key)
        display = target.display_field
        if not wanted or display is None:
            return
        if display in self.service.access.hidden_fields(target)[0]:
            return
        for start in range(0, len(wanted), MAX_PAGE):
            chunk = wanted[start : start + MAX_PAGE]
            try:
                page = self.service.list(
                    table_key,
                    where=Condition("id", "in", chunk),
                    limit=len(chunk),
                    fields=[display],
                )
            except CubebaseError:
                return
            f = target.fields[display]
            for r in page.records:
                v = r.values.get(display)
                if v not in (None, "") and display not in r.withheld:
                    self.names[(table_key, r.id)] = f.ftype.display(f, v)

    def name(self, table_key: str | None, rid: Any) -> str:
        return self.names.get((table_key or "", rid)) or f"#{rid}"


def group_text(g: GroupBy, value: Any, names: LinkNames) -> str:
    if value is None:
        return "(blank)"
    if g.grain is not None and isinstance(value, date):
        if g.grain == "month":
            return value.strftime("%Y-%m")
        if g.grain == "year":
            return str(value.year)
        if g.grain == "quarter":
            return f"{value.year}-Q{(value.month - 1) // 3 + 1}"
        return value.isoformat()  # day; week: its Monday
    return value_text(g.field, value, names) or "(blank)"


def value_text(f: Field, value: Any, names: LinkNames | None = None) -> str:
    """A value as the viewer reads it: link names, select labels, ISO dates, numbers
    with thousands separators (currencies with two decimals)."""
    if value is None or value == "" or value == []:
        return ""
    if f.link_kind in ("one", "many"):
        ids = value if isinstance(value, list) else [value]
        return ", ".join(names.name(f.target_key, i) if names else f"#{i}" for i in ids)
    if f.type == "boolean" or isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        return value.astimezone(f.timezone).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal | int | float) and f.type != "autonumber":
        return number_text(value, currency=f.type == "currency")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return f.ftype.display(f, value)


def clean(d: Decimal) -> Decimal:
    """At most six decimals (SQLite adds in floats: 1524701.7799999998), no exponent
    noise; whole numbers as whole numbers."""
    if d.is_finite() and d.adjusted() < 15:
        d = d.quantize(Decimal("0.000001"))
    return d.normalize()


def number_text(value: Any, *, currency: bool = False, places: int | None = None) -> str:
    """Thousands separators, never an exponent; currencies with two decimals, other
    numbers as exact as they are (at most six decimals: SQLite adds in floats)."""
    if isinstance(value, int):
        return f"{value:,}"
    d = value if isinstance(value, Decimal) else Decimal(repr(value))
    if currency:
        places = 2
    if places is not None:
        return f"{d:,.{places}f}"
    d = clean(d)
    if d == d.to_integral():
        return f"{d.to_integral():,f}"
    return f"{d:,f}"


def measure_text(m: Measure, value: Any) -> str:
    if value is None:
        return ""
    if m.field is None or m.fn == "count":
        return f"{int(value):,}"
    currency = m.field.type == "currency"
    if m.fn in ("min", "max"):
        return value_text(m.field, value)
    if m.fn == "avg" or (not currency and _fraction(value)):
        places = m.field.config.get("precision")
        return number_text(value, places=places if isinstance(places, int) else 2)
    return number_text(value, currency=currency)


def _fraction(value: Any) -> bool:
    return isinstance(value, Decimal | float) and value != int(value)
