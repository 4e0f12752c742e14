"""A conversation exported as the page shows it: its messages with their reasoning, tool calls
and results, and each answer's token usage where the model server reported it (read from the
result of the answer's step in Burr's tracking log), as JSON or as readable Markdown."""

import re
from typing import Any, Optional

from .feedback import Answer, step_records
from .wire import wire_item


def usage_of(storage_dir: str, project_id: str, answers: list[Answer]) -> dict[int, dict]:
    """The token usage of each answer that has one, by message index: the ``usage`` of the
    result of the step that wrote it."""
    records: dict[str, dict[int, dict[str, Any]]] = {}
    found: dict[int, dict] = {}
    for answer in answers:
        app_id = answer.step.app_id
        if app_id not in records:
            records[app_id] = step_records(storage_dir, project_id, app_id)
        result = (records[app_id].get(answer.step.sequence_id) or {}).get("result")
        usage = result.get("usage") if isinstance(result, dict) else None
        if isinstance(usage, dict) and isinstance(usage.get("total_tokens"), int):
            found[answer.at] = usage
    return found


def exported_items(history: list[dict[str, Any]], usage: dict[int, dict]) -> list[dict[str, Any]]:
    """The stored messages as the wire's ``ChatItem``, each with ``usage``: an answer's token
    usage, null when unknown and on every other message."""
    return [
        {**wire_item(message), "usage": usage.get(index)} for index, message in enumerate(history)
    ]


def fenced(text: str, language: str = "") -> str:
    """``text`` in a code fence longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{text}\n{fence}"


def quoted(text: str) -> str:
    """``text`` as a Markdown block quote."""
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines() or [""])


def usage_line(usage: dict) -> str:
    parts = [f"{usage.get('prompt_tokens')} in", f"{usage.get('completion_tokens')} out"]
    if usage.get("reasoning_tokens") is not None:
        parts.append(f"{usage['reasoning_tokens']} thinking")
    return f"{usage['total_tokens']} tokens ({', '.join(parts)})"


def markdown(project_id: str, app_id: str, title: Optional[str], items: list[dict]) -> str:
    """The exported conversation as Markdown a person reads: each prompt and answer, an
    answer's thinking, its tool calls with their results, its mode, model and usage."""
    lines = [f"# {title or app_id}", "", f"Conversation `{app_id}` of project `{project_id}`."]
    for item in items:
        role = item["role"]
        if role == "user":
            lines += ["", "## You", "", item["content"]]
            continue
        if role == "tool":
            outcome = {"ok": "result", "error": "error", "denied": "denied"}.get(
                item.get("status") or "ok", "result"
            )
            heading = f"**Tool {outcome}** `{item.get('name') or 'tool'}`"
            if item.get("duration_ms") is not None:
                heading += f" ({item['duration_ms']:.0f} ms)"
            lines += ["", heading, ""]
            if item.get("status") == "denied" and item.get("reason"):
                lines += [f"Reason: {item['reason']}", ""]
            lines.append(fenced(item["content"]))
            continue
        lines += ["", "## Assistant"]
        if item.get("reasoning"):
            lines += ["", "**Thinking**", "", quoted(item["reasoning"])]
        if item["content"]:
            lines += ["", item["content"]]
        for call in item.get("tool_calls") or []:
            lines += ["", f"**Tool call** `{call['name']}`", "", fenced(call["arguments"], "json")]
        if item.get("interrupted"):
            lines += ["", "_This answer was cut short._"]
        details = [
            f"{label}: {value}"
            for label, value in (("Mode", item.get("mode")), ("Model", item.get("model")))
            if value
        ]
        if item.get("usage"):
            details.append(f"Usage: {usage_line(item['usage'])}")
        if details:
            lines += ["", "_" + " · ".join(details) + "_"]
    return "\n".join(lines) + "\n"
