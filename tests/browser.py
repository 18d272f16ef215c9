"""What browser tests share: Debian's Chromium driven by Playwright (never
``playwright install``), the flags it runs with, where screenshots go, and the skip
(or, under CI, the failure) when the browser is missing."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CUBEBASE_TEST_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("CUBEBASE_TEST_ARTIFACTS", ROOT / "test-artifacts"))


def need_browser() -> None:
    """Skip the test without Playwright or Chromium; fail it when CI requires them."""
    reason = None
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ModuleNotFoundError:
        reason = "the playwright package is not installed (pip install -e '.[dev]')"
    if reason is None and not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        reason = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    if reason:
        if os.environ.get("CUBEBASE_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " (required: CUBEBASE_TEST_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
