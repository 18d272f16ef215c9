"""The IR of reports and dashboards (their meaning is checked by
cubebase.schema_defs.reports)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .ir_base import IRNode, Key, Rule, _where, doc

ChartName = Literal["bar", "line", "pie", "funnel", "table", "number"]


@dataclass
class ReportSpec(IRNode):
    """A report: a summary (group_by, measures) or a list (columns) of one table's
    records, always run as the viewer (docs/reports.md)."""

    key: Key = doc("the report's key")
    label: str | None = doc("the name people see (default: from the key)", None)
    table: Key = doc("the table it reads", kw_only=True)
    filter: Rule | None = doc("a Boolean formula: the records it reads (default: all)", None)
    group_by: list[str] = doc(
        "a summary: up to two fields; a date or date-time with a grain, e.g. "
        "closed_on:month (day, week, month, quarter, year)",
        default_factory=list,
    )
    measures: list[str] = doc(
        "a summary: count, count(f), sum(f), avg(f), min(f), max(f) (default: count)",
        default_factory=list,
    )
    columns: list[Key] = doc(
        "a list report: the fields shown (instead of group_by and measures)",
        default_factory=list,
    )
    sort: str | None = doc(
        "a group or a measure (a list report: fields, comma-separated), - for descending, "
        "e.g. '-sum(amount)' (default: group order)",
        None,
    )
    limit: int | None = doc("at most this many rows", None)
    roles: list[Key] = doc(
        "who finds it in the Reports menu (admins: every report); the data is always the "
        "viewer's own (row and field rules apply)",
        default_factory=list,
    )
    where: dict = _where()


@dataclass
class DashboardItemSpec(IRNode):
    """A tile of a dashboard: a report as a chart, a table or a number."""

    report: Key = doc("the report's key")
    chart: ChartName = doc(
        "bar, line, pie, funnel (a summary report), table, or number (its first measure)",
        "table",
    )
    label: str | None = doc("the tile's title (default: the report's label)", None)
    where: dict = _where()


@dataclass
class DashboardSpec(IRNode):
    """A dashboard: tiles of reports, each computed as the viewer."""

    key: Key = doc("the dashboard's key")
    label: str | None = doc("the name people see (default: from the key)", None)
    roles: list[Key] = doc(
        "who finds it under Dashboards (admins: every dashboard)", default_factory=list
    )
    items: list[DashboardItemSpec] = doc("the tiles, in order", default_factory=list)
    where: dict = _where()
