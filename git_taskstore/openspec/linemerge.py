"""The merge of an OpenSpec tasks.md that git's own merge would call a conflict needlessly.

Ticking task 1.1 on one branch and 1.2 on another changes two adjacent lines, which git's
text merge takes as one conflicting hunk. When both sides only replaced lines (the same
number of lines as the base, as every tick and rewording leaves it), each line merges on
its own: the side that changed it wins, and only a line both sides changed differently
is a conflict. Anything else (lines added or removed) is left to git's text merge.
"""

from __future__ import annotations


def merge_lines(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    """The line-by-line merge, or None when it does not apply or a line conflicts."""
    b, o, t = (data.splitlines(keepends=True) for data in (base, ours, theirs))
    if not len(b) == len(o) == len(t):
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
