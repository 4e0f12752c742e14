"""The encoders' fast paths write exactly what the protocols' own models write."""

import json

from ag_ui.core import RunAgentInput
from ag_ui.encoder import EventEncoder
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from burr_streaming_chatbot.encoders import typed
from burr_streaming_chatbot.encoders.agui import AgUiEvent, AgUiRun
from burr_streaming_chatbot.encoders.ai_sdk import DeltaChunk, UIMessageChunk, UIMessageWriter
from burr_streaming_chatbot.wire import TurnEvent

TEXTS = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    [
        '"quoted" \\ back',
        "\u2028\u2029 line separators",
        "\x00\x01\x1f\x7f controls",
        "data: x",
        "🌍 déjà",
    ]
)


def turn_events(thought: str, text: str, mode: str, history: list[dict]) -> list:
    """A turn's events as a turn records them."""

    def encoded(value: dict) -> TurnEvent:
        return TurnEvent(
            value["type"], json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        )

    actions = ["prompt", "check_safety", "decide_mode", "answer_question"]
    events: list = [encoded({"type": "chat_history", "value": history})]
    for n, action in enumerate(actions):
        events.append(encoded({"type": "action", "value": {"action": action, "sequence_id": n}}))
        if action == "decide_mode":
            events.append(encoded({"type": "mode", "value": mode}))
    if thought:
        events += [
            encoded({"type": "reasoning", "value": thought}),
            encoded({"type": "reasoning", "value": "."}),
        ]
    events += [TurnEvent("delta", text or "x"), TurnEvent("delta", "!")]
    item = {
        "content": (text or "x") + "!",
        "type": "text",
        "role": "assistant",
        "mode": mode,
        "model": "m",
        "interrupted": False,
        "reasoning": thought or None,
    }
    events.append(
        encoded(
            {
                "type": "message",
                "value": {
                    "item": item,
                    "mode": mode,
                    "model": "m",
                    "ttft_ms": 1.5,
                    "deltas": 2,
                    "sequence_id": 3,
                    "path": actions,
                    "usage": {
                        "prompt_tokens": 1,
                        "completion_tokens": 2,
                        "total_tokens": 3,
                        "reasoning_tokens": None,
                    },
                },
            }
        )
    )
    return events


def blocks(raw: bytes) -> list[str]:
    return [block for block in raw.decode().split("\n\n") if block]


AGUI_EVENT = TypeAdapter(AgUiEvent)
CHUNK = TypeAdapter(UIMessageChunk)
MODES = st.sampled_from(["answer_question", "generate_code", "unknown"])
HISTORIES = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": TEXTS}),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(TEXTS, TEXTS, MODES, HISTORIES)
def test_agui_blocks_are_what_the_packages_models_and_encoder_write(
    thought: str, text: str, mode: str, history: list[dict]
) -> None:
    """Every block this server writes by hand (deltas, steps, state deltas, reasoning) is, byte
    for byte, the official encoder's output for the event it parses as."""
    run = AgUiRun(RunAgentInput(thread_id="t", run_id="r", messages=[]), "prompt")
    raw = run.started() + run.encode(turn_events(thought, text, mode, history))
    official = EventEncoder()
    for block in blocks(raw):
        event = AGUI_EVENT.validate_json(block.removeprefix("data: "))
        assert official.encode(event) == block + "\n\n"


@settings(max_examples=200, deadline=None)
@given(TEXTS, TEXTS, MODES, HISTORIES)
def test_ai_sdk_chunks_are_what_their_models_write(
    thought: str, text: str, mode: str, history: list[dict]
) -> None:
    raw = UIMessageWriter("tok").encode(turn_events(thought, text, mode, history))
    *chunks, done = blocks(raw)
    assert done == "data: [DONE]"
    for block in chunks:
        model = CHUNK.validate_json(block.removeprefix("data: "))
        assert model.encoded() == (block + "\n\n").encode()


@settings(max_examples=300)
@given(TEXTS)
def test_ai_sdk_text_delta_is_its_models_encoding(text: str) -> None:
    assert (
        UIMessageWriter.text_delta(text)
        == DeltaChunk(type="text-delta", id="text", delta=text).encoded()
    )


def test_typed_joins_consecutive_deltas_and_parses_the_rest() -> None:
    a, b, c = (TurnEvent("delta", text) for text in "abc")
    batch = [a, b, TurnEvent("mode", '{"type":"mode","value":"unknown"}'), c]
    assert list(typed(batch)) == [
        ("delta", "ab"),
        ("mode", {"type": "mode", "value": "unknown"}),
        ("delta", "c"),
    ]


def test_an_ai_sdk_turn_closes_every_part_before_it_finishes() -> None:
    writer = UIMessageWriter("tok")
    history = TurnEvent("chat_history", '{"type":"chat_history","value":[]}')
    action = TurnEvent(
        "action", '{"type":"action","value":{"action":"answer_question","sequence_id":3}}'
    )
    thought = TurnEvent("reasoning", '{"type":"reasoning","value":"hmm"}')
    error = TurnEvent(
        "error",
        '{"type":"error","value":{"code":"stopped","message":"The answer was stopped.","retryable":true}}',
    )
    raw = writer.encode(
        [history, action, thought, TurnEvent("delta", "Hel"), TurnEvent("delta", "lo"), error]
    )
    blocks = [b for b in raw.decode().split("\n\n") if b]
    assert blocks[-1] == "data: [DONE]"
    chunks = [json.loads(b.removeprefix("data: ")) for b in blocks[:-1]]
    assert [c["type"] for c in chunks] == [
        "start",
        "start-step",
        "data-burr-action",
        "reasoning-start",
        "reasoning-delta",
        "reasoning-end",
        "text-start",
        "text-delta",
        "text-end",
        "finish-step",
        "data-burr-error",
        "abort",
    ]
    assert chunks[0]["messageId"] == "msg-tok" and chunks[7]["delta"] == "Hello"
