"""The SSE transcript and the other endpoints, as a client sees them over HTTP."""

import codecs
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import API, PROJECT, ChatServer
from fake_openai import FakeUpstream
from httpx_sse import connect_sse

pytestmark = pytest.mark.e2e  # the chatbot server in a subprocess (and Node)


def test_transcript_keeps_the_posts_wire_format_and_adds_typed_events(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="Hello there, streaming world!")
    with server.client.stream(
        "POST",
        f"{API}/response/{PROJECT}/{app_id}",
        json={"prompt": "What is Burr?"},
        headers={"Accept": "text/event-stream"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers.get("cache-control") == "no-cache"
        raw = response.read().decode()

    blocks = [block for block in raw.split("\n\n") if block.strip()]
    # Every event is one `data: <json>` block whose JSON has exactly `type` and `value`.
    events = []
    for block in blocks:
        lines = block.split("\n")
        assert [line.split(":")[0] for line in lines] == ["data", "id"], block
        data = [line for line in lines if line.startswith("data: ")]
        assert len(data) == 1, block
        event = json.loads(data[0][len("data: ") :])
        assert set(event) == {"type", "value"}
        events.append(event)

    types = [e["type"] for e in events]
    assert types[0] == "chat_history" and events[0]["value"] == []
    assert types[-1] == "message"
    assert types.count("message") == 1 and "error" not in types
    assert types.index("mode") < types.index("delta")
    sequence_ids = [e["value"]["sequence_id"] for e in events if e["type"] == "action"]
    assert sequence_ids == sorted(sequence_ids) and len(set(sequence_ids)) == 4
    message = events[-1]["value"]
    # Tokens that arrive together, or while the client is busy, may be sent as one; none is lost.
    assert 1 <= types.count("delta") <= message["deltas"] <= 4
    text = "".join(e["value"] for e in events if e["type"] == "delta")
    assert text == message["item"]["content"] == "Hello there, streaming world!"
    assert message["ttft_ms"] is not None and message["ttft_ms"] > 0
    assert message["sequence_id"] == sequence_ids[-1]

    # The next turn's chat_history is the history so far, as the history endpoint has it.
    history = server.history(app_id)
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "What is Burr?"),
        ("assistant", "Hello there, streaming world!"),
    ]
    second = server.turn(app_id, "What else?")
    assert second[0] == {"type": "chat_history", "value": history}


def test_history_after_sends_only_the_messages_the_client_lacks(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    upstream.control(text="An answer.")
    for prompt in ("One?", "Two?"):
        server.turn(app_id, prompt)
    history = server.history(app_id)
    assert len(history) == 4

    def first_event(after: str) -> dict:
        url = f"{API}/response/{PROJECT}/{app_id}?history_after={after}"
        with connect_sse(
            server.client, "POST", url, json={"prompt": f"Three after {after}?"}
        ) as source:
            events = [json.loads(sse.data) for sse in source.iter_sse()]
        assert events[-1]["type"] == "message"
        return events[0]

    assert first_event("2") == {"type": "chat_history", "value": history[2:], "start": 2}
    history = server.history(app_id)
    # More than the server has: nothing, from the end (the client drops what it has beyond).
    assert first_event("99") == {"type": "chat_history", "value": [], "start": len(history)}
    assert first_event("0") == {"type": "chat_history", "value": server.history(app_id)[:-2]}

    before = server.history(app_id)
    for bad in ("-1", "two", "1.5"):
        response = server.client.post(
            f"{API}/response/{PROJECT}/{app_id}?history_after={bad}", json={"prompt": "Bad?"}
        )
        assert response.status_code == 422, bad
    assert server.history(app_id) == before  # nothing written


def test_create_then_list_conversations(server: ChatServer, app_id: str) -> None:
    project = "listing_" + app_id[-9:]
    assert server.client.post(f"{API}/create/{project}/{app_id}").json() == app_id
    assert server.history(app_id, project) == []
    server.turn(app_id, "What is listing?", project=project)
    server.turn(app_id + "-b", "hello second", project=project)
    listed = server.client.get(f"{API}/conversations/{project}").json()
    assert [c["app_id"] for c in listed] == [app_id + "-b", app_id]
    assert listed[1]["title"] == "What is listing?"


def test_model_and_graph_endpoints(server: ChatServer) -> None:
    model = server.client.get(f"{API}/model").json()
    assert model["offline"] is False
    assert (model["router_model"], model["answer_model"]) == ("router-model", "answer-model")
    assert model["base_url"].startswith("http://127.0.0.1:")
    assert "sk-test" not in json.dumps(model)

    graph = server.client.get(f"{API}/graph").json()
    assert graph["entrypoint"] == "prompt"
    assert set(graph["streaming_actions"]) == {
        "answer_question",
        "generate_poem",
        "generate_code",
        "prompt_for_more",
        "unsafe_response",
    }
    edges = {(t["from"], t["to"]) for t in graph["transitions"]}
    assert ("check_safety", "unsafe_response") in edges
    assert ("generate_code", "prompt") in edges


def test_openapi_schema_describes_every_event(server: ChatServer) -> None:
    served = server.client.get("/openapi.json").json()["components"]["schemas"]
    # Burr's own example also has a ChatItem, so FastAPI may qualify the names with the module.
    names = {name.split("__")[-1] for name in served}
    assert {
        "ChatHistoryEvent",
        "ActionEvent",
        "ModeEvent",
        "DeltaEvent",
        "MessageEvent",
        "ErrorEvent",
        "ErrorValue",
        "MessageValue",
        "ChatItem",
    } <= names

    # The schema the page's types are generated from (ui_bundle/openapi.json).
    printed = subprocess.run(
        [sys.executable, "-m", "burr_streaming_chatbot", "openapi"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    schema = json.loads(printed.stdout)
    response = schema["paths"][f"{API}/response/{{project_id}}/{{app_id}}"]["post"]["responses"]
    stream = response["200"]["content"]["text/event-stream"]
    assert stream["itemSchema"] == stream["schema"]["items"]  # one block; the stream, an array
    block = stream["itemSchema"]["$ref"].rsplit("/", 1)[-1]
    item = schema["components"]["schemas"][block]
    assert item["required"] == ["data"]  # `id` only for clients that accept text/event-stream
    assert "text/event-stream" in item["properties"]["id"]["description"]
    mapping = item["properties"]["data"]["contentSchema"]["discriminator"]["mapping"]
    assert set(mapping) == {
        "chat_history",
        "action",
        "mode",
        "reasoning",
        "delta",
        "message",
        "error",
        "tool_call_start",
        "tool_call_args",
        "tool_call",
        "tool_approval_request",
        "tool_result",
        "tool_error",
        "tool_denied",
    }
    # The two ecosystem protocols: their bodies and their events.
    schemas = schema["components"]["schemas"]
    for path, body, events in (
        (f"{API}/ag-ui/{{project_id}}", "RunAgentInput", "AgUiEventBlock"),
        (f"{API}/ai-sdk/{{project_id}}", "ChatRequest", "UIMessageChunkBlock"),
    ):
        post = schema["paths"][path]["post"]
        ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.removesuffix("-Input").endswith(body)  # (pydantic names the request half)
        ref = post["responses"]["200"]["content"]["text/event-stream"]["itemSchema"]["$ref"]
        assert ref.endswith(events) and "422" in post["responses"]
    agui_types = set(
        schemas["AgUiEventBlock"]["properties"]["data"]["contentSchema"]["discriminator"]["mapping"]
    )
    assert {
        "RUN_STARTED",
        "STEP_STARTED",
        "STATE_DELTA",
        "REASONING_MESSAGE_CONTENT",
        "TEXT_MESSAGE_CONTENT",
        "RUN_FINISHED",
        "RUN_ERROR",
    } <= agui_types
    chunk_types = set(
        schemas["UIMessageChunkBlock"]["properties"]["data"]["contentSchema"]["discriminator"][
            "mapping"
        ]
    )
    assert {
        "start",
        "start-step",
        "data-burr-action",
        "data-burr-mode",
        "reasoning-delta",
        "text-delta",
        "finish",
        "error",
        "abort",
    } <= chunk_types
    resume = schema["paths"][f"{API}/ai-sdk/{{project_id}}/{{app_id}}/stream"]["get"]["responses"]
    assert "204" in resume
    committed = Path(__file__).resolve().parent.parent / "ui_bundle" / "openapi.json"
    assert json.loads(committed.read_text()) == schema, (
        "ui_bundle/openapi.json is stale: run `python -m burr_streaming_chatbot openapi "
        "> ui_bundle/openapi.json` and `npm run gen:types` in ui_bundle/"
    )


def test_unknown_paths_under_the_prefix_are_json_404(server: ChatServer) -> None:
    response = server.client.get(f"{API}/no/such/thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"


def parse_like_the_post(reads: list[bytes]) -> list[dict]:
    """Burr's streaming example page (the blog post's client), exactly: each network read is
    decoded (streaming UTF-8), split on "data: ", and every piece but the first parsed as
    JSON; a piece that does not parse throws."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    events = []
    for read in reads:
        message = decoder.decode(read)
        events.extend(json.loads(piece) for piece in message.split("data: ")[1:])
    return events


def test_the_posts_own_client_reads_every_turn_and_reattach(
    server: ChatServer, upstream: FakeUpstream, app_id: str
) -> None:
    """Without `Accept: text/event-stream` the stream is what Burr's built-in page parses, at
    every read boundary the server produces: bare `data: <json>` blocks, and no `data: ` inside
    the JSON, even when the answer says it."""
    answer = 'He said "data: 42" — déjà vu, data: again 🌍'
    upstream.control(text=answer, delay_ms=5)
    for turn in range(2):
        with server.client.stream(
            "POST", f"{API}/response/{PROJECT}/{app_id}", json={"prompt": f"What is {turn}?"}
        ) as response:
            reads = list(response.iter_raw())
        assert len(reads) > 3  # several reads: events arrive as they are written
        events = parse_like_the_post(reads)
        assert [e["type"] for e in events][:2] == ["chat_history", "action"]
        assert events[-1]["type"] == "message"
        assert "".join(e["value"] for e in events if e["type"] == "delta") == answer
        assert all(block.startswith(b"data: ") for block in b"".join(reads).split(b"\n\n") if block)
    # A late reattach without the header: the same form.
    with server.client.stream("GET", f"{API}/stream/{PROJECT}/{app_id}") as response:
        replay = parse_like_the_post(list(response.iter_raw()))
    assert "".join(e["value"] for e in replay if e["type"] == "delta") == answer
    assert server.history(app_id)[-1]["content"] == answer
