"""The merge of an OpenSpec tasks.md that git's own merge would call a conflict needlessly.

Ticking task 1.1 on one branch and 1.2 on another changes two adjacent lines, which git's
text merge takes as one conflicting hunk. When each side only ticked, unticked or
reworded tasks (the same number of lines as the base, and every line it changed a task
line before and after), each line merges on its own: the side that changed it wins, and
a line both sides changed differently is a conflict. Anything else (lines added, removed
or moved, a changed line that is not a task) is left to git's text merge: lines that
repeat, such as blank ones, would otherwise line up wrongly.
"""

from __future__ import annotations

from .parse import match_task_line


def _task_edits_only(base: list[bytes], side: list[bytes]) -> bool:
    for before, after in zip(base, side, strict=True):
        if before != after and not (_is_task(before) and _is_task(after)):
            return False
    return True


def _is_task(line: bytes) -> bool:
    return match_task_line(line.decode("utf-8", "replace").rstrip("\r\n")) is not None


def merge_lines(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    """The line-by-line merge, or None when it does not apply or a line conflicts."""
    b, o, t = (data.splitlines(keepends=True) for data in (base, ours, theirs))
    if not len(b) == len(o) == len(t):
        return None
    if not (_task_edits_only(b, o) and _task_edits_only(b, t)):
        return None
    merged = []
    for base_line, our_line, their_line in zip(b, o, t, strict=True):
        if our_line == their_line or their_line == base_line:
            merged.append(our_line)
        elif our_line == base_line:
            merged.append(their_line)
        else:
            return None
    return b"".join(merged)
