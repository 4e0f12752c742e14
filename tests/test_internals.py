"""Every reach of this package into another library's private or undocumented parts, checked
on the versions installed (see docs/internals.md): an upgrade that changes one fails here,
by name, instead of somewhere in a turn."""

import asyncio
import inspect
import json
from pathlib import Path
from typing import Any

from burr.core import ApplicationBuilder, State, default
from burr.core.action import action
from burr.integrations.persisters.b_aiosqlite import AsyncSQLitePersister
from burr.tracking import LocalTrackingClient
from starlette.requests import Request


@action(reads=[], writes=["n"])
async def count(state: State) -> tuple[dict, State]:
    return {}, state.update(n=state.get("n", 0) + 1)


async def build(tracker=None):  # type: ignore[no-untyped-def]
    builder = (
        ApplicationBuilder()
        .with_actions(count=count)
        .with_transitions(("count", "count", default))
        .with_state(n=0)
        .with_entrypoint("count")
        .with_identifiers(app_id="internals")
    )
    if tracker is not None:
        builder = builder.with_tracker(tracker)
    return await builder.abuild()


def test_an_application_keeps_its_dependency_factories_in_a_dict() -> None:
    """conversations._release clears ``Application._dependency_factory`` (a reference cycle)."""
    app = asyncio.run(build())
    factories = getattr(app, "_dependency_factory", None)
    assert isinstance(factories, dict)


def test_the_local_tracker_parts_persistence_relies_on(tmp_path: Path) -> None:
    """storage.burr_hooks.ChatTrackingClient overrides ``_ensure_dir_structure(app_id)`` and
    ``_append_write_line(model)`` (the one writer of every line of Burr's tracking hooks),
    replaces ``post_application_create`` (writing ``GRAPH_FILENAME``/``METADATA_FILENAME``),
    and calls ``_log_child_relationships(fork, spawn, app_id, partition_key)``."""
    assert list(inspect.signature(LocalTrackingClient._ensure_dir_structure).parameters) == [
        "self",
        "app_id",
    ]
    assert list(inspect.signature(LocalTrackingClient._append_write_line).parameters) == [
        "self",
        "model",
    ]
    assert list(inspect.signature(LocalTrackingClient._log_child_relationships).parameters)[:5] == [
        "self",
        "fork_parent_pointer_model",
        "spawn_parent_pointer_model",
        "app_id",
        "partition_key",
    ]
    assert LocalTrackingClient.GRAPH_FILENAME == "graph.json"
    assert LocalTrackingClient.METADATA_FILENAME == "metadata.json"
    assert LocalTrackingClient.LOG_FILENAME == "log.jsonl"
    # Every line Burr's tracker writes goes through _append_write_line.
    written: list[str] = []

    class Recording(LocalTrackingClient):
        def _append_write_line(self, model):  # type: ignore[no-untyped-def]
            written.append(model.model_dump_json())

    tracker = Recording(project="p", storage_dir=str(tmp_path))

    async def run() -> None:
        app = await build(tracker)
        await app.astep()

    asyncio.run(run())
    log = tmp_path / "p" / "internals" / "log.jsonl"
    assert [json.loads(line)["type"] for line in written] == ["begin_entry", "end_entry"]
    assert log.read_text() == ""  # (Burr's own method opened it; nothing else wrote to it)
    tracker.f.close()


def test_the_sqlite_persister_attributes_the_store_uses() -> None:
    """storage.sqlite.ChatStatePersister uses Burr's ``connection``, ``table_name``,
    ``serde_kwargs`` and ``PARTITION_KEY_DEFAULT``."""
    params = inspect.signature(AsyncSQLitePersister.__init__).parameters
    assert list(params)[1:4] == ["connection", "table_name", "serde_kwargs"]
    assert isinstance(AsyncSQLitePersister.PARTITION_KEY_DEFAULT, str)


def test_a_request_reads_its_body_from_underscore_body() -> None:
    """router.body_limited_route stores the body it read, with its limit, in ``request._body``,
    which ``Request.body()`` then returns (FastAPI's own ``max_body_size`` answers a declared
    oversize body with plain text, not the JSON error every other 4xx here is)."""

    async def receive() -> dict:
        raise AssertionError("the body was read again")

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    request._body = b'{"prompt": "x"}'
    assert asyncio.run(request.body()) == b'{"prompt": "x"}'


def test_a_middleware_added_to_a_started_app_runs_once_its_stack_is_reset() -> None:
    """plugins.install_guard: Starlette builds ``middleware_stack`` on the first request and
    rebuilds it when it is ``None``; ``add_middleware`` refuses while it is built."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from burr_streaming_chatbot.plugins import install_guard

    app = FastAPI()
    app.get("/x")(lambda: "x")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.get("/x", headers={"host": "evil.example"}).status_code == 200
        assert app.middleware_stack is not None
        install_guard(app)
        assert client.get("/x", headers={"host": "evil.example"}).status_code == 400
        assert client.get("/x").headers["x-content-type-options"] == "nosniff"


def test_the_burr_server_parts_the_demo_host_relies_on() -> None:
    """plugins.py wraps ``create_burr_ui_app`` and ``mount_burr_ui`` in Burr's server module,
    wraps its catch-all page route (``BURR_PAGE_ROUTE``, an endpoint called with the request and
    the rest of the path, answering HTML with a ``</head>``), and finds the sidebar's "Demos"
    list by the links to Burr's built-in demos (``BUILT_IN_DEMOS``) in Burr's built page."""
    from burr.tracking.server import run
    from fastapi.routing import APIRoute

    from burr_streaming_chatbot.plugins import BUILT_IN_DEMOS, BURR_PAGE_ROUTE

    assert callable(run.create_burr_ui_app) and callable(run.mount_burr_ui)
    assert "parent_app" in inspect.signature(run.mount_burr_ui).parameters
    app = run.create_burr_ui_app(serve_static=True)
    pages = [r for r in app.router.routes if isinstance(r, APIRoute) and r.path == BURR_PAGE_ROUTE]
    assert len(pages) == 1
    assert len(inspect.signature(pages[0].endpoint).parameters) == 2
    build = Path(run.__file__).parent / "build"
    assert "</head>" in (build / "index.html").read_text()
    # The page's scripts: build/assets/ on 0.43 (Vite), build/static/js/ on 0.42.
    bundle = "".join(p.read_text(errors="replace") for p in build.rglob("*.js"))
    missing = [name for name in BUILT_IN_DEMOS if f'/demos/{name}"' not in bundle]
    assert not missing, f"Burr's sidebar no longer links to {missing}"


def test_aiosqlite_runs_a_function_in_the_connections_thread(tmp_path: Path) -> None:
    """storage.sqlite.ChatStatePersister.save runs its transaction with aiosqlite's
    ``Connection._execute(fn, *args)``, on ``Connection._conn`` (the sqlite3 connection), in
    the connection's thread and in order with its other calls."""
    import sqlite3
    import threading

    import aiosqlite

    async def run() -> None:
        async with aiosqlite.connect(str(tmp_path / "x.sqlite3"), isolation_level=None) as db:
            assert isinstance(db._conn, sqlite3.Connection)
            seen: list[Any] = []

            def work(value: int) -> int:
                seen.append(threading.current_thread())
                db._conn.execute("CREATE TABLE t (v)")
                db._conn.execute("INSERT INTO t VALUES (?)", (value,))
                return value + 1

            assert await db._execute(work, 41) == 42
            assert seen == [db._thread] and db._thread is not threading.current_thread()
            assert list(await db.execute_fetchall("SELECT v FROM t")) == [(41,)]

    asyncio.run(run())
