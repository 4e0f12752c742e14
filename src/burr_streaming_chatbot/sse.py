"""Server-sent events on the wire: the stream this server writes, and the one it reads upstream.

FastAPI's own ``EventSourceResponse`` (for generator endpoints) hands every event through a
producer task, two memory streams and a timeout scope on its way to the socket; for a chat
answer of fifty deltas that was the largest cost this server added over a bare relay. Here an
event is encoded once into ``data: ...\\nid: ...\\n\\n`` bytes and written by the response's own
task. The stream's OpenAPI description comes from :func:`event_stream_responses`.

Upstream, :class:`EventDecoder` reads a model server's stream a network read at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Mapping
from typing import Any, NamedTuple, Optional

from pydantic import BaseModel
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

KEEPALIVE = b": keepalive\n\n"
"""A comment line: ignored by every SSE client, keeps proxies from closing an idle stream."""


def encode_event(data: str, event_id: Optional[str]) -> bytes:
    """One event block; ``data`` must be one line (JSON always is).

    Without an id, the block is only ``data: <json>`` and a blank line, the form clients
    written from Burr's streaming example parse by splitting a read on ``"data: "``; so that
    split never cuts inside the JSON, ``data: `` within it (only ever inside a string) is
    written as ``data\\u003a `` (the same string to any JSON parser).
    """
    if event_id is None:
        return b"data: " + data.replace("data: ", "data\\u003a ").encode() + b"\n\n"
    return b"data: " + data.encode() + b"\nid: " + event_id.encode() + b"\n\n"


def wants_event_stream(accept: Optional[str]) -> bool:
    """True when a request's ``Accept`` asks for ``text/event-stream`` (an ``EventSource``, an
    SSE client library, this package's page): its events then carry ids, and idle streams get
    keepalive comments. Other clients (Burr's own streaming page among them) get bare
    ``data:`` blocks."""
    return accept is not None and "text/event-stream" in accept.lower()


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response of already encoded event blocks, with the headers that
    stop caches and proxies from buffering it."""

    media_type = "text/event-stream"

    def __init__(
        self,
        content: AsyncIterable[bytes],
        status_code: int = 200,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        # (FastAPI's OpenAPI reads the default of ``status_code`` from this signature.)
        super().__init__(
            content,
            status_code=status_code,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self.on_close: Optional[Callable[[], None]] = None
        """Called once the response is over, however it ended (the client left, say)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.on_close is not None:
                self.on_close()


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


class UpstreamEvent(NamedTuple):
    """One server-sent event read from the model server's stream: its ``event`` field ("" when absent) and its data."""

    name: str
    data: bytes


class EventDecoder:
    """Turns the bytes of a ``text/event-stream`` into events, as the HTML standard parses them
    (CRLF, LF or CR line ends; comments; ``data`` over several lines; a blank line ends one).

    :meth:`feed` returns every event that one network read completed, all at once. A reader
    that falls behind then finds several tokens in one read and handles them as one piece,
    instead of paying the whole way to the socket for each token: that is what keeps a
    loaded server's deltas on time. (The openai SDK's decoder hands out one event per
    ``await``, so its callers cannot tell which events arrived together.)
    """

    def __init__(self, max_event_bytes: int = 1 << 20) -> None:
        self.max_event_bytes = max_event_bytes
        self._pending = b""  # the start of an event, line ends already made LF
        self._after_cr = False  # the last read ended in CR: a LF first in the next is its pair

    def feed(self, chunk: bytes) -> list[UpstreamEvent]:
        """The events completed by ``chunk``; a partial one waits for the next read."""
        if not chunk:
            return []
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if b"\r" in chunk:
            self._after_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        else:
            self._after_cr = False
        if self._pending:
            chunk = self._pending + chunk
        blocks = chunk.split(b"\n\n")
        self._pending = blocks.pop()
        if len(self._pending) > self.max_event_bytes:
            raise ValueError(f"an event of over {self.max_event_bytes} bytes")
        events = []
        for block in blocks:
            if block.startswith(b"data: ") and b"\n" not in block:  # what model servers send
                events.append(UpstreamEvent("", block[6:]))
            else:
                event = _parse_block(block)
                if event is not None:
                    events.append(event)
        return events


def _parse_block(block: bytes) -> UpstreamEvent | None:
    name = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue  # a comment (keepalives)
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode(errors="replace")
    return UpstreamEvent(name, b"\n".join(data)) if data else None
