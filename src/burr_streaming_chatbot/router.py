"""``create_router()``: the FastAPI endpoints, turning a Burr stream into server-sent events."""

import asyncio
import contextlib
import gc
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional, Union

from ag_ui.core import RunAgentInput
from burr.core import Application
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from .conversations import Conversations
from .events import (
    ActionEvent,
    ActionValue,
    ChatEventBlock,
    BranchTree,
    ChatItem,
    ConversationChangeBlock,
    ConversationSummary,
    EncodedEvent,
    ErrorEvent,
    ErrorValue,
    ForkInput,
    GraphInfo,
    GraphTransition,
    MessageEvent,
    MessageValue,
    ModeEvent,
    ModelInfo,
    PromptInput,
    ServerStatus,
    StopResult,
    encode_json,
)
from .graph import build_graph
from .llm import OFFLINE_HELP, ChatModel, UpstreamError, create_chat_model
from .settings import ID_PATTERN, Settings
from .changes import change_blocks
from .encoders import agui, ai_sdk
from .encoders.native import event_blocks
from .sse import EventStream, event_stream_responses, wants_event_stream
from .store import ConflictError, StoreError, is_store_error, open_store
from .turns import INTERNAL, STORAGE_UNAVAILABLE, LiveTurn, RemoteTurn, Turns, new_token

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v0/streaming_chatbot"
"""Where Burr's built-in streaming example lives, and so where this router is mounted."""

_ID_HELP = "1 to 64 characters: letters, digits, '_' and '-'."
ProjectId = Annotated[str, Path(pattern=ID_PATTERN, description=f"Project id: {_ID_HELP}")]
AppId = Annotated[str, Path(pattern=ID_PATTERN, description=f"Conversation id: {_ID_HELP}")]


TURN_REFUSALS: dict[int | str, dict[str, Any]] = {
    409: {"description": "A reply is already streaming in this conversation."},
    413: {"description": "The request body is too large."},
    422: {"description": "Bad id, prompt or body; nothing was written."},
    503: {"description": "Too many answers streaming, or the store failed; see Retry-After."},
}
"""The answers of an endpoint that starts a turn, when it does not."""


@dataclass
class Turn:
    """One prompt being answered: the conversation, the prompt, and when the request began."""

    project_id: str
    app_id: str
    app: Application
    prompt: str
    history_after: int = 0
    started: float = field(default_factory=time.perf_counter)


def create_router(
    settings: Optional[Settings] = None, llm: Optional[ChatModel] = None
) -> APIRouter:
    """The chatbot's endpoints; include them at :data:`API_PREFIX`.

    Settings come from the environment unless given; the model is built from them unless
    given. The graph is built once here and shared by every conversation.
    """
    settings = settings or Settings()
    llm = llm or create_chat_model(settings)
    graph = build_graph(llm)
    store = open_store(settings)
    turns = Turns(
        grace_s=settings.resume_grace_s,
        store=store,
        lease_s=settings.lease_s,
        publish_s=settings.publish_interval_s,
    )
    conversations = Conversations(graph, settings, store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await store.open()
        except StoreError as exc:
            logger.error("burr-streaming-chatbot cannot start: %s", exc)
            raise
        if settings.gc_freeze:
            # Everything loaded so far (Burr, FastAPI, pydantic, the SDK: ~170,000 objects) lives
            # as long as the process; out of the collector's reach, full collections scan only
            # what was made since (they took 70 to 120 ms, holding every stream's next delta that
            # long). Process-wide, so only where this project owns the process (the setting).
            gc.freeze()
        yield
        await turns.stop_all()  # stopped answers keep their text, marked interrupted
        conversations.clear()
        await store.aclose()
        await llm.aclose()

    queued: dict[tuple[str, str], int] = {}
    """Prompts of this process waiting for their conversation (``if_busy=enqueue``)."""
    queue_locks: dict[tuple[str, str], asyncio.Lock] = {}
    starting: set[tuple[str, str]] = set()
    """Conversations whose turn is being set up in this process (lease, state)."""

    router = APIRouter(
        tags=["streaming_chatbot"],
        lifespan=lifespan,
        route_class=body_limited_route(settings.max_body_bytes),
    )

    def checked_prompt(text: str) -> str:
        if not text.strip():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "The prompt is blank.")
        if len(text) > settings.max_prompt_chars:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"The prompt has {len(text)} characters; the limit is {settings.max_prompt_chars}.",
            )
        return text

    async def read_prompt(body: PromptInput) -> str:
        return checked_prompt(body.prompt)

    def busy() -> HTTPException:
        return HTTPException(
            status.HTTP_409_CONFLICT,
            "A reply is already streaming in this conversation; wait for it or stop it.",
        )

    def check_free(key: tuple[str, str]) -> None:
        if turns.busy(key) or key in starting:
            raise busy()
        if len(turns.live) + len(starting) >= settings.max_streams:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"The server is answering {settings.max_streams} prompts already; try again soon.",
                headers={"Retry-After": "1"},
            )

    async def start_turn(
        project_id: ProjectId,
        app_id: AppId,
        prompt: Annotated[str, Depends(read_prompt)],
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
    ) -> LiveTurn:
        if if_busy == "interrupt":
            return await begin_interrupting(project_id, app_id, prompt, history_after)
        if if_busy == "enqueue":
            return await begin_in_turn(project_id, app_id, prompt, history_after)
        return await begin(project_id, app_id, prompt, history_after)

    async def begin_interrupting(project_id: str, app_id: str, prompt: str, history_after: int) -> LiveTurn:
        key = (project_id, app_id)
        for _ in range(3):  # (another prompt may take the conversation between stop and start)
            try:
                return await begin(project_id, app_id, prompt, history_after)
            except HTTPException as exc:
                if exc.status_code != status.HTTP_409_CONFLICT:
                    raise
            with unavailable_when_the_store_fails():
                await turns.stop(key)  # (waits until the stopped turn has recorded its end)
        raise busy()

    async def begin_in_turn(project_id: str, app_id: str, prompt: str, history_after: int) -> LiveTurn:
        key = (project_id, app_id)
        if queued.get(key, 0) >= MAX_QUEUED:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"{MAX_QUEUED} prompts are already waiting in this conversation; try again later.",
            )
        queued[key] = queued.get(key, 0) + 1
        line = queue_locks.setdefault(key, asyncio.Lock())  # (FIFO: first queued, first answered)
        try:
            async with line:
                deadline = time.monotonic() + QUEUE_WAIT_S
                while True:
                    try:
                        return await begin(project_id, app_id, prompt, history_after)
                    except HTTPException as exc:
                        if exc.status_code != status.HTTP_409_CONFLICT or time.monotonic() > deadline:
                            raise
                    await wait_until_free(key)
        finally:
            queued[key] -= 1
            if not queued[key]:
                del queued[key]
                queue_locks.pop(key, None)

    async def wait_until_free(key: tuple[str, str]) -> None:
        turn = turns.live.get(key)
        if turn is not None and turn.task is not None:
            await asyncio.wait([turn.task], timeout=QUEUE_WAIT_S)
            return
        with unavailable_when_the_store_fails():
            record = await store.current(*key)
            if record is not None and not (record.done or record.expired):
                await store.wait(record.token, 0.1)
            else:
                await asyncio.sleep(0.02)  # (being set up here or elsewhere: look again soon)

    async def begin(project_id: str, app_id: str, prompt: str, history_after: int = 0) -> LiveTurn:
        """Start a turn (every endpoint's): 409 while one runs in the conversation anywhere,
        503 when the server is full or the store fails; nothing is written before it starts."""
        key = (project_id, app_id)
        check_free(key)
        starting.add(key)  # (this process's other requests: checked in memory)
        token = new_token()
        try:
            with unavailable_when_the_store_fails():
                lease = await store.acquire(project_id, app_id, token, settings.lease_s)
                if lease is None:  # answering in another process
                    raise busy()
                try:
                    app = await conversations.application(project_id, app_id, lease)
                except BaseException:
                    with contextlib.suppress(Exception):  # (free the conversation again)
                        await store.finish(project_id, app_id, token, None)
                    raise
        finally:
            starting.discard(key)
        conversations.running(project_id, app_id, app)
        turn = Turn(project_id, app_id, app, prompt, history_after)
        return turns.begin(key, token, run_turn(turn, conversations))

    async def current_turn(project_id: ProjectId, app_id: AppId) -> Union[LiveTurn, RemoteTurn]:
        # A dependency, so the 404 is sent before the event stream starts.
        with unavailable_when_the_store_fails():
            turn = await turns.find((project_id, app_id))
        if turn is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, "No answer is streaming in this conversation."
            )
        return turn


    @router.get("/model", response_model=ModelInfo)
    async def model_info() -> ModelInfo:
        """Which models answer, and whether it is the offline demo model."""
        return ModelInfo(
            offline=llm.offline,
            router_model=llm.router_name,
            answer_model=llm.answer_name,
            base_url=llm.base_url,
            project_id=settings.project_id,
            help=OFFLINE_HELP if llm.offline else None,
        )

    @router.get("/graph", response_model=GraphInfo)
    async def graph_info() -> GraphInfo:
        """The Burr state machine every conversation runs."""
        return GraphInfo(
            entrypoint="prompt",
            actions=[a.name for a in graph.actions],
            streaming_actions=[a.name for a in graph.actions if a.streaming],
            transitions=[
                GraphTransition(source=t.from_.name, target=t.to.name, condition=t.condition.name)
                for t in graph.transitions
            ],
        )

    @router.get("/status", response_model=ServerStatus)
    async def server_status() -> ServerStatus:
        """What the server holds right now: running answers, listeners, cached conversations."""
        return ServerStatus(
            streaming=len(turns.live),
            listeners=sum(turn.listeners for turn in turns.live.values()),
            cached_conversations=conversations.cached,
            max_streams=settings.max_streams,
            tasks=len(asyncio.all_tasks()),
            frozen_objects=gc.get_freeze_count(),
        )

    @router.get("/conversations/{project_id}", response_model=list[ConversationSummary])
    async def list_conversations(project_id: ProjectId) -> list[ConversationSummary]:
        """The project's conversations, newest first."""
        return await conversations.list(project_id)

    @router.post("/create/{project_id}/{app_id}", response_model=str)
    async def create_conversation(project_id: ProjectId, app_id: AppId) -> str:
        """Create (or load) a conversation; Burr's tracker records it. Returns the app id."""
        app = await conversations.application(project_id, app_id)
        conversations.finish(project_id, app_id, app, completed=not turns.busy((project_id, app_id)))
        return app_id

    @router.get("/history/{project_id}/{app_id}", response_model=list[ChatItem])
    async def chat_history(project_id: ProjectId, app_id: AppId) -> list[dict[str, Any]]:
        """The conversation's messages (empty when it does not exist)."""
        return await conversations.history(project_id, app_id)

    @router.post(
        "/response/{project_id}/{app_id}",
        response_class=EventStream,
        responses={**event_stream_responses(ChatEventBlock), **TURN_REFUSALS},
    )
    async def chat_response(
        turn: Annotated[LiveTurn, Depends(start_turn)],
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
        },
    )
    async def resume_stream(
        turn: Annotated[Union[LiveTurn, RemoteTurn], Depends(current_turn)],
        last_event_id: Annotated[Optional[str], Header(max_length=64)] = None,
        accept: Annotated[Optional[str], Header(include_in_schema=False)] = None,
    ) -> EventStream:
        """Reattach to the answer being generated (or just finished) in a conversation: the
        events after ``Last-Event-ID`` (all of them without it), then the rest as they come."""
        start = turn.position(last_event_id)
        return EventStream(event_blocks(turn, start, settings.keepalive_s, wants_event_stream(accept)))

    @router.post("/stop/{project_id}/{app_id}", response_model=StopResult)
    async def stop_answer(project_id: ProjectId, app_id: AppId) -> StopResult:
        """Stop the answer streaming in a conversation; the text so far is kept, marked
        ``interrupted``. ``stopped`` is false when nothing was streaming."""
        with unavailable_when_the_store_fails():
            return StopResult(stopped=await turns.stop((project_id, app_id)))

    @router.post(
        "/ag-ui/{project_id}",
        response_class=EventStream,
        responses={**event_stream_responses(agui.AgUiEventBlock), **TURN_REFUSALS},
    )
    async def ag_ui_run(project_id: ProjectId, run: RunAgentInput) -> EventStream:
        """Answer the last user message of an AG-UI ``RunAgentInput`` as an AG-UI event stream
        (``threadId`` is the conversation id). The stored history is the truth: it comes back
        in ``MESSAGES_SNAPSHOT``, whatever other messages the client sent."""
        app_id = checked_id(run.thread_id, "threadId")
        try:
            prompt = checked_prompt(agui.prompt_of(run))
        except agui.PromptError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        turn = await begin(project_id, app_id, prompt)
        return EventStream(agui.run_blocks(turn, agui.AgUiRun(run, prompt), settings.keepalive_s))

    @router.post(
        "/ai-sdk/{project_id}",
        response_class=EventStream,
        responses={**event_stream_responses(ai_sdk.UIMessageChunkBlock), **TURN_REFUSALS},
    )
    async def ai_sdk_chat(project_id: ProjectId, chat: ai_sdk.ChatRequest) -> EventStream:
        """Answer the last user message of the AI SDK's ``DefaultChatTransport`` request as a
        UI message stream (``id`` is the conversation id)."""
        try:
            prompt = checked_prompt(ai_sdk.prompt_of(chat))
        except ai_sdk.PromptError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
        turn = await begin(project_id, chat.id, prompt)
        return EventStream(ai_sdk.message_blocks(turn, settings.keepalive_s), headers=ai_sdk.HEADERS)

    @router.get(
        "/ai-sdk/{project_id}/{app_id}/stream",
        response_class=EventStream,
        responses={
            **event_stream_responses(ai_sdk.UIMessageChunkBlock),
            204: {"description": "No answer is streaming in this conversation."},
        },
    )
    async def ai_sdk_resume(project_id: ProjectId, app_id: AppId) -> Response:
        """Resume the answer streaming in a conversation, from its start, as the AI SDK's
        ``resume: true`` expects; 204 when none is streaming."""
        with unavailable_when_the_store_fails():
            turn = await turns.find((project_id, app_id))
        if turn is None or not turn.running:
            return Response(status_code=status.HTTP_204_NO_CONTENT)
        return EventStream(ai_sdk.message_blocks(turn, settings.keepalive_s), headers=ai_sdk.HEADERS)

    @router.post(
        "/fork/{project_id}/{app_id}",
        response_model=str,
        responses={
            404: {"description": "No such conversation."},
            422: {"description": "Bad id, or `at` beyond the conversation's messages; nothing was written."},
        },
    )
    async def fork_conversation(project_id: ProjectId, app_id: AppId, fork: ForkInput) -> str:
        """Make a branch of a conversation: a Burr fork of it with its first ``at`` messages
        (then send a prompt to the branch to edit message ``at``, or answer it again). Returns
        the branch's conversation id; the original is not changed."""
        try:
            with unavailable_when_the_store_fails():
                return await conversations.fork(project_id, app_id, fork.at)
        except IndexError:  # (before LookupError, which it is)
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"at={fork.at} is beyond the conversation's messages.",
            ) from None
        except LookupError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such conversation.") from None

    @router.get(
        "/branches/{project_id}/{app_id}",
        response_model=BranchTree,
        responses={404: {"description": "No such conversation."}},
    )
    async def branch_tree(project_id: ProjectId, app_id: AppId) -> BranchTree:
        """The tree of branches the conversation belongs to: its root and every branch of it."""
        try:
            with unavailable_when_the_store_fails():
                return await conversations.tree(project_id, app_id)
        except LookupError:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "No such conversation.") from None

    @router.get(
        "/events/{project_id}/{app_id}",
        response_class=EventStream,
        responses=event_stream_responses(ConversationChangeBlock),
    )
    async def conversation_events(project_id: ProjectId, app_id: AppId) -> EventStream:
        """A long-lived stream of the conversation's changes, made by any tab or process:
        ``turn_started`` (follow the answer with ``GET /stream``), ``turn_ended``,
        ``branch_created``."""
        try:
            with unavailable_when_the_store_fails():
                root = (await conversations.tree(project_id, app_id)).root
        except LookupError:
            root = app_id  # (not saved yet: its first prompt will be a change)
        return EventStream(change_blocks(store, project_id, app_id, root, settings.keepalive_s))

    @router.api_route(
        "/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def not_found(request: Request, rest: str) -> None:
        # Without this, a GET under the prefix would fall through to Burr's page route.
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No endpoint at {request.url.path}")

    return router


CONFLICT = ErrorValue(
    code="conflict",
    message="Another server wrote this conversation meanwhile; nothing of this turn was saved "
    "after that. Reload the conversation.",
    retryable=True,
)


@contextlib.contextmanager
def unavailable_when_the_store_fails() -> Iterator[None]:
    """Turn a failure of the store into a 503 (the reason is logged, not sent); anything
    else goes through as it is."""
    try:
        yield
    except Exception as exc:
        if not is_store_error(exc):
            raise
        logger.warning("The store failed: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "The conversation store is unavailable; try again soon.",
            headers={"Retry-After": "1"},
        ) from None


IfBusy = Literal["reject", "interrupt", "enqueue"]
MAX_QUEUED = 3
"""Prompts that may wait for one conversation in one process (``if_busy=enqueue``)."""
QUEUE_WAIT_S = 300.0
"""The longest a queued prompt waits for the answers before it (then 409)."""


def checked_id(value: str, name: str) -> str:
    """``value`` if it is a valid conversation id, else a 422 naming the field."""
    if not re.fullmatch(ID_PATTERN, value):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{name} must be 1 to 64 characters: letters, digits, '_' and '-'.",
        )
    return value


def body_limited_route(limit: int) -> type[APIRoute]:
    """A route class that answers 413 to a request body over ``limit`` bytes, before parsing."""

    class BodyLimitedRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def handler(request: Request) -> Response:
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
                return await handle(request)

            return handler

    return BodyLimitedRoute


def _too_large(limit: int) -> Response:
    return JSONResponse(
        {"detail": f"The request body is larger than {limit} bytes."},
        status_code=status.HTTP_413_CONTENT_TOO_LARGE,
    )


async def run_turn(turn: Turn, conversations: Conversations) -> AsyncIterator[Any]:
    """Run one turn of the state machine and describe it as events: :data:`ChatEvent` models,
    an :class:`EncodedEvent`, and each delta as its bare text (the most frequent event, kept
    as a ``str`` until :func:`event_blocks` writes it as a ``DeltaEvent``).

    It runs in its own task (see :mod:`.turns`), which ends, and so frees the conversation for
    its next prompt, as soon as the last event is recorded, before any client reads it.
    """
    app = turn.app
    completed = False
    try:
        async for event in _turn_events(turn, app):
            yield event
        completed = True
    except UpstreamError as exc:
        yield ErrorEvent(value=ErrorValue(code=exc.code, message=exc.message, retryable=exc.retryable))
    except ConflictError:
        yield ErrorEvent(value=CONFLICT)
    except Exception as exc:
        if is_store_error(exc):
            logger.warning("Turn in %s/%s: the store failed: %s", turn.project_id, turn.app_id, exc)
            yield ErrorEvent(value=STORAGE_UNAVAILABLE)
        else:
            logger.exception("Turn failed in %s/%s", turn.project_id, turn.app_id)
            yield ErrorEvent(value=INTERNAL)
    finally:
        # An unfinished turn (failed, or cancelled because the client went away) leaves the
        # persisted state as the truth: the next turn reloads it.
        conversations.finish(turn.project_id, turn.app_id, app, completed)


async def _turn_events(turn: Turn, app: Application) -> AsyncIterator[Any]:
    """The turn's events up to its end; raises what the state machine raised."""
    inputs = {"prompt": turn.prompt}
    if app.get_next_action().name != "prompt":
        # The last turn failed or stopped mid-graph: the state persisted by its last completed
        # step would resume there (and ignore this prompt). Every turn starts at `prompt`.
        app.reset_to_entrypoint()
    yield history_event(app.state.get("chat_history", []), turn.history_after)
    path: list[str] = []
    while True:
        next_action = app.get_next_action()
        path.append(next_action.name)
        yield ActionEvent(
            value=ActionValue(action=next_action.name, sequence_id=_next_sequence_id(app))
        )
        if not next_action.streaming:
            action, result, _ = await app.astep(inputs=inputs)
            if action.name == "decide_mode":
                yield ModeEvent(value=result["mode"])
            continue
        _, container = await app.astream_result(halt_after=[next_action.name], inputs=inputs)
        first: Optional[float] = None
        deltas = 0
        async for item in container:
            delta = item.get("delta")
            if delta is None:  # the model's thinking
                yield reasoning_event(item["reasoning"])
                continue
            if first is None:
                first = time.perf_counter()
            deltas += 1
            yield delta  # a DeltaEvent's value; encoded as one in event_blocks
        result, _ = await container.get()
        break
    if result.get("error"):
        # The partial answer is persisted, marked interrupted; the turn still failed.
        yield ErrorEvent(value=ErrorValue(**result["error"]))
        return
    response = result["response"]
    yield MessageEvent(
        value=MessageValue(
            item=response,
            mode=response.get("mode", "unknown"),
            model=response.get("model", ""),
            ttft_ms=None if first is None else round((first - turn.started) * 1000, 2),
            deltas=deltas,
            sequence_id=app.sequence_id,
            path=path,
            usage=result.get("usage"),
        )
    )


def reasoning_event(text: str) -> EncodedEvent:
    """A :class:`ReasoningEvent`, serialized without pydantic (there is one per network read
    while a model thinks)."""
    return EncodedEvent('{"type":"reasoning","value":' + encode_json(text) + "}")


def history_event(history: list[dict[str, Any]], after: int = 0) -> EncodedEvent:
    """The ``chat_history`` event (a :class:`ChatHistoryEvent`) with the messages from index
    ``after`` on, serialized straight from the stored messages: they were validated when
    written, and a long conversation has thousands, which pydantic would take ~100 ms to
    validate again on every turn (and a client that has them need not receive them again)."""
    start = min(after, len(history))
    items = [
        {
            "content": item["content"],
            "type": item.get("type", "text"),
            "role": item["role"],
            "mode": item.get("mode"),
            "model": item.get("model"),
            "interrupted": item.get("interrupted", False),
            "reasoning": item.get("reasoning"),
        }
        for item in history[start:]
    ]
    value = encode_json(items)
    if not after:  # the event as Burr's example sends it
        return EncodedEvent('{"type":"chat_history","value":' + value + "}")
    return EncodedEvent(f'{{"type":"chat_history","value":{value},"start":{start}}}')


def _next_sequence_id(app: Application) -> int:
    """The sequence id Burr will give the step about to run."""
    return 0 if app.sequence_id is None else app.sequence_id + 1
