"""The PostgreSQL engine of the store (``BURR_CHATBOT_DATABASE_URL``): one database shared by
every process on every machine.

Conversations are kept by a subclass of Burr's own ``AsyncPostgreSQLPersister`` (asyncpg, with
a pool); the project is the persister's partition key. Saves of one conversation take a
transaction-scoped advisory lock, so the check against what is stored and the write are one
step. Wake-ups for readers on other processes and stop requests travel by ``LISTEN/NOTIFY`` on
one channel, over one connection per process kept for listening; the database's clock, not a
machine's, times the leases.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from datetime import timezone
from typing import Any, Optional
from urllib.parse import parse_qsl, urlsplit

import asyncpg
from burr.core import State
from burr.core.persistence import PersistedStateData
from burr.integrations.persisters.b_asyncpg import AsyncPostgreSQLPersister

from ..settings import public_url
from ..wire import ConversationSummary
from .interface import (
    UNOWNED,
    Batch,
    ConflictError,
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

logger = logging.getLogger(__name__)

TABLE = "burr_chatbot_state"
LEASES = "burr_chatbot_leases"
EVENTS = "burr_chatbot_events"
OWNERS = "burr_chatbot_owners"
"""Who created each conversation (users behind an authenticating proxy)."""
NOTES = "burr_chatbot_notes"
"""The notes the ``save_note`` tool saved, each with its project and conversation."""
DELETED = "burr_chatbot_deleted"
"""The conversations that were deleted (their history is then a 404, not empty)."""
TITLES = "burr_chatbot_titles"
"""The titles conversations were given (renamed); the others are titled by their first
message."""
CHANNEL = "burr_chatbot"
SCHEMA_LOCK = 72410001
"""The advisory lock held while the schema is created: processes starting at once take turns."""
CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 10.0
"""A statement that takes longer fails (a database that stopped answering is a failure, not a
wait without end)."""


def secrets_of(url: str) -> list[str]:
    """The password of ``url`` (in its address or as ``?password=``), to keep out of messages."""
    try:
        parts = urlsplit(url)
        found = [parts.password or ""]
    except ValueError:
        return []
    found += [value for name, value in parse_qsl(parts.query) if name == "password"]
    return [secret for secret in found if secret]


SUMMARIES = f"""
    SELECT s.app_id, s.created_at, (m.message::jsonb) ->> 'content', (s.state::jsonb) -> '{BRANCH}',
           t.title,
           EXISTS (SELECT 1 FROM {DELETED} d WHERE d.project_id = s.partition_key
                   AND d.app_id = (s.state::jsonb) -> '{BRANCH}' ->> 'parent')
    FROM {TABLE} s
    LEFT JOIN {TABLE}_messages m
      ON m.partition_key = s.partition_key AND m.app_id = s.app_id AND m.idx = 0
    LEFT JOIN {TITLES} t ON t.project_id = s.partition_key AND t.app_id = s.app_id"""
"""What :func:`.interface.summary` takes, for each conversation (a WHERE and ORDER BY follow)."""


SAVE_FUNCTION = """CREATE OR REPLACE FUNCTION {table}_save(
    p_partition TEXT, p_app TEXT, p_sequence_id INTEGER, p_position TEXT, p_state TEXT,
    p_status TEXT, p_check BOOLEAN, p_expected INTEGER, p_length INTEGER, p_from INTEGER,
    p_messages TEXT[],
    OUT saved BOOLEAN, OUT stored_sequence_id INTEGER, OUT stored_messages INTEGER)
LANGUAGE plpgsql AS $body$
BEGIN
    -- One save of a conversation at a time, wherever it runs (each statement below then
    -- reads what the saves before it committed).
    PERFORM pg_advisory_xact_lock(hashtext(p_partition || '/' || p_app));
    SELECT max(sequence_id) INTO stored_sequence_id FROM {table}
        WHERE partition_key = p_partition AND app_id = p_app;
    SELECT COALESCE(max(idx) + 1, 0) INTO stored_messages FROM {table}_messages
        WHERE partition_key = p_partition AND app_id = p_app;
    saved := (NOT p_check OR stored_sequence_id IS NOT DISTINCT FROM p_expected)
        AND p_from <= stored_messages AND stored_messages <= p_length;
    IF NOT saved THEN
        RETURN;
    END IF;
    INSERT INTO {table}_messages (partition_key, app_id, idx, message)
        SELECT p_partition, p_app, p_from + m.n - 1, m.message
        FROM unnest(p_messages) WITH ORDINALITY AS m(message, n)
        WHERE p_from + m.n - 1 >= stored_messages;
    DELETE FROM {table} WHERE partition_key = p_partition AND app_id = p_app;
    INSERT INTO {table} (partition_key, app_id, sequence_id, position, state, status)
        VALUES (p_partition, p_app, p_sequence_id, p_position, p_state::jsonb, p_status);
END
$body$"""
"""A save in one statement (see :meth:`ChatPostgresPersister.save`): the messages from index
``p_from`` on are appended after the stored ones and the state row replaced, when what is
stored is what the save expects; else nothing is written. Returns whether it saved, and the
stored sequence id and message count it found."""
SAVE_ATTEMPTS = 5
"""A save whose guess of the stored messages was wrong is sent again, at most this many times."""
REMEMBERED = 10_000
"""How many conversations' stored message counts the persister remembers (its guesses)."""


class ChatPostgresPersister(AsyncPostgreSQLPersister):
    """Burr's PostgreSQL persister, with the chat history stored once per message, one state
    row per conversation, and saves checked against what is stored (see :meth:`save`)."""

    def __init__(
        self, pool: asyncpg.Pool, table_name: str = TABLE, serde_kwargs: Optional[dict] = None
    ):
        super().__init__(
            connection=None, pool=pool, table_name=table_name, serde_kwargs=serde_kwargs or {}
        )
        self.messages_table = f"{table_name}_messages"
        self._stored: dict[tuple[str, Optional[str]], int] = {}
        """Per conversation, how many messages this process last saw stored (a guess)."""

    def _remember(self, partition: str, app_id: Optional[str], messages: int) -> None:
        if len(self._stored) >= REMEMBERED:
            self._stored.clear()
        self._stored[(partition, app_id)] = messages

    def _partition(self, partition_key: Optional[str]) -> str:
        return partition_key if partition_key is not None else self.PARTITION_KEY_DEFAULT

    async def initialize(self) -> None:
        """Create Burr's state table, the messages table, the leases and the event log; safe
        when several processes start at once (they wait for each other on an advisory lock)."""
        async with self.pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", SCHEMA_LOCK)
            try:
                await super().initialize()
                async with conn.transaction():
                    await conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {self.messages_table} (
                            partition_key TEXT NOT NULL,
                            app_id TEXT NOT NULL,
                            idx INTEGER NOT NULL,
                            message TEXT NOT NULL,
                            PRIMARY KEY (partition_key, app_id, idx)
                        )"""
                    )
                    await conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {LEASES} (
                            project_id TEXT NOT NULL,
                            app_id TEXT NOT NULL,
                            token TEXT NOT NULL,
                            owner TEXT NOT NULL,
                            expires_at TIMESTAMPTZ NOT NULL,
                            done BOOLEAN NOT NULL DEFAULT FALSE,
                            stop BOOLEAN NOT NULL DEFAULT FALSE,
                            finished_at TIMESTAMPTZ,
                            watched_at TIMESTAMPTZ,
                            PRIMARY KEY (project_id, app_id)
                        )"""
                    )
                    await conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {OWNERS} (
                            project_id TEXT NOT NULL,
                            app_id TEXT NOT NULL,
                            user_id TEXT NOT NULL,
                            PRIMARY KEY (project_id, app_id)
                        )"""
                    )
                    await conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {NOTES} (
                            id BIGSERIAL PRIMARY KEY,
                            project_id TEXT NOT NULL,
                            app_id TEXT NOT NULL,
                            text TEXT NOT NULL,
                            created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
                        )"""
                    )
                    await conn.execute(
                        f"CREATE INDEX IF NOT EXISTS {NOTES}_project ON {NOTES} (project_id, id)"
                    )
                    await conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {DELETED} (
                            project_id TEXT NOT NULL,
                            app_id TEXT NOT NULL,
                            deleted_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                            PRIMARY KEY (project_id, app_id)
                        )"""
                    )
                    await conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {TITLES} (
                            project_id TEXT NOT NULL,
                            app_id TEXT NOT NULL,
                            title TEXT NOT NULL,
                            PRIMARY KEY (project_id, app_id)
                        )"""
                    )
                    await self._create_search_index(conn)
                    await conn.execute(SAVE_FUNCTION.format(table=self.table_name))
                    await _create_lease_notifications(conn)
                    await conn.execute(
                        f"""CREATE TABLE IF NOT EXISTS {EVENTS} (
                            token TEXT NOT NULL,
                            first INTEGER NOT NULL,
                            last INTEGER NOT NULL,
                            payload TEXT NOT NULL,
                            PRIMARY KEY (token, first)
                        )"""
                    )
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", SCHEMA_LOCK)

    async def _create_search_index(self, conn: Any) -> None:
        """Full-text search: a ``tsvector`` column generated from each message's text and each
        title (so it is written in the transaction that writes them), each with a GIN index."""
        await conn.execute(  # (the list's order, newest first, per project)
            f"""CREATE INDEX IF NOT EXISTS {TABLE}_newest
                ON {TABLE} (partition_key, created_at DESC)"""
        )
        for table, text in (
            (self.messages_table, "(message::jsonb) ->> 'content'"),
            (TITLES, "title"),
        ):
            await conn.execute(
                f"""ALTER TABLE {table} ADD COLUMN IF NOT EXISTS search tsvector
                    GENERATED ALWAYS AS (to_tsvector('simple', coalesce({text}, ''))) STORED"""
            )
            await conn.execute(
                f"CREATE INDEX IF NOT EXISTS {table}_search ON {table} USING GIN (search)"
            )

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
        """Append the new messages and replace the conversation's state row, in one statement
        (the function :data:`SAVE_FUNCTION`, one transaction, one round trip).

        With ``expected_sequence_id`` (what :class:`.SaveAfter` passes), the stored sequence id
        must still be that one, else nothing is written and :class:`.ConflictError` is raised.
        The messages to append are counted against the stored ones in the same transaction:
        the save sends the messages from the count this process last saw stored (0 for a
        conversation it has not seen), the function skips those already stored, and a guess
        that was too high (another process deleted them) is sent again from the true count.
        """
        partition = self._partition(partition_key)
        history, lean = lean_state(state)
        expected = kwargs.get("expected_sequence_id", UNCHECKED)
        state_text = encode_message(lean.serialize(**self.serde_kwargs))
        start = min(self._stored.get((partition, app_id), 0), len(history))
        with conflicts_as(app_id, asyncpg.UniqueViolationError):
            for _ in range(SAVE_ATTEMPTS):
                appended = messages_to_append(app_id, history, start, None, UNCHECKED, sequence_id)
                row = await self.pool.fetchrow(
                    f"""SELECT saved, stored_sequence_id, stored_messages
                        FROM {self.table_name}_save($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
                    partition,
                    app_id,
                    sequence_id,
                    position,
                    state_text,
                    status,
                    expected is not UNCHECKED,
                    None if expected is UNCHECKED else expected,
                    len(history),
                    start,
                    [message for _, message in appended],
                )
                if row["saved"]:
                    self._remember(partition, app_id, len(history))
                    return
                # Not what this save assumed: a conflict (raised here), or messages it did not send.
                messages_to_append(app_id, history, row[2], row[1], expected, sequence_id)
                start = row[2]
        raise ConflictError(f"conversation {app_id} kept changing while it was saved")

    async def load(
        self,
        partition_key: Optional[str],
        app_id: Optional[str],
        sequence_id: Optional[int] = None,
        **kwargs: Any,
    ) -> Optional[PersistedStateData]:
        """The conversation's latest state, with its history read back in order (one snapshot)."""
        partition = self._partition(partition_key)
        row = await self.pool.fetchrow(  # (one statement: one snapshot)
            f"""SELECT position, state, sequence_id, app_id, created_at, status,
                  (SELECT array_agg(m.message ORDER BY m.idx) FROM {self.messages_table} m
                    WHERE m.partition_key = s.partition_key AND m.app_id = s.app_id
                      AND m.idx < (s.state ->> '{LENGTH}')::integer)
                FROM {self.table_name} s WHERE partition_key = $1 AND app_id = $2
                ORDER BY sequence_id DESC LIMIT 1""",
            partition,
            app_id,
        )
        if row is None:
            return None
        lean: State = State.deserialize(_json(row["state"]), **self.serde_kwargs)
        history = None
        if LENGTH in lean:
            history = decode_messages(row[6] or ())
            self._remember(partition, app_id, len(history))
        return {
            "partition_key": partition,
            "app_id": row["app_id"],
            "sequence_id": row["sequence_id"],
            "position": row["position"],
            "state": lean if history is None else full_state(lean, history),
            "created_at": row["created_at"],
            "status": row["status"],
        }

    async def messages(
        self, partition_key: Optional[str], app_id: str, limit: Optional[int] = None
    ) -> list[dict]:
        """The first ``limit`` messages of a conversation (all of them without a limit)."""
        async with self.pool.acquire() as conn:
            return await self._messages(conn, self._partition(partition_key), app_id, limit)

    async def _messages(
        self, conn: Any, partition: str, app_id: Optional[str], limit: Optional[int] = None
    ) -> list[dict]:
        rows = await conn.fetch(
            f"SELECT message FROM {self.messages_table} WHERE partition_key = $1 AND app_id = $2 "
            "AND idx < $3 ORDER BY idx",
            partition,
            app_id,
            limit if limit is not None else 2**31 - 1,
        )
        return decode_messages([row[0] for row in rows])


async def _keep_session(connection: asyncpg.Connection) -> None:
    """What a connection given back to the pool needs beyond asyncpg's own rollback of a
    transaction left open: nothing. The store sets no session settings, opens no cursors,
    listens on a connection of its own and holds a session lock only while it creates the
    schema; asyncpg's default would be one more round trip of four statements per use."""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _create_lease_notifications(conn: Any) -> None:
    """Triggers that notify ``c:<project>/<conversation>`` on :data:`CHANNEL` when a turn
    starts or ends (a lease row written with another token, or ended), in the statement that
    writes it: the watchers of ``GET /events`` on every process are woken, none polls."""
    await conn.execute(
        f"""CREATE OR REPLACE FUNCTION {LEASES}_changed() RETURNS trigger AS $$
            BEGIN
              PERFORM pg_notify('{CHANNEL}', 'c:' || NEW.project_id || '/' || NEW.app_id);
              RETURN NULL;
            END $$ LANGUAGE plpgsql"""
    )
    changed = "OLD.token IS DISTINCT FROM NEW.token OR OLD.done IS DISTINCT FROM NEW.done"
    for name, when in (
        ("started", f"AFTER INSERT ON {LEASES} FOR EACH ROW"),
        ("changed", f"AFTER UPDATE OF token, done ON {LEASES} FOR EACH ROW WHEN ({changed})"),
    ):
        await conn.execute(
            f"""DO $$ BEGIN
                  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = '{LEASES}_{name}'
                                 AND tgrelid = '{LEASES}'::regclass) THEN
                    CREATE TRIGGER {LEASES}_{name} {when}
                      EXECUTE FUNCTION {LEASES}_changed();
                  END IF;
                END $$"""
        )


class PostgresStore(Store):
    """The store on a PostgreSQL database (see this module's description)."""

    def __init__(self, url: str, owner: str, pool_size: int = 20) -> None:
        self.url = url
        self.pool_size = pool_size
        self.owner = owner
        self._pool: Optional[asyncpg.Pool] = None
        self._persister: Optional[ChatPostgresPersister] = None
        self._listener: Optional[asyncpg.Connection] = None
        self._waiters: dict[str, list[asyncio.Event]] = {}
        self._on_stop: Optional[Callable[[str, str], None]] = None
        self._on_change: Optional[Callable[[Optional[str], Optional[str]], None]] = None
        self._reconnecting: Optional[asyncio.Task] = None

    @property
    def notifies(self) -> bool:
        """True while the listening connection is up (without it, stop requests are polled)."""
        return self._listener is not None and not self._listener.is_closed()

    async def open(self) -> None:
        where = public_url(self.url)
        try:
            # No floor of idle connections: asyncpg would log a traceback every second while
            # the database is away, trying to keep it.
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=0,
                max_size=self.pool_size,
                reset=_keep_session,
                timeout=CONNECT_TIMEOUT_S,
                command_timeout=COMMAND_TIMEOUT_S,
            )
            self._persister = ChatPostgresPersister(self._pool)
            await self._persister.initialize()
            await self._listen()
        except (
            OSError,
            asyncio.TimeoutError,
            asyncpg.PostgresError,
            asyncpg.InterfaceError,
            ValueError,
        ) as exc:
            await self.aclose()
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            for secret in secrets_of(self.url):  # (a driver's message may quote the URL)
                reason = reason.replace(secret, "***")
            raise StoreError(f"cannot use the PostgreSQL database at {where}: {reason}") from None

    async def _listen(self) -> None:
        listener = await asyncpg.connect(self.url, timeout=CONNECT_TIMEOUT_S)
        await listener.add_listener(CHANNEL, self._notified)
        listener.add_termination_listener(self._listener_lost)
        self._listener = listener

    def _listener_lost(self, connection: Any) -> None:
        if self._listener is connection and self._reconnecting is None:
            logger.warning("Lost the PostgreSQL notification connection; reconnecting")
            self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """Listen again once the database is back (meanwhile stop requests are polled and
        readers on other processes poll every second)."""
        try:
            while self._pool is not None:
                await asyncio.sleep(1.0)
                try:
                    await self._listen()
                except (
                    OSError,
                    asyncio.TimeoutError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ):
                    continue
                logger.warning("Listening for PostgreSQL notifications again")
                # Followers may have missed wake-ups while nobody listened.
                for events in self._waiters.values():
                    for event in events:
                        event.set()
                if self._on_change is not None:
                    self._on_change(None, None)
                return
        finally:
            self._reconnecting = None

    async def aclose(self) -> None:
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            try:
                await asyncio.wait_for(listener.close(), 5)
            except Exception:
                listener.terminate()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), 5)
            except Exception:
                pool.terminate()

    def _notified(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        kind, _, rest = payload.partition(":")
        if kind == "e":
            for event in self._waiters.get(rest, ()):
                event.set()
        elif kind == "s" and self._on_stop is not None:
            project_id, _, app_id = rest.partition("/")
            self._on_stop(project_id, app_id)
        elif kind in ("c", "b") and self._on_change is not None:  # (b: a branch of a root)
            project_id, _, app_id = rest.partition("/")
            self._on_change(project_id, app_id)

    def on_change(self, callback: Callable[[Optional[str], Optional[str]], None]) -> None:
        self._on_change = callback

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
        if branch:  # a branch just made (its first save): tell the tabs of its tree
            await self.pool.execute(
                "SELECT pg_notify($1, $2)", CHANNEL, f"b:{project_id}/{branch['root']}"
            )

    def on_stop_request(self, callback: Callable[[str, str], None]) -> None:
        self._on_stop = callback

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("the PostgreSQL store is not open")
        return self._pool

    async def persister(self, project_id: str, create: bool = True) -> ChatPostgresPersister:
        if self._persister is None:
            raise StoreError("the PostgreSQL store is not open")
        return self._persister

    def partition_key(self, project_id: str) -> Optional[str]:
        return project_id

    async def sequence_id(self, project_id: str, app_id: str) -> Optional[int]:
        return await self.pool.fetchval(
            f"SELECT max(sequence_id) FROM {TABLE} WHERE partition_key = $1 AND app_id = $2",
            project_id,
            app_id,
        )

    async def list_conversations(self, project_id: str, limit: int) -> list[ConversationSummary]:
        rows = await self.pool.fetch(
            f"{SUMMARIES} WHERE s.partition_key = $1 ORDER BY s.created_at DESC LIMIT $2",
            project_id,
            limit,
        )
        return [summary(*row) for row in rows]

    async def branches(self, project_id: str, root: str) -> list[ConversationSummary]:
        rows = await self.pool.fetch(
            f"""{SUMMARIES}
                WHERE s.partition_key = $1
                  AND (s.app_id = $2 OR (s.state::jsonb) -> '{BRANCH}' ->> 'root' = $2)
                ORDER BY (s.state::jsonb) -> '{BRANCH}' ->> 'created' NULLS FIRST""",
            project_id,
            root,
        )
        return [summary(*row) for row in rows]

    async def acquire(
        self, project_id: str, app_id: str, token: str, lease_s: float
    ) -> Optional[Lease]:
        # The usual case in one statement: the last turn ended, or was this process's own.
        taken = await self.pool.fetch(
            f"""INSERT INTO {LEASES} (project_id, app_id, token, owner, expires_at)
                VALUES ($1, $2, $3, $4, clock_timestamp() + $5 * interval '1 second')
                ON CONFLICT (project_id, app_id) DO UPDATE SET token = excluded.token,
                  owner = excluded.owner, expires_at = excluded.expires_at, done = FALSE,
                  stop = FALSE, finished_at = NULL, watched_at = NULL
                WHERE {LEASES}.done OR {LEASES}.owner = $4
                RETURNING (SELECT max(sequence_id) FROM {TABLE}
                            WHERE partition_key = $1 AND app_id = $2)""",
            project_id,
            app_id,
            token,
            self.owner,
            lease_s,
        )
        if taken:
            return Lease(sequence_id=taken[0][0], orphan=None)
        async with self.pool.acquire() as conn, conn.transaction():  # held elsewhere: alive?
            row = await conn.fetchrow(
                f"""SELECT token, owner, done, expires_at < clock_timestamp() AS expired
                    FROM {LEASES} WHERE project_id = $1 AND app_id = $2 FOR UPDATE""",
                project_id,
                app_id,
            )
            if row is None:  # (rows are never deleted; stay correct if one is)
                return await self.acquire(project_id, app_id, token, lease_s)
            if row["done"] or row["owner"] == self.owner:
                orphan = None  # (it ended since the statement above)
            elif not row["expired"] and not owner_is_gone(row["owner"], self.owner):
                return None
            else:
                orphan = row["token"]
            await conn.execute(
                f"""UPDATE {LEASES} SET token = $3, owner = $4,
                      expires_at = clock_timestamp() + $5 * interval '1 second',
                      done = FALSE, stop = FALSE, finished_at = NULL, watched_at = NULL
                    WHERE project_id = $1 AND app_id = $2""",
                project_id,
                app_id,
                token,
                self.owner,
                lease_s,
            )
            sequence_id = await conn.fetchval(
                f"SELECT max(sequence_id) FROM {TABLE} WHERE partition_key = $1 AND app_id = $2",
                project_id,
                app_id,
            )
        return Lease(sequence_id=sequence_id, orphan=orphan)

    async def renew(self, project_id: str, tokens: Sequence[str], lease_s: float) -> None:
        await self.pool.execute(
            f"""UPDATE {LEASES} SET expires_at = clock_timestamp() + $3 * interval '1 second'
                WHERE owner = $1 AND NOT done AND token = ANY($2::text[])""",
            self.owner,
            list(tokens),
            lease_s,
        )

    async def publish(self, project_id: str, batches: Sequence[tuple[str, Batch]]) -> None:
        rows = [
            (token, batch.first, batch.first + len(batch.events) - 1, pack_events(batch.events))
            for token, batch in batches
            if batch.events
        ]
        if not rows:
            return
        # One statement: the batches as arrays, and a wake-up per turn, delivered when it
        # commits to every process listening.
        await self.pool.execute(
            f"""WITH written AS (
                  INSERT INTO {EVENTS} (token, first, last, payload)
                  SELECT * FROM unnest($2::text[], $3::integer[], $4::integer[], $5::text[]))
                SELECT pg_notify($1, 'e:' || token) FROM unnest($6::text[]) AS token""",
            CHANNEL,
            *(list(column) for column in zip(*rows, strict=True)),
            sorted({row[0] for row in rows}),
        )

    async def finish(self, project_id: str, app_id: str, token: str, last: Optional[Batch]) -> None:
        # One statement (one transaction): the last events, the lease's end (only if it is
        # still this turn's), and the wake-up for readers on other processes.
        end = f"""ended AS (
              UPDATE {LEASES} SET done = TRUE, finished_at = clock_timestamp()
              WHERE project_id = $2 AND app_id = $3 AND token = $4)
            SELECT pg_notify($1, 'e:' || $4::text)"""
        if last is None or not last.events:
            await self.pool.execute(f"WITH {end}", CHANNEL, project_id, app_id, token)
            return
        await self.pool.execute(
            f"""WITH written AS (
                  INSERT INTO {EVENTS} (token, first, last, payload) VALUES ($4, $5, $6, $7)),
                {end}""",
            CHANNEL,
            project_id,
            app_id,
            token,
            last.first,
            last.first + len(last.events) - 1,
            pack_events(last.events),
        )

    async def current(self, project_id: str, app_id: str) -> Optional[TurnRecord]:
        return (await self.current_of(project_id, [app_id]))[app_id]

    async def current_of(
        self, project_id: str, app_ids: Sequence[str]
    ) -> dict[str, Optional[TurnRecord]]:
        found: dict[str, Optional[TurnRecord]] = dict.fromkeys(app_ids)
        if not app_ids:
            return found
        rows = await self.pool.fetch(
            f"""SELECT app_id, token, owner, done,
                  NOT done AND expires_at < clock_timestamp() AS expired,
                  EXTRACT(EPOCH FROM clock_timestamp() - finished_at)::float8 AS finished_ago
                FROM {LEASES} WHERE project_id = $1 AND app_id = ANY($2::text[])""",
            project_id,
            list(app_ids),
        )
        for row in rows:
            found[row["app_id"]] = TurnRecord(
                token=row["token"],
                owner=row["owner"],
                done=row["done"],
                expired=row["expired"]
                or (not row["done"] and owner_is_gone(row["owner"], self.owner)),
                finished_ago_s=row["finished_ago"],
            )
        return found

    async def events(self, project_id: str, token: str, start: int) -> list[Batch]:
        rows = await self.pool.fetch(
            f"SELECT first, payload FROM {EVENTS} WHERE token = $1 AND last >= $2 ORDER BY first",
            token,
            start,
        )
        return [Batch(row[0], unpack_events(row[1])) for row in rows]

    async def watch(self, project_id: str, app_id: str, token: str) -> None:
        await self.pool.execute(
            f"""UPDATE {LEASES} SET watched_at = clock_timestamp()
                WHERE project_id = $1 AND app_id = $2 AND token = $3""",
            project_id,
            app_id,
            token,
        )

    async def watched(self, project_id: str, app_id: str, token: str, within_s: float) -> bool:
        return bool(
            await self.pool.fetchval(
                f"""SELECT count(*) FROM {LEASES}
                    WHERE project_id = $1 AND app_id = $2 AND token = $3
                      AND watched_at >= clock_timestamp() - $4 * interval '1 second'""",
                project_id,
                app_id,
                token,
                within_s,
            )
        )

    async def request_stop(self, project_id: str, app_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            status = await conn.execute(
                f"""UPDATE {LEASES} SET stop = TRUE
                    WHERE project_id = $1 AND app_id = $2 AND NOT done
                      AND expires_at >= clock_timestamp()""",
                project_id,
                app_id,
            )
            if status.endswith(" 0"):
                return False
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, f"s:{project_id}/{app_id}")
        return True

    async def stop_requests(self, project_id: str) -> list[str]:
        rows = await self.pool.fetch(
            f"SELECT token FROM {LEASES} WHERE project_id = $1 AND owner = $2 AND NOT done AND stop",
            project_id,
            self.owner,
        )
        return [row[0] for row in rows]

    async def prune(self, project_id: str, keep_s: float) -> None:
        await self.pool.execute(
            f"""DELETE FROM {EVENTS} e WHERE NOT EXISTS (
                  SELECT 1 FROM {LEASES} l WHERE l.token = e.token
                    AND (NOT l.done OR l.finished_at >= clock_timestamp() - $1 * interval '1 second'))""",
            keep_s,
        )

    async def wait(self, token: str, timeout: float) -> None:
        event = asyncio.Event()
        waiters = self._waiters.setdefault(token, [])
        waiters.append(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        finally:
            waiters.remove(event)
            if not waiters:
                del self._waiters[token]

    async def claim(self, project_id: str, app_id: str, user: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"""INSERT INTO {OWNERS} (project_id, app_id, user_id)
                    SELECT $1, $2, $3 WHERE NOT EXISTS (
                      SELECT 1 FROM {TABLE} WHERE partition_key = $1 AND app_id = $2)
                    ON CONFLICT (project_id, app_id) DO NOTHING""",
                project_id,
                app_id,
                user,
            )
            # (A statement of its own: it sees the row of a claim that won a race with this one.)
            owner = await conn.fetchval(
                f"SELECT user_id FROM {OWNERS} WHERE project_id = $1 AND app_id = $2",
                project_id,
                app_id,
            )
        return bool(owner == user)

    async def owner_of(self, project_id: str, app_id: str) -> Optional[str]:
        row = await self.pool.fetchrow(
            f"""SELECT (SELECT user_id FROM {OWNERS} WHERE project_id = $1 AND app_id = $2),
                       EXISTS (SELECT 1 FROM {TABLE} WHERE partition_key = $1 AND app_id = $2)""",
            project_id,
            app_id,
        )
        user, stored = (row[0], row[1]) if row is not None else (None, False)
        return user if user is not None else (UNOWNED if stored else None)

    async def owners(self, project_id: str, app_ids: Sequence[str]) -> dict[str, str]:
        rows = await self.pool.fetch(
            f"SELECT app_id, user_id FROM {OWNERS} WHERE project_id = $1 AND app_id = ANY($2)",
            project_id,
            list(app_ids),
        )
        return {row[0]: row[1] for row in rows}

    async def list_owned(self, project_id: str, user: str, limit: int) -> list[ConversationSummary]:
        rows = await self.pool.fetch(
            f"""{SUMMARIES}
                JOIN {OWNERS} o ON o.project_id = s.partition_key AND o.app_id = s.app_id
                WHERE s.partition_key = $1 AND o.user_id = $2
                ORDER BY s.created_at DESC LIMIT $3""",
            project_id,
            user,
            limit,
        )
        return [summary(*row) for row in rows]

    async def add_note(self, project_id: str, app_id: str, text: str) -> dict[str, Any]:
        row = await self.pool.fetchrow(
            f"""INSERT INTO {NOTES} (project_id, app_id, text) VALUES ($1, $2, $3)
                RETURNING id, text, app_id, created_at""",
            project_id,
            app_id,
            storable_text(text),
        )
        return _note(row)

    async def notes(
        self, project_id: str, *, owner: Optional[str] = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        if limit < 1:
            return []
        if owner is None:
            rows = await self.pool.fetch(
                f"""SELECT id, text, app_id, created_at FROM {NOTES}
                    WHERE project_id = $1 ORDER BY id DESC LIMIT $2""",
                project_id,
                limit,
            )
        else:
            rows = await self.pool.fetch(
                f"""SELECT n.id, n.text, n.app_id, n.created_at FROM {NOTES} n
                    JOIN {OWNERS} o ON o.project_id = n.project_id AND o.app_id = n.app_id
                    WHERE n.project_id = $1 AND o.user_id = $2 ORDER BY n.id DESC LIMIT $3""",
                project_id,
                owner,
                limit,
            )
        return [_note(row) for row in rows]

    async def rename(self, project_id: str, app_id: str, title: str) -> bool:
        renamed = await self.pool.fetchval(
            f"""INSERT INTO {TITLES} (project_id, app_id, title)
                SELECT $1, $2, $3 WHERE EXISTS (
                  SELECT 1 FROM {TABLE} WHERE partition_key = $1 AND app_id = $2)
                ON CONFLICT (project_id, app_id) DO UPDATE SET title = excluded.title
                RETURNING app_id""",
            project_id,
            app_id,
            storable_text(title),
        )
        return renamed is not None

    async def delete(self, project_id: str, app_id: str) -> bool:
        async with self.pool.acquire() as conn, conn.transaction():
            gone = await conn.fetchval(
                f"""DELETE FROM {TABLE} WHERE partition_key = $1 AND app_id = $2
                    RETURNING app_id""",
                project_id,
                app_id,
            )
            if gone is None:
                return False
            await conn.execute(
                f"DELETE FROM {TABLE}_messages WHERE partition_key = $1 AND app_id = $2",
                project_id,
                app_id,
            )
            await conn.execute(
                f"DELETE FROM {TITLES} WHERE project_id = $1 AND app_id = $2", project_id, app_id
            )
            await conn.execute(
                f"""INSERT INTO {DELETED} (project_id, app_id) VALUES ($1, $2)
                    ON CONFLICT (project_id, app_id) DO UPDATE SET deleted_at = clock_timestamp()""",
                project_id,
                app_id,
            )
        return True

    async def is_deleted(self, project_id: str, app_id: str) -> bool:
        found = await self.pool.fetchval(
            f"SELECT 1 FROM {DELETED} WHERE project_id = $1 AND app_id = $2", project_id, app_id
        )
        return found is not None

    async def find(
        self,
        project_id: str,
        words: Sequence[str],
        limit: int,
        offset: int = 0,
        owner: Optional[str] = None,
    ) -> list[ConversationSummary]:
        # The page's ids first (an index scan, or the index's matches sorted), then the
        # summaries of those rows only: a summary reads JSON that is costly to read for all.
        page = f"SELECT p.app_id FROM {TABLE} p"
        parameters: list[Any] = [project_id]
        conditions = ["p.partition_key = $1"]
        if owner is not None:
            page += f" JOIN {OWNERS} o ON o.project_id = p.partition_key AND o.app_id = p.app_id"
            parameters.append(owner)
            conditions.append(f"o.user_id = ${len(parameters)}")
        if words:
            parameters.append(tsquery(words))
            match = f"search @@ to_tsquery('simple', ${len(parameters)})"
            conditions.append(
                f"""p.app_id IN (
                    SELECT app_id FROM {TABLE}_messages WHERE partition_key = $1 AND {match}
                    UNION SELECT app_id FROM {TITLES} WHERE project_id = $1 AND {match})"""
            )
        parameters += [limit, offset]
        page += f""" WHERE {" AND ".join(conditions)} ORDER BY p.created_at DESC
            LIMIT ${len(parameters) - 1} OFFSET ${len(parameters)}"""
        rows = await self.pool.fetch(
            f"""{SUMMARIES} WHERE s.partition_key = $1 AND s.app_id IN ({page})
                ORDER BY s.created_at DESC""",
            *parameters,
        )
        return [summary(*row) for row in rows]


def _note(row: Any) -> dict[str, Any]:
    """A note as :meth:`.Store.notes` lists it (its time as ISO 8601 text, in UTC)."""
    created_at = row["created_at"].astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return {"id": row["id"], "text": row["text"], "app_id": row["app_id"], "created_at": created_at}


def tsquery(words: Sequence[str]) -> str:
    """A ``to_tsquery`` text for text holding every one of ``words`` (each a prefix), each
    quoted so that nothing in it is read as query syntax."""
    return " & ".join("'" + word.replace("'", "''").replace("\\", "\\\\") + "':*" for word in words)
