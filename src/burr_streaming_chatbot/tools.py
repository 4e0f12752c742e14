"""TEMPORARY STUB for the lead's testing; replaced by the tools branch."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass
from typing import Any, Callable, Literal, Optional, Protocol


class NoteBook(Protocol):
    async def add_note(self, project_id: str, app_id: str, text: str) -> dict: ...


class ToolError(Exception):
    pass


@dataclass(frozen=True)
class ToolContext:
    project_id: str
    app_id: str
    notes: Any


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    run: Callable[[dict, ToolContext], Awaitable[Any]]
    needs_approval: bool = False


@dataclass(frozen=True)
class ToolOutcome:
    status: Literal["ok", "error"]
    content: str
    duration_ms: float


class Toolbox:
    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools = {t.name: t for t in tools}
        self.names = tuple(self._tools)

    def get(self, name: str) -> Optional[Tool]:
        return self._tools.get(name)

    def needs_approval(self, name: str) -> bool:
        tool = self._tools.get(name)
        return bool(tool and tool.needs_approval)

    def openai_tools(self) -> list[dict]:
        return [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.parameters,
                },
            }
            for t in self._tools.values()
        ]

    async def call(
        self, name: str, arguments: str, context: ToolContext, timeout_s: float
    ) -> ToolOutcome:
        started = time.perf_counter()

        def done(status: Any, content: str) -> ToolOutcome:
            return ToolOutcome(status, content, (time.perf_counter() - started) * 1000)

        tool = self._tools.get(name)
        if tool is None:
            return done("error", f"Unknown tool {name!r}.")
        try:
            args = json.loads(arguments or "{}")
        except ValueError:
            return done("error", "The arguments are not JSON.")
        try:
            value = await asyncio.wait_for(tool.run(args, context), timeout_s)
        except asyncio.TimeoutError:
            return done("error", f"The tool took longer than {timeout_s} s.")
        except Exception as exc:
            return done("error", str(exc))
        return done("ok", value if isinstance(value, str) else json.dumps(value))


async def _calc(args: dict, context: ToolContext) -> Any:
    return {"expression": args["expression"], "result": str(eval(args["expression"], {}))}  # stub


async def _time(args: dict, context: ToolContext) -> Any:
    return {
        "timezone": args.get("timezone", "UTC"),
        "iso": "2026-01-01T00:00:00",
        "weekday": "Thursday",
    }


async def _note(args: dict, context: ToolContext) -> Any:
    note = await context.notes.add_note(context.project_id, context.app_id, args["text"])
    return {"saved": True, **note}


DEMO_TOOLS = (
    Tool(
        "calculator",
        "calc",
        {"type": "object", "properties": {"expression": {"type": "string"}}},
        _calc,
    ),
    Tool(
        "current_time",
        "time",
        {"type": "object", "properties": {"timezone": {"type": "string"}}},
        _time,
    ),
    Tool(
        "save_note",
        "note",
        {"type": "object", "properties": {"text": {"type": "string"}}},
        _note,
        True,
    ),
)


def load_toolbox(entry_points: bool = True) -> Toolbox:
    return Toolbox(DEMO_TOOLS)
