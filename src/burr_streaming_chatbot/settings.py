"""Configuration from the environment (``BURR_CHATBOT_*``, plus the OpenAI SDK's own variables)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
"""Project and conversation ids: 1 to 64 characters of letters, digits, ``_`` and ``-``."""


def _default_storage_dir() -> Path:
    # Burr's own server reads ``burr_path``; following it keeps both looking at one folder.
    return Path(os.environ.get("burr_path", "~/.burr")).expanduser()


class Settings(BaseSettings):
    """Everything the chatbot reads from the environment. Construct with keywords to override."""

    model_config = SettingsConfigDict(env_prefix="BURR_CHATBOT_", extra="ignore")

    openai_api_key: Optional[SecretStr] = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY", "openai_api_key")
    )
    openai_base_url: Optional[str] = Field(
        default=None, validation_alias=AliasChoices("OPENAI_BASE_URL", "openai_base_url")
    )
    router_model: str = Field(default="gpt-4o-mini", description="Model that picks the mode.")
    answer_model: str = Field(default="gpt-4o-mini", description="Model that writes answers.")
    offline: bool = Field(default=False, description="Force the offline demo model.")
    offline_delay_ms: float = Field(default=25.0, ge=0, description="Pause between offline words.")
    request_timeout_s: float = Field(default=60.0, gt=0)
    http_transport: Literal["aiohttp", "httpx"] = Field(
        default="aiohttp",
        description="The SDK's HTTP transport: aiohttp (the SDK's `DefaultAioHttpClient`, less "
        "CPU in the SDK per streamed token: benchmarks/RESULTS.md) or its default httpx one.",
    )
    max_retries: int = Field(default=1, ge=0, description="SDK retries before the first token.")
    gc_freeze: bool = Field(
        default=False,
        description="Move everything loaded at startup out of the garbage collector's reach "
        "(`gc.freeze()`), a process-wide change: `burr` with the startup hook and the "
        "`burr-streaming-chatbot` command turn it on, since they own the process.",
    )
    stream_frame_ms: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="The shortest time between two pieces of a streamed answer handed on: what "
        "the model sends sooner goes on with the next piece, in one delta (0: every network "
        "read goes on at once).",
    )
    stream_usage: bool = Field(
        default=True,
        description="Ask the model server for token usage (`stream_options.include_usage`); "
        "turn off for a server that rejects the option.",
    )
    history_messages: int = Field(
        default=40, ge=1, description="The most recent messages sent to the answer model."
    )
    tools: bool = Field(
        default=True,
        description="Offer the model tools (the demo tools and those installed packages "
        "register); off: answers never call a tool.",
    )
    max_tool_rounds: int = Field(
        default=5,
        ge=1,
        le=50,
        description="Rounds of tool calls one turn may make; then the turn ends saying so.",
    )
    tool_timeout_s: float = Field(
        default=10.0, gt=0, description="The longest one tool call may run (then a tool error)."
    )
    storage_dir: Path = Field(default_factory=_default_storage_dir)
    project_id: str = Field(default="demo_streaming_chatbot", pattern=ID_PATTERN)
    cache_size: int = Field(
        default=256, ge=1, description="Conversations whose state is kept in memory between turns."
    )
    tracked_messages: int = Field(
        default=4, ge=0, description="Messages of the history Burr's tracker logs per step."
    )
    max_open_projects: int = Field(
        default=32,
        ge=1,
        description="Projects whose SQLite file this process keeps open (a connection and its "
        "thread each); the least recently used is closed past it, and opened again when used.",
    )
    max_prompt_chars: int = Field(default=32_000, ge=1)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024, description="Largest request body.")
    max_streams: int = Field(default=256, ge=1, description="Answers streaming at once.")
    allowed_hosts: str = Field(
        default="",
        description="Comma-separated host names served besides the loopback ones (`*.example.com` "
        "for its subdomains, `*` for any), and the only ones served on a non-loopback address "
        "when set; their origins may also send writes.",
    )
    max_answers_per_client: int = Field(
        default=16,
        ge=1,
        description="Answers one client (the user, else the remote address) may have running at "
        "once in a process; 429 with Retry-After beyond.",
    )
    max_queued_per_client: int = Field(
        default=16,
        ge=0,
        description="Prompts one client may have waiting (`if_busy=enqueue`) in a process.",
    )
    max_streams_per_client: int = Field(
        default=64,
        ge=1,
        description="`GET /events` and `GET /stream` streams (the AI SDK's resume stream too) "
        "one client may have open at once in a process.",
    )
    user_header: Optional[str] = Field(
        default=None,
        description="The request header an authenticating proxy puts the signed-in user in "
        "(for example `X-Forwarded-User`): every request must carry it (else 401) and each user "
        "sees only the conversations they created. Unset: no users.",
    )
    resume_grace_s: float = Field(
        default=0.5,
        ge=0,
        description="How long an answer goes on after its last listener left, for a reattach.",
    )

    database_url: Optional[SecretStr] = Field(
        default=None,
        description="`postgresql://user:password@host:port/database`: keep conversations, leases "
        "and live answers in PostgreSQL, shared by every process on every machine. Unset: "
        "SQLite files under the storage folder, shared by the processes of one machine.",
    )
    database_pool_size: int = Field(
        default=20, ge=2, description="PostgreSQL connections each process may open."
    )
    lease_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a conversation stays leased to a process that stopped renewing it "
        "(a crashed worker): after that its next prompt is answered elsewhere.",
    )
    worker_name: Optional[str] = Field(
        default=None,
        max_length=64,
        description="This machine's name in leases (default: its host name). A lease whose owner "
        "ran on this machine and is gone is taken over at once, not when it expires.",
    )
    publish_interval_s: float = Field(
        default=0.05,
        gt=0,
        le=5,
        description="How often a live answer's new events are written to the store, where "
        "readers on other processes find them.",
    )

    keepalive_s: float = Field(
        default=15.0,
        gt=0,
        description="An event stream idle this long gets a comment line, so proxies keep it open.",
    )

    models_cache_s: float = Field(
        default=60.0,
        ge=0,
        description="How long `GET /models` keeps the model server's list before asking again.",
    )
    max_system_prompt_chars: int = Field(
        default=8000, ge=1, description="The longest system prompt a conversation may have."
    )

    @property
    def model_server(self) -> Optional[str]:
        """The model server's URL as shown to people (``/model``, logs): no user, password or
        query."""
        return public_url(self.openai_base_url) if self.openai_base_url else None

    @property
    def postgres_url(self) -> Optional[str]:
        """The PostgreSQL URL, or None for the SQLite default (an empty value is unset)."""
        url = self.database_url.get_secret_value() if self.database_url is not None else ""
        return url or None

    @property
    def uses_offline_model(self) -> bool:
        """True when no key and no base URL is configured, or offline is forced."""
        return self.offline or (self.openai_api_key is None and not self.openai_base_url)


def public_url(url: str) -> str:
    """``url`` as it may be shown or logged: scheme, host, port and path only. A user name, a
    password (in the address or as ``?password=``), the query and the fragment are dropped."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "(an invalid URL)"
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
