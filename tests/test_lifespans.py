"""A demo router's lifespan runs exactly once however it is mounted, and the host contract.

The fixture demo (``tests/fixture_demo_package``, installed with pip into a temporary folder)
registers itself in ``burr.demos`` as a plain mapping, without importing this package; its
lifespan writes ``startup <pid>`` / ``shutdown <pid>`` lines to ``FIXTURE_DEMO_LIFESPAN_LOG``.
"""

import signal
import sys
import time
from pathlib import Path

import pytest
from conftest import ARTIFACTS, ChatServer, burr_command, free_port, server_env
from fastapi import FastAPI
from fastapi.testclient import TestClient
from fixture_demo_install import API, install_fixture_demo

pytestmark = pytest.mark.e2e  # (starts servers and pip)


@pytest.fixture(scope="module")
def fixture_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_fixture_demo(tmp_path_factory.mktemp("fixture-site"))


def _events(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines()] if log.exists() else []


def _events_after_stop(log: Path, timeout_s: float = 15.0) -> list[str]:
    """The events once shutdown was logged: ``burr`` itself may exit before its uvicorn child
    has finished shutting down (both get the SIGTERM)."""
    deadline = time.monotonic() + timeout_s
    while "shutdown" not in _events(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # a second shutdown would show up by now
    return _events(log)


def _serve(command: list[str], tmp_path: Path, site: Path, name: str, **extra: str) -> Path:
    """Run a server, call the fixture demo's API, stop it with SIGTERM; returns the lifespan log."""
    log = tmp_path / "lifespan.log"
    port = free_port()
    env = server_env(
        tmp_path / "storage",
        None,
        PYTHONPATH=f"{site}:{tmp_path}",
        FIXTURE_DEMO_LIFESPAN_LOG=str(log),
        **extra,
    )
    command = [part.replace("{port}", str(port)) for part in command]
    server = ChatServer(command, env, port, ARTIFACTS / "logs" / f"lifespan-{name}.log", api=API)
    server.start()
    try:
        body = server.client.get(f"{API}/model").json()
        assert body == {"demo": "fixture-demo", "started": True}
        assert _events(log) == ["startup"]
        demos = server.client.get("/api/v0/demos").json()
        assert {"fixture-demo", "streaming-chatbot"} <= {d["name"] for d in demos["demos"]}
    finally:
        server.stop(signal.SIGTERM)
        server.client.close()
    return log


def test_under_burr_startup_and_shutdown_run_once(tmp_path: Path, fixture_site: Path) -> None:
    command = [burr_command(), "--no-open", "--no-copy-demo_data", "--port", "{port}"]
    log = _serve(command, tmp_path, fixture_site, "burr")
    assert _events_after_stop(log) == ["startup", "shutdown"]
    assert len({line.split()[1] for line in log.read_text().splitlines()}) == 1


PARENT_APP = """
from fastapi import FastAPI
from burr.tracking.server.run import mount_burr_ui
from burr_streaming_chatbot.plugins import mount_demos

app = FastAPI()
ui = mount_burr_ui(app, path="/burr")
mount_demos(ui)  # a no-op when the startup hook already mounted the demos
"""
ATTACH = """
from burr_streaming_chatbot.plugins import attach_lifespans
attach_lifespans(app, ui)
"""


@pytest.mark.parametrize(
    "autoload, attach, shutdown",
    [("1", False, True), ("0", True, True), ("0", False, False)],
    ids=["hook-on", "hook-off-attach_lifespans", "hook-off-lazy"],
)
def test_under_mount_burr_ui_startup_and_shutdown_run_once(
    tmp_path: Path, fixture_site: Path, autoload: str, attach: bool, shutdown: bool
) -> None:
    """With the hook on, ``mount_burr_ui`` runs the demos' lifespans with the parent's; with it
    off, ``attach_lifespans(app, ui)`` does. Without either, startup runs on the first request
    and shutdown does not run under uvicorn (it re-raises SIGTERM before the loop's tasks are
    cancelled): that case is documented, and pinned here."""
    (tmp_path / "parent_app.py").write_text(PARENT_APP + (ATTACH if attach else ""))
    command = [sys.executable, "-m", "uvicorn", "parent_app:app", "--port", "{port}"]
    log = tmp_path / "lifespan.log"
    port = free_port()
    env = server_env(
        tmp_path / "storage",
        None,
        PYTHONPATH=f"{fixture_site}:{tmp_path}",
        FIXTURE_DEMO_LIFESPAN_LOG=str(log),
        BURR_DEMOS_AUTOLOAD=autoload,
    )
    command = [part.replace("{port}", str(port)) for part in command]
    server_log = ARTIFACTS / "logs" / f"lifespan-mount-{autoload}-{attach}.log"
    server = ChatServer(command, env, port, server_log, api="/burr" + API)
    server.start()
    try:
        assert server.client.get(f"/burr{API}/model").json() == {
            "demo": "fixture-demo",
            "started": True,
        }
        assert server.client.get(f"/burr{API}/model").json()["started"] is True
        assert _events(log) == ["startup"]
        demos = server.client.get("/burr/api/v0/demos").json()
        assert {"fixture-demo", "streaming-chatbot"} <= {d["name"] for d in demos["demos"]}
        assert "/burr/demos/fixture-demo/" in {d["page"] for d in demos["demos"]}
    finally:
        server.stop(signal.SIGTERM)
        server.client.close()
    # uvicorn alone has exited by now: without a shutdown to wait for, the log is final.
    events = _events_after_stop(log, timeout_s=15.0 if shutdown else 0.0)
    assert events == (["startup", "shutdown"] if shutdown else ["startup"])


def test_under_include_router_startup_and_shutdown_run_once(
    tmp_path: Path, fixture_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "lifespan.log"
    monkeypatch.setenv("FIXTURE_DEMO_LIFESPAN_LOG", str(log))
    monkeypatch.syspath_prepend(str(fixture_site))
    import fixture_demo

    app = FastAPI()
    app.include_router(fixture_demo.create_router(), prefix=API)
    with TestClient(app) as client:
        assert client.get(f"{API}/model").json()["started"] is True
        assert _events(log) == ["startup"]
    assert _events(log) == ["startup", "shutdown"]


def test_under_mount_demos_on_a_plain_app_startup_and_shutdown_run_once(
    tmp_path: Path, fixture_site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from burr_streaming_chatbot.plugins import mount_demos

    log = tmp_path / "lifespan.log"
    monkeypatch.setenv("FIXTURE_DEMO_LIFESPAN_LOG", str(log))
    monkeypatch.syspath_prepend(str(fixture_site))
    import fixture_demo

    app = FastAPI()
    mount_demos(app, [fixture_demo.demo])
    with TestClient(app) as client:
        assert client.get(f"{API}/model").json()["started"] is True
        assert client.get(f"{API}/model").json()["started"] is True
        listed = client.get("/api/v0/demos").json()
        assert [d["name"] for d in listed["demos"]] == ["fixture-demo"]
    assert _events(log) == ["startup", "shutdown"]
