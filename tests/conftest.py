"""Shared fixtures: a fake OpenAI-compatible server, and the chatbot served by real processes.

Every server here is real: uvicorn on 127.0.0.1, started as a subprocess the way a user starts
it (``burr`` or ``burr-streaming-chatbot``), talking HTTP to the fake through the ``openai`` SDK.
The package must be installed (``pip install .``): entry points and the startup hook live in
its metadata.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
from fake_openai import FakeUpstream
from httpx_sse import connect_sse
from postgres import PostgresCluster, postgres_or_skip
from processes import stop_process_group

from burr_streaming_chatbot.storage.interface import Store
from burr_streaming_chatbot.storage.postgres import PostgresStore
from burr_streaming_chatbot.storage.sqlite import SQLiteStore

API = "/api/v0/streaming_chatbot"
PROJECT = "demo_streaming_chatbot"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def burr_command() -> str:
    """The ``burr`` script installed beside this interpreter."""
    script = Path(sys.executable).with_name("burr")
    return str(script) if script.exists() else (shutil.which("burr") or "burr")


class ChatServer:
    """A chatbot server in a subprocess, with helpers to talk to it."""

    def __init__(
        self, command: list[str], env: dict[str, str], port: int, log: Path, api: str = API
    ) -> None:
        self.api = api
        self.command = command
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log
        self.process: Optional[subprocess.Popen] = None
        self.client = httpx.Client(base_url=self.url, timeout=30.0)

    def start(self, timeout: float = 90.0) -> "ChatServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.client.get(f"{self.api}/model", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the server (and the uvicorn child ``burr`` starts); SIGKILL for a crash."""
        if self.process is None:
            return
        stop_process_group(self.process, sig)
        self.process = None

    def close(self) -> None:
        self.stop()
        self.client.close()

    # -- the API ---------------------------------------------------------------------------

    def turn(self, app_id: str, prompt: str, project: str = PROJECT) -> list[dict[str, Any]]:
        """Send a prompt and read the whole event stream; returns the events as dicts."""
        events = []
        with connect_sse(
            self.client, "POST", f"{self.api}/response/{project}/{app_id}", json={"prompt": prompt}
        ) as source:
            source.response.raise_for_status()
            assert source.response.headers["content-type"].startswith("text/event-stream")
            for sse in source.iter_sse():
                events.append(json.loads(sse.data))
        return events

    def turn_in_background(
        self, app_id: str, prompt: str, project: str = PROJECT
    ) -> tuple[threading.Thread, list[dict[str, Any]]]:
        """Send a prompt from another thread; returns the thread and the list its events (each
        with its SSE ``id`` added) are appended to as they arrive."""
        events: list[dict[str, Any]] = []

        def listen() -> None:
            with httpx.Client(base_url=self.url, timeout=30) as client:
                with connect_sse(
                    client,
                    "POST",
                    f"{self.api}/response/{project}/{app_id}",
                    json={"prompt": prompt},
                ) as source:
                    events.extend(
                        json.loads(sse.data) | {"id": sse.id} for sse in source.iter_sse()
                    )

        thread = threading.Thread(target=listen)
        thread.start()
        return thread, events

    def history(self, app_id: str, project: str = PROJECT) -> list[dict[str, Any]]:
        response = self.client.get(f"{self.api}/history/{project}/{app_id}")
        response.raise_for_status()
        return response.json()


def server_env(storage: Path, upstream: Optional[FakeUpstream], **extra: str) -> dict[str, str]:
    """The environment of a server process: storage in ``storage``, the model at ``upstream``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "BURR_CHATBOT_")) and key != "burr_path"
    }
    env.update(
        burr_path=str(storage),
        BURR_CHATBOT_STORAGE_DIR=str(storage),
        BURR_CHATBOT_OFFLINE_DELAY_MS="1",
        BURR_CHATBOT_REQUEST_TIMEOUT_S="2",
        BURR_CHATBOT_MAX_RETRIES="0",
        PYTHONUNBUFFERED="1",
    )
    if upstream is not None:
        env.update(
            OPENAI_BASE_URL=upstream.base_url,
            OPENAI_API_KEY="sk-test-secret-key",
            BURR_CHATBOT_ROUTER_MODEL="router-model",
            BURR_CHATBOT_ANSWER_MODEL="answer-model",
        )
    env.update(extra)
    return env


def start_server(
    kind: str, storage: Path, upstream: Optional[FakeUpstream], name: str, **extra: str
) -> ChatServer:
    """Start ``burr`` (kind ``"burr"``) or ``burr-streaming-chatbot`` (kind ``"cli"``)."""
    port = free_port()
    if kind == "burr":
        command = [burr_command(), "--no-open", "--no-copy-demo_data", "--port", str(port)]
    else:
        command = [sys.executable, "-m", "burr_streaming_chatbot", "--no-open", "--port", str(port)]
    env = server_env(storage, upstream, **extra)
    return ChatServer(command, env, port, ARTIFACTS / "logs" / f"{name}.log").start()


@pytest.fixture(scope="session")
def fake_upstream() -> Iterator[FakeUpstream]:
    """One fake OpenAI-compatible server for the whole run."""
    with FakeUpstream() as fake:
        yield fake


@pytest.fixture
def upstream(fake_upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """The fake, reset to its defaults before and after the test."""
    fake_upstream.reset()
    yield fake_upstream
    fake_upstream.reset()


@pytest.fixture(scope="session")
def session_storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("burr-home")


@pytest.fixture(scope="session")
def chatbot_server(fake_upstream: FakeUpstream, session_storage: Path) -> Iterator[ChatServer]:
    """``burr-streaming-chatbot`` serving Burr's app with the plugin, talking to the fake."""
    server = start_server("cli", session_storage, fake_upstream, "chatbot_server")
    yield server
    server.close()


@pytest.fixture
def server(chatbot_server: ChatServer, upstream: FakeUpstream) -> ChatServer:
    """The shared server, with the fake reset for this test."""
    return chatbot_server


@pytest.fixture
def app_id(request: pytest.FixtureRequest) -> str:
    """A conversation id unique to the test."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name)[:48]
    return f"{name}-{time.monotonic_ns() % 10**9}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL server for the run (skipped where its binaries are missing)."""
    cluster = postgres_or_skip()
    yield cluster
    cluster.stop()


# PostgreSQL runs in a subprocess: its case is e2e.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.e2e)])
def engine(request: pytest.FixtureRequest) -> dict[str, str]:
    """The store's engine as server settings: the SQLite default, or a fresh PostgreSQL
    database on the throwaway server."""
    if request.param == "sqlite":
        return {}
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return {"BURR_CHATBOT_DATABASE_URL": cluster.create_database()}


# PostgreSQL runs in a subprocess: its case is e2e.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.e2e)])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Store]]:
    """Two processes' stores on one database (two owners on two machines), opened."""
    if request.param == "sqlite":
        pair = (SQLiteStore(tmp_path, "machine-a:1:x"), SQLiteStore(tmp_path, "machine-b:2:y"))
    else:
        url = request.getfixturevalue("postgres").create_database()
        pair = (PostgresStore(url, "machine-a:1:x"), PostgresStore(url, "machine-b:2:y"))
    for store in pair:
        await store.open()
    try:
        yield pair
    finally:
        for store in pair:
            await store.aclose()
