"""End to end: the real `burr` command serves this package's API and page, with no code change."""

from pathlib import Path

import pytest
from conftest import API, PROJECT, start_server
from fake_openai import FakeUpstream

pytestmark = pytest.mark.e2e  # the real burr command in a subprocess


def test_burr_serves_the_plugin(upstream: FakeUpstream, tmp_path: Path) -> None:
    server = start_server("burr", tmp_path, upstream, "burr_cli")
    try:
        upstream.control(text="Streamed through plain burr.", delay_ms=5)
        events = server.turn("via-burr", "What does burr serve?")
        deltas = [e["value"] for e in events if e["type"] == "delta"]
        assert "".join(deltas) == "Streamed through plain burr."
        # Our router answers, not Burr's built-in example (which sends no `message` event).
        assert events[-1]["type"] == "message" and events[-1]["value"]["model"] == "answer-model"

        page = server.client.get("/demos/streaming-chatbot", follow_redirects=True)
        assert page.status_code == 200
        assert str(page.url).endswith("/demos/streaming-chatbot/")
        assert "window.__BURR_DEMO__" in page.text and '<div id="root">' in page.text

        # Burr's own pages carry the script that makes the sidebar link load this page.
        projects = server.client.get("/projects")
        assert projects.status_code == 200 and "streaming-chatbot" in projects.text

        # Burr's UI lists the conversation under the demo's project.
        apps = server.client.get(f"/api/v0/{PROJECT}/__none__/apps").json()
        assert "via-burr" in [a["app_id"] for a in apps["applications"]]
        assert server.client.get(f"{API}/model").json()["offline"] is False
        # The startup hook owns this process: what was loaded at startup is frozen.
        assert server.client.get(f"{API}/status").json()["frozen_objects"] > 10_000
    finally:
        server.close()
