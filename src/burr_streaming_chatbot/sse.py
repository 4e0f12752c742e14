"""Server-sent events on the wire: a streaming response of pre-encoded event blocks.

FastAPI's own ``EventSourceResponse`` (for generator endpoints) hands every event through a
producer task, two memory streams and a timeout scope on its way to the socket; for a chat
answer of fifty deltas that was the largest cost this server added over a bare relay. Here an
event is encoded once into ``data: ...\\nid: ...\\n\\n`` bytes and written by the response's own
task. The stream's OpenAPI description comes from :func:`event_stream_responses`.
"""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

from pydantic import BaseModel
from starlette.responses import StreamingResponse

KEEPALIVE = b": keepalive\n\n"
"""A comment line: ignored by every SSE client, keeps proxies from closing an idle stream."""


def encode_event(data: str, event_id: str) -> bytes:
    """One event block; ``data`` must be one line (JSON always is)."""
    return b"data: " + data.encode() + b"\nid: " + event_id.encode() + b"\n\n"


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response of already encoded event blocks, with the headers that
    stop caches and proxies from buffering it."""

    media_type = "text/event-stream"

    def __init__(self, content: AsyncIterable[bytes], status_code: int = 200) -> None:
        # (FastAPI's OpenAPI reads the default of ``status_code`` from this signature.)
        super().__init__(
            content,
            status_code=status_code,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


def event_stream_responses(block: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries describing a 200 :class:`EventStream` whose blocks are ``block``.

    As OpenAPI 3.2 models a ``text/event-stream``: ``itemSchema`` is one event (``block``), and
    ``schema`` the whole stream as an array of them (which also puts ``block`` and the models
    it refers to among the document's components, where clients are generated from).
    """
    name = block.__name__
    return {
        200: {
            "model": list[block],  # type: ignore[valid-type]
            "description": "A stream of server-sent events.",
            "content": {
                EventStream.media_type: {"itemSchema": {"$ref": f"#/components/schemas/{name}"}}
            },
        }
    }
