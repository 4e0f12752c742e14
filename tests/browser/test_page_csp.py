"""The page under its Content-Security-Policy, served by the real ``burr`` command: it loads,
answers, parses markdown and highlights code in its worker, and the browser reports no CSP
violation and no console error. A page inside a frame of another site is blocked."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ChatServer, start_server

from .conftest import PAGE_PATH

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install '.[test]')"
)
expect = sync_api.expect

VIOLATIONS = """
() => {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', (e) =>
    window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
}
"""


@pytest.fixture(scope="module")
def burr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    """``burr`` with the offline model (its "code" answer has a Python code block)."""
    storage: Path = tmp_path_factory.mktemp("csp-burr")
    server = start_server("burr", storage, None, "csp-burr")
    yield server
    server.close()


def test_the_page_works_under_its_csp_with_no_violation(page: Any, burr: ChatServer) -> None:
    console: list[str] = []
    page.on(
        "console",
        lambda m: console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.add_init_script(f"({VIOLATIONS})()")
    response = page.goto(burr.url + PAGE_PATH)
    assert (
        response is not None
        and "script-src 'self' 'sha256-" in response.headers["content-security-policy"]
    )
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_visible()
    expect(page.get_by_test_id("model-line")).not_to_contain_text("Loading")
    box.fill("Write some python code")
    box.press("Enter")
    answer = page.locator('[data-testid="assistant-message"]:not([data-streaming])').last
    expect(answer).to_be_visible(timeout=20_000)
    expect(page.locator('[data-streaming="true"]')).to_have_count(0, timeout=20_000)
    # The worker ran: markdown became elements, and the code block was highlighted.
    expect(answer.locator('pre[data-highlighted="true"] .hljs-keyword').first).to_be_visible()
    expect(answer.locator("p code").first).to_have_text("generate_code")
    assert any("renderWorker" in worker.url for worker in page.workers)
    # The injected config script ran (the page found its API), and nothing was blocked.
    assert page.evaluate("() => window.__BURR_DEMO__.name") == "streaming-chatbot"
    assert page.evaluate("() => window.__violations") == []
    # (A new conversation's GET /branches is a 404 the page expects; Chromium logs it.)
    errors = [line for line in console if "status of 404" not in line]
    assert not errors, errors


def test_another_site_may_not_frame_the_page(page: Any, burr: ChatServer) -> None:
    """``frame-ancestors 'self'``: a page on another origin (here ``localhost`` framing
    ``127.0.0.1``) gets a blocked frame; the same origin may frame it (Burr's UI)."""
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "frame-ancestors" in m.text else None)
    page.goto(burr.url + "/api/v0/ready")  # an origin of this server, to write a frame into
    page.set_content(
        f'<iframe id="other" src="http://localhost:{burr.port}{PAGE_PATH}"></iframe>'
        f'<iframe id="same" src="{burr.url}{PAGE_PATH}"></iframe>'
    )
    same = page.frame_locator("#same")
    expect(same.get_by_role("textbox", name="Message")).to_be_visible()
    for _ in range(50):  # up to 5 s for Chromium's report
        if blocked:
            break
        page.wait_for_timeout(100)
    assert blocked, "no frame-ancestors report in the console"
    expect(page.frame_locator("#other").get_by_role("textbox", name="Message")).to_have_count(0)
