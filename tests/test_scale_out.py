"""Several processes, one store: one answer at a time per conversation, reattach and stop from
any process, a killed process's lease expiring, on both engines.

Two "machines" are two server processes with separate homes (storage folders, so separate
Burr tracking folders) and their own names in leases; on SQLite they share the storage folder
(SQLite serves the processes of one machine), on PostgreSQL one database. ``uvicorn --workers
2`` runs the README's "mount it into your own server" app.
"""

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API, ARTIFACTS, PROJECT, ChatServer, free_port, server_env, start_server
from fake_openai import FakeUpstream
from httpx_sse import connect_sse
from test_reliability import SLOW, read_some, wait_for

pytestmark = pytest.mark.e2e  # several chatbot processes on one store (and PostgreSQL)

WORDS = " ".join(f"w{i}" for i in range(12))


@pytest.fixture
def machines(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[ChatServer, ChatServer]]:
    """Two server processes on one store."""
    shared = tmp_path / "shared"
    servers = []
    try:
        for name in ("a", "b"):
            home = shared if not engine else tmp_path / f"home-{name}"
            servers.append(
                start_server(
                    "cli",
                    home,
                    upstream,
                    f"{request.node.name}-{name}",
                    BURR_CHATBOT_WORKER_NAME=f"machine-{name}",
                    HOME=str(home),
                    **engine,
                )
            )
        yield servers[0], servers[1]
    finally:
        for server in servers:
            server.close()


def race(
    servers: list[ChatServer], conversations: int, prompts: int
) -> dict[tuple[str, int], tuple[int, bytes]]:
    """``prompts`` prompts for each conversation, all at once, spread over ``servers``."""
    results: dict[tuple[str, int], tuple[int, bytes]] = {}
    barrier = threading.Barrier(conversations * prompts)

    def send(server: ChatServer, conversation: str, number: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            barrier.wait()
            response = client.post(
                f"{API}/response/{PROJECT}/{conversation}",
                json={"prompt": f"What is {conversation} {number}?"},
            )
            results[(conversation, number)] = (response.status_code, response.content)

    threads = [
        threading.Thread(target=send, args=(servers[number % len(servers)], f"race-{n}", number))
        for n in range(conversations)
        for number in range(prompts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def check_one_answer_each(
    results: dict[tuple[str, int], tuple[int, bytes]], reader: ChatServer, conversations: int
) -> None:
    assert all(status < 500 for status, _ in results.values()), results
    for n in range(conversations):
        conversation = f"race-{n}"
        mine = {number: results[(conversation, number)] for number in range(4)}
        statuses = sorted(status for status, _ in mine.values())
        assert statuses == [200, 409, 409, 409], (conversation, statuses)
        winner = next(number for number, (status, _) in mine.items() if status == 200)
        events = [
            json.loads(line[6:])
            for line in mine[winner][1].decode().splitlines()
            if line.startswith("data: ")
        ]
        assert events[-1]["type"] == "message", events[-1]
        answer = "".join(e["value"] for e in events if e["type"] == "delta")
        assert answer == WORDS
        history = reader.history(conversation)
        assert [(m["role"], m["content"]) for m in history] == [
            ("user", f"What is {conversation} {winner}?"),
            ("assistant", WORDS),
        ]


def test_one_answer_per_conversation_across_two_processes(
    machines: tuple[ChatServer, ChatServer], upstream: FakeUpstream
) -> None:
    upstream.control(text=WORDS, delay_ms=40)
    results = race(list(machines), conversations=10, prompts=4)
    check_one_answer_each(results, machines[1], conversations=10)
    # Each process sees the other's conversations, and caches nothing stale: a second turn
    # on the other process continues the same history.
    upstream.control(text="Again.", delay_ms=0)
    for n, server in enumerate(machines):
        assert server.turn(f"race-{n}", "And again?")[-1]["type"] == "message"
        assert [m["content"] for m in machines[1 - n].history(f"race-{n}")][-2:] == [
            "And again?",
            "Again.",
        ]
        assert len(machines[1 - n].history(f"race-{n}")) == 4


def test_reattach_and_stop_from_the_other_process(
    machines: tuple[ChatServer, ChatServer], upstream: FakeUpstream, app_id: str
) -> None:
    a, b = machines
    upstream.control(text=SLOW, delay_ms=30)
    listener, first = a.turn_in_background(app_id, "What is shared?")
    wait_for(lambda: sum(e["type"] == "delta" for e in first) >= 3)
    # B replays from the start, then follows A's turn to its end: the same text, the same ids.
    with connect_sse(b.client, "GET", f"{API}/stream/{PROJECT}/{app_id}") as source:
        assert source.response.status_code == 200
        second = [json.loads(sse.data) | {"id": sse.id} for sse in source.iter_sse()]
    listener.join(10)
    text = lambda events: "".join(e["value"] for e in events if e["type"] == "delta")  # noqa: E731
    assert text(second) == text(first) == SLOW
    assert second[0]["type"] == "chat_history" and second[-1]["type"] == "message"
    assert second[-1]["id"] == first[-1]["id"]
    # With Last-Event-ID, only the rest, exactly once.
    middle = next(
        i for i, e in enumerate(first) if e["type"] == "delta" and e["value"].startswith("word5")
    )
    with connect_sse(
        b.client,
        "GET",
        f"{API}/stream/{PROJECT}/{app_id}",
        headers={"Last-Event-ID": first[middle]["id"]},
    ) as source:
        rest = [json.loads(sse.data) for sse in source.iter_sse()]
    assert text(first[: middle + 1]) + text(rest) == SLOW
    assert b.history(app_id)[-1]["content"] == SLOW

    # Stop from B: A's stream ends as stopped, the model's stream is closed within a second.
    upstream.control(text=SLOW, delay_ms=50)
    listener, events = a.turn_in_background(app_id, "What is stopping?")
    wait_for(lambda: sum(e["type"] == "delta" for e in events) >= 2)
    began = time.monotonic()
    assert b.client.post(f"{API}/stop/{PROJECT}/{app_id}").json() == {"stopped": True}
    wait_for(lambda: upstream.stats()["open_streams"] == 0, timeout=1.0)
    assert time.monotonic() - began < 1.0
    listener.join(5)
    assert events[-1]["type"] == "error" and events[-1]["value"]["code"] == "stopped"
    history = b.history(app_id)
    assert history[-2]["content"] == "What is stopping?" and history[-1]["interrupted"] is True
    assert b.client.post(f"{API}/stop/{PROJECT}/{app_id}").json() == {"stopped": False}
    assert a.client.post(f"{API}/stop/{PROJECT}/{app_id}").json() == {"stopped": False}


def test_a_killed_process_s_lease_expires_and_its_partial_answer_is_kept(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path, app_id: str
) -> None:
    lease = {"BURR_CHATBOT_LEASE_S": "2", **engine}
    home_a = tmp_path / ("a" if engine else "shared")
    home_b = tmp_path / ("b" if engine else "shared")
    a = start_server(
        "cli", home_a, upstream, "lease-a", BURR_CHATBOT_WORKER_NAME="machine-a", **lease
    )
    b = start_server(
        "cli", home_b, upstream, "lease-b", BURR_CHATBOT_WORKER_NAME="machine-b", **lease
    )
    try:
        upstream.control(text=SLOW, reasoning="Thinking first.", delay_ms=50)
        events, _ = read_some(a, app_id, "What is dying?", deltas=4)
        received = "".join(e["value"] for e in events if e["type"] == "delta")
        a.stop(signal.SIGKILL)
        killed = time.monotonic()
        # Until the lease expires, the conversation is still answering (elsewhere).
        busy = b.client.post(f"{API}/response/{PROJECT}/{app_id}", json={"prompt": "Anyone?"})
        assert busy.status_code == 409
        # A reader on B learns that the answer will not end.
        with connect_sse(b.client, "GET", f"{API}/stream/{PROJECT}/{app_id}") as source:
            followed = [json.loads(sse.data) for sse in source.iter_sse()]
        assert followed[-1]["type"] == "error" and followed[-1]["value"]["code"] == "worker_lost"
        assert 1.0 < time.monotonic() - killed < 8.0  # the 2 s lease, give or take a renewal
        upstream.control(text="Back.", reasoning=None, delay_ms=0)
        assert b.turn(app_id, "What now?")[-1]["type"] == "message"
        history = b.history(app_id)
        assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
        assert history[1]["interrupted"] is True and received.startswith(history[1]["content"])
        assert history[1]["content"].startswith("word0")
        assert history[1]["reasoning"] == "Thinking first."  # its thinking kept with it
        assert [m["content"] for m in history[2:]] == ["What now?", "Back."]
    finally:
        a.close()
        b.close()


def test_uvicorn_workers_on_sqlite_give_one_answer_per_conversation(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    """The README's own app under ``uvicorn --workers 2``: the kernel spreads the requests."""
    (tmp_path / "app.py").write_text(
        "from fastapi import FastAPI\n"
        "from burr_streaming_chatbot.router import API_PREFIX, create_router\n\n"
        "app = FastAPI()\n"
        "app.include_router(create_router(), prefix=API_PREFIX)\n"
    )
    port = free_port()
    env = server_env(tmp_path / "storage", upstream)
    command = [sys.executable, "-m", "uvicorn", "app:app", "--workers", "2", "--port", str(port)]
    server = ChatServer(command, env, port, ARTIFACTS / "logs" / "uvicorn-workers.log")
    server.process = None
    original = subprocess.Popen

    def popen_in(*args: Any, **kwargs: Any) -> subprocess.Popen:
        return original(*args, cwd=tmp_path, **kwargs)

    subprocess.Popen = popen_in  # type: ignore[misc]
    try:
        server.start()
    finally:
        subprocess.Popen = original  # type: ignore[misc]
    try:
        upstream.control(text=WORDS, delay_ms=40)
        results = race([server], conversations=10, prompts=4)
        check_one_answer_each(results, server, conversations=10)
        assert "Traceback" not in server.log()
    finally:
        server.close()


def test_creating_a_conversation_from_two_processes_at_once_never_fails(
    machines: tuple[ChatServer, ChatServer],
) -> None:
    names = [f"new-{n}" for n in range(10)]
    statuses: list[int] = []
    barrier = threading.Barrier(2 * len(names))

    def create(server: ChatServer, name: str) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            barrier.wait()
            statuses.append(client.post(f"{API}/create/{PROJECT}/{name}").status_code)

    threads = [
        threading.Thread(target=create, args=(server, name))
        for name in names
        for server in machines
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200] * len(threads)
    for server in machines:
        assert "Traceback" not in server.log()


def test_a_reader_on_another_process_keeps_the_answer_going(
    machines: tuple[ChatServer, ChatServer], upstream: FakeUpstream, app_id: str
) -> None:
    """A reload behind a load balancer: the client leaves A and reattaches on B. A does not
    stop the answer for lack of readers of its own (after 0.5 s) while B follows it."""
    a, b = machines
    upstream.control(text=SLOW, delay_ms=50)  # 2 s of answer
    first, last_id = read_some(a, app_id, "What is followed?", deltas=3)
    with connect_sse(
        b.client, "GET", f"{API}/stream/{PROJECT}/{app_id}", headers={"Last-Event-ID": last_id}
    ) as source:
        rest = [json.loads(sse.data) for sse in source.iter_sse()]
    assert rest[-1]["type"] == "message", rest[-1]
    assert "".join(e["value"] for e in first + rest if e["type"] == "delta") == SLOW
    assert upstream.stats()["cancelled_streams"] == 0
