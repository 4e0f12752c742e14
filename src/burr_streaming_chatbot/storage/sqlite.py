"""The SQLite engine of the store: one file per project under the storage folder, in WAL mode,
shared by every process of the machine.

Each process has one connection per project, held by one task at a time (statements of two
conversations must not interleave on it). Every write is one ``BEGIN IMMEDIATE`` transaction,
so two processes writing at once wait for each other (``busy_timeout``) instead of failing,
and every read that needs more than one statement reads one snapshot. SQLite has no
notifications: a process looks for stop requests, and a reader on another process for new
events, by polling (every :data:`POLL_S`); the watchers of ``GET /events`` look at a project's
change counter (:meth:`SQLiteStore.change_mark`) and are told of this process's own turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import aiosqlite
from burr.core import State
from burr.core.persistence import PersistedStateData
from burr.integrations.persisters.b_aiosqlite import AsyncSQLitePersister

from ..wire import ConversationSummary
from .interface import (
    UNOWNED,
    Batch,
    Lease,
    Store,
    StoreError,
    TurnRecord,
    conflicts_as,
    owner_is_gone,
    pack_events,
    storable_text,
    summary,
    unpack_events,
)
from .messages import (
    BRANCH,
    LENGTH,
    UNCHECKED,
    decode_messages,
    encode_message,
    full_state,
    lean_state,
    messages_to_append,
)

TABLE = "burr_state"
LEASES = "chat_leases"
EVENTS = "chat_events"
OWNERS = "chat_owners"
"""Who created each conversation (users behind an authenticating proxy)."""
NOTES = "chat_notes"
"""The notes the ``save_note`` tool saved, each with its conversation."""
MESSAGE_SEARCH = "chat_message_search"
"""Full-text index (FTS5) of the messages' text, kept by triggers on the messages table."""
TITLE_SEARCH = "chat_title_search"
"""Full-text index (FTS5) of the titles conversations were given, kept by triggers."""
DELETED = "chat_deleted"
"""The conversations that were deleted (their history is then a 404, not empty)."""
TITLES = "chat_titles"
"""The titles conversations were given (renamed); the others are titled by their first
message."""
POLL_S = 0.05
"""How often a reader on another process looks for new events."""
MANY_AT_ONCE = 500
"""The most ids one statement asks about (SQLite bounds the parameters of a statement)."""
BUSY_TIMEOUT_S = 10.0
"""How long a write waits for another process's transaction before it fails."""


def state_db_path(storage_dir: Path, project_id: str) -> Path:
    """Where a project's conversations live: a hidden file beside Burr's folders (so Burr's UI
    does not mistake it for a project)."""
    return storage_dir / f".streaming-chatbot.{project_id}.sqlite3"


SUMMARIES = f"""
    SELECT s.app_id, s.created_at, json_extract(m.message, '$.content'),
           json_extract(s.state, '$.{BRANCH}'), t.title,
           EXISTS (SELECT 1 FROM {DELETED} d
                   WHERE d.app_id = json_extract(s.state, '$.{BRANCH}.parent'))
    FROM {TABLE} s
    LEFT JOIN {TABLE}_messages m
      ON m.partition_key = s.partition_key AND m.app_id = s.app_id AND m.idx = 0
    LEFT JOIN {TITLES} t ON t.app_id = s.app_id"""
"""What :func:`.interface.summary` takes, for each conversation (a WHERE and ORDER BY follow)."""


async def _connect(path: Path) -> Any:
    """A connection to ``path`` (created if missing) with transactions begun explicitly, never
    implicitly by the driver, and the busy timeout of :data:`BUSY_TIMEOUT_S`."""
    connection = await aiosqlite.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_S)
    try:
        await connection.execute("PRAGMA synchronous=NORMAL")
    except BaseException:
        await connection.close()
        raise
    return connection


async def _nothing(_: Any) -> None:
    return None


class ConnectionLock:
    """A persister's lock (see :attr:`ChatStatePersister.lock`): an ``asyncio.Lock`` that,
    once taken, opens the persister's connection again if the store closed it, and tells the
    store the project was used."""

    def __init__(self, persister: ChatStatePersister) -> None:
        self._lock = asyncio.Lock()
        self._persister = persister

    def locked(self) -> bool:
        """True while someone holds it."""
        return self._lock.locked()

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        try:
            if self._persister.closed:
                await self._persister.reopen()
            await self._persister.on_use(self._persister)
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()

    @asynccontextmanager
    async def held_as_is(self) -> AsyncIterator[None]:
        """Hold the lock without opening the connection (to close it)."""
        async with self._lock:
            yield


class ChatStatePersister(AsyncSQLitePersister):
    """Burr's SQLite persister, with the chat history stored once per message and one state
    row per conversation; saves are checked against what is stored (see :meth:`save`)."""

    def __init__(
        self, connection: Any, table_name: str = TABLE, serde_kwargs: Optional[dict] = None
    ):
        super().__init__(connection, table_name, serde_kwargs or {})
        self.messages_table = f"{table_name}_messages"
        self.lock = ConnectionLock(self)
        """Held for each use of the connection: the conversations of a project share it, and
        their statements must not interleave (one conversation's commit in the middle of
        another's save; sqlite3 refuses a statement while another is half-read). Taking it
        opens the connection again if the store closed it (:meth:`close_idle`)."""
        self.path: Optional[Path] = None
        self.closed = False
        self.on_use: Callable[[ChatStatePersister], Awaitable[None]] = _nothing
        """Called (the lock held) before each use of the connection: the store's LRU."""

    @classmethod
    async def open(cls, path: Path, table_name: str = TABLE) -> ChatStatePersister:
        """A persister on its own connection to ``path`` (created if missing), in WAL mode, with
        transactions begun explicitly (never implicitly by the driver), and its tables created
        (:meth:`initialize`)."""
        persister = cls(await _connect(path), table_name)
        persister.path = path
        try:
            await persister._use_wal()
            await persister.initialize()
        except BaseException:
            await persister.connection.close()  # (its thread would keep the process alive)
            raise
        return persister

    async def close_idle(self) -> bool:
        """Close the connection (and its thread) unless it is in use; the next use opens it
        again. Returns whether it was closed."""
        if self.closed or self.lock.locked():
            return False
        async with self.lock.held_as_is():
            await self.connection.close()
            self.closed = True
        return True

    async def reopen(self) -> None:
        """Open the connection again after :meth:`close_idle` (the file is in WAL already)."""
        if self.path is None:
            raise StoreError("this persister was not opened from a file")
        self.connection = await _connect(self.path)
        self.closed = False

    async def _use_wal(self) -> None:
        """Switch the file to WAL mode, waiting up to :data:`BUSY_TIMEOUT_S` for another
        process's lock: SQLite answers "database is locked" at once, without its busy timeout,
        when another connection holds a lock while the mode changes, as when two processes
        open a new file at the same moment."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                await self.connection.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                # SQLITE_BUSY's message (its ``sqlite_errorname`` needs Python 3.11).
                if str(exc) != "database is locked" or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(POLL_S)

    async def initialize(self) -> None:
        """Create Burr's state table, the messages table, and the store's leases and events."""
        await super().initialize()  # (commits by itself)
        async with self.transaction():
            for statement in (
                f"""CREATE TABLE IF NOT EXISTS {self.messages_table} (
                    partition_key TEXT NOT NULL,
                    app_id TEXT NOT NULL,
                    idx INTEGER NOT NULL,
                    message TEXT NOT NULL,
                    PRIMARY KEY (partition_key, app_id, idx)
                )""",
                f"""CREATE TABLE IF NOT EXISTS {LEASES} (
                    app_id TEXT PRIMARY KEY,
                    token TEXT NOT NULL,
                    owner TEXT NOT NULL,
                    expires_at REAL NOT NULL,
                    done INTEGER NOT NULL DEFAULT 0,
                    stop INTEGER NOT NULL DEFAULT 0,
                    finished_at REAL,
                    watched_at REAL
                )""",
                f"""CREATE TABLE IF NOT EXISTS {EVENTS} (
                    token TEXT NOT NULL,
                    first INTEGER NOT NULL,
                    last INTEGER NOT NULL,
                    payload TEXT NOT NULL,
                    ends_turn INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (token, first)
                )""",
                f"CREATE INDEX IF NOT EXISTS {LEASES}_token ON {LEASES} (token)",
                f"""CREATE TABLE IF NOT EXISTS {OWNERS} (
                    app_id TEXT PRIMARY KEY,
                    user_id TEXT NOT NULL
                )""",
                f"""CREATE TABLE IF NOT EXISTS {NOTES} (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    app_id TEXT NOT NULL,
                    text TEXT NOT NULL,
                    created_at TEXT NOT NULL
                )""",
                f"""CREATE TABLE IF NOT EXISTS {DELETED} (
                    app_id TEXT PRIMARY KEY,
                    deleted_at REAL NOT NULL
                )""",
                f"""CREATE TABLE IF NOT EXISTS {TITLES} (
                    app_id TEXT PRIMARY KEY,
                    title TEXT NOT NULL
                )""",
                # A turn's last batch ends its lease in the same statement, so one hand-off to
                # the connection's thread writes both, atomically (see SQLiteStore.finish).
                f"""CREATE TRIGGER IF NOT EXISTS {EVENTS}_end_turn AFTER INSERT ON {EVENTS}
                    WHEN NEW.ends_turn = 1
                    BEGIN
                      UPDATE {LEASES} SET done = 1,
                        finished_at = (julianday('now') - 2440587.5) * 86400.0
                      WHERE token = NEW.token;
                    END""",
            ):
                await self.connection.execute(statement)
            await self._create_search_index()

    async def _create_search_index(self) -> None:
        """Create the full-text indexes of messages and titles, and the triggers that keep them
        in step in the transaction that writes a message or a title; index what was stored
        before they existed (once)."""
        messages = self.messages_table
        existed = await self.fetchone(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (MESSAGE_SEARCH,)
        )
        text = "json_extract(new.message, '$.content')"
        for statement in (
            f"""CREATE VIRTUAL TABLE IF NOT EXISTS {MESSAGE_SEARCH}
                USING fts5(app_id UNINDEXED, text)""",
            f"""CREATE VIRTUAL TABLE IF NOT EXISTS {TITLE_SEARCH}
                USING fts5(app_id UNINDEXED, title)""",
            f"""CREATE TRIGGER IF NOT EXISTS {MESSAGE_SEARCH}_add AFTER INSERT ON {messages}
                BEGIN
                  INSERT INTO {MESSAGE_SEARCH} (rowid, app_id, text)
                  VALUES (new.rowid, new.app_id, {text});
                END""",
            f"""CREATE TRIGGER IF NOT EXISTS {MESSAGE_SEARCH}_drop AFTER DELETE ON {messages}
                BEGIN
                  DELETE FROM {MESSAGE_SEARCH} WHERE rowid = old.rowid;
                END""",
            f"""CREATE TRIGGER IF NOT EXISTS {TITLE_SEARCH}_add AFTER INSERT ON {TITLES}
                BEGIN
                  INSERT INTO {TITLE_SEARCH} (rowid, app_id, title)
                  VALUES (new.rowid, new.app_id, new.title);
                END""",
            f"""CREATE TRIGGER IF NOT EXISTS {TITLE_SEARCH}_change AFTER UPDATE ON {TITLES}
                BEGIN
                  DELETE FROM {TITLE_SEARCH} WHERE rowid = old.rowid;
                  INSERT INTO {TITLE_SEARCH} (rowid, app_id, title)
                  VALUES (new.rowid, new.app_id, new.title);
                END""",
            f"""CREATE TRIGGER IF NOT EXISTS {TITLE_SEARCH}_drop AFTER DELETE ON {TITLES}
                BEGIN
                  DELETE FROM {TITLE_SEARCH} WHERE rowid = old.rowid;
                END""",
        ):
            await self.connection.execute(statement)
        if existed is None:  # (a file made before search: index what it holds)
            await self.connection.execute(
                f"""INSERT INTO {MESSAGE_SEARCH} (rowid, app_id, text)
                    SELECT rowid, app_id, json_extract(message, '$.content') FROM {messages}"""
            )
            await self.connection.execute(
                f"""INSERT INTO {TITLE_SEARCH} (rowid, app_id, title)
                    SELECT rowid, app_id, title FROM {TITLES}"""
            )

    @asynccontextmanager
    async def transaction(self, write: bool = True) -> AsyncIterator[None]:
        """Hold the connection for one transaction (``BEGIN IMMEDIATE`` to write, so it waits
        for another process's writer up front); roll it back if the body fails or is cancelled
        half-way, so no later commit persists half of it."""
        async with self.lock:
            try:
                # (Inside the try: cancelled while BEGIN runs in the connection's thread, the
                # BEGIN still happens, and the ROLLBACK queued after it undoes it.)
                await self.connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                yield
            except BaseException:
                with contextlib.suppress(Exception):  # (a broken connection has nothing to undo)
                    await asyncio.shield(self.connection.execute("ROLLBACK"))
                raise
            await asyncio.shield(self.connection.execute("COMMIT"))

    async def fetchall(self, query: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        """Run a query on the connection (the caller holds the lock); one hand-off to the
        connection's thread, where ``execute`` then ``fetchall`` would be three."""
        return list(await self.connection.execute_fetchall(query, parameters))

    async def fetchone(self, query: str, parameters: Sequence[Any] = ()) -> Optional[tuple]:
        rows = await self.fetchall(query, parameters)
        return rows[0] if rows else None

    def _partition(self, partition_key: Optional[str]) -> str:
        return partition_key if partition_key is not None else self.PARTITION_KEY_DEFAULT

    async def save(
        self,
        partition_key: Optional[str],
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        status: str,
        **kwargs: Any,
    ) -> None:
        """Append the new messages and replace the conversation's state row, in one transaction.

        With ``expected_sequence_id`` (what :class:`.SaveAfter` passes), the stored sequence id
        must still be that one, else nothing is written and :class:`.ConflictError` is raised:
        another process saved this conversation since this one read it. The messages to append
        are counted against the stored ones in the same transaction, never a cached count.
        """
        partition = self._partition(partition_key)
        history, lean = lean_state(state)
        expected = kwargs.get("expected_sequence_id", UNCHECKED)
        row = (partition, app_id, sequence_id, position)
        encoded = encode_message(lean.serialize(**self.serde_kwargs))
        with conflicts_as(app_id, sqlite3.IntegrityError):
            async with self.lock:
                # The whole transaction in one hand-off to the connection's thread (six before:
                # BEGIN, the read, the three writes, COMMIT). A cancellation no longer cuts it
                # half-way: the thread runs it to its COMMIT or its ROLLBACK either way.
                await self.connection._execute(
                    self._save_in_thread, history, expected, row, encoded, status
                )

    def _save_in_thread(
        self,
        history: list[dict],
        expected: Any,
        row: tuple[str, str, int, str],
        encoded: str,
        status: str,
    ) -> None:
        """:meth:`save`'s transaction, run in the connection's thread."""
        partition, app_id, sequence_id, _ = row
        connection = self.connection._conn
        connection.execute("BEGIN IMMEDIATE")  # (waits for another process's writer up front)
        try:
            stored_id, stored = connection.execute(
                f"""SELECT
                      (SELECT sequence_id FROM {self.table_name} WHERE partition_key = ?1 AND app_id = ?2),
                      (SELECT COALESCE(MAX(idx) + 1, 0) FROM {self.messages_table}
                        WHERE partition_key = ?1 AND app_id = ?2)""",
                (partition, app_id),
            ).fetchone()
            appended = messages_to_append(app_id, history, stored, stored_id, expected, sequence_id)
            if appended:
                connection.executemany(
                    f"INSERT INTO {self.messages_table} (partition_key, app_id, idx, message) "
                    "VALUES (?, ?, ?, ?)",
                    [(partition, app_id, index, message) for index, message in appended],
                )
            connection.execute(
                f"DELETE FROM {self.table_name} WHERE partition_key = ? AND app_id = ?",
                (partition, app_id),
            )
            connection.execute(
                f"INSERT INTO {self.table_name} (partition_key, app_id, sequence_id, position, state, status) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (*row, encoded, status),
            )
        except BaseException:
            with contextlib.suppress(Exception):  # (a broken connection has nothing to undo)
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    async def load(
        self,
        partition_key: Optional[str],
        app_id: Optional[str],
        sequence_id: Optional[int] = None,
        **kwargs: Any,
    ) -> Optional[PersistedStateData]:
        """The conversation's latest state, with its history read back in order (one snapshot)."""
        async with self.transaction(write=False):
            loaded = await super().load(partition_key, app_id, sequence_id, **kwargs)
            if loaded is None or LENGTH not in loaded["state"]:
                return loaded  # nothing, or a row written by Burr's own persister: use it as is
            history = await self._messages(
                loaded["partition_key"], loaded["app_id"], loaded["state"][LENGTH]
            )
        loaded["state"] = full_state(loaded["state"], history)
        return loaded

    async def messages(
        self, partition_key: Optional[str], app_id: str, limit: Optional[int] = None
    ) -> list[dict]:
        """The first ``limit`` messages of a conversation (all of them without a limit)."""
        async with self.lock:
            return await self._messages(partition_key, app_id, limit)

    async def _messages(
        self, partition_key: Optional[str], app_id: str, limit: Optional[int] = None
    ) -> list[dict]:
        rows = await self.fetchall(
            f"SELECT message FROM {self.messages_table} WHERE partition_key = ? AND app_id = ? "
            "AND idx < ? ORDER BY idx",
            (self._partition(partition_key), app_id, limit if limit is not None else 2**62),
        )
        return decode_messages([row[0] for row in rows])


class SQLiteStore(Store):
    """The store on SQLite files (see this module's description).

    A read never creates a project's file: for a project with no file it finds nothing. At most
    ``max_open`` projects' connections are open at once (each is a thread and file handles);
    past that the least recently used idle one is closed, and opened again when next used.
    """

    def __init__(self, storage_dir: Path, owner: str, max_open: int = 32) -> None:
        self.storage_dir = storage_dir
        self.owner = owner
        self.max_open = max_open
        self._persisters: dict[str, ChatStatePersister] = {}
        self._open: OrderedDict[str, ChatStatePersister] = OrderedDict()
        """The projects whose connection is open, least recently used first."""
        self._opening = asyncio.Lock()
        self._marks: dict[str, Any] = {}
        """Per watched project, a connection of its own that only reads ``data_version``."""
        self._marking = asyncio.Lock()
        self._on_change: Optional[Callable[[Optional[str], Optional[str]], None]] = None

    async def open(self) -> None:
        try:
            self.storage_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the storage folder {self.storage_dir}: {exc}"
            ) from None

    async def aclose(self) -> None:
        for project_id in list(self._marks):
            await self.forget_changes(project_id)
        for persister in self._persisters.values():
            if not persister.closed:
                await persister.connection.close()
                persister.closed = True
        self._persisters.clear()
        self._open.clear()

    @property
    def open_projects(self) -> int:
        """How many projects' connections are open."""
        return len(self._open)

    async def persister(self, project_id: str, create: bool = True) -> Optional[ChatStatePersister]:
        persister = self._persisters.get(project_id)
        if persister is not None:
            return persister
        path = state_db_path(self.storage_dir, project_id)
        if not create and not path.is_file():
            return None
        async with self._opening:
            if project_id not in self._persisters:
                path.parent.mkdir(parents=True, exist_ok=True)
                persister = await ChatStatePersister.open(path)
                persister.on_use = self._used
                self._persisters[project_id] = persister
                await self._used(persister)
        return self._persisters[project_id]

    async def _db(self, project_id: str) -> ChatStatePersister:
        """The project's persister, its file created if missing (for a write)."""
        persister = await self.persister(project_id)
        assert persister is not None
        return persister

    async def _used(self, persister: ChatStatePersister) -> None:
        """Note a use of ``persister``'s connection; close the least recently used idle ones
        past :attr:`max_open`."""
        open_ = self._open
        key = str(persister.path)
        if key in open_:
            open_.move_to_end(key)
            return
        open_[key] = persister
        for other_key, other in list(open_.items()):
            if len(open_) <= self.max_open:
                break
            if other is persister:
                continue
            if other.closed or await other.close_idle():
                open_.pop(other_key, None)

    async def change_mark(self, project_id: str) -> Optional[int]:
        """``PRAGMA data_version`` on a connection that does nothing else, so every commit
        counts, this process's too (SQLite moves it for the other connections' commits only);
        -1 while the project has no file (never created by this read)."""
        connection = self._marks.get(project_id)
        if connection is None:
            path = state_db_path(self.storage_dir, project_id)
            if not path.is_file():
                return -1
            async with self._marking:
                if project_id not in self._marks:
                    self._marks[project_id] = await aiosqlite.connect(
                        f"{path.as_uri()}?mode=rw", uri=True, isolation_level=None
                    )
            connection = self._marks[project_id]
        rows = await connection.execute_fetchall("PRAGMA data_version")
        return next(iter(rows))[0]

    def on_change(self, callback: Callable[[Optional[str], Optional[str]], None]) -> None:
        """Told of this process's own turns and branches at once (other processes' changes
        are found through :meth:`change_mark`)."""
        self._on_change = callback

    def _changed(self, project_id: str, app_id: str) -> None:
        if self._on_change is not None:
            self._on_change(project_id, app_id)

    async def save_state(
        self,
        project_id: str,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        expected_sequence_id: Any,
    ) -> None:
        await super().save_state(
            project_id, app_id, sequence_id, position, state, expected_sequence_id
        )
        branch = state.get(BRANCH) if expected_sequence_id is None else None
        if branch:  # a branch just made (its first save)
            self._changed(project_id, branch["root"])

    async def forget_changes(self, project_id: str) -> None:
        connection = self._marks.pop(project_id, None)
        if connection is not None:
            await connection.close()

    async def sequence_id(self, project_id: str, app_id: str) -> Optional[int]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return None
        async with db.lock:
            row = await db.fetchone(
                f"SELECT sequence_id FROM {TABLE} WHERE partition_key = ? AND app_id = ?",
                (db.PARTITION_KEY_DEFAULT, app_id),
            )
        return row[0] if row else None

    async def list_conversations(self, project_id: str, limit: int) -> list[ConversationSummary]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return []
        # One state row per conversation; the newest has the largest rowid.
        query = f"{SUMMARIES} ORDER BY s.rowid DESC LIMIT ?"
        async with db.lock:
            rows = await db.fetchall(query, (limit,))
        return [summary(*row) for row in rows]

    async def branches(self, project_id: str, root: str) -> list[ConversationSummary]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return []
        query = f"""{SUMMARIES}
            WHERE s.app_id = ?1 OR json_extract(s.state, '$.{BRANCH}.root') = ?1
            ORDER BY json_extract(s.state, '$.{BRANCH}.created') IS NOT NULL,
                     json_extract(s.state, '$.{BRANCH}.created')"""
        async with db.lock:
            rows = await db.fetchall(query, (root,))
        return [summary(*row) for row in rows]

    async def acquire(
        self, project_id: str, app_id: str, token: str, lease_s: float
    ) -> Optional[Lease]:
        db = await self._db(project_id)
        now = time.time()
        async with db.lock:
            # The usual case in one statement (one transaction, one hand-off to the thread):
            # the last turn ended, or was this process's own.
            taken = await db.fetchall(
                f"""INSERT INTO {LEASES} (app_id, token, owner, expires_at, done, stop)
                    VALUES (?1, ?2, ?3, ?4, 0, 0)
                    ON CONFLICT (app_id) DO UPDATE SET token = excluded.token,
                      owner = excluded.owner, expires_at = excluded.expires_at, done = 0,
                      stop = 0, finished_at = NULL, watched_at = NULL
                    WHERE {LEASES}.done = 1 OR {LEASES}.owner = ?3
                    RETURNING (SELECT sequence_id FROM {TABLE}
                                WHERE partition_key = ?5 AND app_id = ?1)""",
                (app_id, token, self.owner, now + lease_s, db.PARTITION_KEY_DEFAULT),
            )
        if taken:
            self._changed(project_id, app_id)
            return Lease(sequence_id=taken[0][0], orphan=None)
        async with db.transaction():  # held by another process: is it alive?
            row = await db.fetchone(
                f"SELECT token, owner, expires_at, done FROM {LEASES} WHERE app_id = ?", (app_id,)
            )
            orphan = None
            if row is not None:
                held_token, owner, expires_at, done = row
                if not done and owner != self.owner:
                    if expires_at >= now and not owner_is_gone(owner, self.owner):
                        return None
                    orphan = held_token
            await db.connection.execute(
                f"""INSERT INTO {LEASES} (app_id, token, owner, expires_at, done, stop, finished_at)
                    VALUES (?, ?, ?, ?, 0, 0, NULL)
                    ON CONFLICT (app_id) DO UPDATE SET token = excluded.token,
                      owner = excluded.owner, expires_at = excluded.expires_at, done = 0, stop = 0,
                      finished_at = NULL, watched_at = NULL""",
                (app_id, token, self.owner, now + lease_s),
            )
            state = await db.fetchone(
                f"SELECT sequence_id FROM {TABLE} WHERE partition_key = ? AND app_id = ?",
                (db.PARTITION_KEY_DEFAULT, app_id),
            )
        self._changed(project_id, app_id)
        return Lease(sequence_id=state[0] if state else None, orphan=orphan)

    async def renew(self, project_id: str, tokens: Sequence[str], lease_s: float) -> None:
        db = await self._db(project_id)
        async with db.transaction():
            await db.connection.executemany(
                f"UPDATE {LEASES} SET expires_at = ? WHERE token = ? AND owner = ? AND done = 0",
                [(time.time() + lease_s, token, self.owner) for token in tokens],
            )

    async def publish(self, project_id: str, batches: Sequence[tuple[str, Batch]]) -> None:
        db = await self._db(project_id)
        rows = [(token, batch) for token, batch in batches if batch.events]
        async with db.lock:
            for start in range(0, len(rows), 500):
                await self._insert(db, rows[start : start + 500], ends_turn=False)

    @staticmethod
    async def _insert(
        db: ChatStatePersister, rows: Sequence[tuple[str, Batch]], ends_turn: bool
    ) -> None:
        """One statement (one transaction, one hand-off to the connection's thread)."""
        await db.connection.execute(
            f"INSERT INTO {EVENTS} (token, first, last, payload, ends_turn) VALUES "
            + ",".join(["(?, ?, ?, ?, ?)"] * len(rows)),
            [
                value
                for token, batch in rows
                for value in (
                    token,
                    batch.first,
                    batch.first + len(batch.events) - 1,
                    pack_events(batch.events),
                    int(ends_turn),
                )
            ],
        )

    async def finish(self, project_id: str, app_id: str, token: str, last: Optional[Batch]) -> None:
        db = await self._db(project_id)
        async with db.lock:
            if last is not None and last.events:  # ends the lease too (the table's trigger)
                await self._insert(db, [(token, last)], ends_turn=True)
            else:
                await db.connection.execute(
                    f"UPDATE {LEASES} SET done = 1, finished_at = ? WHERE app_id = ? AND token = ?",
                    (time.time(), app_id, token),
                )
        self._changed(project_id, app_id)

    async def current(self, project_id: str, app_id: str) -> Optional[TurnRecord]:
        return (await self.current_of(project_id, [app_id]))[app_id]

    async def current_of(
        self, project_id: str, app_ids: Sequence[str]
    ) -> dict[str, Optional[TurnRecord]]:
        found: dict[str, Optional[TurnRecord]] = dict.fromkeys(app_ids)
        db = await self.persister(project_id, create=False)
        if db is None or not app_ids:  # (no file: nothing stored; a read creates none)
            return found
        rows: list[tuple] = []
        async with db.lock:
            for start in range(0, len(app_ids), MANY_AT_ONCE):
                some = app_ids[start : start + MANY_AT_ONCE]
                rows += await db.fetchall(
                    f"SELECT app_id, token, owner, done, expires_at, finished_at FROM {LEASES} "
                    f"WHERE app_id IN ({', '.join('?' * len(some))})",
                    tuple(some),
                )
        now = time.time()
        for app_id, token, owner, done, expires_at, finished_at in rows:
            found[app_id] = TurnRecord(
                token=token,
                owner=owner,
                done=bool(done),
                expired=not done and (expires_at < now or owner_is_gone(owner, self.owner)),
                finished_ago_s=None if finished_at is None else now - finished_at,
            )
        return found

    async def events(self, project_id: str, token: str, start: int) -> list[Batch]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return []
        async with db.lock:
            rows = await db.fetchall(
                f"SELECT first, payload FROM {EVENTS} WHERE token = ? AND last >= ? ORDER BY first",
                (token, start),
            )
        return [Batch(first, unpack_events(payload)) for first, payload in rows]

    async def watch(self, project_id: str, app_id: str, token: str) -> None:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return None
        async with db.transaction():
            await db.connection.execute(
                f"UPDATE {LEASES} SET watched_at = ? WHERE app_id = ? AND token = ?",
                (time.time(), app_id, token),
            )

    async def watched(self, project_id: str, app_id: str, token: str, within_s: float) -> bool:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return False
        async with db.lock:
            row = await db.fetchone(
                f"SELECT 1 FROM {LEASES} WHERE app_id = ? AND token = ? AND watched_at >= ?",
                (app_id, token, time.time() - within_s),
            )
        return row is not None

    async def request_stop(self, project_id: str, app_id: str) -> bool:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return False
        async with db.transaction():
            cursor = await db.connection.execute(
                f"UPDATE {LEASES} SET stop = 1 WHERE app_id = ? AND done = 0 AND expires_at >= ?",
                (app_id, time.time()),
            )
            return cursor.rowcount > 0

    async def stop_requests(self, project_id: str) -> list[str]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return []
        async with db.lock:
            rows = await db.fetchall(
                f"SELECT token FROM {LEASES} WHERE owner = ? AND done = 0 AND stop = 1",
                (self.owner,),
            )
        return [row[0] for row in rows]

    async def prune(self, project_id: str, keep_s: float) -> None:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return None
        async with db.transaction():
            await db.connection.execute(
                f"""DELETE FROM {EVENTS} WHERE token NOT IN (
                      SELECT token FROM {LEASES} WHERE done = 0 OR finished_at >= ?)""",
                (time.time() - keep_s,),
            )

    async def wait(self, token: str, timeout: float) -> None:
        await asyncio.sleep(min(timeout, POLL_S))

    async def claim(self, project_id: str, app_id: str, user: str) -> bool:
        db = await self._db(project_id)
        async with db.transaction():
            await db.connection.execute(
                f"""INSERT INTO {OWNERS} (app_id, user_id)
                    SELECT ?1, ?2 WHERE NOT EXISTS (
                      SELECT 1 FROM {TABLE} WHERE partition_key = ?3 AND app_id = ?1)
                    ON CONFLICT (app_id) DO NOTHING""",
                (app_id, user, db.PARTITION_KEY_DEFAULT),
            )
            row = await db.fetchone(f"SELECT user_id FROM {OWNERS} WHERE app_id = ?", (app_id,))
        return row is not None and row[0] == user

    async def owner_of(self, project_id: str, app_id: str) -> Optional[str]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return None
        async with db.lock:
            row = await db.fetchone(
                f"""SELECT (SELECT user_id FROM {OWNERS} WHERE app_id = ?1),
                           EXISTS (SELECT 1 FROM {TABLE} WHERE partition_key = ?2 AND app_id = ?1)""",
                (app_id, db.PARTITION_KEY_DEFAULT),
            )
        user, stored = row if row is not None else (None, False)
        return user if user is not None else (UNOWNED if stored else None)

    async def owners(self, project_id: str, app_ids: Sequence[str]) -> dict[str, str]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return {}
        marks = ",".join("?" * len(app_ids))
        async with db.lock:
            rows = await db.fetchall(
                f"SELECT app_id, user_id FROM {OWNERS} WHERE app_id IN ({marks})", list(app_ids)
            )
        return {app_id: user for app_id, user in rows}

    async def list_owned(self, project_id: str, user: str, limit: int) -> list[ConversationSummary]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return []
        query = f"""{SUMMARIES}
            JOIN {OWNERS} o ON o.app_id = s.app_id
            WHERE o.user_id = ? ORDER BY s.rowid DESC LIMIT ?"""
        async with db.lock:
            rows = await db.fetchall(query, (user, limit))
        return [summary(*row) for row in rows]

    async def add_note(self, project_id: str, app_id: str, text: str) -> dict[str, Any]:
        db = await self._db(project_id)
        text = storable_text(text)
        created_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        async with db.lock:  # (one statement: one transaction)
            rows = await db.fetchall(
                f"INSERT INTO {NOTES} (app_id, text, created_at) VALUES (?, ?, ?) RETURNING id",
                (app_id, text, created_at),
            )
        return {"id": rows[0][0], "text": text, "app_id": app_id, "created_at": created_at}

    async def notes(
        self, project_id: str, *, owner: Optional[str] = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        if limit < 1:
            return []
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return []
        query = f"SELECT n.id, n.text, n.app_id, n.created_at FROM {NOTES} n"
        parameters: list[Any] = []
        if owner is not None:
            query += f" JOIN {OWNERS} o ON o.app_id = n.app_id WHERE o.user_id = ?"
            parameters.append(owner)
        async with db.lock:
            rows = await db.fetchall(f"{query} ORDER BY n.id DESC LIMIT ?", (*parameters, limit))
        return [
            {"id": id_, "text": text, "app_id": app_id, "created_at": created_at}
            for id_, text, app_id, created_at in rows
        ]

    async def rename(self, project_id: str, app_id: str, title: str) -> bool:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; nothing to rename)
            return False
        async with db.lock:  # (one statement: one transaction)
            rows = await db.fetchall(
                f"""INSERT INTO {TITLES} (app_id, title)
                    SELECT ?1, ?2 WHERE EXISTS (
                      SELECT 1 FROM {TABLE} WHERE partition_key = ?3 AND app_id = ?1)
                    ON CONFLICT (app_id) DO UPDATE SET title = excluded.title
                    RETURNING app_id""",
                (app_id, storable_text(title), db.PARTITION_KEY_DEFAULT),
            )
        return bool(rows)

    async def delete(self, project_id: str, app_id: str) -> bool:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; nothing to delete)
            return False
        partition = db.PARTITION_KEY_DEFAULT
        async with db.transaction():
            gone = await db.fetchall(
                f"DELETE FROM {TABLE} WHERE partition_key = ? AND app_id = ? RETURNING app_id",
                (partition, app_id),
            )
            if not gone:
                return False
            await db.connection.execute(
                f"DELETE FROM {db.messages_table} WHERE partition_key = ? AND app_id = ?",
                (partition, app_id),
            )
            await db.connection.execute(f"DELETE FROM {TITLES} WHERE app_id = ?", (app_id,))
            await db.connection.execute(
                f"""INSERT INTO {DELETED} (app_id, deleted_at) VALUES (?, ?)
                    ON CONFLICT (app_id) DO UPDATE SET deleted_at = excluded.deleted_at""",
                (app_id, time.time()),
            )
        return True

    async def is_deleted(self, project_id: str, app_id: str) -> bool:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return False
        async with db.lock:
            row = await db.fetchone(f"SELECT 1 FROM {DELETED} WHERE app_id = ?", (app_id,))
        return row is not None

    async def find(
        self,
        project_id: str,
        words: Sequence[str],
        limit: int,
        offset: int = 0,
        owner: Optional[str] = None,
    ) -> list[ConversationSummary]:
        db = await self.persister(project_id, create=False)
        if db is None:  # (no file: nothing stored; a read creates none)
            return []
        query = SUMMARIES
        parameters: list[Any] = []
        conditions = []
        if owner is not None:
            query += f" JOIN {OWNERS} o ON o.app_id = s.app_id"
            conditions.append("o.user_id = ?")
            parameters.append(owner)
        if words:
            match = fts5_query(words)
            conditions.append(
                f"""s.app_id IN (
                    SELECT app_id FROM {MESSAGE_SEARCH} WHERE {MESSAGE_SEARCH} MATCH ?
                    UNION SELECT app_id FROM {TITLE_SEARCH} WHERE {TITLE_SEARCH} MATCH ?)"""
            )
            parameters += [match, match]
        if conditions:
            query += " WHERE " + " AND ".join(conditions)
        query += " ORDER BY s.rowid DESC LIMIT ? OFFSET ?"
        async with db.lock:
            rows = await db.fetchall(query, (*parameters, limit, offset))
        return [summary(*row) for row in rows]


def fts5_query(words: Sequence[str]) -> str:
    """An FTS5 query for text holding every one of ``words`` (each a prefix), each quoted so
    that nothing in it is read as FTS5 syntax."""
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words)
