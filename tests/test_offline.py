"""With no key and no base URL, the offline demo model answers and says what it is."""

from pathlib import Path

import pytest
from conftest import API, start_server

pytestmark = pytest.mark.e2e  # chatbot servers in subprocesses


def test_offline_model_answers_every_branch_and_says_so(tmp_path: Path) -> None:
    server = start_server("cli", tmp_path, None, "offline")
    try:
        model = server.client.get(f"{API}/model").json()
        assert model["offline"] is True
        assert "OPENAI_API_KEY" in model["help"] and "OPENAI_BASE_URL" in model["help"]
        for prompt, last_action in [
            ("write a poem", "generate_poem"),
            ("write some python code", "generate_code"),
            ("what is burr?", "answer_question"),
            ("hello", "prompt_for_more"),
        ]:
            events = server.turn("offline", prompt)
            actions = [e["value"]["action"] for e in events if e["type"] == "action"]
            assert actions[-1] == last_action
            assert events[-1]["type"] == "message"
            if last_action != "prompt_for_more":
                assert "offline demo model" in events[-1]["value"]["item"]["content"]
                assert len([e for e in events if e["type"] == "delta"]) > 20
    finally:
        server.close()


def test_cli_offline_flag_wins_over_a_configured_model(tmp_path: Path, upstream) -> None:
    server = start_server("cli", tmp_path, upstream, "offline-flag")
    server.stop()
    server.command.append("--offline")
    server.start()
    try:
        assert server.client.get(f"{API}/model").json()["offline"] is True
        events = server.turn("flag", "write a poem")
        assert "offline demo model" in events[-1]["value"]["item"]["content"]
        assert upstream.stats()["total_requests"] == 0
    finally:
        server.close()
