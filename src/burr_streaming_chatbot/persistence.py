"""How a conversation is stored and tracked, so that neither grows with the square of its length.

Burr's persister and tracker write the whole state after every step, and the state holds the
whole chat history: a conversation of n turns writes O(n²) bytes. Two small subclasses of
Burr's own classes keep each step's writes constant:

* :class:`ChatStatePersister` is Burr's ``AsyncSQLitePersister`` with the history stored
  append-only in a table of its own (one row per message, written once) and one state row per
  conversation (the latest; older rows are deleted in the same transaction).
* :class:`ChatTrackingClient` is Burr's ``LocalTrackingClient`` logging, after each step, the
  last few messages and the history's length instead of the whole history. Burr's UI still
  shows every step, its inputs, its result and the messages it added.
"""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any, Optional

from burr.core import State
from burr.integrations.persisters.b_aiosqlite import AsyncSQLitePersister
from burr.lifecycle import PostRunStepHookAsync
from burr.tracking import LocalTrackingClient
from burr.tracking.common.models import ApplicationMetadataModel, ApplicationModel

HISTORY = "chat_history"
LENGTH = "chat_history_length"
"""Stored in place of the history: how many messages it had at this step."""


class ChatStatePersister(AsyncSQLitePersister):
    """Burr's SQLite persister, with the chat history stored once per message."""

    def __init__(self, connection: Any, table_name: str = "burr_state", serde_kwargs: Optional[dict] = None):
        super().__init__(connection, table_name, serde_kwargs)
        self.messages_table = f"{table_name}_messages"
        self._lengths: dict[tuple[str, str], int] = {}
        self.lock = asyncio.Lock()
        """Held for each use of the connection: the conversations of a project share it, and
        their statements must not interleave (one conversation's commit in the middle of
        another's save; sqlite3 refuses a statement while another is half-read)."""

    async def initialize(self) -> None:
        """Create Burr's state table and the messages table."""
        await super().initialize()
        await self.connection.execute(
            f"""CREATE TABLE IF NOT EXISTS {self.messages_table} (
                partition_key TEXT NOT NULL,
                app_id TEXT NOT NULL,
                idx INTEGER NOT NULL,
                message TEXT NOT NULL,
                PRIMARY KEY (partition_key, app_id, idx)
            )"""
        )
        await self.connection.commit()

    def _partition(self, partition_key: Optional[str]) -> str:
        return partition_key if partition_key is not None else self.PARTITION_KEY_DEFAULT

    async def _stored_length(self, partition_key: str, app_id: str) -> int:
        key = (partition_key, app_id)
        if key not in self._lengths:
            async with self.connection.execute(
                f"SELECT COUNT(*) FROM {self.messages_table} WHERE partition_key = ? AND app_id = ?",
                key,
            ) as cursor:
                row = await cursor.fetchone()
            self._lengths[key] = int(row[0]) if row else 0
        return self._lengths[key]

    @asynccontextmanager
    async def _transaction(self, key: tuple[str, str]) -> AsyncIterator[None]:
        """Hold the connection for one save; roll it back if the save fails or is cancelled
        half-way, so the next commit (of any conversation) cannot persist half of it."""
        async with self.lock:
            try:
                yield
            except BaseException:
                self._lengths.pop(key, None)
                await asyncio.shield(self.connection.rollback())
                raise

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
        """Append the new messages, and replace the conversation's state row, in one transaction."""
        key_partition = self._partition(partition_key)
        async with self._transaction((key_partition, app_id)):
            history = state.get(HISTORY, [])
            stored = await self._stored_length(key_partition, app_id)
            if len(history) < stored:  # never happens in this chatbot; stay correct if it does
                await self.connection.execute(
                    f"DELETE FROM {self.messages_table} WHERE partition_key = ? AND app_id = ? AND idx >= ?",
                    (key_partition, app_id, len(history)),
                )
                stored = len(history)
            if len(history) > stored:
                await self.connection.executemany(
                    f"INSERT OR REPLACE INTO {self.messages_table} (partition_key, app_id, idx, message) "
                    "VALUES (?, ?, ?, ?)",
                    [
                        (key_partition, app_id, index, json.dumps(message, ensure_ascii=False))
                        for index, message in enumerate(history[stored:], start=stored)
                    ],
                )
            # Built by hand: Burr's wipe/update deep-copy the field they touch (the whole history).
            fields = {key: value for key, value in state.get_all().items() if key != HISTORY}
            lean = State({**fields, LENGTH: len(history)})
            await self.connection.execute(
                f"DELETE FROM {self.table_name} WHERE partition_key = ? AND app_id = ?",
                (key_partition, app_id),
            )
            await self.connection.execute(
                f"INSERT INTO {self.table_name} (partition_key, app_id, sequence_id, position, state, status) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key_partition,
                    app_id,
                    sequence_id,
                    position,
                    json.dumps(lean.serialize(**self.serde_kwargs), ensure_ascii=False),
                    status,
                ),
            )
            await self.connection.commit()
            self._lengths[(key_partition, app_id)] = len(history)

    async def load(
        self,
        partition_key: Optional[str],
        app_id: Optional[str],
        sequence_id: Optional[int] = None,
        **kwargs: Any,
    ) -> Optional[dict]:
        """The conversation's latest state, with its history read back in order."""
        async with self.lock:
            loaded = await super().load(partition_key, app_id, sequence_id, **kwargs)
            if loaded is None or LENGTH not in loaded["state"]:
                return loaded  # nothing, or a row written by Burr's own persister: use it as is
            history = await self._messages(
                loaded["partition_key"], loaded["app_id"], loaded["state"][LENGTH]
            )
        fields = {k: v for k, v in loaded["state"].get_all().items() if k != LENGTH}
        loaded["state"] = State({**fields, HISTORY: history})
        self._lengths[(loaded["partition_key"], loaded["app_id"])] = len(history)
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
        key_partition = self._partition(partition_key)
        async with self.connection.execute(
            f"SELECT message FROM {self.messages_table} WHERE partition_key = ? AND app_id = ? "
            "AND idx < ? ORDER BY idx",
            (key_partition, app_id, limit if limit is not None else 2**62),
        ) as cursor:
            rows = await cursor.fetchall()
        # One parse of one array: a third of the time of a json.loads per message.
        return json.loads("[" + ",".join(row[0] for row in rows) + "]")


class SaveAfter(PostRunStepHookAsync):
    """Persist the state after the named actions only (Burr's ``with_state_persister`` saves
    after every one). Saving after ``prompt`` and after each answer is all a turn needs: a
    conversation always resumes at ``prompt``, so the steps in between need not be durable,
    and the first delta waits for one write instead of three."""

    def __init__(self, persister: AsyncSQLitePersister, actions: Collection[str]) -> None:
        self.persister = persister
        self.actions = frozenset(actions)

    async def post_run_step(
        self,
        *,
        app_id: str,
        partition_key: Optional[str],
        sequence_id: int,
        state: State,
        action: Any,
        exception: Optional[Exception],
        **future_kwargs: Any,
    ) -> None:
        if exception is None and action.name in self.actions:
            await self.persister.save(partition_key, app_id, sequence_id, action.name, state, "completed")


_GRAPHS: dict[tuple[int, ...], str] = {}
"""The tracker's ``graph.json`` per graph, serialized once per process."""


class ChatTrackingClient(LocalTrackingClient):
    """Burr's local tracker, logging the last ``recent_messages`` of the history after each step."""

    def post_application_create(self, *, app_id: str, partition_key: Optional[str], **kwargs: Any) -> None:
        """Write ``graph.json`` from a copy made once per process (Burr's tracker reads the
        source of every action again for each new conversation), then let Burr do the rest."""
        folder = os.path.join(self.storage_dir, app_id)
        graph_path = os.path.join(folder, self.GRAPH_FILENAME)
        graph = kwargs.get("application_graph")
        if graph is not None and not os.path.exists(graph_path):
            key = tuple(id(action) for action in graph.actions)
            if key not in _GRAPHS:
                if len(_GRAPHS) >= 16:  # graphs are built once; this only guards the memory
                    _GRAPHS.clear()
                _GRAPHS[key] = json.dumps(ApplicationModel.from_application_graph(graph).model_dump())
            self._ensure_dir_structure(app_id)
            with open(graph_path, "w", encoding="utf-8") as file:
                file.write(_GRAPHS[key])
            metadata_path = os.path.join(folder, self.METADATA_FILENAME)
            if not os.path.exists(metadata_path) and not kwargs.get("parent_pointer"):
                metadata = ApplicationMetadataModel(partition_key=partition_key).model_dump()
                with open(metadata_path, "w", encoding="utf-8") as file:
                    file.write(json.dumps(metadata))  # (json.dump's encoder is a reference cycle)
        super().post_application_create(app_id=app_id, partition_key=partition_key, **kwargs)

    def __init__(self, *args: Any, recent_messages: int = 4, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recent_messages = recent_messages

    def close(self) -> None:
        """Close the log file (Burr's tracker keeps it open until it is garbage-collected)."""
        if self.f is not None:
            self.f.close()
            self.f = None

    def post_run_step(self, *, state: State, **kwargs: Any) -> None:
        """Log the step with the history cut to its last messages (and its full length)."""
        history = state.get(HISTORY)
        if isinstance(history, list) and len(history) > self.recent_messages:
            recent = history[-self.recent_messages :] if self.recent_messages else []
            state = state.merge(State({HISTORY: recent, LENGTH: len(history)}))  # shallow
        super().post_run_step(state=state, **kwargs)
