"""parse.py reads tasks, proposals and deltas by OpenSpec 1.13.2's rules, and survives bad input."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from testing.openspec import CHANGES, OpenSpec, write_changes

from git_taskstore.openspec.parse import (
    OpenSpecParseError,
    change_status,
    match_task_line,
    parse_deltas,
    parse_proposal,
    parse_tasks,
    read_markdown,
)

TASKS = (
    "# Tasks\n"
    "## 1. Setup\n"
    "- [ ] 1.1 Create the module\n"
    "  - [X] 1.1.1 nested, capital X\r\n"
    "1. [ x ] numbered list, padded x\n"
    "2) [~] tilde counts, open\n"
    "+ [] empty box counts\n"
    "* [-] dash\n"
    "- [ ](link) spaced box before a link counts\n"
    "- [x](link) is a link\n"
    "- [A](https://example.com) is a link\n"
    "- [WIP] is not a task\n"
    "- [xx] is not a task\n"
    "## Notes\n"
    "```\n"
    "- [x] fenced boxes count too\n"
    "```\n"
    "- [ ]\n"
    "1234567890. [ ] ten digits is no list marker\n"
)


def test_tasks_follow_openspec_rules() -> None:
    """Mutations caught: `[X]` not done, padded marker rejected, groups not reset by `## Notes`."""
    tasks = parse_tasks(TASKS)
    assert [(t.text, t.done) for t in tasks] == [
        ("1.1 Create the module", False),
        ("1.1.1 nested, capital X", True),
        ("numbered list, padded x", True),
        ("tilde counts, open", False),
        ("empty box counts", False),
        ("dash", False),
        ("(link) spaced box before a link counts", False),
        ("fenced boxes count too", True),
        ("", False),
    ]
    assert [t.number for t in tasks[:3]] == ["1.1", "1.1.1", None]
    assert [t.group for t in tasks[:3]] == ["1. Setup"] * 3
    assert tasks[-1].group is None
    assert [t.position for t in tasks] == list(range(9))
    assert tasks[0].line == 3 and tasks[-1].line == 18


def test_status() -> None:
    """Mutation caught: `complete` when any task is done instead of all."""
    assert change_status([]) == "no-tasks"
    assert change_status(parse_tasks("- [x] a\n- [ ] b\n")) == "in-progress"
    assert change_status(parse_tasks("- [x] a\n- [X] b\n")) == "complete"


def test_bom_first_line_is_still_a_task_and_unicode_text() -> None:
    """A BOM is JavaScript whitespace: the first line still matches (mutation: Python's \\s)."""
    tasks = parse_tasks("\ufeff- [x] héllo wörld ✓\u00a0\n")
    assert [(t.text, t.done) for t in tasks] == [("héllo wörld ✓", True)]


def test_proposal_title_and_sections() -> None:
    """Mutations caught: fenced headers read as sections; `# Proposal` kept as a title."""
    text = (
        "# Change: Add login\r\n\r\n## Why\r\nBecause.\r\n```\r\n## Not a header\r\n```\r\n"
        "## What Changes\r\n- **auth:** adds login\r\n## Impact\r\nnone\r\n"
    )
    proposal = parse_proposal(text)
    assert proposal.title == "Add login"
    assert proposal.sections["why"] == "Because.\n```\n## Not a header\n```"
    assert proposal.sections["what changes"] == "- **auth:** adds login"
    assert proposal.sections["impact"] == "none"
    assert "not a header" not in proposal.sections
    assert parse_proposal("# Proposal\n## Why\nx\n").title is None
    assert parse_proposal("\ufeff# Title\n").title is None  # OpenSpec falls back on a BOM
    assert parse_proposal("no title at all\n").title is None


def test_deltas() -> None:
    """Mutations caught: fenced requirement headers counted; empty names kept; RENAMED unpaired."""
    text = (
        "## ADDED Requirements\n### Requirement: Login ##\nThe system SHALL log in.\n"
        "```\n### Requirement: Fenced\n```\n### Requirement:   \n"
        "## modified requirements\n###Requirement: Logout\n"
        "## REMOVED Requirements\n- `### Requirement: Old`\n### Requirement: Older\n"
        "## RENAMED Requirements\n- FROM: `### Requirement: A`\n- TO: `### Requirement: B`\n"
        "- TO: `### Requirement: orphan`\n"
        "## Other\n### Requirement: Orphan\n"
    )
    assert [(d.operation, d.requirement) for d in parse_deltas("auth/login", text)] == [
        ("ADDED", "Login"),
        ("MODIFIED", "Logout"),
        ("REMOVED", "Old"),
        ("REMOVED", "Older"),
        ("RENAMED", "A"),
    ]
    assert {d.capability for d in parse_deltas("auth/login", text)} == {"auth/login"}


def test_binary_bytes_read_as_replacement_characters(tmp_path: Path) -> None:
    """Node's utf-8 read replaces bad bytes; so does read_markdown (mutation: strict decode)."""
    path = tmp_path / "tasks.md"
    path.write_bytes(b"- [x] ok\n\xff\xfe\x00\x80 junk\n- [ ] \xc3 two\n")
    tasks = parse_tasks(read_markdown(path))
    assert [(t.text, t.done) for t in tasks] == [("ok", True), ("\ufffd two", False)]


def test_directory_and_unreadable_files_are_one_line_errors(tmp_path: Path) -> None:
    """Mutation caught: letting IsADirectoryError/PermissionError escape."""
    (tmp_path / "tasks.md").mkdir()
    with pytest.raises(OpenSpecParseError, match=r"^changes/x/tasks.md:0: is a directory"):
        read_markdown(tmp_path / "tasks.md", "changes/x/tasks.md")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OpenSpecParseError, match=r":0: cannot be read \(Not a directory\)"):
        read_markdown(tmp_path / "file" / "tasks.md")
    locked = tmp_path / "proposal.md"
    locked.write_text("# x\n")
    locked.chmod(0)
    try:
        if os.access(locked, os.R_OK):
            pytest.skip("running as root: permissions do not stop reads")
        with pytest.raises(OpenSpecParseError, match="permission denied") as error:
            read_markdown(locked)
        assert "\n" not in str(error.value) and error.value.line == 0
    finally:
        locked.chmod(0o644)


@pytest.mark.parametrize(
    "line",
    ["- [" + " " * 200_000 + "x", "- [" + " " * 200_000, "1" * 200_000 + ". [ ] x"],
)
def test_pathological_lines_take_linear_time(line: str) -> None:
    """OpenSpec's regex backtracks quadratically here; the hand matcher must not.

    Mutation caught: using ``re`` with OpenSpec's pattern (minutes instead of milliseconds).
    Not a timing assertion on speed, only a guard far above the linear cost.
    """
    started = time.perf_counter()
    assert match_task_line(line) is None
    assert time.perf_counter() - started < 2


@pytest.mark.slow
def test_ten_megabyte_tasks_file() -> None:
    """A 10 MB tasks.md parses in seconds (mutation: a quadratic scan would not finish)."""
    text = "- [x] 1.1 done task with some text\n" * 300_000
    assert len(text) > 10_000_000
    tasks = parse_tasks(text)
    assert len(tasks) == 300_000 and change_status(tasks) == "complete"


def test_counts_and_status_agree_with_openspec_list(openspec: OpenSpec) -> None:
    """The real CLI judges: tasks, done flags and status as ``openspec list`` sees them.

    Mutations caught: Python's ``\\s`` (the BOM line is lost), ``[ ](link)`` dropped,
    fenced boxes skipped.
    """
    openspec.run("new", "change", "made-by-cli")
    write_changes(openspec.project)
    listed = openspec.list_changes()
    assert set(listed) == {*CHANGES, "made-by-cli"}
    for name, change in listed.items():
        tasks_md = openspec.project / "openspec" / "changes" / name / "tasks.md"
        tasks = parse_tasks(read_markdown(tasks_md)) if tasks_md.exists() else []
        ours = (sum(t.done for t in tasks), len(tasks), change_status(tasks))
        theirs = (change["completedTasks"], change["totalTasks"], change["status"])
        assert ours == theirs, name


@pytest.mark.slow
def test_tasks_titles_and_deltas_agree_with_instructions_and_show(openspec: OpenSpec) -> None:
    """``instructions apply`` lists the tasks with text; ``show`` gives the title and deltas.

    Mutations caught: description not trimmed; `Change:` kept in the title; REMOVED
    bullets not read.
    """
    write_changes(openspec.project)
    root = openspec.project / "openspec" / "changes"
    for name, files in CHANGES.items():
        applied = openspec.json("instructions", "apply", "--change", name, check=False)
        tasks = parse_tasks(read_markdown(root / name / "tasks.md")) if "tasks.md" in files else []
        expected = [{"description": t.text, "done": t.done} for t in tasks if t.text]
        assert [{k: t[k] for k in ("description", "done")} for t in applied["tasks"]] == expected
        assert applied["progress"]["total"] == len(tasks)
        if "proposal.md" not in files:
            continue
        shown = openspec.json("show", name, "--type", "change", check=False)
        proposal = parse_proposal(read_markdown(root / name / "proposal.md"))
        assert shown["title"] == (proposal.title or name), name
        deltas = [
            delta
            for spec in sorted((root / name / "specs").rglob("spec.md"))
            for delta in parse_deltas(
                spec.parent.relative_to(root / name / "specs").as_posix(), spec.read_text()
            )
        ]
        assert [(d["spec"], d["operation"]) for d in shown["deltas"]] == [
            (d.capability, d.operation) for d in deltas
        ], name
