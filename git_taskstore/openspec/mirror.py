"""What the store holds of an OpenSpec change: its records, as read from its files.

A change is one record in ``openspec_changes`` (id: the change id) and one record per task
in ``openspec_tasks`` (id: ``<change>/<task>``). Each unit the store can edit (a task, a
proposal section) keeps, beside its value, the value its file held when the two were
last in sync (``synced``): the base that tells which side changed it since.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from . import CHANGES, FILES, HISTORY, TASKS
from .folders import ChangeFolder, Snapshot
from .parse import (
    OpenSpecParseError,
    Task,
    change_status,
    parse_deltas,
    parse_proposal,
    parse_tasks,
)

__all__ = [
    "CHANGES",
    "FILES",
    "HISTORY",
    "TASKS",
    "Parsed",
    "file_record",
    "parse_change",
    "task_id",
    "task_record",
]

# Proposal sections the store edits: record field -> the heading in proposal.md.
SECTIONS = {"why": "Why", "what_changes": "What Changes", "impact": "Impact"}


def task_key(task: Task, numbers: Counter[str], seen: Counter[str]) -> str:
    """A task's id within its change: its number (``1.2``) when the file gives it to no
    other task, else ``~`` and a digest of its group heading and its text
    (``~3f2a9c1b``; ``.2``, ``.3`` for the second and third task of the same text in
    the same group).

    Never its place in the file: a task inserted above on one branch would shift every
    key, and the merge would then join the fields of two tasks into one record. A task
    without a number that is reworded is another task (the old record is deleted). A
    checkbox without text counts in the change's progress but is no task of its own, as
    in OpenSpec."""
    if task.number is not None and numbers[task.number] == 1:
        return task.number
    named = f"{task.group or ''}\n{task.text}".encode("utf-8", "surrogatepass")
    digest = "~" + hashlib.sha1(named).hexdigest()[:8]
    seen[digest] += 1
    return digest if seen[digest] == 1 else f"{digest}.{seen[digest]}"


def task_id(change: str, key: str) -> str:
    return f"{change}/{key}"


@dataclass
class Parsed:
    """A change folder's files, parsed: the units and everything else the records show."""

    tasks: dict[str, Task]  # by task key, in file order (their ordinal: OpenSpec's id)
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
    seen: Counter[str] = Counter()
    tasks = {task_key(t, numbers, seen): t for t in listed}
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
        "hashes": {name: snapshot.digest(name) for name in sorted(texts)},
        "files_changed_at": snapshot.newest_mtime_ms(),
    }
    return Parsed(tasks, sections, fields)


def file_record(change: str, name: str, snapshot: Snapshot) -> dict[str, Any]:
    """A file's raw text, as a record of its own (``<change>/<name>``): written when its
    bytes change, so a tick does not copy the change's other files into the store."""
    return {
        "id": f"{change}/{name}",
        "change": change,
        "name": name,
        "text": snapshot.texts[name],
        "hash": snapshot.digest(name),
    }


def task_record(change: str, key: str, task: Task, ordinal: int) -> dict[str, Any]:
    """A task's record as its file gives it, in sync with the file; ``ordinal`` is its
    1-based place among the tasks ``openspec instructions apply`` lists (that command's
    id for it)."""
    return {
        "id": task_id(change, key),
        "change": change,
        "key": key,
        "ordinal": ordinal,
        "number": task.number,
        "group": task.group,
        "text": task.text,
        "done": task.done,
        "position": task.position,
        "line": task.line,
        "synced": {"done": task.done, "text": task.text},
    }
