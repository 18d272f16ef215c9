"""The CRM app (``../shared/spec/crm.md``), built only from platform features.

The app is its files: ``app.yaml`` (the app, its roles, the org fields of the
users table) and one YAML file per table beside it, installed like any app
(``cubebase app install crm``). The workflows (consulting project and customer
transfer) are workflow files in ``workflows/``, deployed
through ``cubebase.workflows`` until app files carry ``workflows:``. The demo
company (``demo.py``) is generated, seeded and reproducible, and loaded through
the records service as the system actor.

``install_crm`` does all three; ``cubebase demo`` calls it.
"""

from __future__ import annotations

from pathlib import Path

from ...platform.core import Platform

APP = "crm"
FOLDER = Path(__file__).resolve().parent
WORKFLOWS = FOLDER / "workflows"


def workflow_files() -> list[Path]:
    return sorted(WORKFLOWS.glob("*.yaml"))


def deploy_workflows(platform: Platform) -> list:
    """Check the CRM's workflow files against the live schema and deploy them
    (a new version only for a workflow whose document changed); the plan steps."""
    from ...platform.users import role_keys
    from ...workflows.definitions import load_and_validate
    from ...workflows.engine import install

    engine = install(platform)
    with platform.session(write=True) as session, session.begin():
        roles = set(role_keys(session))
        compiled = []
        for path in workflow_files():
            compiled += load_and_validate(path, platform.schema(session), roles)
        return engine.deploy(session, compiled, app=APP)


def install_crm(
    platform: Platform,
    *,
    demo: bool = False,
    seed: int | None = None,
    confirm_data_loss: bool = False,
) -> dict:
    """Install (or bring up to date) the CRM: its tables, its workflows and, with
    ``demo``, the demo company when the CRM holds no customers yet.

    Returns what happened: ``{"changed": bool, "demo": DemoStats | None}``."""
    from ...schema_defs import install_app

    result = install_app(platform, APP, confirm_data_loss=confirm_data_loss)
    stats = None
    if demo:
        # the app's files (workflows included) are installed; the demo then puts
        # workflow instances in flight
        from .demo import DEFAULT_SEED, load_demo

        stats = load_demo(platform, seed=DEFAULT_SEED if seed is None else seed)
    plan = deploy_workflows(platform)
    changed = not result.plan.empty or any(s.kind != "unchanged" for s in plan)
    return {"changed": changed or stats is not None, "demo": stats}
