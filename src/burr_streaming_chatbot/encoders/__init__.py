"""One turn, three wire protocols: each module here writes a turn's events in one protocol.

A turn's events are :class:`~..wire.TurnEvent` s (see :mod:`..answering` and :mod:`..turns`).
An encoder follows a turn (``turn.follow``) and turns each batch of events into its protocol's
bytes, so stopping, reattaching, limits and persistence are the turn's, the same on every
endpoint:

* :mod:`.native`: the post's format, ``data: {"type": ..., "value": ...}`` (with SSE ids and
  keepalives for clients that ask for ``text/event-stream``);
* :mod:`.agui`: AG-UI events, with the ``ag-ui-protocol`` package's models and encoder;
* :mod:`.ai_sdk`: the Vercel AI SDK's UI message stream (``useChat``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..wire import TurnEvent, encode_json


def typed(batch: Sequence[TurnEvent]) -> Iterator[tuple[str, Any]]:
    """The events of a batch as ``(type, value)``, consecutive deltas joined into one
    ``("delta", text)``; the other events as their parsed JSON (a handful per turn, and one per
    network read while a model thinks)."""
    index = 0
    while index < len(batch):
        event = batch[index]
        if event.type == "delta":
            end = index + 1
            while end < len(batch) and batch[end].type == "delta":
                end += 1
            text = event.data if end == index + 1 else "".join(e.data for e in batch[index:end])
            yield "delta", text
            index = end
            continue
        yield event.type, event.parsed()
        index += 1


def data_block(event_type: str, **fields: Any) -> bytes:
    """``data: {"type": <event_type>, <fields>...}`` and a blank line, the JSON compact and in
    the order given: the bytes a protocol's own model writes for the same event when ``fields``
    follow its order and wire names (``tests/test_encoders.py`` checks each kind written so),
    without building a model for every delta."""
    return (
        b'data: {"type":"'
        + event_type.encode()
        + b'"'
        + b"".join(
            b',"' + name.encode() + b'":' + encode_json(v).encode() for name, v in fields.items()
        )
        + b"}\n\n"
    )


def awaited_round(history: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    """The tool calls of the history's last answer when some have no tool message yet (the
    conversation waits for approval, or a stop cut the round short), each with its tool
    message or None; empty otherwise. A new prompt records the calls without one as denied
    ("superseded") before its own message; a decision's turn adds their tool messages."""
    for index in range(len(history) - 1, -1, -1):
        item = history[index]
        if item["role"] == "tool":
            continue
        calls = (item.get("tool_calls") or []) if item["role"] == "assistant" else []
        done = {t.get("tool_call_id"): t for t in history[index + 1 :]}
        if all(call["id"] in done for call in calls):
            return []
        return [(call, done.get(call["id"])) for call in calls]
    return []
