"""A second demo, installed beside this one without importing it, gets an entry under "Demos"
in Burr's own sidebar; the entry is reachable with the keyboard and loads the demo's page."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ARTIFACTS, ChatServer, burr_command, free_port, server_env
from fixture_demo_install import API, install_fixture_demo


def _burr_site(version: str, target: Path) -> str:
    """Nothing for the installed Burr; else that apache-burr, installed by pip into ``target``
    (put first on the server's path; skipped when pip cannot get it)."""
    if version == "installed":
        return ""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            f"apache-burr=={version}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.skip(f"pip could not install apache-burr=={version}: {result.stderr[-300:]}")
    return str(target) + os.pathsep


@pytest.fixture(params=["installed", "0.42.0"], ids=["burr-installed", "burr-0.42"])
def burr_with_two_demos(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    site = install_fixture_demo(tmp_path / "site")
    burr_site = _burr_site(request.param, tmp_path / "burr")
    port = free_port()
    command = [burr_command(), "--no-open", "--no-copy-demo_data", "--port", str(port)]
    env = server_env(tmp_path / "storage", None, PYTHONPATH=burr_site + str(site))
    server = ChatServer(command, env, port, ARTIFACTS / "logs" / "demo-sidebar.log", api=API)
    server.start()
    try:
        yield server
    finally:
        server.close()


def test_a_second_demo_has_a_sidebar_entry_that_loads_its_page(
    burr_with_two_demos: ChatServer, page: Any
) -> None:
    html = burr_with_two_demos.client.get("/projects").text
    # 0.42's page is a Create React App build (static/js/main.*.js); 0.43's is a Vite build.
    assert ("/static/js/main." in html) == burr_with_two_demos.env["PYTHONPATH"].startswith(
        str(Path(burr_with_two_demos.env["burr_path"]).parent / "burr")
    )
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
        focused = page.evaluate("document.activeElement && document.activeElement.textContent")
        if focused == "Fixture demo":
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
