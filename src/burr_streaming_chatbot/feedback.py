"""A reader's thumbs up or down on an answer, kept as a Burr annotation on the step that wrote it.

Every stored message carries the sequence id of the step that wrote it (:data:`.SEQUENCE`);
Burr's tracking log of the conversation names that step. The vote is written through Burr's
own annotations backend (its ``LocalBackend``, the one the ``burr`` server reads), so Burr's
``GET /api/v0/{project_id}/annotations`` and its annotations page show it on that step. One
annotation per step: voting again updates it.

A branch's first messages are copies of its original's, written by the original's steps: a
vote on one of them lands on the original's step (the step that wrote it).
"""

import asyncio
import json
import os
from typing import Any, NamedTuple, Optional

from burr.tracking.server.backend import LocalBackend
from burr.tracking.server.schema import (
    AnnotationCreate,
    AnnotationObservation,
    AnnotationOut,
    AnnotationUpdate,
)

from .storage.interface import Store
from .storage.messages import BRANCH, HISTORY, SEQUENCE

FEEDBACK_TAG = "chat-feedback"
"""The tag of the annotations this package writes (Burr's UI lists and filters by tag)."""
LOG_FILENAME = "log.jsonl"
"""Burr's tracking log of an application, in ``<storage>/<project>/<app>/``."""


class Step(NamedTuple):
    """The step of a Burr application that wrote a message."""

    app_id: str
    sequence_id: int


class Answer(NamedTuple):
    """An answer of a conversation and the step that wrote it."""

    at: int
    step: Step


def step_records(storage_dir: str, project_id: str, app_id: str) -> dict[int, dict[str, Any]]:
    """What Burr's tracking log of an application records of each step, by sequence id: the
    ``end_entry`` (action, result), else the ``begin_entry`` of a step that did not end. Empty
    when there is no log."""
    path = os.path.join(storage_dir, project_id, app_id, LOG_FILENAME)
    records: dict[int, dict[str, Any]] = {}
    try:
        with open(path, encoding="utf-8") as log:
            for line in log:
                ended = '"end_entry"' in line
                if not ended and '"begin_entry"' not in line:
                    continue  # (spans, attributes: not steps)
                entry = json.loads(line)
                sequence_id = entry.get("sequence_id")
                if isinstance(sequence_id, int) and "action" in entry:
                    if ended or sequence_id not in records:
                        records[sequence_id] = entry
    except (OSError, ValueError):
        return records
    return records


def step_name(storage_dir: str, project_id: str, step: Step) -> Optional[str]:
    """The action of ``step`` as Burr's tracking log records it (None when it has no record)."""
    record = step_records(storage_dir, project_id, step.app_id).get(step.sequence_id)
    return None if record is None else str(record["action"])


async def answers(store: Store, project_id: str, app_id: str) -> Optional[list[Answer]]:
    """The conversation's answers (assistant messages) with the step that wrote each: a
    branch's copies of its original's answers on the original's steps. None when the
    conversation is not stored."""
    loaded = await store.load_state(project_id, app_id)
    if loaded is None:
        return None
    history: list[dict[str, Any]] = loaded[0].get(HISTORY, [])
    owners = [app_id] * len(history)
    state, seen = loaded[0], {app_id}
    while True:  # up the branch's ancestors: messages [0, at) are the parent's
        branch = state.get(BRANCH) or {}
        parent, at = branch.get("parent"), branch.get("at") or 0
        if not parent or parent in seen or not at:
            break
        for index in range(min(at, len(owners))):
            owners[index] = parent
        seen.add(parent)
        parent_loaded = await store.load_state(project_id, parent)
        if parent_loaded is None:
            break
        state = parent_loaded[0]
    return [
        Answer(index, Step(owners[index], message[SEQUENCE]))
        for index, message in enumerate(history)
        if message.get("role") == "assistant" and isinstance(message.get(SEQUENCE), int)
    ]


def note_of(annotation: AnnotationOut) -> Optional[str]:
    """The comment of a vote (its first observation's ``note``), if it has one."""
    note = annotation.observations[0].data_fields.get("note") if annotation.observations else None
    return note if isinstance(note, str) and note else None


class Feedback:
    """Votes read and written through Burr's annotations backend for one storage folder."""

    def __init__(self, storage_dir: str) -> None:
        self.storage_dir = storage_dir
        self.backend = LocalBackend(path=storage_dir)
        self._lock = asyncio.Lock()
        """Burr's local backend reads, changes and writes one file: one write at a time."""

    async def step_name(self, project_id: str, step: Step) -> Optional[str]:
        """The action of ``step`` (None when Burr's log has no record of it)."""
        return await asyncio.to_thread(step_name, self.storage_dir, project_id, step)

    async def vote(
        self, project_id: str, step: Step, name: str, thumbs_up: bool, comment: Optional[str]
    ) -> AnnotationOut:
        """Write the vote on ``step`` (named ``name``), replacing an earlier one; ``comment``
        None keeps the earlier vote's comment, an empty one removes it."""
        async with self._lock:
            earlier = await self._ours(project_id, step)
            if comment is None and earlier is not None and earlier.observations:
                comment = note_of(earlier)
            observation = AnnotationObservation(
                data_fields={"note": comment} if comment else {},
                thumbs_up_thumbs_down=thumbs_up,
                data_pointers=[],
            )
            if earlier is not None:
                update = AnnotationUpdate(
                    span_id=None, step_name=name, tags=[FEEDBACK_TAG], observations=[observation]
                )
                await self.backend.update_annotation(update, project_id, earlier.id)
                found = await self._ours(project_id, step)
                assert found is not None
                return found
            create = AnnotationCreate(
                span_id=None, step_name=name, tags=[FEEDBACK_TAG], observations=[observation]
            )
            return await self.backend.create_annotation(
                create, project_id, None, step.app_id, step.sequence_id
            )

    async def votes(self, project_id: str, steps: set[str]) -> dict[Step, AnnotationOut]:
        """This package's votes on the project's applications ``steps`` (app ids), by step."""
        found: dict[Step, AnnotationOut] = {}
        for app_id in steps:
            for annotation in await self.backend.get_annotations(project_id, app_id=app_id):
                if FEEDBACK_TAG in annotation.tags and annotation.observations:
                    found[Step(annotation.app_id, annotation.step_sequence_id)] = annotation
        return found

    async def _ours(self, project_id: str, step: Step) -> Optional[AnnotationOut]:
        existing = await self.backend.get_annotations(
            project_id, app_id=step.app_id, step_sequence_id=step.sequence_id
        )
        return next((a for a in existing if FEEDBACK_TAG in a.tags), None)
