"""Turns as they run and are read: each answer runs in its own task, apart from the HTTP request
that started it.

A *turn* is one prompt and its answer. :mod:`.answering` says what a turn does (its events, as
Burr runs the graph); this module runs it and lets clients read it:

* :class:`LocalTurn`: a turn running (or just finished) in this process: its task and its events;
* :class:`RemoteTurn`: a turn of another process, read from the store;
* :data:`FollowedTurn`: either, as readers (the encoders) see them: ``follow``, ``event_id``;
* :class:`TurnRunner`: this process's turns: runs each in its task, finds one (here or in the
  store), stops one (wherever it runs), and keeps their part of the store up to date.

Where a running turn is in its life, and so what a stop does to it, is its
:class:`~.lifecycle.TurnState`, changed only through the table in :mod:`.lifecycle`.

A turn's events are kept in order, so any number of listeners can follow it, and a client whose
connection dropped can reattach and receive the rest exactly once (``Last-TurnEvent-ID``). When the
last listener leaves, the turn is stopped after a short grace period (less than a second by
default), which cancels the upstream request; a stopped answer keeps the text it had, marked
``interrupted``. Finished turns are kept for a while so a late reattach still gets the end.

Listeners in the process running a turn are fed from memory. For the others, the process
publishes each live turn's new events to the store every ``publish_s`` (one transaction for
all its turns), renews its leases, and stops the turns another process asked to stop; a turn's
last events and the end of its lease are written in one transaction *before* its last event
reaches any listener, so a client that saw an answer end can send the next prompt to any
process. :class:`RemoteTurn` follows a turn that runs in another process, from the store.
"""

import asyncio
import contextlib
import logging
import secrets
import time
from array import array
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from itertools import accumulate
from typing import Any, Optional, Union, overload

from .errors import INTERNAL, LOST, STOPPED, STORAGE_UNAVAILABLE, error_event
from .lifecycle import (
    FROM_THE_PRODUCER,
    STOP_ACCEPTED,
    IllegalTransition,
    Signal,
    TurnItem,
    TurnState,
    cancels,
    next_state,
)
from .storage.interface import Batch, Key, Store, TurnRecord, is_store_error
from .wire import EVENT_TYPES, ErrorValue, TurnEvent

logger = logging.getLogger(__name__)


WATCH_S = 0.2
"""How often a reader on another process says it still follows a turn."""
PRUNE_EVERY_S = 10.0
"""How often the event logs of turns that ended over a minute ago are deleted (at most)."""
NO_ID = -1
"""The "index" of an event that is not the turn's own (a reader's error): sent without an id,
so a client's Last-TurnEvent-ID stays the turn's last real event."""
END_TIMEOUT_S = 5.0
"""The longest a turn's last event waits for the store to record the turn's end."""


def new_token() -> str:
    """A turn's name in event ids and in the store."""
    return secrets.token_hex(4)


def position_after(token: str, last_event_id: Optional[str]) -> int:
    """The index of the first event of turn ``token`` that a client that saw ``last_event_id``
    still needs (0 for an id of another turn, or none)."""
    if last_event_id:
        id_token, _, number = last_event_id.partition(".")
        if id_token == token and number.isdigit():
            return int(number) + 1
    return 0


FollowedElsewhere = Callable[["LocalTurn"], Awaitable[bool]]
"""Asked when a turn's last listener here left a grace period ago: does a reader on another
process follow it? (The turn then waits another grace period instead of stopping.)"""


class LocalTurn:
    """One turn of this process: its task, its events (numbered from 0) and where it is in its
    life (:attr:`state`, a :class:`~.lifecycle.TurnState`; every change of it goes through
    :meth:`_move`, by the table in :mod:`.lifecycle`).

    :class:`TurnRunner` runs it: :meth:`record` the producer's events, record the end in the
    store, then :meth:`end`.
    """

    __slots__ = (
        "_asking",
        "_followed_elsewhere",
        "_grace_s",
        "_stop_timer",
        "_waiters",
        "events",
        "finished_at",
        "key",
        "listeners",
        "published",
        "state",
        "task",
        "token",
    )

    def __init__(
        self,
        key: Key,
        grace_s: float,
        token: Optional[str] = None,
        followed_elsewhere: Optional[FollowedElsewhere] = None,
    ) -> None:
        self.key = key
        self.token = token or new_token()
        """Names this turn in event ids (``<token>.<n>``), so ids of another turn are not mixed up."""
        self.events: Union[list[TurnEvent], PackedEvents] = []
        self.published = 0
        """How many of the events are in the store."""
        self.state = TurnState.SAVING_PROMPT
        self.finished_at: Optional[float] = None
        self.listeners = 0
        self.task: Optional[asyncio.Task] = None
        self._grace_s = grace_s
        self._followed_elsewhere = followed_elsewhere
        """Asked before a turn nobody here listens to is stopped (without it, it is stopped)."""
        self._waiters: list[asyncio.Future] = []
        self._stop_timer: Optional[asyncio.TimerHandle] = None
        self._asking: Optional[asyncio.Task] = None

    def _move(self, signal: Signal) -> None:
        """The one place the turn's state changes; cancels the task on entering STOPPING."""
        before = self.state
        self.state = next_state(before, signal)
        if cancels(before, self.state) and self.task is not None:
            self.task.cancel()

    async def record(self, events: AsyncIterator[TurnItem]) -> None:
        """Record the producer's events, and follow the signals of its life, until the last
        event is recorded (the turn is then ENDING). Every turn ends with one last event: a
        turn cancelled before its answer streamed ends with ``stopped``, a producer that fails
        or ends without a last event with ``internal``."""
        try:
            async for item in events:
                if isinstance(item, Signal):
                    if item not in FROM_THE_PRODUCER:
                        raise IllegalTransition(f"the producer cannot say {item.name}")
                    self._move(item)
                else:
                    self._append(item)
        except asyncio.CancelledError:
            # Stopped before the answer began streaming: nothing partial to keep.
            self._end_with(STOPPED)
        except Exception:  # the producer turns errors into events; this is a last resort
            logger.exception("Turn %s/%s failed", *self.key)
            self._end_with(INTERNAL)
        if self.state is not TurnState.ENDING:
            logger.error("Turn %s/%s ended without a last event", *self.key)
            self._end_with(INTERNAL)

    def _end_with(self, error: ErrorValue) -> None:
        """Record ``error`` as the last event, unless the last event is recorded already."""
        if self.state is not TurnState.ENDING:
            self._append(error_event(error))

    def _append(self, event: TurnEvent) -> None:
        """Record an event and wake the listeners; the last one (a ``message`` or an
        ``error``) wakes nobody until the store has recorded the turn's end (:meth:`end`)."""
        if event.type != "delta" and event.is_last:  # (a delta: the most frequent)
            self._move(Signal.LAST_EVENT)
            self.events.append(event)  # type: ignore[union-attr]  # (a list until the turn ends)
            return
        if self.state is TurnState.ENDING:
            raise IllegalTransition("an event after the turn's last one")
        self.events.append(event)  # type: ignore[union-attr]
        self._wake()

    def end(self) -> None:
        """The store has recorded the turn's end (or gave up): listeners get the last event. A
        finished turn is kept a while for late readers: its events packed, no task."""
        self._move(Signal.ENDED)
        self.events = PackedEvents(self.events)
        self.task = None
        self.finished_at = time.monotonic()
        self._cancel_stop_timer()
        self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def running(self) -> bool:
        """True until the turn's end is recorded."""
        return self.state is not TurnState.DONE

    def position(self, last_event_id: Optional[str]) -> int:
        """The index of the first event a client that saw ``last_event_id`` still needs."""
        return min(position_after(self.token, last_event_id), len(self.events))

    def event_id(self, index: int) -> str:
        """The SSE id of the event at ``index``."""
        return f"{self.token}.{index}"

    async def follow(
        self, start: int = 0, idle_s: Optional[float] = None
    ) -> AsyncIterator[tuple[int, list[TurnEvent]]]:
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
                visible = self._visible()
                if index < visible:
                    batch = self.events[index:visible]
                    yield index, batch
                    idle.last_sent = loop.time()
                    index += len(batch)
                    continue
                if not self.running:
                    return
                # One future per listener: a listener that is cancelled cancels only its own.
                waiter = loop.create_future()
                self._waiters.append(waiter)
                idle.waiter = waiter
                await waiter
                if index >= self._visible() and self.running:
                    yield index, []  # woken by the idle timer: nothing new
                    idle.last_sent = loop.time()
        finally:
            idle.cancel()
            self.listeners -= 1
            if self.listeners == 0 and self.running:
                self._schedule_stop()

    def _visible(self) -> int:
        """How many events listeners may have: the last is held back until the store has
        recorded the turn's end (see :meth:`_append`), from a listener that came meanwhile (a
        reattach) too, or its client could send the next prompt while the lease still holds."""
        return len(self.events) - (1 if self.state is TurnState.ENDING else 0)

    def stop(self) -> bool:
        """Stop the turn (cancel its task, and so its upstream request); False when there is
        nothing left to stop.

        The user's message is never lost: until the ``prompt`` step has saved it, the stop
        waits for it. Nor is the answer: once it is whole (or cut by a first stop) it is saved
        and sent, and a stop then returns False. See the table in :mod:`.lifecycle`.
        """
        self._cancel_stop_timer()
        self._move(Signal.STOP)
        return self.state in STOP_ACCEPTED

    def _schedule_stop(self) -> None:
        self._cancel_stop_timer()
        if self._grace_s <= 0:
            self.stop()
        else:
            self._stop_timer = asyncio.get_running_loop().call_later(self._grace_s, self._idle)

    def _idle(self) -> None:
        """The grace period after the last listener left ended: stop, unless a reader on
        another process follows the turn (then wait another grace period)."""
        self._stop_timer = None
        if self.listeners or not self.running:
            return
        if self._followed_elsewhere is None:
            self.stop()
        elif self._asking is None:
            self._asking = asyncio.get_running_loop().create_task(self._stop_unless_followed())

    async def _stop_unless_followed(self) -> None:
        assert self._followed_elsewhere is not None  # (asked only with one)
        try:
            followed = await self._followed_elsewhere(self)
        finally:
            self._asking = None
        if self.listeners or not self.running:
            return
        if followed:
            self._schedule_stop()
        else:
            self.stop()

    def _cancel_stop_timer(self) -> None:
        if self._stop_timer is not None:
            self._stop_timer.cancel()
            self._stop_timer = None


class PackedEvents(Sequence[TurnEvent]):
    """A finished turn's events in three flat objects: their data end to end in one string,
    where each ends, and each one's type. Read back as they were recorded.

    A server keeps a few hundred finished turns; as lists of event objects they were a good
    part of what every full garbage collection scans (every item is visited), packed they
    are three items each.
    """

    __slots__ = ("_ends", "_text", "_types")

    def __init__(self, events: Sequence[TurnEvent]) -> None:
        self._text = "".join(event.data for event in events)
        self._ends = array("Q", accumulate(len(event.data) for event in events))
        self._types = bytes(_TYPE_CODES[event.type] for event in events)

    def __len__(self) -> int:
        return len(self._ends)

    @overload
    def __getitem__(self, index: int) -> TurnEvent: ...
    @overload
    def __getitem__(self, index: slice) -> list[TurnEvent]: ...
    def __getitem__(self, index: Union[int, slice]) -> Union[TurnEvent, list[TurnEvent]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        text = self._text[self._ends[index - 1] if index else 0 : self._ends[index]]
        return TurnEvent(EVENT_TYPES[self._types[index]], text)


_TYPE_CODES = {name: code for code, name in enumerate(EVENT_TYPES)}


class _IdleTimer:
    """Wakes a listener's ``waiter`` once ``idle_s`` passed without anything sent to it (never
    when ``idle_s`` is None).

    One timer per listener, re-armed when it fires (not one per event). No closures: a timer
    callback that refers to itself is a reference cycle, left for the garbage collector after
    every turn.
    """

    __slots__ = ("handle", "idle_s", "last_sent", "loop", "waiter")

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


def _after_prompt(event: TurnEvent) -> bool:
    """True for the first event that follows the ``prompt`` step."""
    if event.type == "action":
        return event.parsed()["value"]["action"] != "prompt"
    return event.type == "error"


def record_ended(record: Optional[TurnRecord], token: str) -> bool:
    """True when the store says turn ``token`` ended (or will not end: its owner died)."""
    return record is None or record.token != token or record.done or record.expired


class RemoteTurn:
    """A turn running (or just ended) in another process, followed through the store: what it
    published is replayed, then new batches are read as they are published (woken by the
    store's notifications, or by polling). Same interface as :class:`LocalTurn` for readers."""

    def __init__(self, store: Store, key: Key, record: TurnRecord, wait_s: float = 1.0) -> None:
        self.store = store
        self.key = key
        self.token = record.token
        self.record = record
        self.wait_s = wait_s

    @property
    def running(self) -> bool:
        """True while the store says the turn goes on (as of when it was found)."""
        return not record_ended(self.record, self.token)

    def position(self, last_event_id: Optional[str]) -> int:
        """The index of the first event a client that saw ``last_event_id`` still needs."""
        return position_after(self.token, last_event_id)

    def event_id(self, index: int) -> str:
        """The SSE id of the event at ``index``."""
        return f"{self.token}.{index}"

    async def follow(
        self, start: int = 0, idle_s: Optional[float] = None
    ) -> AsyncIterator[tuple[int, list[TurnEvent]]]:
        """Yield ``(index of the first, events)`` batches from ``start`` until the turn ends;
        an empty batch after ``idle_s`` seconds without events. A turn whose process died
        (its lease expired unfinished) ends with a ``worker_lost`` error, and a store that
        fails meanwhile with ``storage_unavailable``."""
        try:
            async for batch in self._follow(start, idle_s):
                yield batch
        except Exception as exc:
            if not is_store_error(exc):
                raise
            logger.warning("Following %s/%s from the store failed: %s", *self.key, exc)
            yield NO_ID, [error_event(STORAGE_UNAVAILABLE)]

    async def _follow(
        self, start: int, idle_s: Optional[float]
    ) -> AsyncIterator[tuple[int, list[TurnEvent]]]:
        loop = asyncio.get_running_loop()
        project_id, app_id = self.key
        index = start
        last_sent = loop.time()
        watched = 0.0
        record: Optional[TurnRecord] = self.record
        while True:
            if loop.time() - watched >= WATCH_S and not record_ended(record, self.token):
                # The process running the turn does not stop it for lack of readers while one
                # follows it from here.
                watched = loop.time()
                await self.store.watch(project_id, app_id, self.token)
            # The end and the last events are written in one transaction: once the record
            # says the turn ended, one more read gets everything.
            ended = record_ended(record, self.token)
            for batch in await self.store.events(project_id, self.token, index):
                events = batch.events[max(0, index - batch.first) :]
                if events:
                    yield index, events
                    index += len(events)
                    last_sent = loop.time()
            if ended:
                if record is not None and record.token == self.token and record.expired:
                    yield NO_ID, [error_event(LOST)]
                return
            timeout = self.wait_s if idle_s is None else min(self.wait_s, idle_s)
            await self.store.wait(self.token, timeout)
            if idle_s is not None and loop.time() - last_sent >= idle_s:
                yield index, []
                last_sent = loop.time()
            record = await self.store.current(project_id, app_id)


FollowedTurn = Union[LocalTurn, RemoteTurn]
"""A turn as its readers see it, wherever it runs: ``running``, ``token``, ``position``,
``event_id`` and ``follow``."""


class TurnRunner:
    """The live turns of this process, one at most per conversation, plus recently finished
    ones; and their part in the store (see this module's description)."""

    def __init__(
        self,
        grace_s: float,
        store: Store,
        lease_s: float = 30.0,
        publish_s: float = 0.05,
        keep_finished_s: float = 60.0,
        keep_finished: int = 256,
    ):
        self.grace_s = grace_s
        self.store = store
        self.lease_s = lease_s
        self.publish_s = publish_s
        self.keep_finished_s = keep_finished_s
        self.keep_finished = keep_finished
        self.live: dict[Key, LocalTurn] = {}
        self.finished: OrderedDict[Key, LocalTurn] = OrderedDict()
        self._writing = asyncio.Lock()
        """Held for each write of event logs: a turn's batches go in order, never twice."""
        self._keeper: Optional[asyncio.Task] = None
        self._pruned = float("-inf")
        self._last_warning = 0.0
        store.on_stop_request(self._stop_requested)

    def busy(self, key: Key) -> bool:
        """True while a turn of this conversation is running in this process."""
        return key in self.live

    def begin(self, key: Key, token: str, events: AsyncIterator[TurnItem]) -> LocalTurn:
        """Start a turn whose lease is taken, in a task of its own; the caller checked
        :meth:`busy` without awaiting since."""
        turn = LocalTurn(key, self.grace_s, token, self._followed_elsewhere)
        self.live[key] = turn
        self.finished.pop(key, None)
        loop = asyncio.get_running_loop()
        turn.task = loop.create_task(self._run(turn, events), name=f"turn {key}")
        if self._keeper is None or self._keeper.done():
            self._keeper = loop.create_task(self._keep(), name="turn keeper")
        return turn

    async def _run(self, turn: LocalTurn, events: AsyncIterator[TurnItem]) -> None:
        """A turn's task, from its first event to its end: record the events; write the last
        ones and the end of the lease to the store *before* any listener gets the last event
        (so a client that saw the answer end may send its next prompt to any process); then
        end the turn and keep it a while for late readers."""
        await turn.record(events)
        try:
            await asyncio.wait_for(asyncio.shield(self._end_in_store(turn)), END_TIMEOUT_S)
        except (Exception, asyncio.CancelledError):
            logger.warning("Turn %s/%s: could not record its end in the store", *turn.key)
        turn.end()
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

    async def find(self, key: Key) -> Optional[Union[LocalTurn, RemoteTurn]]:
        """The conversation's running turn, else its recently finished one, wherever it ran:
        from memory when it is this process's, else from the store."""
        self._prune()
        local = self.live.get(key) or self.finished.get(key)
        if local is not None and local.running:
            return local
        record = await self.store.current(*key)
        if record is None:
            return local
        if local is not None and local.token == record.token:
            return local
        if record.done and (record.finished_ago_s or 0.0) > self.keep_finished_s:
            return None
        return RemoteTurn(self.store, key, record)

    async def stop(self, key: Key, wait_s: float = 5.0) -> bool:
        """Stop the conversation's running turn, wherever it runs; False when none runs. Waits
        (at most ``wait_s``) until the turn has recorded its end."""
        turn = self.live.get(key)
        if turn is not None:
            stopped = turn.stop()
            if turn.task is not None:
                await asyncio.wait([turn.task], timeout=wait_s)
            return stopped
        if not await self.store.request_stop(*key):
            return False
        record = await self.store.current(*key)
        token = record.token if record is not None else None
        deadline = time.monotonic() + wait_s
        while record is not None and record.token == token and not (record.done or record.expired):
            if time.monotonic() > deadline:
                break
            await self.store.wait(token or "", 0.05)
            record = await self.store.current(*key)
        return True

    async def _followed_elsewhere(self, turn: LocalTurn) -> bool:
        """True when a reader on another process followed ``turn`` within its last grace period
        (a store that fails says no)."""
        within = self.grace_s + 2 * WATCH_S
        watched = await self._guarded(
            self.store.watched(turn.key[0], turn.key[1], turn.token, within)
        )
        return bool(watched)

    def _stop_requested(self, project_id: str, app_id: str) -> None:
        turn = self.live.get((project_id, app_id))
        if turn is not None:
            turn.stop()

    async def _end_in_store(self, turn: LocalTurn) -> None:
        """Write a turn's last events and end its lease (before its last event is read)."""
        async with self._writing:
            events = turn.events
            last = (
                Batch(turn.published, list(events[turn.published :]))
                if len(events) > turn.published
                else None
            )
            await self.store.finish(turn.key[0], turn.key[1], turn.token, last)
            turn.published = len(events)

    async def _keep(self) -> None:
        """While turns run here: publish their new events, renew their leases, and (without
        notifications) look for stop requests."""
        loop = asyncio.get_running_loop()
        while True:
            await self._keep_while_live(loop)
            if loop.time() - self._pruned >= PRUNE_EVERY_S:
                self._pruned = loop.time()
                for project_id in {key[0] for key in self.finished}:
                    await self._guarded(self.store.prune(project_id, self.keep_finished_s))
            if not self.live:  # (no await since the check: a new turn starts a new keeper)
                return

    async def _keep_while_live(self, loop: asyncio.AbstractEventLoop) -> None:
        renewed = stops_checked = loop.time()
        while self.live:
            await asyncio.sleep(self.publish_s)
            await self._guarded(self._publish())
            now = loop.time()
            if now - renewed >= self.lease_s / 3:
                renewed = now
                for project_id, tokens in self._by_project().items():
                    await self._guarded(self.store.renew(project_id, tokens, self.lease_s))
            if not self.store.notifies and now - stops_checked >= 0.2:
                stops_checked = now
                for project_id in self._by_project():
                    for token in await self._guarded(self.store.stop_requests(project_id)) or ():
                        for turn in list(self.live.values()):
                            if turn.token == token:
                                turn.stop()

    def _by_project(self) -> dict[str, list[str]]:
        projects: dict[str, list[str]] = {}
        for turn in self.live.values():
            projects.setdefault(turn.key[0], []).append(turn.token)
        return projects

    async def _publish(self) -> None:
        async with self._writing:
            projects: dict[str, list[tuple[LocalTurn, int]]] = {}
            for turn in self.live.values():
                # (an ending turn's last events go with the end of its lease, never before)
                ending = turn.state is TurnState.ENDING
                if not ending and len(turn.events) > turn.published:
                    projects.setdefault(turn.key[0], []).append((turn, len(turn.events)))
            for project_id, turns in projects.items():
                batches = [
                    (turn.token, Batch(turn.published, list(turn.events[turn.published : end])))
                    for turn, end in turns
                ]
                await self.store.publish(project_id, batches)
                for turn, end in turns:
                    turn.published = end

    async def _guarded(self, work: Awaitable[Any]) -> Any:
        """Run ``work``; a store that fails is logged (at most every 10 s), not fatal here: a
        turn's own saves report it to its listeners."""
        try:
            return await work
        except Exception as exc:
            now = time.monotonic()
            if now - self._last_warning > 10:
                self._last_warning = now
                logger.warning("The store failed: %s", exc)
            return None

    async def stop_all(self) -> None:
        """Stop every running turn and wait for them to record what they had."""
        turns = list(self.live.values())
        for turn in turns:
            turn.stop()
        tasks = [turn.task for turn in turns if turn.task is not None]
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(BaseException):
                await self._keeper
