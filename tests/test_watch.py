"""``GET /events`` for many tabs: one watcher per conversation per process feeds all its tabs,
woken by a change made by any process (SQLite: its change mark; PostgreSQL: a notification),
and stopped when the last tab leaves; through the real store in this process, and through two
real servers on one store."""

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from burr.core import State
from conftest import API, PROJECT, ChatServer, start_server
from fake_openai import FakeUpstream
from postgres import postgres_or_skip

from burr_streaming_chatbot.storage.interface import Store
from burr_streaming_chatbot.storage.messages import BRANCH, HISTORY
from burr_streaming_chatbot.watch import Watchers


def block(kind: str, value: dict[str, Any]) -> bytes:
    """A change as the wire carries it."""
    return (
        b"data: "
        + json.dumps({"type": kind, "value": value}, separators=(",", ":")).encode()
        + b"\n\n"
    )


async def until(condition: Callable[[], bool], within_s: float = 5.0, about: Any = None) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {about() if about else ''}"
        await asyncio.sleep(0.02)


async def test_one_watcher_per_conversation_feeds_every_tab_and_stops_with_the_last(
    stores: tuple[Store, Store],
) -> None:
    here, there = stores  # this process's store, and another process's
    first = State({HISTORY: [{"role": "user", "content": "What is Burr?", "type": "text"}]})
    await there.save_state(PROJECT, "root", 0, "prompt", first, expected_sequence_id=None)
    watchers = Watchers(here)
    received: list[list[bytes]] = [[] for _ in range(45)]

    async def tab(app_id: str, out: list[bytes]) -> None:
        async for chunk in watchers.follow(PROJECT, app_id, app_id, keepalive_s=60):
            out.append(chunk)

    tabs = [asyncio.create_task(tab("root", out)) for out in received[:40]]
    tabs += [asyncio.create_task(tab("other", out)) for out in received[40:]]
    await until(lambda: watchers.followers(PROJECT, "root") == 40)
    await until(lambda: watchers.followers(PROJECT, "other") == 5)
    assert watchers.watching == 2  # however many tabs

    def all_got(chunk: bytes) -> bool:
        return all(chunk in b"".join(out) for out in received[:40])

    # A turn of another process, then one of this process, then a branch made elsewhere.
    await there.acquire(PROJECT, "root", "t1", lease_s=30)
    await until(lambda: all_got(block("turn_started", {"turn": "t1"})))
    await there.finish(PROJECT, "root", "t1", None)
    await until(lambda: all_got(block("turn_ended", {"turn": "t1"})))
    await here.acquire(PROJECT, "root", "t2", lease_s=30)
    await here.finish(PROJECT, "root", "t2", None)
    await until(lambda: all_got(block("turn_ended", {"turn": "t2"})))
    branch = State(
        {
            HISTORY: first[HISTORY],
            BRANCH: {"root": "root", "parent": "root", "at": 1, "created": 1.0},
        }
    )
    await there.save_state(PROJECT, "branch", 0, "prompt", branch, expected_sequence_id=None)
    made = block("branch_created", {"app_id": "branch", "parent": "root", "fork_at": 1})
    await until(lambda: all_got(made))
    expected = b"".join(
        [
            block("turn_started", {"turn": "t1"}),
            block("turn_ended", {"turn": "t1"}),
            block("turn_started", {"turn": "t2"}),
            block("turn_ended", {"turn": "t2"}),
            made,
        ]
    )
    assert all(b"".join(out) == expected for out in received[:40])
    assert not any(received[40:])  # the other conversation's tabs heard nothing

    for task in tabs[:40]:
        task.cancel()
    await until(lambda: watchers.watching == 1)
    for task in tabs[40:]:
        task.cancel()
    await until(lambda: watchers.watching == 0)
    # A tab that joins later starts a watcher again, and is told of a turn already running.
    await there.acquire(PROJECT, "root", "t3", lease_s=30)
    late: list[bytes] = []
    again = asyncio.create_task(tab("root", late))
    await until(lambda: late == [block("turn_started", {"turn": "t3"})])
    assert watchers.watching == 1
    again.cancel()
    await until(lambda: watchers.watching == 0)
    await watchers.close()


def open_streams(server: ChatServer) -> int:
    """How many ``GET /events`` streams the server holds open."""
    return int(server.client.get(f"{API}/status").json()["event_streams"])


def follow_tabs(
    server: ChatServer, app_id: str, count: int, out: list[list[dict[str, Any]]]
) -> list[asyncio.Task[None]]:
    """``count`` tabs of ``server`` on the conversation, each appending its changes to a list of
    ``out``."""

    async def follow(changes: list[dict[str, Any]]) -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            async with client.stream("GET", f"{API}/events/{PROJECT}/{app_id}") as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        changes.append(json.loads(line[6:]))

    lists: list[list[dict[str, Any]]] = [[] for _ in range(count)]
    out.extend(lists)
    return [asyncio.create_task(follow(changes)) for changes in lists]


@pytest.mark.e2e  # two servers in subprocesses
async def test_many_tabs_on_two_processes_hear_of_turns_and_branches_made_on_either(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path, app_id: str
) -> None:
    homes = (tmp_path / "a", tmp_path / "b") if engine else (tmp_path / "shared",) * 2
    a = start_server("cli", homes[0], upstream, "watch-a", **engine)
    b = start_server("cli", homes[1], upstream, "watch-b", **engine)
    tasks: list[asyncio.Task[None]] = []
    try:
        upstream.control(text="First.", delay_ms=0)
        await asyncio.to_thread(a.turn, app_id, "What is first?")
        on_a: list[list[dict[str, Any]]] = []
        on_b: list[list[dict[str, Any]]] = []
        tasks = follow_tabs(a, app_id, 5, on_a) + follow_tabs(b, app_id, 25, on_b)
        await until(lambda: open_streams(a) == 5 and open_streams(b) == 25, 20)
        await asyncio.sleep(0.5)  # (each tab's first reading done)
        for server in (a, b):  # one watcher per conversation and process, for all its tabs
            status = server.client.get(f"{API}/status").json()
            assert status["watched_conversations"] == 1, status
        everyone = on_a + on_b

        def heard(kind: str, count: int) -> Callable[[], bool]:
            return lambda: all([c["type"] for c in tab].count(kind) >= count for tab in everyone)

        slow = " ".join(f"w{i}" for i in range(20))
        upstream.control(text=slow, delay_ms=30)  # (a turn lasts longer than a look)
        second, _ = a.turn_in_background(app_id, "What is second?")  # on A
        await until(heard("turn_started", 1), 10, lambda: (on_a[0], on_b[0]))
        await asyncio.to_thread(second.join, 30)
        await until(heard("turn_ended", 1), 10, lambda: (on_a[0], on_b[0]))
        response = await asyncio.to_thread(
            a.client.post, f"{API}/fork/{PROJECT}/{app_id}", json={"at": 2}
        )
        fork = response.json()
        await until(heard("branch_created", 1), 10, lambda: (on_a[0], on_b[0]))
        third, _ = b.turn_in_background(app_id, "What is third?")  # on B
        await asyncio.to_thread(third.join, 30)
        await until(heard("turn_ended", 2), 10, lambda: (on_a[0], on_b[0]))
        for changes in everyone:
            kinds = [(c["type"], c["value"]) for c in changes]
            assert [kind for kind, _ in kinds] == [
                "turn_started",
                "turn_ended",
                "branch_created",
                "turn_started",
                "turn_ended",
            ], changes
            assert kinds[0][1] == kinds[1][1] != kinds[3][1] == kinds[4][1]
            assert kinds[2][1] == {"app_id": fork, "parent": app_id, "fork_at": 2}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        a.close()
        b.close()


@pytest.mark.e2e
async def test_tabs_outlive_the_database_going_away_and_hear_of_turns_once_it_is_back(
    upstream: FakeUpstream, tmp_path: Path, app_id: str
) -> None:
    cluster = postgres_or_skip(durable=True)
    server = None
    tasks: list[asyncio.Task[None]] = []
    try:
        url = cluster.create_database()
        server = start_server(
            "cli", tmp_path, upstream, "watch-away", BURR_CHATBOT_DATABASE_URL=url
        )
        upstream.control(text="Saved.", delay_ms=0)
        await asyncio.to_thread(server.turn, app_id, "What is kept?")
        changes: list[list[dict[str, Any]]] = []
        tasks = follow_tabs(server, app_id, 3, changes)
        await until(lambda: open_streams(server) == 3, 20)
        await asyncio.to_thread(cluster.pause)
        await asyncio.sleep(3.0)  # (the watcher looks, and fails, meanwhile)
        await asyncio.to_thread(cluster.resume)
        assert not any(task.done() for task in tasks)
        deadline = time.monotonic() + 15
        while True:  # until the pool has replaced its dropped connections
            response = await asyncio.to_thread(
                server.client.post, f"{API}/response/{PROJECT}/{app_id}", json={"prompt": "Back?"}
            )
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert response.status_code == 200, response.text
        await until(
            lambda: all(
                [c["type"] for c in tab] == ["turn_started", "turn_ended"] for tab in changes
            ),
            within_s=10,
        )
        assert not any(task.done() for task in tasks)
        assert "Traceback" not in server.log()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            server.close()
        cluster.stop()


async def test_a_tab_that_leaves_during_the_first_reading_leaves_no_watcher(
    stores: tuple[Store, Store],
) -> None:
    here, _ = stores
    watchers = Watchers(here)

    async def tab() -> None:
        async for _ in watchers.follow(PROJECT, "gone", "gone", keepalive_s=60):
            pass

    task = asyncio.create_task(tab())
    await asyncio.sleep(0)  # (its first reading started)
    assert watchers.watching == 1
    task.cancel()
    await until(lambda: watchers.watching == 0, 2.0)
    await asyncio.sleep(0.3)
    assert watchers.watching == 0
    await watchers.close()


async def test_the_turns_of_a_projects_watched_conversations_are_read_at_once(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """30 conversations of a project watched, a tab each; turns elsewhere in three of them.
    Each tab hears its own conversation's turn only, and every pass reads the turns of the
    conversations it looks at in one call (on SQLite, another process's change marks all 30)."""
    here, there = stores
    watchers = Watchers(here)
    names = [f"c{i}" for i in range(30)]
    received: dict[str, list[bytes]] = {name: [] for name in names}
    reads: list[list[str]] = []
    one_at_a_time: list[str] = []
    read_many, read_one = here.current_of, here.current

    async def counted_many(project_id: str, app_ids: Any) -> Any:
        reads.append(list(app_ids))
        return await read_many(project_id, app_ids)

    async def counted_one(project_id: str, app_id: str) -> Any:
        one_at_a_time.append(app_id)
        return await read_one(project_id, app_id)

    monkeypatch.setattr(here, "current_of", counted_many)
    monkeypatch.setattr(here, "current", counted_one)

    async def tab(app_id: str) -> None:
        async for chunk in watchers.follow(PROJECT, app_id, app_id, keepalive_s=60):
            received[app_id].append(chunk)

    tabs = [asyncio.create_task(tab(name)) for name in names]
    try:
        await until(lambda: watchers.watching == 30)
        await asyncio.sleep(0.3)  # (each one's first reading done, a pass or two made)
        one_at_a_time.clear()  # (the first reading of each: one call each)
        for name, token in (("c3", "t3"), ("c17", "t17"), ("c29", "t29")):
            await there.acquire(PROJECT, name, token, lease_s=30)
            await there.finish(PROJECT, name, token, None)
        for name, token in (("c3", "t3"), ("c17", "t17"), ("c29", "t29")):
            ended = block("turn_ended", {"turn": token})
            await until(lambda name=name, ended=ended: ended in b"".join(received[name]))
        assert all(not received[name] for name in names if name not in ("c3", "c17", "c29"))
        assert one_at_a_time == []  # no conversation read on its own after its first reading
        assert reads and all(len(set(ids)) == len(ids) for ids in reads)
        if not here.notifies:  # SQLite: the change mark moved, so all 30 were read at once
            assert max(len(ids) for ids in reads) == 30, reads
    finally:
        for task in tabs:
            task.cancel()
        await asyncio.gather(*tabs, return_exceptions=True)
        await watchers.close()
