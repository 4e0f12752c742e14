"""The Burr actions and the state machine, declared once with ``GraphBuilder``.

prompt → check_safety → decide_mode → one streaming answer action → back to prompt. The answer
action offers the model tools; each call it makes runs as its own ``run_tool`` step (its
arguments and result in state, so Burr's UI shows them), then the answer action is called again
with the results, up to :attr:`.Settings.max_tool_rounds` rounds. A call to a tool that needs
approval first goes to ``tool_approval``, which the server halts before: the turn ends there, and
the person's decision, whenever and wherever it comes, runs that step (see :mod:`.answering`).

The model, the tools and the notebook they write to are bound into the actions when the graph
is built, so they never enter Burr's tracking logs as inputs.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Optional

from burr.core import ApplicationContext, State, default, when
from burr.core.action import Condition, action, streaming_action
from burr.core.graph import Graph, GraphBuilder

from .errors import stopped_upstream
from .llm import ChatModel, Thought, ToolCallPiece, UpstreamError, Usage
from .tools import NoteBook, Toolbox, ToolContext

StreamStep = AsyncGenerator[tuple[dict, Optional[State]], None]

ANSWERED: dict[str, bool] = {"answered": True}
"""The item a streaming answer yields once its text is whole, or cut by a stop, with no await
since the last piece or the stop (so nothing can cut in): from then on a stop has nothing left
to cut, and must not cancel the step that saves the answer. :mod:`.answering` turns it into
:data:`.lifecycle.Signal.ANSWERED`."""


def is_answered(item: dict) -> bool:
    """True for :data:`ANSWERED` (as Burr hands a streamed item back)."""
    return item.get("answered") is True


ANSWER_MODES = ("answer_question", "generate_poem", "generate_code")
TERMINAL_ACTIONS = (*ANSWER_MODES, "prompt_for_more", "unsafe_response")
"""The streaming actions; a turn ends after one of them unless the answer called tools."""
TOOL_ACTIONS = ("run_tool", "tool_approval")
"""The steps of tool calls: ``run_tool`` runs one call, ``tool_approval`` records a person's
decisions (the server halts before it)."""

PENDING = "pending_tools"
"""In state: the tool calls of the current round not run yet, in order, each
``{"id", "name", "arguments", "needs_approval", "decision"}`` (``decision``: None, or
``{"approved", "reason"}``)."""
ROUNDS = "tool_rounds"
"""In state: how many rounds of tool calls this turn made."""
SUPERSEDED = "superseded"
"""The reason recorded for a call still waiting when a new prompt came."""
TOOL_LIMIT_TEXT = (
    "I stopped here: the model asked for more tools after {rounds} rounds of tool calls "
    "(the limit, BURR_CHATBOT_MAX_TOOL_ROUNDS)."
)
DENIED_TEXT = "The user denied this tool call."
ANSWER_SETTINGS = "answer_settings"
"""In state: the conversation's own choices for its answers, ``{"model", "system_prompt",
"temperature"}`` (each None, or the field absent: the server's default), set by
:meth:`.ChatService.change_answer_settings`."""


def waits_for_decision(pending: Sequence[dict]) -> bool:
    """True when the next call to run needs a person's approval that has not come yet."""
    return bool(pending) and pending[0]["needs_approval"] and pending[0].get("decision") is None


def awaiting_approval(pending: Sequence[dict]) -> list[dict]:
    """The calls of ``pending`` that wait for a person's decision."""
    return [c for c in pending if c["needs_approval"] and c.get("decision") is None]


NEEDS_APPROVAL = Condition(
    [], lambda state: waits_for_decision(state.get(PENDING) or []), "needs approval", [PENDING]
)
HAS_TOOL_CALLS = Condition([], lambda state: bool(state.get(PENDING)), "tool calls", [PENDING])

UNSAFE_TEXT = "I am afraid I can't respond to that..."
PROMPT_FOR_MORE_TEXT = (
    "None of the response modes I support apply to your question. "
    "I can answer a question, write a poem or write code. Please clarify?"
)


# Every action is async: in an async application Burr runs a plain function through its sync
# path, and then hands its post-step hooks (the persister's, the tracker's) the state from
# *before* the step (apache-burr 0.42 and 0.43).


@action(reads=["chat_history", PENDING], writes=["chat_history", "prompt", PENDING, ROUNDS])
async def process_prompt(state: State, prompt: str) -> tuple[dict, State]:
    """Add the user's message to the history.

    A prompt equal to a last user message that got no answer (its turn failed) retries it
    instead of adding it twice. Tool calls still waiting (for approval, or cut by a stop) are
    recorded as denied, reason :data:`SUPERSEDED`: every call an answer made has a result.
    """
    item = {"role": "user", "content": prompt, "type": "text"}
    pending = state.get(PENDING) or []
    if pending:
        denials = [_denied(call, SUPERSEDED) for call in pending]
        state = state.merge(State({"chat_history": [*state["chat_history"], *denials]}))
    cleared = {"prompt": prompt, PENDING: [], ROUNDS: 0}
    result: dict[str, Any] = {"chat_item": item}
    if pending:
        result["superseded"] = [{"id": c["id"], "name": c["name"]} for c in pending]
    if retries(state["chat_history"], prompt):
        return {**result, "retry": True}, state.update(**cleared)
    return result, _appended(state, item).update(**cleared)


def denied_text(reason: Optional[str]) -> str:
    """What the model is told of a call that was denied (or superseded), with ``reason``."""
    return DENIED_TEXT + (f" Reason: {reason}" if reason else "")


def _denied(call: dict, reason: Optional[str]) -> dict:
    """The tool message of a call that did not run: denied, with ``reason``."""
    return {
        "role": "tool",
        "content": denied_text(reason),
        "type": "text",
        "tool_call_id": call["id"],
        "name": call["name"],
        "status": "denied",
        "duration_ms": None,
        "reason": reason,
    }


def retries(history: Sequence[dict], prompt: str) -> bool:
    """True when ``prompt`` is the history's last message, a user's that got no answer: the
    ``prompt`` step then answers it again instead of adding it twice."""
    return bool(history) and history[-1]["role"] == "user" and history[-1]["content"] == prompt


@action(reads=["prompt"], writes=["safe"])
async def check_safety(state: State) -> tuple[dict, State]:
    """A stand-in safety check (the blog post's): a prompt containing "unsafe" is unsafe."""
    safe = "unsafe" not in state["prompt"].lower()
    return {"safe": safe}, state.update(safe=safe)


@action(reads=["prompt"], writes=["mode"])
async def decide_mode(state: State, llm: ChatModel) -> tuple[dict, State]:
    """The first LLM call: pick the mode that answers this prompt."""
    mode = await llm.choose_mode(state["prompt"])
    return {"mode": mode}, state.update(mode=mode)


def _appended(state: State, item: dict) -> State:
    """The state with ``item`` added to the history: a new list of the same items.

    Not ``state.append`` nor ``state.update``: Burr deep-copies the field they change, which
    costs tens of milliseconds per step once a conversation has a thousand turns. ``merge`` is
    shallow, and messages are never changed once written, so sharing them is safe.
    """
    return state.merge(State({"chat_history": [*state["chat_history"], item]}))


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None and hasattr(task, "uncancel"):  # Python 3.11+
        task.uncancel()


def _finish(state: State, item: dict) -> State:
    return _appended(state, item).update(response=item)


def answer_options(state: State) -> dict[str, Any]:
    """The keyword arguments of :meth:`.ChatModel.stream_answer` the conversation's
    :data:`ANSWER_SETTINGS` ask for: only those it sets (none: the server's defaults)."""
    chosen = state.get(ANSWER_SETTINGS) or {}
    names = ("model", "system_prompt", "temperature")
    return {name: chosen[name] for name in names if chosen.get(name) is not None}


@streaming_action(
    reads=["chat_history", ROUNDS, ANSWER_SETTINGS],
    writes=["chat_history", "response", PENDING, ROUNDS],
)
async def answer(
    state: State, llm: ChatModel, mode: str, toolbox: Toolbox, max_rounds: int
) -> StreamStep:
    """Stream the answer model's reply for ``mode`` (bound per node of the graph), offering it
    ``toolbox``'s tools: its thinking as ``{"reasoning": text}`` items, its text as
    ``{"delta": text}`` items, the tool calls it makes as ``{"tool_call_start": ...}``,
    ``{"tool_call_args": ...}`` and, once whole, ``{"tool_call": ...}`` items, then
    :data:`ANSWERED`. The result has the answer (its thinking in ``reasoning``, its calls in
    ``tool_calls``) and the tokens it cost (``usage``, when the model server says); the calls
    go to :data:`PENDING`, for the ``run_tool`` steps.

    If the model fails after some text arrived, that text is kept, marked ``interrupted``, and
    the result carries the ``error`` (tool calls it was making are dropped); if it fails before
    any text, the action fails (Burr's tracker records it) and the history keeps what it had.
    After ``max_rounds`` rounds of calls in one turn, more calls are not made: the answer says
    so instead. The conversation's :data:`ANSWER_SETTINGS` (its model, system prompt and
    temperature) go to the model (:func:`answer_options`).
    """
    pieces: list[str] = []
    thoughts: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage: Optional[Usage] = None
    error: Optional[UpstreamError] = None
    rounds = state.get(ROUNDS) or 0
    tools = toolbox.openai_tools()
    options = answer_options(state)
    try:
        async for piece in llm.stream_answer(mode, state["chat_history"], tools, **options):
            if type(piece) is str:  # (the answer's text: by far the most frequent, tested first)
                pieces.append(piece)
                yield {"delta": piece}, None
            elif isinstance(piece, Thought):
                thoughts.append(piece)
                yield {"reasoning": str(piece)}, None
            elif isinstance(piece, ToolCallPiece):
                for stream_item in _tool_call_items(calls, piece):
                    yield stream_item, None
            elif isinstance(piece, Usage):
                usage = piece
    except UpstreamError as exc:
        if not pieces:
            raise
        error = exc
    except asyncio.CancelledError:
        # Stopped (the reader left, or asked to stop): keep what was said, then end normally.
        if not pieces:
            raise
        _uncancel()
        error = stopped_upstream()
    tool_calls: list[dict[str, Any]] = []
    over_limit = False
    if calls and error is None:
        if rounds >= max_rounds:
            over_limit = True
        else:
            for call in calls.values():
                whole = {
                    "id": call["id"],
                    "name": call["name"],
                    "arguments": "".join(call["arguments"]),
                    "needs_approval": toolbox.needs_approval(call["name"]),
                }
                tool_calls.append(whole)
                yield {"tool_call": whole}, None
    yield ANSWERED, None  # (no await since the last piece or the stop: nothing can cut in)
    text = "".join(pieces)
    if over_limit:
        text += ("\n\n" if text else "") + TOOL_LIMIT_TEXT.format(rounds=rounds)
    item: dict[str, Any] = {
        "role": "assistant",
        "content": text,
        "type": "code" if mode == "generate_code" and not tool_calls else "text",
        "mode": mode,
        "model": options.get("model", llm.answer_name) if not llm.offline else llm.answer_name,
    }
    if thoughts:
        item["reasoning"] = "".join(thoughts)
    if tool_calls:
        item["tool_calls"] = tool_calls
    result: dict = {"response": item, "usage": usage.as_dict() if usage is not None else None}
    if error is not None:
        item["interrupted"] = True
        result["error"] = {
            "code": error.code,
            "message": error.message,
            "retryable": error.retryable,
        }
    # The calls that need no approval run first: a person is asked once the others have their
    # results (the AI SDK's client sends an approval back only when no other call of the
    # message is left without one).
    ordered = sorted(tool_calls, key=lambda call: call["needs_approval"])
    pending = [{**call, "decision": None} for call in ordered]
    yield (
        result,
        _finish(state, item).update(
            **{PENDING: pending, ROUNDS: rounds + 1 if pending else rounds}
        ),
    )


def _tool_call_items(calls: dict[int, dict[str, Any]], piece: ToolCallPiece) -> list[dict]:
    """The stream items a piece of a tool call makes: ``tool_call_start`` for its first piece,
    ``tool_call_args`` for more of its arguments."""
    items: list[dict] = []
    call = calls.get(piece.index)
    if call is None:
        call = calls[piece.index] = {
            "id": piece.id or f"call_{piece.index}_{secrets.token_hex(4)}",
            "name": piece.name or "",
            "arguments": [],
        }
        items.append({"tool_call_start": {"id": call["id"], "name": call["name"]}})
    elif piece.name and not call["name"]:
        call["name"] = piece.name
    if piece.arguments:
        call["arguments"].append(piece.arguments)
        items.append({"tool_call_args": {"id": call["id"], "delta": piece.arguments}})
    return items


@action(reads=["chat_history", PENDING], writes=["chat_history", PENDING])
async def run_tool(
    state: State,
    toolbox: Toolbox,
    notebook: NoteBook,
    timeout_s: float,
    project_id: str,
    __context: ApplicationContext,
) -> tuple[dict, State]:
    """Run the first of the round's pending tool calls (or record its denial): its result, or
    its error, becomes a ``tool`` message of the history, for the model's next round."""
    pending = list(state[PENDING])
    call = pending[0]
    decision = call.get("decision")
    result: dict[str, Any] = {
        "tool_call_id": call["id"],
        "name": call["name"],
        "arguments": call["arguments"],
    }
    if call["needs_approval"] and not (decision and decision["approved"]):
        reason = decision.get("reason") if decision else None
        item = _denied(call, reason)
        result.update(status="denied", reason=reason, duration_ms=None)
    else:
        context = ToolContext(project_id=project_id, app_id=__context.app_id, notes=notebook)
        outcome = await toolbox.call(call["name"], call["arguments"], context, timeout_s)
        duration = round(outcome.duration_ms, 2)
        item = {
            "role": "tool",
            "content": outcome.content,
            "type": "text",
            "tool_call_id": call["id"],
            "name": call["name"],
            "status": outcome.status,
            "duration_ms": duration,
        }
        result.update(status=outcome.status, content=outcome.content, duration_ms=duration)
    return result, _appended(state, item).update(**{PENDING: pending[1:]})


@action(reads=[PENDING], writes=[PENDING])
async def tool_approval(state: State, decisions: list[dict]) -> tuple[dict, State]:
    """Record a person's decisions (``{"tool_call_id", "approved", "reason"}``) on the calls
    waiting for them; the graph halts before this step until they come."""
    given = {d["tool_call_id"]: d for d in decisions}
    pending = []
    recorded = []
    for call in state.get(PENDING) or []:
        decision = given.get(call["id"])
        if decision is not None and call["needs_approval"] and call.get("decision") is None:
            call = {
                **call,
                "decision": {"approved": decision["approved"], "reason": decision.get("reason")},
            }
            recorded.append({"tool_call_id": call["id"], **call["decision"]})
        pending.append(call)
    return {"decisions": recorded}, state.update(**{PENDING: pending})


async def _stream_fixed(state: State, text: str, mode: str) -> StreamStep:
    for piece in re.findall(r"\S+\s*", text):
        await asyncio.sleep(0)
        yield {"delta": piece}, None
    yield ANSWERED, None
    item = {"role": "assistant", "content": text, "type": "text", "mode": mode, "model": "none"}
    yield {"response": item}, _finish(state, item)


@streaming_action(reads=["chat_history"], writes=["chat_history", "response"])
async def unsafe_response(state: State) -> StreamStep:
    """A fixed refusal, streamed; no LLM call."""
    async for step in _stream_fixed(state, UNSAFE_TEXT, "unsafe"):
        yield step


@streaming_action(reads=["chat_history"], writes=["chat_history", "response"])
async def prompt_for_more(state: State) -> StreamStep:
    """A fixed request for clarification, streamed; no LLM call."""
    async for step in _stream_fixed(state, PROMPT_FOR_MORE_TEXT, "unknown"):
        yield step


def build_graph(
    llm: ChatModel,
    toolbox: Optional[Toolbox] = None,
    notebook: Optional[NoteBook] = None,
    max_tool_rounds: int = 5,
    tool_timeout_s: float = 10.0,
) -> Graph:
    """The chatbot's state machine, with ``llm`` bound into the actions that call a model, and
    ``toolbox`` (none by default) into those that offer and run tools; ``notebook`` is where
    tools save notes."""
    toolbox = toolbox if toolbox is not None else Toolbox(())
    answering = {"llm": llm, "toolbox": toolbox, "max_rounds": max_tool_rounds}
    return (
        GraphBuilder()
        .with_actions(
            prompt=process_prompt,
            check_safety=check_safety,
            decide_mode=decide_mode.bind(llm=llm),
            unsafe_response=unsafe_response,
            prompt_for_more=prompt_for_more,
            **{mode: answer.bind(mode=mode, **answering) for mode in ANSWER_MODES},
            run_tool=run_tool.bind(toolbox=toolbox, notebook=notebook, timeout_s=tool_timeout_s),
            tool_approval=tool_approval,
        )
        .with_transitions(
            ("prompt", "check_safety", default),
            ("check_safety", "decide_mode", when(safe=True)),
            ("check_safety", "unsafe_response", default),
            *(("decide_mode", mode, when(mode=mode)) for mode in ANSWER_MODES),
            ("decide_mode", "prompt_for_more", default),
            (list(ANSWER_MODES), "tool_approval", NEEDS_APPROVAL),
            (list(ANSWER_MODES), "run_tool", HAS_TOOL_CALLS),
            ("run_tool", "tool_approval", NEEDS_APPROVAL),
            ("run_tool", "run_tool", HAS_TOOL_CALLS),
            *(("run_tool", mode, when(mode=mode)) for mode in ANSWER_MODES),
            ("run_tool", "prompt", default),
            ("tool_approval", "tool_approval", NEEDS_APPROVAL),
            ("tool_approval", "run_tool", default),
            (list(TERMINAL_ACTIONS), "prompt"),
        )
        .build()
    )
