"""How a conversation's state is stored, so that saving it does not grow with the square of
its length: the fields of a conversation's state, and what both engines' persisters share.

Burr's persister writes the whole state after every step, and the state holds the whole chat
history: a conversation of n turns would write O(n²) bytes. The persisters of :mod:`.sqlite`
and :mod:`.postgres` are Burr's own ``AsyncSQLitePersister`` and ``AsyncPostgreSQLPersister``
with the history stored append-only in a table of its own (one row per message, written once)
and one state row per conversation (the latest; older rows are deleted in the same
transaction). The helpers here are what both share.
"""

import json
from collections.abc import Collection
from typing import Any, Optional

from burr.core import State

from .interface import ConflictError

HISTORY = "chat_history"
LENGTH = "chat_history_length"
"""Stored in place of the history: how many messages it had at this step."""
SEQUENCE = "sequence_id"
"""In a stored message: the sequence id of the step that wrote it (never sent to clients)."""
BRANCH = "branch"
"""In a branch's state: ``{"root", "parent", "at", "parent_sequence_id"}``, where it was forked."""


UNCHECKED: Any = object()
"""``expected_sequence_id`` when a save need not check what is stored (a direct call)."""


def lean_state(state: State) -> tuple[list[dict], State]:
    """The history, and the state to store in its place: its other fields and its length.

    Built by hand: Burr's wipe/update deep-copy the field they touch (the whole history)."""
    history = state.get(HISTORY, [])
    fields = {key: value for key, value in state.get_all().items() if key != HISTORY}
    return history, State({**fields, LENGTH: len(history)})


def full_state(lean: State, history: list[dict]) -> State:
    """The state :func:`lean_state` split, put back together."""
    fields = {key: value for key, value in lean.get_all().items() if key != LENGTH}
    return State({**fields, HISTORY: history})


def encode_message(message: dict) -> str:
    """One stored message (as JSON text, so a history is read back with one parse)."""
    return json.dumps(message, ensure_ascii=False)


def messages_to_append(
    app_id: str,
    history: list[dict],
    stored_messages: int,
    stored_sequence_id: Optional[int],
    expected_sequence_id: Any,
    sequence_id: Optional[int] = None,
) -> list[tuple[int, str]]:
    """What a save appends to what is stored: the messages after the stored ones, as
    ``(index, JSON)``, each stamped with ``sequence_id``, the step that wrote it (unless it has
    one: a branch's copies keep their original's), which is where a fork before the next
    message points in Burr. Raises :class:`.ConflictError` when what is stored is not what the state
    came from: another sequence id than ``expected_sequence_id`` (unless :data:`UNCHECKED`), or
    more messages than the state has."""
    if expected_sequence_id is not UNCHECKED and stored_sequence_id != expected_sequence_id:
        raise ConflictError(f"conversation {app_id} was saved by another process")
    if len(history) < stored_messages:
        raise ConflictError(f"conversation {app_id} has messages this state does not")
    return [
        (
            index,
            encode_message(message if SEQUENCE in message else {**message, SEQUENCE: sequence_id}),
        )
        for index, message in enumerate(history[stored_messages:], start=stored_messages)
    ]


def decode_messages(rows: Collection[str]) -> list[dict]:
    """Stored messages read back: one parse of one array, a third of the time of one per message."""
    return json.loads("[" + ",".join(rows) + "]")
