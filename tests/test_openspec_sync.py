"""The OpenSpec sync: records agree with the real OpenSpec CLI, edits flow both ways,
conflicts overwrite nothing, archive and deletion, history, and clones through git."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from testing import commit_all, git, init_repo
from testing.openspec import CHANGES, OpenSpec, write_changes
from testing.repos import new_repo, ok, run_git

from git_taskstore import Store
from git_taskstore.openspec import config as configs
from git_taskstore.openspec import lastsync
from git_taskstore.openspec.folders import BACKUPS_NAME
from git_taskstore.openspec.mirror import CHANGES as CHANGES_COLLECTION
from git_taskstore.openspec.mirror import HISTORY, TASKS
from git_taskstore.openspec.parse import parse_proposal
from git_taskstore.openspec.service import OpenSpecSync

TASKS_MD = "## 1. Build\n- [ ] 1.1 First\n- [ ] 1.2 Second\n- [x] 1.3 Third\n"
PROPOSAL = "# Change: Demo\n\n## Why\nBecause.\n\n## What Changes\n- a thing\n\n## Impact\nNone.\n"


def make_change(top: Path, change: str = "demo", **files: str) -> Path:
    folder = top / "openspec" / "changes" / change
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in ({"tasks.md": TASKS_MD, "proposal.md": PROPOSAL} | files).items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(text.encode())
    return folder


@pytest.fixture
def top(tmp_path: Path) -> Path:
    init_repo(tmp_path / "repo")
    make_change(tmp_path / "repo")
    return tmp_path / "repo"


@pytest.fixture
def sync(top: Path) -> Iterator[OpenSpecSync]:
    with Store.open(top) as store:
        OpenSpecSync.init(store)
        service = OpenSpecSync(store)
        service.sync()
        yield service


def task(service: OpenSpecSync, change: str, key: str) -> dict[str, Any]:
    found = service.store.collection(TASKS).get(f"{change}/{key}")
    assert found is not None
    return found


def history(service: OpenSpecSync) -> list[dict[str, Any]]:
    return service.history(limit=None)


# --- the real OpenSpec CLI judges ----------------------------------------------------------


def _store_view(service: OpenSpecSync, name: str) -> dict[str, Any]:
    record = service.show(name)
    return {
        "tasks": [{"description": t["text"], "done": t["done"]} for t in record["tasks"]],
        "total": record["tasks_total"],
        "done": record["tasks_done"],
        "status": record["status"],
        "title": record["title"],
        "deltas": [(d["capability"], d["operation"]) for d in record["deltas"]],
    }


def test_records_agree_with_what_openspec_reports(openspec: OpenSpec) -> None:
    """Tasks, done flags, counts, status, title and deltas as `list`, `instructions apply`
    and `show` report them, for a change made by `openspec new change` and for the
    hand-written ones (nested, numbered, [X], fences, CRLF, BOM, unicode, no tasks, no
    proposal)."""
    openspec.run("new", "change", "made-by-cli")
    write_changes(openspec.project)
    git(openspec.project, "init", "-q", "-b", "main")
    with Store.open(openspec.project) as store:
        OpenSpecSync.init(store)
        service = OpenSpecSync(store)
        report = service.sync()
        assert not report.skipped and all(r.error is None for r in report.changes)
        listed = openspec.list_changes()
        assert sorted(listed) == sorted(r["id"] for r in service.changes())
        for name, summary in listed.items():
            mine = _store_view(service, name)
            assert (mine["done"], mine["total"], mine["status"]) == (
                summary["completedTasks"],
                summary["totalTasks"],
                summary["status"],
            ), name
            applied = openspec.json("instructions", "apply", "--change", name, check=False)
            expected = [{k: t[k] for k in ("description", "done")} for t in applied["tasks"]]
            assert mine["tasks"] == expected, name
            if name in CHANGES and "proposal.md" not in CHANGES[name]:
                continue
            shown = openspec.json("show", name, "--type", "change", check=False)
            if "title" in shown:
                assert mine["title"] == shown["title"], name
                assert mine["deltas"] == [(d["spec"], d["operation"]) for d in shown["deltas"]]


def test_store_edits_keep_openspec_s_verdict_and_counts(openspec: OpenSpec) -> None:
    """After store -> files writes, `validate --strict` says what it said before, `list`
    sees the new counts, and only the edited bytes changed."""
    write_changes(openspec.project)
    git(openspec.project, "init", "-q", "-b", "main")
    before = openspec.validate_changes()
    root = openspec.project / "openspec" / "changes"
    with Store.open(openspec.project) as store:
        OpenSpecSync.init(store)
        service = OpenSpecSync(store)
        service.sync()
        for name in CHANGES:
            tasks = service.tasks(name)
            if tasks:
                first = tasks[0]
                result = service.set_task(name, first["key"], done=not first["done"])
                assert result.to_files == [f"task {first['key']}"], result
            if "proposal.md" in CHANGES[name]:
                result = service.set_section(name, "impact", "Edited by the store.")
                assert not result.error, result
        for name, files in CHANGES.items():
            for file, text in files.items():
                now = (root / name / file).read_bytes().decode()
                if file == "proposal.md":
                    # The title's own section holds the rest: only level-two ones compared.
                    sections = parse_proposal(now).sections
                    assert sections.pop("impact") == "Edited by the store."
                    old = parse_proposal(text).sections
                    for key in ("why", "what changes"):
                        assert sections.get(key) == old.get(key)
                    assert now.startswith(text.split("## Impact")[0])
                elif file == "tasks.md":
                    changed = [
                        (x, y)
                        for x, y in zip(text.split("\n"), now.split("\n"), strict=True)
                        if x != y
                    ]
                    assert len(changed) == 1, (name, changed)
                else:
                    assert now == text
        assert openspec.validate_changes() == before
        listed = openspec.list_changes()
        for record in service.changes():
            summary = listed[record["id"]]
            assert (summary["completedTasks"], summary["totalTasks"]) == (
                record["tasks_done"],
                record["tasks_total"],
            )


def test_a_tick_changes_only_its_box(sync: OpenSpecSync, top: Path) -> None:
    crlf = "\ufeff## 1. A\r\n- [ ] 1.1 first  \r\n```\r\n- [ ] 1.2 fenced\r\n```\r\n"
    make_change(top, "crlf", **{"tasks.md": crlf})
    sync.sync()
    sync.set_task("crlf", "1.2", done=True)
    tasks_md = top / "openspec/changes/crlf/tasks.md"
    assert tasks_md.read_bytes() == crlf.replace("- [ ] 1.2", "- [x] 1.2").encode()
    assert task(sync, "crlf", "1.2")["done"] is True


# --- both directions -------------------------------------------------------------------


def test_file_edits_reach_the_store(sync: OpenSpecSync, top: Path) -> None:
    tasks_md = top / "openspec/changes/demo/tasks.md"
    tasks_md.write_text(TASKS_MD.replace("- [ ] 1.1 First", "- [x] 1.1 First, reworded"))
    assert [r.state for r in sync.status("demo")] == ["files_changed"]
    result = sync.sync("demo").changes[0]
    assert result.to_store == ["task 1.1"] and not result.files_written
    got = task(sync, "demo", "1.1")
    assert (got["done"], got["text"]) == (True, "1.1 First, reworded")
    record = sync.show("demo")
    assert record["tasks_done"] == 2 and record["status"] == "in-progress"
    assert "First, reworded" in sync.files("demo")["tasks.md"]
    assert [r.state for r in sync.status()] == ["in_sync"]
    assert history(sync)[0]["direction"] == "files_to_store"


def test_store_edits_reach_the_files(sync: OpenSpecSync, top: Path) -> None:
    """Any writer of the record (here the dict API), then a sync, writes the file."""
    sync.store.collection(TASKS).put({"id": "demo/1.2", "text": "1.2 Second, better"}, merge=True)
    sync.store.collection(CHANGES_COLLECTION).put({"id": "demo", "why": "Users."}, merge=True)
    assert [r.state for r in sync.status("demo")] == ["store_changed"]
    result = sync.sync().changes[0]
    assert sorted(result.to_files) == ["section Why", "task 1.2"]
    folder = top / "openspec/changes/demo"
    assert (folder / "tasks.md").read_text() == TASKS_MD.replace("Second", "Second, better")
    assert (folder / "proposal.md").read_text() == PROPOSAL.replace("Because.", "Users.")
    entry = history(sync)[0]
    assert entry["direction"] == "store_to_files" and entry["success"] is True
    assert sorted(entry["files"]) == [
        "openspec/changes/demo/proposal.md",
        "openspec/changes/demo/tasks.md",
    ]
    assert [r.state for r in sync.status()] == ["in_sync"]


def test_edits_of_different_units_on_both_sides_merge(sync: OpenSpecSync, top: Path) -> None:
    tasks_md = top / "openspec/changes/demo/tasks.md"
    tasks_md.write_text(TASKS_MD.replace("- [ ] 1.1", "- [x] 1.1"))
    sync.store.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    result = sync.sync().changes[0]
    assert (result.to_store, result.to_files, result.conflicts) == (
        ["task 1.1"],
        ["task 1.2"],
        [],
    )
    assert tasks_md.read_text() == TASKS_MD.replace("- [ ] 1.", "- [x] 1.")
    assert all(t["done"] for t in sync.tasks("demo"))


def test_a_sync_that_finds_nothing_writes_nothing(sync: OpenSpecSync, top: Path) -> None:
    store_dir = Path(sync.store.path)
    sizes = {p.name: p.stat().st_size for p in store_dir.glob("*.jsonl")}
    for _ in range(3):
        assert [r.state for r in sync.sync().changes] == ["in_sync"]
        # The same bytes with a new mtime, as a checkout leaves them: no change either.
        _age(top / "openspec", seconds=_ + 5)
    assert {p.name: p.stat().st_size for p in store_dir.glob("*.jsonl")} == sizes


# --- conflicts ----------------------------------------------------------------------------


def _both_edit_task_1_1(sync: OpenSpecSync, top: Path) -> Path:
    tasks_md = top / "openspec/changes/demo/tasks.md"
    tasks_md.write_text(TASKS_MD.replace("- [ ] 1.1 First", "- [x] 1.1 First"))
    sync.store.collection(TASKS).put({"id": "demo/1.1", "text": "1.1 First, mine"}, merge=True)
    return tasks_md


def test_a_conflict_overwrites_nothing_and_is_reported(sync: OpenSpecSync, top: Path) -> None:
    tasks_md = _both_edit_task_1_1(sync, top)
    on_disk = tasks_md.read_bytes()
    sync.store.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    result = sync.sync().changes[0]
    assert result.state == "conflict"
    assert [c["unit"] for c in result.conflicts] == ["task 1.1"]
    assert result.conflicts[0]["files"] == {"done": True, "text": "1.1 First"}
    assert result.conflicts[0]["store"] == {"done": False, "text": "1.1 First, mine"}
    # The other unit still synced; task 1.1 kept on both sides.
    assert result.to_files == ["task 1.2"]
    assert tasks_md.read_bytes() == on_disk.replace(b"- [ ] 1.2", b"- [x] 1.2")
    assert task(sync, "demo", "1.1")["text"] == "1.1 First, mine"
    assert task(sync, "demo", "1.1")["done"] is False
    assert sync.show("demo")["conflicts"][0]["unit"] == "task 1.1"
    failures = [h for h in history(sync) if not h["success"]]
    assert len(failures) == 1 and "conflict" in failures[0]["error"]
    # Found again, recorded once.
    assert sync.sync().changes[0].state == "conflict"
    assert len([h for h in history(sync) if not h["success"]]) == 1
    assert [r.change for r in sync.detect_conflicts()] == ["demo"]


@pytest.mark.parametrize("winner", ["files", "store"])
def test_resolve_keeps_the_winner_and_records_the_loser(
    sync: OpenSpecSync, top: Path, winner: str
) -> None:
    tasks_md = _both_edit_task_1_1(sync, top)
    sync.sync()
    result = sync.resolve("demo", winner)
    assert result.conflicts == [] and [c["unit"] for c in result.resolved] == ["task 1.1"]
    want = (
        {"done": True, "text": "1.1 First"}
        if winner == "files"
        else {"done": False, "text": "1.1 First, mine"}
    )
    got = task(sync, "demo", "1.1")
    assert {"done": got["done"], "text": got["text"]} == want
    line = f"- [{'x' if want['done'] else ' '}] {want['text']}\n"
    assert line in tasks_md.read_text()
    assert sync.show("demo")["conflicts"] == []
    entry = history(sync)[0]
    assert entry["units"] == ["task 1.1"] and "resolved" in entry["error"]
    lost = "1.1 First, mine" if winner == "files" else '"done":true'
    assert lost in entry["error"]
    assert [r.state for r in sync.status()] == ["in_sync"]


def test_an_edit_to_match_the_other_side_settles_a_conflict(sync: OpenSpecSync, top: Path) -> None:
    tasks_md = _both_edit_task_1_1(sync, top)
    assert sync.sync().changes[0].state == "conflict"
    tasks_md.write_text(TASKS_MD.replace("1.1 First", "1.1 First, mine"))
    assert sync.sync().changes[0].state == "in_sync"
    assert sync.show("demo")["conflicts"] == []


def test_a_task_removed_in_the_file_and_edited_in_the_store_conflicts(
    sync: OpenSpecSync, top: Path
) -> None:
    tasks_md = top / "openspec/changes/demo/tasks.md"
    tasks_md.write_text(TASKS_MD.replace("- [ ] 1.2 Second\n", ""))
    sync.store.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    result = sync.sync().changes[0]
    assert [c["unit"] for c in result.conflicts] == ["task 1.2"]
    assert sync.store.collection(TASKS).get("demo/1.2") is not None
    sync.resolve("demo", "store")
    assert "- [x] 1.2 Second\n" in tasks_md.read_text()  # put back, as the store had it


def test_direction_limits_what_moves(sync: OpenSpecSync, top: Path) -> None:
    tasks_md = top / "openspec/changes/demo/tasks.md"
    tasks_md.write_text(TASKS_MD.replace("- [ ] 1.1", "- [x] 1.1"))
    sync.store.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    result = sync.sync_to_files().changes[0]
    assert (result.to_store, result.to_files) == ([], ["task 1.2"])
    assert task(sync, "demo", "1.1")["done"] is False  # waiting for the other direction
    result = sync.sync_from_files().changes[0]
    assert (result.to_store, result.to_files) == (["task 1.1"], [])
    assert [r.state for r in sync.status()] == ["in_sync"]


# --- lifecycle ----------------------------------------------------------------------------


def test_an_archived_change_is_the_same_change(sync: OpenSpecSync, top: Path) -> None:
    changes = top / "openspec/changes"
    (changes / "archive").mkdir(exist_ok=True)
    (changes / "demo").rename(changes / "archive" / "2026-12-04-demo")
    result = sync.sync().changes[0]
    assert result.change == "demo" and result.state != "deleted"
    record = sync.show("demo")
    assert record["status"] == "archived" and record["archived_on"] == "2026-12-04"
    assert record["folder"] == "openspec/changes/archive/2026-12-04-demo"
    assert len(record["tasks"]) == 3
    # Still editable where it now lives.
    sync.set_task("demo", "1.1", done=True)
    assert "- [x] 1.1" in (changes / "archive/2026-12-04-demo/tasks.md").read_text()


def test_openspec_archive_keeps_the_change(openspec: OpenSpec) -> None:
    write_changes(openspec.project, {"all-done": CHANGES["all-done"]})
    git(openspec.project, "init", "-q", "-b", "main")
    with Store.open(openspec.project) as store:
        OpenSpecSync.init(store)
        service = OpenSpecSync(store)
        service.sync()
        openspec.run("archive", "all-done", "--yes")
        service.sync()
        record = service.show("all-done")
        assert record["status"] == "archived"
        assert record["folder"].startswith("openspec/changes/archive/")
        assert store.collection(CHANGES_COLLECTION).count() == 1


def test_a_deleted_folder_leaves_a_tombstone_and_its_history(sync: OpenSpecSync, top: Path) -> None:
    sync.store.collection(TASKS).put({"id": "demo/1.1", "done": True}, merge=True)
    shutil.rmtree(top / "openspec/changes/demo")
    result = sync.sync().changes[0]
    assert result.state == "deleted"
    assert sync.store.collection(CHANGES_COLLECTION).get("demo") is None
    assert sync.tasks("demo") == []
    entries = sync.history("demo", limit=None)
    assert entries[0]["units"] == ["deleted"] and len(entries) >= 2
    assert '"done":true' in entries[0]["error"]  # the store's edit it dropped, kept here
    lines = Path(sync.store.file_path(CHANGES_COLLECTION)).read_bytes().splitlines()
    assert orjson.loads(lines[-1]).get("deleted") is True


def test_a_missing_root_deletes_nothing(sync: OpenSpecSync, top: Path) -> None:
    shutil.rmtree(top / "openspec")
    report = sync.sync()
    assert report.missing_roots == ["openspec"] and report.changes == []
    assert sync.store.collection(CHANGES_COLLECTION).get("demo") is not None


def test_history_keeps_its_retention(sync: OpenSpecSync, top: Path) -> None:
    config = configs.load(sync.store.path)
    config.history_limit = 3
    configs.save(sync.store.path, config)
    sync.config = configs.load(sync.store.path)
    for n in range(6):
        sync.set_task("demo", "1.1", done=n % 2 == 0)
    assert sync.store.collection(HISTORY).count() == 3
    assert [h["units"] for h in history(sync)] == [["task 1.1"]] * 3


def test_replaced_files_are_backed_up_where_git_does_not_see_them(
    sync: OpenSpecSync, top: Path
) -> None:
    config = configs.load(sync.store.path)
    config.backups = 2
    configs.save(sync.store.path, config)
    sync.config = configs.load(sync.store.path)
    for n in range(4):
        sync.set_task("demo", "1.1", done=n % 2 == 0)
    backups = list((Path(sync.store.path) / BACKUPS_NAME).rglob("*"))
    copies = [p for p in backups if p.is_file()]
    assert len(copies) == 2 and all(p.name.endswith("-tasks.md") for p in copies)
    assert not list((top / "openspec/changes/demo").glob("*.bak"))
    status = git(top, "status", "--porcelain", "--ignored", "--", ".taskstore")
    assert BACKUPS_NAME in status and "!!" in status  # ignored, not untracked


def test_files_are_written_before_records(sync: OpenSpecSync, top: Path) -> None:
    """A sync killed between the two leaves the file as the store wanted: the next sync
    sees both sides equal (not a reversal). Simulated by writing the file by hand."""
    sync.store.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    (top / "openspec/changes/demo/tasks.md").write_text(TASKS_MD.replace("- [ ] 1.2", "- [x] 1.2"))
    result = sync.sync().changes[0]
    assert result.conflicts == [] and result.to_files == [] and result.to_store == []
    assert task(sync, "demo", "1.2")["synced"] == {"done": True, "text": "1.2 Second"}


# --- git: hooks and clones ------------------------------------------------------------------


def _tick(path: Path, number: str) -> None:
    path.write_text(path.read_text().replace(f"- [ ] {number}", f"- [x] {number}"))


@pytest.mark.slow
def test_two_clones_through_a_bare_remote(tmp_path: Path) -> None:
    """One clone ticks tasks in the file, the other through the store: different tasks
    merge; the same task edited both ways is a reported conflict; nothing is lost; after
    pull and sync both clones agree. The hooks sync after git and before each commit."""
    a, b = _two_clones(tmp_path, TASKS_MD + "- [ ] 1.4 Fourth\n")
    tasks_a = a / "openspec/changes/demo/tasks.md"
    tasks_b = b / "openspec/changes/demo/tasks.md"

    # Different tasks: a ticks 1.1 in the file, b ticks 1.2 through the store.
    _tick(tasks_a, "1.1")
    git(a, "commit", "-qam", "tick 1.1 in the file")  # pre-commit syncs and stages records
    assert _task(a, "1.1")["done"] is True
    git(a, "push", "-q")
    ok(_cli(b, "openspec", "done", "demo", "1.2"))
    commit_all(b, "tick 1.2 through the store")
    ok(run_git(b, "pull", "-q", "--no-rebase", "--no-edit"))  # post-merge syncs
    for key in ("1.1", "1.2"):
        assert _task(b, key)["done"] is True
        assert f"- [x] {key}" in tasks_b.read_text()
    assert _states(b) == ["in_sync"]
    git(b, "push", "-q")
    ok(run_git(a, "pull", "-q", "--no-rebase", "--no-edit"))
    assert tasks_a.read_bytes() == tasks_b.read_bytes()
    assert [_task(a, k)["done"] for k in ("1.1", "1.2", "1.3", "1.4")] == [True] * 3 + [False]
    assert _states(a) == ["in_sync"]

    # The same task: a rewords 1.4 in the file, b ticks it through the store.
    tasks_a.write_text(tasks_a.read_text().replace("1.4 Fourth", "1.4 Fourth, reworded"))
    git(a, "commit", "-qam", "reword 1.4")
    git(a, "push", "-q")
    ok(_cli(b, "openspec", "done", "demo", "1.4"))
    commit_all(b, "tick 1.4")
    pulled = run_git(b, "pull", "--no-rebase", "--no-edit")
    assert pulled.code != 0 and "tasks.md" in pulled.out + pulled.err  # git reports it
    status = _cli(b, "openspec", "status", "--json")
    row = orjson.loads(status.out)["changes"][0]
    assert row["state"] == "error" and "conflict markers" in row["error"]
    merged = _task(b, "1.4")  # the records merged field by field: both edits are there
    assert (merged["done"], merged["text"]) == (True, "1.4 Fourth, reworded")
    text = tasks_b.read_text()
    assert "- [x] 1.4 Fourth" in text and "- [ ] 1.4 Fourth, reworded" in text
    # Resolved by hand as both meant; the commit's hook syncs, and the clones agree.
    resolved = text.split("<<<<<<<")[0] + "- [x] 1.4 Fourth, reworded\n"
    tasks_b.write_text(resolved)
    commit_all(b, "merge")
    assert _states(b) == ["in_sync"]
    git(b, "push", "-q")
    ok(run_git(a, "pull", "-q", "--no-rebase", "--no-edit"))
    assert tasks_a.read_bytes() == tasks_b.read_bytes()
    assert _states(a) == ["in_sync"]
    assert _task(a, "1.4")["done"] is True


def _two_clones(tmp_path: Path, tasks_md: str) -> tuple[Path, Path]:
    """Clone a (a change "demo" with this tasks.md, synced, pushed) and clone b of it,
    through a bare remote; both wired by `git taskstore init`."""
    a = new_repo(tmp_path / "a")
    make_change(a, **{"tasks.md": tasks_md})
    ok(_cli(a, "openspec", "init"))
    commit_all(a, "openspec change")
    git(tmp_path, "init", "-q", "--bare", "-b", "main", "remote.git")
    git(a, "remote", "add", "origin", str(tmp_path / "remote.git"))
    git(a, "push", "-q", "-u", "origin", "main")
    git(tmp_path, "clone", "-q", str(tmp_path / "remote.git"), "b")
    ok(_cli(tmp_path / "b", "init"))
    return a, tmp_path / "b"


def _cli(repo: Path, *args: str) -> Any:
    from testing.inprocess import cli

    return cli(*args, cwd=repo)


def _task(repo: Path, key: str) -> dict[str, Any]:
    with Store.open(repo) as store:
        found = store.collection(TASKS).get(f"demo/{key}")
    assert found is not None
    return found


def _states(repo: Path) -> list[str]:
    result = _cli(repo, "openspec", "status", "--json")
    return [row["state"] for row in orjson.loads(result.out)["changes"]]


def test_tasks_md_merges_line_by_line_when_only_lines_were_replaced() -> None:
    """Adjacent ticks, which git's text merge calls one conflicting hunk, merge; a line
    both sides changed differently, or lines added, go back to git's merge."""
    from git_taskstore.openspec.linemerge import merge_lines

    base = b"- [ ] 1.1 a\r\n- [ ] 1.2 b\r\n- [ ] 1.3 c"
    ours = base.replace(b"[ ] 1.1", b"[x] 1.1")
    theirs = base.replace(b"[ ] 1.2", b"[x] 1.2")
    assert merge_lines(base, ours, theirs) == b"- [x] 1.1 a\r\n- [x] 1.2 b\r\n- [ ] 1.3 c"
    assert merge_lines(base, ours, ours) == ours
    assert merge_lines(base, ours, base.replace(b"1.1 a", b"1.1 z")) is None
    assert merge_lines(base, ours, base + b"\n- [ ] 1.4 d") is None
    # Lines moved without changing the count (blank lines line up wrongly): git's merge.
    base = b"## 1. Setup\n- [ ] 1.1 a\n- [ ] 1.2 b\n\n## 2. Build\n- [ ] 2.1 c\n\n"
    ours = b"## 1. Setup\n- [ ] 1.1 a\n- [ ] 1.2 b\n## 2. Build\n- [ ] 2.1 c\n\n\n"
    theirs = b"## 1. Setup\n- [ ] 1.1 a\n- [ ] 1.2 b\n\n## 2. Build\n\n- [ ] 2.1 c\n"
    assert merge_lines(base, ours, theirs) is None


def test_the_driver_says_a_conflict_in_tasks_md_whatever_the_marker_size() -> None:
    """Mutation caught: cleanliness told by searching markers of the configured size."""
    from git_taskstore.driver import merge_markdown

    base = b"- [ ] 1.1 a\n- [ ] 1.2 b\n"
    ours = b"- [x] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3\n"
    theirs = b"- [ ] 1.1 a changed\n- [ ] 1.2 b\n"
    for size in (7, 12):
        code, merged = merge_markdown(base, ours, theirs, "tasks.md", size)
        assert code == 1 and b"<<<<<<<" in merged
    clean = b"<<<<<<< not a marker, a line of the file\n- [ ] 1.1 a\n"
    code, merged = merge_markdown(clean, clean + b"x\n", b"y\n" + clean, "tasks.md", 7)
    assert code == 0 and merged == b"y\n" + clean + b"x\n"


def test_a_task_only_the_store_has_is_appended_to_the_file(sync: OpenSpecSync, top: Path) -> None:
    sync.store.collection(TASKS).put(
        {"id": "demo/1.9", "change": "demo", "key": "1.9", "text": "1.9 New", "done": True}
    )
    result = sync.sync().changes[0]
    assert result.to_files == ["task 1.9"]
    assert (top / "openspec/changes/demo/tasks.md").read_text() == TASKS_MD + "- [x] 1.9 New\n"
    assert task(sync, "demo", "1.9")["synced"] == {"done": True, "text": "1.9 New"}
    assert task(sync, "demo", "1.9")["position"] == 3
    assert [r.state for r in sync.status()] == ["in_sync"]


def _age(folder: Path, seconds: float = 60.0) -> None:
    """Files and folders dated a minute back, as a checkout made a while ago (a folder
    changed within two seconds of a sync counts as moved: the sweep's racy rule)."""
    import os
    import time

    then = time.time() - seconds
    for path in [folder, *folder.rglob("*")]:
        os.utime(path, (then, then), follow_symlinks=False)


def test_the_sweep_finds_what_changed_since_the_last_sync(sync: OpenSpecSync, top: Path) -> None:
    """Mutations caught: folders' stats not compared (a new spec file missed); the store's
    side not checked; a deleted change not reported."""
    make_change(top, "other")
    _age(top / "openspec")
    sync.sync()
    assert sync.changed_since_last_sync() == []
    assert not sync.needs_sync()
    spec = top / "openspec/changes/demo/specs/auth/spec.md"
    spec.parent.mkdir(parents=True)
    spec.write_text("## ADDED Requirements\n### Requirement: Login\nIt SHALL log in.\n")
    assert sync.changed_since_last_sync() == ["demo"]  # found through specs/'s mtime
    sync.sync()
    _age(top / "openspec")
    sync.sync()
    assert sync.changed_since_last_sync() == []
    (top / "openspec/changes/other/tasks.md").write_text(TASKS_MD.replace("[ ] 1.1", "[x] 1.1"))
    assert sync.changed_since_last_sync() == ["other"]
    sync.sync()
    sync.store.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    assert "demo" in sync.changed_since_last_sync()
    sync.sync()
    shutil.rmtree(top / "openspec/changes/other")
    # demo's folder was written a moment ago: listed again (racy), harmlessly.
    assert "other" in sync.changed_since_last_sync()
    make_change(top, "third")
    assert "third" in sync.changed_since_last_sync()


@pytest.mark.slow
def test_the_hooks_keep_each_commit_in_agreement(tmp_path: Path) -> None:
    """pre-commit syncs and stages what it wrote, both ways; a checkout of a branch with
    other ticks finds its files and records in sync (no false conflict)."""
    repo = new_repo(tmp_path / "repo")
    make_change(repo)
    ok(_cli(repo, "openspec", "init"))
    commit_all(repo, "openspec change")
    # A file edit, staged alone: the commit carries the records too.
    _tick(repo / "openspec/changes/demo/tasks.md", "1.1")
    git(repo, "add", "openspec/changes/demo/tasks.md")
    git(repo, "commit", "-q", "-m", "tick")
    committed = git(repo, "show", "HEAD:.taskstore/openspec_tasks.jsonl")
    assert '"id":"demo/1.1"' in committed.splitlines()[-1]
    assert '"done":true' in committed.splitlines()[-1]
    assert git(repo, "status", "--porcelain") == ""
    # A store edit that no sync wrote out: the commit carries the file too.
    git(repo, "checkout", "-q", "-b", "other")
    with Store.open(repo) as store:
        store.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    git(repo, "commit", "-q", "--allow-empty", "-m", "store edit")
    assert "- [x] 1.2" in git(repo, "show", "HEAD:openspec/changes/demo/tasks.md")
    assert git(repo, "status", "--porcelain") == ""
    # Back and forth between the branches: each side's files and records agree.
    for branch, done in (("main", False), ("other", True), ("main", False)):
        git(repo, "checkout", "-q", branch)
        assert _states(repo) == ["in_sync"]
        assert _task(repo, "1.2")["done"] is done


def _hooked(tmp_path: Path, store: str = ".taskstore") -> Path:
    """A repository with hooks, a change, its records, all committed."""
    repo = init_repo(tmp_path / "repo")
    ok(_cli(repo, "init", "--store", store))
    base = (repo / store).parent
    make_change(base)
    ok(_cli(repo, "openspec", "init", "--store", store))
    commit_all(repo, "openspec change")
    return repo


@pytest.mark.slow
def test_a_broken_openspec_sync_does_not_skip_the_commit_guard(tmp_path: Path) -> None:
    """The pre-commit hook still refuses a staged JSONL file with conflict markers when
    the OpenSpec sync cannot run (here: a root outside the work tree in the settings)."""
    repo = _hooked(tmp_path)
    (repo / ".taskstore/openspec.json").write_text('{"roots": ["../elsewhere"]}')
    with open(repo / ".taskstore/openspec_tasks.jsonl", "a") as handle:
        handle.write('<<<<<<< ours\n{"id":"a"}\n=======\n{"id":"b"}\n>>>>>>> theirs\n')
    git(repo, "add", "-A")
    refused = run_git(repo, "commit", "-q", "-m", "bad")
    assert refused.code == 1 and "OpenSpec sync skipped" in refused.err
    assert "commit refused" in refused.err


@pytest.mark.slow
def test_pre_commit_does_not_sync_what_the_commit_will_not_hold(tmp_path: Path) -> None:
    """Unstaged edits under the roots: nothing synced, staged or written (said); a commit
    of named paths: the same."""
    repo = _hooked(tmp_path)
    tasks_md = repo / "openspec/changes/demo/tasks.md"
    tasks_md.write_text(TASKS_MD.replace("1.3 Third", "1.3 Third WIP"))  # not staged
    with Store.open(repo) as store:
        store.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    (repo / "other.txt").write_text("x")
    git(repo, "add", "other.txt")
    done = run_git(repo, "commit", "-q", "-m", "other")
    assert done.code == 0 and "not staged" in done.err
    assert "WIP" not in git(repo, "show", "HEAD:openspec/changes/demo/tasks.md")
    assert "WIP" in tasks_md.read_text() and "- [ ] 1.2" in tasks_md.read_text()
    # Staged, the next commit syncs both ways and holds the result.
    git(repo, "add", "-A")
    ok(run_git(repo, "commit", "-q", "-m", "all"))
    committed = git(repo, "show", "HEAD:openspec/changes/demo/tasks.md")
    assert "- [x] 1.2" in committed and "WIP" in committed
    assert git(repo, "status", "--porcelain") == ""
    # A commit of named paths (git's temporary index): not synced, and nothing left staged.
    with Store.open(repo) as store:
        store.collection(TASKS).put({"id": "demo/1.1", "done": True}, merge=True)
    (repo / "other.txt").write_text("y")
    named = run_git(repo, "commit", "-q", "-m", "named", "--", "other.txt")
    assert named.code == 0 and "named paths" in named.err
    assert "- [ ] 1.1" in git(repo, "show", "HEAD:openspec/changes/demo/tasks.md")


@pytest.mark.slow
def test_pre_commit_stages_the_right_files_of_a_store_in_a_subfolder(tmp_path: Path) -> None:
    repo = _hooked(tmp_path, "sub/.taskstore")
    with Store.open(repo / "sub") as store:
        store.collection(TASKS).put({"id": "demo/1.1", "done": True}, merge=True)
    git(repo, "commit", "-q", "--allow-empty", "-m", "tick")
    assert "- [x] 1.1" in git(repo, "show", "HEAD:sub/openspec/changes/demo/tasks.md")
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.slow
def test_pre_commit_stages_the_sync_s_writes_in_debounced_mode(tmp_path: Path) -> None:
    repo = _hooked(tmp_path)
    _tick(repo / "openspec/changes/demo/tasks.md", "1.1")
    git(repo, "add", "-A")
    env = {"TASKSTORE_DEBOUNCE_MS": "500"}
    ok(run_git(repo, "commit", "-q", "-m", "tick", env=env))
    assert '"done":true' in git(repo, "show", "HEAD:.taskstore/openspec_tasks.jsonl")
    assert git(repo, "status", "--porcelain") == ""


def test_a_store_only_task_is_appended_once(sync: OpenSpecSync, top: Path) -> None:
    """A sync stopped after it appended the line but before the records (simulated by
    appending it by hand) does not append it again; a change whose other file cannot be
    written writes no file at all."""
    tasks_md = top / "openspec/changes/demo/tasks.md"
    sync.store.collection(TASKS).put(
        {"id": "demo/extra", "change": "demo", "key": "extra", "text": "extra work", "done": False}
    )
    tasks_md.write_text(TASKS_MD + "- [ ] extra work\n")
    sync.sync()
    assert tasks_md.read_text().count("extra work") == 1
    assert [t["text"] for t in sync.tasks("demo")].count("extra work") == 1
    proposal = top / "openspec/changes/demo/proposal.md"
    proposal.write_bytes(PROPOSAL.encode() + b"\xff\n")
    sync.sync()
    sync.store.collection(TASKS).put(
        {"id": "demo/more", "change": "demo", "key": "more", "text": "more work", "done": False}
    )
    sync.store.collection(CHANGES_COLLECTION).put({"id": "demo", "impact": "Big."}, merge=True)
    for _ in range(3):
        result = sync.sync().changes[0]
        assert result.state == "error" and "UTF-8" in (result.error or "")
        assert result.files_written == [] and result.to_files == []
    assert "more work" not in tasks_md.read_text()


def test_tasks_without_a_number_are_known_by_their_text(sync: OpenSpecSync, top: Path) -> None:
    """Not by their place: a task inserted above shifts no key. `#N` still names the
    N-th task as `openspec instructions apply` does."""
    tasks_md = top / "openspec/changes/demo/tasks.md"
    tasks_md.write_text("- [ ] alpha\n- [ ] beta\n- [ ] alpha\n")
    sync.sync()
    keys = [t["key"] for t in sync.tasks("demo")]
    assert [k[0] for k in keys] == ["~"] * 3 and keys[2] == keys[0] + ".2"
    sync.set_task("demo", "#2", done=True)
    assert tasks_md.read_text() == "- [ ] alpha\n- [x] beta\n- [ ] alpha\n"
    tasks_md.write_text("- [ ] first\n" + tasks_md.read_text())
    sync.sync()
    assert [(t["text"], t["key"]) for t in sync.tasks("demo")][1:] == [
        ("alpha", keys[0]),
        ("beta", keys[1]),
        ("alpha", keys[2]),
    ]
    assert [t["ordinal"] for t in sync.tasks("demo")] == [1, 2, 3, 4]


@pytest.mark.slow
def test_a_task_inserted_on_one_branch_and_one_ticked_on_another(tmp_path: Path) -> None:
    """Found by review: with keys by position, the merge joined two tasks' fields and the
    sync ticked the wrong one."""
    a, b = _two_clones(tmp_path, "## Tasks\n- [ ] alpha\n- [ ] beta\n- [ ] gamma\n")
    ok(_cli(a, "openspec", "done", "demo", "#3"))
    commit_all(a, "tick gamma")
    git(a, "push", "-q")
    tasks_b = b / "openspec/changes/demo/tasks.md"
    tasks_b.write_text(tasks_b.read_text().replace("- [ ] alpha", "- [ ] new first\n- [ ] alpha"))
    commit_all(b, "insert a task")
    ok(run_git(b, "pull", "-q", "--no-rebase", "--no-edit"))
    assert tasks_b.read_text() == (
        "## Tasks\n- [ ] new first\n- [ ] alpha\n- [ ] beta\n- [x] gamma\n"
    )
    assert _states(b) == ["in_sync"]
    with Store.open(b) as store:
        done = [t["text"] for t in store.collection(TASKS).list() if t["done"]]
    assert done == ["gamma"]


def test_the_sweep_misses_nothing_review_found(sync: OpenSpecSync, top: Path) -> None:
    """A skipped folder that became a change; an edit of the same size and mtime made
    within the racy window; a direction's held edit; a broken change is not read on every
    sweep until its files move."""
    import os

    changes = top / "openspec/changes"
    (changes / "later").mkdir()
    _age(top / "openspec")
    assert sync.sync().skipped  # "later" is no change yet
    assert sync.changed_since_last_sync() == []
    (changes / "later/tasks.md").write_text("- [ ] 1.1 now a change\n")
    _age(changes / "later", seconds=30)  # not a recent change: only its stat tells
    assert "later" in sync.changed_since_last_sync()
    sync.sync()
    # Same size, same mtime, within two seconds of the sync that read it.
    tasks_md = changes / "demo/tasks.md"
    _age(top / "openspec")
    tasks_md.write_text(TASKS_MD)
    sync.sync()
    info = tasks_md.stat()
    tasks_md.write_text(TASKS_MD.replace("[ ] 1.1", "[x] 1.1"))
    os.utime(tasks_md, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert "demo" in sync.changed_since_last_sync()
    sync.sync()
    # A file edit held back by --store-to-files is still to come.
    _age(top / "openspec")
    sync.sync()
    tasks_md.write_text(TASKS_MD.replace("[ ] 1.2", "[x] 1.2"))
    sync.sync_to_files()
    _age(top / "openspec")
    assert "demo" in sync.changed_since_last_sync()
    sync.sync()
    # A broken change: remembered as it is, read again once it moves.
    (changes / "later/tasks.md").write_bytes(b"- [ ] 1.1 \0 binary\n")
    sync.sync()
    _age(top / "openspec")
    sync.sync()
    assert sync.changed_since_last_sync() == [] and not sync.needs_sync()
    (changes / "later/tasks.md").write_text("- [ ] 1.1 fixed\n")
    assert sync.changed_since_last_sync() == ["later"]


def test_strange_layouts_are_errors_not_tracebacks(sync: OpenSpecSync, top: Path) -> None:
    """Found by review: specs/ nested 1,100 deep (a RecursionError), a change id long
    enough that its backup folder's name was too long, a folder name that is not UTF-8,
    a root with a space (an unusable .gitattributes pattern)."""
    import os

    from git_taskstore.errors import TaskstoreError

    deep = top / "openspec/changes/demo/specs"
    os.makedirs(deep / "/".join(["d"] * 40))
    result = sync.sync().changes[0]
    assert result.state == "error" and "deeper than" in (result.error or "")
    shutil.rmtree(deep)
    long_id = "-".join(["long"] * 48)  # 239 characters
    make_change(top, long_id)
    sync.sync()
    assert sync.set_task(long_id, "1.1", done=True).error is None
    assert list((Path(sync.store.path) / BACKUPS_NAME).iterdir())
    os.mkdir(os.fsencode(top / "openspec/changes") + b"/bad\xff")
    report = sync.sync()
    assert any("bad\\xff" in s.folder for s in report.skipped)
    orjson.dumps(report.to_dict())  # shown with --json: no surrogate left in it
    with pytest.raises(TaskstoreError, match="may hold only"):
        OpenSpecSync.init(sync.store, ["my specs"])


def test_a_tick_rewrites_only_the_file_it_changed(sync: OpenSpecSync, top: Path) -> None:
    """Found by review: each change record carried every file's text, so a tick copied a
    long design.md into the store again. Each file is a record of its own."""
    (top / "openspec/changes/demo/design.md").write_text("# Design\n" + "A long page.\n" * 5000)
    sync.sync()
    files = Path(sync.store.file_path("openspec_files"))
    size = files.stat().st_size
    sync.set_task("demo", "1.1", done=True)
    grown = files.read_bytes()[size:]
    assert grown.count(b"\n") == 1 and b'"id":"demo/tasks.md"' in grown
    assert sync.files("demo")["tasks.md"].startswith("## 1. Build\n- [x] 1.1")
    assert sorted(sync.files("demo")) == ["design.md", "proposal.md", "tasks.md"]
    shutil.rmtree(top / "openspec/changes/demo")
    sync.sync()
    assert sync.files("demo") == {}


def test_a_sync_s_own_writes_leave_nothing_for_the_sweep(sync: OpenSpecSync, top: Path) -> None:
    """Found by review: after a store -> files write the change was listed by every
    sweep, and a sync of one change made the next sweep scan every record and the next
    git hook sync everything."""
    _age(top / "openspec")
    sync.sync()
    assert sync.changed_since_last_sync() == [] and not sync.needs_sync()
    sync.set_task("demo", "1.1", done=True)  # writes tasks.md, syncs one change
    seen = lastsync.load(sync.store.path)
    assert seen["files"]["demo"]["dirs"] is not None  # remembered, not listed again
    assert seen["store"] == lastsync.store_signature(sync.store.path)  # nothing to scan
    assert lastsync.jsonable(
        lastsync.stat_files(str(top), "openspec/changes/demo", ["tasks.md"])
    ) == {"tasks.md": seen["files"]["demo"]["files"]["tasks.md"]}
    # Another writer's record: the store's files moved, the change is found.
    with Store.open(top) as other:
        other.collection(TASKS).put({"id": "demo/1.2", "done": True}, merge=True)
    assert sync.changed_since_last_sync() == ["demo"]


@pytest.mark.slow
def test_a_commit_of_openspec_files_takes_their_records(tmp_path: Path) -> None:
    """Found by review: after `openspec done` (or the watcher) wrote both sides, a commit
    of the staged tasks.md left its records out; and an editor's swap file beside
    tasks.md stopped every sync as an unstaged edit."""
    repo = _hooked(tmp_path)
    ok(_cli(repo, "openspec", "done", "demo", "1.1"))
    (repo / "openspec/changes/demo/.tasks.md.swp").write_bytes(b"\0vim")
    git(repo, "add", "openspec/changes/demo/tasks.md")
    ok(run_git(repo, "commit", "-q", "-m", "tick"))
    assert '"done":true' in git(repo, "show", "HEAD:.taskstore/openspec_tasks.jsonl")
    assert git(repo, "status", "--porcelain") == "?? openspec/changes/demo/.tasks.md.swp\n"
    _tick(repo / "openspec/changes/demo/tasks.md", "1.2")
    git(repo, "add", "openspec/changes/demo/tasks.md")
    done = run_git(repo, "commit", "-q", "-m", "tick 1.2")
    assert done.code == 0 and "not staged" not in done.err, done
    assert '"id":"demo/1.2"' in git(repo, "show", "HEAD:.taskstore/openspec_tasks.jsonl")


def test_tasks_of_the_same_text_in_other_groups_keep_their_keys(
    sync: OpenSpecSync, top: Path
) -> None:
    """Found by review: "Write tests" under Backend and under Frontend were told apart by
    their order alone, so one inserted above shifted the keys and a store tick landed on
    Backend's line. The group heading is part of the digest."""
    tasks_md = top / "openspec/changes/demo/tasks.md"
    two = "## 1. Backend\n- [ ] Write tests\n\n## 2. Frontend\n- [ ] Write tests\n"
    tasks_md.write_text(two)
    sync.sync()
    frontend = next(t for t in sync.tasks("demo") if t["group"] == "2. Frontend")
    sync.store.collection(TASKS).put({"id": frontend["id"], "done": True}, merge=True)
    tasks_md.write_text("## 0. Schema\n- [ ] Write tests\n\n" + two)
    result = sync.sync().changes[0]
    assert result.to_files == [f"task {frontend['key']}"] and not result.conflicts
    assert tasks_md.read_text() == "## 0. Schema\n- [ ] Write tests\n\n" + two.replace(
        "## 2. Frontend\n- [ ] Write tests", "## 2. Frontend\n- [x] Write tests"
    )


def test_a_save_while_the_sync_writes_is_not_overwritten(tmp_path: Path) -> None:
    """Found by review: the file was compared, then backed up and fsynced, then renamed
    over: an editor's save in between was lost. The comparison now runs once the new
    bytes are durable, right before the rename (atomic_write's before_rename)."""
    from git_taskstore.files import atomic_write
    from git_taskstore.openspec.folders import FolderError, replace_file

    path = tmp_path / "tasks.md"
    path.write_bytes(b"old\n")

    def editor_saves() -> None:
        path.write_bytes(b"saved by a person\n")
        raise FolderError("tasks.md changed during the sync", transient=True)

    with pytest.raises(FolderError):
        atomic_write(str(path), b"ours\n", before_rename=editor_saves)
    assert path.read_bytes() == b"saved by a person\n"
    assert [p.name for p in tmp_path.iterdir()] == ["tasks.md"]  # no temp file left
    with pytest.raises(FolderError, match="changed during the sync"):
        replace_file(str(tmp_path.parent), tmp_path.name, "tasks.md", b"old\n", b"x", "", 0)
    assert path.read_bytes() == b"saved by a person\n"


def test_records_of_the_wrong_shape_from_git_are_not_trusted(sync: OpenSpecSync, top: Path) -> None:
    """Records arrive through git, from strangers. Found trying it: a change record whose
    base was a string crashed every sync and status with a traceback, and a task record
    with a 300-byte key stopped the whole sync. Such fields read as absent, and a record
    whose id is not `<change>/<key>` of its own fields is not the sync's."""
    from testing.inprocess import cli

    changes = sync.store.collection(CHANGES_COLLECTION)
    changes.put(
        {"id": "demo", "hashes": ["a"], "synced": "x", "conflicts": 5, "deltas": 3}, merge=True
    )
    sync.store.collection(TASKS).put(
        {"id": "demo/1.1", "key": "k" * 300, "synced": [1], "done": "yes"}, merge=True
    )
    assert ok(cli("openspec", "show", "demo", cwd=top)).out.startswith("demo:")
    report = sync.sync()
    assert [r.state for r in report.changes] == ["files_changed"]
    record = changes.get("demo")
    assert record is not None and isinstance(record["hashes"], dict)
    assert isinstance(record["synced"], dict) and record["conflicts"] == []
    assert task(sync, "demo", "1.1")["synced"] == {"done": False, "text": "1.1 First"}
    assert [r.state for r in sync.status()] == ["in_sync"]
