"""A second demo, installed beside this one without importing it, gets an entry under "Demos"
in Burr's own sidebar; the entry is reachable with the keyboard and loads the demo's page."""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ARTIFACTS, ChatServer, burr_command, free_port, server_env
from fixture_demo_install import API, install_fixture_demo


@pytest.fixture
def burr_with_two_demos(tmp_path: Path) -> Iterator[ChatServer]:
    site = install_fixture_demo(tmp_path / "site")
    port = free_port()
    command = [burr_command(), "--no-open", "--no-copy-demo_data", "--port", str(port)]
    env = server_env(tmp_path / "storage", None, PYTHONPATH=str(site))
    server = ChatServer(command, env, port, ARTIFACTS / "logs" / "demo-sidebar.log", api=API)
    server.start()
    try:
        yield server
    finally:
        server.close()


def test_a_second_demo_has_a_sidebar_entry_that_loads_its_page(
    burr_with_two_demos: ChatServer, page: Any
) -> None:
    listed = burr_with_two_demos.client.get("/api/v0/demos").json()
    assert {"fixture-demo", "streaming-chatbot"} <= {d["name"] for d in listed["demos"]}

    page.goto(f"{burr_with_two_demos.url}/projects")
    page.get_by_role("button", name="Demos").click()
    entry = page.get_by_role("link", name="Fixture demo")
    entry.wait_for()
    assert entry.get_attribute("href") == "/demos/fixture-demo/"
    # Burr's own entry for the built-in name stays, once.
    assert page.locator('a[href="/demos/streaming-chatbot"]').count() == 1

    # Keyboard: Tab reaches the entry; Enter loads the demo's page (a full page load).
    page.evaluate("window.__marker = 1")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.textContent") == "Fixture demo":
            break
    else:
        raise AssertionError("Tab never reached the Fixture demo entry")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.get_by_text("API answered: fixture-demo (started)").wait_for()
    assert page.url.endswith("/demos/fixture-demo/")
    assert page.evaluate("window.__marker") is None  # a new document, not a client-side route

    # A click does the same.
    page.go_back()
    page.get_by_role("button", name="Demos").click()
    with page.expect_navigation():
        page.get_by_role("link", name="Fixture demo").click()
    page.get_by_role("heading", name="Fixture demo").wait_for()
