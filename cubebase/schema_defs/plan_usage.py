"""Deleting what definitions use, in an app-file plan.

The schema editor refuses to delete a field or a table that an automation, a report
or a workflow uses (``cubebase.platform.usage``). In a plan, the app's own
definitions change (or go) in the same apply, after the deletions: so when one of
them uses what the app deletes, the deletions wait until after the definitions
(``defer_deletions``); one that is not the app's is refused before anything runs,
naming it, as the schema editor would.
"""

from __future__ import annotations

from typing import Any

from ..platform import usage
from ..platform.errors import ConflictError

KINDS = ("automation", "report", "workflow")


def defer_deletions(b: Any, first: int) -> list:
    """The deletion steps from ``first`` on, taken out of the plan when they must run
    after the app's automations, reports and workflows (``[]``: they stay in place).
    ConflictError names a definition outside the app that uses what is deleted."""
    app = b.app
    own = {
        "automation": {a.key for a in app.automations},
        "report": {r.key for r in app.reports},
        "workflow": {w.key for w in app.workflows},
    }
    live = b.res.live
    gone_tables = {t.key for t in b.res.deleted_tables}
    whats = [
        usage.gone(live, live.table(lf.table_key), lf)
        for lf in b.res.deleted_fields
        if lf.table_key not in gone_tables
    ]
    whats += [usage.gone(live, t) for t in b.res.deleted_tables]
    wait, refused = False, []
    for what in whats:
        uses = usage.users_of(b.ed.platform, b.ed.session, live, what)
        uses = [u for u in uses if u.kind in KINDS]
        others = [u for u in uses if u.app != app.app and u.key not in own[u.kind]]
        if others:
            refused.append(usage.refusal(what, others))
        wait = wait or bool(uses)
    if refused:
        raise ConflictError(
            "\n".join(e.message for e in refused), [d for e in refused for d in e.details]
        )
    if not wait:
        return []
    steps = b.plan.steps[first:]
    del b.plan.steps[first:]
    return steps
