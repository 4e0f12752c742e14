"""One watcher per conversation per process, feeding every tab of this process that shows it
(``GET /events``), instead of a poll of the store per tab.

The first tab of a conversation starts its watcher (:class:`.changes.ConversationWatch`), the
last one leaving stops it. One loop per process reads the store for all of them, and only when
something may have changed:

* with an engine that notifies (PostgreSQL: ``LISTEN/NOTIFY``), when a notification says a
  turn of the conversation started or ended, or a branch of its tree was made; plus a slow
  re-read of each conversation (every :data:`RECHECK_S`) in case a notification was lost;
* otherwise (SQLite, or PostgreSQL while its listening connection is down), every
  :data:`TICK_S` it asks the store for the project's change mark, one cheap look per watched
  project (SQLite: ``PRAGMA data_version`` on a connection of its own), and reads the watched
  conversations of a project only when its mark moved.

A turn whose owner died ends without a write (its lease expires): a running turn is re-read
every :data:`RUNNING_RECHECK_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Optional

from .changes import ConversationWatch
from .sse import KEEPALIVE
from .storage.interface import Key, Store, TurnRecord, is_store_error

logger = logging.getLogger(__name__)

TICK_S = 0.1
"""How often the change marks are looked at (engines without notifications)."""
RECHECK_S = 5.0
"""How often each watched conversation is read even when nothing said it changed."""
RUNNING_RECHECK_S = 1.0
"""How often a conversation with a running turn is read (an owner that dies writes nothing)."""
BRANCHES_EVERY_S = 0.4
"""Branches are read at most this often after a change (a turn's start must be quick)."""

_UNSEEN = object()


class Watchers:
    """The watchers of one process (see the module's description)."""

    def __init__(self, store: Store, tick_s: float = TICK_S, recheck_s: float = RECHECK_S) -> None:
        self.store = store
        self.tick_s = tick_s
        self.recheck_s = recheck_s
        self._watches: dict[Key, ConversationWatch] = {}
        self._dirty: set[Key] = set()
        """Conversations whose turn may have changed (read them at the next pass)."""
        self._branches_dirty: set[Key] = set()
        """Conversations whose tree may have a new branch."""
        self._marks: dict[str, Any] = {}
        self._wake = asyncio.Event()
        self._loop_task: Optional[asyncio.Task[None]] = None
        self._forgetting: set[asyncio.Future[None]] = set()
        store.on_change(self.changed)

    @property
    def watching(self) -> int:
        """How many conversations this process watches (one watcher each, however many tabs)."""
        return len(self._watches)

    def followers(self, project_id: str, app_id: str) -> int:
        """How many tabs of this process follow the conversation."""
        watch = self._watches.get((project_id, app_id))
        return len(watch.tabs) if watch is not None else 0

    def changed(self, project_id: Optional[str], app_id: Optional[str]) -> None:
        """Something changed: conversation ``app_id`` (a turn started or ended, or, when it is
        the root of a tree, a branch was made), or everything (``None``: notifications may have
        been lost). Its watcher reads the store at once."""
        if project_id is None or app_id is None:
            self._dirty.update(self._watches)
            self._branches_dirty.update(self._watches)
        else:
            for key, watch in self._watches.items():
                if key[0] == project_id and (key[1] == app_id or watch.root == app_id):
                    self._dirty.add(key)
                    self._branches_dirty.add(key)
        self._wake.set()

    async def follow(
        self, project_id: str, app_id: str, root: str, keepalive_s: float
    ) -> AsyncIterator[bytes]:
        """The changes of conversation ``app_id`` (whose tree's root is ``root``) as SSE blocks,
        until the reader leaves: ``turn_started`` (also first, for a turn already running),
        ``turn_ended``, ``branch_created``; a keepalive comment after ``keepalive_s`` without
        one."""
        key = (project_id, app_id)
        watch = await self._join(key, root)
        tab: asyncio.Queue[bytes] = asyncio.Queue()
        first = watch.opening()
        watch.tabs.add(tab)
        try:
            if first:
                yield first
            while True:
                try:
                    chunk = await asyncio.wait_for(tab.get(), keepalive_s)
                except asyncio.TimeoutError:
                    yield KEEPALIVE
                    continue
                while not tab.empty():
                    chunk += tab.get_nowait()
                yield chunk
        finally:
            watch.tabs.discard(tab)
            self._leave(key, watch)

    async def _join(self, key: Key, root: str) -> ConversationWatch:
        """The conversation's watcher, started (and its first reading done) if none runs."""
        watch = self._watches.get(key)
        if watch is None:
            watch = self._watches[key] = ConversationWatch(key[0], key[1], root)
            watch.loaded = asyncio.ensure_future(self._load(watch))
        assert watch.loaded is not None
        placeholder: asyncio.Queue[bytes] = asyncio.Queue()  # (keeps it while the reading runs)
        watch.tabs.add(placeholder)
        try:
            await asyncio.shield(watch.loaded)
        except BaseException:  # (the reading failed, or this tab left meanwhile)
            watch.tabs.discard(placeholder)
            self._leave(key, watch)
            raise
        watch.tabs.discard(placeholder)
        return watch

    async def _load(self, watch: ConversationWatch) -> None:
        await watch.load(self.store)
        watch.checked_at = asyncio.get_running_loop().time()
        if self._watches.get((watch.project_id, watch.app_id)) is not watch:
            return  # (every tab that waited for it left meanwhile)
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.ensure_future(self._run())

    def _leave(self, key: Key, watch: ConversationWatch) -> None:
        if watch.tabs or self._watches.get(key) is not watch:
            return
        del self._watches[key]
        self._dirty.discard(key)
        self._branches_dirty.discard(key)
        if not any(other[0] == key[0] for other in self._watches):
            self._marks.pop(key[0], None)
            forgetting = asyncio.ensure_future(self._forget(key[0]))
            self._forgetting.add(forgetting)
            forgetting.add_done_callback(self._forgetting.discard)
        if not self._watches:
            self._wake.set()  # (the loop ends)

    async def _forget(self, project_id: str) -> None:
        with contextlib.suppress(Exception):
            await self.store.forget_changes(project_id)

    async def close(self) -> None:
        """Stop the loop (the tabs end with the server)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop_task

    async def _run(self) -> None:
        """The process's loop: one pass per tick, or at once when woken."""
        branches_read_at: dict[Key, float] = {}
        while self._watches:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()
            try:
                await self._pass(branches_read_at)
            except Exception:  # (a bug: the tabs must not all go silent for good)
                logger.exception("GET /events: the watchers' pass failed; trying again")
                await asyncio.sleep(1.0)

    async def _pass(self, branches_read_at: dict[Key, float]) -> None:
        """Read the conversations that changed, or are due for a re-read."""
        if not self.store.notifies:
            for project_id in {key[0] for key in self._watches}:
                await self._look_at_mark(project_id)
        now = asyncio.get_running_loop().time()
        reading: dict[str, list[tuple[ConversationWatch, bool]]] = {}
        for key, watch in list(self._watches.items()):
            due = now - watch.checked_at >= (RUNNING_RECHECK_S if watch.running else self.recheck_s)
            if not due and key not in self._dirty and key not in self._branches_dirty:
                continue
            branches = key in self._branches_dirty or now - watch.checked_at >= self.recheck_s
            if branches and now - branches_read_at.get(key, -BRANCHES_EVERY_S) < BRANCHES_EVERY_S:
                branches = False  # (at a later pass: it stays marked)
            # (unmarked before the reading: a change said while it runs marks it again)
            self._dirty.discard(key)
            if branches:
                self._branches_dirty.discard(key)
            reading.setdefault(key[0], []).append((watch, branches))
        for project_id, watches in reading.items():
            # One reading of the project's turns for all of its conversations read this pass
            # (on SQLite, a change mark that moved marks every watched one).
            turns = await self._turns(project_id, [watch.app_id for watch, _ in watches])
            for watch, branches in watches:
                key = (project_id, watch.app_id)
                if turns is not None and await self._read(watch, branches, turns[watch.app_id]):
                    watch.checked_at = now
                    if branches:
                        branches_read_at[key] = now
                elif key in self._watches:  # (the store failed: look again at the next pass)
                    self._dirty.add(key)
                    if branches:
                        self._branches_dirty.add(key)
        for key in list(branches_read_at):
            if key not in self._watches:
                del branches_read_at[key]

    async def _look_at_mark(self, project_id: str) -> None:
        """Mark the project's watched conversations changed when its change mark moved (or
        the engine has none)."""
        try:
            mark = await self.store.change_mark(project_id)
        except Exception:  # (the store failed, or its connection closed as nobody watches)
            mark = None
        if mark is None or mark != self._marks.get(project_id, _UNSEEN):
            self._marks[project_id] = mark if mark is not None else _UNSEEN
            for key in self._watches:
                if key[0] == project_id:
                    self._dirty.add(key)
                    self._branches_dirty.add(key)

    async def _turns(
        self, project_id: str, app_ids: list[str]
    ) -> Optional[dict[str, Optional[TurnRecord]]]:
        """The current turn of each conversation (None: the store failed)."""
        try:
            return await self.store.current_of(project_id, app_ids)
        except Exception as exc:
            if not is_store_error(exc):
                raise
            return None

    async def _read(
        self, watch: ConversationWatch, branches: bool, turn: Optional[TurnRecord]
    ) -> bool:
        """Send the conversation's tabs what changed with ``turn`` (its current turn, just
        read), and with ``branches``, read its branches too; False when the store failed (say
        nothing, look again)."""
        try:
            watch.send(watch.see_turn(turn))
            if branches:
                watch.send(await watch.read_branches(self.store))
        except Exception as exc:
            if not is_store_error(exc):
                raise
            return False
        return True
