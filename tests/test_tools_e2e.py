"""Tool calls and approvals through real servers: ``POST /approve`` and its refusals, Burr's own
API showing each tool call as a step, and an approval accepted by another process (SQLite and
PostgreSQL) and by a server restarted after ``kill -9``."""

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API, PROJECT, ChatServer, start_server
from fake_openai import FakeUpstream

pytestmark = pytest.mark.e2e  # real server processes

NOTE_CALL = [{"name": "save_note", "arguments": {"text": "water the plants"}}]


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")
    ]


def of_type(events: list[dict[str, Any]], kind: str) -> list[Any]:
    return [event["value"] for event in events if event["type"] == kind]


def approve(
    server: ChatServer, app_id: str, call_id: str, approved: bool = True, **extra: Any
) -> httpx.Response:
    body = {"tool_call_id": call_id, "approved": approved, **extra}
    return server.client.post(f"{API}/approve/{PROJECT}/{app_id}", json=body)


def ask_for_a_note(server: ChatServer, upstream: FakeUpstream, app_id: str) -> str:
    """A turn that halts on a ``save_note`` call; returns the call's id."""
    upstream.control(route="answer_question", tool_calls=NOTE_CALL, text="Saved it.")
    events = server.turn(app_id, "Please remember to water the plants")
    (request,) = of_type(events, "tool_approval_request")
    assert events[-1]["value"]["awaiting_approval"] == [request["id"]]
    return request["id"]


def test_approve_over_http_its_refusals_and_burrs_view_of_the_steps(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    call_id = ask_for_a_note(server, upstream, app_id)
    pending = server.client.get(f"{API}/approvals/{PROJECT}/{app_id}").json()
    assert [p["id"] for p in pending] == [call_id] and pending[0]["name"] == "save_note"
    history = server.history(app_id)

    # Bad input: a clear 4xx, nothing written.
    for body, status in [
        ({"approved": True}, 422),
        ({"tool_call_id": call_id}, 422),
        ({"tool_call_id": call_id, "approved": "maybe"}, 422),
        ({"tool_call_id": "", "approved": True}, 422),
        ({"tool_call_id": call_id, "approved": True, "reason": "x" * 1001}, 422),
        ({"tool_call_id": "call_unknown", "approved": True}, 404),
    ]:
        response = server.client.post(f"{API}/approve/{PROJECT}/{app_id}", json=body)
        assert response.status_code == status, (body, response.text)
        assert call_id not in response.text or status == 404
    text = {"content-type": "text/plain"}
    url = f"{API}/approve/{PROJECT}/{app_id}"
    assert server.client.post(url, content=b"x", headers=text).status_code == 415
    assert server.history(app_id) == history

    events = sse_events(approve(server, app_id, call_id))
    (result,) = of_type(events, "tool_result")
    assert json.loads(result["result"])["text"] == "water the plants"
    assert events[-1]["type"] == "message" and events[-1]["value"]["item"]["content"] == "Saved it."
    notes = server.client.get(f"{API}/notes/{PROJECT}").json()
    assert {"text": "water the plants", "app_id": app_id}.items() <= notes[0].items()
    again = approve(server, app_id, call_id)
    assert again.status_code == 409 and "already" in again.json()["detail"]
    assert server.client.get(f"{API}/approvals/{PROJECT}/{app_id}").json() == []

    # Burr's own API: each tool call is a step with its arguments and result; the decision is
    # the tool_approval step's input.
    logs = server.client.get(f"/api/v0/{PROJECT}/{app_id}/__none__/apps").json()
    steps = {step["step_start_log"]["action"]: step for step in logs["steps"]}
    run = steps["run_tool"]["step_end_log"]["result"]
    assert run["name"] == "save_note" and json.loads(run["arguments"]) == NOTE_CALL[0]["arguments"]
    assert json.loads(run["content"])["saved"] is True and run["status"] == "ok"
    decided = steps["tool_approval"]["step_end_log"]["result"]["decisions"]
    assert decided == [{"tool_call_id": call_id, "approved": True, "reason": None}]
    graph = server.client.get(f"{API}/graph").json()
    assert {"run_tool", "tool_approval"} <= set(graph["actions"])


def test_a_deny_over_http_tells_the_model(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    call_id = ask_for_a_note(server, upstream, app_id)
    upstream.control(text="Fine, I will not.")
    events = sse_events(approve(server, app_id, call_id, approved=False, reason="no plants"))
    assert of_type(events, "tool_denied") == [
        {"id": call_id, "name": "save_note", "reason": "no plants"}
    ]
    bodies = [
        b for b in upstream.stats()["request_bodies"] if isinstance(b, dict) and b.get("stream")
    ]
    told = bodies[-1]["messages"][-1]
    assert told["role"] == "tool" and "no plants" in told["content"]
    assert all(n["app_id"] != app_id for n in server.client.get(f"{API}/notes/{PROJECT}").json())


@pytest.fixture
def two_processes(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[list[ChatServer]]:
    """Two server processes on one store (SQLite: one folder; PostgreSQL: one database)."""
    servers: list[ChatServer] = []
    try:
        for name in ("a", "b"):
            home = tmp_path / "shared" if not engine else tmp_path / f"home-{name}"
            servers.append(
                start_server(
                    "cli",
                    home,
                    upstream,
                    f"{request.node.name}-{name}",
                    BURR_CHATBOT_WORKER_NAME=f"machine-{name}",
                    **engine,
                )
            )
        yield servers
    finally:
        for server in servers:
            server.close()


def test_asked_on_one_process_approved_on_another(
    two_processes: list[ChatServer], upstream: FakeUpstream
) -> None:
    a, b = two_processes
    call_id = ask_for_a_note(a, upstream, "across")
    assert [p["id"] for p in b.client.get(f"{API}/approvals/{PROJECT}/across").json()] == [call_id]
    events = sse_events(approve(b, "across", call_id))
    assert of_type(events, "tool_result") and events[-1]["type"] == "message"
    assert approve(a, "across", call_id).status_code == 409
    for server in (a, b):
        roles = [m["role"] for m in server.history("across")]
        assert roles == ["user", "assistant", "tool", "assistant"]
        texts = [n["text"] for n in server.client.get(f"{API}/notes/{PROJECT}").json()]
        assert texts == ["water the plants"]


def test_an_approval_after_kill_9_and_a_restart(
    upstream: FakeUpstream, tmp_path: Path, engine: dict[str, str]
) -> None:
    first = start_server("cli", tmp_path, upstream, "approve-before-kill", **engine)
    try:
        call_id = ask_for_a_note(first, upstream, "restart")
    finally:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=10)
        first.close()
    second = start_server("cli", tmp_path, upstream, "approve-after-kill", **engine)
    try:
        deadline = time.monotonic() + 5
        pending = second.client.get(f"{API}/approvals/{PROJECT}/restart").json()
        while not pending and time.monotonic() < deadline:  # (never needed: saved before it ended)
            time.sleep(0.1)
            pending = second.client.get(f"{API}/approvals/{PROJECT}/restart").json()
        assert [p["id"] for p in pending] == [call_id]
        events = sse_events(approve(second, "restart", call_id))
        assert of_type(events, "tool_result") and events[-1]["type"] == "message"
        notes = second.client.get(f"{API}/notes/{PROJECT}").json()
        assert [n["text"] for n in notes] == ["water the plants"]
    finally:
        second.close()


def test_reattach_replays_the_tool_events(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(
        route="answer_question",
        tool_calls=[{"name": "calculator", "arguments": {"expression": "6*7"}}],
        text="It is 42.",
    )
    events = server.turn(app_id, "What is 6*7?")
    replayed = sse_events(server.client.get(f"{API}/stream/{PROJECT}/{app_id}"))
    # (deltas that pile up are sent as one: compare the text, and every other event)
    assert [e for e in replayed if e["type"] != "delta"] == [
        e for e in events if e["type"] != "delta"
    ]
    assert "".join(of_type(replayed, "delta")) == "".join(of_type(events, "delta"))
    for kind in ("tool_call_start", "tool_call", "tool_result"):
        assert of_type(replayed, kind) == of_type(events, kind) != []
    history = server.history(app_id)
    assert history[1]["tool_calls"][0]["name"] == "calculator"
    assert history[2]["role"] == "tool" and history[2]["status"] == "ok"


def test_with_users_only_the_owner_sees_decides_and_lists_notes(
    tmp_path: Path, engine: dict[str, str]
) -> None:
    from test_users import as_user, chatbot_with_users, turn

    server = chatbot_with_users(tmp_path, "tools-users", **engine)
    alice, bob = as_user(server, "alice"), as_user(server, "bob")
    try:
        events = turn(alice, "a-note", "remember to feed the cat")
        (request,) = of_type(events, "tool_approval_request")
        turn(bob, "b-note", "remember to walk the dog")
        decision = {"tool_call_id": request["id"], "approved": True}
        # Bob: the conversation, its approvals and its call do not exist for him.
        assert bob.get(f"/approvals/{PROJECT}/a-note").status_code == 404
        refused = bob.post(f"/approve/{PROJECT}/a-note", json=decision)
        assert refused.status_code == 404 and request["id"] not in refused.text
        assert [a["id"] for a in alice.get(f"/approvals/{PROJECT}/a-note").json()] == [
            request["id"]
        ]
        approved = sse_events(alice.post(f"/approve/{PROJECT}/a-note", json=decision))
        assert of_type(approved, "tool_result")
        (bobs,) = of_type(turn(bob, "b-note", "remember to walk the dog"), "tool_denied")
        assert bobs["reason"] == "superseded"  # (bob's own call, superseded by his new prompt)
        assert [n["text"] for n in alice.get(f"/notes/{PROJECT}").json()] == ["feed the cat"]
        assert bob.get(f"/notes/{PROJECT}").json() == []
    finally:
        alice.close()
        bob.close()
        server.close()
