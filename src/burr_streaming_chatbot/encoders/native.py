"""The native stream: Burr's streaming example's wire format, ``data: <json>`` blocks whose JSON
has ``type`` and ``value`` (see :mod:`..wire`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Optional

from ..sse import KEEPALIVE, encode_event
from ..turns import FollowedTurn
from ..wire import encode_json


async def event_blocks(
    turn: FollowedTurn, start: int, keepalive_s: float, with_ids: bool = True
) -> AsyncIterator[bytes]:
    """A turn's events as encoded SSE blocks, one write per batch: events that piled up while
    the client was busy go out together, and consecutive deltas among them as one ``delta``
    event (with the id of the last). ``with_ids``: each block has an id, and a comment goes
    out after ``keepalive_s`` seconds without events; without, bare ``data:`` blocks only (see
    :func:`..sse.wants_event_stream`)."""

    def event_id(index: int) -> Optional[str]:
        return turn.event_id(index) if with_ids and index >= 0 else None  # (NO_ID: none)

    async for first, batch in turn.follow(start, idle_s=keepalive_s if with_ids else None):
        if not batch:
            yield KEEPALIVE
            continue
        blocks: list[bytes] = []
        index = 0
        while index < len(batch):
            event = batch[index]
            if event.type == "delta":
                end = index + 1
                while end < len(batch) and batch[end].type == "delta":
                    end += 1
                text = event.data if end == index + 1 else "".join(e.data for e in batch[index:end])
                data = '{"type":"delta","value":' + encode_json(text) + "}"  # a DeltaEvent
                blocks.append(encode_event(data, event_id(first + end - 1)))
                index = end
            else:
                blocks.append(encode_event(event.data, event_id(first + index)))
                index += 1
        yield blocks[0] if len(blocks) == 1 else b"".join(blocks)
