"""What the router does to the process it runs in."""

import gc
import http.client
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
import uvicorn
from conftest import free_port
from fastapi import FastAPI
from fastapi.testclient import TestClient
from processes import stop_process_group

from burr_streaming_chatbot.router import API_PREFIX, create_router
from burr_streaming_chatbot.settings import Settings


def test_startup_moves_the_loaded_objects_out_of_the_collectors_reach(tmp_path: Path) -> None:
    """With the setting on (the project's own commands turn it on; an earlier test in the same
    session may have left it in the environment, so it is given here)."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    app = FastAPI()
    app.include_router(
        create_router(Settings(storage_dir=tmp_path, offline=True, gc_freeze=True)),
        prefix=API_PREFIX,
    )
    try:
        with TestClient(app) as client:  # runs the router's lifespan
            frozen = gc.get_freeze_count()
            assert frozen > 10_000  # the libraries loaded by now: Burr, FastAPI, pydantic, ...
            assert client.get(f"{API_PREFIX}/model").json()["offline"] is True
    finally:
        gc.unfreeze()


@pytest.fixture(scope="module")
def upstream_process() -> Iterator[str]:
    """The fake model server in a process of its own (the shared fake is a thread of this
    one, whose objects would mix with the server's); yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).parent / "fake_openai.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("PORT="), line
        yield f"http://127.0.0.1:{int(line[5:])}/v1"
    finally:
        stop_process_group(process)


@pytest.mark.e2e  # the fake model server in a subprocess
@pytest.mark.parametrize("model", ["offline", "aiohttp", "httpx"])
def test_turns_leave_nothing_for_the_cycle_collector(
    tmp_path: Path, upstream_process: str, model: str
) -> None:
    """A finished turn is freed by reference counting alone: its Burr application, the
    model's HTTP response, its listener's idle timer, its events. Whatever is left for the
    cycle collector makes the full collections that hold every stream longer (see
    benchmarks/RESULTS.md). With the offline model, and with the SDK on each transport."""
    if model == "offline":
        settings = Settings(storage_dir=tmp_path, offline=True)
    else:
        settings = Settings(
            storage_dir=tmp_path,
            openai_base_url=upstream_process,
            openai_api_key="sk-test",
            http_transport=model,
            max_retries=0,
        )
    app = FastAPI()
    app.include_router(create_router(settings), prefix=API_PREFIX)
    # A real uvicorn in a thread of this process, so its objects can be looked at; the client
    # is the standard library's, whose objects are none of the packages looked for.
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        port = server.config.port

        def request(method: str, path: str, body: Optional[dict] = None) -> str:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                payload = None if body is None else json.dumps(body)
                headers = {} if body is None else {"Content-Type": "application/json"}
                connection.request(method, API_PREFIX + path, body=payload, headers=headers)
                response = connection.getresponse()
                assert response.status == 200
                return response.read().decode()
            finally:
                connection.close()

        def turn(app_id: str) -> str:
            return request("POST", f"/response/p/{app_id}", {"prompt": "Hello there"})

        assert '"type":"message"' in turn("warm-up")
        gc.collect()
        gc.disable()
        gc.set_debug(gc.DEBUG_SAVEALL)
        for number in range(3):
            assert '"type":"message"' in turn(f"c{number}")
            assert '"type":"message"' in turn(f"c{number}")  # a second turn, from the cache
        assert json.loads(request("GET", "/status"))["cached_conversations"] == 4
        gc.collect()
        ours = sorted(
            {
                type(item).__qualname__
                for item in gc.garbage
                if type(item).__module__.split(".")[0] in OURS
                or str(getattr(item, "__module__", "")).split(".")[0] in OURS
            }
        )
        assert ours == [], ours
        apps = [item for item in gc.get_objects() if type(item).__name__ == "Application"]
        assert apps == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
        server.should_exit = True
        thread.join(timeout=10)
        gc.unfreeze()


OURS = (
    "burr",
    "burr_streaming_chatbot",
    "openai",
    "httpx",
    "httpx2",
    "httpx_aiohttp",
    "aiohttp",
    "uvicorn",
    "starlette",
    "fastapi",
)
"""The packages a turn runs through."""


def _worker_threads() -> set[threading.Thread]:
    """anyio's worker threads alive now (where Starlette runs a plain function)."""
    return {t for t in threading.enumerate() if type(t).__name__ == "WorkerThread"}


@pytest.mark.parametrize("user_header", [None, "X-Forwarded-User"])
def test_requests_go_through_no_worker_thread(tmp_path: Path, user_header: Optional[str]) -> None:
    """Every dependency of the router is ``async``: a plain function would run in a worker
    thread of anyio's, two thread hand-offs per request. A real uvicorn in a thread of this
    process serves turns and the calls around them; no worker thread is started."""
    settings = Settings(storage_dir=tmp_path, offline=True, user_header=user_header)
    app = FastAPI()
    app.include_router(create_router(settings), prefix=API_PREFIX)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on")
    )
    before = _worker_threads()
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        headers = {"X-Forwarded-User": "ann"} if user_header else {}

        def request(method: str, path: str, body: Optional[dict] = None) -> str:
            connection = http.client.HTTPConnection("127.0.0.1", server.config.port, timeout=30)
            try:
                sent = dict(headers)
                if body is not None:
                    sent["Content-Type"] = "application/json"
                payload = None if body is None else json.dumps(body)
                connection.request(method, API_PREFIX + path, body=payload, headers=sent)
                response = connection.getresponse()
                assert response.status == 200, response.read()
                return response.read().decode()
            finally:
                connection.close()

        for number in range(3):
            request("POST", f"/create/p/c{number}")
            assert '"type":"message"' in request("POST", f"/response/p/c{number}", {"prompt": "Hi"})
            assert json.loads(request("GET", f"/history/p/c{number}"))[-1]["role"] == "assistant"
        request("GET", "/status")
        request("GET", "/conversations/p")
        assert _worker_threads() - before == set()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
