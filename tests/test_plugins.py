"""The burr.demos entry point group, the loader, the startup hook, and mounting under a prefix."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import ARTIFACTS, ChatServer, free_port, server_env
from fake_openai import FakeUpstream
from fastapi import FastAPI

from burr_streaming_chatbot.plugins import Demo, discover_demos, load_demos, mount_demos
from burr_streaming_chatbot.router import API_PREFIX


def test_this_package_is_discovered_from_installed_metadata() -> None:
    demos = {demo.name: demo for demo in discover_demos()}
    demo = demos["streaming-chatbot"]
    assert demo.api_prefix == API_PREFIX == "/api/v0/streaming_chatbot"
    assert (Path(str(demo.ui_dir)) / "index.html").is_file(), "the built page ships in the package"


def test_another_package_can_register_a_demo(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "other_demo.py").write_text(
        textwrap.dedent("""
        from fastapi import APIRouter
        from burr_streaming_chatbot.plugins import Demo

        def make_router():
            router = APIRouter()

            @router.get("/hello")
            def hello():
                return {"hello": "from another demo"}

            return router

        demo = Demo(name="other", title="Other", api_prefix="/api/v0/other",
                    create_router=make_router)
    """)
    )
    info = tmp_path / "other_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: other-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[burr.demos]\nother = other_demo:demo\n")
    (tmp_path / "broken-1.0.dist-info").mkdir()
    (tmp_path / "broken-1.0.dist-info" / "METADATA").write_text("Name: broken\nVersion: 1.0\n")
    (tmp_path / "broken-1.0.dist-info" / "entry_points.txt").write_text(
        "[burr.demos]\nbroken = no_such_module:demo\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    names = [demo.name for demo in discover_demos()]
    assert "other" in names and "streaming-chatbot" in names and "broken" not in names
    app = FastAPI()
    mounted = mount_demos(app, [d for d in discover_demos() if d.name == "other"])
    assert [d.name for d in mounted] == ["other"]
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/demos/other", "/demos/other/"} <= paths


def test_mount_demos_is_idempotent() -> None:
    demo = Demo(
        name="x",
        title="X",
        api_prefix="/api/x",
        create_router=lambda: __import__("fastapi").APIRouter(),
    )
    app = FastAPI()
    assert mount_demos(app, [demo]) == [demo]
    count = len(app.router.routes)
    assert mount_demos(app, [demo]) == []
    assert len(app.router.routes) == count


def _routes_after_import(env: dict[str, str]) -> str:
    code = (
        "import burr.tracking.server.run as run;"
        "print(sorted({getattr(r, 'path', '') for r in run.app.router.routes"
        " if 'demos' in getattr(r, 'path', '')}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.e2e  # Python subprocesses
def test_startup_hook_mounts_on_import_and_can_be_switched_off(tmp_path: Path) -> None:
    env = server_env(tmp_path, None)
    assert "/demos/streaming-chatbot/" in _routes_after_import(env)
    assert _routes_after_import({**env, "BURR_DEMOS_AUTOLOAD": "0"}) == "[]"


@pytest.mark.e2e  # uvicorn in a subprocess
def test_mounted_under_a_prefix_with_mount_burr_ui(tmp_path: Path, upstream: FakeUpstream) -> None:
    (tmp_path / "parent_app.py").write_text(
        textwrap.dedent("""
        from fastapi import FastAPI
        from burr.tracking.server.run import mount_burr_ui

        app = FastAPI()

        @app.get("/")
        def home():
            return {"app": "parent"}

        mount_burr_ui(app, path="/burr")
    """)
    )
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "parent_app:app",
        "--app-dir",
        str(tmp_path),
        "--port",
        str(port),
    ]
    server = ChatServer(
        command,
        server_env(tmp_path / "home", upstream),
        port,
        ARTIFACTS / "logs" / "mount_burr_ui.log",
        api="/burr" + API_PREFIX,
    )
    server.start()
    try:
        assert server.client.get("/").json() == {"app": "parent"}
        events = server.turn("under-prefix", "What is a prefix?")
        assert events[-1]["type"] == "message"

        page = server.client.get("/burr/demos/streaming-chatbot", follow_redirects=True)
        assert page.status_code == 200 and page.url.path == "/burr/demos/streaming-chatbot/"
        assert '"apiBase": "/burr/api/v0/streaming_chatbot"' in page.text
        assert '"burrBase": "/burr"' in page.text
        asset = next(part.split('"')[0] for part in page.text.split('src="./')[1:])
        assert server.client.get(f"/burr/demos/streaming-chatbot/{asset}").status_code == 200
        burr_page = server.client.get("/burr/projects").text
        assert "window.__BURR_BASE_PATH__='/burr'" in burr_page
        assert '"streaming-chatbot"' in burr_page and "location.assign" in burr_page
    finally:
        server.close()


def test_any_object_or_mapping_with_the_fields_is_a_demo_and_failures_say_why(
    tmp_path: Path, monkeypatch
) -> None:
    from fastapi.testclient import TestClient

    (tmp_path / "plain_demo.py").write_text(
        textwrap.dedent("""
        from types import SimpleNamespace
        from fastapi import APIRouter

        def make_router():
            router = APIRouter()

            @router.get("/hello")
            def hello():
                return {"hello": "plain"}

            return router

        as_mapping = {"name": "plain-map", "title": "Plain map", "api_prefix": "/api/v0/pm",
                      "create_router": make_router, "description": "a dict"}
        as_object = SimpleNamespace(name="plain-obj", title="Plain object", api_prefix="/api/v0/po",
                                    create_router=make_router, ui_dir=None)
        def factory():
            return dict(as_mapping, name="plain-factory", api_prefix="/api/v0/pf")
        bad_name = dict(as_mapping, name="no spaces/here")
        no_router = {"name": "x", "title": "X", "api_prefix": "/api/v0/x"}
    """)
    )
    info = tmp_path / "plain_demo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plain-demo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[burr.demos]\nmap = plain_demo:as_mapping\nobj = plain_demo:as_object\n"
        "factory = plain_demo:factory\nbad = plain_demo:bad_name\nnorouter = plain_demo:no_router\n"
        "gone = no_such_module:demo\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    demos, failures = load_demos()
    names = {d.name for d in demos}
    assert {"plain-map", "plain-obj", "plain-factory", "streaming-chatbot"} <= names
    why = {f.entry_point: f.error for f in failures}
    assert "not URL-safe" in why["bad"]
    assert "missing field(s) create_router" in why["norouter"]
    assert why["gone"].startswith("ModuleNotFoundError")

    app = FastAPI()
    mount_demos(app)
    with TestClient(app) as client:
        assert client.get("/api/v0/pm/hello").json() == {"hello": "plain"}
        listed = client.get("/api/v0/demos").json()
    by_name = {d["name"]: d for d in listed["demos"]}
    assert by_name["plain-map"]["description"] == "a dict"
    assert by_name["plain-obj"]["page"] == "/demos/plain-obj/"
    failed = {f["entry_point"]: f for f in listed["failed"]}
    assert set(failed) >= {"bad", "norouter", "gone"}
    assert failed["gone"]["distribution"] == "plain-demo"


def test_the_pth_line_calls_one_named_function() -> None:
    line = Path(__file__).resolve().parent.parent / "src" / "burr_streaming_chatbot_hook.pth"
    text = line.read_text().strip()
    assert "\n" not in text and "lambda" not in text and "type(" not in text
    assert text.endswith(
        '__import__("burr_streaming_chatbot._burr_hook", '
        'fromlist=["install"]).install(sys.meta_path)'
    )


def test_install_puts_one_finder_and_respects_the_switch(monkeypatch) -> None:
    from burr_streaming_chatbot import _burr_hook

    meta_path: list = []
    assert _burr_hook.install(meta_path) is True
    assert _burr_hook.install(meta_path) is True
    assert [type(f).__name__ for f in meta_path] == ["BurrDemosFinder"]
    assert meta_path[0].find_spec("json") is None  # only Burr's server module is looked at
    monkeypatch.setenv("BURR_DEMOS_AUTOLOAD", "0")
    other: list = []
    assert _burr_hook.install(other) is False and other == []


def test_the_hook_logs_what_it_could_not_do(monkeypatch, caplog) -> None:
    import types

    from burr_streaming_chatbot import _burr_hook, plugins

    def broken(module):
        raise RuntimeError("mounting failed on purpose")

    monkeypatch.setattr(plugins, "install_into_burr_server", broken)

    class Loader:
        def create_module(self, spec):
            return None

        def exec_module(self, module):
            module.ran = True

    module = types.ModuleType("burr.tracking.server.run")
    with caplog.at_level("WARNING", logger=_burr_hook.__name__):
        _burr_hook._MountingLoader(Loader()).exec_module(module)
    assert module.ran  # Burr's module still loaded
    record = next(r for r in caplog.records if r.name == _burr_hook.__name__)
    assert "Could not mount the registered Burr demos" in record.getMessage()
    assert "mounting failed on purpose" in caplog.text

    caplog.clear()
    monkeypatch.setattr(sys, "meta_path", [])  # no PathFinder: the hook cannot look Burr up
    with caplog.at_level("WARNING", logger=_burr_hook.__name__):
        assert _burr_hook.find_spec("burr.tracking.server.run") is None
    assert "Could not hook into burr.tracking.server.run" in caplog.text


def test_the_command_lists_registered_demos(tmp_path: Path) -> None:
    import json

    info = tmp_path / "gone-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gone\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[burr.demos]\ngone = no_such_module:demo\n")
    env = {**server_env(tmp_path, None), "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "burr_streaming_chatbot", "demos"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr  # one failed
    listing = json.loads(result.stdout)
    assert "streaming-chatbot" in [d["name"] for d in listing["demos"]]
    assert listing["failed"][0]["entry_point"] == "gone"
    assert listing["failed"][0]["error"].startswith("ModuleNotFoundError")
