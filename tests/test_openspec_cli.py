"""`git taskstore openspec ...` through the command line, in real git repositories.

Every subcommand (init, sync, status, history, resolve, done, undone, list, show) is
called in-process (see testing.inprocess), and `openspec sync` once as a real process
that git starts. Checked: the human output, the --json shapes, the exit codes (0 ok, 1 an
expected failure: conflict, error, not found; 2 a usage error) and, for every failure,
one `error: ` line on stderr and no traceback.

Bad input arrives through git from strangers: a folder that is no change, an id OpenSpec
refuses, a 10 MB file, NUL bytes, invalid UTF-8, a folder or a link where a file should
be, a change folder moved away mid-sync, broken settings. Each gives a clear error (or a
sync error recorded on the change and shown by `status`), reads nothing through a link,
writes nothing through one, changes no other byte of the work tree, and the other
changes keep syncing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from testing import CACHE_NAMES, Result, assert_fails, data, init_repo, ok
from testing.inprocess import cli

from git_taskstore import Store
from git_taskstore.openspec import folders, syncrun
from git_taskstore.openspec.folders import FolderError

CHANGES_DIR = Path("openspec") / "changes"
LOGIN = CHANGES_DIR / "add-login"
TYPO = CHANGES_DIR / "fix-typo"
OLD = CHANGES_DIR / "archive" / "2025-12-01-old-thing"

LOGIN_PROPOSAL = (
    "# Change: Add login\n\n## Why\nUsers ask for it.\n\n"
    "## What Changes\n- **auth:** adds login\n\n## Impact\nSmall.\n"
)
LOGIN_TASKS = (
    "## 1. Setup\n- [ ] 1.1 Create module\n- [x] 1.2 Write docs\n\n## 2. Ship\n- [ ] 2.1 Release\n"
)
LOGIN_SPEC = (
    "## ADDED Requirements\n### Requirement: Login\nThe system SHALL log users in.\n\n"
    "#### Scenario: It works\n- **WHEN** asked\n- **THEN** it does\n"
)
TYPO_TASKS = "## 1. Fix\n- [ ] 1.1 Fix the typo\n- [ ] 1.2 Check the docs\n"
OLD_TASKS = "- [x] 1.1 Done long ago\n"

FILES = {
    LOGIN / "proposal.md": LOGIN_PROPOSAL,
    LOGIN / "tasks.md": LOGIN_TASKS,
    LOGIN / "specs" / "auth" / "spec.md": LOGIN_SPEC,
    TYPO / "tasks.md": TYPO_TASKS,
    OLD / "proposal.md": "# Change: Old thing\n\n## Why\nHistory.\n",
    OLD / "tasks.md": OLD_TASKS,
}
RESULT_KEYS = {
    "change",
    "folder",
    "state",
    "to_store",
    "to_files",
    "files_written",
    "conflicts",
    "resolved",
    "error",
    "synced_at",
}
HISTORY_KEYS = {"id", "change", "direction", "at", "success", "error", "files", "units", "trigger"}
STATUS_KEYS = {
    "change",
    "state",
    "folder",
    "tasks_done",
    "tasks_total",
    "synced_at",
    "conflicts",
    "error",
}
SUBCOMMANDS = ("init", "sync", "status", "history", "resolve", "done", "undone", "list", "show")
DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


# --- helpers ---------------------------------------------------------------------------


def os_cli(repo: Path, *args: str) -> Result:
    """`git taskstore openspec ARGS...`, in-process, in ``repo``."""
    return cli("openspec", *args, cwd=repo)


def tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under ``folder``, links not followed: bytes of files, the target of
    links, "dir" for folders: what a refused or failed command must leave as it was.
    Not .git, nor the store's cache and lock (derived, free to change on any read)."""
    found: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in sorted(dirnames + filenames):
            if name.startswith(CACHE_NAMES):
                continue
            path = Path(dirpath, name)
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[rel] = "dir"
            elif path.is_file():
                found[rel] = path.read_bytes() if os.access(path, os.R_OK) else "unreadable"
            else:
                found[rel] = "special"
    return found


def records(repo: Path, collection: str) -> dict[str, dict[str, Any]]:
    with Store.open(repo, create=False) as store:
        return {r["id"]: r for r in store.collection(collection).list()}


def change_record(repo: Path, change: str) -> dict[str, Any]:
    return records(repo, "openspec_changes")[change]


def tasks_of(repo: Path, change: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in records(repo, "openspec_tasks").items() if v["change"] == change}


def store_edit(repo: Path, collection: str, patch: dict[str, Any]) -> None:
    """A record changed by another tool, through the store (no sync)."""
    ok(cli("put", collection, "--merge", json.dumps(patch), cwd=repo))


def by_change(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["change"]: c for c in report["changes"]}


def failed_json(result: Result) -> Any:
    """A --json answer of a command that exits 1 (a conflict or an error in a change)."""
    assert result.code == 1, result
    assert "Traceback" not in result.out + result.err, result
    return json.loads(result.out)


def only_warnings(err: str) -> list[str]:
    lines = err.splitlines()
    assert all(line.startswith("warning: ") for line in lines), err
    return lines


def write(repo: Path, rel: Path, text: str | bytes) -> None:
    path = repo / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)


def copy_repo(template: Path, dest: Path) -> Path:
    shutil.copytree(template, dest, symlinks=True, ignore=shutil.ignore_patterns(*CACHE_NAMES))
    return dest


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo with a store and three OpenSpec changes, not yet mirrored: add-login
    (proposal, tasks, a spec), fix-typo (tasks only), old-thing (archived)."""
    repo = init_repo(tmp_path_factory.mktemp("bare") / "repo")
    ok(cli("init", cwd=repo))
    for rel, text in FILES.items():
        write(repo, rel, text)
    return repo


@pytest.fixture(scope="module")
def template(bare_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bare template after `openspec init`: every change mirrored."""
    repo = copy_repo(bare_template, tmp_path_factory.mktemp("synced") / "repo")
    ok(os_cli(repo, "init"))
    return repo


@pytest.fixture
def bare(bare_template: Path, tmp_path: Path) -> Path:
    return copy_repo(bare_template, tmp_path / "repo")


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A private copy of the mirrored template (without the cache)."""
    return copy_repo(template, tmp_path / "repo")


# --- help and usage ----------------------------------------------------------------------


def test_every_subcommand_has_help(template: Path) -> None:
    group = ok(os_cli(template, "-h"))
    assert group.out.startswith("Usage: git taskstore openspec ")
    for name in SUBCOMMANDS:
        assert re.search(rf"^  {name}\s+\S", group.out, re.M), group.out
    for name in SUBCOMMANDS:
        for flag in ("-h", "--help"):
            result = ok(os_cli(template, name, flag))
            assert result.out.startswith(f"Usage: git taskstore openspec {name} "), result
            assert "--json" in result.out and "--store DIR" in result.out, result
            assert result.err == ""
    assert "--files-wins" in ok(os_cli(template, "resolve", "-h")).out
    assert "--force" in ok(os_cli(template, "sync", "-h")).out
    assert "watch" in ok(cli("-h", cwd=template)).out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sync", "--force"], "--force needs --files-to-store or --store-to-files"),
        (["resolve", "add-login"], "--files-wins or --store-wins"),
        (["resolve"], "Missing argument 'CHANGE'"),
        (["done", "add-login"], "Missing argument 'TASK'"),
        (["undone"], "Missing argument 'CHANGE'"),
        (["show"], "Missing argument 'CHANGE'"),
        (["history", "--limit", "-1"], "--limit"),
        (["sync", "--bogus"], "No such option"),
        (["nonsense"], "No such command"),
    ],
)
def test_usage_errors_exit_2_and_change_nothing(
    template: Path, args: list[str], needle: str
) -> None:
    before = tree(template)
    assert_fails(os_cli(template, *args), 2, needle)
    assert tree(template) == before


# --- init ----------------------------------------------------------------------------------


def test_init_records_the_roots_and_mirrors_every_change(bare: Path) -> None:
    files_before = tree(bare / "openspec")
    result = ok(os_cli(bare, "init"))
    assert result.err == ""
    lines = result.out.splitlines()
    assert lines == [
        "OpenSpec roots: openspec (in .taskstore/openspec.json)",
        "  .gitattributes: openspec/changes/**/tasks.md merges line by line (merge=taskstore)",
        "add-login: files -> store: task 1.1, task 1.2, task 2.1, section Why, "
        "section What Changes, section Impact",
        "fix-typo: files -> store: task 1.1, task 1.2",
        "old-thing: files -> store: task 1.1, section Why",
    ]
    settings = json.loads((bare / ".taskstore" / "openspec.json").read_bytes())
    assert settings == {"roots": ["openspec"], "history_limit": 1000, "backups": 20}
    assert tree(bare / "openspec") == files_before  # reading the files writes none

    login = change_record(bare, "add-login")
    assert login["title"] == "Add login" and login["status"] == "in-progress"
    assert (login["tasks_done"], login["tasks_total"]) == (1, 3)
    assert login["why"] == "Users ask for it." and login["sync_error"] is None
    assert login["deltas"] == [{"capability": "auth", "operation": "ADDED", "requirement": "Login"}]
    assert change_record(bare, "old-thing")["status"] == "archived"
    assert change_record(bare, "old-thing")["archived_on"] == "2025-12-01"
    assert sorted(tasks_of(bare, "add-login")) == [
        "add-login/1.1",
        "add-login/1.2",
        "add-login/2.1",
    ]
    ignored = (bare / ".taskstore" / ".gitignore").read_text().splitlines()
    assert {"openspec.state", "openspec-backups"} <= set(ignored)

    again = ok(os_cli(bare, "init"))  # twice: nothing more to do
    assert again.out.splitlines() == [lines[0], "3 change(s) in sync"]


def test_init_json_no_sync_and_several_roots(bare: Path) -> None:
    report = data(os_cli(bare, "init", "--no-sync", "--json"))
    assert report == {
        "roots": ["openspec"],
        "attributes": ["openspec/changes/**/tasks.md"],
        "sync": None,
    }
    assert records(bare, "openspec_changes") == {}

    write(bare, Path("other") / "changes" / "extra" / "tasks.md", "- [ ] 1.1 Extra\n")
    result = os_cli(bare, "init", "--root", "openspec", "--root", "other/", "--root", "gone")
    assert result.code == 0, result
    assert result.out.startswith("OpenSpec roots: openspec, other, gone (in ")
    assert only_warnings(result.err) == [
        "warning: OpenSpec root gone/changes is missing; nothing synced there"
    ]
    assert sorted(records(bare, "openspec_changes")) == [
        "add-login",
        "extra",
        "fix-typo",
        "old-thing",
    ]
    assert change_record(bare, "extra")["folder"] == "other/changes/extra"

    report = json.loads(os_cli(bare, "init", "--root", "openspec", "--json").out)
    assert report["roots"] == ["openspec"]
    assert set(report["sync"]) == {"changes", "skipped", "missing_roots"}
    assert all(set(c) == RESULT_KEYS for c in report["sync"]["changes"])


@pytest.mark.parametrize("root", ["../outside", "/etc", "openspec/../..", "."])
def test_init_refuses_a_root_outside_the_work_tree(bare: Path, root: str) -> None:
    before = tree(bare)
    assert_fails(os_cli(bare, "init", "--root", root), 1, "must be a folder inside the work tree")
    assert tree(bare) == before
    assert not (bare / ".taskstore" / "openspec.json").exists()


def test_commands_before_init_say_how_to_set_up(bare: Path) -> None:
    before = tree(bare)
    for args in (["sync"], ["status"], ["list"], ["history"], ["show", "add-login"]):
        assert_fails(os_cli(bare, *args), 1, "not set up", "git taskstore openspec init")
    assert tree(bare) == before


# --- sync, list, show, history ---------------------------------------------------------


def test_sync_both_ways_human_and_json(repo: Path) -> None:
    result = ok(os_cli(repo, "sync"))
    assert (result.out, result.err) == ("3 change(s) in sync\n", "")

    # A file edit (task 2.1 ticked) and a store edit (fix-typo 1.2) at once.
    write(repo, LOGIN / "tasks.md", LOGIN_TASKS.replace("- [ ] 2.1", "- [x] 2.1"))
    store_edit(repo, "openspec_tasks", {"id": "fix-typo/1.2", "done": True})
    result = ok(os_cli(repo, "sync"))
    assert result.out.splitlines() == [
        "add-login: files -> store: task 2.1",
        "fix-typo: store -> files: task 1.2",
    ]
    assert tasks_of(repo, "add-login")["add-login/2.1"]["done"] is True
    assert (repo / TYPO / "tasks.md").read_text() == TYPO_TASKS.replace("- [ ] 1.2", "- [x] 1.2")
    backups = list((repo / ".taskstore" / "openspec-backups").rglob("*-tasks.md"))
    assert [b.read_text() for b in backups] == [TYPO_TASKS]  # the replaced file, kept

    write(repo, TYPO / "tasks.md", TYPO_TASKS)
    report = data(os_cli(repo, "sync", "fix-typo", "--json"))
    assert set(report) == {"changes", "skipped", "missing_roots"}
    (only,) = report["changes"]
    assert set(only) == RESULT_KEYS
    assert only["change"] == "fix-typo" and only["state"] == "files_changed"
    assert only["to_store"] == ["task 1.2"] and only["to_files"] == []
    assert only["folder"] == "openspec/changes/fix-typo" and isinstance(only["synced_at"], int)


def test_one_way_syncs_leave_the_other_way_pending(repo: Path) -> None:
    write(repo, LOGIN / "tasks.md", LOGIN_TASKS.replace("- [ ] 1.1", "- [x] 1.1"))
    store_edit(repo, "openspec_tasks", {"id": "add-login/2.1", "done": True})
    login_file = (repo / LOGIN / "tasks.md").read_bytes()

    result = ok(os_cli(repo, "sync", "--files-to-store"))
    assert result.out == "add-login: files -> store: task 1.1\n"
    assert (repo / LOGIN / "tasks.md").read_bytes() == login_file  # 2.1 not written
    status = data(os_cli(repo, "status", "add-login", "--json"))
    assert status["changes"][0]["state"] == "store_changed"

    result = ok(os_cli(repo, "sync", "add-login", "--store-to-files"))
    assert result.out == "add-login: store -> files: task 2.1\n"
    assert "- [x] 1.1" in (repo / LOGIN / "tasks.md").read_text()
    assert "- [x] 2.1" in (repo / LOGIN / "tasks.md").read_text()
    assert data(os_cli(repo, "status", "--json"))["changes"][0]["state"] == "in_sync"


def test_list_and_show(repo: Path) -> None:
    result = ok(os_cli(repo, "list"))
    lines = result.out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["CHANGE", "STATUS", "TASKS", "TITLE", "LAST SYNC"]
    rows = [re.split(r"\s{2,}", line) for line in lines[1:]]
    assert [r[:4] for r in rows] == [
        ["add-login", "in-progress", "1/3", "Add login"],
        ["fix-typo", "in-progress", "0/2", "fix-typo"],
        ["old-thing", "archived", "1/1", "Old thing"],
    ]
    assert all(re.fullmatch(DATE, r[4]) for r in rows)

    listed = data(os_cli(repo, "list", "--json"))
    assert [r["id"] for r in listed] == ["add-login", "fix-typo", "old-thing"]
    assert not {"files", "hashes", "synced"} & set(listed[0])

    shown = ok(os_cli(repo, "show", "add-login")).out
    assert shown.startswith(
        "add-login: Add login  [in-progress]\nfolder: openspec/changes/add-login\n"
    )
    assert "\n## Why\nUsers ask for it.\n" in shown
    assert "\n## What Changes\n- **auth:** adds login\n" in shown
    assert "\nDeltas:\n  ADDED    auth: Login\n" in shown
    assert shown.endswith(
        "\nTasks (1/3):\n  [ ] 1.1 Create module\n  [x] 1.2 Write docs\n  [ ] 2.1 Release\n"
    )

    record = data(os_cli(repo, "show", "add-login", "--json"))
    assert "files" not in record and "hashes" not in record
    assert [t["key"] for t in record["tasks"]] == ["1.1", "1.2", "2.1"]
    assert record["tasks"][0]["group"] == "1. Setup"
    with_files = data(os_cli(repo, "show", "add-login", "--files", "--json"))
    assert with_files["files"]["tasks.md"] == LOGIN_TASKS
    assert with_files["files"]["specs/auth/spec.md"] == LOGIN_SPEC

    assert_fails(os_cli(repo, "show", "nope"), 1, "no OpenSpec change 'nope'")


def test_list_and_history_when_empty(bare: Path) -> None:
    ok(os_cli(bare, "init", "--no-sync"))
    assert ok(os_cli(bare, "list")).err.startswith("no OpenSpec change in the store")
    assert data(os_cli(bare, "list", "--json")) == []
    assert ok(os_cli(bare, "history")).err == "no sync recorded\n"
    assert data(os_cli(bare, "history", "--json")) == []


def test_history_human_json_limit_and_filter(repo: Path) -> None:
    ok(os_cli(repo, "done", "fix-typo", "1.1"))
    entries = data(os_cli(repo, "history", "--json"))
    assert all(set(e) >= HISTORY_KEYS for e in entries)
    assert [(e["change"], e["direction"], e["trigger"]) for e in entries] == [
        ("fix-typo", "store_to_files", "store_edit"),
        ("old-thing", "files_to_store", "manual"),  # one sync: newest written first
        ("fix-typo", "files_to_store", "manual"),
        ("add-login", "files_to_store", "manual"),
    ]
    assert entries[0]["units"] == ["task 1.1"] and entries[0]["success"] is True
    assert entries[0]["files"] == ["openspec/changes/fix-typo/tasks.md"]
    assert len(data(os_cli(repo, "history", "--limit", "1", "--json"))) == 1
    only = data(os_cli(repo, "history", "fix-typo", "--json"))
    assert {e["change"] for e in only} == {"fix-typo"} and len(only) == 2

    lines = ok(os_cli(repo, "history", "--limit", "2")).out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "AT",
        "CHANGE",
        "DIRECTION",
        "TRIGGER",
        "RESULT",
        "UNITS",
    ]
    assert len(lines) == 3
    assert re.match(rf"{DATE}  fix-typo +store_to_files +store_edit +ok +task 1\.1$", lines[1])


# --- done, undone ------------------------------------------------------------------------


def test_done_and_undone_write_only_the_box(repo: Path) -> None:
    result = ok(os_cli(repo, "done", "add-login", "1.1"))
    assert (result.out, result.err) == ("add-login 1.1: done\n", "")
    assert (repo / LOGIN / "tasks.md").read_text() == LOGIN_TASKS.replace("- [ ] 1.1", "- [x] 1.1")
    task = tasks_of(repo, "add-login")["add-login/1.1"]
    assert task["done"] is True and task["synced"] == {"done": True, "text": "1.1 Create module"}

    written = (repo / LOGIN / "tasks.md").stat().st_mtime_ns
    again = data(os_cli(repo, "done", "add-login", "1.1", "--json"))  # nothing to do
    assert set(again) == RESULT_KEYS and again["files_written"] == []
    assert again["state"] == "in_sync"
    assert (repo / LOGIN / "tasks.md").stat().st_mtime_ns == written

    result = data(os_cli(repo, "undone", "add-login", "1.2", "--json"))
    assert result["to_files"] == ["task 1.2"]
    assert result["files_written"] == ["openspec/changes/add-login/tasks.md"]
    assert ok(os_cli(repo, "undone", "add-login", "1.1")).out == "add-login 1.1: not done\n"
    assert (repo / LOGIN / "tasks.md").read_text() == LOGIN_TASKS.replace("- [x] 1.2", "- [ ] 1.2")
    assert change_record(repo, "add-login")["tasks_done"] == 0


def test_done_on_an_unknown_change_or_task(repo: Path) -> None:
    before = tree(repo)
    assert_fails(os_cli(repo, "done", "add-login", "9.9"), 1, "has no task '9.9'", "1.1, 1.2, 2.1")
    assert_fails(os_cli(repo, "undone", "nope", "1.1"), 1, "no OpenSpec change 'nope'")
    assert_fails(os_cli(repo, "done", "add-login", "9.9", "--json"), 1, "has no task")
    assert tree(repo) == before


def test_unknown_change_is_one_line_error(repo: Path) -> None:
    before = tree(repo)
    for args in (["sync", "nope"], ["status", "nope"], ["resolve", "nope", "--files-wins"]):
        assert_fails(os_cli(repo, *args), 1, "no OpenSpec change 'nope' under openspec")
        assert_fails(os_cli(repo, *args, "--json"), 1, "no OpenSpec change 'nope'")
    assert tree(repo) == before


def test_store_option_from_another_folder(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = str(repo / ".taskstore")
    listed = data(cli("openspec", "list", "--json", "--store", store, cwd=elsewhere))
    assert [r["id"] for r in listed] == ["add-login", "fix-typo", "old-thing"]
    ok(cli("openspec", "done", "fix-typo", "1.1", "--store", store, cwd=elsewhere))
    assert "- [x] 1.1" in (repo / TYPO / "tasks.md").read_text()
    assert not any(elsewhere.iterdir())


# --- conflicts, status and resolve ----------------------------------------------------------


def make_conflict(repo: Path) -> bytes:
    """Task 1.1 of add-login reworded in the file and ticked in the store; returns the file."""
    edited = LOGIN_TASKS.replace("1.1 Create module", "1.1 Create the module")
    write(repo, LOGIN / "tasks.md", edited)
    store_edit(repo, "openspec_tasks", {"id": "add-login/1.1", "done": True})
    return edited.encode()


def test_conflict_exits_1_and_overwrites_nothing(repo: Path) -> None:
    in_file = make_conflict(repo)
    result = os_cli(repo, "sync")
    assert result.code == 1 and result.err == "", result
    assert result.out == (
        "add-login: CONFLICT on task 1.1 (resolve with `git taskstore openspec resolve "
        "add-login --files-wins|--store-wins`)\n"
    )
    assert (repo / LOGIN / "tasks.md").read_bytes() == in_file
    task = tasks_of(repo, "add-login")["add-login/1.1"]
    assert (task["done"], task["text"]) == (True, "1.1 Create module")
    conflicts = change_record(repo, "add-login")["conflicts"]
    assert conflicts == [
        {
            "unit": "task 1.1",
            "files": {"done": False, "text": "1.1 Create the module"},
            "store": {"done": True, "text": "1.1 Create module"},
            "base": {"done": False, "text": "1.1 Create module"},
        }
    ]
    report = failed_json(os_cli(repo, "sync", "--json"))
    assert by_change(report)["add-login"]["state"] == "conflict"
    # One way or the other, without --force, the conflict stays.
    assert os_cli(repo, "sync", "--store-to-files").code == 1
    assert os_cli(repo, "sync", "--files-to-store").code == 1
    assert (repo / LOGIN / "tasks.md").read_bytes() == in_file

    (failed,) = [e for e in data(os_cli(repo, "history", "--json")) if not e["success"]]
    assert failed["error"] == "conflict: task 1.1 changed in the files and in the store"
    newest = ok(os_cli(repo, "history", "--limit", "1")).out.splitlines()[1]
    assert re.match(rf"{DATE}  add-login +both +manual +FAILED: conflict: task 1\.1 ", newest)

    status = data(os_cli(repo, "status", "--json"))
    assert set(status) == {"changes", "watcher"}
    assert status["watcher"] == {"running": False, "pid": None}
    rows = {r["change"]: r for r in status["changes"]}
    assert all(set(r) == STATUS_KEYS for r in rows.values())
    assert rows["add-login"]["state"] == "conflict" and rows["add-login"]["conflicts"] == conflicts
    assert rows["fix-typo"]["state"] == "in_sync" and rows["fix-typo"]["error"] is None
    assert (rows["add-login"]["tasks_done"], rows["add-login"]["tasks_total"]) == (1, 3)

    human = ok(os_cli(repo, "status"))
    lines = human.out.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == ["CHANGE", "STATE", "TASKS", "LAST SYNC", "PROBLEM"]
    assert re.fullmatch(rf"add-login +conflict +1/3 +{DATE} +task 1\.1", lines[1])
    assert re.fullmatch(rf"fix-typo +in sync +0/2 +{DATE}", lines[2])
    assert lines[-1] == "watcher: not running"
    assert "CONFLICT: task 1.1" in ok(os_cli(repo, "show", "add-login")).out


def test_done_during_a_conflict(repo: Path) -> None:
    in_file = make_conflict(repo)
    assert os_cli(repo, "sync").code == 1
    # The conflicting task: refused, one error line naming the way out.
    assert_fails(
        os_cli(repo, "done", "add-login", "1.1"),
        1,
        "add-login: CONFLICT on task 1.1",
        "git taskstore openspec resolve add-login --files-wins|--store-wins",
    )
    assert (repo / LOGIN / "tasks.md").read_bytes() == in_file
    # Another task: written, and the conflict that remains is still an error.
    result = os_cli(repo, "done", "add-login", "2.1")
    assert result.code == 1, result
    assert result.out == "add-login 2.1: done\n"
    assert result.err.splitlines() == [
        "error: add-login: CONFLICT on task 1.1 (resolve with `git taskstore openspec resolve "
        "add-login --files-wins|--store-wins`)"
    ]
    assert (repo / LOGIN / "tasks.md").read_bytes() == in_file.replace(b"- [ ] 2.1", b"- [x] 2.1")
    report = failed_json(os_cli(repo, "done", "add-login", "2.1", "--json"))
    assert report["state"] == "conflict" and report["conflicts"][0]["unit"] == "task 1.1"


def test_resolve_store_wins(repo: Path) -> None:
    make_conflict(repo)
    os_cli(repo, "sync")
    result = ok(os_cli(repo, "resolve", "add-login", "--store-wins"))
    assert result.out.splitlines() == [
        "add-login: the store won task 1.1 (the other values are in the history)",
        "add-login: store -> files: task 1.1",
    ]
    assert (repo / LOGIN / "tasks.md").read_text() == LOGIN_TASKS.replace("- [ ] 1.1", "- [x] 1.1")
    assert change_record(repo, "add-login")["conflicts"] == []
    newest = data(os_cli(repo, "history", "add-login", "--limit", "1", "--json"))[0]
    assert newest["success"] is True and newest["units"] == ["task 1.1"]
    assert "the other side had" in newest["error"] and "Create the module" in newest["error"]

    again = ok(os_cli(repo, "resolve", "add-login", "--files-wins"))
    assert again.out.splitlines() == ["add-login: no conflict to resolve", "1 change(s) in sync"]


def test_resolve_files_wins_json(repo: Path) -> None:
    in_file = make_conflict(repo)
    result = data(os_cli(repo, "resolve", "add-login", "--files-wins", "--json"))
    assert set(result) == RESULT_KEYS and result["state"] == "files_changed"
    assert [c["unit"] for c in result["resolved"]] == ["task 1.1"]
    assert result["to_store"] == ["task 1.1"] and result["files_written"] == []
    assert (repo / LOGIN / "tasks.md").read_bytes() == in_file
    task = tasks_of(repo, "add-login")["add-login/1.1"]
    assert (task["done"], task["text"]) == (False, "1.1 Create the module")


def test_sync_force_with_a_direction_resolves(repo: Path) -> None:
    make_conflict(repo)
    result = ok(os_cli(repo, "sync", "--store-to-files", "--force"))
    assert result.out == "add-login: store -> files: task 1.1\n"
    assert "- [x] 1.1 Create module\n" in (repo / LOGIN / "tasks.md").read_text()


def test_deleted_folder_and_missing_root(repo: Path) -> None:
    shutil.rmtree(repo / TYPO)
    status = data(os_cli(repo, "status", "--json"))
    assert {r["change"]: r["state"] for r in status["changes"]}["fix-typo"] == "deleted"
    assert re.search(r"^fix-typo +folder deleted +0/2 ", ok(os_cli(repo, "status")).out, re.M)
    result = ok(os_cli(repo, "sync"))
    assert result.out == "fix-typo: folder deleted: records removed\n"
    assert "fix-typo" not in records(repo, "openspec_changes")
    assert tasks_of(repo, "fix-typo") == {}

    # A root that vanishes (a checkout of an older commit) deletes nothing.
    os.rename(repo / "openspec", repo / "moved")
    before = records(repo, "openspec_changes")
    result = ok(os_cli(repo, "sync"))
    assert only_warnings(result.err) == [
        "warning: OpenSpec root openspec/changes is missing; nothing synced there"
    ]
    assert result.out == "0 change(s) in sync\n"
    assert records(repo, "openspec_changes") == before


# --- bad input: folders ------------------------------------------------------------------------


def test_folders_that_are_not_changes_are_skipped_with_a_reason(repo: Path, tmp_path: Path) -> None:
    write(repo, CHANGES_DIR / "notes" / "README.md", "not a change\n")
    write(repo, CHANGES_DIR / "Bad_Name" / "tasks.md", "- [ ] 1.1 x\n")
    write(repo, CHANGES_DIR / "archive" / "no-date" / "tasks.md", "- [ ] 1.1 x\n")
    write(repo, CHANGES_DIR / "stray.md", "a file beside the changes\n")
    outside = tmp_path / "elsewhere"
    write(outside, Path("tasks.md"), "- [ ] 1.1 Outside\n")
    os.symlink(outside, repo / CHANGES_DIR / "linked")
    before = tree(repo / "openspec"), records(repo, "openspec_changes")

    result = ok(os_cli(repo, "sync"))
    assert result.out == "3 change(s) in sync\n"
    assert sorted(only_warnings(result.err)) == [
        "warning: skipped openspec/changes/Bad_Name: 'Bad_Name' is not an OpenSpec change id "
        "(lower-case letters and digits in words joined by '-'): rename the folder",
        "warning: skipped openspec/changes/archive/no-date: an archived change is named "
        "YYYY-MM-DD-<id>",
        "warning: skipped openspec/changes/linked: is a symbolic link; links are never followed",
        "warning: skipped openspec/changes/notes: not a change: none of proposal.md, tasks.md, "
        "design.md, specs/",
    ]
    report = data(os_cli(repo, "sync", "--json"))
    assert sorted(s["folder"] for s in report["skipped"]) == [
        "openspec/changes/Bad_Name",
        "openspec/changes/archive/no-date",
        "openspec/changes/linked",
        "openspec/changes/notes",
    ]
    assert sorted(records(repo, "openspec_changes")) == ["add-login", "fix-typo", "old-thing"]
    assert not any("Outside" in t["text"] for t in records(repo, "openspec_tasks").values())
    assert only_warnings(ok(os_cli(repo, "status")).err)  # status warns of them too
    assert_fails(os_cli(repo, "sync", "Bad_Name"), 1, "no OpenSpec change 'Bad_Name'")
    assert_fails(os_cli(repo, "sync", "linked"), 1, "no OpenSpec change 'linked'")
    assert (tree(repo / "openspec"), records(repo, "openspec_changes")) == before


@pytest.mark.parametrize("linked", ["openspec", "openspec/changes"])
def test_a_linked_root_is_never_followed(repo: Path, tmp_path: Path, linked: str) -> None:
    real = tmp_path / "real"
    os.rename(repo / linked, real)
    os.symlink(real, repo / linked)
    before_records = records(repo, "openspec_changes")
    before_outside = tree(real)
    result = ok(os_cli(repo, "sync"))
    assert only_warnings(result.err) == [
        "warning: OpenSpec root openspec/changes is missing; nothing synced there"
    ]
    assert records(repo, "openspec_changes") == before_records
    store_edit(repo, "openspec_tasks", {"id": "fix-typo/1.1", "done": True})
    ok(os_cli(repo, "sync"))
    assert tree(real) == before_outside


# --- bad input: files ----------------------------------------------------------------------------


def _big(path: Path, tmp: Path) -> str:
    path.write_bytes(TYPO_TASKS.encode() + b"- [ ] 9.9 padding\n" * 560_000)  # 10 MB
    return "over the 1 MiB an OpenSpec file may have here"


def _nul(path: Path, tmp: Path) -> str:
    path.write_bytes(TYPO_TASKS.encode().replace(b"typo", b"ty\0po"))
    return "holds binary data (NUL bytes)"


def _folder(path: Path, tmp: Path) -> str:
    path.unlink()
    path.mkdir()
    (path / "inside.md").write_text("- [ ] 1.1 inside\n")
    return "is a folder, not a file"


def _link_outside(path: Path, tmp: Path) -> str:
    (tmp / "outside.md").write_text("- [x] 1.1 Fix the typo\n- [ ] 1.2 secret outside\n")
    path.unlink()
    os.symlink(tmp / "outside.md", path)
    return "is a symbolic link; the store never reads through links"


def _link_passwd(path: Path, tmp: Path) -> str:
    path.unlink()
    os.symlink("/etc/passwd", path)
    return "is a symbolic link"


def _fifo(path: Path, tmp: Path) -> str:
    path.unlink()
    os.mkfifo(path)
    return "is not a regular file"


def _markers(path: Path, tmp: Path) -> str:
    path.write_text("<<<<<<< ours\n- [x] 1.1 Fix the typo\n=======\n- [ ] 1.1 x\n>>>>>>> b\n")
    return "holds git conflict markers"


def _unreadable(path: Path, tmp: Path) -> str:
    if os.geteuid() == 0:
        pytest.skip("running as root: permissions do not stop reads")
    path.chmod(0)
    return "permission denied"


BREAKAGES: dict[str, Callable[[Path, Path], str]] = {
    "10 MB": _big,
    "NUL bytes": _nul,
    "a folder": _folder,
    "link out of the repo": _link_outside,
    "link to /etc/passwd": _link_passwd,
    "fifo": _fifo,
    "conflict markers": _markers,
    "permission denied": _unreadable,
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_tasks_file_is_a_recorded_error_and_the_rest_syncs(
    repo: Path, tmp_path: Path, breakage: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    needle = BREAKAGES[breakage](repo / TYPO / "tasks.md", outside)
    # Meanwhile another change is edited, in its file and in the store.
    write(repo, LOGIN / "tasks.md", LOGIN_TASKS.replace("- [ ] 2.1", "- [x] 2.1"))
    store_edit(repo, "openspec_tasks", {"id": "old-thing/1.1", "done": False})
    typo_record = change_record(repo, "fix-typo")
    typo_tasks = tasks_of(repo, "fix-typo")
    before = tree(repo / "openspec")
    outside_before = tree(outside)
    try:
        report = failed_json(os_cli(repo, "sync", "--json"))
        results = by_change(report)
        assert results["fix-typo"]["state"] == "error"
        assert needle in results["fix-typo"]["error"]
        assert "\n" not in results["fix-typo"]["error"]
        assert results["add-login"]["to_store"] == ["task 2.1"]
        assert results["old-thing"]["to_files"] == ["task 1.1"]
        assert tasks_of(repo, "add-login")["add-login/2.1"]["done"] is True
        assert (repo / OLD / "tasks.md").read_text() == "- [ ] 1.1 Done long ago\n"

        # The broken change: its records as they were, plus the error.
        assert tasks_of(repo, "fix-typo") == typo_tasks
        recorded = change_record(repo, "fix-typo")
        assert needle in recorded["sync_error"]
        assert {k: v for k, v in recorded.items() if k not in ("sync_error", "updated_at")} == {
            k: v for k, v in typo_record.items() if k not in ("sync_error", "updated_at")
        }

        # Shown by status, in full; the sync says it again, the history once.
        rows = {r["change"]: r for r in data(os_cli(repo, "status", "--json"))["changes"]}
        assert rows["fix-typo"]["state"] == "error" and needle in rows["fix-typo"]["error"]
        assert rows["add-login"]["state"] == "in_sync" and rows["add-login"]["error"] is None
        human = ok(os_cli(repo, "status")).out
        assert re.search(r"^fix-typo +error +0/2 ", human, re.M), human
        (full,) = [line for line in human.splitlines() if line.startswith("fix-typo: error: ")]
        assert needle in full and full.endswith(rows["fix-typo"]["error"])
        again = os_cli(repo, "sync")
        assert again.code == 1 and again.err == "", again
        assert again.out.startswith("fix-typo: error: openspec/changes/fix-typo/tasks.md")
        assert needle in again.out and len(again.out.splitlines()) == 1
        failures = [
            e for e in data(os_cli(repo, "history", "fix-typo", "--json")) if not e["success"]
        ]
        assert len(failures) == 1 and needle in failures[0]["error"]

        # A tick through the store reaches no file, and nothing through a link.
        assert_fails(os_cli(repo, "done", "fix-typo", "1.1"), 1, "fix-typo", needle)
        assert_fails(os_cli(repo, "resolve", "fix-typo", "--store-wins"), 1, needle)
        # Every other byte as it was: only old-thing's tick went into its file.
        assert tree(repo / "openspec") == {
            **before,
            "changes/archive/2025-12-01-old-thing/tasks.md": OLD_TASKS.replace(
                "[x]", "[ ]"
            ).encode(),
        }
        assert tree(outside) == outside_before
        stored = b"".join(p.read_bytes() for p in (repo / ".taskstore").glob("*.jsonl"))
        assert b"secret outside" not in stored and b"root:" not in stored
    finally:
        if breakage == "permission denied":
            (repo / TYPO / "tasks.md").chmod(0o644)  # or tmp_path cannot be removed


def test_an_error_clears_once_the_file_is_fixed_and_the_pending_tick_lands(repo: Path) -> None:
    """A tick refused while tasks.md is broken waits in the store (its base unchanged) and
    is written when the file is readable again; the sync error is then cleared."""
    _nul(repo / TYPO / "tasks.md", repo)
    assert os_cli(repo, "done", "fix-typo", "1.1").code == 1
    task = tasks_of(repo, "fix-typo")["fix-typo/1.1"]
    assert task["done"] is True and task["synced"]["done"] is False
    write(repo, TYPO / "tasks.md", TYPO_TASKS)
    result = ok(os_cli(repo, "sync"))
    assert result.out == "fix-typo: store -> files: task 1.1\n"
    assert (repo / TYPO / "tasks.md").read_text() == TYPO_TASKS.replace("- [ ] 1.1", "- [x] 1.1")
    assert change_record(repo, "fix-typo")["sync_error"] is None
    rows = data(os_cli(repo, "status", "--json"))["changes"]
    assert all(r["error"] is None and r["state"] == "in_sync" for r in rows)


def test_a_new_change_that_cannot_be_read_is_recorded_and_shown(repo: Path) -> None:
    (repo / CHANGES_DIR / "broken" / "tasks.md").mkdir(parents=True)
    result = os_cli(repo, "sync")
    assert result.code == 1, result
    assert result.out == (
        "broken: error: openspec/changes/broken/tasks.md is a folder, not a file: "
        "replace it with a file\n"
    )
    record = change_record(repo, "broken")
    assert record["folder"] == "openspec/changes/broken" and "is a folder" in record["sync_error"]
    shown = os_cli(repo, "show", "broken")
    assert shown.code == 0, shown
    assert shown.out.splitlines()[0] == "broken: broken  [not synced]"
    assert "None" not in shown.out
    assert "sync error: openspec/changes/broken/tasks.md is a folder" in shown.out
    assert "broken  " in ok(os_cli(repo, "list")).out


def test_a_folder_that_cannot_be_written(repo: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: permissions do not stop writes")
    (repo / TYPO).chmod(0o555)
    try:
        assert_fails(os_cli(repo, "done", "fix-typo", "1.1"), 1, "cannot write", "permissions")
        assert (repo / TYPO / "tasks.md").read_text() == TYPO_TASKS
        assert sorted(p.name for p in (repo / TYPO).iterdir()) == ["tasks.md"]  # no temp file
    finally:
        (repo / TYPO).chmod(0o755)


def test_invalid_utf8_is_read_but_never_written(repo: Path) -> None:
    broken = TYPO_TASKS.encode().replace(b"typo", b"typ\xe9")
    write(repo, TYPO / "tasks.md", broken)
    result = ok(os_cli(repo, "sync"))  # read: the bad byte is U+FFFD, as Node reads it
    assert result.out == "fix-typo: files -> store: task 1.1\n"
    assert tasks_of(repo, "fix-typo")["fix-typo/1.1"]["text"] == "1.1 Fix the typ\ufffd"
    backups = repo / ".taskstore" / "openspec-backups"
    before = tree(repo / "openspec")
    before_backups = tree(backups) if backups.exists() else {}

    error = assert_fails(
        os_cli(repo, "done", "fix-typo", "1.1"), 1, "is not valid UTF-8", "fix its encoding"
    )
    assert "openspec/changes/fix-typo/tasks.md" in error
    assert (repo / TYPO / "tasks.md").read_bytes() == broken
    assert tree(repo / "openspec") == before
    assert (tree(backups) if backups.exists() else {}) == before_backups
    assert "not valid UTF-8" in change_record(repo, "fix-typo")["sync_error"]
    row = data(os_cli(repo, "status", "fix-typo", "--json"))["changes"][0]
    assert row["state"] == "store_changed" and "not valid UTF-8" in row["error"]
    assert os_cli(repo, "sync", "--store-to-files").code == 1
    assert (repo / TYPO / "tasks.md").read_bytes() == broken


def test_a_refused_write_is_not_reported_as_done(repo: Path) -> None:
    write(repo, TYPO / "tasks.md", TYPO_TASKS.encode().replace(b"typo", b"typ\xe9"))
    ok(os_cli(repo, "sync"))
    result = failed_json(os_cli(repo, "done", "fix-typo", "1.1", "--json"))
    assert result["state"] == "error" and "not valid UTF-8" in result["error"]
    assert result["files_written"] == []
    assert result["to_files"] == []  # got ["task 1.1"]
    again = os_cli(repo, "sync")
    assert again.out.startswith("fix-typo: error: "), again  # got "fix-typo: store -> files"


def test_a_link_put_in_place_after_a_sync_is_never_written_through(
    repo: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target.md"
    target.write_bytes(TYPO_TASKS.encode())
    (repo / TYPO / "tasks.md").unlink()
    os.symlink(target, repo / TYPO / "tasks.md")
    assert_fails(os_cli(repo, "done", "fix-typo", "1.2"), 1, "symbolic link")
    store_edit(repo, "openspec_tasks", {"id": "fix-typo/1.1", "done": True})
    assert os_cli(repo, "sync", "--store-to-files", "--force").code == 1
    assert target.read_bytes() == TYPO_TASKS.encode()
    assert (repo / TYPO / "tasks.md").is_symlink()


# --- bad input: a change folder moved during a sync -------------------------------------------


def test_replace_file_refuses_a_stale_read(repo: Path) -> None:
    backups = str(repo / ".taskstore" / "openspec-backups")
    top, folder = str(repo), TYPO.as_posix()
    with pytest.raises(FolderError, match="changed during the sync") as stale:
        folders.replace_file(top, folder, "tasks.md", b"what was read", b"new\n", backups, 5)
    assert stale.value.transient
    with pytest.raises(FolderError, match="appeared during the sync") as appeared:
        folders.replace_file(top, folder, "tasks.md", None, b"new\n", backups, 5)
    assert appeared.value.transient
    with pytest.raises(FolderError, match="vanished or was replaced") as gone:
        folders.replace_file(top, "openspec/changes/gone", "tasks.md", None, b"x", backups, 5)
    assert gone.value.transient
    assert (repo / TYPO / "tasks.md").read_text() == TYPO_TASKS
    assert not Path(backups).exists()


def test_a_change_archived_during_the_sync(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`openspec archive` moves the folder between the sync's read and its write: the
    write is refused (transient), nothing is written anywhere, and the next sync writes
    the tick into the archived folder."""
    real = syncrun.replace_file
    moved = repo / CHANGES_DIR / "archive" / "2026-01-02-fix-typo"

    def archive_first(top: str, folder: str, *args: Any) -> tuple[int, int, int]:
        os.rename(os.path.join(top, folder), moved)
        return real(top, folder, *args)

    monkeypatch.setattr(syncrun, "replace_file", archive_first)
    assert_fails(os_cli(repo, "done", "fix-typo", "1.1"), 1, "vanished or was replaced")
    assert (moved / "tasks.md").read_text() == TYPO_TASKS
    assert not (repo / TYPO).exists()
    monkeypatch.setattr(syncrun, "replace_file", real)

    result = ok(os_cli(repo, "sync"))
    assert result.out == "fix-typo: store -> files: task 1.1\n"
    assert (moved / "tasks.md").read_text() == TYPO_TASKS.replace("- [ ] 1.1", "- [x] 1.1")
    record = change_record(repo, "fix-typo")
    assert record["status"] == "archived" and record["sync_error"] is None


# --- bad input: the settings ------------------------------------------------------------------


def _garbage(path: Path, tmp: Path) -> str:
    path.write_bytes(b"\x00{not json")
    return "cannot be read"


def _array(path: Path, tmp: Path) -> str:
    path.write_text("[1, 2]\n")
    return "should hold a JSON object"


def _bad_roots(path: Path, tmp: Path) -> str:
    path.write_text('{"roots": ["../../etc"]}\n')
    return "must be a folder inside the work tree"


def _bad_limit(path: Path, tmp: Path) -> str:
    path.write_text('{"roots": ["openspec"], "backups": -1}\n')
    return '"backups" should be a whole number >= 0'


def _linked_settings(path: Path, tmp: Path) -> str:
    (tmp / "settings.json").write_text('{"roots": ["openspec"]}\n')
    path.unlink()
    os.symlink(tmp / "settings.json", path)
    return "is a symbolic link"


SETTINGS: dict[str, Callable[[Path, Path], str]] = {
    "garbage": _garbage,
    "an array": _array,
    "a root outside": _bad_roots,
    "a negative number": _bad_limit,
    "a link": _linked_settings,
}


@pytest.mark.parametrize("damage", list(SETTINGS))
def test_bad_settings_are_one_line_errors(repo: Path, tmp_path: Path, damage: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    needle = SETTINGS[damage](repo / ".taskstore" / "openspec.json", elsewhere)
    write(repo, LOGIN / "tasks.md", LOGIN_TASKS.replace("- [ ] 2.1", "- [x] 2.1"))
    before, outside = tree(repo), tree(elsewhere)
    for args in (["sync"], ["status", "--json"], ["done", "fix-typo", "1.1"], ["list"]):
        assert_fails(os_cli(repo, *args), 1, ".taskstore/openspec.json", needle)
    assert tree(repo) == before
    assert tree(elsewhere) == outside


@pytest.mark.parametrize("damage", ["garbage", "a link"])
def test_init_repairs_bad_settings(repo: Path, tmp_path: Path, damage: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings = repo / ".taskstore" / "openspec.json"
    SETTINGS[damage](settings, elsewhere)
    outside = tree(elsewhere)
    result = os_cli(repo, "init", "--no-sync")
    assert result.code == 0, result
    assert not settings.is_symlink()
    assert json.loads(settings.read_bytes())["roots"] == ["openspec"]
    assert tree(elsewhere) == outside  # a link is replaced, never written through


@pytest.mark.parametrize(
    "where",
    [
        "openspec-backups",
        "openspec-backups/openspec__changes__fix-typo",
    ],
)
def test_backups_are_never_written_through_a_link(repo: Path, tmp_path: Path, where: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = repo / ".taskstore" / where
    link.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, link)
    ok(os_cli(repo, "done", "fix-typo", "1.1"))
    assert "- [x] 1.1" in (repo / TYPO / "tasks.md").read_text()
    assert list(outside.iterdir()) == []


# --- a real process, through git --------------------------------------------------------------


def test_sync_through_git_in_a_real_process(repo: Path, venv_first_on_path: None) -> None:
    def git_taskstore(*args: str) -> Result:
        proc = subprocess.run(
            ["git", "taskstore", "openspec", *args],
            cwd=repo / "openspec",  # from a subfolder: git finds the top
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    write(repo, LOGIN / "tasks.md", LOGIN_TASKS.replace("- [ ] 2.1", "- [x] 2.1"))
    report = data(git_taskstore("sync", "--json"))
    assert by_change(report)["add-login"]["to_store"] == ["task 2.1"]
    assert tasks_of(repo, "add-login")["add-login/2.1"]["done"] is True
    assert_fails(git_taskstore("sync", "nope"), 1, "no OpenSpec change 'nope'")
    assert_fails(git_taskstore("sync", "--force"), 2, "--force needs")
