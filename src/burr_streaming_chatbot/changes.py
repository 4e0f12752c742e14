"""A conversation's changes as they happen, for every tab that shows it (``GET /events``).

Read from the store, so a change made by any process that shares it is seen: the conversation's
lease says when a turn starts and ends (its token is the start of the turn's SSE ids, which is
how a tab tells its own turns from others'), and the branches of its tree say when one is made.
The store is polled (every ``poll_s``), the same way on both engines: one small read per open
tab and tick.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from .sse import KEEPALIVE
from .storage.interface import Store, is_store_error
from .wire import ConversationChange, encode_json

BRANCHES_EVERY = 4
"""Branches are read every this many ticks (a turn's start is the change that must be quick)."""


def _block(change: ConversationChange) -> bytes:
    return b"data: " + encode_json(change.model_dump()).encode() + b"\n\n"


def _started(token: str) -> bytes:
    return _block(ConversationChange(type="turn_started", value={"turn": token}))


def _ended(token: str) -> bytes:
    return _block(ConversationChange(type="turn_ended", value={"turn": token}))


async def change_blocks(
    store: Store,
    project_id: str,
    app_id: str,
    root: str,
    keepalive_s: float,
    poll_s: float = 0.1,
) -> AsyncIterator[bytes]:
    """The changes of conversation ``app_id`` (whose tree's root is ``root``) as SSE blocks,
    until the client leaves: ``turn_started`` (also first, for a turn already running),
    ``turn_ended``, ``branch_created``; a keepalive comment after ``keepalive_s`` without one."""
    loop = asyncio.get_running_loop()
    record = await store.current(project_id, app_id)
    token = record.token if record is not None else None  # the last turn seen
    running = record is not None and not (record.done or record.expired)
    known = {branch.app_id for branch in await store.branches(project_id, root)}
    first: list[bytes] = [_started(token)] if running and token else []
    last_sent = loop.time()
    tick = 0
    while True:
        blocks, first = first, []
        try:
            record = await store.current(project_id, app_id)
            branches = await store.branches(project_id, root) if tick % BRANCHES_EVERY == 0 else []
        except Exception as exc:  # (the store is down: say nothing, look again)
            if not is_store_error(exc):
                raise
            record, branches = None, []
        if record is not None:
            now_running = not (record.done or record.expired)
            if record.token != token:  # a new turn (it may have ended already: a quick one)
                if running and token:
                    blocks.append(_ended(token))
                blocks.append(_started(record.token))
                if not now_running:
                    blocks.append(_ended(record.token))
            elif running and not now_running:
                blocks.append(_ended(record.token))
            token, running = record.token, now_running
        tick += 1
        for branch in branches:
            if branch.app_id not in known:
                known.add(branch.app_id)
                value = {
                    "app_id": branch.app_id,
                    "parent": branch.parent,
                    "fork_at": branch.fork_at,
                }
                blocks.append(_block(ConversationChange(type="branch_created", value=value)))
        if blocks:
            yield b"".join(blocks)
            last_sent = loop.time()
        elif loop.time() - last_sent >= keepalive_s:
            yield KEEPALIVE
            last_sent = loop.time()
        await asyncio.sleep(poll_s)
