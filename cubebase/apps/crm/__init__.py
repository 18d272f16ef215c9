"""The CRM app (``../shared/spec/crm.md``), built only from platform features.

The app is its files: ``app.yaml`` (the app, its roles, the org fields and rules of
the users table, automations, reports, dashboards), one YAML file per table beside
it and the workflows in ``workflows/``, installed like any app (``cubebase app
install crm``). The demo company (``demo.py``) is generated, seeded and
reproducible, and loaded through the records service as the system actor
(``cubebase app install crm --demo``).

``install_crm`` is that install with a chosen seed; ``cubebase demo`` calls it.
"""

from __future__ import annotations

from pathlib import Path

from ...platform.core import Platform

APP = "crm"
FOLDER = Path(__file__).resolve().parent


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
        from .demo import DEFAULT_SEED, load_demo

        stats = load_demo(platform, seed=DEFAULT_SEED if seed is None else seed)
    changed = not result.plan.empty
    return {"changed": changed or stats is not None, "demo": stats}
