"""Upstream faults end the stream with an error event; nothing the user sent is lost."""

import pytest

from conftest import ChatServer
from fake_openai import FakeUpstream


@pytest.mark.parametrize(
    ("fault", "code", "retryable"),
    [
        ("auth", "upstream_auth", False),
        ("rate_limit", "upstream_rate_limit", True),
        ("server_error", "upstream_unavailable", True),
        ("bad_request", "upstream_bad_request", False),
    ],
)
def test_fault_before_any_text_keeps_the_prompt_and_the_next_turn_works(
    server: ChatServer, upstream: FakeUpstream, app_id: str, fault: str, code: str, retryable: bool
) -> None:
    upstream.control(fault=fault, fault_count=1, fault_on="route")
    events = server.turn(app_id, "What is failing?")
    assert events[-1] == {
        "type": "error",
        "value": {"code": code, "message": events[-1]["value"]["message"], "retryable": retryable},
    }
    assert "sk-test" not in events[-1]["value"]["message"]
    assert [e["type"] for e in events].count("error") == 1
    assert [(m["role"], m["content"]) for m in server.history(app_id)] == [("user", "What is failing?")]

    # Retrying the same prompt answers it without adding the user's message twice.
    upstream.control(text="Now it works.")
    events = server.turn(app_id, "What is failing?")
    assert events[-1]["type"] == "message"
    assert [(m["role"], m["content"]) for m in server.history(app_id)] == [
        ("user", "What is failing?"),
        ("assistant", "Now it works."),
    ]


def test_drop_mid_stream_keeps_the_partial_answer_marked_interrupted(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(
        text="one two three four five six", fault="drop", drop_after=3, fault_count=1, fault_on="stream"
    )
    events = server.turn(app_id, "What is dropping?")
    deltas = "".join(e["value"] for e in events if e["type"] == "delta")
    assert deltas.split() == ["one", "two", "three"]
    assert events[-1]["type"] == "error"
    assert events[-1]["value"]["retryable"] is True
    history = server.history(app_id)
    assert history[-1]["content"] == deltas and history[-1]["interrupted"] is True
    assert history[0]["content"] == "What is dropping?"

    upstream.control(text="Whole answer.")
    assert server.turn(app_id, "What now?")[-1]["type"] == "message"
