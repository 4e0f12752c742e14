"""The encoders' fast paths write exactly what the protocols' own models write."""

import json

from ag_ui.core import RunAgentInput, TextMessageContentEvent
from ag_ui.encoder import EventEncoder
from hypothesis import given, settings, strategies as st

from burr_streaming_chatbot.encoders import typed
from burr_streaming_chatbot.encoders.agui import AgUiRun
from burr_streaming_chatbot.encoders.ai_sdk import DeltaChunk, UIMessageWriter
from burr_streaming_chatbot.events import EncodedEvent

TEXTS = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ['"quoted" \\ back', "\u2028\u2029 line separators", "\x00\x01\x1f\x7f controls", "data: x", "🌍 déjà"]
)


@settings(max_examples=300)
@given(TEXTS, st.from_regex(r"msg-[0-9]{1,4}", fullmatch=True))
def test_agui_text_content_is_the_packages_encoding(text: str, message_id: str) -> None:
    run = AgUiRun(RunAgentInput(thread_id="t", run_id="r", messages=[]), "prompt")
    run.answer_id = message_id
    official = EventEncoder().encode(TextMessageContentEvent(message_id=message_id, delta=text or "x"))
    assert run.content(text or "x") == official.encode()


@settings(max_examples=300)
@given(TEXTS)
def test_ai_sdk_text_delta_is_its_models_encoding(text: str) -> None:
    assert UIMessageWriter.text_delta(text) == DeltaChunk(type="text-delta", id="text", delta=text).encoded()


def test_typed_joins_consecutive_deltas_and_parses_the_rest() -> None:
    batch = ["a", "b", EncodedEvent('{"type":"mode","value":"unknown"}'), "c"]
    assert list(typed(batch)) == [
        ("delta", "ab"), ("mode", {"type": "mode", "value": "unknown"}), ("delta", "c")
    ]


def test_an_ai_sdk_turn_closes_every_part_before_it_finishes() -> None:
    writer = UIMessageWriter("tok")
    history = EncodedEvent('{"type":"chat_history","value":[]}')
    action = EncodedEvent('{"type":"action","value":{"action":"answer_question","sequence_id":3}}')
    thought = EncodedEvent('{"type":"reasoning","value":"hmm"}')
    error = EncodedEvent('{"type":"error","value":{"code":"stopped","message":"The answer was stopped.","retryable":true}}')
    raw = writer.encode([history, action, thought, "Hel", "lo", error])
    blocks = [b for b in raw.decode().split("\n\n") if b]
    assert blocks[-1] == "data: [DONE]"
    chunks = [json.loads(b.removeprefix("data: ")) for b in blocks[:-1]]
    assert [c["type"] for c in chunks] == [
        "start", "start-step", "data-burr-action", "reasoning-start", "reasoning-delta",
        "reasoning-end", "text-start", "text-delta", "text-end", "finish-step", "data-burr-error", "abort",
    ]
    assert chunks[0]["messageId"] == "msg-tok" and chunks[7]["delta"] == "Hello"
