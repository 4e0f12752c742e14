"""AG-UI: a turn as the Agent User Interaction protocol's events, built with the official
``ag-ui-protocol`` package's models and written by its ``EventEncoder``.

One run is one turn of the Burr graph: ``RUN_STARTED``; ``MESSAGES_SNAPSHOT`` with the stored
history and the prompt (the store, not the client's copy, is the truth); a step per Burr action
(``STEP_STARTED``/``STEP_FINISHED``); ``STATE_SNAPSHOT`` then ``STATE_DELTA`` of the state
without its history (the action running, its sequence id, the safety check's verdict, the
mode); ``REASONING_*`` while the model thinks; ``TEXT_MESSAGE_START/CONTENT/END`` for the
answer; and last ``RUN_FINISHED`` (its ``result`` is the native ``message`` event's value, its
``usage`` the answer's tokens) or ``RUN_ERROR`` with this server's error code.

Message ids are ``msg-<index in the history>``, so a message keeps its id from run to run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from functools import lru_cache
from typing import Annotated, Any, Optional, Union

from ag_ui.core import (
    AssistantMessage,
    BaseEvent,
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
    RunStartedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    TokenUsage,
    UserMessage,
)
from ag_ui.encoder import EventEncoder
from pydantic import BaseModel, ConfigDict, Field

from ..graph import retries
from ..sse import KEEPALIVE
from ..turns import FollowedTurn
from ..wire import TurnEvent, data_as_json_text, encode_json
from . import data_block, typed

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
    """The prompt of a run: the text of its last message, which must be the user's."""
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


def message_id(index: int) -> str:
    """The id of the history's message at ``index``."""
    return f"msg-{index}"


class AgUiRun:
    """Writes one turn as an AG-UI run; :meth:`encode` takes the turn's batches in order."""

    def __init__(self, run: RunAgentInput, prompt: str) -> None:
        self.thread_id = run.thread_id
        self.run_id = run.run_id
        self.prompt = prompt
        self.answer_id = ""
        self.step: Optional[str] = None
        self.state: Optional[dict[str, Any]] = None
        self.thinking = False
        self.writing = False
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
                        data_block("TEXT_MESSAGE_START", messageId=self.answer_id, role="assistant")
                    )
                # (data_block's bytes, its start made once per run: this is every delta)
                out.append(self._content + encode_json(value).encode() + b"}\n\n")
            elif kind == "reasoning":
                rid = self.answer_id + "-reasoning"
                if not self.thinking:
                    self.thinking = True
                    out.append(data_block("REASONING_START", messageId=rid))
                    out.append(
                        data_block("REASONING_MESSAGE_START", messageId=rid, role="reasoning")
                    )
                out.append(
                    data_block("REASONING_MESSAGE_CONTENT", messageId=rid, delta=value["value"])
                )
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
        answer_at = len(history)
        if not retries(history, self.prompt):
            messages.append(UserMessage(id=message_id(answer_at), content=self.prompt))
            answer_at += 1
        self.answer_id = message_id(answer_at)
        self._content = data_block("TEXT_MESSAGE_CONTENT", messageId=self.answer_id, delta="")[:-5]
        return MessagesSnapshotEvent(messages=messages)

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

    def _end(self, out: list[Any]) -> None:
        self._end_thinking(out)
        if self.writing:
            self.writing = False
            out.append(data_block("TEXT_MESSAGE_END", messageId=self.answer_id))
        if self.step is not None:
            out.append(step_event("STEP_FINISHED", self.step))
            self.step = None

    def _finished(self, message: dict[str, Any]) -> RunFinishedEvent:
        usage = message.get("usage")
        return RunFinishedEvent(
            thread_id=self.thread_id,
            run_id=self.run_id,
            result=message,
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


def _messages(index: int, item: dict[str, Any]) -> list[Any]:
    """A stored message as AG-UI messages (an answer's thinking as a reasoning message first)."""
    if item["role"] == "user":
        return [UserMessage(id=message_id(index), content=item["content"])]
    messages: list[Any] = []
    if item.get("reasoning"):
        messages.append(
            ReasoningMessage(id=message_id(index) + "-reasoning", content=item["reasoning"])
        )
    messages.append(AssistantMessage(id=message_id(index), content=item["content"]))
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
