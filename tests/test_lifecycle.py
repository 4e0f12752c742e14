"""A turn's life (lifecycle.py): the transition table, what a stop does in each state, and the
signals the real producer sends. No server, no subprocess."""

import asyncio
import itertools
from pathlib import Path

import pytest

from burr_streaming_chatbot import lifecycle
from burr_streaming_chatbot.answering import TurnRequest, turn_events
from burr_streaming_chatbot.errors import INTERNAL, error_event
from burr_streaming_chatbot.lifecycle import (
    STOP_ACCEPTED,
    TRANSITIONS,
    IllegalTransition,
    Signal,
    TurnState,
    cancels,
    next_state,
)
from burr_streaming_chatbot.service import ChatService
from burr_streaming_chatbot.settings import Settings
from burr_streaming_chatbot.turns import LocalTurn
from burr_streaming_chatbot.wire import TurnEvent

REFUSED = [pair for pair in itertools.product(TurnState, Signal) if pair not in TRANSITIONS]


@pytest.mark.parametrize(("state", "signal"), list(TRANSITIONS), ids=lambda x: x.name)
def test_every_allowed_transition_leads_where_the_table_says(
    state: TurnState, signal: Signal
) -> None:
    assert next_state(state, signal) is TRANSITIONS[state, signal]


@pytest.mark.parametrize(("state", "signal"), REFUSED, ids=lambda x: x.name)
def test_every_other_transition_is_refused(state: TurnState, signal: Signal) -> None:
    with pytest.raises(IllegalTransition, match=f"{signal.name} cannot happen in {state.name}"):
        next_state(state, signal)


def test_the_refused_transitions_are_the_ones_that_cannot_happen() -> None:
    """(What the table leaves out, spelled out: a second last event, an end before the last
    event, an answer before the prompt is saved, the prompt saved twice.)"""
    assert (TurnState.ENDING, Signal.LAST_EVENT) in REFUSED
    assert (TurnState.DONE, Signal.LAST_EVENT) in REFUSED
    assert all(
        (state, Signal.ENDED) in REFUSED for state in TurnState if state is not TurnState.ENDING
    )
    assert (TurnState.SAVING_PROMPT, Signal.ANSWERED) in REFUSED
    assert (TurnState.ANSWERING, Signal.PROMPT_SAVED) in REFUSED
    assert len(REFUSED) + len(TRANSITIONS) == len(TurnState) * len(Signal)


def test_a_stop_is_accepted_until_the_answer_is_whole_and_refused_after() -> None:
    accepted = {state: next_state(state, Signal.STOP) in STOP_ACCEPTED for state in TurnState}
    assert accepted == {
        TurnState.SAVING_PROMPT: True,  # (waits for the prompt's save)
        TurnState.STOP_PENDING: True,
        TurnState.ANSWERING: True,
        TurnState.STOPPING: True,  # (already cancelled: not again)
        TurnState.ANSWERED: False,
        TurnState.CUT: False,
        TurnState.ENDING: False,
        TurnState.DONE: False,
    }
    # A refused stop changes nothing.
    for state in (TurnState.ANSWERED, TurnState.CUT, TurnState.ENDING, TurnState.DONE):
        assert next_state(state, Signal.STOP) is state


def test_the_task_is_cancelled_once_on_entering_stopping_and_never_after_the_answer() -> None:
    cancelling = [
        (before, signal)
        for (before, signal), after in TRANSITIONS.items()
        if cancels(before, after)
    ]
    assert cancelling == [
        (TurnState.STOP_PENDING, Signal.PROMPT_SAVED),  # the stop waited for the prompt's save
        (TurnState.ANSWERING, Signal.STOP),
    ]
    # Nothing leads back into STOPPING once it is left, so no path cancels twice.
    after_stopping = {TurnState.CUT, TurnState.ENDING, TurnState.DONE}
    assert all(
        after is not TurnState.STOPPING
        for (before, _), after in TRANSITIONS.items()
        if before in after_stopping
    )


def test_every_state_is_reached_from_the_start_and_every_state_reaches_done() -> None:
    def reachable(start: TurnState) -> set[TurnState]:
        seen, todo = {start}, [start]
        while todo:
            state = todo.pop()
            for (before, _), after in TRANSITIONS.items():
                if before is state and after not in seen:
                    seen.add(after)
                    todo.append(after)
        return seen

    assert reachable(TurnState.SAVING_PROMPT) == set(TurnState)
    assert all(TurnState.DONE in reachable(state) for state in TurnState)


def test_the_module_s_table_lists_every_state() -> None:
    doc = lifecycle.__doc__ or ""
    names = {state.name for state in TurnState}
    rows = [
        line.split()[0]
        for line in doc.splitlines()
        if line[:1].isupper() and line.split()[0] in names
    ]
    assert rows == [state.name for state in TurnState]


def message() -> TurnEvent:
    return TurnEvent("message", '{"type":"message","value":{}}')


async def test_a_stop_while_the_prompt_is_saved_waits_for_the_save_then_cancels_once() -> None:
    saving = asyncio.Event()
    went_on: list[str] = []

    async def producer():  # type: ignore[no-untyped-def]
        yield TurnEvent("chat_history", '{"type":"chat_history","value":[]}')
        await saving.wait()  # the prompt's save, which a cancel must not cut
        went_on.append("saved")
        yield Signal.PROMPT_SAVED
        await asyncio.sleep(10)  # the answer, cut by the pending stop
        went_on.append("not cut")

    turn = LocalTurn(("p", "c"), grace_s=1)
    turn.task = asyncio.create_task(turn.record(producer()))
    await asyncio.sleep(0.01)
    assert turn.stop() is True and turn.state is TurnState.STOP_PENDING
    assert turn.stop() is True and turn.state is TurnState.STOP_PENDING
    saving.set()
    await asyncio.wait_for(turn.task, 5)
    assert went_on == ["saved"]
    assert turn.state is TurnState.ENDING
    assert (
        turn.events[-1].type == "error" and turn.events[-1].parsed()["value"]["code"] == "stopped"
    )


async def test_a_stop_while_the_end_is_recorded_is_refused_and_cancels_nothing() -> None:
    async def producer():  # type: ignore[no-untyped-def]
        yield Signal.PROMPT_SAVED
        yield error_event(INTERNAL)

    turn = LocalTurn(("p", "c"), grace_s=1)
    await turn.record(producer())
    assert turn.state is TurnState.ENDING
    writing = asyncio.create_task(asyncio.sleep(0.05))  # (the end being written)
    turn.task = writing
    assert turn.stop() is False
    await writing  # not cancelled
    turn.end()
    assert turn.state is TurnState.DONE and turn.stop() is False


@pytest.mark.parametrize(
    "items",
    [
        [Signal.PROMPT_SAVED, TurnEvent("delta", "a")],  # no last event
        [Signal.ANSWERED, TurnEvent("delta", "a"), message()],  # the answer before the prompt
        [Signal.PROMPT_SAVED, Signal.STOP, message()],  # a signal no producer says
        [Signal.PROMPT_SAVED, message(), TurnEvent("delta", "late")],  # after the last event
    ],
    ids=["no-last-event", "answer-before-prompt", "foreign-signal", "event-after-the-end"],
)
async def test_a_producer_that_breaks_the_lifecycle_ends_the_turn_with_one_last_event(
    items: list,
) -> None:
    async def producer():  # type: ignore[no-untyped-def]
        for item in items:
            yield item

    turn = LocalTurn(("p", "c"), grace_s=1)
    await turn.record(producer())
    assert turn.state is TurnState.ENDING
    last = [event for event in turn.events if event.is_last]
    assert len(last) == 1 and turn.events[-1] is last[0]


async def test_the_real_producer_says_when_the_prompt_is_saved_and_when_the_answer_is_whole(
    tmp_path: Path,
) -> None:
    service = ChatService(Settings(offline=True, offline_delay_ms=1, storage_dir=tmp_path))
    await service.open()
    try:
        for number, prompt in enumerate(["What is Burr?", "Something unsafe"]):
            app_id = f"c{number}"
            lease = await service.store.acquire("p", app_id, "t", 30)
            assert lease is not None
            opened = await service.conversations.open_turn("p", app_id, lease)
            items = [item async for item in turn_events(TurnRequest("p", app_id, opened, prompt))]
            kinds = [item.name if isinstance(item, Signal) else item.type for item in items]
            steps = [
                item.parsed()["value"]["action"]
                if isinstance(item, TurnEvent) and item.type == "action"
                else kind
                for item, kind in zip(items, kinds, strict=True)
            ]
            # Saved right after the `prompt` step, before the next one starts.
            assert steps[:4] == ["chat_history", "prompt", "PROMPT_SAVED", "check_safety"], steps
            # Whole right after the last delta, before the answer's save (the message).
            assert kinds[-2:] == ["ANSWERED", "message"] and kinds[-3] == "delta", kinds
            assert kinds.count("PROMPT_SAVED") == kinds.count("ANSWERED") == 1
            await service.store.finish("p", app_id, "t", None)
        history = await service.history("p", "c1")
        assert [item["role"] for item in history] == ["user", "assistant"]  # (the app was closed)
    finally:
        await service.close()
