"""``create_router()``: the FastAPI endpoints, turning a Burr stream into server-sent events."""

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Optional

from burr.core import Application
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Request, status
from fastapi.sse import EventSourceResponse

from .conversations import Conversations
from .events import (
    ActionEvent,
    ActionValue,
    ChatEvent,
    ChatHistoryEvent,
    ChatItem,
    ConversationSummary,
    DeltaEvent,
    ErrorEvent,
    ErrorValue,
    GraphInfo,
    GraphTransition,
    MessageEvent,
    MessageValue,
    ModeEvent,
    ModelInfo,
    PromptInput,
)
from .graph import build_graph
from .llm import OFFLINE_HELP, ChatModel, UpstreamError, create_chat_model
from .settings import ID_PATTERN, Settings

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v0/streaming_chatbot"
"""Where Burr's built-in streaming example lives, and so where this router is mounted."""

_ID_HELP = "1 to 64 characters: letters, digits, '_' and '-'."
ProjectId = Annotated[str, Path(pattern=ID_PATTERN, description=f"Project id: {_ID_HELP}")]
AppId = Annotated[str, Path(pattern=ID_PATTERN, description=f"Conversation id: {_ID_HELP}")]


@dataclass
class Turn:
    """One prompt being answered: the conversation, its lock held, and when it began."""

    project_id: str
    app_id: str
    app: Application
    prompt: str
    lock: asyncio.Lock
    started: float = field(default_factory=time.perf_counter)

    def release(self) -> None:
        """Let the next turn of this conversation start (safe to call twice)."""
        if self.lock.locked():
            self.lock.release()


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
    conversations = Conversations(graph, settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await conversations.aclose()
        await llm.aclose()

    router = APIRouter(tags=["streaming_chatbot"], lifespan=lifespan)

    async def read_prompt(body: PromptInput) -> str:
        text = body.prompt
        if not text.strip():
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "The prompt is blank.")
        if len(text) > settings.max_prompt_chars:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                f"The prompt has {len(text)} characters; the limit is {settings.max_prompt_chars}.",
            )
        return text

    async def start_turn(
        project_id: ProjectId, app_id: AppId, prompt: Annotated[str, Depends(read_prompt)]
    ) -> AsyncIterator[Turn]:
        lock = conversations.lock(project_id, app_id)
        if lock.locked():
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                "A reply is already streaming in this conversation; wait for it or stop it.",
            )
        await lock.acquire()
        turn = None
        try:
            app = await conversations.application(project_id, app_id)
            turn = Turn(project_id, app_id, app, prompt, lock)
            yield turn
        finally:
            # Normally released already, before the last event (see run_turn).
            if turn is None:
                lock.release()
            else:
                turn.release()

    @router.get("/model", response_model=ModelInfo)
    async def model_info() -> ModelInfo:
        """Which models answer, and whether it is the offline demo model."""
        return ModelInfo(
            offline=llm.offline,
            router_model=llm.router_name,
            answer_model=llm.answer_name,
            base_url=getattr(llm, "base_url", None),
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

    @router.get("/conversations/{project_id}", response_model=list[ConversationSummary])
    async def list_conversations(project_id: ProjectId) -> list[ConversationSummary]:
        """The project's conversations, newest first."""
        return await conversations.list(project_id)

    @router.post("/create/{project_id}/{app_id}", response_model=str)
    async def create_conversation(project_id: ProjectId, app_id: AppId) -> str:
        """Create (or load) a conversation; Burr's tracker records it. Returns the app id."""
        await conversations.application(project_id, app_id)
        return app_id

    @router.get("/history/{project_id}/{app_id}", response_model=list[ChatItem])
    async def chat_history(project_id: ProjectId, app_id: AppId) -> list[dict[str, Any]]:
        """The conversation's messages (empty when it does not exist)."""
        return await conversations.history(project_id, app_id)

    @router.post(
        "/response/{project_id}/{app_id}",
        response_class=EventSourceResponse,
        responses={
            409: {"description": "A reply is already streaming in this conversation."},
            422: {"description": "Bad id or prompt; nothing was written."},
        },
    )
    async def chat_response(
        turn: Annotated[Turn, Depends(start_turn)],
    ) -> AsyncIterable[ChatEvent]:
        """Answer a prompt as server-sent events: ``chat_history`` first, then ``action``,
        ``mode`` and ``delta`` events, and last one ``message`` or one ``error``."""
        async for event in run_turn(turn, conversations):
            yield event

    @router.api_route(
        "/{rest:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    async def not_found(request: Request, rest: str) -> None:
        # Without this, a GET under the prefix would fall through to Burr's page route.
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No endpoint at {request.url.path}")

    return router


async def run_turn(turn: Turn, conversations: Conversations) -> AsyncIterator[Any]:
    """Run one turn of the state machine and describe it as events.

    The conversation's lock is released before the last event is sent, so a client may send
    its next prompt as soon as it has read this turn's ``message`` or ``error``.
    """
    app = turn.app
    inputs = {"prompt": turn.prompt}
    yield ChatHistoryEvent(value=app.state.get("chat_history", []))
    path: list[str] = []
    last: Any
    try:
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
                if first is None:
                    first = time.perf_counter()
                deltas += 1
                yield DeltaEvent(value=item["delta"])
            result, _ = await container.get()
            break
        if result.get("error"):
            # The partial answer is persisted, marked interrupted; the turn still failed.
            last = ErrorEvent(value=ErrorValue(**result["error"]))
        else:
            response = result["response"]
            last = MessageEvent(
                value=MessageValue(
                    item=response,
                    mode=response.get("mode", "unknown"),
                    model=response.get("model", ""),
                    ttft_ms=None if first is None else round((first - turn.started) * 1000, 2),
                    deltas=deltas,
                    sequence_id=app.sequence_id,
                    path=path,
                )
            )
    except UpstreamError as exc:
        conversations.forget(turn.project_id, turn.app_id)
        last = ErrorEvent(value=ErrorValue(code=exc.code, message=exc.message, retryable=exc.retryable))
    except Exception:
        conversations.forget(turn.project_id, turn.app_id)
        logger.exception("Turn failed in %s/%s", turn.project_id, turn.app_id)
        last = ErrorEvent(
            value=ErrorValue(code="internal", message="The server failed; see its log.", retryable=True)
        )
    except BaseException:
        # Cancelled (the client went away): the persisted state is the truth from here on.
        conversations.forget(turn.project_id, turn.app_id)
        turn.release()
        raise
    turn.release()
    yield last


def _next_sequence_id(app: Application) -> int:
    """The sequence id Burr will give the step about to run."""
    return 0 if app.sequence_id is None else app.sequence_id + 1
