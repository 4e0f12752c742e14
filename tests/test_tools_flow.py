"""Tool calls as Burr steps, and a person's approval, driven through ``ChatService`` (no HTTP
server): with the offline model, and with the real OpenAI SDK against the fake server, which
streams tool calls as OpenAI does (arguments split over chunks, two calls in one message)."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeUpstream
from pydantic import TypeAdapter

from burr_streaming_chatbot.graph import SUPERSEDED, TOOL_LIMIT_TEXT
from burr_streaming_chatbot.service import ChatService, Invalid, NotFound, NotPending
from burr_streaming_chatbot.settings import Settings
from burr_streaming_chatbot.tools import DEMO_TOOLS, Tool, Toolbox, ToolContext
from burr_streaming_chatbot.turns import FollowedTurn
from burr_streaming_chatbot.wire import ChatEvent, Decision, TurnEvent

PROJECT = "tools"
EVENT = TypeAdapter(ChatEvent)


@pytest.fixture
async def offline(tmp_path: Path) -> AsyncIterator[ChatService]:
    chat = ChatService(Settings(offline=True, offline_delay_ms=1, storage_dir=tmp_path))
    await chat.open()
    yield chat
    await chat.close()


async def events_of(turn: FollowedTurn) -> list[TurnEvent]:
    events = [event async for _, batch in turn.follow(0) for event in batch]
    for event in events:  # every event is one of the wire contract's
        if event.type != "delta":
            EVENT.validate_json(event.data)
    return events


def of_type(events: list[TurnEvent], kind: str) -> list[dict[str, Any]]:
    return [event.parsed()["value"] for event in events if event.type == kind]


def actions(events: list[TurnEvent]) -> list[str]:
    return [value["action"] for value in of_type(events, "action")]


def text_of(events: list[TurnEvent]) -> str:
    return "".join(event.data for event in events if event.type == "delta")


async def ask(service: ChatService, app_id: str, prompt: str) -> list[TurnEvent]:
    return await events_of(await service.start_turn(PROJECT, app_id, prompt))


async def decide(
    service: ChatService, app_id: str, call_id: str, approved: bool, reason: Any = None
) -> list[TurnEvent]:
    decision = Decision(tool_call_id=call_id, approved=approved, reason=reason)
    return await events_of(await service.start_approval(PROJECT, app_id, [decision]))


async def test_a_tool_call_is_a_burr_step_and_the_model_answers_with_its_result(
    offline: ChatService,
) -> None:
    events = await ask(offline, "calc", "What is 6*7?")
    assert actions(events) == [
        "prompt",
        "check_safety",
        "decide_mode",
        "answer_question",
        "run_tool",
        "answer_question",
    ]
    (start,) = of_type(events, "tool_call_start")
    assert start["name"] == "calculator"
    args = "".join(value["delta"] for value in of_type(events, "tool_call_args"))
    (call,) = of_type(events, "tool_call")
    assert call["arguments"] == args and json.loads(args) == {"expression": "6*7"}
    assert call["needs_approval"] is False
    (result,) = of_type(events, "tool_result")
    assert result["id"] == start["id"] == call["id"]
    assert json.loads(result["result"])["result"] == "42"
    assert result["duration_ms"] >= 0
    message = events[-1].parsed()["value"]
    assert "42" in message["item"]["content"] and "awaiting_approval" not in message
    assert message["path"] == actions(events)
    # The text streams before and after the call; the history keeps both answers and the
    # result, so a reload shows them.
    history = await offline.history(PROJECT, "calc")
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[1]["tool_calls"][0]["id"] == call["id"]
    assert history[2]["tool_call_id"] == call["id"] and history[2]["status"] == "ok"
    assert text_of(events) == history[1]["content"] + history[3]["content"]
    # The next turn's chat_history event carries the tool fields.
    again = await ask(offline, "calc", "What is Burr?")
    (first,) = of_type(again, "chat_history")
    assert first[1]["tool_calls"][0]["name"] == "calculator"
    assert first[2]["role"] == "tool" and first[2]["status"] == "ok"
    assert "tool_calls" not in first[0]  # (absent on the messages that have none)


async def test_two_calls_in_one_answer_each_run_as_a_step(offline: ChatService) -> None:
    events = await ask(offline, "two", "What is 6*7 and what time is it in Tokyo?")
    assert actions(events).count("run_tool") == 2
    names = [value["name"] for value in of_type(events, "tool_result")]
    assert names == ["calculator", "current_time"]
    zone = json.loads(of_type(events, "tool_result")[1]["result"])
    assert zone["timezone"] == "Asia/Tokyo"


async def test_the_offline_router_matches_whole_words(offline: ChatService) -> None:
    assert await offline.llm.choose_mode("Show me python code to reverse a list") == (
        "generate_code"
    )
    assert await offline.llm.choose_mode("Write a poem about the sea") == "generate_poem"
    assert await offline.llm.choose_mode("remember to water the plants") == "answer_question"


async def test_a_call_that_needs_approval_halts_the_graph_until_a_person_decides(
    offline: ChatService,
) -> None:
    events = await ask(offline, "note", "remember to buy milk")
    assert actions(events)[-1] == "answer_question"  # (halted before tool_approval)
    (request,) = of_type(events, "tool_approval_request")
    assert request["name"] == "save_note" and "buy milk" in request["arguments"]
    message = events[-1].parsed()["value"]
    assert message["awaiting_approval"] == [request["id"]]
    assert message["item"]["tool_calls"][0]["needs_approval"] is True
    assert [a.id for a in await offline.pending_approvals(PROJECT, "note")] == [request["id"]]
    assert await offline.notes(PROJECT) == []  # nothing ran

    approved = await decide(offline, "note", request["id"], True)
    assert actions(approved)[:2] == ["tool_approval", "run_tool"]
    (result,) = of_type(approved, "tool_result")
    assert json.loads(result["result"])["saved"] is True
    assert [note.text for note in await offline.notes(PROJECT)] == ["buy milk"]
    assert "buy milk" in approved[-1].parsed()["value"]["item"]["content"]
    assert await offline.pending_approvals(PROJECT, "note") == []

    # Approving twice is a conflict; a call never made is not found; nothing is written.
    history = await offline.history(PROJECT, "note")
    with pytest.raises(NotPending) as twice:
        await offline.start_approval(
            PROJECT, "note", [Decision(tool_call_id=request["id"], approved=True)]
        )
    assert twice.value.status_code == 409
    with pytest.raises(NotFound):
        await offline.start_approval(
            PROJECT, "note", [Decision(tool_call_id="call_x", approved=True)]
        )
    with pytest.raises(NotFound):
        await offline.start_approval(
            PROJECT, "nobody", [Decision(tool_call_id="call_x", approved=True)]
        )
    with pytest.raises(Invalid):
        await offline.start_approval(PROJECT, "note", [])
    assert await offline.history(PROJECT, "note") == history


async def test_a_denied_call_is_recorded_and_the_model_is_told(offline: ChatService) -> None:
    events = await ask(offline, "deny", "note: call the plumber")
    (request,) = of_type(events, "tool_approval_request")
    denied = await decide(offline, "deny", request["id"], False, "not now")
    (value,) = of_type(denied, "tool_denied")
    assert value == {"id": request["id"], "name": "save_note", "reason": "not now"}
    assert "not now" in denied[-1].parsed()["value"]["item"]["content"]
    assert await offline.notes(PROJECT) == []
    tool = (await offline.history(PROJECT, "deny"))[2]
    assert (tool["role"], tool["status"], tool["reason"]) == ("tool", "denied", "not now")


async def test_a_new_prompt_supersedes_a_call_that_waits(offline: ChatService) -> None:
    events = await ask(offline, "super", "remember the milk")
    (request,) = of_type(events, "tool_approval_request")
    next_turn = await ask(offline, "super", "What is Burr?")
    (denied,) = of_type(next_turn, "tool_denied")
    assert denied == {"id": request["id"], "name": "save_note", "reason": SUPERSEDED}
    assert await offline.pending_approvals(PROJECT, "super") == []
    with pytest.raises(NotPending):
        await decide(offline, "super", request["id"], True)
    roles = [m["role"] for m in await offline.history(PROJECT, "super")]
    assert roles == ["user", "assistant", "tool", "user", "assistant"]
    assert await offline.notes(PROJECT) == []


async def test_approvals_are_accepted_by_another_service_on_the_same_store(
    tmp_path: Path,
) -> None:
    settings = Settings(offline=True, offline_delay_ms=1, storage_dir=tmp_path)
    first, second = ChatService(settings), ChatService(settings)
    await first.open()
    await second.open()
    try:
        events = await ask(first, "elsewhere", "remember the keys")
        (request,) = of_type(events, "tool_approval_request")
        await first.close()  # (as if its process were gone)
        assert [a.id for a in await second.pending_approvals(PROJECT, "elsewhere")] == [
            request["id"]
        ]
        approved = await decide(second, "elsewhere", request["id"], True)
        assert of_type(approved, "tool_result")
        assert [n.text for n in await second.notes(PROJECT)] == ["the keys"]
    finally:
        await second.close()


# -- the real SDK against the fake server ----------------------------------------------------


def upstream_settings(upstream: FakeUpstream, tmp_path: Path, **extra: Any) -> Settings:
    return Settings(
        openai_base_url=upstream.base_url,
        openai_api_key="sk-test",
        max_retries=0,
        request_timeout_s=5,
        storage_dir=tmp_path,
        **extra,
    )


async def service_for(upstream: FakeUpstream, tmp_path: Path, **extra: Any) -> ChatService:
    toolbox = extra.pop("toolbox", None)
    chat = ChatService(upstream_settings(upstream, tmp_path, **extra), toolbox=toolbox)
    await chat.open()
    return chat


async def test_streamed_tool_calls_through_the_sdk_run_and_go_back_to_the_model(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.control(
        route="answer_question",
        tool_text="Checking. ",
        tool_calls=[
            {"name": "calculator", "arguments": {"expression": "(2+3)*4"}},
            {"name": "current_time", "arguments": {"timezone": "Europe/Paris"}},
        ],
        text="Both done.",
    )
    chat = await service_for(upstream, tmp_path)
    try:
        events = await ask(chat, "sdk", "Compute and tell the time")
    finally:
        await chat.close()
    starts = of_type(events, "tool_call_start")
    assert [s["name"] for s in starts] == ["calculator", "current_time"]
    assert len(of_type(events, "tool_call_args")) > 4  # (split over chunks)
    results = of_type(events, "tool_result")
    assert json.loads(results[0]["result"])["result"] == "20"
    assert text_of(events) == "Checking. Both done."
    # The second request gave the model its calls and their results, by id.
    bodies = [
        b for b in upstream.stats()["request_bodies"] if isinstance(b, dict) and b.get("stream")
    ]
    assert len(bodies) == 2 and bodies[0]["tools"]
    sent = bodies[1]["messages"]
    assistant = next(m for m in sent if m.get("tool_calls"))
    ids = [c["id"] for c in assistant["tool_calls"]]
    assert ids == [s["id"] for s in starts]
    assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == ids


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ({"name": "no_such_tool", "arguments": {}}, "no_such_tool"),
        ({"name": "calculator", "arguments": "{not json"}, "JSON"),
        ({"name": "calculator", "arguments": {"expr": 1}}, "expression"),
        ({"name": "calculator", "arguments": {"expression": "1/0"}}, "zero"),
        ({"name": "raises", "arguments": {}}, "RuntimeError"),
        ({"name": "slow", "arguments": {}}, "0.2"),
    ],
    ids=["unknown", "not-json", "schema", "tool-error", "raises", "timeout"],
)
async def test_a_bad_call_is_a_tool_error_given_to_the_model_never_a_failed_turn(
    upstream: FakeUpstream, tmp_path: Path, call: dict, expected: str
) -> None:
    async def raises(arguments: dict, context: ToolContext) -> Any:
        raise RuntimeError("secret detail")

    async def slow(arguments: dict, context: ToolContext) -> Any:
        await asyncio.sleep(5)

    empty = {"type": "object", "properties": {}}
    toolbox = Toolbox(
        [*DEMO_TOOLS, Tool("raises", "fails", empty, raises), Tool("slow", "sleeps", empty, slow)]
    )
    upstream.control(route="answer_question", tool_calls=[call], text="Sorry about that.")
    chat = await service_for(upstream, tmp_path, toolbox=toolbox, tool_timeout_s=0.2)
    try:
        events = await ask(chat, "bad", "Use a tool")
        history = await chat.history(PROJECT, "bad")
    finally:
        await chat.close()
    (error,) = of_type(events, "tool_error")
    assert expected.lower() in error["error"].lower()
    assert "secret detail" not in error["error"]
    assert events[-1].type == "message"
    assert text_of(events).endswith("Sorry about that.")
    assert history[2]["status"] == "error" and history[2]["content"] == error["error"]


async def test_after_the_round_limit_the_turn_ends_saying_so(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.control(
        route="answer_question",
        tool_calls=[{"name": "calculator", "arguments": {"expression": "1+1"}}],
        tool_calls_always=True,
    )
    chat = await service_for(upstream, tmp_path, max_tool_rounds=2)
    try:
        events = await ask(chat, "loop", "Add forever")
    finally:
        await chat.close()
    assert actions(events).count("run_tool") == 2
    message = events[-1].parsed()["value"]
    assert TOOL_LIMIT_TEXT.format(rounds=2) in message["item"]["content"]
    assert "tool_calls" not in message["item"]


async def test_the_upstream_dropping_mid_arguments_ends_the_turn_and_keeps_what_was_saved(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.control(
        route="answer_question",
        tool_text="Let me look. ",
        tool_calls=[{"name": "calculator", "arguments": {"expression": "123456789*987654321"}}],
        fault="drop",
        fault_on="stream",
        drop_after=2,
    )
    chat = await service_for(upstream, tmp_path)
    try:
        events = await ask(chat, "drop", "Multiply")
        history = await chat.history(PROJECT, "drop")
        pending = await chat.pending_approvals(PROJECT, "drop")
    finally:
        await chat.close()
    assert events[-1].type == "error"
    assert of_type(events, "tool_call_start") and not of_type(events, "tool_call")
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[1]["content"] == "Let me look. " and history[1]["interrupted"] is True
    assert "tool_calls" not in history[1] and pending == []


async def test_a_stop_during_the_second_round_cuts_it_once_and_keeps_the_first(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.control(
        route="answer_question",
        tool_calls=[{"name": "calculator", "arguments": {"expression": "2+2"}}],
        tokens=200,
        delay_ms=20,
    )
    chat = await service_for(upstream, tmp_path)
    try:
        turn = await chat.start_turn(PROJECT, "stop", "Add")
        seen: list[TurnEvent] = []
        stopped = False
        async for _, batch in turn.follow(0):
            seen.extend(batch)
            if not stopped and sum(e.type == "delta" for e in seen) >= 3:
                assert of_type(seen, "tool_result")  # (the second round streams)
                stopped = await chat.stop_turn(PROJECT, "stop")
                assert stopped
        history = await chat.history(PROJECT, "stop")
    finally:
        await chat.close()
    assert seen[-1].type == "error" and seen[-1].parsed()["value"]["code"] == "stopped"
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[3]["interrupted"] is True and history[3]["content"]


async def test_calls_that_need_no_approval_run_before_a_person_is_asked(
    upstream: FakeUpstream, tmp_path: Path
) -> None:
    upstream.control(
        route="answer_question",
        tool_calls=[
            {"name": "save_note", "arguments": {"text": "first"}},
            {"name": "calculator", "arguments": {"expression": "6*7"}},
            {"name": "save_note", "arguments": {"text": "second"}},
        ],
        text="Done.",
    )
    chat = await service_for(upstream, tmp_path)
    try:
        events = await ask(chat, "order", "Do three things")
        # The calculator ran at once; both notes wait, and are asked for together.
        assert [r["name"] for r in of_type(events, "tool_result")] == ["calculator"]
        requests = of_type(events, "tool_approval_request")
        assert [json.loads(r["arguments"])["text"] for r in requests] == ["first", "second"]
        assert events[-1].parsed()["value"]["awaiting_approval"] == [r["id"] for r in requests]
        # Deciding the second alone records it, and the turn waits again for the first.
        partial = await decide(chat, "order", requests[1]["id"], False, "only one")
        assert actions(partial) == ["tool_approval"]
        assert partial[-1].parsed()["value"]["awaiting_approval"] == [requests[0]["id"]]
        assert [a.id for a in await chat.pending_approvals(PROJECT, "order")] == [requests[0]["id"]]
        done = await decide(chat, "order", requests[0]["id"], True)
        assert [r["name"] for r in of_type(done, "tool_result")] == ["save_note"]
        assert [d["reason"] for d in of_type(done, "tool_denied")] == ["only one"]
        assert text_of(done) == "Done."
        assert [n.text for n in await chat.notes(PROJECT)] == ["first"]
        history = await chat.history(PROJECT, "order")
    finally:
        await chat.close()
    tools = [(m["name"], m["status"]) for m in history if m["role"] == "tool"]
    assert tools == [("calculator", "ok"), ("save_note", "ok"), ("save_note", "denied")]


async def test_two_decisions_for_one_call_are_refused(offline: ChatService) -> None:
    events = await ask(offline, "both", "note: one thing")
    (request,) = of_type(events, "tool_approval_request")
    history = await offline.history(PROJECT, "both")
    decisions = [
        Decision(tool_call_id=request["id"], approved=True),
        Decision(tool_call_id=request["id"], approved=False),
    ]
    with pytest.raises(Invalid):
        await offline.start_approval(PROJECT, "both", decisions)
    assert await offline.history(PROJECT, "both") == history
    assert [a.id for a in await offline.pending_approvals(PROJECT, "both")] == [request["id"]]
