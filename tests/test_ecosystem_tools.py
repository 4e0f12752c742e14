"""Tool calls and approvals read by the ecosystem's own clients (npm packages run with Node):
the AI SDK's chat (``AbstractChat``, what ``useChat`` wraps) answering approvals with
``addToolApprovalResponse`` and ``lastAssistantMessageIsCompleteWithApprovalResponses``, and
AG-UI's ``HttpAgent`` with an interrupt and the run that resumes it. The server is the real
one with the offline model, whose "What is 6*7?" calls the calculator and "remember to buy
milk" calls ``save_note``, which waits for approval."""

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import API, PROJECT, ChatServer, start_server
from test_ecosystem_clients import CLIENTS, NODE, NPM, node

pytestmark = [
    pytest.mark.e2e,  # chatbot servers and Node clients in subprocesses
    pytest.mark.skipif(NODE is None or NPM is None, reason="Node.js and npm are not installed"),
    pytest.mark.usefixtures("clients"),
]

AI_SDK = f"{API}/ai-sdk/{PROJECT}"
AG_UI = f"{API}/ag-ui/{PROJECT}"


@pytest.fixture(scope="module")
def clients() -> Path:
    """The clients' npm packages, installed from the lock file when missing."""
    if (
        not (CLIENTS / "node_modules" / "ai").is_dir()
        or not (CLIENTS / "node_modules" / "@ag-ui").is_dir()
    ):
        subprocess.run([NPM or "npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENTS, check=True)
    return CLIENTS


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    """A server answering with the offline demo model."""
    server = start_server(
        "cli",
        tmp_path_factory.mktemp("offline-tools"),
        None,
        "offline-tools",
        BURR_CHATBOT_OFFLINE="true",
    )
    yield server
    server.close()


def tool_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in message["parts"] if p["type"].startswith("tool-")]


def stored_tools(server: ChatServer, app_id: str) -> dict[str, dict[str, Any]]:
    return {m["tool_call_id"]: m for m in server.history(app_id) if m["role"] == "tool"}


def assert_part_matches_the_store(part: dict[str, Any], stored: dict[str, Any]) -> None:
    """The client's tool part ended as the server stored the call's outcome."""
    if stored["status"] == "ok":
        assert part["state"] == "output-available"
        assert part["output"] == json.loads(stored["content"])
    elif stored["status"] == "error":
        assert part["state"] == "output-error" and part["errorText"] == stored["content"]
    else:
        assert part["state"] == "output-denied"


# -- the AI SDK ----------------------------------------------------------------------------


def test_ai_sdk_chat_shows_a_tool_call_and_its_result(offline: ChatServer, app_id: str) -> None:
    [out] = node("ai_sdk_tools.mjs", offline.url + AI_SDK, app_id, "send", "What is 6*7?")
    assert out["error"] is None and out["finishes"] == ["stop"]
    _, answer = out["messages"]
    [part] = tool_parts(answer)
    assert part["type"] == "tool-calculator" and part["input"] == {"expression": "6*7"}
    assert part["state"] == "output-available" and part["output"]["result"] == "42"
    texts = [p["text"] for p in answer["parts"] if p["type"] == "text"]
    assert "42" in texts[-1]
    [stored] = stored_tools(offline, app_id).values()
    assert stored["tool_call_id"] == part["toolCallId"]
    assert len(out["sent"]) == 1  # (nothing waits: no second request)


@pytest.mark.parametrize("decision", ["approve", "deny"])
def test_ai_sdk_approval_round_trip_continues_the_same_message(
    offline: ChatServer, app_id: str, decision: str
) -> None:
    [out] = node(
        "ai_sdk_tools.mjs",
        offline.url + AI_SDK,
        app_id,
        "decide",
        decision,
        "remember to buy milk",
        "not today",
    )
    assert out["error"] is None and out["finishes"] == ["tool-calls", "stop"]
    # The turn stopped with the call waiting, in the message's last step.
    [waiting] = tool_parts(out["before"][-1])
    assert waiting["type"] == "tool-save_note" and waiting["state"] == "approval-requested"
    assert waiting["approval"]["id"] == waiting["toolCallId"]
    assert waiting["input"] == {"text": "buy milk"}
    # What the client sent back: the messages, the last the assistant's with the answer.
    _, second = out["sent"]
    body = second["body"]
    assert body["id"] == app_id and body["trigger"] == "submit-message"
    assert body["messageId"] == out["before"][-1]["id"] == body["messages"][-1]["id"]
    [answered] = tool_parts(body["messages"][-1])
    assert answered["state"] == "approval-responded"
    assert answered["approval"] == {
        "id": waiting["toolCallId"],
        "approved": decision == "approve",
        "reason": "not today",
    }
    # The answer went on in the same assistant message: one user, one assistant message.
    _, answer = out["messages"]
    assert answer["id"] == out["before"][-1]["id"]
    [part] = tool_parts(answer)
    stored = stored_tools(offline, app_id)[part["toolCallId"]]
    assert_part_matches_the_store(part, stored)
    notes = [
        n["text"]
        for n in offline.client.get(f"{API}/notes/{PROJECT}").json()
        if n["app_id"] == app_id
    ]
    if decision == "deny":
        assert stored["status"] == "denied" and stored["reason"] == "not today"
        assert notes == []
    else:
        assert stored["status"] == "ok" and part["output"]["saved"] is True
        assert notes == ["buy milk"]
    texts = [p["text"] for p in answer["parts"] if p["type"] == "text"]
    assert texts[-1] == offline.history(app_id)[-1]["content"]


def test_ai_sdk_approval_sent_after_the_server_was_killed_and_restarted(
    tmp_path: Path, app_id: str
) -> None:
    first = start_server("cli", tmp_path, None, "ai-sdk-before-kill", BURR_CHATBOT_OFFLINE="true")
    try:
        [asked] = node(
            "ai_sdk_tools.mjs", first.url + AI_SDK, app_id, "send", "remember to buy milk"
        )
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        first.close()
    assert asked["finishes"] == ["tool-calls"]
    saved = tmp_path / "messages.json"
    saved.write_text(json.dumps(asked["messages"]))
    second = start_server("cli", tmp_path, None, "ai-sdk-after-kill", BURR_CHATBOT_OFFLINE="true")
    try:
        [out] = node(
            "ai_sdk_tools.mjs", second.url + AI_SDK, app_id, "answer", "approve", str(saved)
        )
        assert out["error"] is None and out["finishes"] == ["stop"]
        [part] = tool_parts(out["messages"][-1])
        assert_part_matches_the_store(part, stored_tools(second, app_id)[part["toolCallId"]])
        assert part["state"] == "output-available" and part["output"]["text"] == "buy milk"
        notes = second.client.get(f"{API}/notes/{PROJECT}").json()
        assert [(n["text"], n["app_id"]) for n in notes] == [("buy milk", app_id)]
        assert [m["role"] for m in second.history(app_id)] == [
            "user",
            "assistant",
            "tool",
            "assistant",
        ]
        # Answered once: sending the same approval again is refused, and nothing is written.
        again = second.client.post(AI_SDK, json=out["sent"][-1]["body"])
        assert again.status_code == 409, again.text
        assert len(second.history(app_id)) == 4
    finally:
        second.close()


def test_ai_sdk_approval_of_an_unknown_call_is_a_404_and_writes_nothing(
    offline: ChatServer, app_id: str
) -> None:
    offline.turn(app_id, "remember to buy milk")
    history = offline.history(app_id)
    part = {
        "type": "tool-save_note",
        "toolCallId": "call_nobody_made",
        "state": "approval-responded",
        "input": {"text": "x"},
        "approval": {"id": "call_nobody_made", "approved": True},
    }
    body = {
        "id": app_id,
        "trigger": "submit-message",
        "messages": [
            {
                "id": "u",
                "role": "user",
                "parts": [{"type": "text", "text": "remember to buy milk"}],
            },
            {"id": "a", "role": "assistant", "parts": [part]},
        ],
    }
    assert offline.client.post(AI_SDK, json=body).status_code == 404
    unanswered = {
        **body,
        "messages": [body["messages"][0], {"id": "a", "role": "assistant", "parts": []}],
    }
    response = offline.client.post(AI_SDK, json=unanswered)
    assert response.status_code == 422 and "approval" in response.json()["detail"]
    assert offline.history(app_id) == history


# -- AG-UI ---------------------------------------------------------------------------------


def test_agui_http_agent_tool_events_and_messages(offline: ChatServer, app_id: str) -> None:
    [out] = node("agui_tools.mjs", offline.url + AG_UI, app_id, "What is 6*7?")
    [run] = out["runs"]
    assert "thrown" not in run and run["error"] is None and run["outcome"]["outcome"] == "success"
    tools = [e for e in run["events"] if e["type"].startswith("TOOL_CALL")]
    assert tools[0]["type"] == "TOOL_CALL_START" and tools[-1]["type"] == "TOOL_CALL_RESULT"
    assert tools[0]["toolCallName"] == "calculator" and tools[0]["parentMessageId"] == "msg-1"
    args = "".join(e["delta"] for e in tools if e["type"] == "TOOL_CALL_ARGS")
    assert json.loads(args) == {"expression": "6*7"}
    # The agent's messages are the stored history, with the same ids.
    stored = offline.history(app_id)
    assert [m["role"] for m in out["messages"]] == [m["role"] for m in stored]
    assert [m["id"] for m in out["messages"]] == [f"msg-{i}" for i in range(len(stored))]
    assert out["messages"][1]["toolCalls"][0]["id"] == stored[1]["tool_calls"][0]["id"]
    assert out["messages"][2]["content"] == stored[2]["content"]
    assert out["messages"][-1]["content"] == stored[-1]["content"]


@pytest.mark.parametrize("decision", ["approve", "deny", "cancel"])
def test_agui_http_agent_interrupt_and_the_resumed_run(
    offline: ChatServer, app_id: str, decision: str
) -> None:
    [out] = node(
        "agui_tools.mjs", offline.url + AG_UI, app_id, "remember to buy milk", decision, "no thanks"
    )
    halted, unanswered, resumed = out["runs"]
    # The interrupt, as the client's own schema and state read it.
    assert halted["outcome"]["outcome"] == "interrupt"
    [interrupt] = halted["outcome"]["interrupts"]
    call = offline.history(app_id)[1]["tool_calls"][0]["id"]
    assert interrupt["id"] == interrupt["toolCallId"] == call
    assert interrupt["reason"] == "tool_approval" and "save_note" in interrupt["message"]
    assert halted["pendingInterrupts"] == [interrupt]
    ends = [e["toolCallId"] for e in halted["events"] if e["type"] == "TOOL_CALL_END"]
    assert ends == [call]
    # The client refuses to run on without answering it.
    assert "not addressed by resume" in unanswered["thrown"]
    # The resumed run: the call's outcome, then the answer; nothing waits any more.
    assert "thrown" not in resumed and resumed["outcome"]["outcome"] == "success"
    assert resumed["pendingInterrupts"] == []
    [result] = [e for e in resumed["events"] if e["type"] == "TOOL_CALL_RESULT"]
    stored = offline.history(app_id)
    assert [m["role"] for m in stored] == ["user", "assistant", "tool", "assistant"]
    assert result["toolCallId"] == call and result["messageId"] == "msg-2"
    assert result["content"] == stored[2]["content"]
    if decision == "approve":
        assert stored[2]["status"] == "ok" and json.loads(result["content"])["saved"] is True
    else:
        reason = "no thanks" if decision == "deny" else "cancelled"
        assert stored[2]["status"] == "denied" and stored[2]["reason"] == reason
    assert [m["id"] for m in out["messages"]] == ["msg-0", "msg-1", "msg-2", "msg-3"]
    assert out["messages"][-1]["content"] == stored[-1]["content"]


def test_agui_malformed_resume_is_a_422_and_an_answered_one_a_409(
    offline: ChatServer, app_id: str
) -> None:
    offline.turn(app_id, "remember to buy milk")
    call = offline.history(app_id)[1]["tool_calls"][0]["id"]
    history = offline.history(app_id)
    base = {"threadId": app_id, "runId": "r", "messages": []}
    for resume, status in [
        ([{"interruptId": call, "status": "resolved"}], 422),
        ([{"interruptId": call, "status": "resolved", "payload": {"approved": "y"}}], 422),
        ([{"interruptId": call, "status": "maybe"}], 422),
        ([{"interruptId": "call_nobody_made", "status": "cancelled"}], 404),
    ]:
        response = offline.client.post(AG_UI, json={**base, "resume": resume})
        assert response.status_code == status, (resume, response.text)
    assert offline.history(app_id) == history
    answer = [{"interruptId": call, "status": "resolved", "payload": {"approved": False}}]
    with offline.client.stream("POST", AG_UI, json={**base, "resume": answer}) as response:
        assert response.status_code == 200
        assert b"RUN_FINISHED" in b"".join(response.iter_raw())
    again = offline.client.post(AG_UI, json={**base, "resume": answer})
    assert again.status_code == 409, again.text
