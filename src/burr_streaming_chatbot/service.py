"""``ChatService``: everything the chatbot does, without HTTP.

The endpoints of :mod:`.router` parse a request, call one method here and pick an encoder for
the answer; everything else is here, and can be built and driven from a test or a script
without a server::

    service = ChatService(Settings(offline=True))
    await service.open()
    turn = await service.start_turn("demo", "chat-1", "What is Burr?")
    async for first, events in turn.follow():
        ...
    await service.close()

A request the service does not carry out raises a :class:`Refused` subclass. They are
``HTTPException`` s with the status that says why, so FastAPI answers them as they are, and
nothing has been written when one is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import re
import shutil
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal, Optional

from fastapi import HTTPException, status

from .answering import TurnRequest, approval_message, turn_events
from .conversations import Conversations
from .export import exported_items, usage_of
from .feedback import Answer, Feedback, answers, note_of
from .graph import ANSWER_SETTINGS, PENDING, awaiting_approval, build_graph
from .limits import ClientLimits, LimitReached, Slot, StreamKind
from .llm import OFFLINE_HELP, ChatModel, UpstreamError, create_chat_model
from .settings import Settings, public_url
from .sse import KEEPALIVE
from .storage.burr_hooks import forget_folder
from .storage.engines import open_store
from .storage.interface import Key, StoreError, is_store_error
from .tools import Toolbox, load_toolbox
from .turns import FollowedTurn, LocalTurn, TurnRunner, new_token
from .watch import Watchers
from .wire import (
    AnswerSettings,
    AnswerSettingsInput,
    ApprovalRequest,
    BranchTree,
    ConversationSummary,
    Decision,
    DeleteResult,
    ExportedConversation,
    FeedbackInfo,
    GraphInfo,
    GraphTransition,
    ModelInfo,
    ModelList,
    NoteInfo,
    ServerStatus,
)

logger = logging.getLogger(__name__)

IfBusy = Literal["reject", "interrupt", "enqueue"]
"""What a prompt does when an answer is already streaming in its conversation."""
MAX_QUERY_CHARS = 200
"""The longest search text accepted (``GET /conversations?q=``)."""
MAX_QUERY_WORDS = 16
"""The most words a search text may hold."""
MAX_QUEUED = 3
"""Prompts that may wait for one conversation in one process (``if_busy="enqueue"``)."""
OWNERS_KEPT = 10_000
"""Conversations whose owner each process keeps in memory."""
QUEUE_WAIT_S = 300.0
"""The longest a queued prompt waits for the answers before it (then :class:`Busy`)."""


class Refused(HTTPException):
    """A request the service did not carry out; nothing was written. ``status_code`` and
    ``detail`` say why, as an HTTP answer would."""

    code = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, headers: Optional[dict[str, str]] = None) -> None:
        super().__init__(self.code, detail, headers)


class Invalid(Refused):
    """A bad prompt, id or body (422)."""

    code = status.HTTP_422_UNPROCESSABLE_CONTENT


class NotFound(Refused):
    """No such conversation, or no answer to follow (404)."""

    code = status.HTTP_404_NOT_FOUND


class Busy(Refused):
    """An answer is already streaming in the conversation, here or in another process (409)."""

    code = status.HTTP_409_CONFLICT

    def __init__(
        self,
        detail: str = "A reply is already streaming in this conversation; wait for it or stop it.",
    ) -> None:
        super().__init__(detail)


class NotPending(Refused):
    """A decision on a tool call that does not wait for one (decided or answered already)
    (409)."""

    code = status.HTTP_409_CONFLICT


class Unavailable(Refused):
    """The server is full, or the store failed; try again (503 with ``Retry-After``)."""

    code = status.HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": "1"})


RETRY_AFTER_S = 2
"""What ``Retry-After`` says to a client past one of its limits."""


class TooMany(Refused):
    """The client is past one of its limits (429 with ``Retry-After``); the detail names it."""

    code = status.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"Retry-After": str(RETRY_AFTER_S)})


def checked_decisions(state: Any, decisions: list[Decision]) -> None:
    """Nothing when every decision is for a tool call that waits for one; else
    :class:`NotFound` (a call the conversation never made) or :class:`NotPending`."""
    waiting = {call["id"] for call in awaiting_approval(state.get(PENDING) or [])}
    made = {
        call["id"]
        for item in state.get("chat_history", [])
        for call in item.get("tool_calls") or ()
    }
    for decision in decisions:
        if decision.tool_call_id in waiting:
            continue
        if decision.tool_call_id in made:
            raise NotPending(
                f"Tool call {decision.tool_call_id} does not wait for approval: it was decided "
                "or answered already."
            )
        raise NotFound(f"No tool call {decision.tool_call_id} in this conversation.")


@contextlib.contextmanager
def too_many_past_a_limit() -> Iterator[None]:
    """Turn :class:`~.limits.LimitReached` into :class:`TooMany`."""
    try:
        yield
    except LimitReached as exc:
        raise TooMany(str(exc)) from None


@contextlib.contextmanager
def unavailable_when_the_store_fails() -> Iterator[None]:
    """Turn a failure of the store into :class:`Unavailable` (the reason is logged, not
    sent); anything else goes through as it is."""
    try:
        yield
    except Exception as exc:
        if not is_store_error(exc):
            raise
        logger.warning("The store failed: %s", exc)
        raise Unavailable("The conversation store is unavailable; try again soon.") from None


class ChatService:
    """The chatbot of one process: its model, its tools, its graph (built once, shared by every
    conversation), its store, its conversations and its running turns.

    :meth:`open` before use and :meth:`close` after (the router's lifespan does both).
    """

    def __init__(
        self,
        settings: Optional[Settings] = None,
        llm: Optional[ChatModel] = None,
        toolbox: Optional[Toolbox] = None,
    ) -> None:
        self.settings = settings or Settings()
        self.llm = llm or create_chat_model(self.settings)
        self.store = open_store(self.settings)
        if toolbox is None:
            toolbox = load_toolbox() if self.settings.tools else Toolbox(())
        self.toolbox = toolbox
        """The tools answers may call (:mod:`.tools`): ``toolbox``, else the demo tools and
        those installed packages register (none with ``BURR_CHATBOT_TOOLS=false``)."""
        self.graph = build_graph(
            self.llm,
            self.toolbox,
            self.store,
            max_tool_rounds=self.settings.max_tool_rounds,
            tool_timeout_s=self.settings.tool_timeout_s,
        )
        self.turns = TurnRunner(
            grace_s=self.settings.resume_grace_s,
            store=self.store,
            lease_s=self.settings.lease_s,
            publish_s=self.settings.publish_interval_s,
        )
        self.conversations = Conversations(self.graph, self.settings, self.store)
        self.watchers = Watchers(self.store)
        """One watcher per conversation followed by this process's tabs (``GET /events``)."""
        self._starting: set[Key] = set()
        """Conversations whose turn is being set up in this process (lease, state)."""
        self._queued: dict[Key, int] = {}
        """Prompts of this process waiting for their conversation (``if_busy="enqueue"``)."""
        self._queue_locks: dict[Key, asyncio.Lock] = {}
        self._owners: OrderedDict[Key, str] = OrderedDict()
        """Owners of conversations read or claimed (they never change)."""
        self.limits = ClientLimits(
            answers=self.settings.max_answers_per_client,
            queued=self.settings.max_queued_per_client,
            streams=self.settings.max_streams_per_client,
        )
        """What each client holds in this process (``client``: the user, else its address)."""

    async def open(self) -> None:
        """Connect to the store and create its schema; raises :class:`~.storage.interface.StoreError`
        (logged in one line) when that fails."""
        try:
            await self.store.open()
        except StoreError as exc:
            logger.error("burr-streaming-chatbot cannot start: %s", exc)
            raise

    async def close(self) -> None:
        """Stop the running answers (they keep their text, marked interrupted), then close the
        store and the model's HTTP client."""
        await self.turns.stop_all()
        self.conversations.clear()
        await self.watchers.close()
        await self.store.aclose()
        await self.llm.aclose()

    # What the server is

    def model_info(self) -> ModelInfo:
        """Which models answer, and whether it is the offline demo model."""
        return ModelInfo(
            offline=self.llm.offline,
            router_model=self.llm.router_name,
            answer_model=self.llm.answer_name,
            base_url=public_url(self.llm.base_url) if self.llm.base_url else None,
            project_id=self.settings.project_id,
            help=OFFLINE_HELP if self.llm.offline else None,
        )

    def graph_info(self) -> GraphInfo:
        """The Burr state machine every conversation runs."""
        return GraphInfo(
            entrypoint="prompt",
            actions=[a.name for a in self.graph.actions],
            streaming_actions=[a.name for a in self.graph.actions if a.streaming],
            transitions=[
                GraphTransition(source=t.from_.name, target=t.to.name, condition=t.condition.name)
                for t in self.graph.transitions
            ],
        )

    def status(self) -> ServerStatus:
        """What this process holds right now."""
        return ServerStatus(
            streaming=len(self.turns.live),
            listeners=sum(turn.listeners for turn in self.turns.live.values()),
            cached_conversations=self.conversations.cached,
            max_streams=self.settings.max_streams,
            tasks=len(asyncio.all_tasks()),
            frozen_objects=gc.get_freeze_count(),
            open_projects=self.store.open_projects,
            event_streams=self.limits.open_streams("events"),
            resume_streams=self.limits.open_streams("stream"),
            watched_conversations=self.watchers.watching,
        )

    # Conversations

    async def conversation_list(
        self,
        project_id: str,
        *,
        user: Optional[str] = None,
        q: Optional[str] = None,
        limit: int = 200,
        offset: int = 0,
    ) -> list[ConversationSummary]:
        """The project's conversations (``user``'s only, when given), newest first; with
        ``q``, those that hold its words (see :meth:`find`), paged by ``limit`` and
        ``offset``. :class:`Unavailable` if the store fails."""
        return await self.find(project_id, q or "", limit, offset, user=user)

    async def create(self, project_id: str, app_id: str, *, user: Optional[str] = None) -> str:
        """Create (or load) a conversation; Burr's tracker records it. Returns its id;
        :class:`NotFound` when it is another user's, :class:`Unavailable` if the store
        fails."""
        with unavailable_when_the_store_fails():
            await self._check_not_deleted(project_id, app_id)
            if user is not None:
                await self._claim(project_id, app_id, user)
            # (while a turn runs here, its state is newer than the one just loaded)
            busy = functools.partial(self.turns.busy, (project_id, app_id))
            await self.conversations.register(project_id, app_id, busy)
        return app_id

    async def history(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> list[dict[str, Any]]:
        """The conversation's messages (empty when it does not exist); :class:`NotFound` when
        it is another user's, :class:`Unavailable` if the store fails."""
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                return []
            history = await self.conversations.history(project_id, app_id)
            if not history:
                await self._check_not_deleted(project_id, app_id)
            return history

    async def fork(
        self, project_id: str, app_id: str, at: int, *, user: Optional[str] = None
    ) -> str:
        """A new branch of the conversation with its first ``at`` messages (Burr's fork);
        returns the branch's id. With ``user``, the conversation must be theirs, and so is the
        branch. :class:`NotFound`, or :class:`Invalid` for an ``at`` past the end."""

        async def claim_branch(branch_id: str) -> None:
            assert user is not None
            await self._claim(project_id, branch_id, user)

        try:
            with unavailable_when_the_store_fails():
                if await self._unwritten_for(user, project_id, app_id):
                    raise LookupError(app_id)
                return await self.conversations.fork(
                    project_id, app_id, at, claim_branch if user is not None else None
                )
        except IndexError:  # (before LookupError, which it is)
            raise Invalid(f"at={at} is beyond the conversation's messages.") from None
        except LookupError:
            raise NotFound("No such conversation.") from None

    async def branches(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> BranchTree:
        """The tree of branches the conversation belongs to (``user``'s branches only, when
        given); :class:`NotFound` if none."""
        try:
            with unavailable_when_the_store_fails():
                if await self._unwritten_for(user, project_id, app_id):
                    raise LookupError(app_id)
                tree = await self.conversations.tree(project_id, app_id)
                if user is not None:
                    ids = [branch.app_id for branch in tree.branches]
                    owners = await self.store.owners(project_id, ids) if ids else {}
                    tree.branches = [b for b in tree.branches if owners.get(b.app_id) == user]
                return tree
        except LookupError:
            raise NotFound("No such conversation.") from None

    async def changes(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> AsyncIterator[bytes]:
        """The conversation's changes made by any tab or process, as SSE blocks, until the
        reader goes away (see :mod:`.changes`). With ``user``: :class:`NotFound` for another
        user's conversation; one nobody wrote yet is followed until its first change shows
        it is someone else's."""
        if user is not None:
            with unavailable_when_the_store_fails():
                visible = await self._visible(project_id, app_id, user)
        try:
            root = (await self.branches(project_id, app_id, user=user)).root
        except NotFound:
            root = app_id  # (not saved yet: its first prompt will be a change)
        blocks = self.watchers.follow(project_id, app_id, root, self.settings.keepalive_s)
        if user is None or visible == "mine":
            return blocks
        return self._while_visible(blocks, project_id, app_id, user)

    async def _while_visible(
        self, blocks: AsyncIterator[bytes], project_id: str, app_id: str, user: str
    ) -> AsyncIterator[bytes]:
        """``blocks`` of a conversation nobody owned when they were asked for, until one is
        not ``user``'s to see."""
        async for block in blocks:
            if block != KEEPALIVE:
                with unavailable_when_the_store_fails():
                    if await self._visible(project_id, app_id, user) != "mine":
                        return
            yield block

    # Owners (users behind an authenticating proxy)

    async def _visible(self, project_id: str, app_id: str, user: str) -> Literal["mine", "new"]:
        """``mine`` for ``user``'s conversation, ``new`` for one nobody wrote yet;
        :class:`NotFound` for another user's, or one stored before users were on."""
        key = (project_id, app_id)
        owner = self._owners.get(key)
        if owner is None:
            owner = await self.store.owner_of(project_id, app_id)
            if owner is None:
                return "new"
            self._remember_owner(key, owner)
        if owner != user:
            raise NotFound("No such conversation.")
        return "mine"

    async def _unwritten_for(self, user: Optional[str], project_id: str, app_id: str) -> bool:
        """With users on: True when nobody has written the conversation yet (``user`` then sees
        it as empty), False when it is ``user``'s, :class:`NotFound` when it is another's.
        Always False with users off."""
        return user is not None and await self._visible(project_id, app_id, user) == "new"

    async def _claim(self, project_id: str, app_id: str, user: str) -> None:
        """Make the conversation ``user``'s if nobody wrote it yet; :class:`NotFound` when it
        is another user's (or was stored before users were on)."""
        key = (project_id, app_id)
        if self._owners.get(key) == user:
            return
        if not await self.store.claim(project_id, app_id, user):
            raise NotFound("No such conversation.")
        self._remember_owner(key, user)

    def _remember_owner(self, key: Key, owner: str) -> None:
        # An owner never changes: kept in memory, bounded.
        self._owners[key] = owner
        self._owners.move_to_end(key)
        while len(self._owners) > OWNERS_KEPT:
            self._owners.popitem(last=False)

    def open_stream(self, kind: StreamKind, client: Optional[str]) -> Slot:
        """Count an event stream ``client`` opens (release the slot when it closes);
        :class:`TooMany` when the client has too many open."""
        with too_many_past_a_limit():
            return self.limits.open_stream(kind, client)

    # Turns

    def checked_prompt(self, text: str) -> str:
        """``text`` if it may be sent to the model, else :class:`Invalid`."""
        if not text.strip():
            raise Invalid("The prompt is blank.")
        if "\x00" in text:
            raise Invalid("The prompt contains a NUL character (U+0000).")
        limit = self.settings.max_prompt_chars
        if len(text) > limit:
            raise Invalid(f"The prompt has {len(text)} characters; the limit is {limit}.")
        return text

    async def start_turn(
        self,
        project_id: str,
        app_id: str,
        prompt: str,
        history_after: int = 0,
        if_busy: IfBusy = "reject",
        *,
        user: Optional[str] = None,
        client: Optional[str] = None,
    ) -> LocalTurn:
        """Start answering ``prompt`` in a task of its own and return the turn (follow it for
        its events). While an answer streams in the conversation, anywhere: ``reject`` raises
        :class:`Busy`, ``interrupt`` stops it (keeping its text, marked interrupted) first,
        ``enqueue`` waits for it (at most :data:`MAX_QUEUED` waiting, then :class:`Busy`).
        :class:`Unavailable` when the server is full or the store fails; :class:`Invalid` for
        a bad prompt; :class:`TooMany` when ``client`` (``user`` unless given) has too many
        answers running or prompts waiting. Nothing is written before the turn starts."""
        prompt = self.checked_prompt(prompt)
        client = client if client is not None else user
        with unavailable_when_the_store_fails():
            await self._check_not_deleted(project_id, app_id)
        if user is not None:
            with too_many_past_a_limit():  # (refused before the claim writes anything)
                self.limits.check("queued" if if_busy == "enqueue" else "answers", client)
            with unavailable_when_the_store_fails():
                await self._claim(project_id, app_id, user)
        if if_busy == "interrupt":
            return await self._start_interrupting(project_id, app_id, prompt, history_after, client)
        if if_busy == "enqueue":
            return await self._start_when_free(project_id, app_id, prompt, history_after, client)
        return await self._start(project_id, app_id, prompt, history_after, client)

    async def start_approval(
        self,
        project_id: str,
        app_id: str,
        decisions: list[Decision],
        history_after: int = 0,
        *,
        user: Optional[str] = None,
        client: Optional[str] = None,
    ) -> LocalTurn:
        """Start the turn that carries a person's ``decisions`` on tool calls waiting for
        approval: each approved call runs, each denied one is recorded as such, and the answer
        goes on (follow the turn for its events), in this process whichever one asked.
        :class:`Invalid` without decisions, or with two for one call; :class:`NotFound` for a call the conversation never
        made (or another user's conversation); :class:`NotPending` for one that does not wait
        (decided or answered already); :class:`Busy` while an answer streams in it;
        :class:`TooMany` past the client's limits. Nothing is written before the turn starts."""
        if not decisions:
            raise Invalid("No decision given.")
        if len({decision.tool_call_id for decision in decisions}) < len(decisions):
            raise Invalid("Two decisions for one tool call.")
        client = client if client is not None else user
        if user is not None:
            with too_many_past_a_limit():
                self.limits.check("answers", client)
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                raise NotFound("No such tool call in this conversation.")
            self._check_free((project_id, app_id))
            loaded = await self.store.load_state(project_id, app_id)
        if loaded is None:
            raise NotFound("No such conversation.")
        checked_decisions(loaded[0], decisions)
        return await self._start(project_id, app_id, None, history_after, client, decisions)

    async def pending_approvals(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> list[ApprovalRequest]:
        """The conversation's tool calls waiting for a person's decision (none when it does not
        exist); :class:`NotFound` when it is another user's."""
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                return []
            loaded = await self.store.load_state(project_id, app_id)
        if loaded is None:
            return []
        return [
            ApprovalRequest(
                id=call["id"],
                name=call["name"],
                arguments=call["arguments"],
                message=approval_message(call),
            )
            for call in awaiting_approval(loaded[0].get(PENDING) or [])
        ]

    async def notes(self, project_id: str, *, user: Optional[str] = None) -> list[NoteInfo]:
        """The notes tools saved in the project (from ``user``'s conversations only, when
        given), newest first."""
        with unavailable_when_the_store_fails():
            notes = await self.store.notes(project_id, owner=user)
        return [NoteInfo(**note) for note in notes]

    async def find_turn(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> Optional[FollowedTurn]:
        """The conversation's running answer, else its recently finished one, wherever it ran
        (None when there is neither); :class:`NotFound` when it is another user's."""
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                return None
            return await self.turns.find((project_id, app_id))

    async def stop_turn(self, project_id: str, app_id: str, *, user: Optional[str] = None) -> bool:
        """Stop the answer streaming in the conversation, wherever it runs; its text so far is
        kept, marked interrupted. False when nothing was streaming; :class:`NotFound` when it
        is another user's."""
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                return False
            return await self.turns.stop((project_id, app_id))

    async def _start(
        self,
        project_id: str,
        app_id: str,
        prompt: Optional[str],
        history_after: int,
        client: Optional[str],
        decisions: Optional[list[Decision]] = None,
    ) -> LocalTurn:
        key = (project_id, app_id)
        self._check_free(key)
        with too_many_past_a_limit():
            slot = self.limits.take("answers", client)
        self._starting.add(key)  # (this process's other requests: checked in memory)
        token = new_token()
        try:
            with unavailable_when_the_store_fails():
                lease = await self.store.acquire(project_id, app_id, token, self.settings.lease_s)
                if lease is None:  # answering in another process
                    raise Busy()
                try:
                    opened = await self.conversations.open_turn(project_id, app_id, lease)
                except BaseException:
                    with contextlib.suppress(Exception):  # (free the conversation again)
                        await self.store.finish(project_id, app_id, token, None)
                    raise
        except BaseException:
            slot.release()
            raise
        finally:
            self._starting.discard(key)
        request = TurnRequest(
            project_id, app_id, opened, prompt, history_after, decisions=decisions
        )
        turn = self.turns.begin(key, token, turn_events(request))
        assert turn.task is not None  # (started by begin)
        turn.task.add_done_callback(lambda _: slot.release())
        return turn

    def _check_free(self, key: Key) -> None:
        if self.turns.busy(key) or key in self._starting:
            raise Busy()
        limit = self.settings.max_streams
        if len(self.turns.live) + len(self._starting) >= limit:
            raise Unavailable(f"The server is answering {limit} prompts already; try again soon.")

    async def _start_interrupting(
        self, project_id: str, app_id: str, prompt: str, history_after: int, client: Optional[str]
    ) -> LocalTurn:
        for _ in range(3):  # (another prompt may take the conversation between stop and start)
            try:
                return await self._start(project_id, app_id, prompt, history_after, client)
            except Busy:
                pass
            await self.stop_turn(
                project_id, app_id
            )  # (waits until the stopped turn recorded its end)
        raise Busy()

    async def _start_when_free(
        self, project_id: str, app_id: str, prompt: str, history_after: int, client: Optional[str]
    ) -> LocalTurn:
        key = (project_id, app_id)
        if self._queued.get(key, 0) >= MAX_QUEUED:
            raise Busy(
                f"{MAX_QUEUED} prompts are already waiting in this conversation; try again later."
            )
        with too_many_past_a_limit():
            waiting = self.limits.take("queued", client)
        self._queued[key] = self._queued.get(key, 0) + 1
        line = self._queue_locks.setdefault(
            key, asyncio.Lock()
        )  # (FIFO: first queued, first answered)
        try:
            async with line:
                deadline = time.monotonic() + QUEUE_WAIT_S
                while True:
                    try:
                        return await self._start(project_id, app_id, prompt, history_after, client)
                    except Busy:
                        if time.monotonic() > deadline:
                            raise
                    await self._wait_until_free(key)
        finally:
            waiting.release()
            self._queued[key] -= 1
            if not self._queued[key]:
                del self._queued[key]
                self._queue_locks.pop(key, None)

    async def _wait_until_free(self, key: Key) -> None:
        turn = self.turns.live.get(key)
        if turn is not None and turn.task is not None:
            await asyncio.wait([turn.task], timeout=QUEUE_WAIT_S)
            return
        with unavailable_when_the_store_fails():
            record = await self.store.current(*key)
            if record is not None and not (record.done or record.expired):
                await self.store.wait(record.token, 0.1)
            else:
                await asyncio.sleep(0.02)  # (being set up here or elsewhere: look again soon)

    # A conversation's model, system prompt and temperature

    _models: Optional[tuple[float, ModelList]] = None
    """The last answer of :meth:`models`, and when it is stale (``time.monotonic()``)."""
    _models_lock: Optional[asyncio.Lock] = None

    async def models(self) -> ModelList:
        """The models a conversation may answer with: the model server's list (``/v1/models``),
        the offline model when offline, or the configured answer model alone (``source``
        ``configured``) when the server fails. Kept ``models_cache_s`` (a failure: 5 s at
        most), and asked once however many want it at once."""
        if self._models_lock is None:
            self._models_lock = asyncio.Lock()
        async with self._models_lock:
            if self._models is not None and time.monotonic() < self._models[0]:
                return self._models[1]
            keep_s = self.settings.models_cache_s
            source: Literal["server", "offline", "configured"]
            try:
                names = await self.llm.list_models()
                source = "offline" if self.llm.offline else "server"
            except UpstreamError as exc:
                logger.warning("The model server did not list its models: %s", exc.message)
                names, source, keep_s = [self.llm.answer_name], "configured", min(keep_s, 5.0)
            listed = ModelList(models=names, default=self.llm.answer_name, source=source)
            self._models = (time.monotonic() + keep_s, listed)
            return listed

    async def checked_answer_settings(self, changes: AnswerSettingsInput) -> dict[str, Any]:
        """The fields ``changes`` sets, as they are to be stored (a blank system prompt: none);
        :class:`Invalid` for a system prompt too long or with NUL, or a model the server does
        not list (any name when it could not say; the configured model always)."""
        chosen = changes.model_dump(include=changes.model_fields_set)
        prompt = chosen.get("system_prompt")
        if prompt is not None:
            limit = self.settings.max_system_prompt_chars
            if len(prompt) > limit:
                raise Invalid(
                    f"The system prompt has {len(prompt)} characters; the limit is {limit}."
                )
            if "\x00" in prompt:
                raise Invalid("The system prompt contains a NUL character (U+0000).")
            chosen["system_prompt"] = prompt if prompt.strip() else None
        model = chosen.get("model")
        if model is not None:
            if not model.isprintable() or model != model.strip():
                raise Invalid("The model's name has control characters or spaces around it.")
            listed = await self.models()
            if (
                listed.source != "configured"
                and model not in listed.models
                and model != self.llm.answer_name
            ):
                raise Invalid(
                    f"The model server has no model {model!r}; see GET /models for its models."
                )
        return chosen

    async def answer_settings(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> AnswerSettings:
        """The conversation's answer settings (all null, the server's defaults, when it sets
        none or does not exist); :class:`NotFound` when it is another user's."""
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                return AnswerSettings(model=None, system_prompt=None, temperature=None)
            loaded = await self.store.load_state(project_id, app_id)
        chosen = (loaded[0].get(ANSWER_SETTINGS) if loaded is not None else None) or {}
        return AnswerSettings(
            model=chosen.get("model"),
            system_prompt=chosen.get("system_prompt"),
            temperature=chosen.get("temperature"),
        )

    async def change_answer_settings(
        self,
        project_id: str,
        app_id: str,
        changes: AnswerSettingsInput,
        *,
        user: Optional[str] = None,
    ) -> AnswerSettings:
        """Change the conversation's answer settings (the fields ``changes`` sets; null: back
        to the default) in its Burr state, which its next answers read; returns them all.

        Written as a state of its own, one sequence id after the last step's (so every
        process's cached state is seen to be old), under the conversation's lease: while an
        answer streams in it, anywhere, :class:`Busy`. :class:`Invalid` for bad settings
        (:meth:`checked_answer_settings`), :class:`NotFound` for another user's conversation;
        nothing is written then."""
        chosen = await self.checked_answer_settings(changes)
        key = (project_id, app_id)
        if self.turns.busy(key) or key in self._starting:
            raise Busy()
        self._starting.add(key)
        token = new_token()
        try:
            with unavailable_when_the_store_fails():
                if user is not None:
                    await self._claim(project_id, app_id, user)
                lease = await self.store.acquire(project_id, app_id, token, self.settings.lease_s)
                if lease is None:  # answering in another process
                    raise Busy()
                try:
                    opened = await self.conversations.open(project_id, app_id, lease)
                    state, sequence_id = opened.app.state, opened.app.sequence_id
                    opened.close(keep=False)
                    settings = {**(state.get(ANSWER_SETTINGS) or {}), **chosen}
                    await self.store.save_state(
                        project_id,
                        app_id,
                        -1 if sequence_id is None else sequence_id + 1,
                        "prompt",
                        state.update(**{ANSWER_SETTINGS: settings}),
                        expected_sequence_id=sequence_id,
                    )
                finally:
                    await self.store.finish(project_id, app_id, token, None)
        finally:
            self._starting.discard(key)
        return AnswerSettings(
            model=settings.get("model"),
            system_prompt=settings.get("system_prompt"),
            temperature=settings.get("temperature"),
        )

    # Feedback (Burr annotations)

    @property
    def feedback_backend(self) -> Feedback:
        """Where votes go: Burr's annotations backend over the tracking logs' folder."""
        backend = getattr(self, "_feedback", None)
        if backend is None:
            backend = self._feedback = Feedback(str(self.settings.storage_dir))
        return backend

    async def _answers_of(self, project_id: str, app_id: str, user: Optional[str]) -> list[Answer]:
        """The conversation's answers and their steps; :class:`NotFound` when it is not
        stored, or is another user's."""
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                raise NotFound("No such conversation.")
            found = await answers(self.store, project_id, app_id)
        if found is None:
            raise NotFound("No such conversation.")
        return found

    async def vote(
        self,
        project_id: str,
        app_id: str,
        at: int,
        thumbs_up: bool,
        comment: Optional[str] = None,
        *,
        user: Optional[str] = None,
    ) -> FeedbackInfo:
        """Record a reader's vote on the answer at index ``at`` as a Burr annotation on the
        step that wrote it (replacing an earlier vote there; ``comment`` None keeps its
        comment, an empty one removes it). :class:`NotFound` for a
        conversation that is not stored or is another user's; :class:`Invalid` when message
        ``at`` is not a stored answer."""
        comment = comment.strip() if comment is not None else None
        if comment and "\x00" in comment:
            raise Invalid("The comment contains a NUL character (U+0000).")
        answer = next(
            (a for a in await self._answers_of(project_id, app_id, user) if a.at == at), None
        )
        if answer is None:
            raise Invalid(f"Message {at} is not an answer of this conversation.")
        backend = self.feedback_backend
        name = await backend.step_name(project_id, answer.step)
        if name is None:
            raise Invalid(f"Burr's tracking log has no record of the step of message {at}.")
        try:
            annotation = await backend.vote(project_id, answer.step, name, thumbs_up, comment)
        except OSError:
            raise Unavailable("The annotations could not be written; try again soon.") from None
        return FeedbackInfo(
            at=at,
            thumbs_up=thumbs_up,
            comment=note_of(annotation),
            app_id=answer.step.app_id,
            step_sequence_id=answer.step.sequence_id,
            step_name=name,
        )

    async def votes(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> list[FeedbackInfo]:
        """The votes on the conversation's answers, in the order of the history;
        :class:`NotFound` for a conversation that is not stored or is another user's."""
        found = await self._answers_of(project_id, app_id, user)
        annotations = await self.feedback_backend.votes(
            project_id, {answer.step.app_id for answer in found}
        )
        result = []
        for answer in found:
            annotation = annotations.get(answer.step)
            if annotation is None:
                continue
            result.append(
                FeedbackInfo(
                    at=answer.at,
                    thumbs_up=bool(annotation.observations[0].thumbs_up_thumbs_down),
                    comment=note_of(annotation),
                    app_id=answer.step.app_id,
                    step_sequence_id=answer.step.sequence_id,
                    step_name=annotation.step_name,
                )
            )
        return result

    # Export

    async def export(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> ExportedConversation:
        """The conversation as the page shows it: its messages with reasoning, tool calls and
        results, and each answer's token usage where known (from the result of its step in
        Burr's tracking log). :class:`NotFound` for a conversation that is not stored or is
        another user's."""
        found = await self._answers_of(project_id, app_id, user)
        with unavailable_when_the_store_fails():
            history = await self.store.messages(project_id, app_id)
        usage = await asyncio.to_thread(usage_of, str(self.settings.storage_dir), project_id, found)
        first = next((m["content"] for m in history if m.get("role") == "user"), None)
        title = " ".join(first.split())[:80] if first else None
        return ExportedConversation.model_validate(
            {
                "project_id": project_id,
                "app_id": app_id,
                "title": title or None,
                "messages": exported_items(history, usage),
            }
        )

    # Renaming, deleting and searching conversations

    async def rename(
        self, project_id: str, app_id: str, title: str, *, user: Optional[str] = None
    ) -> str:
        """Give a stored conversation ``title`` (already checked), which the list shows from
        now on; returns it. :class:`NotFound` for a conversation nobody stored, or another
        user's; :class:`Unavailable` if the store fails."""
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                raise NotFound("No such conversation.")
            if not await self.store.rename(project_id, app_id, title):
                raise NotFound("No such conversation.")
        return title

    async def delete(
        self, project_id: str, app_id: str, *, user: Optional[str] = None
    ) -> DeleteResult:
        """Delete a conversation: stop its answer if one is streaming (anywhere), then delete
        its messages, state and title, and its Burr tracking folder on this machine, so that
        Burr's app list no longer shows it. Its branches keep working. From then on its
        history, and a prompt or ``/create`` for it, are a 404. :class:`NotFound` for a
        conversation nobody stored (or deleted already), or another user's."""
        key = (project_id, app_id)
        with unavailable_when_the_store_fails():
            if await self._unwritten_for(user, project_id, app_id):
                raise NotFound("No such conversation.")
            if await self.store.sequence_id(project_id, app_id) is None:
                raise NotFound("No such conversation.")
            stopped = await self.turns.stop(key)
            if not await self.store.delete(project_id, app_id):
                raise NotFound("No such conversation.")
        self.conversations.forget(project_id, app_id)
        folder = self.settings.storage_dir / project_id / app_id
        forget_folder(folder)
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
        return DeleteResult(app_id=app_id, deleted=True, stopped=stopped)

    async def _check_not_deleted(self, project_id: str, app_id: str) -> None:
        """:class:`NotFound` when the conversation was deleted."""
        if await self.store.is_deleted(project_id, app_id):
            raise NotFound("No such conversation.")

    async def find(
        self, project_id: str, q: str, limit: int, offset: int = 0, *, user: Optional[str] = None
    ) -> list[ConversationSummary]:
        """The conversations whose title or one of whose messages holds every word of ``q``
        (each as a word prefix, any case; all of them when ``q`` holds no word), newest first,
        paged (``user``'s only, when given). :class:`Invalid` for a ``q`` with more than
        :data:`MAX_QUERY_WORDS` words; :class:`Unavailable` if the store fails."""
        words = search_words(q)
        if len(words) > MAX_QUERY_WORDS:
            raise Invalid(f"Search for at most {MAX_QUERY_WORDS} words at once.")
        with unavailable_when_the_store_fails():
            return await self.store.find(project_id, words, limit, offset, owner=user)


def search_words(text: str) -> list[str]:
    """The words of a search text, lower-cased, each once, in order (letters, digits, ``_``)."""
    return list(dict.fromkeys(re.findall(r"\w+", text.lower())))
