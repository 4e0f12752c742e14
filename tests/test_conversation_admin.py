"""Renaming conversations, through the real server on both engines (the store's side is in
test_store.py)."""

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
