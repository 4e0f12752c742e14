"""The two ecosystem protocols, read by their own clients (npm packages run with Node): AG-UI's
``@ag-ui/client`` ``HttpAgent``, and the AI SDK's ``DefaultChatTransport`` with
``readUIMessageStream`` (what ``useChat`` runs). The server is the real one, answering through
the real SDK from the fake model server."""

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import API, PROJECT, ChatServer, start_server
from fake_openai import FakeUpstream

CLIENTS = Path(__file__).resolve().parent / "clients"
NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = [
    pytest.mark.e2e,  # chatbot servers and Node clients in subprocesses
    pytest.mark.skipif(
        (NODE is None or NPM is None) and os.environ.get("CI") != "true",
        reason="Node.js and npm are not installed",
    ),
]


@pytest.fixture(scope="module")
def clients() -> Path:
    """The clients' npm packages, installed from the lock file when missing."""
    if (
        not (CLIENTS / "node_modules" / "ai").is_dir()
        or not (CLIENTS / "node_modules" / "@ag-ui").is_dir()
    ):
        subprocess.run([NPM or "npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENTS, check=True)
    return CLIENTS


def node(script: str, *args: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Run a client script; its stdout's JSON lines."""
    result = subprocess.run(
        [NODE or "node", script, *args],
        cwd=CLIENTS,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def assistant_texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] == "assistant"]


# -- AG-UI -------------------------------------------------------------------------------------


def test_agui_http_agent_runs_two_turns_in_one_thread(
    clients: Path, server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="A state machine moves between states.", delay_ms=2)
    url = f"{server.url}{API}/ag-ui/{PROJECT}"
    [out] = node(
        "agui_run.mjs", url, app_id, "What is a state machine?", "Write a poem about rivers"
    )

    first, second = out["runs"]
    for run, mode in ((first, "answer_question"), (second, "generate_poem")):
        assert run["error"] is None and "thrown" not in run, run
        assert run["events"][0] == "RUN_STARTED" and run["events"][-1] == "RUN_FINISHED"
        assert run["steps"] == ["prompt", "check_safety", "decide_mode", mode]
        for kind in (
            "MESSAGES_SNAPSHOT",
            "STATE_SNAPSHOT",
            "STATE_DELTA",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "STEP_FINISHED",
        ):
            assert kind in run["events"], (kind, run["events"])
        assert run["result"]["result"]["mode"] == mode
        usage = run["result"]["usage"][0]
        assert usage["model"] == "answer-model" and usage["outputTokens"] == 6
    # What the agent assembled is what the server stored.
    stored = server.history(app_id)
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    assert [m["role"] for m in out["messages"]] == [m["role"] for m in stored]
    assert assistant_texts(out["messages"]) == [
        m["content"] for m in stored if m["role"] == "assistant"
    ]
    assert assistant_texts(out["messages"]) == ["A state machine moves between states."] * 2
    assert out["state"] == {
        "action": "generate_poem",
        "sequence_id": 7,
        "safe": True,
        "mode": "generate_poem",
    }


def test_agui_reasoning_comes_before_the_text_and_an_error_is_a_run_error(
    clients: Path, server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="Paris.", reasoning="France's capital is Paris.", delay_ms=2)
    url = f"{server.url}{API}/ag-ui/{PROJECT}"
    [out] = node("agui_run.mjs", url, app_id, "What is the capital of France?")
    events = out["runs"][0]["events"]
    assert events.index("REASONING_START") < events.index("REASONING_MESSAGE_CONTENT")
    assert events.index("REASONING_END") < events.index("TEXT_MESSAGE_START")
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["user", "reasoning", "assistant"]
    assert out["messages"][1]["content"] == "France's capital is Paris."
    assert out["runs"][0]["result"]["usage"][0]["reasoningTokens"] == 4

    upstream.control(fault="server_error", fault_count=1, fault_on="stream")
    [out] = node("agui_run.mjs", url, app_id, "And of Spain?")
    run = out["runs"][0]
    assert run["events"][-1] == "RUN_ERROR"
    assert run["error"]["code"] == "upstream_unavailable"
    assert server.history(app_id)[-1] == {
        **server.history(app_id)[-1],
        "role": "user",
        "content": "And of Spain?",
    }


def test_agui_bad_input_is_a_422_and_writes_nothing(server: ChatServer, app_id: str) -> None:
    url = f"{API}/ag-ui/{PROJECT}"
    good = {
        "threadId": app_id,
        "runId": "r",
        "messages": [{"id": "1", "role": "user", "content": "Hi"}],
    }
    cases = [
        ({**good, "threadId": "../etc"}, "threadId"),
        ({**good, "messages": []}, "user"),
        ({**good, "messages": [{"id": "1", "role": "assistant", "content": "Hi"}]}, "user"),
        ({**good, "messages": [{"id": "1", "role": "user", "content": "   "}]}, "blank"),
        ({"threadId": app_id, "messages": []}, "runId"),
    ]
    for body, word in cases:
        response = server.client.post(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert word in response.text, response.text
    assert server.history(app_id) == []


# -- the AI SDK's UI message stream ------------------------------------------------------------


def test_ai_sdk_transport_two_turns_with_data_parts_and_metadata(
    clients: Path, server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="One two three.", delay_ms=2)
    api = f"{server.url}{API}/ai-sdk/{PROJECT}"
    first, second = node(
        "ai_sdk_chat.mjs", api, app_id, "send", "What is Burr?", "Write code for a sum"
    )

    stored = server.history(app_id)
    assert [m["role"] for m in stored] == ["user", "assistant", "user", "assistant"]
    for turn, answer, mode in (
        (first, stored[1], "answer_question"),
        (second, stored[3], "generate_code"),
    ):
        assert turn["error"] is None
        assert turn["text"] == answer["content"] == "One two three."
        actions = [p["data"]["action"] for p in turn["parts"] if p["type"] == "data-burr-action"]
        assert actions == ["prompt", "check_safety", "decide_mode", mode]
        assert [p["data"] for p in turn["parts"] if p["type"] == "data-burr-mode"] == [
            {"mode": mode}
        ]
        assert [p["type"] for p in turn["parts"]].count("step-start") == 4
        metadata = turn["metadata"]
        assert metadata["mode"] == mode and metadata["model"] == "answer-model"
        assert metadata["usage"]["completion_tokens"] == 3 and metadata["ttft_ms"] > 0
        assert metadata["path"] == actions
    assert first["id"] != second["id"]


def test_ai_sdk_reasoning_regenerate_and_errors(
    clients: Path, server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="Paris.", reasoning="France's capital is Paris.", delay_ms=2)
    api = f"{server.url}{API}/ai-sdk/{PROJECT}"
    first, again = node("ai_sdk_chat.mjs", api, app_id, "regenerate", "Capital of France?")
    assert first["reasoning"] == again["reasoning"] == "France's capital is Paris."
    kinds = [p["type"] for p in first["parts"]]
    assert kinds.index("reasoning") < kinds.index("text")
    assert again["trigger"] == "regenerate-message" and again["text"] == "Paris."
    assert again["id"] != first["id"]
    stored = server.history(app_id)
    # The prompt asked again; the earlier answer stays in the stored history before the new one.
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
        ("user", "Capital of France?"),
        ("assistant", "Paris."),
    ]

    upstream.control(fault="auth", fault_count=1, fault_on="stream", reasoning=None)
    [failed] = node("ai_sdk_chat.mjs", api, app_id, "send", "Once more?")
    assert failed["error"] and "API key" in failed["error"]
    errors = [p["data"] for p in failed["parts"] if p["type"] == "data-burr-error"]
    assert errors and errors[0]["code"] == "upstream_auth"


def test_ai_sdk_resume_after_dropping_the_connection_completes_the_text(
    clients: Path, server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    words = " ".join(f"word{i}" for i in range(40))
    upstream.control(text=words, delay_ms=25)
    api = f"{server.url}{API}/ai-sdk/{PROJECT}"
    resumed, after_end = node(
        "ai_sdk_chat.mjs", api, app_id, "drop-and-resume", "What words do you know?", "3"
    )
    assert resumed["resumed"] is True
    assert resumed["seen"] and words.startswith(resumed["seen"]) and resumed["seen"] != words
    assert resumed["text"] == words
    assert after_end == {"trigger": "resume-after-end", "resumed": False}  # 204 once it ended
    assert server.history(app_id)[-1]["content"] == words


def test_ai_sdk_bad_bodies_are_422_and_resume_is_204_without_an_answer(
    server: ChatServer, app_id: str
) -> None:
    url = f"{API}/ai-sdk/{PROJECT}"
    user = {"id": "u", "role": "user", "parts": [{"type": "text", "text": "Hi"}]}
    cases = [
        ({"id": "bad id!", "messages": [user]}, "id"),
        ({"id": app_id, "messages": []}, "messages"),
        ({"id": app_id, "messages": [{**user, "role": "assistant"}]}, "user"),
        ({"id": app_id, "messages": [{**user, "parts": [{"type": "text", "text": " "}]}]}, "blank"),
        ({"id": app_id, "messages": [user], "trigger": "delete-everything"}, "trigger"),
    ]
    for body, word in cases:
        response = server.client.post(url, json=body)
        assert response.status_code == 422, (body, response.text)
        assert word in response.text, response.text
    assert server.history(app_id) == []
    assert server.client.get(f"{url}/{app_id}/stream").status_code == 204


@pytest.fixture(scope="module")
def chatty_server(fake_upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory):
    """A server that sends a keepalive comment after 50 ms without events."""
    server = start_server(
        "cli",
        tmp_path_factory.mktemp("chatty"),
        fake_upstream,
        "chatty",
        BURR_CHATBOT_KEEPALIVE_S="0.05",
    )
    yield server
    server.close()


def test_both_clients_read_through_keepalive_comments(
    clients: Path, chatty_server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(
        text="Slow but sure.", reasoning="Hmm, let me see.", delay_ms=150, first_token_delay_ms=400
    )
    with chatty_server.client.stream(
        "POST",
        f"{API}/ag-ui/{PROJECT}",
        headers={"Accept": "text/event-stream"},
        json={
            "threadId": app_id,
            "runId": "r0",
            "messages": [{"id": "1", "role": "user", "content": "What is slow?"}],
        },
    ) as response:
        raw = b"".join(response.iter_raw())
    assert raw.count(b": keepalive\n\n") >= 3  # the pauses are long enough for several

    agui_url = f"{chatty_server.url}{API}/ag-ui/{PROJECT}"
    [out] = node("agui_run.mjs", agui_url, app_id + "-agui", "What is slow?")
    assert out["runs"][0]["error"] is None and out["runs"][0]["events"][-1] == "RUN_FINISHED"
    assert assistant_texts(out["messages"]) == ["Slow but sure."]
    api = f"{chatty_server.url}{API}/ai-sdk/{PROJECT}"
    [turn] = node("ai_sdk_chat.mjs", api, app_id + "-ai", "send", "What is slow?")
    assert turn["error"] is None and turn["text"] == "Slow but sure."
    assert turn["reasoning"] == "Hmm, let me see."


@pytest.mark.parametrize("protocol", ["ag-ui", "ai-sdk"])
def test_stop_and_the_one_answer_rule_are_the_same_on_every_endpoint(
    server: ChatServer, upstream: FakeUpstream, app_id: str, protocol: str
) -> None:
    upstream.control(text=" ".join(f"w{i}" for i in range(200)), delay_ms=20)
    if protocol == "ag-ui":
        url, body = (
            f"{API}/ag-ui/{PROJECT}",
            {
                "threadId": app_id,
                "runId": "r",
                "messages": [{"id": "1", "role": "user", "content": "What now?"}],
            },
        )
    else:
        url, body = (
            f"{API}/ai-sdk/{PROJECT}",
            {
                "id": app_id,
                "messages": [
                    {"id": "u", "role": "user", "parts": [{"type": "text", "text": "What now?"}]}
                ],
            },
        )
    with server.client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        for line in lines:  # until the answer's text streams
            if "TEXT_MESSAGE_CONTENT" in line or '"text-delta"' in line:
                break
        # One answer at a time, whichever endpoint asks.
        busy = server.client.post(f"{API}/response/{PROJECT}/{app_id}", json={"prompt": "And?"})
        assert busy.status_code == 409
        assert server.client.post(url, json=body).status_code == 409
        assert server.client.post(f"{API}/stop/{PROJECT}/{app_id}").json() == {"stopped": True}
        rest = [
            json.loads(line[6:]) if line[6:] != "[DONE]" else "[DONE]"
            for line in lines
            if line.startswith("data: ")
        ]
    if protocol == "ag-ui":
        assert rest[-1]["type"] == "RUN_ERROR" and rest[-1]["code"] == "stopped"
        assert [e["type"] for e in rest[-3:]] == ["TEXT_MESSAGE_END", "STEP_FINISHED", "RUN_ERROR"]
    else:
        assert rest[-1] == "[DONE]" and rest[-2]["type"] == "abort"
        assert rest[-3] == {
            "type": "data-burr-error",
            "data": {"code": "stopped", "message": "The answer was stopped.", "retryable": True},
        }
    last = server.history(app_id)[-1]
    assert last["role"] == "assistant" and last["interrupted"] and last["content"].startswith("w0")
