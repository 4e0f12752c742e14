"""Live turns: each answer runs in its own task, apart from the HTTP request that started it.

Its events are kept in order, so any number of listeners can follow it, and a client whose
connection dropped can reattach and receive the rest exactly once (``Last-Event-ID``). When the
last listener leaves, the turn is stopped after a short grace period (less than a second by
default), which cancels the upstream request; a stopped answer keeps the text it had, marked
``interrupted``. Finished turns are kept for a while so a late reattach still gets the end.
"""

import asyncio
import contextlib
import logging
import secrets
import time
from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from itertools import accumulate
from typing import Any, Optional, Union, overload

from .events import ActionEvent, EncodedEvent, ErrorEvent, ErrorValue

logger = logging.getLogger(__name__)

Key = tuple[str, str]

STOPPED = ErrorValue(code="stopped", message="The answer was stopped.", retryable=True)


Event = Union[str, EncodedEvent]
"""A recorded event: a delta's text, or any other event serialized."""


class LiveTurn:
    """One turn's task and its events, numbered from 0."""

    __slots__ = (
        "key", "token", "events", "done", "failed", "finished_at", "listeners", "task",
        "_grace_s", "_waiters", "_stop_timer", "_saving_prompt", "_stop_pending",
    )

    def __init__(self, key: Key, grace_s: float) -> None:
        self.key = key
        self.token = secrets.token_hex(4)
        """Names this turn in event ids (``<token>.<n>``), so ids of another turn are not mixed up."""
        self.events: Sequence[Event] = []
        self.done = False
        self.failed = False
        """True once an error event is recorded."""
        self.finished_at: Optional[float] = None
        self.listeners = 0
        self.task: Optional[asyncio.Task] = None
        self._grace_s = grace_s
        self._waiters: list[asyncio.Future] = []
        self._stop_timer: Optional[asyncio.TimerHandle] = None
        self._saving_prompt = True  # until the `prompt` step has persisted the user's message
        self._stop_pending = False

    def start(self, events: AsyncIterator[Any], on_done: Callable[["LiveTurn"], None]) -> None:
        """Run ``events`` in a task of its own, recording each event."""

        async def drive() -> None:
            try:
                async for event in events:
                    self._append(event)
                    if self._saving_prompt and _after_prompt(event):
                        self._saving_prompt = False
                        if self._stop_pending:
                            self.task.cancel()  # type: ignore[union-attr]
            except asyncio.CancelledError:
                # Stopped before the answer began streaming: nothing partial to keep.
                if not self.failed:
                    self._append(ErrorEvent(value=STOPPED))
            except Exception:  # run_turn turns errors into events; this is a last resort
                logger.exception("Turn %s/%s failed", *self.key)
                self._append(
                    ErrorEvent(
                        value=ErrorValue(
                            code="internal", message="The server failed; see its log.", retryable=True
                        )
                    )
                )
            finally:
                self.done = True
                # A finished turn is kept a while for late readers: its events packed, no task.
                self.events = PackedEvents(self.events)
                self.task = None
                self.finished_at = time.monotonic()
                self._cancel_stop_timer()
                self._wake()
                on_done(self)

        self.task = asyncio.get_running_loop().create_task(drive(), name=f"turn {self.key}")

    def _append(self, event: Any) -> None:
        if not isinstance(event, (str, EncodedEvent)):  # (a delta, the most frequent, is a str)
            self.failed = self.failed or isinstance(event, ErrorEvent)
            event = EncodedEvent.of(event)
        self.events.append(event)  # type: ignore[attr-defined]  (a list until the turn ends)
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def position(self, last_event_id: Optional[str]) -> int:
        """The index of the first event a client that saw ``last_event_id`` still needs."""
        if last_event_id:
            token, _, number = last_event_id.partition(".")
            if token == self.token and number.isdigit():
                return min(int(number) + 1, len(self.events))
        return 0

    def event_id(self, index: int) -> str:
        """The SSE id of the event at ``index``."""
        return f"{self.token}.{index}"

    async def follow(
        self, start: int = 0, idle_s: Optional[float] = None
    ) -> AsyncIterator[tuple[int, list[Any]]]:
        """Yield ``(index of the first, events)`` batches from ``start`` until the turn ends.

        Events that pile up while the listener is busy come as one batch, so a slow reader
        costs fewer writes, never lost or reordered events. With ``idle_s``, an empty batch
        comes after that many seconds without events (time for a keepalive).
        """
        self.listeners += 1
        self._cancel_stop_timer()
        loop = asyncio.get_running_loop()
        idle = _IdleTimer(loop, idle_s)
        try:
            index = start
            while True:
                if index < len(self.events):
                    batch = self.events[index:]
                    yield index, batch
                    idle.last_sent = loop.time()
                    index += len(batch)
                    continue
                if self.done:
                    return
                # One future per listener: a listener that is cancelled cancels only its own.
                waiter = loop.create_future()
                self._waiters.append(waiter)
                idle.waiter = waiter
                await waiter
                if index >= len(self.events) and not self.done:
                    yield index, []  # woken by the idle timer: nothing new
                    idle.last_sent = loop.time()
        finally:
            idle.cancel()
            self.listeners -= 1
            if self.listeners == 0 and not self.done:
                self._schedule_stop()

    def stop(self) -> bool:
        """Cancel the turn (and so its upstream request); False when it already ended.

        The user's message is never lost: until the ``prompt`` step has saved it, the stop
        waits for it.
        """
        self._cancel_stop_timer()
        if self.done or self.task is None:
            return False
        if self._saving_prompt:
            self._stop_pending = True
        else:
            self.task.cancel()
        return True

    def _schedule_stop(self) -> None:
        self._cancel_stop_timer()
        if self._grace_s <= 0:
            self.stop()
        else:
            self._stop_timer = asyncio.get_running_loop().call_later(self._grace_s, self.stop)

    def _cancel_stop_timer(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None


class PackedEvents(Sequence[Event]):
    """A finished turn's events in three flat objects: their texts end to end in one string,
    where each ends, and which are deltas. Read back as they were recorded.

    A server keeps a few hundred finished turns; as lists of event objects they were a good
    part of what every full garbage collection scans (every item is visited), packed they
    are three items each.
    """

    __slots__ = ("_text", "_ends", "_deltas")

    def __init__(self, events: Sequence[Event]) -> None:
        texts = [event if isinstance(event, str) else event.data for event in events]
        self._text = "".join(texts)
        self._ends = array("Q", accumulate(map(len, texts)))
        self._deltas = bytes(isinstance(event, str) for event in events)

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> list[Event]: ...
    def __getitem__(self, index: Union[int, slice]) -> Union[Event, list[Event]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        text = self._text[self._ends[index - 1] if index else 0 : self._ends[index]]
        return text if self._deltas[index] else EncodedEvent(text)


class _IdleTimer:
    """Wakes a listener's ``waiter`` once ``idle_s`` passed without anything sent to it (never
    when ``idle_s`` is None).

    One timer per listener, re-armed when it fires (not one per event). No closures: a timer
    callback that refers to itself is a reference cycle, left for the garbage collector after
    every turn.
    """

    __slots__ = ("loop", "idle_s", "last_sent", "waiter", "handle")

    def __init__(self, loop: asyncio.AbstractEventLoop, idle_s: Optional[float]) -> None:
        self.loop = loop
        self.idle_s = idle_s
        self.last_sent = loop.time()
        self.waiter: Optional[asyncio.Future] = None
        self.handle: Optional[asyncio.TimerHandle] = (
            None if idle_s is None else loop.call_at(self.last_sent + idle_s, self._check)
        )

    def _check(self) -> None:
        assert self.idle_s is not None  # (armed only with one)
        now, due = self.loop.time(), self.last_sent + self.idle_s
        if now >= due:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result(None)
            due = now + self.idle_s  # (a listener still busy sending is looked at again later)
        self.handle = self.loop.call_at(due, self._check)

    def cancel(self) -> None:
        """Stop for good."""
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        self.waiter = None


def _after_prompt(event: Any) -> bool:
    """True for the first event that follows the ``prompt`` step."""
    return isinstance(event, ActionEvent) and event.value.action != "prompt" or isinstance(
        event, ErrorEvent
    )


class Turns:
    """The live turns of a server, one at most per conversation, plus recently finished ones."""

    def __init__(self, grace_s: float, keep_finished_s: float = 60.0, keep_finished: int = 256):
        self.grace_s = grace_s
        self.keep_finished_s = keep_finished_s
        self.keep_finished = keep_finished
        self.live: dict[Key, LiveTurn] = {}
        self.finished: OrderedDict[Key, LiveTurn] = OrderedDict()

    def busy(self, key: Key) -> bool:
        """True while a turn of this conversation is running."""
        return key in self.live

    def begin(self, key: Key, events: AsyncIterator[Any]) -> LiveTurn:
        """Start a turn; the caller checked :meth:`busy` without awaiting since."""
        turn = LiveTurn(key, self.grace_s)
        self.live[key] = turn
        self.finished.pop(key, None)
        turn.start(events, self._finish)
        return turn

    def _finish(self, turn: LiveTurn) -> None:
        if self.live.get(turn.key) is turn:
            del self.live[turn.key]
        self.finished[turn.key] = turn
        self.finished.move_to_end(turn.key)
        self._prune()

    def _prune(self) -> None:
        horizon = time.monotonic() - self.keep_finished_s
        while self.finished:
            oldest = next(iter(self.finished.values()))
            if len(self.finished) <= self.keep_finished and (oldest.finished_at or 0) >= horizon:
                break
            self.finished.popitem(last=False)

    def current(self, key: Key) -> Optional[LiveTurn]:
        """The running turn of a conversation, else its recently finished one."""
        self._prune()
        return self.live.get(key) or self.finished.get(key)

    async def stop_all(self) -> None:
        """Stop every running turn and wait for them to record what they had."""
        turns = list(self.live.values())
        for turn in turns:
            turn.stop()
        tasks = [turn.task for turn in turns if turn.task is not None]
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
