"""The blog post's own client, Burr's built-in streaming page, against this router.

Burr's UI app is served with its registered demos off (``BURR_DEMOS_AUTOLOAD=0``, so Burr's own
page answers at ``/demos/streaming-chatbot``) and this package's router included in front of
Burr's built-in streaming router, at the same prefix, as a user who mounts it into Burr's
server would. The page splits each network read on ``"data: "`` and parses every piece as
JSON: with ids or keepalive comments in the stream it showed an empty answer and an input that
stayed disabled.
"""

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ARTIFACTS, ChatServer, free_port, server_env
from fake_openai import FakeUpstream
from playwright.sync_api import expect

APP = """
from burr.tracking.server.run import app
from burr_streaming_chatbot.router import API_PREFIX, create_router

before = len(app.router.routes)
app.include_router(create_router(), prefix=API_PREFIX)
ours = app.router.routes[before:]
del app.router.routes[before:]
app.router.routes[0:0] = ours  # in front of Burr's built-in /api/v0/streaming_chatbot routes
"""


@pytest.fixture
def burr_ui(upstream: FakeUpstream, tmp_path: Path) -> Iterator[ChatServer]:
    (tmp_path / "burr_with_chatbot.py").write_text(APP)
    port = free_port()
    env = server_env(
        tmp_path / "storage", upstream, BURR_DEMOS_AUTOLOAD="0", PYTHONPATH=str(tmp_path)
    )
    command = [sys.executable, "-m", "uvicorn", "burr_with_chatbot:app", "--port", str(port)]
    server = ChatServer(command, env, port, ARTIFACTS / "logs" / "burr-builtin-page.log")
    server.start()
    try:
        yield server
    finally:
        server.close()


def test_burr_s_built_in_streaming_page_works_on_this_router(
    burr_ui: ChatServer, upstream: FakeUpstream, page: Any
) -> None:
    answer = "Burr is a library for state machines; data: it streams."
    thinking = "First I recall what Burr is."
    # A reasoning model: the stream carries `reasoning` events too, which this page ignores.
    upstream.control(text=answer, reasoning=thinking, delay_ms=20)
    page.goto(f"{burr_ui.url}/demos/streaming-chatbot")
    page.get_by_text("Select a conversation or create a new one by typing...").wait_for()
    selector = page.locator('input[role="combobox"]').first  # react-select's input
    selector.click(force=True)
    page.keyboard.type("builtin-page-chat")
    page.get_by_text('Create "builtin-page-chat"').wait_for()
    page.keyboard.press("Enter")  # react-select's "Create ..." option: POST /create (ours)
    prompt = page.get_by_placeholder("Ask me how tall the Eifel tower is!")
    prompt.wait_for(state="visible")
    expect(prompt).to_be_enabled(timeout=20_000)
    prompt.fill("What is Burr?")
    prompt.press("Enter")
    # The streamed answer appears, and the page is ready for the next prompt.
    page.get_by_text(answer).last.wait_for(timeout=20_000)
    expect(prompt).to_be_enabled(timeout=20_000)
    assert burr_ui.history("builtin-page-chat")[-1]["content"] == answer
    assert burr_ui.history("builtin-page-chat")[-1]["reasoning"] == thinking
    assert page.get_by_text(thinking).count() == 0
    # Our router answered (Burr's built-in one would have asked the fake with its own prompts).
    assert upstream.stats()["request_bodies"][-1]["model"] == "answer-model"
