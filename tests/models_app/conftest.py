"""The browser the end-to-end tests drive, shared by every browser test file."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ENSURE_BROWSER = Path(__file__).resolve().parents[2] / "scripts" / "ensure-browser.sh"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium: the one scripts/ensure-browser.sh finds (Debian's, Chrome or Playwright's
    own; `make test` installs one first where there is none). Without one the tests fail, they do
    not skip: a green run must mean the pages were exercised."""
    found = subprocess.run(
        ["bash", str(ENSURE_BROWSER), "--find"],
        env={**os.environ, "BIN": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
    )
    if found.returncode != 0:
        pytest.fail(found.stderr.strip(), pytrace=False)
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make between
    # browser steps are plain synchronous code, so Django's async-safety guard does not apply.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=found.stdout.strip(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()
