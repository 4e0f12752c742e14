"""The events a finished turn keeps for late readers."""

import pytest

from burr_streaming_chatbot.events import EncodedEvent
from burr_streaming_chatbot.turns import PackedEvents


def test_packed_events_read_back_as_recorded() -> None:
    events = [
        EncodedEvent('{"type":"chat_history","value":[]}'),
        "Hé",
        "",
        " 🌍 line\nbreak",
        EncodedEvent('{"type":"mode","value":"answer_question"}'),
        "{not json}",
        EncodedEvent('{"type":"message","value":{}}'),
    ]
    packed = PackedEvents(events)
    assert len(packed) == len(events)
    assert [packed[i] for i in range(len(events))] == events
    assert packed[2:] == events[2:]
    assert packed[len(events):] == []
    assert packed[-1] == events[-1]
    assert isinstance(packed[1], str) and isinstance(packed[4], EncodedEvent)
    with pytest.raises(IndexError):
        packed[len(events)]
    assert list(PackedEvents([])) == []
