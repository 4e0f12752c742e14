"""The events a finished turn keeps for late readers."""

import pytest

from burr_streaming_chatbot.turns import PackedEvents
from burr_streaming_chatbot.wire import TurnEvent


def test_packed_events_read_back_as_recorded() -> None:
    events = [
        TurnEvent("chat_history", '{"type":"chat_history","value":[]}'),
        TurnEvent("delta", "Hé"),
        TurnEvent("delta", ""),
        TurnEvent("delta", " 🌍 line\nbreak"),
        TurnEvent("mode", '{"type":"mode","value":"answer_question"}'),
        TurnEvent("delta", "{not json}"),
        TurnEvent("reasoning", '{"type":"reasoning","value":"hmm"}'),
        TurnEvent("message", '{"type":"message","value":{}}'),
    ]
    packed = PackedEvents(events)
    assert len(packed) == len(events)
    assert [packed[i] for i in range(len(events))] == events
    assert packed[2:] == events[2:]
    assert packed[len(events) :] == []
    assert packed[-1] == events[-1]
    assert [event.type for event in packed] == [event.type for event in events]
    with pytest.raises(IndexError):
        packed[len(events)]
    assert list(PackedEvents([])) == []


async def test_a_turn_s_last_event_reaches_the_store_only_with_the_end_of_its_lease(
    tmp_path,
) -> None:
    """Readers on other processes must never see an answer end while its lease still holds
    (a client that saw the end may send its next prompt there at once): the keeper, which
    publishes new events every few milliseconds here, leaves the last one to the turn's end."""
    import asyncio

    from burr_streaming_chatbot.storage.sqlite import SQLiteStore
    from burr_streaming_chatbot.turns import TurnRunner, new_token
    from burr_streaming_chatbot.wire import ErrorEvent, ErrorValue, MessageEvent

    store = SQLiteStore(tmp_path, "here:1:x")
    await store.open()
    seen_at_finish: list[list] = []
    finish = store.finish

    async def finish_and_look(project_id, app_id, token, last):  # type: ignore[no-untyped-def]
        batches = await store.events(project_id, token, 0)
        seen_at_finish.append([event for batch in batches for event in batch.events])
        await finish(project_id, app_id, token, last)

    store.finish = finish_and_look  # type: ignore[method-assign]
    turns = TurnRunner(grace_s=1, store=store, publish_s=0.002)
    ends = [
        MessageEvent.model_validate(
            {
                "value": {
                    "item": {"content": "ab", "role": "assistant"},
                    "mode": "unknown",
                    "model": "m",
                    "ttft_ms": None,
                    "deltas": 2,
                    "sequence_id": 3,
                    "path": [],
                }
            }
        ),
        ErrorEvent(value=ErrorValue(code="internal", message="x", retryable=True)),
    ]
    for number, end in enumerate(ends):

        async def events(end=end):  # type: ignore[no-untyped-def]
            yield TurnEvent("delta", "a")
            await asyncio.sleep(0.02)
            yield TurnEvent("delta", "b")
            yield TurnEvent.of(end)
            await asyncio.sleep(0.05)  # the keeper ticks many times before the turn ends

        app_id = f"c{number}"
        token = new_token()
        assert await store.acquire("p", app_id, token, 30) is not None
        turn = turns.begin(("p", app_id), token, events())
        assert turn.task is not None
        await turn.task
        # Published before the end: some of the deltas, never the last event.
        deltas = [TurnEvent("delta", "a"), TurnEvent("delta", "b")]
        assert seen_at_finish[-1] in (deltas[:1], deltas)
        stored = [e for batch in await store.events("p", token, 0) for e in batch.events]
        assert stored == [*deltas, TurnEvent.of(end)] and (await store.current("p", app_id)).done
    await turns.stop_all()
    await store.aclose()


async def test_a_stop_never_cuts_the_save_of_a_whole_or_already_cut_answer() -> None:
    """Once the answering step says its answer is whole (or cut by a first stop), a stop has
    nothing to do: it must not cancel the turn while that answer is being saved; and a turn is
    cancelled once, however many stops come (a second cancel landed in the first one's save)."""
    import asyncio

    from burr_streaming_chatbot.lifecycle import Signal
    from burr_streaming_chatbot.turns import LocalTurn

    async def answer(saving: asyncio.Event, saved: list[str], cut: bool):  # type: ignore[no-untyped-def]
        # The prompt is saved: a stop now cancels at once (before, it waits for the save).
        yield Signal.PROMPT_SAVED
        try:
            yield TurnEvent("delta", "some text")
            if cut:
                await asyncio.sleep(10)  # the model streams on, until a stop cancels this
                saved.append("not cut")
        except asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  (as graph.answer)
            saved.append("cut")
        yield Signal.ANSWERED  # (as graph.answer, with no await since the stop)
        saving.set()
        await asyncio.sleep(0.05)  # the save, which a cancel would cut
        saved.append("answer")
        yield TurnEvent("message", '{"type":"message","value":{}}')

    for cut in (False, True):
        saving, saved = asyncio.Event(), []
        turn = LocalTurn(("p", "c"), grace_s=1)
        turn.task = asyncio.create_task(turn.record(answer(saving, saved, cut)))
        if cut:
            await asyncio.sleep(0.02)
            assert turn.stop() is True  # the first stop cuts the answer
        await saving.wait()
        assert turn.stop() is False and turn.stop() is False  # then nothing left to stop
        await asyncio.wait_for(turn.task, 5)  # type: ignore[arg-type]  (a cut answer ends at once)
        assert saved == (["cut", "answer"] if cut else ["answer"]), cut
        assert turn.events[-1].type == "message"


async def test_a_listener_that_comes_while_the_end_is_recorded_waits_for_it() -> None:
    """The turn's last event reaches no listener before the store has recorded the turn's end,
    not even one that starts following (a reattach) while that is written: its client could
    otherwise send the next prompt while the conversation's lease still holds (a 409)."""
    import asyncio

    from burr_streaming_chatbot.turns import LocalTurn
    from burr_streaming_chatbot.wire import MessageEvent

    recording = asyncio.Event()
    recorded = asyncio.Event()

    async def events():  # type: ignore[no-untyped-def]
        yield TurnEvent("delta", "text")
        yield TurnEvent.of(
            MessageEvent.model_validate(
                {
                    "value": {
                        "item": {"content": "text", "role": "assistant"},
                        "mode": "unknown",
                        "model": "m",
                        "ttft_ms": None,
                        "deltas": 1,
                        "sequence_id": 3,
                        "path": [],
                    }
                }
            )
        )

    async def run(turn: LocalTurn) -> None:  # (as TurnRunner does, the store a short sleep)
        await turn.record(events())
        recording.set()
        await asyncio.sleep(0.1)
        recorded.set()
        turn.end()

    turn = LocalTurn(("p", "c"), grace_s=1)
    turn.task = asyncio.create_task(run(turn))
    await recording.wait()
    got = []
    async for _, batch in turn.follow(0):
        got.append((recorded.is_set(), list(batch)))
    assert got[0] == (False, [TurnEvent("delta", "text")])  # what came before the end, at once
    assert got[-1][0] is True and got[-1][1][-1].type == "message"  # the end, only once recorded
