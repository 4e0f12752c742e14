"""The wire contract: pydantic models of every server-sent event and of the other payloads.

Every event is one ``data: <json>`` block whose JSON has ``type`` and ``value``, as in Burr's
built-in streaming example: ``chat_history`` comes first, ``delta`` carries text. The other
types are additions that older clients ignore.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, NamedTuple, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""Compact JSON as the wire carries it (``json.dumps`` with these options builds an encoder on
every call, and deltas are many)."""


def _all_fields_required(schema: dict) -> None:
    # Output models always carry every field, so generated clients need no ``?``.
    schema["required"] = list(schema.get("properties", {}))


class WireModel(BaseModel):
    """Base of the models the server sends: every field is always present on the wire."""

    model_config = ConfigDict(json_schema_extra=_all_fields_required)


Mode = Literal["answer_question", "generate_poem", "generate_code", "unknown"]
MODES: tuple[str, ...] = ("answer_question", "generate_poem", "generate_code", "unknown")


class ToolCallInfo(WireModel):
    """A tool call an answer asked for (in its message's ``tool_calls``)."""

    id: str
    name: str
    arguments: str = Field(description="The arguments as the model wrote them (JSON text).")
    needs_approval: bool = Field(description="True when a person must approve it before it runs.")


TOOL_FIELDS = ("tool_calls", "tool_call_id", "name", "status", "duration_ms", "reason")
"""The fields of :class:`ChatItem` present only on the messages that have them."""


def _tool_fields_optional(schema: dict) -> None:
    schema["required"] = [name for name in schema.get("properties", {}) if name not in TOOL_FIELDS]


class ChatItem(WireModel):
    """One message of a conversation, as Burr's built-in example stores it in state; a message
    of role ``tool`` is a tool's result (or error, or denial), and an answer that called tools
    lists them in ``tool_calls``."""

    content: str
    type: Literal["image", "text", "code", "error"] = "text"
    role: Literal["user", "assistant", "tool"]
    mode: Optional[str] = Field(default=None, description="The mode that produced an answer.")
    model: Optional[str] = Field(default=None, description="The model that produced an answer.")
    interrupted: bool = Field(
        default=False, description="True when the answer was cut short by a fault or a stop."
    )
    reasoning: Optional[str] = Field(
        default=None, description="What a reasoning model thought before this answer."
    )
    tool_calls: Optional[list[ToolCallInfo]] = Field(
        default=None, description="The tools this answer called (only on such answers)."
    )
    tool_call_id: Optional[str] = Field(
        default=None, description="A tool message's call (only on tool messages)."
    )
    name: Optional[str] = Field(default=None, description="A tool message's tool.")
    status: Optional[Literal["ok", "error", "denied"]] = Field(
        default=None, description="A tool message's outcome: the result, an error, or denied."
    )
    duration_ms: Optional[float] = Field(
        default=None, description="How long a tool message's call ran (null when it did not)."
    )
    reason: Optional[str] = Field(default=None, description="Why a tool call was denied.")

    model_config = ConfigDict(json_schema_extra=_tool_fields_optional)


def wire_item(item: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the wire's :class:`ChatItem`, without validating it again (it was
    when written): the tool fields only on the messages that have them, the store's own
    fields (the step that wrote it) left out."""
    wire = {
        "content": item["content"],
        "type": item.get("type", "text"),
        "role": item["role"],
        "mode": item.get("mode"),
        "model": item.get("model"),
        "interrupted": item.get("interrupted", False),
        "reasoning": item.get("reasoning"),
    }
    if item.get("tool_calls") or item["role"] == "tool":
        for name in TOOL_FIELDS:
            if name in item:
                wire[name] = item[name]
    return wire


def _start_is_optional(schema: dict) -> None:
    # Absent unless asked for, so no default either (generated clients read it as optional).
    schema["required"] = ["type", "value"]
    schema["properties"]["start"].pop("default", None)


class ChatHistoryEvent(WireModel):
    """First event of a turn: the history before this turn's prompt (from message ``start`` on,
    when the request asked for ``history_after``)."""

    type: Literal["chat_history"] = "chat_history"
    value: list[ChatItem]
    start: int = Field(
        default=0,
        ge=0,
        description="Index of the first message in `value`; only sent when the request set "
        "`history_after` (without it the event is exactly Burr's example's).",
    )

    model_config = ConfigDict(json_schema_extra=_start_is_optional)


class ActionValue(WireModel):
    """A Burr action about to run."""

    action: str = Field(description="Name of the Burr action (a node of the graph).")
    sequence_id: int = Field(description="Burr's sequence id of this step.")


class ActionEvent(WireModel):
    """A Burr action starts; a page can light up that node of the graph."""

    type: Literal["action"] = "action"
    value: ActionValue


class ModeEvent(WireModel):
    """The router model chose a mode for this prompt."""

    type: Literal["mode"] = "mode"
    value: Mode


class DeltaEvent(WireModel):
    """A piece of the answer's text, in order."""

    type: Literal["delta"] = "delta"
    value: str


class ReasoningEvent(WireModel):
    """A piece of a reasoning model's thinking, in order, before the answer's text."""

    type: Literal["reasoning"] = "reasoning"
    value: str


class TokenUsage(WireModel):
    """The tokens an answer cost, as the model server counted them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    reasoning_tokens: Optional[int] = Field(
        default=None, description="The part of `completion_tokens` spent thinking, if known."
    )


def _awaiting_is_optional(schema: dict) -> None:
    # Absent unless the turn waits for approval (the bytes of other turns' messages unchanged).
    schema["required"] = [n for n in schema.get("properties", {}) if n != "awaiting_approval"]
    schema["properties"]["awaiting_approval"].pop("default", None)


class MessageValue(WireModel):
    """The final assistant message with what a page needs to explain it."""

    item: ChatItem
    mode: str
    model: str
    ttft_ms: Optional[float] = Field(
        description="Milliseconds from the request to the first delta (None if no delta)."
    )
    deltas: int = Field(
        description="Number of pieces the answer came in from the model (tokens that arrived "
        "in one network read count as one)."
    )
    sequence_id: int = Field(description="Burr sequence id of the step that wrote the answer.")
    path: list[str] = Field(description="The Burr actions this turn ran, in order.")
    usage: Optional[TokenUsage] = Field(
        default=None,
        description="The answer model's token usage (None when the server does not report it, "
        "and for fixed answers).",
    )
    awaiting_approval: Optional[list[str]] = Field(
        default=None,
        description="Only when the turn stopped to wait for a person: the tool calls waiting "
        "for approval (`POST /approve`).",
    )

    model_config = ConfigDict(json_schema_extra=_awaiting_is_optional)


class MessageEvent(WireModel):
    """The turn is complete; the answer is persisted."""

    type: Literal["message"] = "message"
    value: MessageValue


class ToolCallStartValue(WireModel):
    """A tool call begins (its arguments follow)."""

    id: str
    name: str


class ToolCallStartedEvent(WireModel):
    """The model began a tool call."""

    type: Literal["tool_call_start"] = "tool_call_start"
    value: ToolCallStartValue


class ToolCallArgsValue(WireModel):
    """A piece of a tool call's arguments (JSON text), in order."""

    id: str
    delta: str


class ToolCallArgumentsEvent(WireModel):
    """More of a tool call's arguments."""

    type: Literal["tool_call_args"] = "tool_call_args"
    value: ToolCallArgsValue


class ToolCallEvent(WireModel):
    """A tool call's arguments are complete."""

    type: Literal["tool_call"] = "tool_call"
    value: ToolCallInfo


class ApprovalRequest(WireModel):
    """A tool call waiting for a person to approve or deny it."""

    id: str = Field(description="The tool call's id (what `POST /approve` names).")
    name: str
    arguments: str
    message: str = Field(description="What is asked, in words.")


class ToolApprovalRequestEvent(WireModel):
    """The turn stops here until a person approves or denies this call."""

    type: Literal["tool_approval_request"] = "tool_approval_request"
    value: ApprovalRequest


class ToolResultValue(WireModel):
    """What a tool returned (the text the model is given)."""

    id: str
    name: str
    result: str
    duration_ms: float


class ToolResultEvent(WireModel):
    """A tool call ran."""

    type: Literal["tool_result"] = "tool_result"
    value: ToolResultValue


class ToolErrorValue(WireModel):
    """Why a tool call failed (the model is told)."""

    id: str
    name: str
    error: str
    duration_ms: Optional[float]


class ToolErrorEvent(WireModel):
    """A tool call failed: unknown tool, bad arguments, the tool raised or took too long."""

    type: Literal["tool_error"] = "tool_error"
    value: ToolErrorValue


class ToolDeniedValue(WireModel):
    """A tool call a person denied (or a new prompt superseded)."""

    id: str
    name: str
    reason: Optional[str]


class ToolDeniedEvent(WireModel):
    """A tool call was denied; the model is told."""

    type: Literal["tool_denied"] = "tool_denied"
    value: ToolDeniedValue


ErrorCode = Literal[
    "upstream_auth",
    "upstream_rate_limit",
    "upstream_unavailable",
    "upstream_timeout",
    "upstream_bad_response",
    "upstream_bad_request",
    "stopped",
    "conflict",
    "worker_lost",
    "storage_unavailable",
    "internal",
]


class ErrorValue(WireModel):
    """Why the turn ended early."""

    code: ErrorCode
    message: str
    retryable: bool


class ErrorEvent(WireModel):
    """The turn ended with an error; the user's message is kept in the history."""

    type: Literal["error"] = "error"
    value: ErrorValue


EventType = Literal[
    "chat_history",
    "action",
    "mode",
    "reasoning",
    "delta",
    "message",
    "error",
    "tool_call_start",
    "tool_call_args",
    "tool_call",
    "tool_approval_request",
    "tool_result",
    "tool_error",
    "tool_denied",
]
EVENT_TYPES: tuple[EventType, ...] = (
    "chat_history",
    "action",
    "mode",
    "reasoning",
    "delta",
    "message",
    "error",
    "tool_call_start",
    "tool_call_args",
    "tool_call",
    "tool_approval_request",
    "tool_result",
    "tool_error",
    "tool_denied",
)
LAST_TYPES = frozenset({"message", "error"})
"""The types of a turn's last event: one of them ends every turn."""


class TurnEvent(NamedTuple):
    """One event of a turn: the one type a turn's events have, from the state machine through
    the store to every encoder.

    ``data`` is a delta's text (the most frequent event, so it is never wrapped in JSON until
    an encoder writes it) or, for every other type, the event's JSON as the native stream sends
    it (one of the :data:`ChatEvent` models, serialized once whoever reads it; a finished turn
    kept for late readers holds one small object per event, not a tree of models).
    """

    type: EventType
    data: str

    @classmethod
    def of(cls, event: ChatEvent) -> TurnEvent:
        """A model of the wire contract, serialized (a :class:`DeltaEvent` as its text)."""
        if isinstance(event, DeltaEvent):
            return cls("delta", event.value)
        return cls(event.type, event.model_dump_json())

    @property
    def is_last(self) -> bool:
        """True for a ``message`` or an ``error``: the turn's last event."""
        return self.type in LAST_TYPES

    def parsed(self) -> dict[str, Any]:
        """The native event as a dict (``type``, ``value``, ...); a delta's built from its text."""
        if self.type == "delta":
            return {"type": "delta", "value": self.data}
        return json.loads(self.data)

    def json(self) -> str:
        """The native event's JSON (a delta's written as a :class:`DeltaEvent`)."""
        if self.type == "delta":
            return '{"type":"delta","value":' + encode_json(self.data) + "}"
        return self.data


ChatEvent = Annotated[
    Union[
        ChatHistoryEvent,
        ActionEvent,
        ModeEvent,
        ReasoningEvent,
        DeltaEvent,
        MessageEvent,
        ErrorEvent,
        ToolCallStartedEvent,
        ToolCallArgumentsEvent,
        ToolCallEvent,
        ToolApprovalRequestEvent,
        ToolResultEvent,
        ToolErrorEvent,
        ToolDeniedEvent,
    ],
    Field(discriminator="type"),
]
"""Any event of the response stream."""


def data_as_json_text(schema: dict) -> None:
    """``json_schema_extra`` of an event block model: its ``data`` is one line of JSON text."""
    # On the wire ``data`` is one line of JSON text; say so as OpenAPI 3.2 does for SSE.
    schema["properties"]["data"] = {
        "type": "string",
        "contentMediaType": "application/json",
        "contentSchema": schema["properties"]["data"],
    }
    schema["required"] = ["data"]


class ChatEventBlock(BaseModel):
    """One block of the ``text/event-stream`` response: ``data`` is a :data:`ChatEvent` as JSON,
    ``id`` names it for ``Last-Event-ID`` (this model documents the stream; it is never built)."""

    data: ChatEvent
    id: Optional[str] = Field(
        default=None,
        description="`<turn token>.<event number>`; send it back as Last-Event-ID. Only when "
        "the request's Accept is text/event-stream (without, blocks are bare `data:` lines, as "
        "Burr's streaming example sends them).",
    )

    model_config = ConfigDict(json_schema_extra=data_as_json_text)


class PromptInput(BaseModel):
    """Body of ``POST /response/{project_id}/{app_id}``."""

    prompt: str = Field(min_length=1, description="The user's message (not blank).")


class Decision(BaseModel):
    """A person's answer to a tool call waiting for approval."""

    tool_call_id: str = Field(min_length=1, max_length=128)
    approved: bool
    reason: Optional[str] = Field(
        default=None, max_length=1000, description="Why (optional; the model is told)."
    )


class ApprovalInput(Decision):
    """Body of ``POST /approve/{project_id}/{app_id}``."""


class NoteInfo(WireModel):
    """A note the ``save_note`` tool saved."""

    id: Union[int, str]
    text: str
    app_id: str = Field(description="The conversation it was saved from.")
    created_at: str


class ConversationSummary(WireModel):
    """One conversation of a project (a branch names the conversation it was forked from)."""

    app_id: str
    updated_at: Optional[str] = None
    title: Optional[str] = Field(
        default=None,
        description="The title it was given (renamed), else its first user message, shortened.",
    )
    root: Optional[str] = Field(
        default=None,
        description="The conversation at the root of this branch's tree (null for a root).",
    )
    parent: Optional[str] = Field(
        default=None, description="The conversation this branch was forked from (null for a root)."
    )
    fork_at: Optional[int] = Field(
        default=None,
        description="The message index it was forked at: it shares messages [0, fork_at) with "
        "its parent (null for a root).",
    )
    parent_deleted: bool = Field(
        default=False,
        description="True when the conversation this branch was forked from has been deleted "
        "(the branch keeps its own copy of the messages it shared).",
    )


class ForkInput(BaseModel):
    """Body of ``POST /fork/{project_id}/{app_id}``."""

    at: int = Field(
        ge=0,
        description="The branch keeps the messages before this index (0 to the number of "
        "messages); to edit message i or answer it again, fork at i or i + 1.",
    )


class BranchTree(WireModel):
    """A conversation's tree of branches."""

    root: str
    branches: list[ConversationSummary] = Field(
        description="The root, then every branch of the tree, in the order they were made."
    )


class ConversationChange(WireModel):
    """A change of a conversation, for the tabs that show it (``GET /events``)."""

    type: Literal["turn_started", "turn_ended", "branch_created"]
    value: dict[str, Union[str, int, None]] = Field(
        description="`turn_started`/`turn_ended`: `{turn}` (the turn's token, the start of its "
        "SSE ids); `branch_created`: `{app_id, parent, fork_at}`."
    )


class ModelInfo(WireModel):
    """The models answering, so a page can say so."""

    offline: bool = Field(description="True when the offline demo model answers.")
    router_model: str
    answer_model: str
    base_url: Optional[str] = Field(default=None, description="The OpenAI-compatible endpoint.")
    project_id: str = Field(description="The default project of this server.")
    help: Optional[str] = Field(default=None, description="How to configure a real model.")


class GraphTransition(WireModel):
    """An edge of the state machine."""

    source: str = Field(alias="from")
    target: str = Field(alias="to")
    condition: str

    model_config = ConfigDict(
        json_schema_extra=_all_fields_required, populate_by_name=True, serialize_by_alias=True
    )


class GraphInfo(WireModel):
    """The state machine, for drawing it."""

    entrypoint: str
    actions: list[str]
    streaming_actions: list[str] = Field(description="Actions that stream deltas.")
    transitions: list[GraphTransition]


class ServerStatus(WireModel):
    """What a server holds right now."""

    streaming: int = Field(description="Answers being generated.")
    listeners: int = Field(description="Clients reading those answers.")
    cached_conversations: int
    max_streams: int
    tasks: int = Field(description="asyncio tasks in the server's event loop.")
    frozen_objects: int = Field(
        description="Objects moved out of the garbage collector's reach at startup "
        "(`BURR_CHATBOT_GC_FREEZE`; 0 when off)."
    )
    open_projects: int = Field(
        default=0,
        description="Projects whose SQLite file is open in this process (at most "
        "`BURR_CHATBOT_MAX_OPEN_PROJECTS`; 0 on PostgreSQL, whose pool serves every project).",
    )
    event_streams: int = Field(
        default=0, description="Open `GET /events` streams (every client together)."
    )
    resume_streams: int = Field(
        default=0,
        description="Open `GET /stream` and AI SDK resume streams (every client together).",
    )
    watched_conversations: int = Field(
        default=0,
        description="Conversations that open `GET /events` streams follow: one watcher each in "
        "this process, however many tabs.",
    )


class UserInfo(WireModel):
    """Answer of ``GET /me``: who is signed in."""

    user: Optional[str] = Field(description="The signed-in user's id; null when users are off.")


class StopResult(WireModel):
    """Answer of ``POST /stop``."""

    stopped: bool = Field(description="False when nothing was streaming.")


class ConversationChangeBlock(BaseModel):
    """One block of ``GET /events``: ``data`` is a :class:`ConversationChange` as JSON (this
    model documents the stream; it is never built)."""

    data: ConversationChange

    model_config = ConfigDict(json_schema_extra=data_as_json_text)


class ModelList(WireModel):
    """Answer of ``GET /models``: the models a conversation may answer with."""

    models: list[str] = Field(description="The models' names.")
    default: str = Field(description="The configured answer model (a conversation's default).")
    source: Literal["server", "offline", "configured"] = Field(
        description="`server`: the model server's own list (`/v1/models`); `offline`: the "
        "offline demo model; `configured`: the model server did not answer, so the list is the "
        "configured answer model alone (and any model name is accepted)."
    )


class AnswerSettings(WireModel):
    """A conversation's choices for its answers, kept in its Burr state (null: the server's
    default)."""

    model: Optional[str] = Field(description="The answer model (null: the configured one).")
    system_prompt: Optional[str] = Field(
        description="Instructions sent before the mode's own (null: none)."
    )
    temperature: Optional[float] = Field(
        description="The sampling temperature, 0 to 2 (null: the model server's default)."
    )


class AnswerSettingsInput(BaseModel):
    """Body of ``PATCH /settings/{project_id}/{app_id}`` (and, optional, of ``POST /create``):
    a field left out is not changed, a null one goes back to the server's default."""

    model: Optional[str] = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="An answer model; one the model server does not list is refused (422).",
    )
    system_prompt: Optional[str] = Field(
        default=None,
        description="Instructions for the model, up to BURR_CHATBOT_MAX_SYSTEM_PROMPT_CHARS "
        "characters (blank: none).",
    )
    temperature: Optional[float] = Field(default=None, ge=0, le=2)

    model_config = ConfigDict(extra="forbid")


MAX_COMMENT_CHARS = 2000
"""The longest comment a vote may carry."""


class FeedbackInput(BaseModel):
    """Body of ``POST /feedback/{project_id}/{app_id}``: a vote on one answer."""

    at: int = Field(ge=0, description="The index of the answer in the conversation's history.")
    thumbs_up: bool = Field(description="True for a thumbs up, false for a thumbs down.")
    comment: Optional[str] = Field(
        default=None,
        max_length=MAX_COMMENT_CHARS,
        description=f"What the reader says about the answer (at most {MAX_COMMENT_CHARS} "
        "characters). Left out (or null): an earlier vote's comment is kept; empty: removed.",
    )


class FeedbackInfo(WireModel):
    """A reader's vote on an answer, kept as a Burr annotation on the step that wrote it."""

    at: int = Field(description="The index of the answer in the conversation's history.")
    thumbs_up: bool
    comment: Optional[str] = None
    app_id: str = Field(
        description="The Burr application of the step: the conversation, or for an answer a "
        "branch copied, the conversation it was copied from."
    )
    step_sequence_id: int = Field(description="The sequence id of the step that wrote it.")
    step_name: str = Field(description="The Burr action of that step.")


class ExportedItem(ChatItem):
    """A message of an exported conversation: the wire's ``ChatItem`` and, on an answer, the
    tokens it cost."""

    usage: Optional[TokenUsage] = Field(
        default=None,
        description="An answer's token usage, where the model server reported it (else null).",
    )


class ExportedConversation(WireModel):
    """A conversation exported as JSON (``GET /export?format=json``)."""

    project_id: str
    app_id: str
    title: Optional[str] = Field(default=None, description="Its first prompt, shortened.")
    messages: list[ExportedItem]


MAX_TITLE_CHARS = 200
"""The longest title a conversation may be given (after trimming)."""


class RenameInput(BaseModel):
    """Body of ``PATCH /conversations/{project_id}/{app_id}``."""

    title: str = Field(
        description=f"The conversation's new title: 1 to {MAX_TITLE_CHARS} characters once "
        "trimmed, no NUL character. The list shows it instead of the first message."
    )

    @field_validator("title")
    @classmethod
    def trimmed_title(cls, title: str) -> str:
        """The title without its surrounding white space; refused when empty, too long or
        holding a NUL character."""
        title = title.strip()
        if not title:
            raise ValueError("the title is blank")
        if len(title) > MAX_TITLE_CHARS:
            raise ValueError(f"the title is longer than {MAX_TITLE_CHARS} characters")
        if "\x00" in title:
            raise ValueError("the title holds a NUL character")
        return title


class RenameResult(WireModel):
    """Answer of ``PATCH /conversations/{project_id}/{app_id}``."""

    app_id: str
    title: str = Field(description="The title the conversation has now (trimmed).")


class DeleteResult(WireModel):
    """Answer of ``DELETE /conversations/{project_id}/{app_id}``."""

    app_id: str
    deleted: bool = Field(description="Always true: a conversation that is not stored is a 404.")
    stopped: bool = Field(description="True when an answer was streaming and was stopped first.")
