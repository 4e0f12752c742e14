"""Branches as Burr forks, a conversation's changes for every tab, and ``if_busy``: through the
real server (the ``burr-streaming-chatbot`` CLI, which serves Burr's own UI and API too)."""

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API, PROJECT, ChatServer
from fake_openai import FakeUpstream

pytestmark = pytest.mark.e2e  # chatbot servers in subprocesses (and PostgreSQL)

PROMPTS = ["What is one?", "What is two?", "What is three?"]


def exchange_texts(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in history]


def three_exchanges(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> list[dict[str, Any]]:
    for n, prompt in enumerate(PROMPTS):
        upstream.control(text=f"Answer {n}.", delay_ms=0)
        assert server.turn(app_id, prompt)[-1]["type"] == "message"
    history = server.history(app_id)
    assert len(history) == 6
    return history


def burr_apps(server: ChatServer) -> dict[str, dict[str, Any]]:
    """The project's applications as Burr's UI reads them (its own server API)."""
    for partition in ("__none__", PROJECT):
        response = server.client.get(f"/api/v0/{PROJECT}/{partition}/apps", params={"limit": 1000})
        if response.status_code == 200 and response.json()["applications"]:
            return {app["app_id"]: app for app in response.json()["applications"]}
    raise AssertionError(
        f"Burr's API lists no applications: {response.status_code} {response.text[:300]}"
    )


def test_fork_at_every_index_keeps_the_prefix_and_burr_records_the_parent(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    original = three_exchanges(server, upstream, app_id)
    forks = {}
    for at in range(len(original) + 1):
        response = server.client.post(f"{API}/fork/{PROJECT}/{app_id}", json={"at": at})
        assert response.status_code == 200, response.text
        forks[at] = response.json()
        assert exchange_texts(server.history(forks[at])) == exchange_texts(original[:at])
    assert len(set(forks.values())) == len(forks)
    assert server.history(app_id) == original  # untouched

    tree = server.client.get(f"{API}/branches/{PROJECT}/{forks[3]}").json()
    assert tree["root"] == app_id
    assert [b["app_id"] for b in tree["branches"]] == [app_id, *forks.values()]
    assert tree["branches"][0] | {"title": None, "updated_at": None} == {
        "app_id": app_id,
        "title": None,
        "updated_at": None,
        "root": None,
        "parent": None,
        "fork_at": None,
        "parent_deleted": False,
    }
    for branch, at in zip(tree["branches"][1:], forks, strict=False):
        assert (branch["root"], branch["parent"], branch["fork_at"]) == (app_id, app_id, at)
    listed = {c["app_id"]: c for c in server.client.get(f"{API}/conversations/{PROJECT}").json()}
    assert listed[forks[2]]["parent"] == app_id and listed[forks[2]]["fork_at"] == 2

    # Burr's own records: each fork's parent pointer, at the step that wrote its last message.
    apps = burr_apps(server)
    for at, fork in forks.items():
        parent = apps[fork]["parent_pointer"]
        assert parent is not None and parent["app_id"] == app_id, apps[fork]
        expected = None if at == 0 else [0, 3, 4, 7, 8, 11][at - 1]  # prompt, answer, prompt, ...
        assert parent["sequence_id"] == expected, (at, parent)
    partition = apps[app_id]["partition_key"] or "__none__"
    children = server.client.get(f"/api/v0/{PROJECT}/{app_id}/{partition}/apps").json()["children"]
    assert {child["child"]["app_id"] for child in children} >= set(forks.values()), children[:1]


def test_a_branch_answers_on_and_branches_of_branches_share_the_root(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    original = three_exchanges(server, upstream, app_id)
    # Edit the second prompt: fork before it, then send the new text.
    edited = server.client.post(f"{API}/fork/{PROJECT}/{app_id}", json={"at": 2}).json()
    upstream.control(text="Edited answer.", delay_ms=0)
    events = server.turn(edited, "What is two, really?")
    assert events[-1]["type"] == "message"
    assert (
        events[0]["value"]
        == [  # the chat_history the branch starts from
            {**m, "reasoning": None} | {k: m[k] for k in m if k in ("mode", "model")}
            for m in server.history(edited)[:2]
        ]
    )
    assert exchange_texts(server.history(edited)) == [
        *exchange_texts(original[:2]),
        ("user", "What is two, really?"),
        ("assistant", "Edited answer."),
    ]
    # Answer the first prompt again: fork after it; the same prompt is answered, not added twice.
    again = server.client.post(f"{API}/fork/{PROJECT}/{edited}", json={"at": 1}).json()
    upstream.control(text="Another answer.", delay_ms=0)
    assert server.turn(again, PROMPTS[0])[-1]["type"] == "message"
    assert exchange_texts(server.history(again)) == [
        ("user", PROMPTS[0]),
        ("assistant", "Another answer."),
    ]
    # Edit the very first prompt: a branch of no messages, answered like a new conversation.
    first = server.client.post(f"{API}/fork/{PROJECT}/{app_id}", json={"at": 0}).json()
    upstream.control(text="From the start.", delay_ms=0)
    events = server.turn(first, "What is zero?")
    assert [e["value"]["sequence_id"] for e in events if e["type"] == "action"] == [0, 1, 2, 3]
    assert exchange_texts(server.history(first)) == [
        ("user", "What is zero?"),
        ("assistant", "From the start."),
    ]
    tree = server.client.get(f"{API}/branches/{PROJECT}/{app_id}").json()
    assert [(b["app_id"], b["parent"], b["fork_at"]) for b in tree["branches"]] == [
        (app_id, None, None),
        (edited, app_id, 2),
        (again, edited, 1),
        (first, app_id, 0),
    ]
    assert server.history(app_id) == original


def test_bad_forks_are_refused_and_write_nothing(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    three_exchanges(server, upstream, app_id)
    before = server.client.get(f"{API}/conversations/{PROJECT}").json()
    for body in ({"at": 7}, {"at": -1}, {"at": "two"}, {}, {"at": 1.5}):
        response = server.client.post(f"{API}/fork/{PROJECT}/{app_id}", json=body)
        assert response.status_code == 422, (body, response.text)
    assert (
        server.client.post(f"{API}/fork/{PROJECT}/no-such-chat", json={"at": 0}).status_code == 404
    )
    assert server.client.post(f"{API}/fork/{PROJECT}/bad%20id", json={"at": 0}).status_code == 422
    assert server.client.get(f"{API}/branches/{PROJECT}/no-such-chat").status_code == 404
    assert server.client.get(f"{API}/conversations/{PROJECT}").json() == before


def read_changes(
    server: ChatServer, app_id: str, until: int, out: list[dict[str, Any]]
) -> threading.Thread:
    """Follow GET /events in a thread until ``until`` changes arrived."""

    def follow() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            with client.stream("GET", f"{API}/events/{PROJECT}/{app_id}") as response:
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        out.append(json.loads(line[6:]) | {"at": time.monotonic()})
                        if len(out) >= until:
                            return

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread


def test_events_tell_every_tab_of_turns_and_branches(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="First.", delay_ms=0)
    server.turn(app_id, "What is first?")
    changes: list[dict[str, Any]] = []
    follower = read_changes(server, app_id, 5, changes)
    time.sleep(0.5)
    upstream.control(text=" ".join(f"w{i}" for i in range(30)), delay_ms=20)
    started = time.monotonic()
    thread, events = server.turn_in_background(app_id, "What is second?")
    thread.join(30)
    token = events[-1]["id"].split(".")[0]
    fork = server.client.post(f"{API}/fork/{PROJECT}/{app_id}", json={"at": 2}).json()
    upstream.control(text="Quick.", delay_ms=0)
    quick = server.turn(app_id, "What is quick?")  # starts and ends between two looks, perhaps
    follower.join(10)
    kinds = [(c["type"], c["value"]) for c in changes]
    assert kinds[:2] == [("turn_started", {"turn": token}), ("turn_ended", {"turn": token})]
    assert changes[0]["at"] - started < 1.0  # a second tab hears of the turn within a second
    assert ("branch_created", {"app_id": fork, "parent": app_id, "fork_at": 2}) in kinds
    assert [k for k in kinds if k[0] != "branch_created"][2][0] == "turn_started"
    assert quick[-1]["type"] == "message"


@pytest.mark.parametrize("policy", ["interrupt", "enqueue"])
def test_if_busy_keeps_every_message_once_in_order(
    server: ChatServer, upstream: FakeUpstream, app_id: str, policy: str
) -> None:
    upstream.control(text=" ".join(f"w{i}" for i in range(40)), delay_ms=15)
    first, first_events = server.turn_in_background(app_id, "What is first?")
    deadline = time.monotonic() + 10
    while not any(e["type"] == "delta" for e in first_events) and time.monotonic() < deadline:
        time.sleep(0.02)
    results: dict[str, list[dict[str, Any]]] = {}

    def send(prompt: str) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            response = client.post(
                f"{API}/response/{PROJECT}/{app_id}",
                params={"if_busy": policy},
                json={"prompt": prompt},
                headers={"Accept": "text/event-stream"},
            )
            results[prompt] = (
                [
                    json.loads(line[6:])
                    for line in response.text.splitlines()
                    if line.startswith("data: ")
                ]
                if response.status_code == 200
                else [{"status": response.status_code}]
            )

    prompts = ["What is second?", "What is third?"]
    senders = []
    for prompt in prompts:
        senders.append(threading.Thread(target=send, args=(prompt,)))
        senders[-1].start()
        time.sleep(0.15)  # (so the order they are sent in is known)
    for sender in senders:
        sender.join(60)
    first.join(30)
    history = server.history(app_id)
    users = [m["content"] for m in history if m["role"] == "user"]
    answers = [m for m in history if m["role"] == "assistant"]
    if policy == "enqueue":
        # Each answered in turn, in the order sent, none stopped.
        assert users == ["What is first?", *prompts]
        assert [m["role"] for m in history] == ["user", "assistant"] * 3
        assert not any(m["interrupted"] for m in answers)
        assert all(results[p][-1]["type"] == "message" for p in prompts)
    else:
        # Every prompt kept once, in order; an interrupted answer is kept, marked.
        assert users == ["What is first?", *prompts]
        assert history[-1]["role"] == "assistant" and not history[-1]["interrupted"]
        assert history[1]["role"] == "assistant" and history[1]["interrupted"]
        assert (
            first_events[-1]["type"] == "error" and first_events[-1]["value"]["code"] == "stopped"
        )
        assert results[prompts[-1]][-1]["type"] == "message"
    assert len({(m["role"], m["content"]) for m in history if m["role"] == "user"}) == 3


def test_at_most_three_prompts_wait_then_409(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text=" ".join(f"w{i}" for i in range(30)), delay_ms=30)
    first, first_events = server.turn_in_background(app_id, "What is first?")
    while not first_events:
        time.sleep(0.02)
    statuses: list[int] = []

    def send(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            with client.stream(
                "POST",
                f"{API}/response/{PROJECT}/{app_id}",
                params={"if_busy": "enqueue"},
                json={"prompt": f"What is {n}?"},
            ) as response:
                statuses.append(response.status_code)
                response.read()

    senders = [threading.Thread(target=send, args=(n,)) for n in range(4)]
    for sender in senders:
        sender.start()
        time.sleep(0.1)
    for sender in senders:
        sender.join(60)
    first.join(30)
    assert sorted(statuses) == [200, 200, 200, 409]
    assert [m["role"] for m in server.history(app_id)] == ["user", "assistant"] * 4


def test_branches_on_both_engines_across_two_processes(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path, app_id: str
) -> None:
    """A fork made on one process is listed, answered and followed on the other, on SQLite
    (one machine's processes) and on PostgreSQL (two machines)."""
    from conftest import start_server

    homes = (tmp_path / "a", tmp_path / "b") if engine else (tmp_path / "shared",) * 2
    a = start_server("cli", homes[0], upstream, "branches-a", **engine)
    b = start_server("cli", homes[1], upstream, "branches-b", **engine)
    try:
        original = three_exchanges(a, upstream, app_id)
        changes: list[dict[str, Any]] = []
        follower = read_changes(b, app_id, 1, changes)  # a tab on B
        time.sleep(0.5)
        fork = a.client.post(f"{API}/fork/{PROJECT}/{app_id}", json={"at": 4}).json()
        assert exchange_texts(b.history(fork)) == exchange_texts(original[:4])
        follower.join(10)
        assert (
            changes
            and changes[0]["type"] == "branch_created"
            and changes[0]["value"]["app_id"] == fork
        )
        upstream.control(text="On B.", delay_ms=0)
        assert b.turn(fork, "What is three, on B?")[-1]["type"] == "message"
        tree = a.client.get(f"{API}/branches/{PROJECT}/{fork}").json()
        assert [(x["app_id"], x["fork_at"]) for x in tree["branches"]] == [
            (app_id, None),
            (fork, 4),
        ]
        assert exchange_texts(a.history(fork))[-2:] == [
            ("user", "What is three, on B?"),
            ("assistant", "On B."),
        ]
        assert a.history(app_id) == original
    finally:
        a.close()
        b.close()
