"""A conversation's changes as they happen, for every tab that shows it (``GET /events``).

Read from the store, so a change made by any process that shares it is seen: the conversation's
lease says when a turn starts and ends (its token is the start of the turn's SSE ids, which is
how a tab tells its own turns from others'), and the branches of its tree say when one is made.

A process reads each watched conversation once for all its tabs: a :class:`ConversationWatch`
holds what was last seen and the tabs' queues, and turns each new reading into the SSE blocks
every tab gets. When it reads is :mod:`.watch`'s job.
"""

from __future__ import annotations

import asyncio
from typing import Optional

from .storage.interface import Store, TurnRecord
from .wire import ConversationChange, encode_json


def _block(change: ConversationChange) -> bytes:
    return b"data: " + encode_json(change.model_dump()).encode() + b"\n\n"


def _started(token: str) -> bytes:
    return _block(ConversationChange(type="turn_started", value={"turn": token}))


def _ended(token: str) -> bytes:
    return _block(ConversationChange(type="turn_ended", value={"turn": token}))


class ConversationWatch:
    """What one process last saw of conversation ``app_id`` (whose tree's root is ``root``),
    and the tabs of this process that follow it."""

    def __init__(self, project_id: str, app_id: str, root: str) -> None:
        self.project_id = project_id
        self.app_id = app_id
        self.root = root
        self.token: Optional[str] = None
        """The last turn seen."""
        self.running = False
        self.known: set[str] = set()
        """The branches of the tree seen so far."""
        self.tabs: set[asyncio.Queue[bytes]] = set()
        self.loaded: Optional[asyncio.Future[None]] = None
        """Done once the first reading is in (its exception if it failed)."""
        self.checked_at = 0.0
        """When the store was last read (the loop's clock)."""

    async def load(self, store: Store) -> None:
        """The first reading: the current turn and the branches, without a block for them."""
        self.see_turn(await store.current(self.project_id, self.app_id))
        self.known = {branch.app_id for branch in await store.branches(self.project_id, self.root)}

    def opening(self) -> bytes:
        """What a tab that joins now gets first: ``turn_started`` for a turn running."""
        return _started(self.token) if self.running and self.token else b""

    def see_turn(self, record: Optional[TurnRecord]) -> list[bytes]:
        """The blocks for the conversation's current turn as just read (none when nothing
        changed): a new turn started (and perhaps ended already: a quick one), or one ended."""
        if record is None:
            return []
        blocks = []
        now_running = not (record.done or record.expired)
        if record.token != self.token:
            if self.running and self.token:
                blocks.append(_ended(self.token))
            blocks.append(_started(record.token))
            if not now_running:
                blocks.append(_ended(record.token))
        elif self.running and not now_running:
            blocks.append(_ended(record.token))
        self.token, self.running = record.token, now_running
        return blocks

    async def read_branches(self, store: Store) -> list[bytes]:
        """A ``branch_created`` block for each branch of the tree not seen before."""
        blocks = []
        for branch in await store.branches(self.project_id, self.root):
            if branch.app_id not in self.known:
                self.known.add(branch.app_id)
                value = {
                    "app_id": branch.app_id,
                    "parent": branch.parent,
                    "fork_at": branch.fork_at,
                }
                blocks.append(_block(ConversationChange(type="branch_created", value=value)))
        return blocks

    def send(self, blocks: list[bytes]) -> None:
        """Give ``blocks`` (as one chunk) to every tab."""
        if blocks:
            chunk = b"".join(blocks)
            for tab in self.tabs:
                tab.put_nowait(chunk)
