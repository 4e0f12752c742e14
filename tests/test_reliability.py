"""Stop, disconnect, resume, concurrency, limits and crashes: nothing sent is lost, no history
is corrupted, and nothing is left running."""

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API, PROJECT, ChatServer, start_server
from fake_openai import FakeUpstream
from httpx_sse import connect_sse

pytestmark = pytest.mark.e2e  # chatbot servers in subprocesses

SLOW = " ".join(f"word{i}" for i in range(40))


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not true within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - began


def status(server: ChatServer) -> dict[str, Any]:
    return server.client.get(f"{API}/status").json()


def read_some(server: ChatServer, app_id: str, prompt: str, deltas: int) -> tuple[list[dict], str]:
    """Start a turn, read until ``deltas`` delta events arrived, then drop the connection.
    Returns the events read and the id of the last one."""
    events, last_id = [], ""
    with connect_sse(
        server.client, "POST", f"{API}/response/{PROJECT}/{app_id}", json={"prompt": prompt}
    ) as source:
        for sse in source.iter_sse():
            events.append(json.loads(sse.data))
            last_id = sse.id
            if sum(e["type"] == "delta" for e in events) >= deltas:
                break
    return events, last_id


def test_client_disconnect_cancels_upstream_and_keeps_the_partial_answer(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text=SLOW, delay_ms=50)
    tasks_before = status(server)["tasks"]
    events, _ = read_some(server, app_id, "What is slow?", deltas=3)
    received = "".join(e["value"] for e in events if e["type"] == "delta")

    cancelled_after = wait_for(lambda: upstream.stats()["open_streams"] == 0, timeout=1.5)
    assert cancelled_after < 1.0 + 0.3  # the grace period (0.5 s) plus the time to notice
    wait_for(lambda: status(server)["streaming"] == 0)
    assert upstream.stats()["cancelled_streams"] == 1
    wait_for(lambda: status(server)["tasks"] <= tasks_before)

    history = server.history(app_id)
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["interrupted"] is True
    assert history[1]["content"].startswith(received) and history[1]["content"] != SLOW
    upstream.control(text="Fine again.", delay_ms=0)
    assert server.turn(app_id, "What now?")[-1]["type"] == "message"


def test_stop_endpoint_ends_the_stream_with_a_stopped_error(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text=SLOW, delay_ms=50)
    listener, events = server.turn_in_background(app_id, "What is stopping?")
    wait_for(lambda: sum(e["type"] == "delta" for e in events) >= 2)
    assert server.client.post(f"{API}/stop/{PROJECT}/{app_id}").json() == {"stopped": True}
    listener.join(5)
    assert not listener.is_alive()
    assert events[-1]["type"] == "error" and events[-1]["value"] == {
        "code": "stopped",
        "message": "The answer was stopped.",
        "retryable": True,
    }
    assert upstream.stats()["open_streams"] == 0
    assert server.history(app_id)[-1]["interrupted"] is True
    assert server.client.post(f"{API}/stop/{PROJECT}/{app_id}").json() == {"stopped": False}


def test_reattach_gets_the_rest_exactly_once(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text=SLOW, delay_ms=30)
    first, last_id = read_some(server, app_id, "What is resuming?", deltas=4)
    rest = []
    with connect_sse(
        server.client, "GET", f"{API}/stream/{PROJECT}/{app_id}", headers={"Last-Event-ID": last_id}
    ) as source:
        assert source.response.status_code == 200
        rest = [json.loads(sse.data) for sse in source.iter_sse()]
    text = "".join(e["value"] for e in first + rest if e["type"] == "delta")
    assert text == SLOW
    assert rest[-1]["type"] == "message" and "chat_history" not in [e["type"] for e in rest]

    # After the end, a late reattach still gets the end (and only what it missed).
    with connect_sse(server.client, "GET", f"{API}/stream/{PROJECT}/{app_id}") as source:
        replay = [json.loads(sse.data) for sse in source.iter_sse()]
    assert replay[0]["type"] == "chat_history" and replay[-1]["type"] == "message"
    assert "".join(e["value"] for e in replay if e["type"] == "delta") == SLOW
    with connect_sse(
        server.client, "GET", f"{API}/stream/{PROJECT}/{app_id}", headers={"Last-Event-ID": last_id}
    ) as source:
        late = [json.loads(sse.data) for sse in source.iter_sse()]
    assert "".join(e["value"] for e in first + late if e["type"] == "delta") == SLOW
    assert [e["type"] for e in late if e["type"] != "delta"] == ["message"]
    missing = server.client.get(f"{API}/stream/{PROJECT}/never-{app_id[:40]}")
    assert missing.status_code == 404 and "No answer" in missing.json()["detail"]


def test_second_prompt_in_one_conversation_is_409_and_others_run_in_parallel(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text=SLOW, delay_ms=40)
    finished: list[str] = []

    def run(conversation: str, prompt: str) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            with connect_sse(
                client, "POST", f"{API}/response/{PROJECT}/{conversation}", json={"prompt": prompt}
            ) as source:
                for _ in source.iter_sse():
                    pass
        finished.append(conversation)

    slow = threading.Thread(target=run, args=(app_id, "What is slow?"))
    slow.start()
    wait_for(lambda: upstream.stats()["open_streams"] == 1)  # its answer is streaming
    clash = server.client.post(f"{API}/response/{PROJECT}/{app_id}", json={"prompt": "Me too?"})
    assert clash.status_code == 409
    assert "already streaming" in clash.json()["detail"]

    upstream.control(text="Quick.", delay_ms=0)  # applies to streams started from now on
    other = threading.Thread(target=run, args=(app_id + "-b", "What is quick?"))
    other.start()
    other.join(10)
    slow.join(10)
    assert finished == [app_id + "-b", app_id]
    history = server.history(app_id)
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "What is slow?"),
        ("assistant", SLOW),
    ]


@pytest.fixture(scope="module")
def tight_server(fake_upstream: FakeUpstream, tmp_path_factory) -> ChatServer:
    server = start_server(
        "cli",
        tmp_path_factory.mktemp("tight"),
        fake_upstream,
        "tight",
        BURR_CHATBOT_MAX_STREAMS="1",
        BURR_CHATBOT_CACHE_SIZE="2",
        BURR_CHATBOT_MAX_BODY_BYTES="4096",
        BURR_CHATBOT_MAX_PROMPT_CHARS="2000",
        BURR_CHATBOT_KEEPALIVE_S="0.2",
    )
    yield server
    server.close()


def test_stream_limit_is_503_with_retry_after(
    tight_server: ChatServer, upstream: FakeUpstream
) -> None:
    upstream.control(text=SLOW, delay_ms=30)
    first = threading.Thread(target=lambda: tight_server.turn("limit-a", "What is first?"))
    first.start()
    wait_for(lambda: status(tight_server)["streaming"] == 1)
    refused = tight_server.client.post(
        f"{API}/response/{PROJECT}/limit-b", json={"prompt": "And me?"}
    )
    first.join(10)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert tight_server.history("limit-b") == []


def test_an_idle_stream_gets_keepalive_comments_that_parsers_skip(
    tight_server: ChatServer, upstream: FakeUpstream
) -> None:
    upstream.control(text="Slow to start.", first_token_delay_ms=900)
    with tight_server.client.stream(
        "POST",
        f"{API}/response/{PROJECT}/keepalive",
        json={"prompt": "What is slow?"},
        headers={"Accept": "text/event-stream"},
    ) as response:
        raw = "".join(response.iter_text())
    before_text = raw[: raw.index('"type":"delta"')]
    assert before_text.count(": keepalive\n\n") >= 2, raw  # 0.9 s of waiting, 0.2 s apart
    # An SSE parser sees only the events: the answer, then the message, nothing else.
    events = [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ")]
    assert "".join(e["value"] for e in events if e["type"] == "delta") == "Slow to start."
    assert events[-1]["type"] == "message"
    assert tight_server.history("keepalive")[-1]["content"] == "Slow to start."


def test_request_body_limit_is_413(tight_server: ChatServer) -> None:
    big = json.dumps({"prompt": "x" * 5000})
    response = tight_server.client.post(
        f"{API}/response/{PROJECT}/big", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "4096 bytes" in response.json()["detail"]

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(10):
            yield b"x" * 1000

    response = tight_server.client.post(f"{API}/response/{PROJECT}/big", content=chunks())
    assert response.status_code == 413
    assert tight_server.history("big") == []


def test_cache_is_bounded_and_evicted_conversations_reload(
    tight_server: ChatServer, upstream: FakeUpstream
) -> None:
    upstream.control(text="ok", delay_ms=0)
    for round_ in range(2):
        for name in ("cache-a", "cache-b", "cache-c"):
            assert tight_server.turn(name, f"What is {name} {round_}?")[-1]["type"] == "message"
            assert status(tight_server)["cached_conversations"] <= 2
    for name in ("cache-a", "cache-b", "cache-c"):
        assert [m["content"] for m in tight_server.history(name) if m["role"] == "user"] == [
            f"What is {name} 0?",
            f"What is {name} 1?",
        ]


def test_kill_9_mid_answer_then_restart(upstream: FakeUpstream, tmp_path: Path) -> None:
    server = start_server("cli", tmp_path, upstream, "kill-1")
    try:
        upstream.control(text="Done.", delay_ms=0)
        server.turn("crash", "What is one?")
        upstream.control(text=SLOW, delay_ms=50)
        events, _ = read_some(server, "crash", "What is two?", deltas=3)
        received = "".join(e["value"] for e in events if e["type"] == "delta")
        server.stop(signal.SIGKILL)
    finally:
        server.close()
    with sqlite3.connect(next(tmp_path.glob(".streaming-chatbot.*.sqlite3"))) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    server = start_server("cli", tmp_path, upstream, "kill-2")
    try:
        history = server.history("crash")
        # The completed turn is intact; the user's message of the killed turn is kept.
        assert [(m["role"], m["content"]) for m in history][:3] == [
            ("user", "What is one?"),
            ("assistant", "Done."),
            ("user", "What is two?"),
        ]
        upstream.control(text="Three.", delay_ms=0)
        events = server.turn("crash", "What is three?")
        assert events[-1]["type"] == "message"
        # The killed turn's published text is kept, marked interrupted, before the next prompt
        # (the dead process's lease is taken over at once: same machine, its pid is gone).
        history = server.history("crash")
        assert [m["role"] for m in history] == ["user", "assistant"] * 3
        # What was published before the kill: all the client read but the last 50 ms at most.
        assert history[3]["interrupted"] is True and received.startswith(history[3]["content"])
        assert history[3]["content"].startswith("word0")
        assert [m["content"] for m in history[4:]] == ["What is three?", "Three."]
    finally:
        server.close()


def test_a_client_that_does_not_ask_for_an_event_stream_gets_bare_data_blocks(
    tight_server: ChatServer, upstream: FakeUpstream
) -> None:
    """Burr's own streaming page splits each network read on "data: " and parses every piece
    as JSON: no ids and no keepalive comments for it, even while the model is slow to start."""
    upstream.control(text="Slow to start.", first_token_delay_ms=900)
    with tight_server.client.stream(
        "POST", f"{API}/response/{PROJECT}/bare", json={"prompt": "What is slow?"}
    ) as response:
        raw = "".join(response.iter_text())
    assert ": keepalive" not in raw and "\nid: " not in raw
    events = [json.loads(piece) for piece in raw.split("data: ")[1:]]
    assert "".join(e["value"] for e in events if e["type"] == "delta") == "Slow to start."
    assert events[-1]["type"] == "message"
