"""Conversations: a Burr ``Application`` built for each turn from the conversation's state,
which is persisted, cached here between turns, and listed (the router's live turns make sure
one turn at a time runs in each).

State is persisted after every step (one SQLite file per project, beside Burr's tracking
folders, so Burr's UI does not mistake it for a project), and every step is tracked in Burr's
local tracking format so Burr's UI shows each conversation; see :mod:`.persistence` for how
both stay constant-size per step. Resuming reads one row and the messages, never the
tracking log.

Between turns only the state is kept, not the application: building one from the shared graph
takes well under a millisecond, while a kept application is about 120 objects (its own copy of
the graph, its builder, its hooks) that every full garbage collection has to scan, which held
every stream's next delta 40 to 70 ms with a few hundred conversations in memory.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from pathlib import Path
from typing import Any, NamedTuple, Optional

from burr.core import Application, ApplicationBuilder, State
from burr.core.graph import Graph

from .events import ConversationSummary
from .graph import TERMINAL_ACTIONS
from .persistence import ChatStatePersister, ChatTrackingClient, SaveAfter
from .settings import Settings

Key = tuple[str, str]
TABLE = "burr_state"
SAVED_AFTER = ("prompt", *TERMINAL_ACTIONS)
"""The steps after which a conversation's state is persisted (see :class:`.SaveAfter`)."""


def state_db_path(storage_dir: Path, project_id: str) -> Path:
    """Where a project's conversation state lives: a hidden file beside Burr's folders."""
    return storage_dir / f".streaming-chatbot.{project_id}.sqlite3"


class Saved(NamedTuple):
    """A conversation between turns: its state and the sequence id of its last step."""

    state: State
    sequence_id: Optional[int]


class Conversations:
    """Builds each turn's application, keeps conversations' state between turns (LRU,
    bounded), and lists conversations."""

    def __init__(self, graph: Graph, settings: Settings) -> None:
        self.graph = graph
        self.settings = settings
        self._saved: OrderedDict[Key, Saved] = OrderedDict()
        self._running: dict[Key, Application] = {}
        self._persisters: dict[str, ChatStatePersister] = {}
        self._opening = asyncio.Lock()

    async def _persister(self, project_id: str) -> ChatStatePersister:
        persister = self._persisters.get(project_id)
        if persister is not None:
            return persister
        async with self._opening:
            if project_id not in self._persisters:
                path = state_db_path(self.settings.storage_dir, project_id)
                path.parent.mkdir(parents=True, exist_ok=True)
                persister = await ChatStatePersister.from_values(db_path=str(path), table_name=TABLE)
                await persister.connection.execute("PRAGMA journal_mode=WAL")
                await persister.connection.execute("PRAGMA synchronous=NORMAL")
                await persister.initialize()
                self._persisters[project_id] = persister
        return self._persisters[project_id]

    @property
    def cached(self) -> int:
        """How many conversations' state is in memory."""
        return len(self._saved)

    async def _saved_state(self, persister: ChatStatePersister, key: Key) -> Saved:
        saved = self._saved.get(key)
        if saved is not None:
            self._saved.move_to_end(key)
            return saved
        loaded = await persister.load(None, key[1])
        if loaded is None:
            return Saved(State({"chat_history": []}), None)
        return Saved(loaded["state"], loaded["sequence_id"])

    async def application(self, project_id: str, app_id: str) -> Application:
        """A Burr application for one turn of the conversation, starting at ``prompt`` with
        its last state. Hand it back with :meth:`finish` when the turn ends."""
        persister = await self._persister(project_id)
        saved = await self._saved_state(persister, (project_id, app_id))
        tracker = ChatTrackingClient(
            project=project_id,
            storage_dir=str(self.settings.storage_dir),
            recent_messages=self.settings.tracked_messages,
        )
        return await (
            ApplicationBuilder()
            .with_graph(self.graph)
            .with_state(saved.state)
            .with_entrypoint("prompt")  # a turn always starts at `prompt`
            .with_hooks(SaveAfter(persister, SAVED_AFTER))
            .with_tracker(tracker)
            .with_identifiers(app_id=app_id, sequence_id=saved.sequence_id)
            .abuild()
        )

    def running(self, project_id: str, app_id: str, app: Application) -> None:
        """Note that ``app`` is running a turn (what :meth:`history` reads meanwhile)."""
        self._running[(project_id, app_id)] = app

    def finish(self, project_id: str, app_id: str, app: Application, completed: bool) -> None:
        """End a turn's application. A completed turn's state is kept for the next turn; after
        any other end, the next turn reloads the last persisted state."""
        key = (project_id, app_id)
        if self._running.get(key) is app:
            del self._running[key]
        if completed:
            self._saved[key] = Saved(app.state, app.sequence_id)
            self._saved.move_to_end(key)
            while len(self._saved) > self.settings.cache_size:
                self._saved.popitem(last=False)
        else:
            self._saved.pop(key, None)
        tracker = app.builder.tracker if app.builder is not None else None
        if isinstance(tracker, ChatTrackingClient):
            tracker.close()
        _release(app)

    async def history(self, project_id: str, app_id: str) -> list[dict[str, Any]]:
        """The conversation's messages; empty for a conversation that does not exist yet."""
        key = (project_id, app_id)
        app = self._running.get(key)
        state = app.state if app is not None else getattr(self._saved.get(key), "state", None)
        if state is not None:
            return list(state.get("chat_history", []))
        persister = await self._persister(project_id)
        return await persister.messages(None, app_id)  # one query; no state to rebuild

    async def list(self, project_id: str, limit: int = 200) -> list[ConversationSummary]:
        """The project's conversations that have at least one step, newest first."""
        persister = await self._persister(project_id)
        # One state row per conversation (see persistence.py); the newest has the largest rowid.
        query = f"""
            SELECT s.app_id, s.created_at, json_extract(m.message, '$.content')
            FROM {TABLE} s
            LEFT JOIN {TABLE}_messages m
              ON m.partition_key = s.partition_key AND m.app_id = s.app_id AND m.idx = 0
            ORDER BY s.rowid DESC
            LIMIT ?
        """
        async with persister.lock, persister.connection.execute(query, (limit,)) as cursor:
            rows = await cursor.fetchall()
        return [
            ConversationSummary(app_id=app_id, updated_at=str(updated), title=_title(first))
            for app_id, updated, first in rows
        ]

    async def aclose(self) -> None:
        """Close the SQLite connections."""
        for persister in self._persisters.values():
            await persister.connection.close()
        self._persisters.clear()
        self._saved.clear()


def _release(app: Application) -> None:
    """Break the one reference cycle of a Burr application (it reaches itself through its
    dependency factories, apache-burr 0.42 and 0.43), so reference counting frees it as soon as the
    turn lets go, instead of leaving ~120 objects for the full garbage collector."""
    factories = getattr(app, "_dependency_factory", None)
    if isinstance(factories, dict):
        factories.clear()


def _title(text: Optional[str], limit: int = 60) -> Optional[str]:
    if not text:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
