"""The app format's `reports:` and `dashboards:`: checked against the schema the app
would make, planned (add, change, adopt, delete, in business words), applied in the
apply's transaction, and exported back (docs/reports.md).

A report is checked by ``platform.reports.build`` (the same rules as the chart
builder's), its problems placed on the key at fault; a filter's formula error carries
the checker's caret. Applying builds the report again on the schema as changed so
far, so its fields are kept by their real ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import formula as F
from ..platform import reports as R
from ..platform.errors import BadRequest
from ..platform.models import Dashboard, Report
from ..platform.schema import Schema
from . import ir
from .errors import AppFileError, Problem, Problems
from .loader import did_you_mean

if TYPE_CHECKING:
    from .validate import Resolved

LIST_CHARTS = ("table", "number")
SUMMARY_ONLY = ("bar", "line", "pie", "funnel")


def report_spec(r: ir.ReportSpec) -> dict[str, Any]:
    """An IR report in the platform's words (``platform.reports.build``)."""
    return {
        "label": r.label,
        "table": r.table,
        "filter": r.filter,
        "group_by": list(r.group_by),
        "measures": list(r.measures),
        "columns": list(r.columns),
        "sort": r.sort,
        "limit": r.limit,
        "roles": list(r.roles),
    }


# --- validation ----------------------------------------------------------------------------


def check_reports(res: Resolved, problems: Problems) -> None:
    """The `reports:` and `dashboards:` sections (called by ``validate.resolve``)."""
    app = res.app
    if not app.reports and not app.dashboards:
        return
    built: dict[str, R.ReportDef] = {}
    seen: set[str] = set()
    for r in app.reports:
        if r.key in seen:
            problems.add(r.at("key"), f"report `{r.key}` is defined twice")
            continue
        seen.add(r.key)
        _check_roles(r, res.roles, problems)
        if not res.virtual.has_table(r.table):
            problems.add(
                r.at("table"),
                f"unknown table `{r.table}`{did_you_mean(r.table, res.virtual.tables)}",
            )
            continue
        try:
            built[r.key] = R.build(res.virtual, r.key, report_spec(r), app.app)
        except R.ReportProblem as exc:
            _place(res, r, exc, problems)
    dashboards: set[str] = set()
    for d in app.dashboards:
        if d.key in dashboards:
            problems.add(d.at("key"), f"dashboard `{d.key}` is defined twice")
            continue
        dashboards.add(d.key)
        _check_roles(d, res.roles, problems)
        for item in d.items:  # reports of no app in the file: checked by the plan
            rep = built.get(item.report)
            if rep is not None and rep.is_list and item.chart in SUMMARY_ONLY:
                problems.add(
                    item.at("chart"),
                    f"`{item.report}` is a list report: show it as a table (a {item.chart} "
                    "chart needs group_by or measures)",
                )
            if rep is not None and rep.is_list and item.chart == "number":
                problems.add(item.at("chart"), f"`{item.report}` is a list report: no number")


def _check_roles(node: Any, roles: dict[str, str], problems: Problems) -> None:
    for i, role in enumerate(node.roles):
        if role not in roles and role != "admin":
            file, line, path = node.at("roles")
            problems.add(
                (file, line, f"{path}[{i}]"),
                f"unknown role `{role}`{did_you_mean(role, roles)} "
                "(list it under `roles` in the app file)",
            )


def _place(res: Resolved, r: ir.ReportSpec, exc: R.ReportProblem, problems: Problems) -> None:
    file, line, path = r.at(exc.key)
    if exc.key == "filter" and isinstance(exc.formula_error, F.FormulaError):
        line = res.app.lines.get((file, path), line)
        for item in exc.formula_error.errors:
            problems.add((file, line + item.line - 1, path), item.message, item.excerpt)
        return
    problems.add((file, line, path), exc.message)


# --- the plan ------------------------------------------------------------------------------


def plan_reports(b) -> None:
    """Steps for the app's reports and dashboards (``b``: plan._Builder): create, change,
    adopt (a report of no app with the same key) and delete the app's ones no longer
    listed. Last, once every table and field is in place."""
    session = b.ed.session
    live_reports = {r.key: r for r in session.scalars(sa.select(Report).order_by(Report.key))}
    live_boards = {d.key: d for d in session.scalars(sa.select(Dashboard).order_by(Dashboard.key))}
    app = b.app
    if not live_reports and not live_boards and not app.reports and not app.dashboards:
        return
    problems: list[Problem] = []
    listed = set()
    for r in app.reports:
        if r.key in listed:
            continue
        listed.add(r.key)
        _plan_report(b, r, live_reports.get(r.key), problems)
    boards = set()
    kept = listed | {k for k, r in live_reports.items() if r.app != app.app}
    for d in app.dashboards:
        if d.key in boards:
            continue
        boards.add(d.key)
        for item in d.items:
            if item.report not in kept:
                file, line, path = item.at("report")
                problems.append(
                    Problem(
                        file,
                        line,
                        path,
                        f"unknown report `{item.report}`{did_you_mean(item.report, kept)}",
                    )
                )
        _plan_dashboard(b, d, live_boards.get(d.key), problems)
    if problems:
        raise AppFileError(problems)
    for key, d in live_boards.items():
        if d.app == app.app and key not in boards:
            b.add(
                "delete_dashboard",
                f"Delete dashboard {d.label} (`{key}`)",
                lambda ed, key=key: R.delete_dashboard(ed.session, key),
            )
    for key, r in live_reports.items():
        if r.app == app.app and key not in listed:
            b.add(
                "delete_report",
                f"Delete report {r.label} (`{key}`)",
                lambda ed, key=key: R.delete_report(ed.session, key),
            )


def _plan_report(b, r: ir.ReportSpec, row: Report | None, problems: list[Problem]) -> None:
    app_key = b.app.app
    if row is not None and row.app not in (None, app_key):
        file, line, path = r.at("key")
        problems.append(
            Problem(file, line, path, f"report `{r.key}` belongs to the app `{row.app}`")
        )
        return
    want = R.build(b.res.virtual, r.key, report_spec(r), app_key)
    words = _report_words(want)
    run = lambda ed, r=r: _save_report(ed, r, app_key)  # noqa: E731
    if row is None:
        b.add("create_report", f"Create report {want.label} (`{r.key}`): {words}", run, r.table)
        return
    try:
        have = R.from_stored(b.res.live, row).spec()
    except BadRequest:  # its table or a field is gone: build it again
        have = {}
    changed = [k for k in sorted(set(have) | set(want.spec())) if have.get(k) != want.spec().get(k)]
    if changed:
        b.add(
            "change_report",
            f"Change report {want.label} (`{r.key}`): {', '.join(changed)} ({words})",
            run,
            r.table,
        )
    elif row.app is None:
        b.add(
            "adopt_report",
            f"Report `{r.key}` now belongs to the app `{app_key}`",
            run,
            r.table,
        )


def _report_words(rep: R.ReportDef) -> str:
    if rep.is_list:
        text = f"a list of `{rep.table.key}` ({', '.join(f.key for f in rep.columns)})"
    else:
        what = ", ".join(m.text for m in rep.measures)
        by = " and ".join(g.text for g in rep.group_by)
        text = f"{what} of `{rep.table.key}`" + (f" by {by}" if by else "")
    if rep.filter:
        text += f" where {rep.filter}"
    if rep.roles:
        text += f"; for {', '.join(rep.roles)}"
    return text


def _save_report(ed, r: ir.ReportSpec, app_key: str) -> None:
    """Build the report again on the schema as changed so far (real field ids)."""
    try:
        rep = R.build(ed.schema, r.key, report_spec(r), app_key)
    except R.ReportProblem as exc:
        file, line, path = r.at(exc.key)
        raise AppFileError([Problem(file, line, path, exc.message)]) from None
    R.save_report(ed.session, ed.schema, rep)


def dashboard_definition(d: ir.DashboardSpec) -> dict[str, Any]:
    items = []
    for item in d.items:
        entry = {"report": item.report, "chart": item.chart}
        if item.label:
            entry["label"] = item.label
        items.append(entry)
    return {"roles": list(d.roles), "items": items}


def _plan_dashboard(b, d: ir.DashboardSpec, row: Dashboard | None, problems) -> None:
    app_key = b.app.app
    if row is not None and row.app not in (None, app_key):
        file, line, path = d.at("key")
        problems.append(
            Problem(file, line, path, f"dashboard `{d.key}` belongs to the app `{row.app}`")
        )
        return
    label = d.label or R.default_label(d.key)
    definition = dashboard_definition(d)
    n = len(d.items)
    words = f"{n} item{'s' if n != 1 else ''}" + (f"; for {', '.join(d.roles)}" if d.roles else "")

    def run(ed, d=d, label=label, definition=definition) -> None:
        R.save_dashboard(
            ed.session, d.key, label, definition["roles"], definition["items"], app=app_key
        )

    if row is None:
        b.add("create_dashboard", f"Create dashboard {label} (`{d.key}`): {words}", run)
    elif row.label != label or (row.definition or {}) != definition:
        b.add("change_dashboard", f"Change dashboard {label} (`{d.key}`): {words}", run)
    elif row.app is None:
        b.add("adopt_dashboard", f"Dashboard `{d.key}` now belongs to the app `{app_key}`", run)


# --- export --------------------------------------------------------------------------------


def live_reports(schema: Schema, session, app_key: str | None) -> list[ir.ReportSpec]:
    """The reports of ``app_key`` (None: every report) in the IR, with today's names; a
    report whose table or field is gone is left out (it could not run)."""
    q = sa.select(Report).order_by(Report.id)
    if app_key is not None:
        q = q.where(Report.app == app_key)
    out = []
    for row in session.scalars(q):
        try:
            rep = R.from_stored(schema, row)
        except BadRequest:
            continue
        spec = rep.spec()
        out.append(
            ir.ReportSpec(
                key=rep.key,
                label=None if rep.label == R.default_label(rep.key) else rep.label,
                table=rep.table.key,
                filter=spec.get("filter"),
                group_by=spec.get("group_by") or [],
                measures=spec.get("measures") or [],
                columns=spec.get("columns") or [],
                sort=spec.get("sort"),
                limit=spec.get("limit"),
                roles=spec.get("roles") or [],
            )
        )
    return out


def live_dashboards(session, app_key: str | None) -> list[ir.DashboardSpec]:
    q = sa.select(Dashboard).order_by(Dashboard.id)
    if app_key is not None:
        q = q.where(Dashboard.app == app_key)
    out = []
    for row in session.scalars(q):
        d = row.definition or {}
        out.append(
            ir.DashboardSpec(
                key=row.key,
                label=None if row.label == R.default_label(row.key) else row.label,
                roles=list(d.get("roles") or []),
                items=[
                    ir.DashboardItemSpec(
                        report=i["report"], chart=i.get("chart", "table"), label=i.get("label")
                    )
                    for i in d.get("items") or []
                    if isinstance(i, dict) and i.get("report")
                ],
            )
        )
    return out
