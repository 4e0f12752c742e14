"""The Vercel AI SDK's UI message stream (what ``useChat`` and ``DefaultChatTransport`` read).

A turn is one assistant message: ``start`` (its id and metadata), a step per Burr action
(``start-step``/``finish-step``) with a ``data-burr-action`` part naming it, a
``data-burr-mode`` part once the mode is chosen, ``reasoning-start/delta/end`` while the model
thinks, ``text-start/delta/end`` for the answer, then ``finish`` (metadata: mode, model, time
to first token, usage, ...) or, when the turn fails, a ``data-burr-error`` part with this
server's error code and an ``error`` (``abort`` when it was stopped); last ``data: [DONE]``.

The answer's message id is ``msg-<turn token>``: the same when the stream is resumed, which
replays the turn from its start as the AI SDK expects (``resume: true``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ..settings import ID_PATTERN
from ..sse import KEEPALIVE
from ..turns import FollowedTurn
from ..wire import (
    ActionValue,
    ErrorValue,
    MessageValue,
    Mode,
    TurnEvent,
    data_as_json_text,
    encode_json,
)
from . import data_block, typed

HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}
"""The header that tells the AI SDK the response is a UI message stream."""
DONE = b"data: [DONE]\n\n"


# -- the request DefaultChatTransport sends --------------------------------------------------


class UIMessagePart(BaseModel):
    """A part of a message; only ``text`` parts are read (the others are the client's)."""

    type: str
    text: Optional[str] = None

    model_config = ConfigDict(extra="allow")


class UIMessage(BaseModel):
    """A message as the AI SDK keeps it."""

    id: str
    role: Literal["system", "user", "assistant"]
    parts: list[UIMessagePart]
    metadata: Optional[Any] = None

    model_config = ConfigDict(extra="allow")


class ChatRequest(BaseModel):
    """Body of ``POST /ai-sdk/{project_id}``: what ``DefaultChatTransport`` sends."""

    id: str = Field(pattern=ID_PATTERN, description="The conversation id (the chat's id).")
    messages: list[UIMessage] = Field(
        min_length=1,
        description="The client's messages; only the last, the user's prompt, is read (the "
        "stored history is the truth).",
    )
    trigger: Literal["submit-message", "regenerate-message"] = Field(
        default="submit-message",
        description="`regenerate-message` asks the last prompt again; the new answer is added "
        "to the stored history after the earlier one.",
    )
    messageId: Optional[str] = None

    model_config = ConfigDict(extra="allow")  # (the transport's `body` option adds fields)


class PromptError(ValueError):
    """A request this server cannot answer (the message says why)."""


def prompt_of(request: ChatRequest) -> str:
    """The prompt: the text of the last message, which must be the user's."""
    last = request.messages[-1]
    if last.role != "user":
        raise PromptError(f"The last message is the {last.role}'s; it must be the user's prompt.")
    return "".join(part.text or "" for part in last.parts if part.type == "text")


# -- the chunks this server sends (models for the schema and for encoding) -------------------


class _Chunk(BaseModel):
    def encoded(self) -> bytes:
        return b"data: " + self.model_dump_json(exclude_none=True).encode() + b"\n\n"


class StartChunk(_Chunk):
    type: Literal["start"] = "start"
    messageId: str
    messageMetadata: dict[str, Any]


class StepChunk(_Chunk):
    type: Literal["start-step", "finish-step"]


class ActionDataChunk(_Chunk):
    """A Burr action starts."""

    type: Literal["data-burr-action"] = "data-burr-action"
    data: ActionValue


class ModeData(BaseModel):
    mode: Mode


class ModeDataChunk(_Chunk):
    """The mode the router model chose (one part, id ``mode``)."""

    type: Literal["data-burr-mode"] = "data-burr-mode"
    id: str = "mode"
    data: ModeData


class PartChunk(_Chunk):
    """Opens or closes the text or the reasoning part."""

    type: Literal["text-start", "text-end", "reasoning-start", "reasoning-end"]
    id: str


class DeltaChunk(_Chunk):
    """More text of the answer, or of the model's thinking."""

    type: Literal["text-delta", "reasoning-delta"]
    id: str
    delta: str


class FinishChunk(_Chunk):
    """The answer is complete and stored; its metadata is the native ``message`` event's."""

    type: Literal["finish"] = "finish"
    finishReason: Literal["stop"] = "stop"
    messageMetadata: MessageValue


class ErrorDataChunk(_Chunk):
    """Why the turn failed, with this server's error code."""

    type: Literal["data-burr-error"] = "data-burr-error"
    data: ErrorValue


class ErrorChunk(_Chunk):
    type: Literal["error"] = "error"
    errorText: str


class AbortChunk(_Chunk):
    """The answer was stopped (its text so far is kept, marked interrupted)."""

    type: Literal["abort"] = "abort"
    reason: str


UIMessageChunk = Annotated[
    Union[
        StartChunk,
        StepChunk,
        ActionDataChunk,
        ModeDataChunk,
        PartChunk,
        DeltaChunk,
        FinishChunk,
        ErrorDataChunk,
        ErrorChunk,
        AbortChunk,
    ],
    Field(discriminator="type"),
]
"""Any chunk of this server's UI message streams (the stream ends with ``data: [DONE]``)."""


class UIMessageChunkBlock(BaseModel):
    """One block of a UI message stream: ``data`` is a chunk as JSON, or ``[DONE]`` last (this
    model documents the stream; it is never built)."""

    data: UIMessageChunk

    model_config = ConfigDict(json_schema_extra=data_as_json_text)


TEXT = "text"
REASONING = "reasoning"


START_STEP = StepChunk(type="start-step").encoded()
FINISH_STEP = StepChunk(type="finish-step").encoded()


class UIMessageWriter:
    """Writes one turn as a UI message stream; :meth:`encode` takes its batches in order."""

    def __init__(self, token: str) -> None:
        self.message_id = f"msg-{token}"
        self.token = token
        self.step = False
        self.open: Optional[str] = None  # the part being streamed: TEXT or REASONING

    def encode(self, batch: Sequence[TurnEvent]) -> bytes:
        """The chunks of one batch of the turn's events, as SSE bytes."""
        out: list[Union[_Chunk, bytes]] = []
        for kind, value in typed(batch):
            if kind == "delta":
                self._open(out, TEXT)
                out.append(self.text_delta(value))
            elif kind == "reasoning":
                self._open(out, REASONING)
                out.append(data_block("reasoning-delta", id=REASONING, delta=value["value"]))
            elif kind == "chat_history":
                metadata = {"turn": self.token, "history": len(value["value"])}
                out.append(StartChunk(messageId=self.message_id, messageMetadata=metadata))
            elif kind == "action":
                self._close(out)
                if self.step:
                    out.append(FINISH_STEP)
                self.step = True
                out.append(START_STEP)
                out.append(data_block("data-burr-action", data=value["value"]))
            elif kind == "mode":
                out.append(ModeDataChunk(data=ModeData(mode=value["value"])))
            elif kind == "message":
                self._end_step(out)
                out.append(FinishChunk(messageMetadata=value["value"]))
                out.append(DONE)
            elif kind == "error":
                self._end_step(out)
                error = ErrorValue(**value["value"])
                out.append(ErrorDataChunk(data=error))
                if error.code == "stopped":
                    out.append(AbortChunk(reason=error.message))
                else:
                    out.append(ErrorChunk(errorText=error.message))
                out.append(DONE)
        return b"".join(c if isinstance(c, bytes) else c.encoded() for c in out)

    @staticmethod
    def text_delta(text: str) -> bytes:
        """A ``text-delta`` chunk."""
        return (
            b'data: {"type":"text-delta","id":"text","delta":'
            + encode_json(text).encode()
            + b"}\n\n"
        )

    def _open(self, out: list[Any], part: str) -> None:
        if self.open != part:
            self._close(out)
            self.open = part
            out.append(data_block(f"{part}-start", id=part))

    def _close(self, out: list[Any]) -> None:
        if self.open is not None:
            out.append(data_block(f"{self.open}-end", id=self.open))
            self.open = None

    def _end_step(self, out: list[Any]) -> None:
        self._close(out)
        if self.step:
            self.step = False
            out.append(FINISH_STEP)


async def message_blocks(turn: FollowedTurn, keepalive_s: float) -> AsyncIterator[bytes]:
    """A turn, from its start, as a UI message stream's SSE bytes, one write per batch
    (keepalive comments when idle)."""
    writer = UIMessageWriter(turn.token)
    async for _, batch in turn.follow(0, idle_s=keepalive_s):
        yield writer.encode(batch) if batch else KEEPALIVE
