"""Browser fixtures: Debian's Chromium driven by Playwright (sync API), one fresh context per test.

Playwright's own browser downloads are never used: the tests launch ``/usr/bin/chromium`` (the
``chromium`` Debian package) with the flags below, so nothing is fetched and no profile is
shared. Every test leaves a full-page screenshot in ``artifacts/screenshots/<test-name>.png``,
passed or failed, so a person can look at what the page showed.
"""

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS
from conftest import ARTIFACTS

DESKTOP = {"width": 1280, "height": 800}
"""Wide enough (Tailwind ``lg``) that the Burr panel with the graph is shown beside the chat."""
SCREENSHOTS = ARTIFACTS / "screenshots"
PAGE_PATH = "/demos/streaming-chatbot/"


def _skip_reason() -> Optional[str]:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed (pip install '.[test]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (Debian: apt-get install chromium)"
    return None


SKIP_REASON = _skip_reason()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of this directory is a browser test; all are skipped, with the reason, when
    Chromium or Playwright is missing."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here not in Path(str(item.fspath)).resolve().parents:
            continue
        item.add_marker(pytest.mark.browser)
        if SKIP_REASON:
            item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    """One headless Chromium for this directory (a temporary profile of its own).

    Package scope, not session: while Playwright's sync API is open it keeps an asyncio loop
    running in the main thread, and the async tests that run after this directory could not
    start theirs ("Cannot run the event loop while another loop is running").
    """
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


def _file_name(node_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", node_name).strip("-")[:120] or "test"


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh context (no cookies, no storage); a screenshot is saved at teardown.

    Uncaught errors in the page (``pageerror``) fail the test at teardown.
    """
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(10_000)
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda error: errors.append(str(error)))
    yield new_page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for number, each in enumerate(context.pages):
            suffix = "" if number == 0 else f"-{number + 1}"
            each.screenshot(
                path=str(SCREENSHOTS / f"{_file_name(request.node.name)}{suffix}.png"),
                full_page=True,
            )
    finally:
        context.close()
    assert not errors, f"uncaught errors in the page: {errors}"
