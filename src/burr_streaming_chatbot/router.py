"""``create_router()``: the chatbot's HTTP endpoints.

Each endpoint parses its request, calls one method of :class:`~.service.ChatService` (which
does the work, and raises the 4xx and 503 answers as :class:`~.service.Refused`), and writes
the answer: JSON, or a turn's events in the wire protocol of the endpoint (:mod:`.encoders`).
"""

import gc
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal, Optional, TypeVar

from ag_ui.core import RunAgentInput
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from .encoders import agui, ai_sdk
from .encoders.native import event_blocks
from .export import markdown
from .guard import NOSNIFF, AllowedHosts, checked, refused_response, validation_error_response
from .limits import Slot
from .llm import ChatModel
from .service import MAX_QUERY_CHARS, MAX_QUEUED, ChatService, IfBusy, Invalid, NotFound
from .settings import ID_PATTERN, Settings
from .sse import EventStream, event_stream_responses, wants_event_stream
from .turns import FollowedTurn, LocalTurn
from .wire import (
    AnswerSettings,
    AnswerSettingsInput,
    ApprovalInput,
    ApprovalRequest,
    BranchTree,
    ChatEventBlock,
    ChatItem,
    ConversationChangeBlock,
    ConversationSummary,
    DeleteResult,
    ExportedConversation,
    FeedbackInfo,
    FeedbackInput,
    ForkInput,
    GraphInfo,
    ModelInfo,
    ModelList,
    NoteInfo,
    PromptInput,
    RenameInput,
    RenameResult,
    ServerStatus,
    StopResult,
    UserInfo,
    encode_json,
    wire_item,
)

T = TypeVar("T")

API_PREFIX = "/api/v0/streaming_chatbot"
"""Where Burr's built-in streaming example lives, and so where this router is mounted."""

_ID_HELP = "1 to 64 characters: letters, digits, '_' and '-'."
ProjectId = Annotated[str, Path(pattern=ID_PATTERN, description=f"Project id: {_ID_HELP}")]
AppId = Annotated[str, Path(pattern=ID_PATTERN, description=f"Conversation id: {_ID_HELP}")]


TURN_REFUSALS: dict[int | str, dict[str, Any]] = {
    409: {"description": "A reply is already streaming in this conversation."},
    413: {"description": "The request body is too large."},
    422: {"description": "Bad id, prompt or body; nothing was written."},
    429: {
        "description": "This client has too many answers running or prompts waiting; see Retry-After."
    },
    503: {"description": "Too many answers streaming, or the store failed; see Retry-After."},
}
"""The answers of an endpoint that starts a turn, when it does not."""

APPROVAL_REFUSALS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such tool call in this conversation."},
    409: {
        "description": "The call does not wait for approval (decided or answered already), or "
        "a reply is streaming in this conversation."
    },
}
"""The answers of an endpoint that takes decisions on tool calls, when it does not."""

STORE_FAILED: dict[int | str, dict[str, Any]] = {
    503: {"description": "The conversation store failed; nothing was written. See Retry-After."}
}
"""The answer of an endpoint that reads or writes the store, when the store fails."""

TOO_MANY_STREAMS: dict[int | str, dict[str, Any]] = {
    429: {"description": "This client has too many event streams open; see Retry-After."}
}
"""The answer of an endpoint that opens a long-lived stream, past the client's limit."""


def create_router(
    settings: Optional[Settings] = None,
    llm: Optional[ChatModel] = None,
    service: Optional[ChatService] = None,
    user: Optional[Any] = None,
) -> APIRouter:
    """The chatbot's endpoints; include them at :data:`API_PREFIX`.

    They serve ``service``, or a :class:`~.service.ChatService` built from ``settings`` (from
    the environment unless given) and ``llm`` (built from the settings unless given). Its
    store opens and its answers stop with the router's lifespan.

    ``user``: a FastAPI dependency (``Depends(current_user)``) returning the signed-in user's
    id; each user then sees only the conversations they created, and a request without a
    user gets 401. Without it, the ``user_header`` setting names a header an authenticating
    proxy sets; with neither, there are no users.
    """
    service = service or ChatService(settings, llm)
    settings = service.settings
    signed_in = user if user is not None else Depends(user_from_header(settings.user_header))
    users_on = user is not None or bool(settings.user_header)

    async def current_user(who: Annotated[Optional[str], signed_in]) -> Optional[str]:
        """The signed-in user (None when users are off); 401 without one. (Every dependency
        here is ``async``: FastAPI runs a plain function in a worker thread, two thread
        hand-offs per request.)"""
        if not users_on:
            return None
        if not isinstance(who, str) or not who.strip() or len(who) > MAX_USER_CHARS:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "Sign in first: no user was given.")
        return who.strip()

    User = Annotated[Optional[str], Depends(current_user)]

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await service.open()
        if settings.gc_freeze:
            # Everything loaded so far (Burr, FastAPI, pydantic, the SDK) lives as long as the
            # process; out of the collector's reach, full collections scan only what was made
            # since (benchmarks/RESULTS.md, "Garbage collection pauses (held-back deltas)").
            # Process-wide, so only where this project owns the process (the setting).
            gc.freeze()
        yield
        await service.close()

    router = APIRouter(
        tags=["streaming_chatbot"],
        lifespan=lifespan,
        route_class=body_limited_route(settings.max_body_bytes, settings.allowed_hosts),
        dependencies=[Depends(current_user)],  # (every endpoint: 401 without a user)
        responses={401: {"description": "Users are on and the request has none."}},
    )

    async def client_of(request: Request, user: User) -> str:
        """Who the per-client limits count: the user, else the remote address."""
        if user is not None:
            return user
        return request.client.host if request.client is not None else ""

    Client = Annotated[str, Depends(client_of)]

    def counted(stream: EventStream, slot: Slot) -> EventStream:
        stream.on_close = slot.release
        return stream

    async def started_turn(
        project_id: ProjectId,
        app_id: AppId,
        body: PromptInput,
        client: Client,
        user: User,
        history_after: Annotated[
            int,
            Query(
                ge=0,
                description="Messages the client already has: the `chat_history` event then "
                "carries only the ones after them (its `start` says from where).",
            ),
        ] = 0,
        if_busy: Annotated[
            IfBusy,
            Query(
                description="When an answer is already streaming in the conversation: `reject` "
                "(409), `interrupt` (stop it, keeping its text marked interrupted, then answer "
                f"this prompt) or `enqueue` (answer this prompt after it; at most {MAX_QUEUED} "
                "waiting per conversation, then 409; the stream starts when this turn does)."
            ),
        ] = "reject",
    ) -> LocalTurn:
        # A dependency, so a refusal is answered before the event stream starts.
        return await service.start_turn(
            project_id, app_id, body.prompt, history_after, if_busy, user=user, client=client
        )

    async def turn_to_follow(
        project_id: ProjectId, app_id: AppId, user: Optional[str]
    ) -> FollowedTurn:
        turn = await service.find_turn(project_id, app_id, user=user)
        if turn is None:
            raise NotFound("No answer is streaming in this conversation.")
        return turn

    async def held_while(slot: Slot, work: Awaitable[T]) -> T:
        """``work``'s result; the slot is given back if it fails."""
        try:
            return await work
        except BaseException:
            slot.release()
            raise

    @router.get("/model", response_model=ModelInfo)
    async def model_info() -> ModelInfo:
        """Which models answer, and whether it is the offline demo model."""
        return service.model_info()

    @router.get("/graph", response_model=GraphInfo)
    async def graph_info() -> GraphInfo:
        """The Burr state machine every conversation runs."""
        return service.graph_info()

    @router.get("/me", response_model=UserInfo)
    async def signed_in_user(user: User) -> UserInfo:
        """Who is signed in: the user's id, or null when users are off."""
        return UserInfo(user=user)

    @router.get("/status", response_model=ServerStatus)
    async def server_status() -> ServerStatus:
        """What the server holds right now: running answers, listeners, cached conversations."""
        return service.status()

    @router.get(
        "/conversations/{project_id}",
        response_model=list[ConversationSummary],
        responses=STORE_FAILED,
    )
    async def list_conversations(
        project_id: ProjectId,
        user: User,
        q: Annotated[
            Optional[str],
            Query(
                max_length=MAX_QUERY_CHARS,
                description="Only the conversations whose title or one of whose messages holds "
                "every word of this text (each as a word prefix, any case).",
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200, description="At most this many.")] = 200,
        offset: Annotated[int, Query(ge=0, description="Skip this many (the next page).")] = 0,
    ) -> list[ConversationSummary]:
        """The project's conversations (the user's own when users are on), newest first; with
        ``q``, those that hold its words (full-text search). Page with ``limit`` and ``offset``:
        a page shorter than ``limit`` is the last."""
        return await service.conversation_list(
            project_id, user=user, q=q, limit=limit, offset=offset
        )

    @router.post(
        "/create/{project_id}/{app_id}",
        response_model=str,
        responses={
            422: {"description": "Bad answer settings; nothing was written."},
            **STORE_FAILED,
        },
    )
    async def create_conversation(
        project_id: ProjectId,
        app_id: AppId,
        user: User,
        answer_settings: Optional[AnswerSettingsInput] = None,
    ) -> str:
        """Create (or load) a conversation; Burr's tracker records it. Returns the app id.
        The body (optional) chooses its answer settings, as ``PATCH /settings`` does."""
        if answer_settings is not None and answer_settings.model_fields_set:
            await service.checked_answer_settings(answer_settings)  # (refused before a write)
        created = await service.create(project_id, app_id, user=user)
        if answer_settings is not None and answer_settings.model_fields_set:
            await service.change_answer_settings(project_id, app_id, answer_settings, user=user)
        return created

    @router.get(
        "/history/{project_id}/{app_id}", response_model=list[ChatItem], responses=STORE_FAILED
    )
    async def chat_history(project_id: ProjectId, app_id: AppId, user: User) -> Response:
        """The conversation's messages (empty when it does not exist)."""
        history = await service.history(project_id, app_id, user=user)
        # As the `chat_history` event has them: a tool field only where it applies.
        body = encode_json([wire_item(item) for item in history])
        return Response(body, media_type="application/json")

    @router.post(
        "/response/{project_id}/{app_id}",
        response_class=EventStream,
        responses={**event_stream_responses(ChatEventBlock), **TURN_REFUSALS},
    )
    async def chat_response(
        turn: Annotated[LocalTurn, Depends(started_turn)],
        accept: Annotated[Optional[str], Header(include_in_schema=False)] = None,
    ) -> EventStream:
        """Answer a prompt as server-sent events: ``chat_history`` first, then ``action``,
        ``mode`` and ``delta`` events, and last one ``message`` or one ``error``. Each event has
        an ``id``; if the connection drops, ``GET /stream`` with it resumes the answer."""
        return EventStream(event_blocks(turn, 0, settings.keepalive_s, wants_event_stream(accept)))

    @router.get(
        "/stream/{project_id}/{app_id}",
        response_class=EventStream,
        responses={
            **event_stream_responses(ChatEventBlock),
            404: {"description": "No answer is streaming or recently finished here."},
            **TOO_MANY_STREAMS,
            **STORE_FAILED,
        },
    )
    async def resume_stream(
        project_id: ProjectId,
        app_id: AppId,
        client: Client,
        user: User,
        last_event_id: Annotated[Optional[str], Header(max_length=64)] = None,
        accept: Annotated[Optional[str], Header(include_in_schema=False)] = None,
    ) -> EventStream:
        """Reattach to the answer being generated (or just finished) in a conversation: the
        events after ``Last-Event-ID`` (all of them without it), then the rest as they come."""
        slot = service.open_stream("stream", client)
        turn = await held_while(slot, turn_to_follow(project_id, app_id, user))
        start = turn.position(last_event_id)
        return counted(
            EventStream(
                event_blocks(turn, start, settings.keepalive_s, wants_event_stream(accept))
            ),
            slot,
        )

    @router.post(
        "/approve/{project_id}/{app_id}",
        response_class=EventStream,
        responses={
            **event_stream_responses(ChatEventBlock),
            **TURN_REFUSALS,
            **APPROVAL_REFUSALS,
        },
    )
    async def approve_tool_call(
        project_id: ProjectId,
        app_id: AppId,
        body: ApprovalInput,
        client: Client,
        user: User,
        history_after: Annotated[int, Query(ge=0)] = 0,
        accept: Annotated[Optional[str], Header(include_in_schema=False)] = None,
    ) -> EventStream:
        """Approve or deny a tool call waiting for a person (from any tab, process or machine,
        also after a restart): the call runs, or the model is told it was denied, and the
        answer goes on, streamed as ``POST /response`` streams it."""
        turn = await service.start_approval(
            project_id, app_id, [body], history_after, user=user, client=client
        )
        return EventStream(event_blocks(turn, 0, settings.keepalive_s, wants_event_stream(accept)))

    @router.get(
        "/approvals/{project_id}/{app_id}",
        response_model=list[ApprovalRequest],
        responses=STORE_FAILED,
    )
    async def pending_approvals(
        project_id: ProjectId, app_id: AppId, user: User
    ) -> list[ApprovalRequest]:
        """The conversation's tool calls waiting for a person's approval (after a reload)."""
        return await service.pending_approvals(project_id, app_id, user=user)

    @router.get("/notes/{project_id}", response_model=list[NoteInfo], responses=STORE_FAILED)
    async def list_notes(project_id: ProjectId, user: User) -> list[NoteInfo]:
        """The notes the ``save_note`` tool saved (from the user's conversations when users are
        on), newest first."""
        return await service.notes(project_id, user=user)

    @router.post("/stop/{project_id}/{app_id}", response_model=StopResult, responses=STORE_FAILED)
    async def stop_answer(project_id: ProjectId, app_id: AppId, user: User) -> StopResult:
        """Stop the answer streaming in a conversation; the text so far is kept, marked
        ``interrupted``. ``stopped`` is false when nothing was streaming."""
        return StopResult(stopped=await service.stop_turn(project_id, app_id, user=user))

    @router.post(
        "/ag-ui/{project_id}",
        response_class=EventStream,
        responses={
            **event_stream_responses(agui.AgUiEventBlock),
            **TURN_REFUSALS,
            **APPROVAL_REFUSALS,
        },
    )
    async def ag_ui_run(
        project_id: ProjectId, run: RunAgentInput, client: Client, user: User
    ) -> EventStream:
        """Answer the last user message of an AG-UI ``RunAgentInput`` as an AG-UI event stream
        (``threadId`` is the conversation id). The stored history is the truth: it comes back
        in ``MESSAGES_SNAPSHOT``, whatever other messages the client sent. A run whose
        ``resume`` answers the interrupts of tool calls waiting for approval
        (``{interruptId, status: "resolved", payload: {approved, reason?}}``, or ``status:
        "cancelled"``: denied) carries those decisions instead of a prompt: 404 for a call the
        conversation never made, 409 for one that does not wait."""
        app_id = checked_id(run.thread_id, "threadId")
        try:
            decisions = agui.decisions_of(run)
            prompt = None if decisions else agui.prompt_of(run)
        except agui.PromptError as exc:
            raise Invalid(str(exc)) from None
        if decisions:
            turn = await service.start_approval(
                project_id, app_id, decisions, user=user, client=client
            )
        else:
            assert prompt is not None
            turn = await service.start_turn(project_id, app_id, prompt, user=user, client=client)
        return EventStream(agui.run_blocks(turn, agui.AgUiRun(run, prompt), settings.keepalive_s))

    @router.post(
        "/ai-sdk/{project_id}",
        response_class=EventStream,
        responses={
            **event_stream_responses(ai_sdk.UIMessageChunkBlock),
            **TURN_REFUSALS,
            **APPROVAL_REFUSALS,
        },
    )
    async def ai_sdk_chat(
        project_id: ProjectId, chat: ai_sdk.ChatRequest, client: Client, user: User
    ) -> EventStream:
        """Answer the last user message of the AI SDK's ``DefaultChatTransport`` request as a
        UI message stream (``id`` is the conversation id). A request whose last message is the
        assistant's, with tool parts in state ``approval-responded`` (what
        ``addToolApprovalResponse`` sends back), carries those decisions instead: the stream
        continues that message; 404 for a call the conversation never made, 409 for one that
        does not wait."""
        try:
            decisions = ai_sdk.decisions_of(chat)
            prompt = None if decisions else ai_sdk.prompt_of(chat)
        except ai_sdk.PromptError as exc:
            raise Invalid(str(exc)) from None
        if decisions:
            turn = await service.start_approval(
                project_id, chat.id, decisions, user=user, client=client
            )
            continues: Optional[str] = chat.messages[-1].id
        else:
            assert prompt is not None
            turn = await service.start_turn(project_id, chat.id, prompt, user=user, client=client)
            continues = None
        return EventStream(
            ai_sdk.message_blocks(turn, settings.keepalive_s, continues), headers=ai_sdk.HEADERS
        )

    @router.get(
        "/ai-sdk/{project_id}/{app_id}/stream",
        response_class=EventStream,
        responses={
            **event_stream_responses(ai_sdk.UIMessageChunkBlock),
            204: {"description": "No answer is streaming in this conversation."},
            **TOO_MANY_STREAMS,
            **STORE_FAILED,
        },
    )
    async def ai_sdk_resume(
        project_id: ProjectId, app_id: AppId, client: Client, user: User
    ) -> Response:
        """Resume the answer streaming in a conversation, from its start, as the AI SDK's
        ``resume: true`` expects; 204 when none is streaming."""
        slot = service.open_stream("stream", client)
        turn = await held_while(slot, service.find_turn(project_id, app_id, user=user))
        if turn is None or not turn.running:
            slot.release()
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        return counted(
            EventStream(
                ai_sdk.message_blocks(turn, settings.keepalive_s, resumed=True),
                headers=ai_sdk.HEADERS,
            ),
            slot,
        )

    @router.post(
        "/fork/{project_id}/{app_id}",
        response_model=str,
        responses={
            404: {"description": "No such conversation."},
            422: {
                "description": "Bad id, or `at` beyond the conversation's messages; nothing was written."
            },
            **STORE_FAILED,
        },
    )
    async def fork_conversation(
        project_id: ProjectId, app_id: AppId, fork: ForkInput, user: User
    ) -> str:
        """Make a branch of a conversation: a Burr fork of it with its first ``at`` messages
        (then send a prompt to the branch to edit message ``at``, or answer it again). Returns
        the branch's conversation id; the original is not changed."""
        return await service.fork(project_id, app_id, fork.at, user=user)

    @router.get(
        "/branches/{project_id}/{app_id}",
        response_model=BranchTree,
        responses={404: {"description": "No such conversation."}, **STORE_FAILED},
    )
    async def branch_tree(project_id: ProjectId, app_id: AppId, user: User) -> BranchTree:
        """The tree of branches the conversation belongs to: its root and every branch of it."""
        return await service.branches(project_id, app_id, user=user)

    @router.get(
        "/events/{project_id}/{app_id}",
        response_class=EventStream,
        responses={**event_stream_responses(ConversationChangeBlock), **TOO_MANY_STREAMS},
    )
    async def conversation_events(
        project_id: ProjectId, app_id: AppId, client: Client, user: User
    ) -> EventStream:
        """A long-lived stream of the conversation's changes, made by any tab or process:
        ``turn_started`` (follow the answer with ``GET /stream``), ``turn_ended``,
        ``branch_created``."""
        slot = service.open_stream("events", client)
        blocks = await held_while(slot, service.changes(project_id, app_id, user=user))
        return counted(EventStream(blocks), slot)

    @router.get("/models", response_model=ModelList)
    async def list_models() -> ModelList:
        """The models a conversation may answer with: the model server's (`/v1/models`, kept
        a short while), the offline model when offline, or, when the server does not answer,
        the configured answer model alone (`source` says which)."""
        return await service.models()

    @router.get(
        "/settings/{project_id}/{app_id}",
        response_model=AnswerSettings,
        responses={404: {"description": "Another user's conversation."}, **STORE_FAILED},
    )
    async def answer_settings(project_id: ProjectId, app_id: AppId, user: User) -> AnswerSettings:
        """The conversation's answer model, system prompt and temperature (null: the server's
        default), as its Burr state keeps them."""
        return await service.answer_settings(project_id, app_id, user=user)

    @router.patch(
        "/settings/{project_id}/{app_id}",
        response_model=AnswerSettings,
        responses={
            404: {"description": "Another user's conversation."},
            409: {"description": "A reply is streaming in this conversation."},
            422: {
                "description": "Bad settings (a model the server does not list, a system prompt "
                "too long, a temperature outside 0 to 2); nothing was written."
            },
            **STORE_FAILED,
        },
    )
    async def change_answer_settings(
        project_id: ProjectId, app_id: AppId, changes: AnswerSettingsInput, user: User
    ) -> AnswerSettings:
        """Change the conversation's answer model, system prompt or temperature (a field left
        out stays, a null one goes back to the default); kept in its Burr state, read by its
        next answers. Returns them all."""
        return await service.change_answer_settings(project_id, app_id, changes, user=user)

    @router.post(
        "/feedback/{project_id}/{app_id}",
        response_model=FeedbackInfo,
        responses={
            404: {"description": "No such conversation."},
            422: {"description": "Bad id or body, or `at` is not an answer; nothing was written."},
            **STORE_FAILED,
        },
    )
    async def vote_on_answer(
        project_id: ProjectId, app_id: AppId, body: FeedbackInput, user: User
    ) -> FeedbackInfo:
        """A thumbs up or down (with an optional comment) on the answer at index ``at``, kept
        as a Burr annotation on the step that wrote it (Burr's annotations page shows it);
        voting again on the same answer replaces the vote."""
        return await service.vote(
            project_id, app_id, body.at, body.thumbs_up, body.comment, user=user
        )

    @router.get(
        "/feedback/{project_id}/{app_id}",
        response_model=list[FeedbackInfo],
        responses={404: {"description": "No such conversation."}, **STORE_FAILED},
    )
    async def answer_votes(project_id: ProjectId, app_id: AppId, user: User) -> list[FeedbackInfo]:
        """The votes on the conversation's answers (after a reload), in the order of the
        history."""
        return await service.votes(project_id, app_id, user=user)

    @router.get(
        "/export/{project_id}/{app_id}",
        response_model=None,
        responses={
            200: {
                "description": "The conversation, as a file to save (`Content-Disposition: "
                "attachment`): Markdown, or JSON.",
                "model": ExportedConversation,
                "content": {"text/markdown": {"schema": {"type": "string"}}},
            },
            404: {"description": "No such conversation."},
            **STORE_FAILED,
        },
    )
    async def export_conversation(
        project_id: ProjectId,
        app_id: AppId,
        user: User,
        format: Annotated[
            Literal["markdown", "json"],
            Query(description="`markdown` (for a person) or `json` (`ExportedConversation`)."),
        ] = "markdown",
    ) -> Response:
        """The conversation as the page shows it, as a download: every message with the
        answers' thinking, tool calls and results, mode, model and token usage where known."""
        exported = await service.export(project_id, app_id, user=user)
        if format == "json":
            body = encode_json(exported.model_dump(mode="json", exclude_unset=True))
            media_type, suffix = "application/json", "json"
        else:
            messages = [m.model_dump(mode="json") for m in exported.messages]
            body = markdown(project_id, app_id, exported.title, messages)
            media_type, suffix = "text/markdown; charset=utf-8", "md"
        disposition = f'attachment; filename="{app_id}.{suffix}"'
        return Response(body, media_type=media_type, headers={"Content-Disposition": disposition})

    @router.patch(
        "/conversations/{project_id}/{app_id}",
        response_model=RenameResult,
        responses={
            404: {"description": "No such conversation."},
            422: {"description": "Bad id or title; nothing was written."},
            **STORE_FAILED,
        },
    )
    async def rename_conversation(
        project_id: ProjectId, app_id: AppId, body: RenameInput, user: User
    ) -> RenameResult:
        """Rename a conversation: the list shows its new title instead of its first message."""
        title = await service.rename(project_id, app_id, body.title, user=user)
        return RenameResult(app_id=app_id, title=title)

    @router.delete(
        "/conversations/{project_id}/{app_id}",
        response_model=DeleteResult,
        responses={
            404: {"description": "No such conversation (or deleted already)."},
            422: {"description": "Bad id; nothing was deleted."},
            **STORE_FAILED,
        },
    )
    async def delete_conversation(project_id: ProjectId, app_id: AppId, user: User) -> DeleteResult:
        """Delete a conversation: an answer streaming in it is stopped first; its messages, its
        title and its Burr tracking data on this machine go (Burr's app list no longer shows
        it). Its branches keep working; their summaries say ``parent_deleted``. Its history is
        a 404 from then on."""
        return await service.delete(project_id, app_id, user=user)

    @router.api_route(
        "/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def not_found(request: Request, rest: str) -> None:
        # Without this, a GET under the prefix would fall through to Burr's page route.
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No endpoint at {request.url.path}")

    return router


MAX_USER_CHARS = 256
"""The longest user id accepted."""


def user_from_header(header: Optional[str]) -> Callable[[Request], Awaitable[Optional[str]]]:
    """A dependency reading the user from ``header`` (None when it is unset or missing)."""

    async def user_in_header(request: Request) -> Optional[str]:
        return request.headers.get(header) if header else None

    return user_in_header


def checked_id(value: str, name: str) -> str:
    """``value`` if it is a valid conversation id, else a 422 naming the field."""
    if not re.fullmatch(ID_PATTERN, value):
        raise Invalid(f"{name} must be {_ID_HELP}")
    return value


def body_limited_route(limit: int, allowed_hosts: str = "") -> type[APIRoute]:
    """A route class that refuses what :func:`.guard.refusal` refuses (a foreign Host, a
    cross-site write, a body that is not JSON) and a request body over ``limit`` bytes (413),
    before anything runs; answers a validation error without the input it was given (422);
    and marks every answer ``nosniff``. ``allowed_hosts``: ``BURR_CHATBOT_ALLOWED_HOSTS``."""
    allowed = AllowedHosts.parse(allowed_hosts)

    class BodyLimitedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def handler(request: Request) -> Response:
                refused = checked(request.scope, allowed)
                if refused is not None:
                    return refused_response(*refused)
                if request.method in ("POST", "PUT", "PATCH"):
                    declared = request.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        return _too_large(limit)
                    body = bytearray()
                    async for chunk in request.stream():
                        body += chunk
                        if len(body) > limit:
                            return _too_large(limit)
                    request._body = bytes(body)  # what Request.body() returns from now on
                try:
                    response = await handle(request)
                except RequestValidationError as exc:
                    return validation_error_response(exc)
                response.headers.setdefault(*NOSNIFF)
                return response

            return handler

    return BodyLimitedRoute


def _too_large(limit: int) -> Response:
    return JSONResponse(
        {"detail": f"The request body is larger than {limit} bytes."},
        status_code=status.HTTP_413_CONTENT_TOO_LARGE,
    )
