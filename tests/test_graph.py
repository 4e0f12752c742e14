"""Every branch of the state machine, through a real server and the real openai SDK."""

import json
from pathlib import Path

import pytest
from conftest import PROJECT, ChatServer
from fake_openai import FakeUpstream

pytestmark = pytest.mark.e2e  # the chatbot server in a subprocess

BRANCHES = [
    ("Write a poem about rivers", "generate_poem", "text"),
    ("Write code for a function that adds numbers", "generate_code", "code"),
    ("What is a state machine?", "answer_question", "text"),
]


@pytest.mark.parametrize(("prompt", "mode", "item_type"), BRANCHES)
def test_llm_branches_stream_the_answer_models_reply(
    server: ChatServer, upstream: FakeUpstream, app_id: str, prompt: str, mode: str, item_type: str
) -> None:
    upstream.control(text=f"Answer for {mode} in several tokens.", delay_ms=15)
    events = server.turn(app_id, prompt)

    actions = [e["value"]["action"] for e in events if e["type"] == "action"]
    assert actions == ["prompt", "check_safety", "decide_mode", mode]
    assert [e["value"] for e in events if e["type"] == "mode"] == [mode]
    deltas = [e["value"] for e in events if e["type"] == "delta"]
    assert "".join(deltas) == f"Answer for {mode} in several tokens."
    assert len(deltas) >= 3  # tokens 15 ms apart go out one by one
    message = events[-1]["value"]
    assert events[-1]["type"] == "message"
    assert message["mode"] == mode
    assert message["model"] == "answer-model"
    assert message["item"] == {
        "content": f"Answer for {mode} in several tokens.",
        "type": item_type,
        "role": "assistant",
        "mode": mode,
        "model": "answer-model",
        "interrupted": False,
        "reasoning": None,
    }
    assert message["path"] == actions
    usage = message["usage"]
    assert usage["completion_tokens"] == len(f"Answer for {mode} in several tokens.".split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["reasoning_tokens"] is None

    # One routing call (router model, not streamed), then one streamed call (answer model)
    # that carries the mode's instructions and the user's message.
    route, answer = upstream.stats()["request_bodies"][-2:]
    assert route["model"] == "router-model" and not route.get("stream")
    assert answer["model"] == "answer-model" and answer["stream"] is True
    assert answer["messages"][0]["role"] == "system"
    assert answer["messages"][-1] == {"role": "user", "content": prompt}


def test_unknown_mode_asks_for_more_without_a_second_llm_call(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    events = server.turn(app_id, "hello there")
    actions = [e["value"]["action"] for e in events if e["type"] == "action"]
    assert actions == ["prompt", "check_safety", "decide_mode", "prompt_for_more"]
    assert events[-1]["value"]["item"]["content"].startswith("None of the response modes")
    assert len([e for e in events if e["type"] == "delta"]) > 3
    stats = upstream.stats()
    assert (stats["total_requests"], stats["streaming_requests"]) == (1, 0)


def test_unsafe_prompt_is_refused_without_any_llm_call(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    events = server.turn(app_id, "tell me something unsafe")
    actions = [e["value"]["action"] for e in events if e["type"] == "action"]
    assert actions == ["prompt", "check_safety", "unsafe_response"]
    assert not [e for e in events if e["type"] == "mode"]
    assert events[-1]["value"]["item"]["content"] == "I am afraid I can't respond to that..."
    assert upstream.stats()["total_requests"] == 0


def test_the_api_key_and_history_reach_the_model(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="First answer.")
    server.turn(app_id, "What is one?")
    upstream.control(text="Second answer.")
    server.turn(app_id, "What is two?")
    answer = upstream.stats()["request_bodies"][-1]
    assert [m["content"] for m in answer["messages"][1:]] == [
        "What is one?",
        "First answer.",
        "What is two?",
    ]
    assert upstream.stats()["last_authorization"] == "Bearer sk-test-secret-key"


def test_the_answer_model_gets_the_most_recent_40_messages(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="ok")
    for turn in range(21):
        server.turn(app_id, f"What is {turn}?")
    sent = upstream.stats()["request_bodies"][-1]["messages"]
    assert sent[0]["role"] == "system" and len(sent) == 1 + 40
    assert sent[1]["content"] == "ok" and sent[-1]["content"] == "What is 20?"
    assert len(server.history(app_id)) == 42  # everything is kept; only what is sent is capped


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_a_reasoning_models_thinking_streams_before_the_answer_and_is_kept(
    server: ChatServer, upstream: FakeUpstream, app_id: str, field: str, session_storage: Path
) -> None:
    thinking = "The user asks about state machines. I should explain briefly."
    upstream.control(
        text="A graph of states.", reasoning=thinking, reasoning_field=field, delay_ms=5
    )
    events = server.turn(app_id, "What is a state machine?")

    kinds = [e["type"] for e in events]
    assert "reasoning" in kinds and "delta" in kinds
    assert max(i for i, k in enumerate(kinds) if k == "reasoning") < kinds.index("delta")
    assert "".join(e["value"] for e in events if e["type"] == "reasoning") == thinking
    assert "".join(e["value"] for e in events if e["type"] == "delta") == "A graph of states."
    message = events[-1]["value"]
    assert message["item"]["reasoning"] == thinking
    assert message["usage"]["reasoning_tokens"] == len(thinking.split())
    # Burr's tracker records the answering step's usage (and the thinking, with the answer).
    log = session_storage / PROJECT / app_id / "log.jsonl"
    ends = [json.loads(line) for line in log.read_text().splitlines() if '"end_entry"' in line]
    answered = [e for e in ends if e["action"] == "answer_question"]
    assert answered[-1]["result"]["usage"] == message["usage"]
    assert answered[-1]["result"]["response"]["reasoning"] == thinking
    # Kept with the answer: the history and the next turn's chat_history carry it.
    assert server.history(app_id)[-1]["reasoning"] == thinking
    upstream.control(text="Again.", reasoning=None)
    second = server.turn(app_id, "And a graph?")
    assert second[0]["value"][-1]["reasoning"] == thinking
    assert not any(e["type"] == "reasoning" for e in second)
