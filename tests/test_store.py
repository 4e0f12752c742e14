"""The store's contract, the same on both engines: leases, the event log and its pruning, stop
requests. (The servers' tests show the same through the API; these pin each rule down.)"""

import asyncio
import sqlite3
from collections.abc import Awaitable
from pathlib import Path

import pytest
from burr.core import State
from postgres import PostgresCluster

from burr_streaming_chatbot.storage.interface import (
    Batch,
    ConflictError,
    Store,
    owner_is_gone,
    pack_events,
    unpack_events,
)
from burr_streaming_chatbot.storage.messages import BRANCH, HISTORY
from burr_streaming_chatbot.storage.postgres import PostgresStore
from burr_streaming_chatbot.storage.sqlite import SQLiteStore, state_db_path
from burr_streaming_chatbot.wire import TurnEvent

PROJECT = "store_test"


async def test_a_lease_is_exclusive_until_it_ends_or_expires(stores: tuple[Store, Store]) -> None:
    a, b = stores
    assert await a.acquire(PROJECT, "c", "t1", lease_s=30) is not None
    assert await b.acquire(PROJECT, "c", "t2", lease_s=30) is None
    assert await a.acquire(PROJECT, "other", "t3", lease_s=30) is not None  # others are free
    await a.finish(PROJECT, "c", "t1", None)
    lease = await b.acquire(PROJECT, "c", "t2", lease_s=0.3)
    assert lease is not None and lease.orphan is None  # t1 ended normally
    await asyncio.sleep(0.2)
    await b.renew(PROJECT, ["t2"], lease_s=0.3)  # renewed: still held past its first expiry
    await asyncio.sleep(0.2)
    assert await a.acquire(PROJECT, "c", "t4", lease_s=30) is None
    record = await a.current(PROJECT, "c")
    assert record is not None and (record.token, record.done, record.expired) == (
        "t2",
        False,
        False,
    )
    await asyncio.sleep(0.4)  # b stopped renewing (it died): the lease expires
    record = await a.current(PROJECT, "c")
    assert record is not None and record.expired
    lease = await a.acquire(PROJECT, "c", "t4", lease_s=30)
    assert lease is not None and lease.orphan == "t2"  # whose events hold the partial answer
    # Ending an old turn does not end the new one's lease.
    await b.finish(PROJECT, "c", "t2", None)
    assert await b.acquire(PROJECT, "c", "t5", lease_s=30) is None


async def test_events_are_read_back_from_any_position_and_pruned_after_the_turn(
    stores: tuple[Store, Store],
) -> None:
    a, b = stores
    await a.acquire(PROJECT, "c", "t1", lease_s=30)
    first = [
        TurnEvent("delta", "Hel"),
        TurnEvent("mode", '{"type":"mode","value":"answer_question"}'),
        TurnEvent("delta", "lo"),
    ]
    last = [TurnEvent("delta", " wörld"), TurnEvent("message", '{"type":"message"}')]
    await a.publish(PROJECT, [("t1", Batch(0, first))])
    await a.finish(PROJECT, "c", "t1", Batch(3, last))
    everything = [event for batch in await b.events(PROJECT, "t1", 0) for event in batch.events]
    assert everything == [*first, *last]
    batches = await b.events(PROJECT, "t1", 3)
    assert [batch.first for batch in batches] == [3]  # batches before 3 are not read again
    record = await b.current(PROJECT, "c")
    assert record is not None and record.done and record.finished_ago_s is not None
    await b.prune(PROJECT, keep_s=60)
    assert await b.events(PROJECT, "t1", 0) != []  # kept: ended less than 60 s ago
    await asyncio.sleep(0.3)
    await b.prune(PROJECT, keep_s=0.2)
    assert await b.events(PROJECT, "t1", 0) == []


async def test_a_stop_request_reaches_the_owner(stores: tuple[Store, Store]) -> None:
    a, b = stores
    heard: list[tuple[str, str]] = []
    a.on_stop_request(lambda project, app: heard.append((project, app)))
    assert await b.request_stop(PROJECT, "c") is False  # nothing runs
    await a.acquire(PROJECT, "c", "t1", lease_s=30)
    assert await b.request_stop(PROJECT, "c") is True
    assert await a.stop_requests(PROJECT) == ["t1"]  # what a polling owner finds
    assert await b.stop_requests(PROJECT) == []  # (not b's turn)
    assert a.notifies is isinstance(a, PostgresStore)  # (LISTEN/NOTIFY; SQLite's owner polls)
    if a.notifies:  # and what a notified one hears at once
        for _ in range(50):
            if heard:
                break
            await asyncio.sleep(0.02)
        assert heard == [(PROJECT, "c")]
    await a.finish(PROJECT, "c", "t1", None)
    assert await b.request_stop(PROJECT, "c") is False


def test_packed_events_round_trip() -> None:
    events = [
        TurnEvent("delta", 'a\n"b"'),
        TurnEvent("mode", '{"type":"mode","value":"ü"}'),
        TurnEvent("delta", ""),
        TurnEvent("delta", "\u2028"),
        TurnEvent("delta", '["not", "an event"]'),
    ]
    assert unpack_events(pack_events(events)) == events


def test_only_a_gone_process_of_the_same_machine_is_gone() -> None:
    import os

    assert owner_is_gone("here:999999999:x", "here:1:y")  # no such pid here
    assert not owner_is_gone(f"here:{os.getppid()}:x", "here:1:y")  # runs
    assert not owner_is_gone("there:999999999:x", "here:1:y")  # another machine: wait


async def test_a_new_sqlite_file_opens_while_another_process_holds_a_lock_on_it(
    tmp_path: Path,
) -> None:
    """Two processes opening a new project's file at once: the first's lock makes SQLite refuse
    the second's switch to WAL at once ("database is locked", its busy timeout unused). The
    second waits for the lock instead (this answered a 500 to one create in twenty)."""
    path = state_db_path(tmp_path, PROJECT)
    other = sqlite3.connect(path, isolation_level=None)  # another process, mid-write
    other.execute("CREATE TABLE other_process (x)")
    other.execute("BEGIN IMMEDIATE")
    store = SQLiteStore(tmp_path, "machine-a:1:x")
    await store.open()
    try:
        opening = asyncio.create_task(store.sequence_id(PROJECT, "c"))
        await asyncio.sleep(0.3)
        assert not opening.done()  # waiting for the lock, not failed
        other.execute("COMMIT")
        assert await asyncio.wait_for(opening, 10) is None
        with sqlite3.connect(path) as reader:
            assert reader.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        other.close()
        await store.aclose()


async def _stored(store: Store, app_id: str, *texts: str) -> None:
    """A conversation saved with one user message per text."""
    history = [{"role": "user", "content": text, "type": "text"} for text in texts]
    await store.save_state(
        PROJECT, app_id, 0, "prompt", State({HISTORY: history}), expected_sequence_id=None
    )


async def test_a_renamed_conversation_is_listed_by_its_new_title(
    stores: tuple[Store, Store],
) -> None:
    a, b = stores
    assert not await a.rename(PROJECT, "nothing-stored", "A title")  # (no storage yet)
    await _stored(a, "c1", "What is Burr?")
    await _stored(a, "c2", "What is Hamilton?")
    assert not await a.rename(PROJECT, "unknown", "A title")
    assert await b.rename(PROJECT, "c1", "About Burr")
    assert await a.rename(PROJECT, "c1", "About Burr, again\x00")  # (renamed twice)
    titles = {c.app_id: c.title for c in await b.list_conversations(PROJECT, 10)}
    assert titles == {"c1": "About Burr, again\ufffd", "c2": "What is Hamilton?"}
    assert await a.claim(PROJECT, "c3", "alice")
    await _stored(a, "c3", "Mine?")
    assert await a.rename(PROJECT, "c3", "Alice's")
    assert [c.title for c in await a.list_owned(PROJECT, "alice", 10)] == ["Alice's"]
    assert [c.title for c in (await a.branches(PROJECT, "c1"))] == ["About Burr, again\ufffd"]
    assert not await a.rename("other_project", "c1", "Elsewhere")


async def test_a_deleted_conversation_is_gone_and_its_branches_say_so(
    stores: tuple[Store, Store],
) -> None:
    a, b = stores
    assert not await a.delete(PROJECT, "nothing-stored")  # (no storage yet)
    assert not await a.is_deleted(PROJECT, "nothing-stored")
    await _stored(a, "root", "What is Burr?", "And Hamilton?")
    await _stored(a, "other", "Unrelated")
    branch = State(
        {
            HISTORY: [{"role": "user", "content": "What is Burr?", "type": "text"}],
            BRANCH: {"root": "root", "parent": "root", "at": 1, "created": 1.0},
        }
    )
    await a.save_state(PROJECT, "branch", 0, "prompt", branch, expected_sequence_id=None)
    assert await a.rename(PROJECT, "root", "Renamed")
    assert not await a.delete(PROJECT, "unknown")

    assert await b.delete(PROJECT, "root")
    assert await a.is_deleted(PROJECT, "root") and not await a.is_deleted(PROJECT, "other")
    assert not await a.delete(PROJECT, "root")  # (once)
    listed = {c.app_id: c for c in await a.list_conversations(PROJECT, 10)}
    assert set(listed) == {"branch", "other"}
    assert listed["branch"].parent_deleted and not listed["other"].parent_deleted
    assert await a.messages(PROJECT, "root") == [] and await a.load_state(PROJECT, "root") is None
    assert [m["content"] for m in await a.messages(PROJECT, "branch")] == ["What is Burr?"]
    assert [c.app_id for c in await a.branches(PROJECT, "root")] == ["branch"]
    assert not await a.is_deleted("other_project", "root")


async def test_find_searches_titles_and_messages_and_pages(stores: tuple[Store, Store]) -> None:
    a, b = stores
    assert await a.find(PROJECT, ["burr"], 10) == []  # (no storage yet)
    await _stored(a, "c1", "What is Burr?")
    await _stored(a, "c2", "Tell me about Hamilton dataflows")
    assert await a.claim(PROJECT, "c3", "alice")
    await _stored(a, "c3", "Alice asks about burr's UI")

    async def found(*words: str, **kwargs: object) -> list[str]:
        return [c.app_id for c in await b.find(PROJECT, list(words), 10, **kwargs)]  # type: ignore[arg-type]

    assert await found("burr") == ["c3", "c1"]  # newest first
    assert await found("hamil") == ["c2"]  # a word prefix
    assert await found("dataflows", "tell") == ["c2"]  # every word
    assert await found("dataflows", "burr") == []
    assert await found("burr", owner="alice") == ["c3"]
    assert await found() == ["c3", "c2", "c1"]
    assert [c.app_id for c in await a.find(PROJECT, [], 2, 1)] == ["c2", "c1"]
    assert await a.find(PROJECT, [], 2, 3) == []
    assert await found('quote"d', "it's") == []  # (no query syntax gets through)

    # Kept up to date: an appended message, a new title, a deletion.
    history = [
        {"role": "user", "content": "What is Burr?", "type": "text"},
        {"role": "assistant", "content": "A state machine library.", "type": "text"},
    ]
    await a.save_state(
        PROJECT, "c1", 1, "prompt", State({HISTORY: history}), expected_sequence_id=0
    )
    assert await found("machine") == ["c1"]
    assert await a.rename(PROJECT, "c2", "Graphs of functions")
    assert await found("graphs") == ["c2"]
    assert await a.rename(PROJECT, "c2", "Pipelines")
    assert await found("graphs") == [] and await found("pipelines") == ["c2"]
    assert await found("hamilton") == ["c2"]  # (its messages still count)
    assert await a.delete(PROJECT, "c1")
    assert await found("machine") == [] and await found("burr") == ["c3"]


async def test_a_sqlite_file_made_before_search_is_indexed_when_opened(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path, "machine-a:1:x")
    await store.open()
    await _stored(store, "old", "Stored before search existed")
    assert await store.rename(PROJECT, "old", "Ancient title")
    await store.aclose()
    with sqlite3.connect(state_db_path(tmp_path, PROJECT)) as db:  # (as an older version left it)
        for name in ("chat_message_search", "chat_title_search"):
            for trigger in [
                row[0]
                for row in db.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE ?",
                    (f"{name}%",),
                )
            ]:
                db.execute(f"DROP TRIGGER {trigger}")
            db.execute(f"DROP TABLE {name}")
    store = SQLiteStore(tmp_path, "machine-a:1:x")
    await store.open()
    try:
        assert [c.app_id for c in await store.find(PROJECT, ["existed"], 10)] == ["old"]
        assert [c.app_id for c in await store.find(PROJECT, ["ancient"], 10)] == ["old"]
    finally:
        await store.aclose()


async def test_finishing_an_old_turn_with_its_last_events_leaves_the_new_turn_alone(
    stores: tuple[Store, Store],
) -> None:
    """A turn's end writes its last events, ends its own lease only, and wakes the readers of
    its events on other processes (one statement on PostgreSQL: all of it, or none)."""
    a, b = stores
    await a.acquire(PROJECT, "c", "old", lease_s=0.2)
    await asyncio.sleep(0.3)  # (a stalled: its lease expired and b took the conversation)
    assert await b.acquire(PROJECT, "c", "new", lease_s=30) is not None
    await a.finish(PROJECT, "c", "old", Batch(0, [TurnEvent("delta", "late")]))
    assert [batch.events for batch in await b.events(PROJECT, "old", 0)] == [
        [TurnEvent("delta", "late")]
    ]
    record = await b.current(PROJECT, "c")
    assert record is not None and (record.token, record.done) == ("new", False)
    assert await a.acquire(PROJECT, "c", "third", lease_s=30) is None  # still b's

    woken = asyncio.create_task(a.wait("new", timeout=5.0))  # a reader on the other process
    await asyncio.sleep(0.05)
    await b.publish(PROJECT, [("new", Batch(0, [TurnEvent("delta", "Hel")]))])
    await b.finish(PROJECT, "c", "new", Batch(1, [TurnEvent("delta", "lo")]))
    started = asyncio.get_running_loop().time()
    await woken
    if a.notifies:  # (woken by the notification, not by the timeout; SQLite's readers poll)
        assert asyncio.get_running_loop().time() - started < 4.0
    record = await a.current(PROJECT, "c")
    assert record is not None and (record.token, record.done) == ("new", True)
    assert [e.data for batch in await a.events(PROJECT, "new", 0) for e in batch.events] == [
        "Hel",
        "lo",
    ]


async def test_saves_from_two_processes_append_each_message_once(
    stores: tuple[Store, Store],
) -> None:
    """Each process's persister saves a conversation the other also saved, or one that was
    deleted meanwhile: the stored history is the saved state's, each message once."""
    a, b = stores

    def state(*texts: str) -> State:
        return State({HISTORY: [{"role": "user", "content": text} for text in texts]})

    async def contents(store: Store) -> list[str]:
        return [message["content"] for message in await store.messages(PROJECT, "c")]

    await a.save_state(PROJECT, "c", 0, "prompt", state("q0"), expected_sequence_id=None)
    await b.save_state(PROJECT, "c", 1, "answer", state("q0", "a0"), expected_sequence_id=0)
    await a.save_state(PROJECT, "c", 2, "prompt", state("q0", "a0", "q1"), expected_sequence_id=1)
    assert await contents(b) == ["q0", "a0", "q1"]
    loaded = await b.load_state(PROJECT, "c")
    assert loaded is not None and loaded[1] == 2
    assert [message["content"] for message in loaded[0][HISTORY]] == ["q0", "a0", "q1"]
    assert await b.delete(PROJECT, "c")
    await a.save_state(
        PROJECT, "c", 3, "answer", state("q0", "a0", "q1", "a1"), expected_sequence_id=None
    )
    assert await contents(b) == ["q0", "a0", "q1", "a1"]
    with pytest.raises(ConflictError):  # (and what is stored is still checked)
        await b.save_state(PROJECT, "c", 4, "prompt", state("q0", "x"), expected_sequence_id=3)
    assert await contents(a) == ["q0", "a0", "q1", "a1"]


@pytest.mark.e2e  # (PostgreSQL in a subprocess)
async def test_a_turns_store_calls_are_one_statement_each_on_postgresql(
    postgres: PostgresCluster,
) -> None:
    """Each call a turn makes is one round trip: no transaction around several statements, no
    reset of the connection when the pool takes it back."""
    store = PostgresStore(postgres.create_database(), "machine-a:1:x", pool_size=2)
    await store.open()
    sent: list[str] = []
    try:
        async with store.pool.acquire() as one, store.pool.acquire() as two:
            for connection in (one, two):  # (the pool's only connections)
                connection.add_query_logger(lambda logged: sent.append(logged.query))

        def ours(query: str) -> bool:  # (not asyncpg's look-up of a type, once per connection)
            return "typeinfo_tree" not in query and "'jit'" not in query

        async def statements(call: Awaitable[object]) -> list[str]:
            del sent[:]
            await call
            return [query for query in sent if ours(query)]

        history = [{"role": "user", "content": "What is Burr?"}]
        assert len(await statements(store.acquire(PROJECT, "c", "t1", lease_s=30))) == 1
        for sequence_id, step in enumerate(("prompt", "answer")):
            save = store.save_state(
                PROJECT, "c", sequence_id, step, State({HISTORY: history}),
                expected_sequence_id=sequence_id - 1 if sequence_id else None,
            )  # fmt: skip
            assert len(await statements(save)) == 1
            history = [*history, {"role": "assistant", "content": "A library."}]
        assert len(await statements(store.load_state(PROJECT, "c"))) == 1
        event = TurnEvent("delta", "A")
        assert len(await statements(store.publish(PROJECT, [("t1", Batch(0, [event]))]))) == 1
        assert len(await statements(store.finish(PROJECT, "c", "t1", Batch(1, [event])))) == 1
        assert len(await statements(store.acquire(PROJECT, "c", "t2", lease_s=30))) == 1
        assert len(await statements(store.finish(PROJECT, "c", "t2", None))) == 1
    finally:
        await store.aclose()
