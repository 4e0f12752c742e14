"""The Vercel AI SDK's UI message stream (what ``useChat`` and ``DefaultChatTransport`` read).

A turn is one assistant message: ``start`` (its id and metadata), a step per Burr action
(``start-step``/``finish-step``) with a ``data-burr-action`` part naming it, a
``data-burr-mode`` part once the mode is chosen, ``reasoning-start/delta/end`` while the model
thinks, ``text-start/delta/end`` for the answer, ``tool-input-start/delta/available`` as the
model calls a tool, ``tool-approval-request`` for a call that waits for a person, then
``tool-output-available``, ``tool-output-error`` or ``tool-output-denied``; then ``finish``
(metadata: mode, model, time to first token, usage, ...; its reason ``tool-calls`` when the
turn waits for approval) or, when the turn fails, a ``data-burr-error`` part with this
server's error code and an ``error`` (``abort`` when it was stopped); last ``data: [DONE]``.

A tool call and its result belong to the step of the model call that asked for it, as in the
AI SDK's own streams: the Burr steps that run tools (``run_tool``, ``tool_approval``) add their
``data-burr-action`` part without starting a step, so the calls waiting for approval are in the
message's last step, where ``lastAssistantMessageIsCompleteWithApprovalResponses`` looks.

The answer's message id is ``msg-<turn token>``: the same when the stream is resumed, which
replays the turn from its start as the AI SDK expects (``resume: true``). The turn that an
approval starts continues the client's assistant message: its ``start`` names that message (the
request's last), as the AI SDK's own server does; resumed, it names none (the client keeps the
message it resumes) and first repeats the round's tool calls, which the replay cleared.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..settings import ID_PATTERN
from ..sse import KEEPALIVE
from ..turns import FollowedTurn
from ..wire import (
    ActionValue,
    Decision,
    ErrorValue,
    MessageValue,
    Mode,
    TurnEvent,
    data_as_json_text,
    encode_json,
)
from . import awaited_round, data_block, typed

HEADERS = {"x-vercel-ai-ui-message-stream": "v1"}
"""The header that tells the AI SDK the response is a UI message stream."""
DONE = b"data: [DONE]\n\n"


# -- the request DefaultChatTransport sends --------------------------------------------------


class ToolApproval(BaseModel):
    """A tool part's ``approval``: answered once ``approved`` is set."""

    id: str
    approved: Optional[bool] = None
    reason: Optional[str] = None

    model_config = ConfigDict(extra="allow")


class UIMessagePart(BaseModel):
    """A part of a message; ``text`` parts of a prompt and the answered approvals of tool parts
    (``tool-<name>`` in state ``approval-responded``) are read, the rest is the client's."""

    type: str
    text: Optional[str] = None
    toolCallId: Optional[str] = None
    state: Optional[str] = None
    approval: Optional[ToolApproval] = None

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
        description="The client's messages; only the last is read (the stored history is the "
        "truth): the user's prompt, or the assistant's message whose tool parts answer "
        "approvals (state `approval-responded`).",
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


APPROVAL_RESPONDED = "approval-responded"


def decisions_of(chat: ChatRequest) -> list[Decision]:
    """The approvals a request answers: when its last message is the assistant's (as
    ``addToolApprovalResponse`` sends it back), one per tool part in state
    ``approval-responded``. Empty when the last message is the user's (a prompt). A last
    message of the assistant's without such a part, or with a malformed one, is a
    :class:`PromptError`."""
    last = chat.messages[-1]
    if last.role != "assistant":
        return []
    decisions: list[Decision] = []
    for part in last.parts:
        if part.state != APPROVAL_RESPONDED or not _is_tool(part.type):
            continue
        approval = part.approval
        if part.toolCallId is None or approval is None or approval.approved is None:
            raise PromptError(
                f"A {part.type} part in state approval-responded needs a toolCallId and an "
                "approval with approved true or false."
            )
        try:
            decisions.append(
                Decision(
                    tool_call_id=part.toolCallId,
                    approved=approval.approved,
                    reason=approval.reason,
                )
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"])
            raise PromptError(f"Tool call {part.toolCallId!r}: {where}: {error['msg']}") from None
    if not decisions:
        raise PromptError(
            "The last message is the assistant's and answers no tool approval; it must be the "
            "user's prompt, or the assistant's with tool parts in state approval-responded."
        )
    return decisions


def _is_tool(part_type: str) -> bool:
    return part_type.startswith("tool-") or part_type == "dynamic-tool"


# -- the chunks this server sends (models for the schema and for encoding) -------------------


class _Chunk(BaseModel):
    def encoded(self) -> bytes:
        return b"data: " + self.model_dump_json(exclude_none=True).encode() + b"\n\n"


class StartChunk(_Chunk):
    """The answer's message begins (or, with the id of the client's message, continues)."""

    type: Literal["start"] = "start"
    messageId: Optional[str] = Field(
        default=None,
        description="Absent when a resumed stream continues the client's message after an "
        "approval.",
    )
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


class ToolInputStartChunk(_Chunk):
    """The model began a tool call."""

    type: Literal["tool-input-start"] = "tool-input-start"
    toolCallId: str
    toolName: str


class ToolInputDeltaChunk(_Chunk):
    """More of a tool call's arguments (JSON text)."""

    type: Literal["tool-input-delta"] = "tool-input-delta"
    toolCallId: str
    inputTextDelta: str


class ToolInputAvailableChunk(_Chunk):
    """A tool call's arguments are complete (parsed; as written if they are not JSON)."""

    type: Literal["tool-input-available"] = "tool-input-available"
    toolCallId: str
    toolName: str
    input: Any


class ToolApprovalRequestChunk(_Chunk):
    """A tool call waits for a person (``approvalId`` is the tool call's id)."""

    type: Literal["tool-approval-request"] = "tool-approval-request"
    approvalId: str
    toolCallId: str


class ToolOutputAvailableChunk(_Chunk):
    """What a tool returned (parsed when it is JSON)."""

    type: Literal["tool-output-available"] = "tool-output-available"
    toolCallId: str
    output: Any


class ToolOutputErrorChunk(_Chunk):
    """Why a tool call failed."""

    type: Literal["tool-output-error"] = "tool-output-error"
    toolCallId: str
    errorText: str


class ToolOutputDeniedChunk(_Chunk):
    """A tool call was denied."""

    type: Literal["tool-output-denied"] = "tool-output-denied"
    toolCallId: str


class FinishChunk(_Chunk):
    """The answer is complete and stored; its metadata is the native ``message`` event's.
    ``tool-calls`` when it stopped to wait for approval."""

    type: Literal["finish"] = "finish"
    finishReason: Literal["stop", "tool-calls"] = "stop"
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
        ToolInputStartChunk,
        ToolInputDeltaChunk,
        ToolInputAvailableChunk,
        ToolApprovalRequestChunk,
        ToolOutputAvailableChunk,
        ToolOutputErrorChunk,
        ToolOutputDeniedChunk,
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


TOOL_STEPS = frozenset({"run_tool", "tool_approval"})
"""The Burr actions that run or decide tool calls: part of the step of the model call that
asked for them."""


class UIMessageWriter:
    """Writes one turn as a UI message stream; :meth:`encode` takes its batches in order.

    ``continues`` is the id of the client's assistant message a turn started by an approval
    continues (None for a prompt's turn); ``resumed`` says the stream replays the turn for
    the AI SDK's resume, which clears the client's message first."""

    def __init__(self, token: str, continues: Optional[str] = None, resumed: bool = False) -> None:
        self.message_id = continues or f"msg-{token}"
        self.token = token
        self.continues = continues is not None
        self.resumed = resumed
        self.step = False
        self.open: Optional[str] = None  # the part being streamed: TEXT or REASONING
        self.history: Optional[list[dict[str, Any]]] = None  # until ``start`` is written
        self.calls: set[str] = set()  # the tool calls the client's message has

    def encode(self, batch: Sequence[TurnEvent]) -> bytes:
        """The chunks of one batch of the turn's events, as SSE bytes."""
        out: list[Union[_Chunk, bytes]] = []
        for kind, value in typed(batch):
            if kind == "chat_history":
                self.history = value["value"]
                continue
            if self.history is not None:
                self._start(out, kind, value)
            if kind == "delta":
                self._open(out, TEXT)
                out.append(self.text_delta(value))
            elif kind == "reasoning":
                self._open(out, REASONING)
                out.append(data_block("reasoning-delta", id=REASONING, delta=value["value"]))
            elif kind.startswith("tool_"):
                self._tool(out, kind, value["value"])
            elif kind == "action":
                self._close(out)
                action = value["value"]
                if action["action"] not in TOOL_STEPS:
                    if self.step:
                        out.append(FINISH_STEP)
                    self.step = True
                    out.append(START_STEP)
                out.append(data_block("data-burr-action", data=action))
            elif kind == "mode":
                out.append(ModeDataChunk(data=ModeData(mode=value["value"])))
            elif kind == "message":
                self._end_step(out)
                waiting = bool(value["value"].get("awaiting_approval"))
                out.append(
                    FinishChunk(
                        finishReason="tool-calls" if waiting else "stop",
                        messageMetadata=value["value"],
                    )
                )
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

    def _start(self, out: list[Any], kind: str, value: Any) -> None:
        """``start``, written with the turn's first event after its history: a turn that
        begins with ``tool_approval`` was started by an approval."""
        history, self.history = self.history or [], None
        metadata = {"turn": self.token, "history": len(history)}
        approval = kind == "action" and value["value"]["action"] == "tool_approval"
        if self.resumed and approval:
            out.append(StartChunk(messageMetadata=metadata))  # (the client's message goes on)
            self.continues = True
            self._repeat_round(out, history)
        else:
            out.append(StartChunk(messageId=self.message_id, messageMetadata=metadata))

    def _tool(self, out: list[Any], kind: str, value: dict[str, Any]) -> None:
        call = value["id"]
        if kind == "tool_call_start":
            self._close(out)
            self.calls.add(call)
            out.append(ToolInputStartChunk(toolCallId=call, toolName=value["name"]))
        elif kind == "tool_call_args":
            out.append(ToolInputDeltaChunk(toolCallId=call, inputTextDelta=value["delta"]))
        elif kind == "tool_call":
            self._close(out)
            self.calls.add(call)
            out.append(
                ToolInputAvailableChunk(
                    toolCallId=call, toolName=value["name"], input=_parsed(value["arguments"])
                )
            )
        elif kind == "tool_approval_request":
            out.append(ToolApprovalRequestChunk(approvalId=call, toolCallId=call))
        elif call in self.calls or self.continues:
            # (a call of an earlier answer, denied because a new prompt superseded it, is not
            # in this message: the client would refuse its output)
            self._close(out)
            out.append(_output(kind, value))

    def _repeat_round(self, out: list[Any], history: list[dict[str, Any]]) -> None:
        """A resumed approval turn: the calls of the round it continues, with what is known of
        them, so that their outputs have parts to land in."""
        for call, outcome in awaited_round(history):
            self.calls.add(call["id"])
            out.append(
                ToolInputAvailableChunk(
                    toolCallId=call["id"], toolName=call["name"], input=_parsed(call["arguments"])
                )
            )
            if outcome is not None:
                out.append(_output(_OUTCOME_EVENTS[outcome["status"]], _outcome_value(outcome)))

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


_OUTCOME_EVENTS = {"ok": "tool_result", "error": "tool_error", "denied": "tool_denied"}


def _outcome_value(item: dict[str, Any]) -> dict[str, Any]:
    """A stored tool message as the value of the native event that reported it."""
    return {
        "id": item["tool_call_id"],
        "result": item["content"],
        "error": item["content"],
        "reason": item.get("reason"),
    }


def _parsed(text: str) -> Any:
    """JSON text parsed; text that is not JSON as is."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _output(kind: str, value: dict[str, Any]) -> _Chunk:
    """The chunk of a tool call's outcome."""
    call = value.get("id", "")
    if kind == "tool_result":
        return ToolOutputAvailableChunk(toolCallId=call, output=_parsed(value["result"]))
    if kind == "tool_error":
        return ToolOutputErrorChunk(toolCallId=call, errorText=value["error"])
    return ToolOutputDeniedChunk(toolCallId=call)


async def message_blocks(
    turn: FollowedTurn,
    keepalive_s: float,
    continues: Optional[str] = None,
    resumed: bool = False,
) -> AsyncIterator[bytes]:
    """A turn, from its start, as a UI message stream's SSE bytes, one write per batch
    (keepalive comments when idle). ``continues``: the client's assistant message an
    approval's turn continues; ``resumed``: for the AI SDK's resume."""
    writer = UIMessageWriter(turn.token, continues, resumed)
    async for _, batch in turn.follow(0, idle_s=keepalive_s):
        yield writer.encode(batch) if batch else KEEPALIVE
