"""Users behind an authenticating proxy: with ``BURR_CHATBOT_USER_HEADER`` (or an app's own
``create_router(user=Depends(...))``), a request without a user gets 401, and each conversation
belongs to the user who created it: another user gets 404 for it on every endpoint and never
sees it in a list or a branch tree. Owners are kept in the store, on both engines."""

import json
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import API, ARTIFACTS, PROJECT, ChatServer, free_port, server_env

from burr_streaming_chatbot.service import ChatService, NotFound
from burr_streaming_chatbot.settings import Settings

HEADER = "X-Forwarded-User"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ChatService]:
    chat = ChatService(Settings(offline=True, offline_delay_ms=1, storage_dir=tmp_path))
    await chat.open()
    yield chat
    await chat.close()


async def answered(service: ChatService, app_id: str, prompt: str, user: str) -> None:
    turn = await service.start_turn(PROJECT, app_id, prompt, user=user)
    async for _ in turn.follow(0):
        pass


async def test_the_service_keeps_each_users_conversations_apart(service: ChatService) -> None:
    # Stored before users were on: nobody's, so nobody sees it.
    await answered(service, "old", "Before users?", user=None)  # type: ignore[arg-type]
    await answered(service, "a1", "What is Burr?", user="alice")
    branch = await service.fork(PROJECT, "a1", 0, user="alice")
    assert await service.create(PROJECT, "b1", user="bob") == "b1"

    assert {c.app_id for c in await service.conversation_list(PROJECT, user="alice")} == {
        "a1",
        branch,
    }
    assert await service.conversation_list(PROJECT, user="bob") == []  # (b1 has no state yet)
    assert len(await service.history(PROJECT, "a1", user="alice")) == 2
    tree = await service.branches(PROJECT, branch, user="alice")
    assert tree.root == "a1" and [b.app_id for b in tree.branches] == ["a1", branch]
    for app_id in ("a1", branch, "old"):
        for call in (
            service.history(PROJECT, app_id, user="bob"),
            service.fork(PROJECT, app_id, 0, user="bob"),
            service.branches(PROJECT, app_id, user="bob"),
            service.find_turn(PROJECT, app_id, user="bob"),
            service.stop_turn(PROJECT, app_id, user="bob"),
            service.create(PROJECT, app_id, user="bob"),
            service.start_turn(PROJECT, app_id, "Mine now?", user="bob"),
            service.changes(PROJECT, app_id, user="bob"),
        ):
            with pytest.raises(NotFound):
                await call
    with pytest.raises(NotFound):
        await service.history(PROJECT, "old", user="alice")
    assert len(await service.history(PROJECT, "a1", user="alice")) == 2  # bob's prompt: refused
    assert await service.history(PROJECT, "nobody-yet", user="bob") == []


# -- real servers ----------------------------------------------------------------------------


def start(
    command: list[str],
    env: dict[str, str],
    port: int,
    name: str,
    probe: dict[str, str],
    cwd: Path | None = None,
) -> ChatServer:
    """A server whose every request needs a user: it is probed with ``probe``'s headers."""
    server = ChatServer(command, env, port, ARTIFACTS / "logs" / f"{name}.log")
    server.client.headers.update(probe)
    if cwd is not None:  # (ChatServer starts its process in the current folder)
        server.command = ["sh", "-c", f'cd "{cwd}" && exec "$0" "$@"', *command]
    return server.start()


def chatbot_with_users(storage: Path, name: str, **extra: str) -> ChatServer:
    port = free_port()
    command = [sys.executable, "-m", "burr_streaming_chatbot", "--no-open", "--port", str(port)]
    env = server_env(storage, None, BURR_CHATBOT_USER_HEADER=HEADER, **extra)
    return start(command, env, port, name, {HEADER: "probe"})


def as_user(
    server: ChatServer, user: str | None, headers_of=lambda user: {HEADER: user}
) -> httpx.Client:  # type: ignore[no-untyped-def]
    return httpx.Client(
        base_url=server.url + API, timeout=30, headers=headers_of(user) if user else {}
    )


def turn(client: httpx.Client, app_id: str, prompt: str) -> list[dict[str, Any]]:
    response = client.post(f"/response/{PROJECT}/{app_id}", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    return [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")
    ]


def ai_sdk_body(app_id: str, text: str) -> dict[str, Any]:
    return {
        "id": app_id,
        "messages": [{"id": "m1", "role": "user", "parts": [{"type": "text", "text": text}]}],
    }


def ag_ui_body(app_id: str, text: str) -> dict[str, Any]:
    return {
        "threadId": app_id,
        "runId": "r1",
        "state": {},
        "tools": [],
        "context": [],
        "forwardedProps": {},
        "messages": [{"id": "m1", "role": "user", "content": text}],
    }


def every_endpoint(app_id: str) -> list[tuple[str, str, Any]]:
    """Each endpoint of one conversation: (method, path, JSON body)."""
    return [
        ("GET", f"/history/{PROJECT}/{app_id}", None),
        ("GET", f"/stream/{PROJECT}/{app_id}", None),
        ("POST", f"/response/{PROJECT}/{app_id}", {"prompt": "Is it mine?"}),
        ("POST", f"/stop/{PROJECT}/{app_id}", None),
        ("POST", f"/fork/{PROJECT}/{app_id}", {"at": 0}),
        ("GET", f"/branches/{PROJECT}/{app_id}", None),
        ("GET", f"/events/{PROJECT}/{app_id}", None),
        ("POST", f"/ag-ui/{PROJECT}", ag_ui_body(app_id, "Is it mine?")),
        ("POST", f"/ai-sdk/{PROJECT}", ai_sdk_body(app_id, "Is it mine?")),
        ("GET", f"/ai-sdk/{PROJECT}/{app_id}/stream", None),
        ("POST", f"/create/{PROJECT}/{app_id}", None),
        ("GET", f"/approvals/{PROJECT}/{app_id}", None),
        ("POST", f"/approve/{PROJECT}/{app_id}", {"tool_call_id": "call_1", "approved": True}),
        ("GET", f"/settings/{PROJECT}/{app_id}", None),
        ("PATCH", f"/settings/{PROJECT}/{app_id}", {"temperature": 0.5}),
        ("POST", f"/feedback/{PROJECT}/{app_id}", {"at": 1, "thumbs_up": True}),
        ("GET", f"/feedback/{PROJECT}/{app_id}", None),
        ("GET", f"/export/{PROJECT}/{app_id}?format=json", None),
        ("GET", f"/export/{PROJECT}/{app_id}?format=markdown", None),
        ("PATCH", f"/conversations/{PROJECT}/{app_id}", {"title": "Is it mine?"}),
        ("DELETE", f"/conversations/{PROJECT}/{app_id}", None),
    ]


def assert_not_found_everywhere(client: httpx.Client, app_id: str) -> None:
    for method, path, body in every_endpoint(app_id):
        response = client.request(method, path, json=body)
        assert response.status_code == 404, (
            method,
            path,
            response.status_code,
            response.text[:200],
        )
        assert response.json() == {"detail": "No such conversation."}, path


@pytest.mark.e2e
def test_two_users_and_no_user_on_every_endpoint(tmp_path: Path, engine: dict[str, str]) -> None:
    # A conversation stored before users were on (same store): nobody sees it afterwards.
    port = free_port()
    plain = ChatServer(
        [sys.executable, "-m", "burr_streaming_chatbot", "--no-open", "--port", str(port)],
        server_env(tmp_path, None, **engine),
        port,
        ARTIFACTS / "logs" / "users-before.log",
    ).start()
    try:
        plain.turn("old", "Before users?")
    finally:
        plain.close()

    server = chatbot_with_users(tmp_path, "users", **engine)
    alice, bob, nobody = as_user(server, "alice"), as_user(server, "bob"), as_user(server, None)
    try:
        # No user: 401 everywhere, nothing written.
        for method, path, body in [
            ("GET", "/model", None),
            ("GET", "/me", None),
            ("GET", f"/conversations/{PROJECT}", None),
            ("GET", "/status", None),
            ("GET", "/models", None),
            *every_endpoint("n1"),
        ]:
            response = nobody.request(method, path, json=body)
            assert response.status_code == 401, (path, response.text)
            assert response.json() == {"detail": "Sign in first: no user was given."}
        assert alice.get("/me").json() == {"user": "alice"}

        # Alice's conversations, by every protocol, and a branch of one.
        assert alice.post(f"/create/{PROJECT}/a1").status_code == 200
        assert turn(alice, "a1", "What is Burr?")[-1]["type"] == "message"
        assert (
            alice.post(f"/ag-ui/{PROJECT}", json=ag_ui_body("a-agui", "Hello?")).status_code == 200
        )
        assert (
            alice.post(f"/ai-sdk/{PROJECT}", json=ai_sdk_body("a-sdk", "Hello?")).status_code == 200
        )
        branch = alice.post(f"/fork/{PROJECT}/a1", json={"at": 0}).json()
        turn(alice, branch, "What is Hamilton?")
        turn(bob, "b1", "What is Burr?")

        mine = {c["app_id"] for c in alice.get(f"/conversations/{PROJECT}").json()}
        assert mine == {"a1", "a-agui", "a-sdk", branch}
        assert {c["app_id"] for c in bob.get(f"/conversations/{PROJECT}").json()} == {"b1"}
        tree = alice.get(f"/branches/{PROJECT}/{branch}").json()
        assert tree["root"] == "a1" and [b["app_id"] for b in tree["branches"]] == ["a1", branch]

        # Bob gets 404 for each of alice's on every endpoint, and alice for bob's; nobody sees
        # the conversation stored before users were on.
        for app_id in ("a1", "a-agui", "a-sdk", branch):
            assert_not_found_everywhere(bob, app_id)
        assert_not_found_everywhere(alice, "b1")
        assert_not_found_everywhere(alice, "old")
        history = alice.get(f"/history/{PROJECT}/a1").json()
        assert [m["role"] for m in history] == ["user", "assistant"]  # bob's prompts wrote nothing
        assert history[0]["content"] == "What is Burr?"
        defaults = {"model": None, "system_prompt": None, "temperature": None}
        assert alice.get(f"/settings/{PROJECT}/a1").json() == defaults  # (bob's PATCH: nothing)
        assert alice.post(f"/stop/{PROJECT}/a1").json() == {"stopped": False}
        # Bob's rename and delete changed nothing; alice's own work.
        titles = {c["app_id"]: c["title"] for c in alice.get(f"/conversations/{PROJECT}").json()}
        assert titles["a1"] == "What is Burr?"
        renamed = alice.patch(f"/conversations/{PROJECT}/a1", json={"title": "Alice's"})
        assert renamed.status_code == 200, renamed.text
        assert alice.delete(f"/conversations/{PROJECT}/a-sdk").status_code == 200
        mine = {c["app_id"]: c["title"] for c in alice.get(f"/conversations/{PROJECT}").json()}
        assert set(mine) == {"a1", "a-agui", branch} and mine["a1"] == "Alice's"
        assert bob.delete(f"/conversations/{PROJECT}/a-sdk").status_code == 404
        # Search finds only one's own.
        found = bob.get(f"/conversations/{PROJECT}", params={"q": "burr"}).json()
        assert [c["app_id"] for c in found] == ["b1"]
        found = alice.get(f"/conversations/{PROJECT}", params={"q": "burr"}).json()
        assert "a1" in {c["app_id"] for c in found} <= {"a1", "a-agui", branch}
        with alice.stream("GET", f"/events/{PROJECT}/a1") as events:
            assert events.status_code == 200
    finally:
        for client in (alice, bob, nobody):
            client.close()
        server.close()


APP = """
    from fastapi import Depends, FastAPI, Header, HTTPException

    from burr_streaming_chatbot.router import API_PREFIX, create_router

    TOKENS = {"token-a": "alice", "token-b": "bob"}


    def current_user(authorization: str = Header(default="")) -> str:
        user = TOKENS.get(authorization.removeprefix("Bearer "))
        if user is None:
            raise HTTPException(401, "Bad token.")
        return user


    app = FastAPI()
    app.include_router(create_router(user=Depends(current_user)), prefix=API_PREFIX)
"""


@pytest.mark.e2e
def test_an_app_passes_its_own_user_dependency(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app:app", "--port", str(port)]
    env = server_env(tmp_path / "storage", None)
    server = start(
        command, env, port, "users-app", {"Authorization": "Bearer token-a"}, cwd=tmp_path
    )

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    alice = as_user(server, "token-a", bearer)
    bob = as_user(server, "token-b", bearer)
    try:
        assert as_user(server, "wrong", bearer).get("/me").status_code == 401
        assert alice.get("/me").json() == {"user": "alice"}
        turn(alice, "a1", "What is Burr?")
        assert [c["app_id"] for c in alice.get(f"/conversations/{PROJECT}").json()] == ["a1"]
        assert bob.get(f"/conversations/{PROJECT}").json() == []
        assert_not_found_everywhere(bob, "a1")
    finally:
        alice.close()
        bob.close()
        server.close()
