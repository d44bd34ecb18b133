"""What the store holds of an OpenSpec change: its records, as read from its files.

A change is one record in ``openspec_changes`` (id: the change id) and one record per task
in ``openspec_tasks`` (id: ``<change>/<task>``). Each unit the store can edit (a task, a
proposal section) keeps, beside its value, the value its file held when the two were
last in sync (``synced``): the base that tells which side changed it since.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import CHANGES, HISTORY, TASKS
from .folders import ChangeFolder, Snapshot
from .parse import (
    OpenSpecParseError,
    Task,
    change_status,
    parse_deltas,
    parse_proposal,
    parse_tasks,
)

__all__ = ["CHANGES", "HISTORY", "TASKS", "Parsed", "parse_change", "task_id", "task_record"]

# Proposal sections the store edits: record field -> the heading in proposal.md.
SECTIONS = {"why": "Why", "what_changes": "What Changes", "impact": "Impact"}


def task_key(task: Task, ordinal: int, numbers: Counter[str]) -> str:
    """A task's id within its change: its number (``1.2``) when the file gives it to no
    other task, else ``#N``, its place among the tasks ``openspec instructions apply``
    lists (those with text), which is that command's id. A checkbox without text counts
    in the change's progress but is no task of its own, as in OpenSpec."""
    if task.number is not None and numbers[task.number] == 1:
        return task.number
    return f"#{ordinal + 1}"


def task_id(change: str, key: str) -> str:
    return f"{change}/{key}"


@dataclass
class Parsed:
    """A change folder's files, parsed: the units and everything else the records show."""

    tasks: dict[str, Task]  # by task key, in file order
    sections: dict[str, str | None]  # record field -> body (None: no such section)
    fields: dict[str, Any]  # the change record's fields that follow the files


def conflict_marker_line(text: str) -> int | None:
    """The line of the first git conflict block in ``text`` (a ``<<<<<<<`` line with a
    ``>>>>>>>`` line after it), if any; a lone ``=======`` is a markdown heading rule."""
    if "<<<<<<<" not in text:
        return None
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if line.startswith("<<<<<<<") and any(
            later.startswith(">>>>>>>") for later in lines[number:]
        ):
            return number
    return None


def parse_change(where: ChangeFolder, snapshot: Snapshot) -> Parsed:
    """The units and fields of a change, parsed as OpenSpec 1.13.2 parses them.

    OpenSpecParseError names the file and line of git conflict markers: they would count
    both sides' tasks.
    """
    texts = snapshot.texts
    for name, text in texts.items():
        line = conflict_marker_line(text)
        if line is not None:
            raise OpenSpecParseError(
                f"{where.folder}/{name}", line, "holds git conflict markers: resolve them"
            )
    tasks_list = parse_tasks(texts["tasks.md"]) if "tasks.md" in texts else []
    # Checkboxes without text count in OpenSpec's progress, not among its tasks.
    listed = [t for t in tasks_list if t.text]
    numbers = Counter(t.number for t in listed if t.number is not None)
    tasks = {task_key(t, k, numbers): t for k, t in enumerate(listed)}
    proposal = parse_proposal(texts["proposal.md"]) if "proposal.md" in texts else None
    sections = {
        field: (proposal.sections.get(heading.lower()) if proposal is not None else None)
        for field, heading in SECTIONS.items()
    }
    deltas = []
    for name in sorted(n for n in texts if n.startswith("specs/")):
        capability = name[len("specs/") : -len("/spec.md")]
        deltas += [
            {"capability": d.capability, "operation": d.operation, "requirement": d.requirement}
            for d in parse_deltas(capability, texts[name])
        ]
    done = sum(1 for t in tasks_list if t.done)
    status = "archived" if where.archived_on else change_status(tasks_list)
    fields = {
        "root": where.root,
        "folder": where.folder,
        "title": (proposal.title if proposal is not None and proposal.title else where.change),
        "status": status,
        "archived_on": where.archived_on,
        "has_proposal": "proposal.md" in texts,
        "has_tasks": "tasks.md" in texts,
        "has_design": "design.md" in texts,
        "deltas": deltas,
        "tasks_total": len(tasks_list),
        "tasks_done": done,
        "files": dict(sorted(texts.items())),
        "hashes": {name: snapshot.digest(name) for name in sorted(texts)},
        "files_changed_at": snapshot.newest_mtime_ms(),
    }
    return Parsed(tasks, sections, fields)


def task_record(change: str, key: str, task: Task) -> dict[str, Any]:
    """A task's record as its file gives it, in sync with the file."""
    return {
        "id": task_id(change, key),
        "change": change,
        "key": key,
        "number": task.number,
        "group": task.group,
        "text": task.text,
        "done": task.done,
        "position": task.position,
        "line": task.line,
        "synced": {"done": task.done, "text": task.text},
    }
