"""A stop (SIGTERM) with pages open: the server exits by itself, and the answer that was
streaming is saved, marked interrupted, with the prompt that asked for it."""

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import API, ARTIFACTS, PROJECT, ChatServer, free_port, server_env, start_server
from fake_openai import FakeUpstream

pytestmark = pytest.mark.e2e  # chatbot servers in subprocesses


def group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` runs (zombies, exited and not yet reaped, do not
    count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def stop_mid_answer(server: ChatServer, app_id: str) -> None:
    """Open a page's change stream, start an answer, stop the server (SIGTERM to its group)
    while the answer streams, and wait until every process of it has exited."""
    api = server.api
    deltas: list[str] = []
    started = threading.Event()

    def open_page() -> None:  # what a tab holds open: the conversation's change stream
        with httpx.Client(base_url=server.url, timeout=None) as client:
            try:
                with client.stream("GET", f"{api}/events/{PROJECT}/{app_id}") as response:
                    for _ in response.iter_bytes():
                        pass
            except httpx.HTTPError:
                pass

    def answer() -> None:
        with httpx.Client(base_url=server.url, timeout=None) as client:
            try:
                with client.stream(
                    "POST",
                    f"{api}/response/{PROJECT}/{app_id}",
                    json={"prompt": "Tell me a story?"},
                ) as response:
                    for line in response.iter_lines():
                        if '"type":"delta"' in line:
                            deltas.append(line)
                            started.set()
            except httpx.HTTPError:
                pass

    threads = [
        threading.Thread(target=open_page, daemon=True),
        threading.Thread(target=answer, daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        assert started.wait(30), server.log()
        process = server.process
        assert process is not None
        os.killpg(process.pid, signal.SIGTERM)  # (the group: burr runs uvicorn as a child)
        deadline = time.monotonic() + 60  # a server that waits for the page never exits
        while process.poll() is None or group_alive(process.pid):
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not exit with a page open:\n{server.log()}")
            time.sleep(0.1)
    finally:
        server.close()
    assert deltas, "no answer streamed before the stop"


def saved_history(tmp_path: Path, upstream: FakeUpstream, app_id: str, name: str) -> list[dict]:
    """The conversation as a server started afresh on the same storage reads it."""
    upstream.control(delay_ms=0)
    again = start_server("cli", tmp_path, upstream, name)
    try:
        return again.history(app_id)
    finally:
        again.close()


def assert_kept_interrupted(history: list[dict]) -> None:
    assert [m["role"] for m in history] == ["user", "assistant"], history
    assert history[0]["content"] == "Tell me a story?"
    assert history[1]["interrupted"] is True and history[1]["content"], history


@pytest.mark.parametrize(
    "kind, extra",
    [
        ("cli", {}),  # burr-streaming-chatbot sets uvicorn's graceful-shutdown limit itself
        ("burr", {"UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN": "5"}),  # plain burr: uvicorn's setting
    ],
)
def test_a_stop_with_open_pages_exits_and_keeps_the_streaming_answer(
    tmp_path: Path, upstream: FakeUpstream, kind: str, extra: dict[str, str]
) -> None:
    upstream.control(delay_ms=100, tokens=400)  # an answer that would take 40 s
    server = start_server(kind, tmp_path, upstream, f"shutdown-{kind}", **extra)
    app_id = f"shutdown-{kind}"
    stop_mid_answer(server, app_id)
    # Burr's tracker kept the stopped turn's lines in memory; the stop wrote them.
    log = tmp_path / PROJECT / app_id / "log.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    steps = ["prompt", "check_safety", "decide_mode", "answer_question"]
    assert [e["action"] for e in entries if e["type"] == "begin_entry"] == steps
    assert [e["action"] for e in entries if e["type"] == "end_entry"][:3] == steps[:3]
    assert_kept_interrupted(saved_history(tmp_path, upstream, app_id, f"shutdown-{kind}-again"))


README_APP = """
from fastapi import FastAPI
from burr_streaming_chatbot.plugins import mount_burr_ui_with_demos

app = FastAPI()
mount_burr_ui_with_demos(app, path="/burr")
"""


@pytest.mark.parametrize("autoload", ["1", "0"], ids=["hook-on", "hook-off"])
def test_mount_burr_ui_with_demos_keeps_the_streaming_answer_at_a_stop(
    tmp_path: Path, upstream: FakeUpstream, autoload: str
) -> None:
    """The README's one-call mount, served by uvicorn: the demos' shutdown runs with the
    parent app's, so the answer streaming at a stop is saved, hook on or off."""
    (tmp_path / "app.py").write_text(README_APP)
    upstream.control(delay_ms=100, tokens=400)
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app:app",
        "--port",
        str(port),
        "--timeout-graceful-shutdown",
        "5",
    ]
    env = server_env(tmp_path, upstream, PYTHONPATH=str(tmp_path), BURR_DEMOS_AUTOLOAD=autoload)
    log = ARTIFACTS / "logs" / f"shutdown-mounted-{autoload}.log"
    server = ChatServer(command, env, port, log, api="/burr" + API).start()
    app_id = f"shutdown-mounted-{autoload}"
    stop_mid_answer(server, app_id)
    assert_kept_interrupted(
        saved_history(tmp_path, upstream, app_id, f"shutdown-mounted-{autoload}-again")
    )
