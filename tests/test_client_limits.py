"""Per-client limits: one client (a remote address, or the user when users are on) cannot take
all of a process's answers, queue without end, or hold any number of event streams. Past a
limit: 429 with Retry-After and a detail naming it, nothing written, other clients served."""

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import API, PROJECT, ChatServer, start_server

from burr_streaming_chatbot.service import ChatService, TooMany
from burr_streaming_chatbot.settings import Settings

SLOW_WORDS_MS = "150"  # the offline model's pause between words: an answer takes seconds


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ChatService]:
    settings = Settings(
        offline=True,
        offline_delay_ms=100,
        storage_dir=tmp_path,
        max_answers_per_client=1,
        max_queued_per_client=1,
        max_streams_per_client=2,
    )
    chat = ChatService(settings)
    await chat.open()
    yield chat
    await chat.close()


async def test_the_service_counts_each_client_apart(service: ChatService) -> None:
    first = await service.start_turn(PROJECT, "a1", "What is Burr?", client="alice")
    with pytest.raises(TooMany) as refused:
        await service.start_turn(PROJECT, "a2", "And Hamilton?", client="alice")
    assert refused.value.status_code == 429 and refused.value.headers == {"Retry-After": "2"}
    assert "answers running" in refused.value.detail
    assert await service.history(PROJECT, "a2") == []  # nothing written
    other = await service.start_turn(PROJECT, "b1", "What is Burr?", client="bob")

    # One prompt may wait behind alice's running answer; the second is past her limit.
    waiting = asyncio.create_task(
        service.start_turn(PROJECT, "a1", "Next?", if_busy="enqueue", client="alice")
    )
    await asyncio.sleep(0.05)
    with pytest.raises(TooMany, match="prompts waiting"):
        await service.start_turn(PROJECT, "a1", "And next?", if_busy="enqueue", client="alice")

    slots = [service.open_stream("events", "alice"), service.open_stream("stream", "alice")]
    with pytest.raises(TooMany, match="event streams open"):
        service.open_stream("events", "alice")
    bobs = service.open_stream("events", "bob")
    status = service.status()
    assert (status.event_streams, status.resume_streams) == (2, 1)
    for slot in [*slots, bobs]:
        slot.release()
        slot.release()  # (twice gives back once)
    assert (service.status().event_streams, service.status().resume_streams) == (0, 0)

    first.stop()
    other.stop()
    (await waiting).stop()  # alice's queued prompt ran once her first answer ended
    tasks = [turn.task for turn in service.turns.live.values() if turn.task is not None]
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    # Every slot was given back: alice may run an answer again.
    (await service.start_turn(PROJECT, "a3", "Again?", client="alice")).stop()


@pytest.fixture
def limited_server(tmp_path: Path) -> Iterator[ChatServer]:
    """A server with small per-client limits, answering slowly with the offline model."""
    server = start_server(
        "cli",
        tmp_path,
        None,
        "client-limits",
        BURR_CHATBOT_OFFLINE_DELAY_MS=SLOW_WORDS_MS,
        BURR_CHATBOT_MAX_ANSWERS_PER_CLIENT="2",
        BURR_CHATBOT_MAX_QUEUED_PER_CLIENT="1",
        BURR_CHATBOT_MAX_STREAMS_PER_CLIENT="3",
        BURR_CHATBOT_RESUME_GRACE_S="30",  # (answers go on without their first reader)
    )
    yield server
    server.close()


def client_at(server: ChatServer, address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (a loopback address of its own)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=server.url, transport=transport, timeout=30)


@contextlib.contextmanager
def open_stream(
    client: httpx.Client, method: str, path: str, **kwargs: object
) -> Iterator[httpx.Response]:
    with client.stream(method, f"{API}/{path}", **kwargs) as response:  # type: ignore[arg-type]
        yield response


def refused_for(response: httpx.Response, what: str) -> None:
    response.read()
    assert response.status_code == 429, response.text
    assert response.headers["retry-after"] == "2"
    assert what in response.json()["detail"]


def state_files(storage: Path) -> set[Path]:
    return {p for p in storage.rglob("*") if p.is_file()}


def status_of(server: ChatServer) -> dict:
    return server.client.get(f"{API}/status").json()


def wait_until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.05)


@pytest.mark.e2e
def test_answers_and_queued_prompts_past_the_limit_get_429_and_other_addresses_are_served(
    limited_server: ChatServer, tmp_path: Path
) -> None:
    here, there = client_at(limited_server, "127.0.0.1"), client_at(limited_server, "127.0.0.2")
    with contextlib.ExitStack() as streams:
        for n in range(2):
            response = streams.enter_context(
                open_stream(
                    here,
                    "POST",
                    f"response/{PROJECT}/run-{n}",
                    json={"prompt": "Tell me about Burr?"},
                )
            )
            assert response.status_code == 200
        files = state_files(tmp_path)
        refused_for(
            here.post(f"{API}/response/{PROJECT}/run-2", json={"prompt": "One more?"}),
            "answers running",
        )
        refused_for(  # the AG-UI and AI SDK endpoints count the same answers
            here.post(
                f"{API}/ai-sdk/{PROJECT}",
                json={
                    "id": "run-3",
                    "messages": [
                        {"id": "m", "role": "user", "parts": [{"type": "text", "text": "Hi?"}]}
                    ],
                },
            ),
            "answers running",
        )

        # One prompt may wait behind a running answer (its answer starts when that one ends);
        # the next is past the limit.
        def wait_in_line() -> None:
            with (
                client_at(limited_server, "127.0.0.1") as client,
                contextlib.suppress(httpx.HTTPError),
            ):
                client.post(
                    f"{API}/response/{PROJECT}/run-0?if_busy=enqueue", json={"prompt": "Then?"}
                )

        threading.Thread(target=wait_in_line, daemon=True).start()
        time.sleep(0.5)  # (it reached the server and waits)
        refused_for(
            here.post(
                f"{API}/response/{PROJECT}/run-1?if_busy=enqueue", json={"prompt": "And then?"}
            ),
            "prompts waiting",
        )
        assert state_files(tmp_path) == files  # the refused prompts wrote nothing
        assert limited_server.history("run-2") == []
        # Another address is another client: served.
        with open_stream(
            there, "POST", f"response/{PROJECT}/other", json={"prompt": "Hello?"}
        ) as response:
            assert response.status_code == 200
            next(response.iter_lines())
        assert status_of(limited_server)["streaming"] == 3
    for client in (here, there):
        client.close()


@pytest.mark.e2e
def test_streams_past_the_limit_get_429_are_counted_in_status_and_released_on_disconnect(
    limited_server: ChatServer,
) -> None:
    here, there = client_at(limited_server, "127.0.0.1"), client_at(limited_server, "127.0.0.2")
    with open_stream(
        here, "POST", f"response/{PROJECT}/long", json={"prompt": "Tell me about Burr?"}
    ) as answer:
        assert answer.status_code == 200
        with contextlib.ExitStack() as streams:
            for path in (
                f"events/{PROJECT}/long",
                f"events/{PROJECT}/other",
                f"stream/{PROJECT}/long",
            ):
                response = streams.enter_context(open_stream(here, "GET", path))
                assert response.status_code == 200, path
            wait_until(
                lambda: (
                    (
                        status_of(limited_server)["event_streams"],
                        status_of(limited_server)["resume_streams"],
                    )
                    == (2, 1)
                )
            )
            refused_for(here.get(f"{API}/events/{PROJECT}/long"), "event streams open")
            refused_for(here.get(f"{API}/stream/{PROJECT}/long"), "event streams open")
            refused_for(here.get(f"{API}/ai-sdk/{PROJECT}/long/stream"), "event streams open")
            # Another address is another client.
            with open_stream(there, "GET", f"events/{PROJECT}/long") as response:
                assert response.status_code == 200
                wait_until(lambda: status_of(limited_server)["event_streams"] == 3)
        # The client went away: its streams are given back, and it may open more.
        wait_until(
            lambda: (
                (
                    status_of(limited_server)["event_streams"],
                    status_of(limited_server)["resume_streams"],
                )
                == (0, 0)
            )
        )
        with open_stream(here, "GET", f"ai-sdk/{PROJECT}/long/stream") as response:
            assert response.status_code == 200
            wait_until(lambda: status_of(limited_server)["resume_streams"] == 1)
    wait_until(lambda: status_of(limited_server)["resume_streams"] == 0)
    for client in (here, there):
        client.close()
