"""The Burr actions and the state machine, declared once with ``GraphBuilder``.

prompt → check_safety → decide_mode → one streaming answer action → back to prompt.
The model is bound into the actions when the graph is built, so it never enters Burr's
tracking logs as an input.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, Sequence
from typing import Any, Optional

from burr.core import State, default, when
from burr.core.action import action, streaming_action
from burr.core.graph import Graph, GraphBuilder

from .errors import stopped_upstream
from .llm import ChatModel, Thought, UpstreamError, Usage

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
"""The streaming actions that end a turn; the server halts after any of them."""

UNSAFE_TEXT = "I am afraid I can't respond to that..."
PROMPT_FOR_MORE_TEXT = (
    "None of the response modes I support apply to your question. "
    "I can answer a question, write a poem or write code. Please clarify?"
)


# Every action is async: in an async application Burr runs a plain function through its sync
# path, and then hands its post-step hooks (the persister's, the tracker's) the state from
# *before* the step (apache-burr 0.42 and 0.43).


@action(reads=["chat_history"], writes=["chat_history", "prompt"])
async def process_prompt(state: State, prompt: str) -> tuple[dict, State]:
    """Add the user's message to the history.

    A prompt equal to a last user message that got no answer (its turn failed) retries it
    instead of adding it twice.
    """
    item = {"role": "user", "content": prompt, "type": "text"}
    if retries(state["chat_history"], prompt):
        return {"chat_item": item, "retry": True}, state.update(prompt=prompt)
    return {"chat_item": item}, _appended(state, item).update(prompt=prompt)


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


@streaming_action(reads=["chat_history"], writes=["chat_history", "response"])
async def answer(state: State, llm: ChatModel, mode: str) -> StreamStep:
    """Stream the answer model's reply for ``mode`` (bound per node of the graph): its
    thinking as ``{"reasoning": text}`` items, its text as ``{"delta": text}`` items, then
    :data:`ANSWERED`. The result has the answer (its thinking in ``reasoning``) and the tokens
    it cost (``usage``, when the model server says).

    If the model fails after some text arrived, that text is kept, marked ``interrupted``, and
    the result carries the ``error``; if it fails before any text, the action fails (Burr's
    tracker records it) and the history keeps only the user's message.
    """
    pieces: list[str] = []
    thoughts: list[str] = []
    usage: Optional[Usage] = None
    error: Optional[UpstreamError] = None
    try:
        async for piece in llm.stream_answer(mode, state["chat_history"]):
            if isinstance(piece, Usage):
                usage = piece
            elif isinstance(piece, Thought):
                thoughts.append(piece)
                yield {"reasoning": str(piece)}, None
            else:
                pieces.append(piece)
                yield {"delta": piece}, None
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
    yield ANSWERED, None  # (no await since the last piece or the stop: nothing can cut in)
    item: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(pieces),
        "type": "code" if mode == "generate_code" else "text",
        "mode": mode,
        "model": llm.answer_name,
    }
    if thoughts:
        item["reasoning"] = "".join(thoughts)
    result: dict = {"response": item, "usage": usage.as_dict() if usage is not None else None}
    if error is not None:
        item["interrupted"] = True
        result["error"] = {
            "code": error.code,
            "message": error.message,
            "retryable": error.retryable,
        }
    yield result, _finish(state, item)


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


def build_graph(llm: ChatModel) -> Graph:
    """The chatbot's state machine, with ``llm`` bound into the actions that call a model."""
    return (
        GraphBuilder()
        .with_actions(
            prompt=process_prompt,
            check_safety=check_safety,
            decide_mode=decide_mode.bind(llm=llm),
            unsafe_response=unsafe_response,
            prompt_for_more=prompt_for_more,
            **{mode: answer.bind(llm=llm, mode=mode) for mode in ANSWER_MODES},
        )
        .with_transitions(
            ("prompt", "check_safety", default),
            ("check_safety", "decide_mode", when(safe=True)),
            ("check_safety", "unsafe_response", default),
            *(("decide_mode", mode, when(mode=mode)) for mode in ANSWER_MODES),
            ("decide_mode", "prompt_for_more", default),
            (list(TERMINAL_ACTIONS), "prompt"),
        )
        .build()
    )
