"""``GET /export``: a conversation as a download, in JSON (the wire's ChatItem, with each answer's
token usage) and in Markdown, with its thinking, tool calls and results; on both engines."""

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import API, PROJECT, ChatServer, start_server
from fake_openai import FakeUpstream


def export(server: ChatServer, app_id: str, fmt: str, project: str = PROJECT) -> Any:
    return server.client.get(f"{API}/export/{project}/{app_id}", params={"format": fmt})


def usage_of_turn(events: list[dict[str, Any]]) -> Any:
    return [e for e in events if e["type"] == "message"][-1]["value"]["usage"]


@pytest.mark.e2e
def test_export_has_every_message_with_thinking_tools_and_usage(
    tmp_path: Path, upstream: FakeUpstream, engine: dict[str, str]
) -> None:
    server = start_server("burr", tmp_path, upstream, "export", **engine)
    try:
        upstream.control(
            route="answer_question",
            tool_calls=[{"name": "calculator", "arguments": {"expression": "6*7"}}],
            text="It is 42.",
        )
        first = server.turn("exported", "What is 6*7?")
        upstream.reset()
        upstream.control(
            route="answer_question", reasoning="Think of Burr.", text="State machines."
        )
        second = server.turn("exported", "What is ```Burr```?")
        history = server.history("exported")
        roles = [m["role"] for m in history]
        assert "tool" in roles and roles[-1] == "assistant", roles

        response = export(server, "exported", "json")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["content-disposition"] == 'attachment; filename="exported.json"'
        exported = response.json()
        assert exported["app_id"] == "exported" and exported["project_id"] == PROJECT
        assert exported["title"] == "What is 6*7?"
        messages = exported["messages"]
        # The history as GET /history has it, each message with its usage (answers' only).
        assert [{k: v for k, v in m.items() if k != "usage"} for m in messages] == history
        answers = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        assert messages[answers[-1]]["usage"] == usage_of_turn(second) is not None
        assert messages[answers[-1]]["reasoning"] == "Think of Burr."
        assert usage_of_turn(first) in [messages[i]["usage"] for i in answers[:-1]]
        assert all(m["usage"] is None for m in messages if m["role"] != "assistant")

        page = export(server, "exported", "markdown")
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/markdown")
        assert page.headers["content-disposition"] == 'attachment; filename="exported.md"'
        text = page.text
        assert text.startswith("# What is 6*7?\n")
        assert text.count("## You") == 2 and "What is ```Burr```?" in text
        assert "**Tool call** `calculator`" in text and '"6*7"' in text
        assert "**Tool result** `calculator`" in text and "42" in text
        assert "> Think of Burr." in text and "State machines." in text
        total = usage_of_turn(second)["total_tokens"]
        assert f"Usage: {total} tokens" in text
        assert "Model: answer-model" in text

        assert export(server, "exported", "markdown").text == text  # (reading writes nothing)
    finally:
        server.close()


@pytest.mark.e2e
def test_bad_exports_get_4xx_and_write_nothing(tmp_path: Path) -> None:
    server = start_server("burr", tmp_path, None, "export-bad")
    try:
        server.turn("there", "What is Burr?")
        before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
        for app_id, fmt, project, status in [
            ("there", "pdf", PROJECT, 422),
            ("there", "", PROJECT, 422),
            ("bad.id", "json", PROJECT, 422),
            ("nobody-here", "json", PROJECT, 404),
            ("nobody-here", "markdown", PROJECT, 404),
            ("there", "json", "other_project", 404),
        ]:
            response = export(server, app_id, fmt, project)
            assert response.status_code == status, (app_id, fmt, response.text)
            assert "detail" in response.json()
        assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
        assert not (tmp_path / "other_project").exists()
        assert json.loads(export(server, "there", "json").text)["messages"][0]["role"] == "user"
    finally:
        server.close()
