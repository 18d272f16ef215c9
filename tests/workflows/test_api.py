"""The task endpoints of interfaces.md: the inbox and completing a task."""

from __future__ import annotations

import pytest

from cubebase.platform.users import create_token
from cubebase.web import create_app

from .conftest import build_workflow_schema
from .test_engine import new_project, start

pytestmark = pytest.mark.schema.with_args(build_workflow_schema)


@pytest.fixture
def client_for(platform, wf):
    app = create_app(platform.config, platform)

    def make(email):
        with platform.session(write=True) as s, s.begin():
            token = create_token(platform, s, email)
        c = app.test_client()
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return c

    return make


def test_inbox_and_complete_over_http(platform, wf, admin, users, client_for):
    start(platform, wf, admin, "consulting_project", new_project(platform, admin, users))
    consultant = client_for("consultant@example.com")
    leader = client_for("leader@example.com")
    r = consultant.get("/api/v1/tasks")
    assert r.status_code == 200
    (task,) = r.get_json()["tasks"]
    assert task["step"] == "onsite_report" and task["actions"][0]["key"] == "submit"
    assert consultant.get("/api/v1/tasks?filter=overdue").get_json() == {"tasks": []}
    assert consultant.get("/api/v1/tasks?filter=later").status_code == 400
    url = f"/api/v1/tasks/{task['id']}/complete"
    r = leader.post(url, json={"action": "submit"})
    assert r.status_code == 403 and r.get_json()["error"]["code"] == "forbidden"
    r = consultant.post(url, json={"action": "submit"})
    assert r.status_code == 422 and r.get_json()["error"]["details"][0]["field"] == "report"
    r = consultant.post(url, json={"action": "submit", "fields": {"report": "Done"}})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["task"]["status"] == "done"
    r = consultant.post(url, json={"action": "submit"})
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "conflict"
    (lead_task,) = leader.get("/api/v1/tasks").get_json()["tasks"]
    r = leader.post(f"/api/v1/tasks/{lead_task['id']}/complete", json={"action": "reject"})
    assert r.status_code == 422 and r.get_json()["error"]["details"][0]["field"] == "comment"
    assert leader.post("/api/v1/tasks/999999/complete", json={"action": "x"}).status_code == 404
    assert leader.post(f"/api/v1/tasks/{lead_task['id']}/complete", data="x").status_code == 400
    anonymous = create_app(platform.config, platform).test_client()
    assert anonymous.get("/api/v1/tasks").status_code == 401
