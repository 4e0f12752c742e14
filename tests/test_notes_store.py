"""Notes in the store (what the ``save_note`` tool saves), the same on both engines: written by
one process and listed by another, newest first, per project, per owner; a read creates no
storage."""

import json
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from burr_streaming_chatbot.storage.interface import Store
from burr_streaming_chatbot.storage.sqlite import NOTES, SQLiteStore, state_db_path
from burr_streaming_chatbot.tools import DEMO_TOOLS, Toolbox, ToolContext

PROJECT = "notes_test"


async def test_notes_are_listed_newest_first_with_their_conversation_on_any_process(
    stores: tuple[Store, Store],
) -> None:
    a, b = stores
    before = datetime.now().astimezone()
    first = await a.add_note(PROJECT, "c1", "buy milk")
    second = await b.add_note(PROJECT, "c2", "call Ada")
    third = await a.add_note(PROJECT, "c1", "water the plants")
    assert first["text"] == "buy milk" and first["app_id"] == "c1"
    listed = await b.notes(PROJECT)
    assert listed == [third, second, first]  # what add_note returned is what is listed
    assert [(note["app_id"], note["text"]) for note in listed] == [
        ("c1", "water the plants"),
        ("c2", "call Ada"),
        ("c1", "buy milk"),
    ]
    assert len({note["id"] for note in listed}) == 3
    for note in listed:
        created = datetime.fromisoformat(note["created_at"])
        assert created.utcoffset() == timedelta(0)  # ISO 8601, in UTC
        assert abs(created - before) < timedelta(minutes=1)
    assert await a.notes(PROJECT, limit=2) == [third, second]
    assert await a.notes(PROJECT, limit=0) == []
    assert await a.notes(PROJECT, limit=-1) == []  # (not "no limit", as SQLite reads it)


async def test_the_notes_of_one_project_are_not_another_s(stores: tuple[Store, Store]) -> None:
    a, b = stores
    await a.add_note(PROJECT, "c1", "in the first project")
    await a.add_note("other_project", "c1", "in the other one")
    assert [note["text"] for note in await b.notes(PROJECT)] == ["in the first project"]
    assert [note["text"] for note in await b.notes("other_project")] == ["in the other one"]
    assert await b.notes("no_such_project") == []


async def test_with_an_owner_only_the_notes_of_that_user_s_conversations_are_listed(
    stores: tuple[Store, Store],
) -> None:
    a, b = stores
    assert await a.claim(PROJECT, "alice-1", "alice")
    assert await b.claim(PROJECT, "bob-1", "bob")
    await a.add_note(PROJECT, "alice-1", "alice's note")
    await b.add_note(PROJECT, "bob-1", "bob's note")
    await a.add_note(PROJECT, "nobody-1", "a note of a conversation nobody owns")
    assert await a.claim("other_project", "alice-1", "bob")  # (another project's "alice-1")
    await a.add_note("other_project", "alice-1", "bob's note elsewhere")

    def texts(notes: list[dict]) -> list[str]:
        return [note["text"] for note in notes]

    assert texts(await b.notes(PROJECT, owner="alice")) == ["alice's note"]
    assert texts(await a.notes(PROJECT, owner="bob")) == ["bob's note"]
    assert await a.notes(PROJECT, owner="carol") == []
    assert len(await a.notes(PROJECT)) == 3  # without an owner: every note of the project
    assert texts(await a.notes("other_project", owner="bob")) == ["bob's note elsewhere"]
    assert await a.notes("other_project", owner="alice") == []


async def test_a_note_s_text_is_kept_exactly_and_nul_is_stored_as_a_replacement_character(
    stores: tuple[Store, Store],
) -> None:
    a, b = stores
    text = "Grüße 🌍\n  « quoted » 'single' \"double\" \\ back"
    assert (await a.add_note(PROJECT, "c", text))["text"] == text
    # PostgreSQL's text refuses NUL: both engines store U+FFFD in its place.
    assert (await a.add_note(PROJECT, "c", "before\x00after"))["text"] == "before\ufffdafter"
    assert [note["text"] for note in await b.notes(PROJECT)] == ["before\ufffdafter", text]


async def test_the_save_note_tool_writes_through_the_store(stores: tuple[Store, Store]) -> None:
    """The store is the tools' NoteBook: a call of save_note is a note every process lists."""
    a, b = stores
    outcome = await Toolbox(DEMO_TOOLS).call(
        "save_note", '{"text": "  remember the milk  "}', ToolContext(PROJECT, "c9", a), 5
    )
    assert outcome.status == "ok", outcome.content
    [note] = await b.notes(PROJECT)
    assert (note["text"], note["app_id"]) == ("remember the milk", "c9")
    assert json.loads(outcome.content) == {
        "saved": True,
        "id": note["id"],
        "text": "remember the milk",
    }


def files_in(folder: Path) -> list[Path]:
    return list(folder.rglob("*"))


async def test_reading_notes_creates_no_sqlite_file_and_a_note_creates_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path, "machine-a:1:x")
    await store.open()
    try:
        assert await store.notes("nowhere") == []
        assert await store.notes("nowhere", owner="alice") == []
        assert files_in(tmp_path) == []
        assert store.open_projects == 0
        await store.add_note("nowhere", "c", "now it exists")
        assert state_db_path(tmp_path, "nowhere").is_file()
    finally:
        await store.aclose()


async def test_a_file_from_before_notes_gets_their_table_when_opened(tmp_path: Path) -> None:
    """A project stored by an earlier version (no notes table) is upgraded in place."""
    store = SQLiteStore(tmp_path, "machine-a:1:x")
    await store.open()
    try:
        assert await store.acquire(PROJECT, "c", "t1", 30) is not None
    finally:
        await store.aclose()
    with sqlite3.connect(state_db_path(tmp_path, PROJECT)) as connection:
        connection.execute(f"DROP TABLE {NOTES}")
    store = SQLiteStore(tmp_path, "machine-a:1:x")
    await store.open()
    try:
        assert await store.notes(PROJECT) == []
        await store.add_note(PROJECT, "c", "kept")
        assert [note["text"] for note in await store.notes(PROJECT)] == ["kept"]
        assert (await store.current(PROJECT, "c")) is not None  # (what was there is still there)
    finally:
        await store.aclose()
