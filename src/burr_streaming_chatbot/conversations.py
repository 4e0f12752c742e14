"""Conversations: a Burr ``Application`` built for each turn from the conversation's state,
which is persisted in the store, cached here between turns, and listed.

State is persisted after the steps that matter (see :class:`.SaveAfter`) through the store's
Burr persister, and every step is tracked in Burr's local tracking format so Burr's UI shows
each conversation; see :mod:`.storage.messages` and :mod:`.storage.burr_hooks` for how both
stay constant-size per step. Resuming reads one row and the messages, never the tracking log.

Another process may have answered a conversation since this one last did: a cached state is
used only when its sequence id is the one stored (the lease hands it over at no extra cost),
and every save is checked against the stored sequence id (:class:`.ConflictError`).

Between turns only the state is kept, not the application: building one from the shared graph
is cheap, while a kept application is many objects (its own copy of the graph, its builder,
its hooks) that every full garbage collection has to scan, and with a few hundred
conversations in memory those collections held every stream's next delta (figures in
``benchmarks/RESULTS.md``, "Streaming performance, fourth round: garbage collection").
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, NamedTuple, Optional

from burr.core import Application, ApplicationBuilder, State
from burr.core.application import ApplicationGraph
from burr.core.graph import Graph
from burr.core.persistence import AsyncBaseStateLoader, PersistedStateData

from .graph import ANSWER_SETTINGS, TERMINAL_ACTIONS, TOOL_ACTIONS
from .settings import Settings
from .storage.burr_hooks import ChatTrackingClient, SaveAfter
from .storage.interface import Key, Lease, Store
from .storage.messages import BRANCH, HISTORY, SEQUENCE
from .wire import BranchTree, ConversationSummary, TurnEvent

SAVED_AFTER = ("prompt", *TERMINAL_ACTIONS, *TOOL_ACTIONS)
"""The steps after which a conversation's state is persisted (see :class:`.SaveAfter`)."""


class Saved(NamedTuple):
    """A conversation between turns: its state and the sequence id of its last step."""

    state: State
    sequence_id: Optional[int]


class Conversations:
    """Builds each turn's application, keeps conversations' state between turns (LRU,
    bounded), and lists conversations."""

    def __init__(self, graph: Graph, settings: Settings, store: Store) -> None:
        self.graph = graph
        self.settings = settings
        self.store = store
        self._saved: OrderedDict[Key, Saved] = OrderedDict()
        self._running: dict[Key, Application] = {}
        self._public_graph = ApplicationGraph(
            actions=graph.actions,
            transitions=graph.transitions,
            entrypoint=graph.get_action("prompt"),  # type: ignore[arg-type]  # (it has one)
        )
        """The graph as Burr hands it to its tracker when an application is created."""

    @property
    def cached(self) -> int:
        """How many conversations' state is in memory."""
        return len(self._saved)

    async def _saved_state(self, key: Key, stored_sequence_id: Optional[int]) -> Saved:
        """The conversation's state: the cached one if it is what the store holds, else loaded."""
        saved = self._saved.get(key)
        if saved is not None and saved.sequence_id == stored_sequence_id:
            self._saved.move_to_end(key)
            return saved
        self._saved.pop(key, None)
        if stored_sequence_id is None:  # (the store holds no state: nothing to load)
            return Saved(State({HISTORY: []}), None)
        project_id, app_id = key
        loaded = await self.store.load_state(project_id, app_id)
        if loaded is None:
            return Saved(State({HISTORY: []}), None)
        return Saved(*loaded)

    async def open(
        self, project_id: str, app_id: str, lease: Optional[Lease] = None
    ) -> OpenApplication:
        """The conversation's Burr application, starting at ``prompt`` with its last state
        (Burr's tracker records the conversation); close it, or run a turn in it, with the
        :class:`OpenApplication` returned.

        ``lease`` is the one a turn holds; without one (a conversation only opened), the
        stored sequence id is read to check the cache. When the lease was taken over from a
        process that died mid-answer, the text that process had published is kept as an
        answer marked ``interrupted``, as if that process had been stopped.
        """
        key = (project_id, app_id)
        stored = lease.sequence_id if lease is not None else await self.store.sequence_id(*key)
        saved = await self._saved_state(key, stored)
        state = saved.state
        if lease is not None and lease.orphan is not None:
            state = await self._with_partial_answer(project_id, lease.orphan, state)
        tracker = self._tracker_for(project_id)
        save = SaveAfter(self.store, project_id, SAVED_AFTER, saved.sequence_id)
        app = await (
            ApplicationBuilder()
            .with_graph(self.graph)
            .with_state(state)
            .with_entrypoint("prompt")  # a turn always starts at `prompt`
            .with_hooks(save)
            .with_tracker(tracker)  # type: ignore[arg-type]  # (Burr names another SyncTrackingClient)
            .with_identifiers(app_id=app_id, sequence_id=saved.sequence_id)
            .abuild()
        )
        return OpenApplication(self, key, app)

    async def register(self, project_id: str, app_id: str, busy: Callable[[], bool]) -> None:
        """What :meth:`open` and closing the application do for a conversation only created,
        without building the application: Burr's tracker records the conversation (its
        folder, ``graph.json``, metadata, an empty log, as an application's creation writes
        them), and its state is cached for the next turn, unless ``busy()`` says a turn runs
        here (then dropped: that turn's state is newer)."""
        key = (project_id, app_id)
        saved = await self._saved_state(key, await self.store.sequence_id(*key))
        tracker = self._tracker_for(project_id)
        tracker.post_application_create(
            app_id=app_id,
            partition_key=None,
            state=saved.state,
            application_graph=self._public_graph,
            parent_pointer=None,
            spawning_parent_pointer=None,
        )
        self._keep(key, saved if not busy() else None)

    async def open_turn(self, project_id: str, app_id: str, lease: Lease) -> OpenApplication:
        """:meth:`open` for a turn holding ``lease``: from now until the turn leaves the
        :class:`OpenApplication`, :meth:`history` reads the turn's state."""
        opened = await self.open(project_id, app_id, lease)
        self._running[opened.key] = opened.app
        return opened

    async def _with_partial_answer(self, project_id: str, token: str, state: State) -> State:
        history = state.get(HISTORY, [])
        if not history or history[-1].get("role") not in ("user", "tool"):
            return state  # the dead turn saved its answer, or never saved its prompt
        batches = await self.store.events(project_id, token, 0)
        item = partial_answer([event for batch in batches for event in batch.events])
        if item is None:
            return state
        return state.merge(State({HISTORY: [*history, item]}))

    async def fork(
        self,
        project_id: str,
        app_id: str,
        at: int,
        before_save: Optional[Callable[[str], Awaitable[None]]] = None,
    ) -> str:
        """Make a branch of a conversation with its first ``at`` messages; returns its id.

        The branch is a Burr fork (``initialize_from(..., fork_from_app_id=...,
        fork_from_sequence_id=...)``) of the conversation at the step that wrote its message
        ``at - 1``, so Burr's tracker records the parent pointer (and the parent's child) as for
        any fork; its state records where it came from (:data:`.BRANCH`), which is how branches
        are listed. The original is not touched. Raises ``LookupError`` for a conversation
        that does not exist and ``IndexError`` for ``at`` beyond its messages.
        ``before_save(branch_id)`` runs once the fork is checked, before the branch is saved.
        """
        loaded = await self.store.load_state(project_id, app_id)
        if loaded is None:
            raise LookupError(app_id)
        stored_state = loaded[0]
        partition_key = self.store.partition_key(project_id)
        history = stored_state.get(HISTORY, [])
        if at > len(history):
            raise IndexError(at)
        kept = history[:at]
        parent_sequence_id = kept[-1].get(SEQUENCE) if kept else None
        origin = stored_state.get(BRANCH) or {}
        branch_id = new_conversation_id()
        branch = {
            "root": origin.get("root") or app_id,
            "parent": app_id,
            "at": at,
            "parent_sequence_id": parent_sequence_id,
            "created": time.time(),
        }
        fields = {HISTORY: kept, BRANCH: branch}
        if stored_state.get(ANSWER_SETTINGS):  # (a branch answers as its original does now)
            fields[ANSWER_SETTINGS] = stored_state[ANSWER_SETTINGS]
        fork_point = ForkPoint(partition_key, State(fields), parent_sequence_id)
        tracker = self._tracker_for(project_id)
        app = await (
            ApplicationBuilder()
            .with_graph(self.graph)
            .initialize_from(
                fork_point,
                resume_at_next_action=False,
                default_state={HISTORY: []},
                default_entrypoint="prompt",
                fork_from_app_id=app_id,
                fork_from_partition_key=partition_key,  # type: ignore[arg-type]  # (None: Burr's default)
                fork_from_sequence_id=parent_sequence_id,  # type: ignore[arg-type]  # (None: the latest)
            )
            .with_identifiers(app_id=branch_id, partition_key=partition_key)  # type: ignore[arg-type]
            .with_tracker(tracker)  # type: ignore[arg-type]  # (Burr names another SyncTrackingClient)
            .abuild()
        )
        try:
            if before_save is not None:
                await before_save(branch_id)
            await self.store.save_state(
                project_id,
                branch_id,
                fork_point.sequence_id,
                "prompt",
                app.state,
                expected_sequence_id=None,
            )
        finally:
            tracker.close()
            _release(app)
        return branch_id

    async def tree(self, project_id: str, app_id: str) -> BranchTree:
        """The tree of branches ``app_id`` belongs to (``LookupError`` when it does not exist).

        Read from the conversations' summaries, never their messages: asked with a branch's
        id, the store returns that branch alone, which names its root."""
        branches = await self.store.branches(project_id, app_id)
        own = next((b for b in branches if b.app_id == app_id), None)
        if own is None:
            raise LookupError(app_id)
        if own.root is not None and own.root != app_id:
            branches = await self.store.branches(project_id, own.root)
        return BranchTree(root=own.root or app_id, branches=branches)

    def _tracker_for(self, project_id: str) -> ChatTrackingClient:
        """A new Burr tracker for one of the project's applications."""
        return ChatTrackingClient(
            project=project_id,
            storage_dir=str(self.settings.storage_dir),
            recent_messages=self.settings.tracked_messages,
        )

    def _keep(self, key: Key, saved: Optional[Saved]) -> None:
        """Cache ``saved`` as the conversation's state for its next turn (the least recently
        used dropped past the cache's size), or, with None, drop what was cached."""
        if saved is None:
            self._saved.pop(key, None)
            return
        self._saved[key] = saved
        self._saved.move_to_end(key)
        while len(self._saved) > self.settings.cache_size:
            self._saved.popitem(last=False)

    def _close(self, key: Key, app: Application, keep: bool) -> None:
        """End an application (see :meth:`OpenApplication.close`)."""
        if self._running.get(key) is app:
            del self._running[key]
        self._keep(key, Saved(app.state, app.sequence_id) if keep else None)
        tracker = _tracker(app)
        if tracker is not None:
            tracker.close()
        _release(app)

    async def history(self, project_id: str, app_id: str) -> list[dict[str, Any]]:
        """The conversation's messages; empty for a conversation that does not exist yet.

        While this process answers it, the running application's state; otherwise what is
        stored (another process may have answered it since this one cached it)."""
        app = self._running.get((project_id, app_id))
        if app is not None:
            return list(app.state.get(HISTORY, []))
        return await self.store.messages(project_id, app_id)

    async def list(self, project_id: str, limit: int = 200) -> list[ConversationSummary]:
        """The project's conversations that have at least one step, newest first."""
        return await self.store.list_conversations(project_id, limit)

    def clear(self) -> None:
        """Forget the cached states (the store is closed by its owner)."""
        self._saved.clear()

    def forget(self, project_id: str, app_id: str) -> None:
        """Drop a conversation's cached state (it was deleted)."""
        self._saved.pop((project_id, app_id), None)


class OpenApplication:
    """A conversation's Burr application, opened by :meth:`Conversations.open` (in the request,
    so that a refusal comes before anything streams) and finished once, by whoever holds it.

    A turn runs in it as an async context manager (``async with opened as app:``), in the task
    that runs the turn; leaving finishes it: a turn that ended normally keeps its state for the
    next turn, while after any other end (an exception, a cancellation) the next turn reloads
    what was persisted, which is then the truth. :meth:`close` finishes it without a turn.
    """

    __slots__ = ("_closed", "_conversations", "app", "key")

    def __init__(self, conversations: Conversations, key: Key, app: Application) -> None:
        self._conversations = conversations
        self.key = key
        self.app = app
        self._closed = False

    async def __aenter__(self) -> Application:
        return self.app

    async def __aexit__(self, exc_type: Optional[type[BaseException]], *_: object) -> None:
        self.close(keep=exc_type is None)

    def flush_tracking(self) -> None:
        """Write the lines Burr's tracker has kept so far to its log (a turn does before its
        last event, so a client that has the whole answer finds every step in the log)."""
        tracker = _tracker(self.app)
        if tracker is not None:
            tracker.flush()

    def close(self, keep: bool) -> None:
        """Finish the application (once; again does nothing): keep its state for the next turn
        (``keep``), or drop it so the next turn reloads the persisted one; close its tracking
        log and free it."""
        if not self._closed:
            self._closed = True
            self._conversations._close(self.key, self.app, keep)


def partial_answer(events: Sequence[TurnEvent]) -> Optional[dict[str, Any]]:
    """The answer a turn's recorded events had streamed, marked ``interrupted``; None when it
    streamed no text or ended (its end was saved by the step that sent it). Only the text of
    the last step counts: an earlier answer of the turn (one that called tools) was saved by
    its step."""
    pieces: list[str] = []
    thoughts: list[str] = []
    mode = "unknown"
    for event in events:
        if event.type == "action":
            pieces, thoughts = [], []
        elif event.type == "delta":
            pieces.append(event.data)
        elif event.is_last:
            return None
        elif event.type == "mode":
            mode = event.parsed()["value"]
        elif event.type == "reasoning":
            thoughts.append(event.parsed()["value"])
    if not pieces:
        return None
    item = {
        "role": "assistant",
        "content": "".join(pieces),
        "type": "code" if mode == "generate_code" else "text",
        "mode": mode,
        "model": None,
        "interrupted": True,
    }
    if thoughts:
        item["reasoning"] = "".join(thoughts)
    return item


def new_conversation_id() -> str:
    """A new conversation's id, as the page makes them (16 of ``A-Z a-z 0-9 _ -``)."""
    return secrets.token_urlsafe(12)


class ForkPoint(AsyncBaseStateLoader):
    """What Burr loads a fork from: a conversation's state as it was at a message (this
    project's persisters keep only the latest state row, and the messages, which is enough to
    rebuild it)."""

    def __init__(
        self, partition_key: Optional[str], state: State, sequence_id: Optional[int]
    ) -> None:
        self.partition_key = partition_key
        self.state = state
        self.sequence_id = -1 if sequence_id is None else sequence_id
        """Burr's sequence id of the fork's state: the first step of the branch is the next one
        (-1 for a branch of no messages, which starts at 0 as a new conversation does)."""

    async def load(
        self,
        partition_key: str,
        app_id: Optional[str],
        sequence_id: Optional[int] = None,
        **kwargs: Any,
    ) -> Optional[PersistedStateData]:
        """The state at the fork point, whatever is asked (Burr asks for the parent's)."""
        return PersistedStateData(
            partition_key=self.partition_key,  # type: ignore[typeddict-item]  # (None as Burr's)
            app_id=app_id or "",
            sequence_id=self.sequence_id,
            position="prompt",
            state=self.state,
            created_at="",
            status="completed",
        )

    async def list_app_ids(self, partition_key: str, **kwargs: Any) -> list[str]:
        """Not used for a fork."""
        return []


def _tracker(app: Application) -> Optional[ChatTrackingClient]:
    """The application's tracker, when it is this project's."""
    tracker = app.builder.tracker if app.builder is not None else None
    return tracker if isinstance(tracker, ChatTrackingClient) else None


def _release(app: Application) -> None:
    """Break the one reference cycle of a Burr application (it reaches itself through its
    dependency factories, apache-burr 0.42 and 0.43), so reference counting frees it as soon as the
    turn lets go, instead of leaving its objects for the full garbage collector."""
    factories = getattr(app, "_dependency_factory", None)
    if isinstance(factories, dict):
        factories.clear()
