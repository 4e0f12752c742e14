"""Tool calls and approvals in the AG-UI and AI SDK encoders, on hand-built turns: every block
is what the protocol's own models write, message ids follow the stored history, a halt is an
interrupt (AG-UI) or a finish for tool calls (AI SDK), and the decisions each protocol sends
back are read as the server's."""

import json
from typing import Any, Optional

import pytest
from ag_ui.core import RunAgentInput, RunFinishedEvent
from ag_ui.encoder import EventEncoder
from pydantic import TypeAdapter

from burr_streaming_chatbot.encoders import agui, ai_sdk
from burr_streaming_chatbot.encoders.agui import AgUiEvent, AgUiRun
from burr_streaming_chatbot.encoders.ai_sdk import ChatRequest, UIMessageChunk, UIMessageWriter
from burr_streaming_chatbot.wire import (
    ActionEvent,
    ActionValue,
    ApprovalRequest,
    ChatHistoryEvent,
    ChatItem,
    Decision,
    MessageEvent,
    MessageValue,
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
)

AGUI_EVENT = TypeAdapter(AgUiEvent)
CHUNK = TypeAdapter(UIMessageChunk)

CALC = ToolCallInfo(
    id="call_1", name="calculator", arguments='{"expression":"6*7"}', needs_approval=False
)
NOTE = ToolCallInfo(
    id="call_2", name="save_note", arguments='{"text":"buy milk"}', needs_approval=True
)


def history(items: list[dict[str, Any]]) -> TurnEvent:
    return TurnEvent.of(ChatHistoryEvent(value=[ChatItem(**item) for item in items]))


def action(name: str, sequence_id: int) -> TurnEvent:
    return TurnEvent.of(ActionEvent(value=ActionValue(action=name, sequence_id=sequence_id)))


def streamed_call(call: ToolCallInfo, pieces: int = 2) -> list[TurnEvent]:
    """A tool call as the answer step streams it: start, argument pieces, the whole call."""
    size = -(-len(call.arguments) // pieces)
    deltas = [call.arguments[i : i + size] for i in range(0, len(call.arguments), size)]
    return [
        TurnEvent.of(ToolCallStartedEvent(value=ToolCallStartValue(id=call.id, name=call.name))),
        *(
            TurnEvent.of(ToolCallArgumentsEvent(value=ToolCallArgsValue(id=call.id, delta=d)))
            for d in deltas
        ),
        TurnEvent.of(ToolCallEvent(value=call)),
    ]


def result(call: ToolCallInfo, text: str) -> TurnEvent:
    value = ToolResultValue(id=call.id, name=call.name, result=text, duration_ms=0.4)
    return TurnEvent.of(ToolResultEvent(value=value))


def message(
    item: dict[str, Any], path: list[str], waiting: Optional[list[str]] = None
) -> TurnEvent:
    value = MessageValue(
        item=ChatItem(**item),
        mode="answer_question",
        model="offline",
        ttft_ms=1.0,
        deltas=1,
        sequence_id=9,
        path=path,
        awaiting_approval=waiting,
    )
    return TurnEvent("message", MessageEvent(value=value).model_dump_json(exclude_none=True))


def approval_request(call: ToolCallInfo) -> TurnEvent:
    value = ApprovalRequest(
        id=call.id, name=call.name, arguments=call.arguments, message="Run save_note?"
    )
    return TurnEvent.of(ToolApprovalRequestEvent(value=value))


def answer_with_calls(text: str, *calls: ToolCallInfo) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text,
        "mode": "answer_question",
        "model": "offline",
        "tool_calls": [c.model_dump() for c in calls],
    }


def calculator_turn() -> list[TurnEvent]:
    """'What is 6*7?': the model calls the calculator, it runs, the model answers."""
    return [
        history([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]),
        action("prompt", 2),
        action("check_safety", 3),
        action("decide_mode", 4),
        action("answer_question", 5),
        TurnEvent("delta", "Let me compute. "),
        *streamed_call(CALC, pieces=3),
        action("run_tool", 6),
        result(CALC, '{"expression":"6*7","result":"42"}'),
        action("answer_question", 7),
        TurnEvent("delta", "It is 42."),
        message(
            {"role": "assistant", "content": "It is 42.", "mode": "answer_question"},
            [
                "prompt",
                "check_safety",
                "decide_mode",
                "answer_question",
                "run_tool",
                "answer_question",
            ],
        ),
    ]


def halting_turn() -> list[TurnEvent]:
    """'What is 6*7 and remember to buy milk': two calls at once, the second waits."""
    item = answer_with_calls("", CALC, NOTE)
    return [
        history([]),
        action("prompt", 0),
        action("check_safety", 1),
        action("decide_mode", 2),
        action("answer_question", 3),
        *streamed_call(CALC),
        *streamed_call(NOTE),
        action("run_tool", 4),
        result(CALC, '{"result":"42"}'),
        approval_request(NOTE),
        message(
            item,
            ["prompt", "check_safety", "decide_mode", "answer_question", "run_tool"],
            [NOTE.id],
        ),
    ]


def blocks(raw: bytes) -> list[str]:
    return [block for block in raw.decode().split("\n\n") if block]


# -- AG-UI ---------------------------------------------------------------------------------


def agui_events(turn: list[TurnEvent], prompt: Optional[str] = "What is 6*7?") -> list[dict]:
    """The run's events, each checked to be, byte for byte, the package's encoding of the
    event it parses as."""
    run = AgUiRun(RunAgentInput(thread_id="t", run_id="r", messages=[]), prompt)
    raw = run.started() + run.encode(turn)
    official = EventEncoder()
    events = []
    for block in blocks(raw):
        event = AGUI_EVENT.validate_json(block.removeprefix("data: "))
        assert official.encode(event) == block + "\n\n"
        events.append(json.loads(block.removeprefix("data: ")))
    return events


def test_agui_tool_events_and_message_ids_follow_the_stored_history() -> None:
    events = agui_events(calculator_turn())
    kinds = [e["type"] for e in events if e["type"].startswith(("TOOL_", "TEXT_"))]
    assert kinds == [
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",  # (the text ends before the call)
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
        "TOOL_CALL_RESULT",
        "TEXT_MESSAGE_START",
        "TEXT_MESSAGE_CONTENT",
        "TEXT_MESSAGE_END",
    ]
    by_type: dict[str, list[dict]] = {}
    for event in events:
        by_type.setdefault(event["type"], []).append(event)
    # History: 0 user, 1 assistant, 2 the prompt; then as stored: 3 the answer that called the
    # tool, 4 the tool's message, 5 the answer after it.
    snapshot = by_type["MESSAGES_SNAPSHOT"][0]["messages"]
    assert [m["id"] for m in snapshot] == ["msg-0", "msg-1", "msg-2"]
    start = by_type["TOOL_CALL_START"][0]
    assert start == {
        "type": "TOOL_CALL_START",
        "toolCallId": "call_1",
        "toolCallName": "calculator",
        "parentMessageId": "msg-3",
    }
    assert by_type["TEXT_MESSAGE_START"][0]["messageId"] == "msg-3"
    assert "".join(e["delta"] for e in by_type["TOOL_CALL_ARGS"]) == CALC.arguments
    assert by_type["TOOL_CALL_RESULT"] == [
        {
            "type": "TOOL_CALL_RESULT",
            "messageId": "msg-4",
            "toolCallId": "call_1",
            "content": '{"expression":"6*7","result":"42"}',
            "role": "tool",
        }
    ]
    assert by_type["TEXT_MESSAGE_START"][1]["messageId"] == "msg-5"
    assert events[-1]["type"] == "RUN_FINISHED" and "outcome" not in events[-1]


def test_agui_a_halt_is_an_interrupt_per_waiting_call() -> None:
    events = agui_events(halting_turn(), "What is 6*7 and remember to buy milk")
    finished = events[-1]
    assert finished["type"] == "RUN_FINISHED"
    assert finished["outcome"] == {
        "type": "interrupt",
        "interrupts": [
            {
                "id": "call_2",
                "reason": "tool_approval",
                "message": "Run save_note?",
                "toolCallId": "call_2",
            }
        ],
    }
    RunFinishedEvent.model_validate(finished)  # (the package's model reads it back)
    starts = [e for e in events if e["type"] == "TOOL_CALL_START"]
    assert [s["parentMessageId"] for s in starts] == ["msg-1", "msg-1"]  # one message, 2 calls
    # Every call started is ended before the run finishes (the client's verifier insists).
    assert [e["toolCallId"] for e in events if e["type"] == "TOOL_CALL_END"] == ["call_1", "call_2"]
    assert [e["messageId"] for e in events if e["type"] == "TOOL_CALL_RESULT"] == ["msg-2"]


def test_agui_a_call_whose_arguments_did_not_stream_is_started_and_ended_whole() -> None:
    turn = [history([]), action("answer_question", 1), TurnEvent.of(ToolCallEvent(value=CALC))]
    events = agui_events(turn)
    assert [e["type"] for e in events[-3:]] == [
        "TOOL_CALL_START",
        "TOOL_CALL_ARGS",
        "TOOL_CALL_END",
    ]
    assert events[-2]["delta"] == CALC.arguments


def test_agui_snapshot_has_tool_calls_and_tool_messages() -> None:
    stored = [
        {"role": "user", "content": "What is 6*7? And 1/0?"},
        answer_with_calls("Computing.", CALC, NOTE),
        {
            "role": "tool",
            "content": '{"result":"42"}',
            "tool_call_id": "call_1",
            "name": "calculator",
            "status": "ok",
            "duration_ms": 0.3,
        },
        {
            "role": "tool",
            "content": "Division by zero.",
            "tool_call_id": "call_2",
            "name": "save_note",
            "status": "error",
            "duration_ms": 0.1,
        },
        {"role": "assistant", "content": "42; the other failed."},
    ]
    [snapshot, *_] = [
        e for e in agui_events([history(stored)], "Thanks") if e["type"] == "MESSAGES_SNAPSHOT"
    ]
    messages = snapshot["messages"]
    assert messages[1] == {
        "id": "msg-1",
        "role": "assistant",
        "content": "Computing.",
        "toolCalls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression":"6*7"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "save_note", "arguments": '{"text":"buy milk"}'},
            },
        ],
    }
    assert messages[2] == {
        "id": "msg-2",
        "role": "tool",
        "content": '{"result":"42"}',
        "toolCallId": "call_1",
    }
    assert messages[3]["error"] == "Division by zero." and messages[3]["toolCallId"] == "call_2"
    assert [m["id"] for m in messages] == [f"msg-{i}" for i in range(6)]  # (5: the prompt)


def test_agui_approval_run_and_superseded_calls_keep_the_stored_indexes() -> None:
    waiting = [{"role": "user", "content": "Remember milk"}, answer_with_calls("", NOTE)]
    # The approval's run: no prompt; the call's message is the history's next, then the answer.
    approved = [
        history(waiting),
        action("tool_approval", 5),
        action("run_tool", 6),
        result(NOTE, '{"saved":true}'),
        action("answer_question", 7),
        TurnEvent("delta", "Saved."),
        message(
            {"role": "assistant", "content": "Saved."},
            ["tool_approval", "run_tool", "answer_question"],
        ),
    ]
    events = agui_events(approved, prompt=None)
    assert [m["id"] for m in events[1]["messages"]] == ["msg-0", "msg-1"]
    assert [e["messageId"] for e in events if e["type"] == "TOOL_CALL_RESULT"] == ["msg-2"]
    assert [e["messageId"] for e in events if e["type"] == "TEXT_MESSAGE_START"] == ["msg-3"]

    # A new prompt instead: the waiting call is denied ("superseded") before the prompt.
    denied = ToolDeniedValue(id=NOTE.id, name=NOTE.name, reason="superseded")
    superseding = [
        history(waiting),
        action("prompt", 5),
        TurnEvent.of(ToolDeniedEvent(value=denied)),
        action("answer_question", 6),
        TurnEvent("delta", "Hello."),
        message({"role": "assistant", "content": "Hello."}, ["prompt", "answer_question"]),
    ]
    events = agui_events(superseding, prompt="Never mind")
    assert events[1]["messages"][-1] == {"id": "msg-3", "role": "user", "content": "Never mind"}
    [denial] = [e for e in events if e["type"] == "TOOL_CALL_RESULT"]
    assert denial["messageId"] == "msg-2"
    assert denial["content"] == "The user denied this tool call. Reason: superseded"
    assert [e["messageId"] for e in events if e["type"] == "TEXT_MESSAGE_START"] == ["msg-4"]


def run_input(resume: Optional[list[dict]], last_role: str = "assistant") -> RunAgentInput:
    last: dict[str, Any] = {"id": "m2", "role": last_role, "content": "…"}
    return RunAgentInput.model_validate(
        {
            "threadId": "t",
            "runId": "r2",
            "messages": [{"id": "m1", "role": "user", "content": "Remember milk"}, last],
            **({"resume": resume} if resume is not None else {}),
        }
    )


def test_agui_decisions_of_reads_resume() -> None:
    assert agui.decisions_of(run_input(None, "user")) == []
    resume = [
        {"interruptId": "call_2", "status": "resolved", "payload": {"approved": True}},
        {
            "interruptId": "call_3",
            "status": "resolved",
            "payload": {"approved": False, "reason": "not now"},
        },
        {"interruptId": "call_4", "status": "cancelled"},
    ]
    assert agui.decisions_of(run_input(resume)) == [
        Decision(tool_call_id="call_2", approved=True),
        Decision(tool_call_id="call_3", approved=False, reason="not now"),
        Decision(tool_call_id="call_4", approved=False, reason="cancelled"),
    ]
    # Cancelling with a new prompt: the prompt supersedes the calls.
    cancelled = [{"interruptId": "call_2", "status": "cancelled"}]
    assert agui.decisions_of(run_input(cancelled, "user")) == []
    # A resume run has no prompt, and is not refused for it.
    with pytest.raises(agui.PromptError):
        agui.prompt_of(run_input(resume))


@pytest.mark.parametrize(
    "entry, words",
    [
        ({"interruptId": "c", "status": "resolved"}, "approved"),
        ({"interruptId": "c", "status": "resolved", "payload": {"approved": "yes"}}, "approved"),
        ({"interruptId": "c", "status": "resolved", "payload": True}, "approved"),
        (
            {"interruptId": "c", "status": "resolved", "payload": {"approved": True, "reason": 3}},
            "reason",
        ),
        ({"interruptId": "", "status": "cancelled"}, "tool_call_id"),
        (
            {
                "interruptId": "c",
                "status": "resolved",
                "payload": {"approved": False, "reason": "x" * 1001},
            },
            "reason",
        ),
    ],
)
def test_agui_malformed_resume_is_a_prompt_error(entry: dict, words: str) -> None:
    with pytest.raises(agui.PromptError, match=words):
        agui.decisions_of(run_input([entry]))


def test_agui_resume_answering_a_call_twice_is_a_prompt_error() -> None:
    twice = [{"interruptId": "c", "status": "cancelled"}] * 2
    with pytest.raises(agui.PromptError, match="twice"):
        agui.decisions_of(run_input(twice))


# -- AI SDK --------------------------------------------------------------------------------


def ai_sdk_chunks(
    turn: list[TurnEvent], continues: Optional[str] = None, resumed: bool = False
) -> list[dict]:
    """The stream's chunks, each checked to be what its model writes."""
    raw = UIMessageWriter("tok", continues, resumed).encode(turn)
    *chunks, done = blocks(raw)
    assert done == "data: [DONE]"
    out = []
    for block in chunks:
        model = CHUNK.validate_json(block.removeprefix("data: "))
        assert model.encoded() == (block + "\n\n").encode()
        out.append(json.loads(block.removeprefix("data: ")))
    return out


def test_ai_sdk_tool_chunks_and_steps() -> None:
    chunks = ai_sdk_chunks(calculator_turn())
    assert [c["type"] for c in chunks if c["type"] not in ("data-burr-action",)] == [
        "start",
        "start-step",  # prompt
        "finish-step",
        "start-step",  # check_safety
        "finish-step",
        "start-step",  # decide_mode
        "finish-step",
        "start-step",  # answer_question: its text, its call and (run_tool) the call's output
        "text-start",
        "text-delta",
        "text-end",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-delta",
        "tool-input-available",
        "tool-output-available",
        "finish-step",
        "start-step",  # the answer after the tool
        "text-start",
        "text-delta",
        "text-end",
        "finish-step",
        "finish",
    ]
    by_type = {c["type"]: c for c in chunks}
    assert by_type["start"]["messageId"] == "msg-tok"
    assert by_type["tool-input-start"] == {
        "type": "tool-input-start",
        "toolCallId": "call_1",
        "toolName": "calculator",
    }
    assert by_type["tool-input-available"]["input"] == {"expression": "6*7"}
    assert by_type["tool-output-available"] == {
        "type": "tool-output-available",
        "toolCallId": "call_1",
        "output": {"expression": "6*7", "result": "42"},
    }
    assert by_type["finish"]["finishReason"] == "stop"
    actions = [c["data"]["action"] for c in chunks if c["type"] == "data-burr-action"]
    assert actions == [
        "prompt",
        "check_safety",
        "decide_mode",
        "answer_question",
        "run_tool",
        "answer_question",
    ]


def test_ai_sdk_a_halt_requests_approval_in_the_last_step_and_finishes_for_tool_calls() -> None:
    chunks = ai_sdk_chunks(halting_turn())
    last_step = len(chunks) - 1 - [c["type"] for c in reversed(chunks)].index("start-step")
    in_last_step = [c["type"] for c in chunks[last_step:]]
    # Both calls, the first one's output and the second's request share the last step, where
    # lastAssistantMessageIsCompleteWithApprovalResponses looks.
    assert in_last_step.count("tool-input-available") == 2
    assert "tool-output-available" in in_last_step
    assert chunks[-2]["type"] == "finish-step"
    assert {
        "type": "tool-approval-request",
        "approvalId": "call_2",
        "toolCallId": "call_2",
    } in chunks
    assert chunks[-1]["type"] == "finish" and chunks[-1]["finishReason"] == "tool-calls"
    assert chunks[-1]["messageMetadata"]["awaiting_approval"] == ["call_2"]


def approval_turn(*extra: TurnEvent) -> list[TurnEvent]:
    waiting = [
        {"role": "user", "content": "6*7, and remember milk"},
        answer_with_calls("", CALC, NOTE),
        {
            "role": "tool",
            "content": '{"result":"42"}',
            "tool_call_id": "call_1",
            "name": "calculator",
            "status": "ok",
            "duration_ms": 0.2,
        },
    ]
    return [
        history(waiting),
        action("tool_approval", 5),
        action("run_tool", 6),
        *extra,
        action("answer_question", 7),
        TurnEvent("delta", "Done."),
        message(
            {"role": "assistant", "content": "Done."},
            ["tool_approval", "run_tool", "answer_question"],
        ),
    ]


def test_ai_sdk_an_approval_turn_continues_the_clients_message() -> None:
    denied = TurnEvent.of(
        ToolDeniedEvent(value=ToolDeniedValue(id="call_2", name="save_note", reason="no"))
    )
    chunks = ai_sdk_chunks(approval_turn(denied), continues="msg-first")
    assert chunks[0] == {
        "type": "start",
        "messageId": "msg-first",
        "messageMetadata": {"turn": "tok", "history": 3},
    }
    types = [c["type"] for c in chunks]
    # The decision's steps add to the client's last step; the answer after it is a new one.
    assert types[:4] == ["start", "data-burr-action", "data-burr-action", "tool-output-denied"]
    assert types[4:6] == ["start-step", "data-burr-action"]

    # Resumed (the client cleared its message to replay): no id, the round's calls first.
    failed = ToolErrorValue(id="call_2", name="save_note", error="Disk full.", duration_ms=1.0)
    chunks = ai_sdk_chunks(approval_turn(TurnEvent.of(ToolErrorEvent(value=failed))), resumed=True)
    assert chunks[0] == {"type": "start", "messageMetadata": {"turn": "tok", "history": 3}}
    assert chunks[1:4] == [
        {
            "type": "tool-input-available",
            "toolCallId": "call_1",
            "toolName": "calculator",
            "input": {"expression": "6*7"},
        },
        {"type": "tool-output-available", "toolCallId": "call_1", "output": {"result": "42"}},
        {
            "type": "tool-input-available",
            "toolCallId": "call_2",
            "toolName": "save_note",
            "input": {"text": "buy milk"},
        },
    ]
    assert {
        "type": "tool-output-error",
        "toolCallId": "call_2",
        "errorText": "Disk full.",
    } in chunks


def test_ai_sdk_a_prompt_turn_leaves_out_the_calls_it_supersedes() -> None:
    """Their parts are in an earlier message: the client refuses an output without a part."""
    denied = ToolDeniedValue(id="call_2", name="save_note", reason="superseded")
    turn = [
        history([{"role": "user", "content": "Remember milk"}, answer_with_calls("", NOTE)]),
        action("prompt", 5),
        TurnEvent.of(ToolDeniedEvent(value=denied)),
        action("answer_question", 6),
        TurnEvent("delta", "Hello."),
        message({"role": "assistant", "content": "Hello."}, ["prompt", "answer_question"]),
    ]
    for resumed in (False, True):
        chunks = ai_sdk_chunks(turn, resumed=resumed)
        assert chunks[0]["messageId"] == "msg-tok"
        assert not [c for c in chunks if c["type"].startswith("tool-")]


def chat(last: dict[str, Any]) -> ChatRequest:
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Remember milk"}]}
    return ChatRequest.model_validate(
        {"id": "c1", "messages": [user, last], "trigger": "submit-message"}
    )


def tool_part(call: str, state: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "tool-save_note",
        "toolCallId": call,
        "state": state,
        "input": {"text": "milk"},
        **fields,
    }


def test_ai_sdk_decisions_of_reads_approval_responded_parts() -> None:
    user_last = ChatRequest.model_validate(
        {
            "id": "c1",
            "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}],
        }
    )
    assert ai_sdk.decisions_of(user_last) == []
    assistant = {
        "id": "msg-first",
        "role": "assistant",
        "parts": [
            {"type": "step-start"},
            {
                "type": "tool-calculator",
                "toolCallId": "call_1",
                "state": "output-available",
                "input": {},
                "output": {},
            },
            tool_part("call_2", "approval-responded", approval={"id": "call_2", "approved": True}),
            tool_part(
                "call_3",
                "approval-responded",
                approval={"id": "call_3", "approved": False, "reason": "no"},
            ),
            {
                "type": "dynamic-tool",
                "toolName": "x",
                "toolCallId": "call_4",
                "state": "approval-responded",
                "approval": {"id": "call_4", "approved": False},
            },
        ],
    }
    assert ai_sdk.decisions_of(chat(assistant)) == [
        Decision(tool_call_id="call_2", approved=True),
        Decision(tool_call_id="call_3", approved=False, reason="no"),
        Decision(tool_call_id="call_4", approved=False),
    ]
    with pytest.raises(ai_sdk.PromptError):
        ai_sdk.prompt_of(chat(assistant))


@pytest.mark.parametrize(
    "parts, words",
    [
        ([{"type": "text", "text": "Hello"}], "no tool approval"),
        (
            [tool_part("call_2", "approval-requested", approval={"id": "call_2"})],
            "no tool approval",
        ),
        ([tool_part("call_2", "approval-responded", approval={"id": "call_2"})], "approved"),
        ([tool_part("call_2", "approval-responded")], "approved"),
        (
            [tool_part("", "approval-responded", approval={"id": "", "approved": True})],
            "tool_call_id",
        ),
    ],
)
def test_ai_sdk_an_assistant_last_message_without_an_answered_approval_is_a_prompt_error(
    parts: list[dict], words: str
) -> None:
    with pytest.raises(ai_sdk.PromptError, match=words):
        ai_sdk.decisions_of(chat({"id": "a", "role": "assistant", "parts": parts}))
