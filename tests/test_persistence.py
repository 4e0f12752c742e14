"""A conversation survives a server restart, and Burr's tracker sees it."""

import json
from pathlib import Path

from conftest import PROJECT, start_server
from fake_openai import FakeUpstream


def test_conversation_resumes_after_restart(upstream: FakeUpstream, tmp_path: Path) -> None:
    server = start_server("cli", tmp_path, upstream, "persistence-1")
    try:
        upstream.control(text="One.")
        server.turn("resume-me", "What is one?")
        upstream.control(text="Two.")
        server.turn("resume-me", "What is two?")
        before = server.history("resume-me")
    finally:
        server.close()
    assert len(before) == 4

    server = start_server("cli", tmp_path, upstream, "persistence-2")
    try:
        assert server.history("resume-me") == before
        upstream.control(text="Three.")
        events = server.turn("resume-me", "What is three?")
        assert events[0]["value"] == before
        assert [m["content"] for m in server.history("resume-me")][-2:] == ["What is three?", "Three."]
        # The model saw the whole conversation, including turns from before the restart.
        sent = upstream.stats()["request_bodies"][-1]["messages"]
        assert [m["content"] for m in sent[1:]] == [
            "What is one?", "One.", "What is two?", "Two.", "What is three?"
        ]
    finally:
        server.close()

    # Burr's tracking client wrote the app where Burr's UI looks for it.
    app_dir = tmp_path / PROJECT / "resume-me"
    steps = [json.loads(line) for line in (app_dir / "log.jsonl").read_text().splitlines()]
    ends = [s for s in steps if s.get("type") == "end_entry"]
    assert len(ends) == 3 * 4  # three turns of four actions
    assert (app_dir / "graph.json").exists()
