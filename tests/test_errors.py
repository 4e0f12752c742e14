"""Upstream faults end the stream with an error event; nothing the user sent is lost."""

import json
import time
from pathlib import Path

import pytest
from conftest import PROJECT, ChatServer, free_port, start_server
from fake_openai import FakeUpstream

pytestmark = pytest.mark.e2e  # the chatbot server runs in a subprocess


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
    assert [(m["role"], m["content"]) for m in server.history(app_id)] == [
        ("user", "What is failing?")
    ]

    # Retrying the same prompt answers it without adding the user's message twice.
    upstream.control(text="Now it works.")
    events = server.turn(app_id, "What is failing?")
    assert events[-1]["type"] == "message"
    assert [(m["role"], m["content"]) for m in server.history(app_id)] == [
        ("user", "What is failing?"),
        ("assistant", "Now it works."),
    ]


def test_a_new_prompt_after_a_failed_turn_starts_a_new_turn(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(fault="server_error", fault_count=1, fault_on="route")
    assert server.turn(app_id, "What is first?")[-1]["type"] == "error"
    upstream.control(text="Second answer.")
    events = server.turn(app_id, "What is second?")
    actions = [e["value"]["action"] for e in events if e["type"] == "action"]
    assert actions[0] == "prompt"  # not a resumed decide_mode of the failed turn
    assert [(m["role"], m["content"]) for m in server.history(app_id)] == [
        ("user", "What is first?"),
        ("user", "What is second?"),
        ("assistant", "Second answer."),
    ]
    assert upstream.stats()["request_bodies"][-1]["messages"][-1]["content"] == "What is second?"


def test_drop_mid_stream_keeps_the_partial_answer_marked_interrupted(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(
        text="one two three four five six",
        fault="drop",
        drop_after=3,
        fault_count=1,
        fault_on="stream",
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


def test_timeout_before_the_first_token(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(fault="timeout", hang_s=10, fault_count=1, fault_on="stream")
    began = time.monotonic()
    events = server.turn(app_id, "What is slow?")
    assert events[-1]["value"]["code"] == "upstream_timeout"
    assert time.monotonic() - began < 8  # the server's timeout (2 s here), not the hang
    assert [m["role"] for m in server.history(app_id)] == ["user"]


def test_malformed_chunk_mid_stream(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(
        text="alpha beta gamma delta", fault="malformed", fault_count=1, fault_on="stream"
    )
    events = server.turn(app_id, "What is malformed?")
    assert events[-1]["type"] == "error"
    assert events[-1]["value"]["code"] == "upstream_bad_response"
    # The fake sends two tokens before the bad chunk: they are streamed, kept, marked interrupted.
    deltas = "".join(e["value"] for e in events if e["type"] == "delta")
    assert deltas.split() == ["alpha", "beta"]
    history = server.history(app_id)
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "What is malformed?"),
        ("assistant", deltas),
    ]
    assert history[1]["interrupted"] is True


def test_server_error_on_the_answer_stream(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(fault="server_error", fault_count=1, fault_on="stream")
    events = server.turn(app_id, "What is broken?")
    assert events[-1]["value"]["code"] == "upstream_unavailable"
    assert [m["role"] for m in server.history(app_id)] == ["user"]


def test_failures_are_recorded_by_burr_tracking(
    server: ChatServer, upstream: FakeUpstream, app_id: str, session_storage: Path
) -> None:
    upstream.control(fault="auth", fault_count=1, fault_on="route")
    server.turn(app_id, "What is tracked?")
    log = session_storage / PROJECT / app_id / "log.jsonl"
    ends = [json.loads(line) for line in log.read_text().splitlines() if '"end_entry"' in line]
    failed = [e for e in ends if e.get("exception")]
    assert [e["action"] for e in failed] == ["decide_mode"]
    # Burr records the traceback; its last line is the auth failure as the chatbot raised it.
    last_line = failed[0]["exception"].strip().splitlines()[-1]
    assert last_line.startswith("burr_streaming_chatbot.llm.UpstreamError: "), last_line
    assert "API key" in last_line and "sk-test" not in failed[0]["exception"], last_line


def test_connection_refused_then_the_model_comes_back(tmp_path: Path) -> None:
    port = free_port()
    server = start_server(
        "cli",
        tmp_path,
        None,
        "refused",
        OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
        OPENAI_API_KEY="sk-x",
    )
    try:
        events = server.turn("refused", "What is down?")
        assert events[-1]["value"] == {
            "code": "upstream_unavailable",
            "message": "The connection to the model server failed.",
            "retryable": True,
        }
        with FakeUpstream(port=port, text="Back up."):
            events = server.turn("refused", "What is down?")
        assert events[-1]["type"] == "message"
        assert [(m["role"], m["content"]) for m in server.history("refused")] == [
            ("user", "What is down?"),
            ("assistant", "Back up."),
        ]
    finally:
        server.close()
