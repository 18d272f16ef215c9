"""Issue 5's contract on the CRM itself: the installed CRM exported to files is the
CRM (planning the export is empty), and applying the exported files changes nothing."""

from __future__ import annotations

from cubebase.apps.crm import APP, FOLDER
from cubebase.schema_defs import apply_app, live_app, load_app, plan_app, write_app


def _export(platform, out):
    with platform.session() as s:
        write_app(live_app(platform.schema(s), s, APP), out)
    return out


def test_export_of_the_installed_crm_plans_no_change(platform, tmp_path):
    out = _export(platform, tmp_path / "crm")
    plan = plan_app(platform, load_app(out))
    assert plan.empty, [s.text for s in plan.steps]
    users = [t for t in load_app(out).tables if t.key == "users"]
    source = [t for t in load_app(FOLDER).tables if t.key == "users"]
    assert [f.key for f in users[0].fields] == [f.key for f in source[0].fields]


def test_applying_the_exported_crm_keeps_it_unchanged(platform, tmp_path):
    out = _export(platform, tmp_path / "crm")
    result = apply_app(platform, load_app(out))
    assert result.plan.empty, [s.text for s in result.plan.steps]
    assert plan_app(platform, load_app(out)).empty
    again = _export(platform, tmp_path / "again")
    for path in sorted(out.rglob("*.yaml")):
        name = path.relative_to(out)
        assert (again / name).read_text() == path.read_text(), name
