"""AG-UI: a turn as the Agent User Interaction protocol's events, built with the official
``ag-ui-protocol`` package's models and written by its ``EventEncoder``.

One run is one turn of the Burr graph: ``RUN_STARTED``; ``MESSAGES_SNAPSHOT`` with the stored
history and the prompt (the store, not the client's copy, is the truth); a step per Burr action
(``STEP_STARTED``/``STEP_FINISHED``); ``STATE_SNAPSHOT`` then ``STATE_DELTA`` of the state
without its history (the action running, its sequence id, the safety check's verdict, the
mode); ``REASONING_*`` while the model thinks; ``TEXT_MESSAGE_START/CONTENT/END`` for the
answer; ``TOOL_CALL_START/ARGS/END`` as the model calls a tool and ``TOOL_CALL_RESULT`` once it
ran (or failed, or was denied); and last ``RUN_FINISHED`` (its ``result`` is the native
``message`` event's value, its ``usage`` the answer's tokens) or ``RUN_ERROR`` with this
server's error code.

A turn that stops for a person to approve tool calls ends with ``RUN_FINISHED`` whose
``outcome`` is an interrupt per waiting call (its id is the tool call's id, its reason
``tool_approval``); the next run answers them in ``resume`` (see :func:`decisions_of`).

Message ids are ``msg-<index in the history>``, so a message keeps its id from run to run; in
a turn with tools each answer round's assistant message and each tool message has its own index,
as the store keeps them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import lru_cache
from typing import Annotated, Any, Optional, Union

from ag_ui.core import (
    AssistantMessage,
    BaseEvent,
    FunctionCall,
    Interrupt,
    MessagesSnapshotEvent,
    ReasoningEndEvent,
    ReasoningMessage,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningMessageStartEvent,
    ReasoningStartEvent,
    RunAgentInput,
    RunErrorEvent,
    RunFinishedEvent,
    RunFinishedInterruptOutcome,
    RunStartedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    ToolCall,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
    ToolMessage,
    UserMessage,
)
from ag_ui.encoder import EventEncoder
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..graph import denied_text, retries
from ..sse import KEEPALIVE
from ..turns import FollowedTurn
from ..wire import Decision, TurnEvent, data_as_json_text, encode_json
from . import awaited_round, data_block, typed

AgUiEvent = Union[
    RunStartedEvent,
    MessagesSnapshotEvent,
    StepStartedEvent,
    StepFinishedEvent,
    StateSnapshotEvent,
    StateDeltaEvent,
    ReasoningStartEvent,
    ReasoningMessageStartEvent,
    ReasoningMessageContentEvent,
    ReasoningMessageEndEvent,
    ReasoningEndEvent,
    TextMessageStartEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    ToolCallStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    RunFinishedEvent,
    RunErrorEvent,
]
"""The AG-UI events this server sends."""


class AgUiEventBlock(BaseModel):
    """One block of an AG-UI response: ``data`` is an AG-UI event as JSON (this model documents
    the stream; it is never built)."""

    data: Annotated[AgUiEvent, Field(discriminator="type")]

    model_config = ConfigDict(json_schema_extra=data_as_json_text)


_encoder = EventEncoder()


class PromptError(ValueError):
    """A ``RunAgentInput`` this server cannot run (the message says why)."""


def prompt_of(run: RunAgentInput) -> str:
    """The prompt of a run: the text of its last message, which must be the user's.

    Only asked of a run that answers no interrupt: a run whose ``resume`` answers the tool
    calls waiting for approval (:func:`decisions_of`) has no prompt, and its last message is
    usually the assistant's."""
    if not run.messages:
        raise PromptError("messages is empty: the last message must be the user's prompt.")
    last = run.messages[-1]
    if not isinstance(last, UserMessage):
        raise PromptError(f"The last message is the {last.role}'s; it must be the user's prompt.")
    if isinstance(last.content, str):
        return last.content
    texts = []
    for part in last.content:
        if getattr(part, "type", None) != "text":
            raise PromptError("Only text parts are supported in the prompt.")
        texts.append(part.text)  # type: ignore[union-attr]
    return "".join(texts)


APPROVAL_REASON = "tool_approval"
"""The ``reason`` of the interrupts this server sends: a tool call waits for approval."""


def decisions_of(run: RunAgentInput) -> list[Decision]:
    """The answers to tool calls waiting for approval that a run carries in ``resume``: one
    per entry, its ``interruptId`` the tool call's id. ``resolved`` with a payload
    ``{"approved": true|false, "reason"?: str}`` approves or denies; ``cancelled`` denies, with
    the reason "cancelled". Empty when the run answers nothing, and when it only cancels and
    brings a new prompt (its last message the user's): the new prompt supersedes the calls.
    A malformed entry is a :class:`PromptError`."""
    entries = run.resume or []
    if not entries:
        return []
    if all(e.status == "cancelled" for e in entries) and isinstance(
        run.messages[-1] if run.messages else None, UserMessage
    ):
        return []
    decisions: list[Decision] = []
    seen: set[str] = set()
    for entry in entries:
        if entry.interrupt_id in seen:
            raise PromptError(f"resume answers interrupt {entry.interrupt_id!r} twice.")
        seen.add(entry.interrupt_id)
        if entry.status == "cancelled":
            decisions.append(_decision(entry.interrupt_id, False, "cancelled"))
            continue
        payload = entry.payload
        if not isinstance(payload, dict) or not isinstance(payload.get("approved"), bool):
            raise PromptError(
                f"resume entry {entry.interrupt_id!r} is resolved without a payload "
                '{"approved": true|false}.'
            )
        reason = payload.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise PromptError(f"resume entry {entry.interrupt_id!r}: reason must be a string.")
        decisions.append(_decision(entry.interrupt_id, payload["approved"], reason))
    return decisions


def _decision(tool_call_id: str, approved: bool, reason: Optional[str]) -> Decision:
    try:
        return Decision(tool_call_id=tool_call_id, approved=approved, reason=reason)
    except ValidationError as exc:  # (an empty or overlong id or reason)
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise PromptError(f"resume entry {tool_call_id!r}: {where}: {error['msg']}") from None


def message_id(index: int) -> str:
    """The id of the history's message at ``index``."""
    return f"msg-{index}"


class AgUiRun:
    """Writes one turn as an AG-UI run; :meth:`encode` takes the turn's batches in order.

    ``prompt`` is the run's prompt, or None for a run that answers tool calls waiting for
    approval (its turn adds no user message)."""

    def __init__(self, run: RunAgentInput, prompt: Optional[str]) -> None:
        self.thread_id = run.thread_id
        self.run_id = run.run_id
        self.prompt = prompt
        self.next_index = 0  # the history index the next message written gets
        self.answer_id = ""  # the assistant message of this answer round ("" before it has one)
        self.step: Optional[str] = None
        self.state: Optional[dict[str, Any]] = None
        self.thinking = False
        self.writing = False
        self.calls: set[str] = set()  # tool calls started in this run and not ended
        self.waiting: dict[str, Interrupt] = {}  # tool calls waiting for approval
        self.superseded: dict[str, int] = {}  # earlier calls the prompt denies: their index
        self._content = b""

    def started(self) -> bytes:
        """``RUN_STARTED``."""
        return _bytes([RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id)])

    def encode(self, batch: Sequence[TurnEvent]) -> bytes:
        """The AG-UI events of one batch of the turn's events, as SSE bytes."""
        out: list[Union[BaseEvent, bytes]] = []
        for kind, value in typed(batch):
            if kind == "delta":
                self._end_thinking(out)
                if not self.writing:
                    self.writing = True
                    out.append(
                        data_block("TEXT_MESSAGE_START", messageId=self._answer(), role="assistant")
                    )
                # (data_block's bytes, its start made once per round: this is every delta)
                out.append(self._content + encode_json(value).encode() + b"}\n\n")
            elif kind == "reasoning":
                rid = self._answer() + "-reasoning"
                if not self.thinking:
                    self.thinking = True
                    out.append(data_block("REASONING_START", messageId=rid))
                    out.append(
                        data_block("REASONING_MESSAGE_START", messageId=rid, role="reasoning")
                    )
                out.append(
                    data_block("REASONING_MESSAGE_CONTENT", messageId=rid, delta=value["value"])
                )
            elif kind.startswith("tool_"):
                self._tool(out, kind, value["value"])
            elif kind == "chat_history":
                out.append(self._snapshot(value["value"]))
            elif kind == "action":
                self._action(out, value["value"])
            elif kind == "mode":
                self._change(out, mode=value["value"])
            elif kind == "message":
                self._end(out)
                out.append(self._finished(value["value"]))
            elif kind == "error":
                self._end(out)
                error = value["value"]
                out.append(RunErrorEvent(message=error["message"], code=error["code"]))
        return _bytes(out)

    def _snapshot(self, history: list[dict[str, Any]]) -> MessagesSnapshotEvent:
        messages: list[Any] = []
        for index, item in enumerate(history):
            messages.extend(_messages(index, item))
        self.next_index = len(history)
        if self.prompt is not None:
            # The prompt's step records calls still waiting as denied before the prompt.
            for call, outcome in awaited_round(history):
                if outcome is None:
                    self.superseded[call["id"]] = self.next_index
                    self.next_index += 1
            if self.superseded or not retries(history, self.prompt):
                messages.append(UserMessage(id=message_id(self.next_index), content=self.prompt))
                self.next_index += 1
        return MessagesSnapshotEvent(messages=messages)

    def _answer(self) -> str:
        """The id of this round's assistant message, given the next index when it begins."""
        if not self.answer_id:
            self.answer_id = message_id(self.next_index)
            self.next_index += 1
            self._content = data_block("TEXT_MESSAGE_CONTENT", messageId=self.answer_id, delta="")[
                :-5
            ]
        return self.answer_id

    def _tool(self, out: list[Any], kind: str, value: dict[str, Any]) -> None:
        call = value["id"]
        if kind == "tool_call_start":
            self._end_text(out)
            self._start_call(out, call, value["name"])
        elif kind == "tool_call_args":
            if call in self.calls:
                out.append(ToolCallArgsEvent(tool_call_id=call, delta=value["delta"]))
        elif kind == "tool_call":
            if call not in self.calls:  # (its arguments did not stream: they come whole)
                self._end_text(out)
                self._start_call(out, call, value["name"])
                if value["arguments"]:
                    out.append(ToolCallArgsEvent(tool_call_id=call, delta=value["arguments"]))
            self.calls.discard(call)
            out.append(ToolCallEndEvent(tool_call_id=call))
        elif kind == "tool_approval_request":
            self.waiting[call] = Interrupt(
                id=call, reason=APPROVAL_REASON, tool_call_id=call, message=value["message"]
            )
        else:  # tool_result, tool_error, tool_denied: a tool message, the next in the history
            self._end_text(out)
            index = self.superseded.pop(call, None)
            if index is None:
                index = self.next_index
                self.next_index += 1
                self.answer_id = ""  # (the model's next round is a new assistant message)
            out.append(
                ToolCallResultEvent(
                    message_id=message_id(index),
                    tool_call_id=call,
                    content=_tool_content(kind, value),
                    role="tool",
                )
            )

    def _start_call(self, out: list[Any], call: str, name: str) -> None:
        self.calls.add(call)
        out.append(
            ToolCallStartEvent(
                tool_call_id=call, tool_call_name=name, parent_message_id=self._answer()
            )
        )

    def _action(self, out: list[Any], action: dict[str, Any]) -> None:
        if self.step is not None:
            out.append(step_event("STEP_FINISHED", self.step))
        self.step = action["action"]
        out.append(step_event("STEP_STARTED", self.step))
        if self.state is None:
            self.state = {
                "action": self.step,
                "sequence_id": action["sequence_id"],
                "safe": None,
                "mode": None,
            }
            out.append(StateSnapshotEvent(snapshot=dict(self.state)))
            return
        changes: dict[str, Any] = {"action": self.step, "sequence_id": action["sequence_id"]}
        if self.step == "decide_mode":  # (what follows the safety check says what it found)
            changes["safe"] = True
        elif self.step == "unsafe_response":
            changes["safe"] = False
        self._change(out, **changes)

    def _change(self, out: list[Any], **changes: Any) -> None:
        assert self.state is not None  # (the first action comes before any change)
        ops = [
            {"op": "replace", "path": f"/{name}", "value": value}
            for name, value in changes.items()
            if self.state.get(name) != value
        ]
        self.state.update(changes)
        if ops:
            out.append(data_block("STATE_DELTA", delta=ops))

    def _end_thinking(self, out: list[Any]) -> None:
        if self.thinking:
            self.thinking = False
            rid = self.answer_id + "-reasoning"
            out.append(data_block("REASONING_MESSAGE_END", messageId=rid))
            out.append(data_block("REASONING_END", messageId=rid))

    def _end_text(self, out: list[Any]) -> None:
        self._end_thinking(out)
        if self.writing:
            self.writing = False
            out.append(data_block("TEXT_MESSAGE_END", messageId=self.answer_id))

    def _end(self, out: list[Any]) -> None:
        self._end_text(out)
        for call in sorted(self.calls):  # (a turn cut short while arguments streamed)
            out.append(ToolCallEndEvent(tool_call_id=call))
        self.calls.clear()
        if self.step is not None:
            out.append(step_event("STEP_FINISHED", self.step))
            self.step = None

    def _finished(self, message: dict[str, Any]) -> RunFinishedEvent:
        usage = message.get("usage")
        waiting = message.get("awaiting_approval")
        return RunFinishedEvent(
            thread_id=self.thread_id,
            run_id=self.run_id,
            result=message,
            outcome=None
            if not waiting
            else RunFinishedInterruptOutcome(
                interrupts=[
                    self.waiting.get(call)
                    or Interrupt(id=call, reason=APPROVAL_REASON, tool_call_id=call)
                    for call in waiting
                ]
            ),
            usage=None
            if not usage
            else [
                TokenUsage(
                    model=message.get("model") or None,
                    input_tokens=usage["prompt_tokens"],
                    output_tokens=usage["completion_tokens"],
                    total_tokens=usage["total_tokens"],
                    reasoning_tokens=usage.get("reasoning_tokens"),
                )
            ],
        )


def _tool_content(kind: str, value: dict[str, Any]) -> str:
    """A tool message's content, as the store keeps it: the result, the error, or the denial
    the model is told."""
    if kind == "tool_result":
        return value["result"]
    if kind == "tool_error":
        return value["error"]
    return denied_text(value.get("reason"))


def _messages(index: int, item: dict[str, Any]) -> list[Any]:
    """A stored message as AG-UI messages (an answer's thinking as a reasoning message first;
    an answer's tool calls in its ``toolCalls``; a tool's result as a tool message)."""
    if item["role"] == "user":
        return [UserMessage(id=message_id(index), content=item["content"])]
    if item["role"] == "tool":
        return [
            ToolMessage(
                id=message_id(index),
                content=item["content"],
                tool_call_id=item["tool_call_id"],
                error=item["content"] if item.get("status") == "error" else None,
            )
        ]
    messages: list[Any] = []
    if item.get("reasoning"):
        messages.append(
            ReasoningMessage(id=message_id(index) + "-reasoning", content=item["reasoning"])
        )
    calls = item.get("tool_calls")
    messages.append(
        AssistantMessage(
            id=message_id(index),
            content=item["content"],
            tool_calls=[
                ToolCall(
                    id=c["id"], function=FunctionCall(name=c["name"], arguments=c["arguments"])
                )
                for c in calls
            ]
            if calls
            else None,
        )
    )
    return messages


@lru_cache(maxsize=64)
def step_event(event_type: str, name: str) -> bytes:
    """``STEP_STARTED`` or ``STEP_FINISHED`` for a Burr action, written by the package's encoder
    once per action name and process."""
    model = StepStartedEvent if event_type == "STEP_STARTED" else StepFinishedEvent
    return _encoder.encode(model(step_name=name)).encode()


def _bytes(events: list[Union[BaseEvent, bytes]]) -> bytes:
    return b"".join(e if isinstance(e, bytes) else _encoder.encode(e).encode() for e in events)


async def run_blocks(turn: FollowedTurn, run: AgUiRun, keepalive_s: float) -> AsyncIterator[bytes]:
    """A turn as an AG-UI run's SSE bytes, one write per batch (keepalive comments when idle)."""
    started = run.started()  # (written with the first batch: one write less)
    async for _, batch in turn.follow(0, idle_s=keepalive_s):
        encoded = run.encode(batch) if batch else KEEPALIVE
        if started:
            encoded, started = started + encoded, b""
        yield encoded
