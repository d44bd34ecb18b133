"""Reading OpenSpec markdown exactly as OpenSpec 1.13.2 reads it: tasks, proposals, deltas.

Every rule here follows OpenSpec's own parser (its ``dist/``; /work/shared/OPENSPEC.md
lists them), including its quirks, because the store must agree with what ``openspec
list``/``show``/``instructions apply`` report. JavaScript's ``\\s``, ``.`` and ``trim`` differ
from Python's, so the character classes are spelled out. Task lines are matched by hand,
not by OpenSpec's regular expression: that one backtracks quadratically on a long run of
spaces inside a bracket, and a tasks.md arrives through git from strangers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import TaskstoreError

# JavaScript's \s (and the set String.prototype.trim removes).
JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_S = "[" + re.escape(JS_SPACE) + "]"
# The characters JavaScript's `.` does not match.
_LINE_END = "\n\r\u2028\u2029"
_DOT = "[^" + re.escape(_LINE_END) + "]"

_HEADER = re.compile(rf"(#{{1,6}}){_S}+({_DOT}+)\Z")
_HEADER_START = re.compile(rf"(#{{1,6}}){_S}")
_FENCE_OPEN = re.compile(rf"{_S}*(`{{3,}}|~{{3,}})")
_FENCE_CLOSE = re.compile(rf"{_S}*(`{{3,}}|~{{3,}}){_S}*\Z")
_LEVEL_TWO = re.compile(r" {0,3}##(?!#)(?:[ \t]+|[ \t]*\r?\Z)")
_NUMBERED_GROUP = re.compile(r" {0,3}##[ \t]+([0-9]+)\.(?:[ \t]|\r?\Z)")
_TASK_ID = re.compile(rf"([0-9]+(?:\.[0-9]+)+(?:[A-Za-z]+)?)(?={_S}|\Z)")
_TITLE = re.compile(rf"(?:\A|(?<=[{_LINE_END}]))#{_S}+(?:change:{_S}+)?({_DOT}+)", re.IGNORECASE)
_REQUIREMENT = re.compile(rf"###{_S}*requirement:{_S}*({_DOT}+){_S}*\Z", re.IGNORECASE)
_REQUIREMENT_TITLE = re.compile(rf"requirement:{_S}*[^{re.escape(JS_SPACE)}]", re.IGNORECASE)
_SECTION_TWO = re.compile(rf"(##){_S}+({_DOT}+)\Z")
_REMOVED_BULLET = re.compile(
    rf"{_S}*[-*+]{_S}*`?###{_S}*Requirement:{_S}*({_DOT}+?)`?{_S}*\Z", re.IGNORECASE
)
_RENAME = re.compile(
    rf"{_S}*[-*+]?{_S}*(FROM|TO):{_S}*`?###{_S}*Requirement:{_S}*({_DOT}+?)`?{_S}*\Z"
)
_NAME_TAIL = re.compile(r"[ \t]+#+[ \t]*\Z")
# Single greedy classes: linear, no backtracking; they move the scans of match_task_line
# into C.
_SPACES = re.compile(f"{_S}*")
_INLINE_SPACES = re.compile(
    "[" + re.escape(JS_SPACE.translate({ord(c): None for c in _LINE_END})) + "]*"
)
_REST = re.compile(f"{_DOT}*")


class OpenSpecParseError(TaskstoreError):
    """An OpenSpec file cannot be read; the message names the file and the line."""

    def __init__(self, file: str, line: int, problem: str) -> None:
        self.file = file
        self.line = line
        super().__init__(f"{file}:{line}: {problem}")


@dataclass(frozen=True)
class Task:
    """One checkbox line of a tasks.md."""

    number: str | None  # "1.2" from the text's start (OpenSpec's task id), None if none
    text: str  # the text after the checkbox, trimmed, as OpenSpec's description
    done: bool
    group: str | None  # the "## 1. Group" heading the task falls under, None if none
    position: int  # 0-based index among the file's tasks
    line: int  # 1-based line number in the file


@dataclass(frozen=True)
class Delta:
    """One requirement a change's spec delta adds, modifies, removes or renames."""

    capability: str
    operation: str  # "ADDED" | "MODIFIED" | "REMOVED" | "RENAMED"
    requirement: str


@dataclass(frozen=True)
class Proposal:
    """A proposal.md: its title and its sections by lower-cased name."""

    title: str | None  # None when OpenSpec falls back to the change id
    sections: dict[str, str]


def js_trim(text: str) -> str:
    """``String.prototype.trim``: Python's ``strip()`` removes a different set."""
    return text.strip(JS_SPACE)


@dataclass(frozen=True)
class TaskLine:
    """Where a task line's parts sit in the line (offsets into the line)."""

    box_start: int  # the "["
    box_end: int  # just past the "]"
    marker: str | None  # the one character in the box, "" for none, None for "[ ](...)"
    text_start: int
    text_end: int  # where JavaScript's `.` stops


def match_task_line(line: str) -> TaskLine | None:
    """OpenSpec's TASK_LINE_PATTERN, matched in linear time.

    ``^\\s*(?:[-*+]|\\d{1,9}[.)])\\s*\\[(?:\\s*([^\\]\\s]?)\\s*\\](?![([])|\\s+\\])\\s*(.*)``
    """
    if "[" not in line:
        return None
    n = len(line)
    i = _SPACES.match(line).end()  # type: ignore[union-attr]
    if i < n and line[i] in "-*+":
        i += 1
    else:
        j = i
        while j < n and j - i < 10 and "0" <= line[j] <= "9":
            j += 1
        if j == i or j - i > 9 or j >= n or line[j] not in ".)":
            return None
        i = j + 1
    i = _SPACES.match(line, i).end()  # type: ignore[union-attr]
    if i >= n or line[i] != "[":
        return None
    box_start = i
    i += 1
    first_space = i
    i = _SPACES.match(line, i).end()  # type: ignore[union-attr]
    spaced = i > first_space
    marker: str | None
    if i < n and line[i] == "]":
        marker = ""
    elif i < n:
        marker = line[i]
        i = _SPACES.match(line, i + 1).end()  # type: ignore[union-attr]
        if i >= n or line[i] != "]":
            return None
    else:
        return None
    i += 1
    if i < n and line[i] in "([":
        if marker or not spaced:
            return None
        marker = None  # only the `\s+\]` branch matches: no marker group
    box_end = i
    start = _INLINE_SPACES.match(line, i).end()  # type: ignore[union-attr]
    return TaskLine(box_start, box_end, marker, start, _REST.match(line, start).end())  # type: ignore[union-attr]


def parse_tasks(text: str) -> list[Task]:
    """Every task of a tasks.md, in document order, as OpenSpec counts them.

    Checkboxes count wherever they sit, fenced code included (OpenSpec's choice); groups
    are the level-two headings ``## N.``; an unnumbered level-two heading ends a group.
    """
    tasks: list[Task] = []
    group: str | None = None
    for index, line in enumerate(text.split("\n")):
        if _LEVEL_TWO.match(line):
            group = js_trim(line.lstrip(" ")[2:]) if _NUMBERED_GROUP.match(line) else None
        found = match_task_line(line)
        if found is None:
            continue
        description = js_trim(line[found.text_start : found.text_end])
        number = _TASK_ID.match(description)
        tasks.append(
            Task(
                number=number.group(1) if number else None,
                text=description,
                done=found.marker is not None and found.marker.lower() == "x",
                group=group,
                position=len(tasks),
                line=index + 1,
            )
        )
    return tasks


def change_status(tasks: list[Task]) -> str:
    """``no-tasks`` | ``in-progress`` | ``complete``, as ``openspec list`` computes it."""
    if not tasks:
        return "no-tasks"
    return "complete" if all(task.done for task in tasks) else "in-progress"


def normalize(text: str) -> list[str]:
    """OpenSpec's normalised lines: one leading BOM dropped, CRLF and lone CR made LF."""
    if text.startswith("\ufeff"):
        text = text[1:]
    return re.split(r"\r\n?|\n", text)


def fence_mask(lines: list[str]) -> list[bool]:
    """True for each line inside a fenced code block, the fence lines included."""
    mask = [False] * len(lines)
    active: tuple[str, int] | None = None
    for i, line in enumerate(lines):
        if active is None:
            opening = _FENCE_OPEN.match(line)
            if opening:
                active = (opening.group(1)[0], len(opening.group(1)))
                mask[i] = True
            continue
        mask[i] = True
        closing = _FENCE_CLOSE.match(line)
        if closing and closing.group(1)[0] == active[0] and len(closing.group(1)) >= active[1]:
            active = None
    return mask


@dataclass(frozen=True)
class Section:
    """A markdown section: header line index, level, title, body lines [start, end)."""

    header: int
    level: int
    title: str
    start: int
    end: int


def sections(lines: list[str], mask: list[bool]) -> list[Section]:
    """Every section in document order, with OpenSpec's header and extent rules."""
    found: list[Section] = []
    # Headers of each level seen so far, to find each section's end in one pass.
    open_sections: list[tuple[int, int, str]] = []
    ends: dict[int, int] = {}
    for i, line in enumerate(lines):
        if mask[i]:
            continue
        starts = _HEADER_START.match(line)
        if starts is None:
            continue
        level = len(starts.group(1))
        while open_sections and open_sections[-1][1] >= level:
            ends[open_sections.pop()[0]] = i
        header = _HEADER.match(line)
        if header:
            open_sections.append((i, level, js_trim(header.group(2))))
            found.append(Section(i, level, js_trim(header.group(2)), i + 1, -1))
    for index, _level, _title in open_sections:
        ends[index] = len(lines)
    return [
        Section(s.header, s.level, s.title, s.start, ends.get(s.header, len(lines))) for s in found
    ]


def parse_proposal(text: str) -> Proposal:
    """A proposal.md's title (``show``'s rule, on the raw text) and its sections."""
    title_match = _TITLE.search(text)
    title = js_trim(title_match.group(1)) if title_match else ""
    lines = normalize(text)
    mask = fence_mask(lines)
    by_name: dict[str, str] = {}
    for section in sections(lines, mask):
        by_name.setdefault(
            section.title.lower(), js_trim("\n".join(lines[section.start : section.end]))
        )
    return Proposal(
        title=title if title and title.lower() != "proposal" else None, sections=by_name
    )


def _requirement_name(raw: str) -> str:
    return js_trim(_NAME_TAIL.sub("", raw))


def parse_deltas(capability: str, text: str) -> list[Delta]:
    """The deltas of one ``specs/<capability>/spec.md``, in ``openspec show``'s order.

    ADDED, then MODIFIED, then REMOVED, then RENAMED; a header with an empty name is
    no requirement (OpenSpec drops it).
    """
    lines = normalize(text)
    mask = fence_mask(lines)
    bodies: dict[str, list[list[int]]] = {
        op: [] for op in ("added", "modified", "removed", "renamed")
    }
    heads = [i for i, line in enumerate(lines) if not mask[i] and _SECTION_TWO.match(line)]
    for k, head in enumerate(heads):
        match = _SECTION_TWO.match(lines[head])
        assert match is not None
        title = js_trim(match.group(2)).lower()
        end = heads[k + 1] if k + 1 < len(heads) else len(lines)
        for op in bodies:
            if title == f"{op} requirements":
                bodies[op].append(list(range(head + 1, end)))
    deltas: list[Delta] = []

    def blocks(op: str) -> list[str]:
        names = []
        for body in bodies[op]:
            for i in body:
                if not mask[i]:
                    header = _REQUIREMENT.match(lines[i])
                    if header:
                        names.append(_requirement_name(header.group(1)))
        return names

    for op in ("added", "modified"):
        deltas += [Delta(capability, op.upper(), n) for n in blocks(op) if n]
    for body in bodies["removed"]:
        for i in body:
            if mask[i]:
                continue
            header = _REQUIREMENT.match(lines[i]) or _REMOVED_BULLET.match(lines[i])
            if header:
                name = _requirement_name(header.group(1))
                if name:
                    deltas.append(Delta(capability, "REMOVED", name))
    for body in bodies["renamed"]:
        pending: str | None = None
        for i in body:
            if mask[i]:
                continue
            rename = _RENAME.match(lines[i])
            if rename is None:
                continue
            name = _requirement_name(rename.group(2))
            if rename.group(1) == "FROM":
                pending = name
            elif pending is not None:
                deltas.append(Delta(capability, "RENAMED", pending))
                pending = None
    return deltas


def read_markdown(path: Path, shown: str | None = None) -> str:
    """A file's text as Node's ``readFile(..., 'utf-8')`` gives it (bad bytes become U+FFFD).

    A directory where the file should be, or an unreadable file, is an
    :class:`OpenSpecParseError` (line 0) naming ``shown`` (default: the path).
    """
    name = shown if shown is not None else str(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise OpenSpecParseError(
            name, 0, "is a directory, not a file; replace it with a file"
        ) from None
    except PermissionError:
        raise OpenSpecParseError(
            name, 0, "cannot be read (permission denied); fix its permissions"
        ) from None
    except OSError as error:
        raise OpenSpecParseError(
            name, 0, f"cannot be read ({error.strerror}); check the file"
        ) from None
    return data.decode("utf-8", errors="replace")
