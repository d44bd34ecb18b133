"""edit.py changes one task or one proposal section and keeps every other byte."""

from __future__ import annotations

import pytest

from git_taskstore.errors import ValidationError
from git_taskstore.openspec.edit import set_section, set_task
from git_taskstore.openspec.parse import parse_proposal, parse_tasks

TASKS = (
    "\ufeff## 1. A\r\n  - [ ]  1.1 do it  \r\n1) [X] 1.2 b\r\n- [ ](u)\r\n"
    "```\r\n- [ ] fenced\r\n```\r\n"
)


def test_tick_changes_only_the_box() -> None:
    """Mutation caught: rewriting the whole line (the indent, spaces or CRLF would go)."""
    after = set_task(TASKS, 0, done=True)
    assert after == TASKS.replace("- [ ]  1.1", "- [x]  1.1")
    assert parse_tasks(after)[0].done
    assert set_task(TASKS, 1, done=True) == TASKS  # already done: nothing to write


def test_untick_and_reword() -> None:
    """Mutation caught: the new text replacing the trailing spaces or line ending."""
    after = set_task(TASKS, 1, done=False, new_text="1.2 c d")
    assert after == TASKS.replace("1) [X] 1.2 b", "1) [ ] 1.2 c d")
    after = set_task(TASKS, 0, new_text="1.1 done")
    assert after == TASKS.replace("1.1 do it  ", "1.1 done  ")


def test_spaced_box_before_link_stays_a_task() -> None:
    """`- [x](u)` would be a link: the tick adds a space (mutation: no space, task lost)."""
    after = set_task(TASKS, 2, done=True)
    assert "- [x] (u)\r\n" in after
    assert len(parse_tasks(after)) == len(parse_tasks(TASKS))
    assert parse_tasks(after)[2].done


def test_fenced_task_is_a_task_too() -> None:
    after = set_task(TASKS, 3, done=True)
    assert after == TASKS.replace("- [ ] fenced", "- [x] fenced")


def test_bad_task_edits_are_refused() -> None:
    """Mutations caught: no range check; a new text with a newline splitting the line."""
    with pytest.raises(ValidationError, match="no task at position 9"):
        set_task(TASKS, 9, done=True)
    for bad in ("two\nlines", " padded", ""):
        with pytest.raises(ValidationError):
            set_task(TASKS, 0, new_text=bad)


PROPOSAL = (
    "\ufeff# Change: X\r\n\r\n## Why\r\nold  \r\nmore\r\n\r\n"
    "```md\r\n## fenced\r\n```\r\n## What Changes\r\n- a\r\n## Unknown\r\nkeep me\t\r\n"
)


def test_section_body_replaced_in_place() -> None:
    """Mutation caught: LF body in a CRLF file, or the header/blank lines around it lost."""
    after = set_section(PROPOSAL, "WHY", "new\nbody")
    assert after == PROPOSAL.replace(
        "old  \r\nmore\r\n\r\n```md\r\n## fenced\r\n```", "new\r\nbody"
    )
    assert parse_proposal(after).sections["why"] == "new\nbody"
    after = set_section(PROPOSAL, "what changes", "- b")
    assert after == PROPOSAL.replace("- a", "- b")


def test_missing_or_empty_section() -> None:
    """Mutation caught: a missing section silently dropped instead of appended."""
    after = set_section(PROPOSAL, "Impact", "none")
    assert after.startswith(PROPOSAL)
    assert parse_proposal(after).sections["impact"] == "none"
    after = set_section("## Why\n## What\nx\n", "why", "W")
    assert parse_proposal(after).sections == {"why": "W", "what": "x"}
    assert after.endswith("## What\nx\n")


def test_body_that_would_break_the_structure_is_refused() -> None:
    """Mutation caught: no re-parse check (a `## ` line in the body ends the section early)."""
    with pytest.raises(ValidationError, match="structure"):
        set_section(PROPOSAL, "why", "a\n## What Changes\nb")
    with pytest.raises(ValidationError, match="structure"):
        set_section(PROPOSAL, "why", "```\nunclosed")
