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


def test_starting_a_workflow_by_hand_over_http(platform, wf, admin, users, client_for):
    project = new_project(platform, admin, users)
    consultant = client_for("consultant@example.com")
    url = "/api/v1/workflows/consulting_project/start"
    r = consultant.post(url, json={"record_id": project})
    assert r.status_code == 201, r.get_json()
    instance = r.get_json()["instance"]
    assert instance["record_id"] == project and instance["status"] == "running"
    assert instance["step"] == "onsite_report"
    (task,) = consultant.get("/api/v1/tasks").get_json()["tasks"]
    assert task["record_id"] == project
    again = consultant.post(url, json={"record_id": project})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "conflict"
    assert consultant.post(url, json={"record_id": 999_999}).status_code == 404
    assert consultant.post("/api/v1/workflows/nope/start", json={"record_id": 1}).status_code == 404
    for bad in ({"record_id": "1"}, {"record_id": True}, {}, {"record_id": 1, "x": 2}):
        assert consultant.post(url, json=bad).status_code == 400
    doc = consultant.get("/api/v1/openapi.json").get_json()
    assert {"/tasks", "/tasks/{task_id}/complete", "/workflows/{key}/start"} <= set(doc["paths"])


def test_running_instances_follow_a_renamed_table(platform, wf, admin, users, client_for):
    from cubebase.workflows.engine import install

    install(platform)
    project = new_project(platform, admin, users)
    start(platform, wf, admin, "consulting_project", project)
    with platform.schema_editor() as ed:
        ed.update_table("projects", new_key="jobs")
    consultant = client_for("consultant@example.com")
    (task,) = consultant.get("/api/v1/tasks").get_json()["tasks"]
    assert task["table"] == "jobs" and task["record_id"] == project
    r = consultant.post(
        f"/api/v1/tasks/{task['id']}/complete",
        json={"action": "submit", "fields": {"report": "Done"}},
    )
    assert r.status_code == 200, r.get_json()
    assert (
        consultant.get(f"/api/v1/tables/jobs/records/{project}").get_json()["fields"]["report"]
        == "Done"
    )
