"""Reading server-sent events upstream: ``EventDecoder`` against the format's corner cases."""

import pytest

from burr_streaming_chatbot.sse import EventDecoder, UpstreamEvent

STREAM = (
    b": a comment, as keepalives are\n\n"
    b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
    b"event: error\ndata: first line\ndata:second line\n\n"
    b"id: 7\nretry: 100\n\n"  # no data: no event
    b"data\n\n"  # a field with no colon: empty data
    b"data: [DONE]\n\n"
)
EVENTS = [
    UpstreamEvent("", b'{"choices":[{"delta":{"content":"Hi"}}]}'),
    UpstreamEvent("error", b"first line\nsecond line"),
    UpstreamEvent("", b""),
    UpstreamEvent("", b"[DONE]"),
]


def feed_all(decoder: EventDecoder, chunks: list[bytes]) -> list[UpstreamEvent]:
    return [event for chunk in chunks for event in decoder.feed(chunk)]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_split_of_the_stream_gives_the_same_events(newline: bytes) -> None:
    stream = STREAM.replace(b"\n", newline)
    assert feed_all(EventDecoder(), [stream]) == EVENTS
    for cut in range(1, len(stream)):
        assert feed_all(EventDecoder(), [stream[:cut], stream[cut:]]) == EVENTS, cut
    assert feed_all(EventDecoder(), [bytes([byte]) for byte in stream]) == EVENTS


def test_a_read_returns_every_event_it_completed_and_keeps_the_rest() -> None:
    decoder = EventDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n\ndata: c") == [
        UpstreamEvent("", b"a"),
        UpstreamEvent("", b"b"),
    ]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [UpstreamEvent("", b"c")]


def test_an_event_that_never_ends_is_refused() -> None:
    decoder = EventDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"x" * 90)
    with pytest.raises(ValueError):
        decoder.feed(b"x" * 20)
