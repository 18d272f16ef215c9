"""Automations: actions run by the platform on record events or on a schedule
(docs/automations.md). The format and its checks are in
``cubebase.schema_defs.automations``; the engine is ``engine``, the actions ``actions``."""

from .engine import AutomationEngine, RunResult, install, paused, run_due

__all__ = ["AutomationEngine", "RunResult", "install", "paused", "run_due"]
