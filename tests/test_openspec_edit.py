"""edit.py changes one task or one proposal section and keeps every other byte."""

from __future__ import annotations

import pytest
from testing.openspec import CHANGES, OpenSpec, write_changes

from git_taskstore.errors import ValidationError
from git_taskstore.openspec.edit import set_section, set_task
from git_taskstore.openspec.parse import parse_proposal, parse_tasks, read_markdown

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


def test_edits_keep_openspec_verdict_and_counts(openspec: OpenSpec) -> None:
    """After ticks, unticks, rewordings and section edits, the real CLI still agrees.

    ``openspec validate --strict`` gives each change the verdict it gave before, and
    ``openspec list`` sees the counts parse.py computes. Mutations caught: a tick that
    writes ``[x](link)`` (the task vanishes from list's count); CRLF lost in a section.
    """
    write_changes(openspec.project)
    before = openspec.validate_changes()
    totals_before = {name: c["totalTasks"] for name, c in openspec.list_changes().items()}
    root = openspec.project / "openspec" / "changes"
    expected: dict[str, tuple[int, int]] = {}
    for name in CHANGES:
        tasks_md = root / name / "tasks.md"
        if tasks_md.exists():
            text = read_markdown(tasks_md)
            for task in parse_tasks(text):
                text = set_task(text, task.position, done=not task.done)
            text = set_task(text, 0, new_text="reworded ✓")
            tasks_md.write_bytes(text.encode())
            tasks = parse_tasks(text)
            expected[name] = (sum(t.done for t in tasks), len(tasks))
        proposal_md = root / name / "proposal.md"
        if proposal_md.exists():
            text = read_markdown(proposal_md)
            text = set_section(text, "why", "Because the\nstore said so.")
            text = set_section(text, "Impact", "Everything ✓")
            proposal_md.write_bytes(text.encode())
    assert openspec.validate_changes() == before
    listed = openspec.list_changes()
    for name, (done, total) in expected.items():
        assert (listed[name]["completedTasks"], listed[name]["totalTasks"]) == (done, total)
        assert total == totals_before[name]  # an edit never adds or loses a task
