"""A conversation survives a server restart, and Burr's tracker sees it."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from burr.core import State
from conftest import PROJECT, start_server
from fake_openai import FakeUpstream

from burr_streaming_chatbot.storage.interface import ConflictError
from burr_streaming_chatbot.storage.postgres import PostgresStore
from burr_streaming_chatbot.storage.sqlite import ChatStatePersister


@pytest.mark.e2e  # chatbot servers in subprocesses
def test_conversation_resumes_after_restart(upstream: FakeUpstream, tmp_path: Path) -> None:
    server = start_server("cli", tmp_path, upstream, "persistence-1")
    try:
        upstream.control(text="One.")
        server.turn("resume-me", "What is one?")
        upstream.control(text="Two.")
        server.turn("resume-me", "What is two?")
        before = server.history("resume-me")
    finally:
        server.close()
    assert len(before) == 4

    server = start_server("cli", tmp_path, upstream, "persistence-2")
    try:
        assert server.history("resume-me") == before
        upstream.control(text="Three.")
        events = server.turn("resume-me", "What is three?")
        assert events[0]["value"] == before
        assert [m["content"] for m in server.history("resume-me")][-2:] == [
            "What is three?",
            "Three.",
        ]
        # The model saw the whole conversation, including turns from before the restart.
        sent = upstream.stats()["request_bodies"][-1]["messages"]
        assert [m["content"] for m in sent[1:]] == [
            "What is one?",
            "One.",
            "What is two?",
            "Two.",
            "What is three?",
        ]
    finally:
        server.close()

    # Burr's tracking client wrote the app where Burr's UI looks for it.
    app_dir = tmp_path / PROJECT / "resume-me"
    steps = [json.loads(line) for line in (app_dir / "log.jsonl").read_text().splitlines()]
    ends = [s for s in steps if s.get("type") == "end_entry"]
    assert len(ends) == 3 * 4  # three turns of four actions
    assert (app_dir / "graph.json").exists()


@pytest.mark.e2e  # the chatbot server in a subprocess
def test_writes_per_turn_do_not_grow_with_the_conversation(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    import sqlite3

    server = start_server("cli", tmp_path, upstream, "growth")
    try:
        upstream.control(text="A fixed answer of a few words.")
        log = tmp_path / PROJECT / "long" / "log.jsonl"
        sizes = []
        for turn in range(30):
            before = log.stat().st_size if log.exists() else 0
            server.turn("long", f"What is question {turn:03d}?")
            sizes.append(log.stat().st_size - before)
        history = server.history("long")
    finally:
        server.close()

    assert len(history) == 60 and history[-1]["content"] == "A fixed answer of a few words."
    # Burr's tracking log grows by the same amount each turn, not by the history's length.
    assert max(sizes[5:]) <= sizes[5] * 1.1, sizes
    ends = [json.loads(line) for line in log.read_text().splitlines() if '"end_entry"' in line]
    assert len(ends[-1]["state"]["chat_history"]) == 4
    assert ends[-1]["state"]["chat_history_length"] == 60
    # One state row per conversation; the messages once each.
    with sqlite3.connect(next(tmp_path.glob(".streaming-chatbot.*.sqlite3"))) as db:
        assert db.execute("SELECT COUNT(*) FROM burr_state WHERE app_id='long'").fetchone() == (1,)
        assert db.execute(
            "SELECT COUNT(*) FROM burr_state_messages WHERE app_id='long'"
        ).fetchone() == (60,)


# PostgreSQL runs in a subprocess: its case is e2e.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.e2e)])
async def persister(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The chatbot's persister of either engine on a fresh database: on SQLite one connection,
    as a project has; on PostgreSQL the store's pool."""
    if request.param == "sqlite":
        persister = await ChatStatePersister.open(tmp_path / "state.sqlite3")
        try:
            yield persister
        finally:
            await persister.connection.close()
        return
    cluster = request.getfixturevalue("postgres")
    store = PostgresStore(cluster.create_database(), owner="test:1:a")
    await store.open()
    try:
        yield await store.persister(PROJECT)
    finally:
        await store.aclose()


async def test_concurrent_saves_of_many_conversations_stay_whole(persister: Any) -> None:
    """Many conversations share one SQLite connection: their saves must not interleave (one
    conversation's commit in the middle of another's save, statements on a busy connection)."""

    async def converse(app: str) -> None:
        history: list[dict] = []
        for turn in range(6):
            history = [*history, {"role": "user", "content": f"{app} q{turn}"}]
            await persister.save(
                None, app, 2 * turn, "prompt", State({"chat_history": history}), "completed"
            )
            history = [*history, {"role": "assistant", "content": f"{app} a{turn}"}]
            await persister.save(
                None, app, 2 * turn + 1, "answer", State({"chat_history": history}), "completed"
            )

    apps = [f"app{i}" for i in range(40)]
    await asyncio.gather(*(converse(app) for app in apps))
    for app in apps:
        loaded = await persister.load(None, app)
        assert loaded is not None and loaded["sequence_id"] == 11
        contents = [m["content"] for m in loaded["state"]["chat_history"]]
        assert contents == [f"{app} {kind}{t}" for t in range(6) for kind in ("q", "a")]


async def test_a_save_cancelled_half_way_leaves_the_last_whole_one(persister: Any) -> None:
    """Cancelled at any point of its transaction, a save leaves either the old state or the new,
    and another conversation's commit right after does not persist half of it."""
    old = [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}]
    new = [*old, {"role": "user", "content": "q1"}]
    outcomes = set()
    for point in range(30):
        app = f"cancel{point}"
        await persister.save(None, app, 1, "answer", State({"chat_history": old}), "completed")
        task = asyncio.create_task(
            persister.save(None, app, 2, "prompt", State({"chat_history": new}), "completed")
        )
        for _ in range(point):  # every step of the save's transaction, in turn
            await asyncio.sleep(0.0001)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        other = [{"role": "user", "content": "other"}]
        await persister.save(
            None, f"other{point}", 0, "prompt", State({"chat_history": other}), "completed"
        )
        loaded = await persister.load(None, app)
        assert loaded is not None
        pair = (loaded["sequence_id"], [m["content"] for m in loaded["state"]["chat_history"]])
        assert pair in [(1, ["q0", "a0"]), (2, ["q0", "a0", "q1"])], (point, pair)
        outcomes.add(pair[0])
    assert outcomes == {1, 2}  # some cancellations came mid-save, some after it


async def test_a_save_from_a_stale_state_is_a_conflict_and_writes_nothing(persister: Any) -> None:
    """Two processes that loaded the same conversation: the second to save loses, and what
    the first saved stays whole (never an overwrite)."""
    base = [{"role": "user", "content": "q0"}, {"role": "assistant", "content": "a0"}]
    await persister.save(None, "both", 3, "answer", State({"chat_history": base}), "completed")
    mine = [*base, {"role": "user", "content": "mine"}]
    theirs = [*base, {"role": "user", "content": "theirs"}]
    await persister.save(
        None,
        "both",
        4,
        "prompt",
        State({"chat_history": mine}),
        "completed",
        expected_sequence_id=3,
    )
    with pytest.raises(ConflictError):
        await persister.save(
            None,
            "both",
            4,
            "prompt",
            State({"chat_history": theirs}),
            "completed",
            expected_sequence_id=3,
        )
    # Two first saves of a new conversation: the second is one too.
    with pytest.raises(ConflictError):
        await persister.save(
            None,
            "fresh",
            0,
            "prompt",
            State({"chat_history": mine}),
            "completed",
            expected_sequence_id=None,
        )
        await persister.save(
            None,
            "fresh",
            0,
            "prompt",
            State({"chat_history": theirs}),
            "completed",
            expected_sequence_id=None,
        )
    loaded = await persister.load(None, "both")
    assert loaded["sequence_id"] == 4
    assert [m["content"] for m in loaded["state"]["chat_history"]] == ["q0", "a0", "mine"]
    assert [
        m["content"] for m in (await persister.load(None, "fresh"))["state"]["chat_history"]
    ] == ["q0", "a0", "mine"]
