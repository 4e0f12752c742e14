"""What a turn does: run the graph once for a prompt and describe it as events.

:func:`turn_events` is the only producer of a turn's :class:`~.wire.TurnEvent` s: the
history, each Burr action as it starts, the mode, the model's thinking and text as they stream,
and last one ``message`` or one ``error``; and, between them, when the user's message is saved
and when the answer is whole (the :class:`~.lifecycle.Signal` s a stop depends on, see
:mod:`.lifecycle`). :mod:`.turns` runs it in a task of its own and records the events;
:mod:`.encoders` write them in each wire protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Optional

from burr.core import Application

from .conversations import OpenApplication
from .errors import CONFLICT, INTERNAL, STORAGE_UNAVAILABLE, error_event, upstream
from .graph import PENDING, awaiting_approval, is_answered
from .lifecycle import Signal, TurnItem
from .llm import UpstreamError
from .storage.interface import ConflictError, is_store_error
from .wire import (
    TOOL_FIELDS,
    ActionEvent,
    ActionValue,
    ApprovalRequest,
    Decision,
    ErrorValue,
    MessageEvent,
    MessageValue,
    ModeEvent,
    ToolApprovalRequestEvent,
    ToolCallArgsValue,
    ToolCallArgumentsEvent,
    ToolCallEvent,
    ToolCallInfo,
    ToolCallStartedEvent,
    ToolCallStartValue,
    ToolDeniedEvent,
    ToolDeniedValue,
    ToolErrorEvent,
    ToolErrorValue,
    ToolResultEvent,
    ToolResultValue,
    TurnEvent,
    encode_json,
    wire_item,
)

logger = logging.getLogger(__name__)


@dataclass
class TurnRequest:
    """What a turn answers: the conversation (its Burr application, opened for this turn with
    its lease held), the prompt (or, for a turn that goes on after tool calls waited for a
    person, the person's ``decisions``), how many messages the client has already, and when the
    request began."""

    project_id: str
    app_id: str
    conversation: OpenApplication
    prompt: Optional[str]
    history_after: int = 0
    started: float = field(default_factory=time.perf_counter)
    decisions: Optional[list[Decision]] = None

    @property
    def approves(self) -> bool:
        """True for a turn that carries a person's decisions on waiting tool calls."""
        return self.decisions is not None


APPROVAL_STEP = "tool_approval"
"""The step the graph halts before while a tool call waits for a person."""


def approval_message(call: dict[str, Any]) -> str:
    """What a person is asked about a waiting tool call."""
    return f"The assistant wants to run {call['name']} with {call['arguments']}. Approve or deny?"


async def turn_events(request: TurnRequest) -> AsyncIterator[TurnItem]:
    """Run one turn of the state machine and describe it as events, the last a ``message`` or
    an ``error`` (every failure becomes one; nothing is raised but a cancellation), with the
    signals of the turn's life in between.

    The turn's application is finished here, when the graph stops, whatever stopped it: a turn
    that ended normally keeps its state for the next one; after any other end (a failure, a
    stop) the next turn reloads the persisted state, which is then the truth. This runs in the
    turn's own task (see :mod:`.turns`).
    """
    try:
        async with request.conversation as app:
            async for item in _graph_events(request, app):
                yield item
    except UpstreamError as exc:
        yield error_event(upstream(exc))
    except ConflictError:
        yield error_event(CONFLICT)
    except Exception as exc:
        if is_store_error(exc):
            logger.warning(
                "Turn in %s/%s: the store failed: %s", request.project_id, request.app_id, exc
            )
            yield error_event(STORAGE_UNAVAILABLE)
        else:
            logger.exception("Turn failed in %s/%s", request.project_id, request.app_id)
            yield error_event(INTERNAL)


async def _graph_events(request: TurnRequest, app: Application) -> AsyncIterator[TurnItem]:
    """The turn's events up to its end; raises what the state machine raised.

    A prompt's turn starts at ``prompt``; a decisions' turn at ``tool_approval``, where the
    graph waits. Either runs until the graph comes back to ``prompt`` (the answer is whole), or
    to ``tool_approval`` (a tool call waits for a person: the turn ends saying so), or a step
    fails."""
    inputs: dict[str, Any] = {"project_id": request.project_id}
    if request.decisions is not None:
        if _next_action(app).name != APPROVAL_STEP:  # (checked before the turn began)
            raise ConflictError("no tool call waits for a decision")
        inputs["decisions"] = [decision.model_dump() for decision in request.decisions]
    else:
        inputs["prompt"] = request.prompt
        if _next_action(app).name != "prompt":
            # The last turn failed, stopped or waits for approval mid-graph: the state persisted
            # by its last completed step would resume there (and ignore this prompt). Every
            # prompt starts at `prompt` (which records calls still waiting as superseded).
            app.reset_to_entrypoint()
    yield history_event(app.state.get("chat_history", []), request.history_after)
    path: list[str] = []
    answer: Optional[dict[str, Any]] = None
    first: Optional[float] = None
    deltas = 0
    while True:
        next_action = _next_action(app)
        if path and next_action.name in ("prompt", APPROVAL_STEP):
            break
        path.append(next_action.name)
        action = ActionValue(action=next_action.name, sequence_id=_next_sequence_id(app))
        yield TurnEvent.of(ActionEvent(value=action))
        if not next_action.streaming:
            ran, result, _ = await app.astep(inputs=inputs)  # type: ignore[misc]  # (never None: no halt)
            if ran.name in ("prompt", APPROVAL_STEP):  # (its step persists the user's words)
                yield Signal.PROMPT_SAVED
            if result is None:
                continue
            if ran.name == "decide_mode":
                yield TurnEvent.of(ModeEvent(value=result["mode"]))
            elif ran.name == "run_tool":
                yield tool_outcome_event(result)
            elif ran.name == "prompt":
                for call in result.get("superseded", ()):
                    value = ToolDeniedValue(id=call["id"], name=call["name"], reason="superseded")
                    yield TurnEvent.of(ToolDeniedEvent(value=value))
            continue
        _, container = await app.astream_result(halt_after=[next_action.name], inputs=inputs)
        async for item in container:
            delta = item.get("delta")
            if delta is not None:
                if first is None:
                    first = time.perf_counter()
                deltas += 1
                yield TurnEvent("delta", delta)
            elif is_answered(item):
                yield Signal.ANSWERED
            elif "reasoning" in item:  # the model's thinking
                yield reasoning_event(item["reasoning"])
            else:
                yield tool_call_event(item)
        answer, _ = await container.get()
        if answer is None:  # (a streaming action always has a result; its type does not say so)
            raise RuntimeError(f"{path[-1]} ended without a result")
        if answer.get("error"):
            # The partial answer is persisted, marked interrupted; the turn still failed.
            request.conversation.flush_tracking()
            yield error_event(ErrorValue(**answer["error"]))
            return
        if answer["response"].get("tool_calls") and _next_action(app).name != APPROVAL_STEP:
            yield Signal.CONTINUED  # (the answer is saved; its calls run next, then it goes on)
    waiting: list[str] = []
    if _next_action(app).name == APPROVAL_STEP:
        for call in awaiting_approval(app.state.get(PENDING) or []):
            waiting.append(call["id"])
            request_value = ApprovalRequest(
                id=call["id"],
                name=call["name"],
                arguments=call["arguments"],
                message=approval_message(call),
            )
            yield TurnEvent.of(ToolApprovalRequestEvent(value=request_value))
    response = answer["response"] if answer is not None else _last_answer(app)
    message = MessageValue(
        item=response,
        mode=response.get("mode") or "unknown",
        model=response.get("model") or "",
        ttft_ms=None if first is None else round((first - request.started) * 1000, 2),
        deltas=deltas,
        sequence_id=_sequence_id(app),
        path=path,
        usage=answer.get("usage") if answer is not None else None,
        awaiting_approval=waiting or None,
    )
    # Fields absent where they do not apply, so every other turn's message has the bytes it had.
    absent: dict[str, Any] = {"item": {n for n in TOOL_FIELDS if response.get(n) is None}}
    if not waiting:
        absent["awaiting_approval"] = True
    request.conversation.flush_tracking()  # (Burr's log has the turn when the client is told)
    yield TurnEvent(
        "message", MessageEvent(value=message).model_dump_json(exclude={"value": absent})
    )


def _last_answer(app: Application) -> dict[str, Any]:
    """The last answer of the history (a turn that ran no answer step: decisions that left a
    call still waiting)."""
    for item in reversed(app.state.get("chat_history", [])):
        if item["role"] == "assistant":
            return item
    return {"role": "assistant", "content": "", "type": "text"}


def tool_call_event(item: dict[str, Any]) -> TurnEvent:
    """The event of a tool call's stream item (see :func:`.graph.answer`)."""
    if "tool_call_args" in item:
        return TurnEvent.of(
            ToolCallArgumentsEvent(value=ToolCallArgsValue(**item["tool_call_args"]))
        )
    if "tool_call_start" in item:
        return TurnEvent.of(
            ToolCallStartedEvent(value=ToolCallStartValue(**item["tool_call_start"]))
        )
    return TurnEvent.of(ToolCallEvent(value=ToolCallInfo(**item["tool_call"])))


def tool_outcome_event(result: dict[str, Any]) -> TurnEvent:
    """The event of a ``run_tool`` step's result: the tool's result, its error, or a denial."""
    ids = {"id": result["tool_call_id"], "name": result["name"]}
    if result["status"] == "ok":
        value = ToolResultValue(**ids, result=result["content"], duration_ms=result["duration_ms"])
        return TurnEvent.of(ToolResultEvent(value=value))
    if result["status"] == "error":
        error = ToolErrorValue(**ids, error=result["content"], duration_ms=result["duration_ms"])
        return TurnEvent.of(ToolErrorEvent(value=error))
    return TurnEvent.of(ToolDeniedEvent(value=ToolDeniedValue(**ids, reason=result["reason"])))


def reasoning_event(text: str) -> TurnEvent:
    """A :class:`~.wire.ReasoningEvent`, serialized without pydantic (there is one per
    network read while a model thinks)."""
    return TurnEvent("reasoning", '{"type":"reasoning","value":' + encode_json(text) + "}")


def history_event(history: list[dict[str, Any]], after: int = 0) -> TurnEvent:
    """The ``chat_history`` event (a :class:`~.wire.ChatHistoryEvent`) with the messages from
    index ``after`` on, serialized straight from the stored messages: they were validated when
    written, and a long conversation has thousands, which pydantic would validate again on
    every turn (``benchmarks/RESULTS.md``, "One long conversation"); a client that has them
    need not receive them again."""
    start = min(after, len(history))
    items = [wire_item(item) for item in history[start:]]
    value = encode_json(items)
    if not after:  # the event as Burr's example sends it
        return TurnEvent("chat_history", '{"type":"chat_history","value":' + value + "}")
    return TurnEvent("chat_history", f'{{"type":"chat_history","value":{value},"start":{start}}}')


def _next_action(app: Application) -> Any:
    """The action Burr runs next (there is always one: every action leads somewhere)."""
    action = app.get_next_action()
    if action is None:
        raise RuntimeError("the graph has no next action")
    return action


def _sequence_id(app: Application) -> int:
    """The sequence id of the step Burr ran last (-1 before the first)."""
    return -1 if app.sequence_id is None else app.sequence_id


def _next_sequence_id(app: Application) -> int:
    """The sequence id Burr will give the step about to run."""
    return _sequence_id(app) + 1
