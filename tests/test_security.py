"""No secret reaches the browser, the API or the files Burr's UI reads."""

from pathlib import Path

import pytest
from conftest import API, ChatServer
from fake_openai import FakeUpstream

pytestmark = pytest.mark.e2e  # the chatbot server in a subprocess

SECRET = "sk-test-secret-key"  # the key every test server is started with (conftest.server_env)


def test_the_api_key_is_sent_upstream_and_nowhere_else(
    server: ChatServer, upstream: FakeUpstream, app_id: str, session_storage: Path
) -> None:
    upstream.control(text="An answer.")
    events = server.turn(app_id, "What is the key?")
    assert upstream.stats()["last_authorization"] == f"Bearer {SECRET}"
    assert SECRET not in str(events)

    for path in [
        "/demos/streaming-chatbot/",
        f"{API}/model",
        f"{API}/graph",
        f"{API}/status",
        "/openapi.json",
        f"{API}/conversations/demo_streaming_chatbot",
    ]:
        assert SECRET not in server.client.get(path, follow_redirects=True).text, path

    files = [p for p in session_storage.rglob("*") if p.is_file()]
    assert any(p.name == "log.jsonl" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_model_output_is_stored_as_text(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    evil = '<img src=x onerror="alert(1)"> <script>alert(2)</script>'
    upstream.control(text=evil)
    events = server.turn(app_id, "What is html?")
    # Stored and sent as it came, inside JSON; the page renders it as text (its tests check).
    assert events[-1]["value"]["item"]["content"] == evil
    assert server.history(app_id)[-1]["content"] == evil
