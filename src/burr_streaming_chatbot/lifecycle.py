"""A turn's life, written once: its states, what moves it from one to the next, and what a stop
does in each.

==============  ==============================================  ==============  ===============================
state           what happens                                    next state      a stop here
==============  ==============================================  ==============  ===============================
SAVING_PROMPT   the ``prompt`` step saves the user's message    ANSWERING       waits: STOP_PENDING (accepted)
                (``PROMPT_SAVED``)
STOP_PENDING    the prompt is saved (``PROMPT_SAVED``)          STOPPING        accepted already; nothing more
ANSWERING       the graph runs: checks, mode, the answer        ANSWERED        cancels the task: STOPPING
                streams, until it is whole (``ANSWERED``)                       (accepted)
STOPPING        the task was cancelled (once); the answering    CUT             accepted already; never a
                step keeps the text it had (``ANSWERED``)                       second cancel (it would cut
                                                                                the save of that text)
ANSWERED        the whole answer is being saved                 ENDING, or      refused: nothing left to cut
                                                                ANSWERING when
                                                                it called tools
                                                                (``CONTINUED``)
CUT             the answer cut by the stop is being saved       ENDING          refused: cancelled already
ENDING          the last event (``message`` or ``error``) is    DONE            refused
                recorded; the store records the turn's end;
                no listener gets that event yet (``ENDED``)
DONE            listeners get the last event; the turn is       (none)          refused
                kept a while for late readers
==============  ==============================================  ==============  ===============================

The last event can come in any state before ENDING (``LAST_EVENT``: an error, or the turn was
cancelled before its answer streamed); it always leads to ENDING. A stop (``STOP``) is allowed
in every state: where it is refused the state stays as it is. The task is cancelled exactly
once, on entering STOPPING, which no state after it leads back to.

An answer that called tools is saved, then the graph goes on (``CONTINUED``): the tools run and
the model answers again, and a stop cuts that as it cuts the first answer. A turn answering a
person's decision on a tool call has no prompt: its ``tool_approval`` step saves the decision,
and says ``PROMPT_SAVED``.

``PROMPT_SAVED``, ``ANSWERED`` and ``CONTINUED`` are said by the turn's producer (:mod:`.answering`, in its
stream of events); ``STOP`` by a client, a reader's departure or the server's shutdown;
``LAST_EVENT`` and ``ENDED`` by :mod:`.turns`, which records the events and ends the turn.
"""

from __future__ import annotations

import enum
from typing import Union

from .wire import TurnEvent


class TurnState(enum.Enum):
    """Where a turn is in its life (see this module's table)."""

    SAVING_PROMPT = "saving_prompt"
    STOP_PENDING = "stop_pending"
    ANSWERING = "answering"
    STOPPING = "stopping"
    ANSWERED = "answered"
    CUT = "cut"
    ENDING = "ending"
    DONE = "done"


class Signal(enum.Enum):
    """What happens to a turn (see this module's table)."""

    PROMPT_SAVED = "prompt_saved"
    """The ``prompt`` step has persisted the user's message."""
    ANSWERED = "answered"
    """The answer is whole, or cut by a stop: from now on a stop has nothing left to cut."""
    CONTINUED = "continued"
    """The answer is saved and called tools: the graph goes on to run them and answer again."""
    STOP = "stop"
    """Someone asked the turn to stop."""
    LAST_EVENT = "last_event"
    """The turn's last event (a ``message`` or an ``error``) is recorded."""
    ENDED = "ended"
    """The store has recorded the turn's end (or gave up): listeners may have the last event."""


FROM_THE_PRODUCER = frozenset({Signal.PROMPT_SAVED, Signal.ANSWERED, Signal.CONTINUED})
"""The signals a turn's producer says, in its stream of events (:data:`TurnItem`)."""

TurnItem = Union[TurnEvent, Signal]
"""What a turn's producer yields: its events, and the signals of :data:`FROM_THE_PRODUCER`,
which no client sees."""


TRANSITIONS: dict[tuple[TurnState, Signal], TurnState] = {
    (TurnState.SAVING_PROMPT, Signal.PROMPT_SAVED): TurnState.ANSWERING,
    (TurnState.SAVING_PROMPT, Signal.STOP): TurnState.STOP_PENDING,
    (TurnState.SAVING_PROMPT, Signal.LAST_EVENT): TurnState.ENDING,
    (TurnState.STOP_PENDING, Signal.PROMPT_SAVED): TurnState.STOPPING,
    (TurnState.STOP_PENDING, Signal.STOP): TurnState.STOP_PENDING,
    (TurnState.STOP_PENDING, Signal.LAST_EVENT): TurnState.ENDING,
    (TurnState.ANSWERING, Signal.STOP): TurnState.STOPPING,
    (TurnState.ANSWERING, Signal.ANSWERED): TurnState.ANSWERED,
    (TurnState.ANSWERING, Signal.LAST_EVENT): TurnState.ENDING,
    (TurnState.STOPPING, Signal.STOP): TurnState.STOPPING,
    (TurnState.STOPPING, Signal.ANSWERED): TurnState.CUT,
    (TurnState.STOPPING, Signal.LAST_EVENT): TurnState.ENDING,
    (TurnState.ANSWERED, Signal.STOP): TurnState.ANSWERED,
    (TurnState.ANSWERED, Signal.CONTINUED): TurnState.ANSWERING,
    (TurnState.ANSWERED, Signal.LAST_EVENT): TurnState.ENDING,
    (TurnState.CUT, Signal.STOP): TurnState.CUT,
    (TurnState.CUT, Signal.LAST_EVENT): TurnState.ENDING,
    (TurnState.ENDING, Signal.STOP): TurnState.ENDING,
    (TurnState.ENDING, Signal.ENDED): TurnState.DONE,
    (TurnState.DONE, Signal.STOP): TurnState.DONE,
}
"""Every allowed transition: (state, what happened) → the next state. Anything else is a bug
(:class:`IllegalTransition`)."""

STOP_ACCEPTED = frozenset({TurnState.STOP_PENDING, TurnState.STOPPING})
"""Where an accepted stop leads: a stop that leaves the turn in another state was refused (the
answer was already whole, cut, or ended)."""


class IllegalTransition(RuntimeError):
    """A signal that cannot happen in the turn's state (a bug in the turn's producer or runner)."""


def next_state(state: TurnState, signal: Signal) -> TurnState:
    """The state after ``signal`` in ``state``; :class:`IllegalTransition` when the table has no
    such transition."""
    try:
        return TRANSITIONS[state, signal]
    except KeyError:
        raise IllegalTransition(f"{signal.name} cannot happen in {state.name}") from None


def cancels(before: TurnState, after: TurnState) -> bool:
    """True when moving from ``before`` to ``after`` cancels the turn's task: on entering
    STOPPING, which happens once at most."""
    return after is TurnState.STOPPING and before is not TurnState.STOPPING
