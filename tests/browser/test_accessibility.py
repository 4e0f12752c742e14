"""axe-core (the page's npm dev dependency) finds no accessibility violation on the page.

The page is served by the real ``burr`` command and scanned in Chromium, in the light and the
dark theme (the page follows ``prefers-color-scheme``; it has no theme switch of its own), in
the states a reader meets: the empty page, an answer with a code block, a reasoning model's
Thinking block (while it thinks and after), a branch, answers stopped with Stop (before any text
and midway), and a failed turn with its Retry button. A failure lists each violation: rule,
impact, the elements and axe's summary.

axe-core is injected into the page as a script. The page's Content-Security-Policy
(``script-src 'self'`` plus one hash) would block that script, so these tests, and only these,
open their browser context with Playwright's ``bypass_csp=True``; the page itself runs as it
always does.
"""

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ChatServer, start_server
from fake_openai import FakeUpstream

from .conftest import DESKTOP, PAGE_PATH, SCREENSHOTS, _file_name

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

UI_BUNDLE = Path(__file__).resolve().parents[2] / "ui_bundle"
AXE = UI_BUNDLE / "node_modules" / "axe-core" / "axe.min.js"

THEMES = ("light", "dark")

CODE_ANSWER = """## Adding numbers

Call `add` with two numbers; see [Burr's docs](https://burr.apache.org/) for more.

```python
# Add two numbers and report the sum.
def add(a: int, b: int = 1) -> int:
    \"\"\"Return the sum.\"\"\"
    return a + b + 42  # the answer

print(add(2), "ok", True, None)
```

| name | meaning |
|---|---|
| `a` | the first number |

- one
- two
"""

THINKING = "The user wants code. A short function that adds two numbers will do, with a test."
LONG_THINKING = " ".join([THINKING] * 4)


@pytest.fixture(scope="module")
def axe_script() -> Path:
    """axe-core's browser build, from the page's npm packages (installed from the lock file
    when an older install lacks it)."""
    if not AXE.is_file():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=UI_BUNDLE, check=True, timeout=600
        )
    assert AXE.is_file(), f"{AXE} is missing after npm ci"
    return AXE


@pytest.fixture(scope="module")
def burr_upstream(
    fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChatServer]:
    """The ``burr`` command, its model the fake OpenAI-compatible server."""
    server = start_server(
        "burr", tmp_path_factory.mktemp("a11y-upstream"), fake_upstream, "a11y_upstream"
    )
    yield server
    server.close()


@pytest.fixture(scope="module")
def burr_offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    """The ``burr`` command with no model configured: the offline demo model answers and the
    page shows its offline banner."""
    server = start_server("burr", tmp_path_factory.mktemp("a11y-offline"), None, "a11y_offline")
    yield server
    server.close()


@pytest.fixture
def axe_page(browser: Any) -> Iterator[Any]:
    """A page in a fresh context that ignores the page's CSP (so axe-core can be injected);
    uncaught errors in the page fail the test."""
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def report(violations: list[dict[str, Any]]) -> str:
    """axe's violations as lines a person can act on."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"    {' '.join(node['target'])}: {summary}")
    return "\n".join(lines)


def scan(page: Any, state: str, test: str) -> list[str]:
    """Run axe-core on the whole page in each theme; returns the violations found, readable,
    under the state and theme, and saves a screenshot of each theme
    (``artifacts/screenshots/<test>-<state>-<theme>.png``, ``test`` the test's name)."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    found = []
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        assert page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches") == (
            theme == "dark"
        )
        # Colour transitions (the graph's nodes) end first: axe reads the colours shown.
        page.evaluate(
            "Promise.allSettled(document.getAnimations()"
            ".filter((a) => a instanceof CSSTransition).map((a) => a.finished))"
        )
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        if result["violations"]:
            found.append(f"[{state}, {theme}]\n{report(result['violations'])}")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(
            path=str(SCREENSHOTS / f"{_file_name(test)}-{state}-{theme}.png"), full_page=True
        )
    page.emulate_media(color_scheme="light")
    return found


def open_chat(page: Any, server: ChatServer) -> None:
    page.goto(server.url + PAGE_PATH)
    expect(page.get_by_role("textbox", name="Message")).to_be_visible()
    expect(page.get_by_test_id("model-line")).not_to_contain_text("Loading")


def send(page: Any, prompt: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(prompt)
    box.press("Enter")


def wait_for_answers(page: Any, count: int) -> None:
    answers = page.locator('[data-testid="assistant-message"]:not([data-streaming])')
    expect(answers).to_have_count(count, timeout=15_000)
    expect(page.locator('[data-streaming="true"]')).to_have_count(0, timeout=15_000)


def test_axe_finds_no_violation_on_the_offline_page_empty_and_after_code(
    axe_script: Path, burr_offline: ChatServer, axe_page: Any, request: pytest.FixtureRequest
) -> None:
    """The empty page (with the offline banner), the offline model's code answer, and its tool
    calls: a calculator card (opened) and a save_note call waiting with its approval card (the
    graph marked as waiting there), light and dark."""
    page = axe_page
    open_chat(page, burr_offline)
    expect(page.get_by_text("Ask anything.")).to_be_visible()
    found = scan(page, "empty", request.node.name)

    send(page, "Write some code that adds two numbers")
    wait_for_answers(page, 1)
    answer = page.get_by_test_id("assistant-message").last
    expect(answer.get_by_test_id("answer-mode")).to_contain_text("generate_code")
    expect(answer.locator(".code-block")).to_be_visible()
    expect(answer.locator(".code-block [class^='hljs-']").first).to_be_attached()
    found += scan(page, "offline-code", request.node.name)

    send(page, "What is 6*7?")
    wait_for_answers(page, 3)
    calculator = page.locator('[data-testid="tool-card"][data-tool-name="calculator"]')
    expect(calculator).to_have_attribute("data-status", "ok")
    calculator.locator("summary").click()
    expect(calculator.get_by_test_id("tool-output")).to_be_visible()
    send(page, "remember to buy milk")
    wait_for_answers(page, 4)
    expect(page.get_by_test_id("approval-card")).to_be_visible()
    expect(page.locator('[data-testid="graph-node"][data-waiting="true"]')).to_have_count(1)
    page.get_by_test_id("settings-panel").locator("summary").click()  # (the settings panel too)
    expect(page.get_by_role("combobox", name="Model")).to_be_visible()
    found += scan(page, "offline-tools", request.node.name)
    assert not found, "axe-core found violations:\n" + "\n".join(found)


def test_axe_finds_no_violation_with_thinking_code_stop_and_error(
    axe_script: Path,
    burr_upstream: ChatServer,
    upstream: FakeUpstream,
    axe_page: Any,
    request: pytest.FixtureRequest,
) -> None:
    """A reasoning model thinking (its block open, Stop shown), stopped before any answer; its
    answer asked again, with the thinking and a code block; a branch made by Regenerate, an
    answer stopped with Stop in it, and a failed turn with Retry: light and dark."""
    page = axe_page
    open_chat(page, burr_upstream)

    # Thinking, slowly (6 s of it): scanned while it streams, with the Stop button shown and
    # the graph's node running; then stopped before any answer.
    upstream.control(reasoning=LONG_THINKING, text="Unused.", delay_ms=100, route="generate_code")
    send(page, "Write a function that adds two numbers")
    block = page.locator('[data-streaming="true"] [data-testid="thinking"]')
    expect(block).to_have_attribute("data-state", "thinking")
    block.get_by_test_id("thinking-summary").click()
    expect(block.get_by_test_id("thinking-text")).to_be_visible()
    found = scan(page, "thinking", request.node.name)
    expect(block).to_have_attribute("data-state", "thinking")  # the scans saw it thinking
    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_test_id("stopped-notice")).to_be_visible(timeout=15_000)
    found += scan(page, "stopped-while-thinking", request.node.name)

    # Its answer, with the thinking (opened) and a code block.
    upstream.control(reasoning=THINKING, text=CODE_ANSWER, delay_ms=0)
    page.get_by_test_id("stopped-notice").get_by_role("button", name="Regenerate").click()
    wait_for_answers(page, 1)
    answer = page.get_by_test_id("assistant-message").last
    answer.get_by_test_id("thinking-summary").click()
    expect(answer.get_by_test_id("thinking-text")).to_be_visible()
    expect(answer.locator(".code-block .hljs-keyword").first).to_be_attached()
    expect(answer.locator(".code-block .hljs-comment").first).to_be_attached()
    expect(answer.locator(".code-block .hljs-string").first).to_be_attached()
    found += scan(page, "code", request.node.name)

    # Regenerate: a branch, current in the list (its "Branch at message" label) and a
    # switcher on its answer.
    answer.get_by_role("button", name="Regenerate").click()
    expect(page.get_by_test_id("conversation-branch")).to_have_count(1)
    wait_for_answers(page, 1)
    expect(page.get_by_test_id("branch-position")).to_have_text("2 / 2")

    # Stopped: the kept text marked "Stopped".
    upstream.control(reasoning=None, text=None, route=None, tokens=400, delay_ms=50)
    send(page, "What is a long answer?")
    expect(page.locator('[data-streaming="true"] .prose')).to_contain_text("token5")
    page.get_by_role("button", name="Stop").click()
    wait_for_answers(page, 2)
    expect(page.get_by_test_id("interrupted-marker")).to_have_text(re.compile("Stopped"))

    # A failed turn: the error notice and its Retry button.
    upstream.control(tokens=5, delay_ms=0, fault="server_error", fault_count=1, fault_on="route")
    send(page, "What fails?")
    error = page.get_by_test_id("chat-error")
    expect(error).to_be_visible()
    expect(error.get_by_role("button", name="Retry")).to_be_visible()
    found += scan(page, "stopped-and-error", request.node.name)
    assert not found, "axe-core found violations:\n" + "\n".join(found)
