"""Renaming and deleting conversations, through the real server on both engines (the store's side is in
test_store.py)."""

import time
from pathlib import Path

import pytest
from conftest import API, PROJECT, ChatServer, start_server
from fake_openai import FakeUpstream

from burr_streaming_chatbot.storage.sqlite import state_db_path

pytestmark = pytest.mark.e2e  # chatbot servers in subprocesses (and PostgreSQL)


def titles(server: ChatServer) -> dict[str, str]:
    listed = server.client.get(f"{API}/conversations/{PROJECT}")
    assert listed.status_code == 200, listed.text
    return {c["app_id"]: c["title"] for c in listed.json()}


def test_rename_shows_the_new_title_and_refuses_bad_input(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_server("cli", tmp_path, upstream, "rename", **engine)
    try:
        assert server.turn("r1", "What is Burr?")[-1]["type"] == "message"
        assert server.turn("r2", "What is Hamilton?")[-1]["type"] == "message"
        assert titles(server) == {"r1": "What is Burr?", "r2": "What is Hamilton?"}

        renamed = server.client.patch(
            f"{API}/conversations/{PROJECT}/r1", json={"title": "  About Burr \n"}
        )
        assert renamed.status_code == 200, renamed.text
        assert renamed.json() == {"app_id": "r1", "title": "About Burr"}
        assert titles(server) == {"r1": "About Burr", "r2": "What is Hamilton?"}
        # The title is the store's: a new turn keeps it.
        assert server.turn("r1", "And Hamilton?")[-1]["type"] == "message"
        assert titles(server)["r1"] == "About Burr"

        # Bad input: a clear 422, nothing written.
        for body in [
            {"title": ""},
            {"title": "   "},
            {"title": "x" * 201},
            {"title": "a\x00b"},
            {"title": 3},
            {},
            {"name": "About"},
        ]:
            refused = server.client.patch(f"{API}/conversations/{PROJECT}/r2", json=body)
            assert refused.status_code == 422, (body, refused.text)
            assert refused.json()["detail"], refused.text
        for bad_id in ["bad id!", "x" * 65]:
            refused = server.client.patch(
                f"{API}/conversations/{PROJECT}/{bad_id}", json={"title": "A"}
            )
            assert refused.status_code in (404, 422), refused.text
        assert titles(server) == {"r1": "About Burr", "r2": "What is Hamilton?"}
        longest = server.client.patch(
            f"{API}/conversations/{PROJECT}/r2", json={"title": "y" * 200}
        )
        assert longest.status_code == 200, longest.text

        # Unknown: 404, and nothing appears in the list.
        for project, app_id in [(PROJECT, "never-made"), ("renameproj", "r1")]:
            missing = server.client.patch(
                f"{API}/conversations/{project}/{app_id}", json={"title": "Ghost"}
            )
            assert missing.status_code == 404, missing.text
            assert missing.json() == {"detail": "No such conversation."}
        assert set(titles(server)) == {"r1", "r2"}
        assert server.client.get(f"{API}/conversations/renameproj").json() == []
        if not engine:  # (SQLite: a refused rename creates no file)
            assert not state_db_path(tmp_path, "renameproj").exists()
    finally:
        server.close()


def burr_app_ids(server: ChatServer) -> set[str]:
    """The project's applications as Burr's own API lists them (what its UI shows)."""
    listed = server.client.get(f"/api/v0/{PROJECT}/__none__/apps", params={"limit": 1000})
    assert listed.status_code == 200, listed.text
    return {app["app_id"] for app in listed.json()["applications"]}


def test_delete_removes_the_conversation_and_its_burr_tracking_and_keeps_its_branches(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_server("burr", tmp_path, upstream, "delete", **engine)
    try:
        assert server.turn("d1", "What is Burr?")[-1]["type"] == "message"
        assert server.turn("d1", "And its UI?")[-1]["type"] == "message"
        assert server.turn("keep", "Unrelated?")[-1]["type"] == "message"
        forked = server.client.post(f"{API}/fork/{PROJECT}/d1", json={"at": 2})
        assert forked.status_code == 200, forked.text
        branch = forked.json()
        assert {"d1", "keep", branch} <= burr_app_ids(server)
        assert (tmp_path / PROJECT / "d1").is_dir()

        deleted = server.client.delete(f"{API}/conversations/{PROJECT}/d1")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"app_id": "d1", "deleted": True, "stopped": False}

        listed = {
            c["app_id"]: c for c in server.client.get(f"{API}/conversations/{PROJECT}").json()
        }
        assert set(listed) == {"keep", branch}
        assert listed[branch]["parent_deleted"] is True
        assert listed["keep"]["parent_deleted"] is False
        for method, path, body in [
            ("GET", f"/history/{PROJECT}/d1", None),
            ("POST", f"/create/{PROJECT}/d1", None),
            ("POST", f"/response/{PROJECT}/d1", {"prompt": "Back?"}),
            ("POST", f"/fork/{PROJECT}/d1", {"at": 0}),
            ("PATCH", f"/conversations/{PROJECT}/d1", {"title": "Back?"}),
            ("DELETE", f"/conversations/{PROJECT}/d1", None),
        ]:
            gone = server.client.request(method, f"{API}{path}", json=body)
            assert gone.status_code == 404, (path, gone.text)
            assert gone.json() == {"detail": "No such conversation."}
        assert not (tmp_path / PROJECT / "d1").exists()
        apps = burr_app_ids(server)
        assert "d1" not in apps and {"keep", branch} <= apps

        # The branch keeps its messages and answers on.
        assert [m["content"] for m in server.history(branch)][:1] == ["What is Burr?"]
        assert server.turn(branch, "Still here?")[-1]["type"] == "message"
        assert len(server.history(branch)) == 4
        tree = server.client.get(f"{API}/branches/{PROJECT}/{branch}")
        assert tree.status_code == 200, tree.text
        assert [b["app_id"] for b in tree.json()["branches"]] == [branch]

        # Bad input: 422 or 404, nothing deleted.
        for path in [f"{PROJECT}/bad id!", f"{PROJECT}/{'x' * 65}", "bad project!/keep"]:
            refused = server.client.delete(f"{API}/conversations/{path}")
            assert refused.status_code in (404, 422), refused.text
        missing = server.client.delete(f"{API}/conversations/deleteproj/keep")
        assert missing.status_code == 404, missing.text
        if not engine:  # (SQLite: a refused delete creates no file)
            assert not state_db_path(tmp_path, "deleteproj").exists()
        assert {
            c["app_id"] for c in server.client.get(f"{API}/conversations/{PROJECT}").json()
        } == {
            "keep",
            branch,
        }
    finally:
        server.close()


def test_deleting_a_conversation_that_is_answering_stops_the_answer_first(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_server("cli", tmp_path, upstream, "delete-answering", **engine)
    try:
        upstream.control(tokens=400, delay_ms=20)
        thread, events = server.turn_in_background("busy", "Tell me something long?")
        deadline = time.monotonic() + 20
        while not any(e.get("type") == "delta" for e in events) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(e.get("type") == "delta" for e in events), events

        deleted = server.client.delete(f"{API}/conversations/{PROJECT}/busy")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json() == {"app_id": "busy", "deleted": True, "stopped": True}
        thread.join(timeout=30)
        assert not thread.is_alive()
        assert events[-1]["type"] in ("error", "message"), events[-1]
        assert events[-1]["type"] == "message" or events[-1]["value"]["code"] == "stopped"
        assert server.client.get(f"{API}/history/{PROJECT}/busy").status_code == 404
        assert server.client.get(f"{API}/conversations/{PROJECT}").json() == []
        time.sleep(0.5)  # (nothing saved it back afterwards)
        assert server.client.get(f"{API}/conversations/{PROJECT}").json() == []
    finally:
        server.close()


def test_search_finds_conversations_by_title_and_message_and_pages(
    engine: dict[str, str], upstream: FakeUpstream, tmp_path: Path
) -> None:
    server = start_server("cli", tmp_path, upstream, "search", **engine)

    def found(**params: object) -> list[str]:
        listed = server.client.get(f"{API}/conversations/{PROJECT}", params=params)
        assert listed.status_code == 200, listed.text
        return [c["app_id"] for c in listed.json()]

    try:
        upstream.control(text="Burr runs state machines.", delay_ms=0)
        assert server.turn("s1", "What is Burr?")[-1]["type"] == "message"
        upstream.control(text="Hamilton builds dataflows.", delay_ms=0)
        assert server.turn("s2", "What is Hamilton?")[-1]["type"] == "message"
        assert server.turn("s3", "Something else")[-1]["type"] == "message"
        assert found(q="burr") == ["s1"]
        assert found(q="DATAFLOW") == ["s2"]  # an answer's text, any case, a prefix
        assert found(q="what is") == ["s2", "s1"]
        assert found(q="zebra") == []
        assert (
            server.client.patch(
                f"{API}/conversations/{PROJECT}/s3", json={"title": "Zebra notes"}
            ).status_code
            == 200
        )
        assert found(q="zebra") == ["s3"]
        assert found(limit=2) == ["s3", "s2"] and found(limit=2, offset=2) == ["s1"]
        assert found(q="what", limit=1, offset=1) == ["s1"]
        assert server.client.delete(f"{API}/conversations/{PROJECT}/s1").status_code == 200
        assert found(q="burr") == []
        assert found(q="*") == ["s3", "s2"]  # (no word: every conversation)

        for params in [
            {"q": "x" * 201},
            {"q": " ".join(f"w{n}" for n in range(17))},
            {"limit": 0},
            {"limit": 201},
            {"offset": -1},
            {"limit": "many"},
        ]:
            refused = server.client.get(f"{API}/conversations/{PROJECT}", params=params)
            assert refused.status_code == 422, (params, refused.text)
            assert refused.json()["detail"], refused.text
        assert server.client.get(f"{API}/conversations/searchproj", params={"q": "a"}).json() == []
        if not engine:  # (SQLite: a search creates no file)
            assert not state_db_path(tmp_path, "searchproj").exists()
    finally:
        server.close()
