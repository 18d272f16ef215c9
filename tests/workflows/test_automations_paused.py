"""``automations.paused()``: a data load that writes itself what the automations would
make (the CRM's demo generator) runs none of them for its own writes; the writes
after it run them again (both databases)."""

from __future__ import annotations

import threading

import pytest

from cubebase.workflows.automations import paused

from .automation_fixtures import build_automation_schema, create, deploy, rows, update, user_id
from .test_automations import CREDIT

pytestmark = pytest.mark.schema.with_args(build_automation_schema)


def test_writes_inside_paused_run_no_automation(platform):
    deploy(platform, CREDIT)
    ann = user_id(platform, "ann@example.com")
    with paused():
        rid = create(
            platform, "opportunities", {"name": "Old", "stage": "won", "owner": ann, "co_share": 0}
        )
        seen = []  # another thread is not paused by this one
        t = threading.Thread(
            target=lambda: seen.append(
                create(
                    platform,
                    "opportunities",
                    {"name": "Other", "stage": "won", "owner": ann, "co_share": 0},
                )  # fmt: skip
            )
        )
        t.start()
        t.join()
    credits = rows(platform, "commission_credits")
    assert [c["opportunity"] for c in credits] == seen  # only the other thread's deal
    # after the load, the automation runs again as usual
    update(platform, "opportunities", rid, {"stage": "lost"})
    update(platform, "opportunities", rid, {"stage": "won"})
    assert sorted(c["opportunity"] for c in rows(platform, "commission_credits")) == sorted(
        [*seen, rid]
    )
