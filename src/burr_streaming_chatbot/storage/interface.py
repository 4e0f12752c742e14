"""The store: what must hold across processes and machines, one interface over two engines.

Everything a second worker may need lives here, never only in one process's memory:

* **conversations**: each message stored once (appended, checked against the stored length
  in the same transaction) and one state row per conversation, through a subclass of Burr's
  own persister for the engine (:mod:`.sqlite`, :mod:`.postgres`);
* **the lease**: one row per conversation naming the turn that may answer it, its owner (a
  process) and when the lease expires; a prompt for a conversation leased by a live owner
  anywhere is refused. The same row carries the stop request and, once the turn ended, stays
  as the pointer a reattach follows;
* **the event log**: each live turn's events, published in batches by the process running
  it (its rows are what ``GET /stream`` on another process replays and follows);
* **notes**: what the ``save_note`` tool saved, each with the conversation it came from (the
  store is the tools' ``NoteBook``).

SQLite (the default, one file per project under the storage folder, WAL) serves one machine,
any number of processes; PostgreSQL (``BURR_CHATBOT_DATABASE_URL``) serves several machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import sqlite3
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from ..wire import ConversationSummary, TurnEvent

if TYPE_CHECKING:
    from burr.core import State

Key = tuple[str, str]
"""A conversation: its project id and its app id."""


UNOWNED = ""
"""The owner of a conversation stored before users were turned on: nobody (no user id is
empty)."""


class StoreError(Exception):
    """The store cannot be used (unreachable, bad URL, schema not creatable)."""


class ConflictError(Exception):
    """Another process wrote this conversation since this one read it: nothing was written."""


@contextlib.contextmanager
def conflicts_as(app_id: str, duplicate_key: type[Exception]) -> Iterator[None]:
    """A message index stored twice (the driver's ``duplicate_key`` error) is another
    process's save: a :class:`ConflictError`, not a failure of the store."""
    try:
        yield
    except duplicate_key:
        raise ConflictError(f"conversation {app_id} was saved by another process") from None


@dataclass(frozen=True)
class Lease:
    """A lease just taken on a conversation for a turn."""

    sequence_id: Optional[int]
    """The conversation's stored sequence id (None when it has no state yet): a cached state
    with another one is stale."""
    orphan: Optional[str]
    """The token of the previous turn when its owner died before ending it (its lease
    expired): its published events hold the partial answer to keep."""


@dataclass(frozen=True)
class TurnRecord:
    """The store's pointer to a conversation's current (or last) turn."""

    token: str
    owner: str
    done: bool
    expired: bool
    """True when the owner stopped renewing the lease before the turn ended (it died)."""
    finished_ago_s: Optional[float]


@dataclass(frozen=True)
class Batch:
    """Events of one turn published together: those numbered ``first`` on."""

    first: int
    events: list[TurnEvent]


def is_store_error(exc: BaseException) -> bool:
    """True for a failure of the store itself (either engine's driver, a lost connection), as
    opposed to a bug: what a request or a turn reports as ``storage_unavailable``."""
    if isinstance(exc, (StoreError, sqlite3.Error, OSError)):
        return True
    try:
        import asyncpg
    except ImportError:  # pragma: no cover
        return False
    return isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError))


def summary(
    app_id: str,
    updated_at: Any,
    first_message: Optional[str],
    branch: Any = None,
    stored_title: Optional[str] = None,
    parent_deleted: Any = False,
) -> ConversationSummary:
    """A conversation as the list shows it: titled by the title it was given (``stored_title``)
    or else its first message, shortened; a branch with where it was forked from (``branch``:
    its state's ``branch`` field, JSON text or dict) and whether that conversation was deleted
    since (``parent_deleted``)."""
    title = stored_title
    if title is None and first_message:
        title = " ".join(str(first_message).split())
        title = title if len(title) <= 60 else title[:59] + "…"
    if isinstance(branch, (str, bytes)):
        branch = json.loads(branch)
    branch = branch if isinstance(branch, dict) else {}
    return ConversationSummary(
        app_id=app_id,
        updated_at=None if updated_at is None else str(updated_at),
        title=title,
        root=branch.get("root"),
        parent=branch.get("parent"),
        fork_at=branch.get("at"),
        parent_deleted=bool(parent_deleted),
    )


def machine_name() -> str:
    """This machine's host name: its name in leases unless ``BURR_CHATBOT_WORKER_NAME`` (the
    ``worker_name`` setting, read by :func:`.engines.open_store`) gives another."""
    return socket.gethostname()


def new_owner_id(machine: str) -> str:
    """A name for this process in leases: its machine, pid and a random part (pids are reused)."""
    return f"{machine.replace(':', '_')[:64]}:{os.getpid()}:{secrets.token_hex(3)}"


def owner_is_gone(owner: str, me: str) -> bool:
    """True when ``owner`` was a process of the machine of owner ``me`` that no longer runs:
    its leases need not wait to expire (a restart after a crash answers at once)."""
    machine, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if machine != me.partition(":")[0] or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # it runs, as another user
        return False
    return False


def storable_text(text: str) -> str:
    """``text`` with each NUL character replaced by U+FFFD (PostgreSQL's text refuses NUL; both
    engines store the same)."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


_PACK = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def pack_events(events: Sequence[TurnEvent]) -> str:
    """A batch as one JSON array: a delta as its text, another event as ``[type, its JSON]``.
    (One encoder call for the batch: a live turn's new events are packed every publish, and
    most of them are deltas.)"""
    return _PACK([event.data if event.type == "delta" else event for event in events])


def unpack_events(payload: str) -> list[TurnEvent]:
    """What :func:`pack_events` packed."""
    return [
        TurnEvent("delta", item) if type(item) is str else TurnEvent(*item)
        for item in json.loads(payload)
    ]


class Store(ABC):
    """One engine's implementation of everything in this module's description.

    Every method takes the project id: SQLite keeps a file per project, PostgreSQL a column.
    ``now`` is never read from this process's clock where the engine has one of its own.
    """

    owner: str
    """This process, as leases name it."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and create the schema (safe when several processes start at once); raises
        :class:`StoreError` with one clear line when that fails."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close every connection."""

    @abstractmethod
    async def persister(self, project_id: str, create: bool = True) -> Any:
        """The Burr persister of a project's conversations (``load``, ``save``, ``messages``,
        each given :meth:`partition_key`); with ``create=False``, None when the project has no
        storage yet (a read never creates it)."""

    def partition_key(self, project_id: str) -> Optional[str]:
        """The partition key the persister files a project's conversations under."""
        return None

    # -- a conversation's state: one call each, through the engine's Burr persister ----------

    async def load_state(self, project_id: str, app_id: str) -> Optional[tuple[State, int]]:
        """The conversation's latest stored state (its whole history in it) and the sequence id
        of the step that saved it; None when nothing is stored (a read creates no storage)."""
        persister = await self.persister(project_id, create=False)
        if persister is None:
            return None
        loaded = await persister.load(self.partition_key(project_id), app_id)
        return None if loaded is None else (loaded["state"], loaded["sequence_id"])

    async def save_state(
        self,
        project_id: str,
        app_id: str,
        sequence_id: int,
        position: str,
        state: State,
        expected_sequence_id: Any,
    ) -> None:
        """Save the state a step left (its new messages appended, the state row replaced) in
        one transaction, if the stored sequence id is still ``expected_sequence_id`` (None:
        nothing stored yet); else nothing is written and :class:`ConflictError` is raised."""
        persister = await self.persister(project_id)
        await persister.save(
            self.partition_key(project_id),
            app_id,
            sequence_id,
            position,
            state,
            "completed",
            expected_sequence_id=expected_sequence_id,
        )

    async def messages(self, project_id: str, app_id: str) -> list[dict[str, Any]]:
        """The conversation's stored messages, in order (empty when nothing is stored)."""
        persister = await self.persister(project_id, create=False)
        if persister is None:
            return []  # (a project with no storage: a read creates none)
        return await persister.messages(self.partition_key(project_id), app_id)

    @abstractmethod
    async def sequence_id(self, project_id: str, app_id: str) -> Optional[int]:
        """The stored sequence id of a conversation (None when it has no state row)."""

    @abstractmethod
    async def list_conversations(self, project_id: str, limit: int) -> list[ConversationSummary]:
        """The project's conversations, newest first."""

    @abstractmethod
    async def branches(self, project_id: str, root: str) -> list[ConversationSummary]:
        """The conversation ``root`` and every branch whose root it is, oldest first."""

    # -- leases ----------------------------------------------------------------------------

    @abstractmethod
    async def acquire(
        self, project_id: str, app_id: str, token: str, lease_s: float
    ) -> Optional[Lease]:
        """Lease the conversation for turn ``token``; None when another live owner holds it.

        A lease held by this process is taken over (its own turns are checked in memory)."""

    @abstractmethod
    async def renew(self, project_id: str, tokens: Sequence[str], lease_s: float) -> None:
        """Push back the expiry of this process's leases for ``tokens``."""

    @abstractmethod
    async def publish(self, project_id: str, batches: Sequence[tuple[str, Batch]]) -> None:
        """Append ``(turn token, batch)`` pairs to the event log, and wake followers."""

    @abstractmethod
    async def finish(self, project_id: str, app_id: str, token: str, last: Optional[Batch]) -> None:
        """Publish a turn's last batch and end its lease in one transaction."""

    @abstractmethod
    async def current(self, project_id: str, app_id: str) -> Optional[TurnRecord]:
        """The conversation's current or last turn, if it has one."""

    @abstractmethod
    async def current_of(
        self, project_id: str, app_ids: Sequence[str]
    ) -> dict[str, Optional[TurnRecord]]:
        """:meth:`current` of several conversations of a project (each one's, or None), in one
        query (the watchers read every watched conversation of a project when it changed)."""

    @abstractmethod
    async def events(self, project_id: str, token: str, start: int) -> list[Batch]:
        """The published batches of a turn holding events numbered ``start`` and later."""

    @abstractmethod
    async def watch(self, project_id: str, app_id: str, token: str) -> None:
        """Note that a reader on this process follows turn ``token`` (see :meth:`watched`)."""

    @abstractmethod
    async def watched(self, project_id: str, app_id: str, token: str, within_s: float) -> bool:
        """True when a reader on some process followed turn ``token`` in the last ``within_s``
        seconds: its owner then does not stop it for lack of readers of its own."""

    @abstractmethod
    async def request_stop(self, project_id: str, app_id: str) -> bool:
        """Ask the owner of the conversation's running turn to stop it; False when none runs."""

    @abstractmethod
    async def stop_requests(self, project_id: str) -> list[str]:
        """Tokens of this process's running turns in the project that were asked to stop."""

    @abstractmethod
    async def prune(self, project_id: str, keep_s: float) -> None:
        """Drop the event logs of turns that ended more than ``keep_s`` seconds ago."""

    @abstractmethod
    async def wait(self, token: str, timeout: float) -> None:
        """Return when turn ``token`` may have new events, or after ``timeout`` seconds."""

    def on_stop_request(self, callback: Any) -> None:
        """Call ``callback(project_id, app_id)`` as soon as a stop request is made anywhere
        (engines with notifications; others are polled through :meth:`stop_requests`)."""
        return None  # (engines without notifications: the owner polls)

    # -- changes, for the watchers of ``GET /events`` (see :mod:`..watch`) ------------------

    def on_change(self, callback: Any) -> None:
        """Call ``callback(project_id, app_id)`` when a turn of conversation ``app_id``
        starts or ends anywhere, or a branch is made of the tree whose root is ``app_id``;
        ``callback(None, None)`` when such notifications may have been missed. An engine with
        notifications tells of every process's changes; SQLite of this process's own (the
        others are found through :meth:`change_mark`)."""
        return None

    async def change_mark(self, project_id: str) -> Any:
        """A value that moves whenever the project's conversations may have changed, in any
        process (cheap: asked every tick for each watched project); None when there is none
        (the watchers then read the conversations every time). A read creates no storage."""
        return None

    async def forget_changes(self, project_id: str) -> None:
        """Nobody in this process watches the project any more: free what :meth:`change_mark`
        holds for it."""
        return None

    @property
    def open_projects(self) -> int:
        """How many projects hold resources of their own (SQLite: an open file)."""
        return 0

    @property
    def notifies(self) -> bool:
        """True when the engine pushes wake-ups and stop requests (no polling needed)."""
        return False

    # -- owners (users behind an authenticating proxy) -------------------------------------

    @abstractmethod
    async def claim(self, project_id: str, app_id: str, user: str) -> bool:
        """Make ``user`` the owner of the conversation unless it has one, in one transaction;
        True when ``user`` owns it now. A conversation stored without an owner (before users
        were turned on) is claimed by nobody: False."""

    @abstractmethod
    async def owner_of(self, project_id: str, app_id: str) -> Optional[str]:
        """The conversation's owner; :data:`UNOWNED` for one stored without an owner; None
        when it has neither an owner nor a stored state (nobody has written it yet)."""

    @abstractmethod
    async def owners(self, project_id: str, app_ids: Sequence[str]) -> dict[str, str]:
        """The owners of those of ``app_ids`` that have one."""

    @abstractmethod
    async def list_owned(self, project_id: str, user: str, limit: int) -> list[ConversationSummary]:
        """The project's conversations owned by ``user``, newest first."""

    # -- notes (the save_note tool's; the store is the tools' NoteBook) ---------------------

    @abstractmethod
    async def add_note(self, project_id: str, app_id: str, text: str) -> dict[str, Any]:
        """Store a note made in conversation ``app_id``; the note as :meth:`notes` lists it:
        ``{"id", "text", "app_id", "created_at"}`` (``created_at`` ISO 8601 text, in UTC)."""

    @abstractmethod
    async def notes(
        self, project_id: str, *, owner: Optional[str] = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """The project's notes, newest first, at most ``limit``; with ``owner``, only those of
        conversations that user owns. A read creates no storage."""

    # -- titles (a conversation renamed) ----------------------------------------------------

    @abstractmethod
    async def rename(self, project_id: str, app_id: str, title: str) -> bool:
        """Give a stored conversation a title, which the list shows instead of its first
        message; False (nothing written) when no conversation ``app_id`` is stored."""

    # -- deleting a conversation ----------------------------------------------------------

    @abstractmethod
    async def delete(self, project_id: str, app_id: str) -> bool:
        """Delete a stored conversation (its state, messages and title) and remember that it
        was deleted, in one transaction; False (nothing written) when none is stored. Its
        branches keep their own messages; their summaries say their parent was deleted."""

    @abstractmethod
    async def is_deleted(self, project_id: str, app_id: str) -> bool:
        """True when conversation ``app_id`` was deleted (a read creates no storage)."""

    # -- finding conversations (full-text search, pages) ------------------------------------

    @abstractmethod
    async def find(
        self,
        project_id: str,
        words: Sequence[str],
        limit: int,
        offset: int = 0,
        owner: Optional[str] = None,
    ) -> list[ConversationSummary]:
        """The project's conversations (``owner``'s only, when given), newest first, skipping
        ``offset``, at most ``limit``; with ``words``, only those whose title or one of whose
        messages holds every word (each as a word prefix, case-insensitively), through the
        engine's full-text index. A read creates no storage."""
