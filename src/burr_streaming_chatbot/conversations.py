"""Conversations: one Burr ``Application`` per ``(project_id, app_id)``, loaded, persisted and
cached here (the router's live turns make sure one turn at a time runs in each).

State is persisted after every step (one SQLite file per project, beside Burr's tracking
folders, so Burr's UI does not mistake it for a project), and every step is tracked in Burr's
local tracking format so Burr's UI shows each conversation; see :mod:`.persistence` for how
both stay constant-size per step. Resuming reads one row and the messages, never the
tracking log.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

from burr.core import Application, ApplicationBuilder
from burr.core.graph import Graph

from .events import ConversationSummary
from .graph import TERMINAL_ACTIONS
from .persistence import ChatStatePersister, ChatTrackingClient, SaveAfter
from .settings import Settings

Key = tuple[str, str]
TABLE = "burr_state"


def state_db_path(storage_dir: Path, project_id: str) -> Path:
    """Where a project's conversation state lives: a hidden file beside Burr's folders."""
    return storage_dir / f".streaming-chatbot.{project_id}.sqlite3"


class Conversations:
    """Loads, caches (LRU, bounded) and lists conversations."""

    def __init__(
        self, graph: Graph, settings: Settings, in_use: Callable[[Key], bool] = lambda key: False
    ) -> None:
        self.graph = graph
        self.settings = settings
        self._in_use = in_use
        self._apps: OrderedDict[Key, Application] = OrderedDict()
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
        """How many applications are in memory."""
        return len(self._apps)

    async def application(self, project_id: str, app_id: str) -> Application:
        """The conversation's Burr application, from the cache or built from persisted state."""
        key = (project_id, app_id)
        app = self._apps.get(key)
        if app is not None:
            self._apps.move_to_end(key)
            return app
        persister = await self._persister(project_id)
        tracker = ChatTrackingClient(
            project=project_id,
            storage_dir=str(self.settings.storage_dir),
            recent_messages=self.settings.tracked_messages,
        )
        app = await (
            ApplicationBuilder()
            .with_graph(self.graph)
            .initialize_from(
                persister,
                resume_at_next_action=False,  # a turn always starts at `prompt`
                default_state={"chat_history": []},
                default_entrypoint="prompt",
            )
            .with_hooks(SaveAfter(persister, ("prompt", *TERMINAL_ACTIONS)))
            .with_tracker(tracker)
            .with_identifiers(app_id=app_id)
            .abuild()
        )
        self._apps[key] = app
        while len(self._apps) > self.settings.cache_size:
            idle = next((k for k in self._apps if not self._in_use(k) and k != key), None)
            if idle is None:
                break  # every cached application is in the middle of a turn
            del self._apps[idle]
        return app

    def forget(self, project_id: str, app_id: str) -> None:
        """Drop a cached application, so the next turn reloads the last persisted state."""
        self._apps.pop((project_id, app_id), None)

    async def history(self, project_id: str, app_id: str) -> list[dict[str, Any]]:
        """The conversation's messages; empty for a conversation that does not exist yet."""
        app = self._apps.get((project_id, app_id))
        if app is not None:
            return list(app.state.get("chat_history", []))
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
        self._apps.clear()


def _title(text: Optional[str], limit: int = 60) -> Optional[str]:
    if not text:
        return None
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
