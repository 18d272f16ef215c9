"""Apps shipped with Cubebase: folders of app files under ``cubebase/apps/NAME``.

Installing runs the same plan as ``cubebase schema apply``: the first install
creates everything, a second one finds nothing to do, and an install after an
app file changed upgrades the live app through the plan (refusing data loss
unless confirmed).
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

from ..platform.errors import NotFound
from ..platform.schema_changes import check_key
from .loader import load_app
from .plan import Result, apply_app

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"
_PACKAGE_APPS = APPS_DIR  # the apps that are modules of the cubebase package


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
    result = apply_app(
        platform, app, demo=demo, confirm_data_loss=confirm_data_loss, dry_run=dry_run
    )
    if demo and not dry_run:
        load_demo = _demo_generator(name, folder)
        if load_demo is not None:
            load_demo(platform)
    return result


def _demo_generator(name: str, folder: Path):
    """An app may ship a seeded demo data generator next to its files: ``demo.py``
    with ``load_demo(platform)``, run by ``--demo`` after the files' ``demo:`` rows
    (it should do nothing when its data is already there)."""
    path = folder / "demo.py"
    if not path.is_file():
        return None
    if folder.resolve().parent == _PACKAGE_APPS:
        module = importlib.import_module(f"cubebase.apps.{name}.demo")
    else:  # an app folder outside the package (tests)
        spec = importlib.util.spec_from_file_location(f"cubebase_app_{name}_demo", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return getattr(module, "load_demo", None)
