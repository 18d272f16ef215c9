"""The task inbox, charts and dashboards, and the calendar (both databases)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from cubebase.platform.actor import Actor
from cubebase.platform.users import find_user_id
from cubebase.workflows.definitions import load_workflows_text, validate_workflows
from cubebase.workflows.engine import install
from cubebase.workflows.models import Task

from .conftest import SALES_EMAIL, csrf_of, system_records

WORKFLOW = """
workflows:
  - key: deal_review
    table: deals
    label: Deal review
    start: manual
    steps:
      - key: review
        label: Sales review
        role: sales
        editable: [probability]
        required: [probability]
        deadline: 1d
        actions:
          - {key: approve, to: done}
          - {key: reject, to: rejected, comment: required}
"""


def deal_id(platform, title: str) -> int:
    with system_records(platform) as svc:
        page = svc.list("deals", limit=100, fields=["title"])
        return next(r.id for r in page.records if r.values["title"] == title)


@pytest.fixture
def review(sample):
    """The deal review workflow deployed and started on one deal (no probability)."""
    engine = install(sample)
    with sample.session(write=True) as s, s.begin():
        loaded = load_workflows_text(WORKFLOW)
        compiled = validate_workflows(loaded.workflows, sample.schema(s), {"sales", "admin"})
        engine.deploy(s, compiled)
    did = deal_id(sample, "Globex pilot")
    with system_records(sample) as svc:
        svc.update("deals", did, {"probability": None})
    with sample.session(write=True) as s, s.begin():
        engine.start(s, Actor.system_actor(), "deal_review", did)
    with sample.session() as s:
        task_id = s.query(Task.id).filter(Task.status == "open").scalar()
    return {"deal": did, "task": task_id, "engine": engine}


# --- task inbox ------------------------------------------------------------------------------
def test_inbox_lists_my_tasks_with_filters(sales, admin, review):
    page = sales.get("/tasks").get_data(as_text=True)
    assert 'id="task-list"' in page and "Sales review" in page and "Globex pilot" in page
    assert f'href="/tasks/{review["task"]}"' in page
    assert 'class="badge">1<' in page  # the navigation's count
    # due in a day: due soon, not overdue
    assert "Globex pilot" in sales.get("/tasks?filter=due_soon").get_data(as_text=True)
    assert 'id="no-tasks"' in sales.get("/tasks?filter=overdue").get_data(as_text=True)
    # the admin holds no sales role: no task
    assert 'id="no-tasks"' in admin.get("/tasks").get_data(as_text=True)
    assert admin.get(f"/tasks/{review['task']}").status_code == 404


def test_overdue_tasks(sales, review, sample):
    with sample.session(write=True) as s, s.begin():
        t = s.get(Task, review["task"])
        t.due_at = t.due_at - timedelta(days=3)
    page = sales.get("/tasks?filter=overdue").get_data(as_text=True)
    assert "Globex pilot" in page and "overdue" in page


def test_task_page_completes_through_the_engine(sales, review, sample):
    url = f"/tasks/{review['task']}"
    page = sales.get(url).get_data(as_text=True)
    assert 'id="task-form"' in page and 'id="f-probability"' in page
    assert 'id="action-approve"' in page and 'id="action-reject"' in page
    assert 'id="f-title"' not in page  # only the step's editable fields
    token = csrf_of(page)
    # approving needs the step's required field
    resp = sales.client.post(
        url, data={"csrf_token": token, "action": "approve", "probability": ""}
    )
    assert resp.status_code == 422
    assert "is required to approve" in resp.get_data(as_text=True)
    # rejecting needs a comment
    resp = sales.client.post(url, data={"csrf_token": token, "action": "reject", "probability": ""})
    assert resp.status_code == 422 and "is required to reject" in resp.get_data(as_text=True)
    # a value the field type refuses is shown beside the field
    resp = sales.client.post(
        url, data={"csrf_token": token, "action": "approve", "probability": "lots"}
    )
    assert resp.status_code == 422 and 'class="field-error"' in resp.get_data(as_text=True)
    resp = sales.client.post(
        url,
        data={"csrf_token": token, "action": "approve", "probability": "40", "comment": "ok"},
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/tasks")
    assert 'id="no-tasks"' in sales.get("/tasks").get_data(as_text=True)
    with system_records(sample) as svc:
        assert svc.get("deals", review["deal"]).values["probability"] == 40
    with sample.session() as s:
        assert s.get(Task, review["task"]).status == "done"
    # the closed task's page says so and offers no actions
    page = sales.get(url).get_data(as_text=True)
    assert "no longer open" in page and 'id="action-approve"' not in page
    assert "approved by" in page  # its history


def test_reject_with_comment_and_csrf(sales, review, sample):
    url = f"/tasks/{review['task']}"
    resp = sales.client.post(url, data={"action": "reject", "comment": "no"})
    assert resp.status_code == 400  # no CSRF token
    token = sales.token(url)
    resp = sales.client.post(
        url, data={"csrf_token": token, "action": "reject", "comment": "<b>not now</b>"}
    )
    assert resp.status_code == 302
    with sample.session() as s:
        task = s.get(Task, review["task"])
        assert task.status == "done" and task.action == "reject"


def test_someone_elses_task_is_not_found(app, sample, review):
    from .conftest import Browser

    with system_records(sample) as svc:
        from cubebase.platform.users import create_user

        create_user(sample, svc.session, "other@example.com", roles=[], password="other-password-1")
    b = Browser(app.test_client())
    assert b.login("other@example.com", "other-password-1").status_code == 302
    assert b.get(f"/tasks/{review['task']}").status_code == 404
    assert b.get("/tasks/999999").status_code == 404


# --- charts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["bar", "line", "pie", "funnel"])
def test_chart_types(admin, sample, kind):
    resp = admin.get(f"/t/deals/chart?type={kind}&by=stage&agg=count")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert f'data-chart-type="{kind}"' in page and "<svg" in page
    # the numbers: 4 leads... counted per option by the records service
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td></tr>", page))
    assert rows == {"lead": "3", "qualified": "2", "proposal": "3", "won": "2", "lost": "1"}


def test_chart_sum_and_average(admin, sample):
    page = admin.get("/t/deals/chart?type=bar&by=stage&agg=sum&of=amount").get_data(as_text=True)
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td></tr>", page))
    assert rows["won"] == "26,500" and rows["lost"] == "8,000"
    page = admin.get("/t/deals/chart?by=stage&agg=avg&of=amount").get_data(as_text=True)
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td></tr>", page))
    assert rows["won"] == "13,250"
    # a view's filter applies; by month of a date
    page = admin.get("/t/deals/chart?type=line&by=close_date&filter=hot").get_data(as_text=True)
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td></tr>", page))
    assert rows == {"2026-03": "1", "2026-08": "1", "2026-10": "1"}


def test_chart_filter_error_is_shown(admin, sample):
    page = admin.get("/t/deals/chart?by=stage&filter=amount+>").get_data(as_text=True)
    assert 'id="view-problem"' in page


def test_chart_labels_are_escaped(admin, sample):
    with system_records(sample) as svc:
        svc.create("deals", {"title": '<script>alert(1)</script>"><img src=x onerror=alert(2)>'})
    page = admin.get("/t/deals/chart?type=pie&by=title").get_data(as_text=True)
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    for kind in ("bar", "line", "funnel"):
        page = admin.get(f"/t/deals/chart?type={kind}&by=title").get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<img src=x" not in page


def test_dashboards_per_role(admin, sales, sample):
    # only admins save charts
    token = sales.token("/t/deals/chart")
    resp = sales.client.post(
        "/t/deals/charts",
        data={"csrf_token": token, "type": "funnel", "by": "stage", "dashboards": "sales"},
    )
    assert resp.status_code == 403
    page = admin.get("/t/deals/chart?type=funnel&by=stage").get_data(as_text=True)
    assert 'id="save-to-dashboard"' in page
    resp = admin.client.post(
        "/t/deals/charts",
        data={
            "csrf_token": csrf_of(page),
            "type": "funnel",
            "by": "stage",
            "agg": "sum",
            "of": "amount",
            "filter": 'stage <> "lost"',
            "label": "Pipeline <b>value</b>",
            "dashboards": "sales",
        },
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboards/sales")
    # a sales user's only dashboard opens directly; the chart is computed as them
    resp = sales.get("/dashboards")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboards/sales")
    page = sales.get("/dashboards/sales").get_data(as_text=True)
    assert "Pipeline &lt;b&gt;value&lt;/b&gt;" in page and 'data-chart-type="funnel"' in page
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td></tr>", page))
    assert "lost" not in rows and rows["won"] == "26,500"
    assert "Remove" not in page  # admins only
    assert sales.get("/dashboards/admin").status_code == 404
    assert sales.get("/dashboards/nope").status_code == 404
    # renaming the field keeps the chart (stored by field id)
    with sample.schema_editor() as ed:
        ed.update_field("deals", "amount", key="value")
    page = sales.get("/dashboards/sales").get_data(as_text=True)
    assert 'data-chart-type="funnel"' in page and "Sum of Amount" in page
    # the chart is a report (exported with the app's files) on the role's dashboard
    report = re.search(r'href="/reports/(\w+)"', page)
    assert report and report.group(1) == "pipeline_b_value_b"
    assert sales.get("/reports/pipeline_b_value_b").status_code == 200
    # the admin removes it from the dashboard (the report stays)
    page = admin.get("/dashboards/sales").get_data(as_text=True)
    m = re.search(r'action="(/dashboards/sales/items/0/delete)"', page)
    resp = admin.client.post(m.group(1), data={"csrf_token": csrf_of(page)})
    assert resp.status_code == 302
    assert 'id="no-charts"' in sales.get("/dashboards/sales").get_data(as_text=True)
    assert "Sales" in admin.get("/dashboards").get_data(as_text=True)
    assert sales.client.post("/dashboards/sales/items/0/delete").status_code in (400, 403)


def test_charts_saved_before_reports_stay_readable(admin, sales, sample):
    """A chart in the table's settings (config["charts"], before reports existed) is
    still shown on /dashboards/ROLE, as the viewer, and an admin can remove it."""
    with system_records(sample) as svc:
        t = svc.table("deals")
        config = dict(t.config)
        stage = t.fields["stage"].id
    config["charts"] = [
        {
            "key": "old",
            "label": "Old <i>funnel</i>",
            "type": "funnel",
            "by": stage,
            "agg": "count",
            "of": None,
            "filter": None,
            "dashboards": ["sales"],
        }
    ]
    from cubebase.platform.schema_changes import RULE_KEYS

    with sample.schema_editor() as ed:
        ed.update_table("deals", config={k: v for k, v in config.items() if k not in RULE_KEYS})
    resp = sales.get("/dashboards")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboards/sales")
    page = sales.get("/dashboards/sales").get_data(as_text=True)
    assert "Old &lt;i&gt;funnel&lt;/i&gt;" in page and 'data-chart-type="funnel"' in page
    rows = dict(re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">([^<]+)</td></tr>", page))
    assert rows["won"] == "2"
    page = admin.get("/dashboards/sales").get_data(as_text=True)
    m = re.search(r'action="(/t/deals/charts/old/delete)"', page)
    resp = admin.client.post(
        m.group(1), data={"csrf_token": csrf_of(page), "back": "//evil.example/"}
    )
    assert resp.status_code == 302 and "evil" not in resp.headers["Location"]
    assert sales.get("/dashboards/sales").status_code == 404


# --- calendar ---------------------------------------------------------------------------------
def test_calendar_month(admin, sample):
    page = admin.get("/t/deals/calendar?month=2026-03").get_data(as_text=True)
    assert 'id="calendar"' in page and "March 2026" in page
    cell = page[page.index('data-date="2026-03-16"') :][:400]
    did = deal_id(sample, "Acme renewal")
    assert f'href="/t/deals/{did}"' in cell and "Acme renewal" in cell
    assert "month=2026-02" in page and "month=2026-04" in page
    # the view's filter applies
    page = admin.get("/t/deals/calendar?month=2026-03&filter=NOT(hot)").get_data(as_text=True)
    assert "Acme renewal" not in page
    # a bad month falls back to this month; a table without a date field says so
    assert admin.get("/t/deals/calendar?month=nope").status_code == 200
    assert "needs a date field" in admin.get("/t/companies/calendar").get_data(as_text=True)


def test_calendar_respects_row_rules(sales, sample):
    with system_records(sample) as svc:
        svc.create("deals", {"title": "<i>Secret</i>", "close_date": "2026-03-20"})
    with sample.session(write=True) as s, s.begin():
        uid = find_user_id(sample, s, SALES_EMAIL)
    assert uid
    page = sales.get("/t/deals/calendar?month=2026-03").get_data(as_text=True)
    assert "&lt;i&gt;Secret&lt;/i&gt;" in page and "<i>Secret" not in page


def test_new_pages_need_sign_in(app, sample):
    c = app.test_client()
    for url in ("/tasks", "/dashboards", "/t/deals/chart", "/t/deals/calendar", "/t/deals/import"):
        resp = c.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
