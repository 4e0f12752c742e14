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
from .graph import is_answered
from .lifecycle import Signal, TurnItem
from .llm import UpstreamError
from .storage.interface import ConflictError, is_store_error
from .wire import (
    ActionEvent,
    ActionValue,
    ErrorValue,
    MessageEvent,
    MessageValue,
    ModeEvent,
    TurnEvent,
    encode_json,
)

logger = logging.getLogger(__name__)


@dataclass
class TurnRequest:
    """What a turn answers: the conversation (its Burr application, opened for this turn with
    its lease held), the prompt, how many messages the client has already, and when the request
    began."""

    project_id: str
    app_id: str
    conversation: OpenApplication
    prompt: str
    history_after: int = 0
    started: float = field(default_factory=time.perf_counter)


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
    """The turn's events up to its end; raises what the state machine raised."""
    inputs = {"prompt": request.prompt}
    if _next_action(app).name != "prompt":
        # The last turn failed or stopped mid-graph: the state persisted by its last completed
        # step would resume there (and ignore this prompt). Every turn starts at `prompt`.
        app.reset_to_entrypoint()
    yield history_event(app.state.get("chat_history", []), request.history_after)
    path: list[str] = []
    while True:
        next_action = _next_action(app)
        path.append(next_action.name)
        action = ActionValue(action=next_action.name, sequence_id=_next_sequence_id(app))
        yield TurnEvent.of(ActionEvent(value=action))
        if not next_action.streaming:
            ran, result, _ = await app.astep(inputs=inputs)  # type: ignore[misc]  # (never None: no halt)
            if ran.name == "prompt":  # (its step persists the user's message)
                yield Signal.PROMPT_SAVED
            elif ran.name == "decide_mode" and result is not None:
                yield TurnEvent.of(ModeEvent(value=result["mode"]))
            continue
        _, container = await app.astream_result(halt_after=[next_action.name], inputs=inputs)
        first: Optional[float] = None
        deltas = 0
        async for item in container:
            delta = item.get("delta")
            if delta is not None:
                if first is None:
                    first = time.perf_counter()
                deltas += 1
                yield TurnEvent("delta", delta)
            elif is_answered(item):
                yield Signal.ANSWERED
            else:  # the model's thinking
                yield reasoning_event(item["reasoning"])
        result, _ = await container.get()
        break
    if result is None:  # (a streaming action always has a result; its type does not say so)
        raise RuntimeError(f"{path[-1]} ended without a result")
    if result.get("error"):
        # The partial answer is persisted, marked interrupted; the turn still failed.
        yield error_event(ErrorValue(**result["error"]))
        return
    response = result["response"]
    yield TurnEvent.of(
        MessageEvent(
            value=MessageValue(
                item=response,
                mode=response.get("mode", "unknown"),
                model=response.get("model", ""),
                ttft_ms=None if first is None else round((first - request.started) * 1000, 2),
                deltas=deltas,
                sequence_id=_sequence_id(app),
                path=path,
                usage=result.get("usage"),
            )
        )
    )


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
    items = [
        {
            "content": item["content"],
            "type": item.get("type", "text"),
            "role": item["role"],
            "mode": item.get("mode"),
            "model": item.get("model"),
            "interrupted": item.get("interrupted", False),
            "reasoning": item.get("reasoning"),
        }
        for item in history[start:]
    ]
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
