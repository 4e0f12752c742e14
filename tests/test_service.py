"""The chatbot without HTTP: ``ChatService`` driven directly, with the offline model and a
SQLite store in a temporary folder (no server, no subprocess)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from burr_streaming_chatbot.service import (
    MAX_QUEUED,
    Busy,
    ChatService,
    Invalid,
    NotFound,
    Unavailable,
)
from burr_streaming_chatbot.settings import Settings
from burr_streaming_chatbot.turns import FollowedTurn
from burr_streaming_chatbot.wire import TurnEvent

PROJECT = "svc"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ChatService]:
    chat = ChatService(
        Settings(offline=True, offline_delay_ms=2, storage_dir=tmp_path, max_streams=2)
    )
    await chat.open()
    yield chat
    await chat.close()


async def events_of(turn: FollowedTurn) -> list[TurnEvent]:
    return [event async for _, batch in turn.follow(0) for event in batch]


def text_of(events: list[TurnEvent]) -> str:
    return "".join(event.data for event in events if event.type == "delta")


async def test_a_turn_is_one_sequence_of_events_and_its_answer_is_stored(
    service: ChatService,
) -> None:
    turn = await service.start_turn(PROJECT, "c1", "What is Burr?")
    events = await events_of(turn)
    types = [event.type for event in events]
    assert types[0] == "chat_history" and types[-1] == "message"
    assert types.count("delta") > 5 and "mode" in types
    actions = [event.parsed()["value"]["action"] for event in events if event.type == "action"]
    assert actions == ["prompt", "check_safety", "decide_mode", "answer_question"]
    message = events[-1].parsed()["value"]
    assert message["item"]["content"] == text_of(events)
    history = await service.history(PROJECT, "c1")
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "What is Burr?"),
        ("assistant", text_of(events)),
    ]
    assert [c.app_id for c in await service.conversation_list(PROJECT)] == ["c1"]
    assert await service.find_turn(PROJECT, "c1") is turn  # (kept a while for late readers)
    assert await service.find_turn(PROJECT, "nothing-here") is None


async def test_a_bad_prompt_is_refused_before_anything_is_written(service: ChatService) -> None:
    for prompt in ("", "   \n", "x" * (service.settings.max_prompt_chars + 1)):
        with pytest.raises(Invalid) as refused:
            await service.start_turn(PROJECT, "bad", prompt)
        assert refused.value.status_code == 422
    assert await service.conversation_list(PROJECT) == []
    assert await service.history(PROJECT, "bad") == []


async def test_one_answer_at_a_time_per_conversation_and_a_full_server_says_retry(
    service: ChatService,
) -> None:
    first = await service.start_turn(PROJECT, "c1", "What is Burr?")
    with pytest.raises(Busy) as refused:
        await service.start_turn(PROJECT, "c1", "And Hamilton?")
    assert refused.value.status_code == 409
    other = await service.start_turn(PROJECT, "c2", "What is Burr?")  # max_streams=2
    with pytest.raises(Unavailable) as full:
        await service.start_turn(PROJECT, "c3", "What is Burr?")
    assert full.value.status_code == 503 and full.value.headers == {"Retry-After": "1"}
    await events_of(first)
    await events_of(other)
    assert next(m["content"] for m in await service.history(PROJECT, "c1")) == "What is Burr?"
    assert len(await service.history(PROJECT, "c1")) == 2  # the refused prompt left nothing
    assert await service.history(PROJECT, "c3") == []


async def test_enqueued_prompts_are_answered_in_order_and_the_queue_is_bounded(
    service: ChatService,
) -> None:
    first = await service.start_turn(PROJECT, "q", "one?")
    waiting = [
        asyncio.create_task(service.start_turn(PROJECT, "q", f"{word}?", if_busy="enqueue"))
        for word in ("two", "three", "four")
    ]
    await asyncio.sleep(0.05)
    with pytest.raises(Busy, match=f"{MAX_QUEUED} prompts are already waiting"):
        await service.start_turn(PROJECT, "q", "five?", if_busy="enqueue")
    await events_of(first)
    for task in waiting:
        await events_of(await task)
    prompts = [m["content"] for m in await service.history(PROJECT, "q") if m["role"] == "user"]
    assert prompts == ["one?", "two?", "three?", "four?"]


async def test_interrupt_and_stop_keep_the_text_so_far_marked_interrupted(
    service: ChatService,
) -> None:
    first = await service.start_turn(PROJECT, "i", "Tell me about Burr?")
    reader = asyncio.create_task(events_of(first))
    while not any(event.type == "delta" for event in first.events):  # noqa: ASYNC110 (a test polls)
        await asyncio.sleep(0.005)
    second = await service.start_turn(PROJECT, "i", "Shorter, please?", if_busy="interrupt")
    stopped = await reader
    assert stopped[-1].type == "error" and stopped[-1].parsed()["value"]["code"] == "stopped"
    # The second turn runs; stop it midway too.
    while not any(event.type == "delta" for event in second.events):  # noqa: ASYNC110 (a test polls)
        await asyncio.sleep(0.005)
    assert await service.stop_turn(PROJECT, "i") is True
    await events_of(second)
    assert await service.stop_turn(PROJECT, "i") is False  # nothing streams any more
    history = await service.history(PROJECT, "i")
    assert [(m["role"], m.get("interrupted", False)) for m in history] == [
        ("user", False),
        ("assistant", True),
        ("user", False),
        ("assistant", True),
    ]
    assert history[1]["content"] and history[1]["content"] == text_of(stopped)


async def test_fork_and_branches(service: ChatService) -> None:
    await events_of(await service.start_turn(PROJECT, "root", "What is Burr?"))
    with pytest.raises(NotFound):
        await service.fork(PROJECT, "missing", 0)
    with pytest.raises(Invalid):
        await service.fork(PROJECT, "root", 3)  # it has two messages
    branch = await service.fork(PROJECT, "root", 1)
    assert await service.history(PROJECT, branch) == (await service.history(PROJECT, "root"))[:1]
    tree = await service.branches(PROJECT, branch)
    assert tree.root == "root" and branch in [b.app_id for b in tree.branches]
    with pytest.raises(NotFound):
        await service.branches(PROJECT, "missing")
