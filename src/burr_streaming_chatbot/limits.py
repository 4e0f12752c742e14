"""Per-client limits: what one client may make this process hold at once.

A client is the signed-in user when users are on, else the remote address. Each process counts
its own clients' running answers, queued prompts and open event streams (``GET /events``,
``GET /stream`` and the AI SDK's resume stream); past a limit the request is refused with 429
and ``Retry-After`` before anything is written, and other clients are still served.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal, Optional

StreamKind = Literal["events", "stream"]
"""``events``: ``GET /events``; ``stream``: ``GET /stream`` and the AI SDK's resume stream."""


class LimitReached(Exception):
    """A client is past one of its limits; the message names the limit (the service answers
    it as 429, :class:`~.service.TooMany`)."""


class Slot:
    """One counted thing a client holds; :meth:`release` gives it back (once)."""

    __slots__ = ("_counter", "_key")

    def __init__(self, counter: Counter[tuple[str, Optional[str]]], key: tuple[str, Optional[str]]):
        self._counter: Optional[Counter[tuple[str, Optional[str]]]] = counter
        self._key = key

    def release(self) -> None:
        """Give the slot back; later calls do nothing."""
        counter, self._counter = self._counter, None
        if counter is not None:
            counter[self._key] -= 1
            if counter[self._key] <= 0:
                del counter[self._key]


class ClientLimits:
    """The counts of this process's clients, and the limits they are held to."""

    def __init__(self, answers: int, queued: int, streams: int) -> None:
        self.limits = {"answers": answers, "queued": queued, "streams": streams}
        self._held: Counter[tuple[str, Optional[str]]] = Counter()
        """``(what, client)``: how many the client holds (``what`` is answers, queued, or a
        stream kind)."""

    def take(self, what: Literal["answers", "queued"], client: Optional[str]) -> Slot:
        """A running answer's or a queued prompt's slot for ``client``; :class:`LimitReached` past
        its limit (never for ``None``, a caller that names no client)."""
        limit = self.limits[what]
        if client is not None and self._held[(what, client)] >= limit:
            noun = "answers running" if what == "answers" else "prompts waiting"
            raise LimitReached(
                f"You have {limit} {noun} already (the limit per client); try again soon."
            )
        return self._slot((what, client))

    def check(self, what: Literal["answers", "queued"], client: Optional[str]) -> None:
        """:class:`LimitReached` if :meth:`take` would raise it now (nothing is taken)."""
        self.take(what, client).release()

    def open_stream(self, kind: StreamKind, client: Optional[str]) -> Slot:
        """An open event stream's slot for ``client``; :class:`LimitReached` past its limit (one
        limit for both kinds together)."""
        limit = self.limits["streams"]
        held = self._held[("events", client)] + self._held[("stream", client)]
        if client is not None and held >= limit:
            raise LimitReached(
                f"You have {limit} event streams open already (the limit per client); "
                "close some tabs or try again soon."
            )
        return self._slot((kind, client))

    def _slot(self, key: tuple[str, Optional[str]]) -> Slot:
        self._held[key] += 1
        return Slot(self._held, key)

    def open_streams(self, kind: StreamKind) -> int:
        """How many streams of ``kind`` are open, all clients together."""
        return sum(count for (what, _), count in self._held.items() if what == kind)
