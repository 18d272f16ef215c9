"""Apps shipped with Cubebase: folders of app files under ``cubebase/apps/NAME``.

Installing runs the same plan as ``cubebase schema apply``: the first install
creates everything, a second one finds nothing to do, and an install after an
app file changed upgrades the live app through the plan (refusing data loss
unless confirmed).
"""

from __future__ import annotations

from pathlib import Path

from ..platform.errors import NotFound
from ..platform.schema_changes import check_key
from .loader import load_app
from .plan import Result, apply_app

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"


def app_folder(name: str, apps_dir: Path | None = None) -> Path:
    check_key(name, "app")
    folder = (apps_dir or APPS_DIR) / name
    if not folder.is_dir():
        known = sorted(p.name for p in (apps_dir or APPS_DIR).iterdir() if p.is_dir())
        raise NotFound(f"There is no app `{name}` (apps: {', '.join(known) or 'none'})")
    return folder


def install_app(
    platform,
    name: str,
    *,
    demo: bool = False,
    confirm_data_loss: bool = False,
    dry_run: bool = False,
    apps_dir: Path | None = None,
) -> Result:
    """Install or upgrade the app ``name`` from its folder."""
    folder = app_folder(name, apps_dir)
    app = load_app(folder)
    if app.app != name:
        from .errors import AppFileError, Problem

        file, line, _ = app.at("app")
        raise AppFileError(
            [Problem(file, line, "app", f"the app in folder `{name}` is named `{app.app}`")]
        )
    return apply_app(platform, app, demo=demo, confirm_data_loss=confirm_data_loss, dry_run=dry_run)
