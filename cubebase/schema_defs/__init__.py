"""Apps as files: the declarative app format (load, validate, diff, apply, export).

Public API::

    load_app(path) -> AppSpec                      # read and check the form of app files
    plan_app(platform, app, demo=False) -> Plan    # what applying would do, in words
    apply_app(platform, app, confirm_data_loss=False, dry_run=False, demo=False) -> Result
    live_app(schema, session, app_key) -> AppSpec  # the live schema as an app
    write_app(app, folder) / app_files(app)        # an app as YAML files
    install_app(platform, name, demo=False)        # cubebase/apps/NAME
    json_schema()                                  # the format's JSON Schema

Every mistake in app files is reported at once as ``AppFileError`` (``.problems``:
file, line, key, message, formula caret). See docs/app-format.md.
"""

from .apps import install_app
from .errors import AppFileError, Problem
from .export import app_files, live_app, write_app
from .ir import AppSpec, json_schema
from .loader import load_app
from .plan import Plan, Result, apply_app, plan_app

__all__ = [
    "AppFileError",
    "AppSpec",
    "Plan",
    "Problem",
    "Result",
    "app_files",
    "apply_app",
    "install_app",
    "json_schema",
    "live_app",
    "load_app",
    "plan_app",
    "write_app",
]
