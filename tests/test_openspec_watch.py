"""`git taskstore watch` as a real process: edits of either side reach the other.

Each test starts ``git-taskstore watch --json`` in a repository with two OpenSpec changes
and reads its events (one JSON object a line) on a thread; every wait is for an event or
a state, with a timeout, never a fixed sleep, except where the point is that nothing
happens (no echo: a quiet window).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testing import cli, data, ok, run_python
from testing.repos import new_repo

from git_taskstore import Store
from git_taskstore.openspec.watch import running

GIT_TASKSTORE = os.path.join(os.path.dirname(sys.executable), "git-taskstore")
TIMEOUT_S = 10.0  # for an event that should come within a few hundred ms
QUIET_S = 1.5  # the window in which no echo may show up

TASKS_MD = "## 1. Build\n- [ ] 1.1 first\n- [ ] 1.2 second\n"
PROPOSAL_MD = "# Change: {title}\n\n## Why\nBecause.\n\n## What Changes\n- it\n"


class WatchProcess:
    """A running ``git-taskstore watch --json`` and the events it printed so far."""

    def __init__(self, repo: Path, *args: str) -> None:
        self.repo = repo
        self.proc = subprocess.Popen(
            [GIT_TASKSTORE, "watch", "--json", *args],
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.changed = threading.Condition()
        self.readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "NOT JSON", "line": line}
            with self.changed:
                self.events.append(event)
                self.changed.notify_all()
        with self.changed:
            self.events.append({"event": "EOF"})
            self.changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def __repr__(self) -> str:
        shown = "\n".join(json.dumps(e) for e in self.events)
        return f"events:\n{shown}\nstderr:\n{''.join(self.stderr)}"

    def mark(self) -> int:
        """Where the events stand now: pass it to wait_for/since to see only later ones."""
        with self.changed:
            return len(self.events)

    def since(self, mark: int, change: str | None = None) -> list[dict[str, Any]]:
        with self.changed:
            found = self.events[mark:]
        return [e for e in found if change is None or e.get("change") == change]

    def wait_for(
        self, name: str, *, mark: int = 0, timeout: float = TIMEOUT_S, **fields: Any
    ) -> dict[str, Any]:
        """The first event ``name`` after ``mark`` whose fields hold ``fields`` (a list
        field: holds the value given)."""

        def matches(event: dict[str, Any]) -> bool:
            if event.get("event") != name:
                return False
            for key, want in fields.items():
                got = event.get(key)
                if isinstance(got, list) and not isinstance(want, list):
                    if want not in got:
                        return False
                elif got != want:
                    return False
            return True

        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for event in self.events[mark:]:
                    if matches(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0 or (self.events and self.events[-1]["event"] == "EOF"):
                    raise AssertionError(f"no {name} {fields} within {timeout} s\n{self}")
                self.changed.wait(left)

    def started(self) -> WatchProcess:
        self.wait_for("watch_started")
        return self

    def stop(self, timeout: float = TIMEOUT_S) -> int:
        """SIGTERM, then its exit code."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=timeout)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT_S)
        for reader in self.readers:
            reader.join(timeout=TIMEOUT_S)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


Start = Callable[..., WatchProcess]  # the watch fixture: starts one with these options


def write_change(repo: Path, change: str, tasks: str = TASKS_MD) -> Path:
    folder = repo / "openspec" / "changes" / change
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "proposal.md").write_text(PROPOSAL_MD.format(title=change.upper()))
    (folder / "tasks.md").write_text(tasks)
    return folder / "tasks.md"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with changes c1 and c2 (tasks 1.1 and 1.2, not done), synced."""
    path = new_repo(tmp_path / "repo")
    write_change(path, "c1")
    write_change(path, "c2")
    ok(cli("openspec", "init", cwd=path))
    return path


@pytest.fixture
def watch(repo: Path) -> Iterator[Start]:
    started: list[WatchProcess] = []

    def start(*args: str) -> WatchProcess:
        watcher = WatchProcess(repo, *args)
        started.append(watcher)
        return watcher.started()

    yield start
    for watcher in started:
        watcher.close()


def task(repo: Path, change: str, key: str) -> dict[str, Any]:
    """The record of task ``key`` of ``change``, read through the store."""
    with Store.open(repo, create=False) as store:
        record = store.collection("openspec_tasks").get(f"{change}/{key}")
    assert record is not None, f"no record of task {key} of {change}"
    return record


def put_task_elsewhere(repo: Path, change: str, key: str, **fields: Any) -> None:
    """A write to the store by another process, as an agent's would be."""
    code = (
        "import json, sys\n"
        "from git_taskstore import Store\n"
        "with Store.open('.', create=False) as s:\n"
        "    s.collection('openspec_tasks').put(json.loads(sys.argv[1]), merge=True)\n"
    )
    run_python(code, json.dumps({"id": f"{change}/{key}", **fields}), cwd=repo)


def tick(path: Path, key: str, done: bool = True) -> None:
    """Save tasks.md with task ``key`` ticked (or not), in place, as an editor saves."""
    old, new = ("[ ]", "[x]") if done else ("[x]", "[ ]")
    text = path.read_text()
    assert f"- {old} {key} " in text, text
    path.write_text(text.replace(f"- {old} {key} ", f"- {new} {key} "))


def syncs(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] in ("sync_started", "sync_completed")]


# --- files -> store and store -> files -------------------------------------------------------


def test_an_edit_of_tasks_md_reaches_the_store(repo: Path, watch: Start) -> None:
    watcher = watch()
    assert task(repo, "c1", "1.1")["done"] is False
    mark = watcher.mark()
    tick(repo / "openspec/changes/c1/tasks.md", "1.1")
    event = watcher.wait_for(
        "sync_completed", mark=mark, change="c1", direction="files_to_store", units="task 1.1"
    )
    assert event["trigger"] == "watcher" and event["files"] == ["openspec/changes/c1"]
    assert task(repo, "c1", "1.1")["done"] is True, watcher
    assert task(repo, "c1", "1.2")["done"] is False, watcher
    assert [e["change"] for e in syncs(watcher.since(mark))] == ["c1", "c1"], watcher


def test_a_store_write_by_another_process_reaches_the_file(repo: Path, watch: Start) -> None:
    watcher = watch()
    mark = watcher.mark()
    put_task_elsewhere(repo, "c1", "1.2", done=True)
    event = watcher.wait_for(
        "sync_completed", mark=mark, change="c1", direction="store_to_files", units="task 1.2"
    )
    assert event["files"] == ["openspec/changes/c1/tasks.md"]
    text = (repo / "openspec/changes/c1/tasks.md").read_text()
    assert text == TASKS_MD.replace("- [ ] 1.2", "- [x] 1.2"), text
    assert (repo / "openspec/changes/c2/tasks.md").read_text() == TASKS_MD
    # The record's base moved with it: both sides agree, nothing left to sync.
    assert task(repo, "c1", "1.2")["synced"] == {"done": True, "text": "1.2 second"}


def test_a_burst_of_saves_gives_one_sync(repo: Path, watch: Start) -> None:
    """Ten saves within about a second, closer together than the debounce: one sync,
    of the last content."""
    watcher = watch("--debounce-ms", "400")
    path = repo / "openspec/changes/c1/tasks.md"
    mark = watcher.mark()
    for i in range(10):
        # Each save differs from the one before; the last ticks both tasks.
        done = {"1.1": i % 2 == 0 or i == 9, "1.2": i == 9}
        text = TASKS_MD
        for key, is_done in done.items():
            if is_done:
                text = text.replace(f"- [ ] {key}", f"- [x] {key}")
        path.write_text(text)
        time.sleep(0.09)
    watcher.wait_for("sync_completed", mark=mark, change="c1", direction="files_to_store")
    time.sleep(0.8)  # more than a debounce: a second sync, if any, would show by now
    events = syncs(watcher.since(mark, "c1"))
    assert [e["event"] for e in events] == ["sync_started", "sync_completed"], watcher
    assert sorted(events[1]["units"]) == ["task 1.1", "task 1.2"], watcher
    assert task(repo, "c1", "1.1")["done"] and task(repo, "c1", "1.2")["done"]


def test_no_echo_after_the_watcher_writes_the_file(repo: Path, watch: Start) -> None:
    """The watcher's own writes (tasks.md, the records) start no sync of their own."""
    watcher = watch()
    mark = watcher.mark()
    put_task_elsewhere(repo, "c1", "1.1", done=True)
    watcher.wait_for("sync_completed", mark=mark, change="c1", direction="store_to_files")
    after = watcher.mark()
    time.sleep(QUIET_S)  # nothing is to happen: there is no event to wait for
    assert syncs(watcher.since(after, "c1")) == [], watcher
    assert [e["event"] for e in syncs(watcher.since(mark))] == ["sync_started", "sync_completed"]
    # Still listening: the next edit is synced.
    mark = watcher.mark()
    tick(repo / "openspec/changes/c1/tasks.md", "1.2")
    watcher.wait_for("sync_completed", mark=mark, change="c1", units="task 1.2")


def test_a_tick_through_the_cli_needs_nothing_from_the_watcher(repo: Path, watch: Start) -> None:
    """`openspec done` writes the store and tasks.md itself: both sides agree, so the
    watcher, which sees both writes, has nothing to sync."""
    watcher = watch()
    mark = watcher.mark()
    ok(cli("openspec", "done", "c1", "1.1", cwd=repo))
    assert "- [x] 1.1 first" in (repo / "openspec/changes/c1/tasks.md").read_text()
    time.sleep(QUIET_S)  # nothing is to happen: there is no event to wait for
    assert syncs(watcher.since(mark)) == [], watcher


# --- the process ----------------------------------------------------------------------------


def test_sigterm_stops_it_cleanly(repo: Path) -> None:
    store_dir = str(repo / ".taskstore")
    assert running(store_dir) is None
    watcher = WatchProcess(repo)
    try:
        watcher.started()
        assert running(store_dir) == watcher.proc.pid
        status = data(cli("openspec", "status", "--json", cwd=repo))
        assert status["watcher"] == {"running": True, "pid": watcher.proc.pid}
        # A second watcher for the same store is refused, naming the first.
        second = cli("watch", "--json", cwd=repo)
        assert second.code == 1 and f"pid {watcher.proc.pid}" in second.err, second
        assert watcher.stop() == 0, watcher
    finally:
        watcher.close()
    assert watcher.events[-2]["event"] == "watch_stopped", watcher
    assert watcher.events[-1]["event"] == "EOF"
    assert not [e for e in watcher.events if e["event"] in ("NOT JSON", "watcher_error")], watcher
    assert "Traceback" not in "".join(watcher.stderr), watcher
    assert running(store_dir) is None
    status = data(cli("openspec", "status", "--json", cwd=repo))
    assert status["watcher"] == {"running": False, "pid": None}


# --- folders that go away --------------------------------------------------------------------


def test_a_deleted_change_folder_is_survived(repo: Path, watch: Start) -> None:
    watcher = watch()
    mark = watcher.mark()
    for name in ("proposal.md", "tasks.md"):
        (repo / "openspec/changes/c2" / name).unlink()
    (repo / "openspec/changes/c2").rmdir()
    watcher.wait_for("sync_completed", mark=mark, change="c2", direction="files_to_store")
    with Store.open(repo, create=False) as store:
        assert store.collection("openspec_changes").get("c2") is None
        assert store.collection("openspec_tasks").get("c2/1.1") is None
        assert store.collection("openspec_changes").get("c1") is not None
    lines = (repo / ".taskstore/openspec_changes.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["id"] == "c2" and json.loads(lines[-1])["deleted"] is True
    # The watcher goes on with the other change, both ways.
    mark = watcher.mark()
    tick(repo / "openspec/changes/c1/tasks.md", "1.1")
    watcher.wait_for("sync_completed", mark=mark, change="c1", direction="files_to_store")
    assert task(repo, "c1", "1.1")["done"] is True, watcher
    mark = watcher.mark()
    put_task_elsewhere(repo, "c1", "1.2", done=True)
    watcher.wait_for("sync_completed", mark=mark, change="c1", direction="store_to_files")
    assert "- [x] 1.2" in (repo / "openspec/changes/c1/tasks.md").read_text()
    assert watcher.proc.poll() is None
    assert not [e for e in watcher.events if e["event"] == "watcher_error"], watcher


def test_the_whole_root_deleted_then_recreated_is_survived(repo: Path, watch: Start) -> None:
    """A missing root is no deletion of its changes: their records stay; once it is back
    (seen by the sweep), the watcher syncs what it holds and watches it again."""
    watcher = watch("--sweep-seconds", "0.5")
    mark = watcher.mark()
    for change in ("c1", "c2"):
        for name in ("proposal.md", "tasks.md"):
            (repo / "openspec/changes" / change / name).unlink()
        (repo / "openspec/changes" / change).rmdir()
    (repo / "openspec/changes").rmdir()
    (repo / "openspec").rmdir()
    warning = watcher.wait_for("warning", mark=mark)
    assert "openspec/ is missing" in warning["message"], watcher
    with Store.open(repo, create=False) as store:
        assert {r["id"] for r in store.collection("openspec_changes").list()} == {"c1", "c2"}
    assert not [e for e in watcher.since(mark) if e.get("change")], watcher

    # Back, with c1's 1.1 ticked meanwhile: synced, though no event named the files.
    mark = watcher.mark()
    write_change(repo, "c1", TASKS_MD.replace("- [ ] 1.1", "- [x] 1.1"))
    write_change(repo, "c2")
    watcher.wait_for("sync_completed", mark=mark, change="c1", units="task 1.1")
    assert task(repo, "c1", "1.1")["done"] is True, watcher
    # And watched again, both ways.
    mark = watcher.mark()
    tick(repo / "openspec/changes/c2/tasks.md", "1.2")
    watcher.wait_for("sync_completed", mark=mark, change="c2", units="task 1.2")
    mark = watcher.mark()
    put_task_elsewhere(repo, "c1", "1.2", done=True)
    watcher.wait_for("sync_completed", mark=mark, change="c1", direction="store_to_files")
    assert "- [x] 1.2" in (repo / "openspec/changes/c1/tasks.md").read_text()
    assert not [e for e in watcher.events if e["event"] == "watcher_error"], watcher


@pytest.mark.parametrize("how", ["deleted", "renamed"])
def test_a_root_replaced_at_once_is_watched_again(repo: Path, watch: Start, how: str) -> None:
    """The root deleted (or moved away) and re-created at once, as a checkout does, with
    the sweep far off: the watcher watches the new folder, not the old one."""
    watcher = watch()
    root = repo / "openspec"
    mark = watcher.mark()
    if how == "deleted":
        shutil.rmtree(root)
    else:
        root.rename(repo / "elsewhere")
    write_change(repo, "c1", TASKS_MD.replace("- [ ] 1.1", "- [x] 1.1"))
    write_change(repo, "c2")
    watcher.wait_for("sync_completed", mark=mark, change="c1", units="task 1.1")
    assert task(repo, "c1", "1.1")["done"] is True, watcher
    mark = watcher.mark()
    tick(repo / "openspec/changes/c2/tasks.md", "1.2")
    watcher.wait_for("sync_completed", mark=mark, change="c2", units="task 1.2")
    assert task(repo, "c2", "1.2")["done"] is True, watcher
    if how == "renamed":
        # The old folder, still watched until the swap is seen, is no change of the store.
        (repo / "elsewhere/changes/c1/tasks.md").write_text(TASKS_MD)
        mark = watcher.mark()
        put_task_elsewhere(repo, "c1", "1.2", done=True)
        watcher.wait_for("sync_completed", mark=mark, change="c1", direction="store_to_files")
        text = (repo / "openspec/changes/c1/tasks.md").read_text()
        assert "- [x] 1.1" in text and "- [x] 1.2" in text, text


def test_a_conflict_is_announced_once(repo: Path, watch: Start) -> None:
    """Task 1.1 of c1 reworded in the file and in the store while no watcher ran: the
    watcher announces the conflict when it starts, and not again at every later write
    to the store; a new value in the file is news again."""
    put_task_elsewhere(repo, "c1", "1.1", text="1.1 the store's words")
    path = repo / "openspec/changes/c1/tasks.md"
    path.write_text(TASKS_MD.replace("1.1 first", "1.1 the file's words"))
    watcher = WatchProcess(repo)
    try:
        watcher.started()
        event = watcher.wait_for("conflict_detected", change="c1")
        assert event["units"] == ["task 1.1"] and event["trigger"] == "periodic", watcher
        mark = watcher.mark()
        put_task_elsewhere(repo, "c2", "1.1", done=True)
        watcher.wait_for("sync_completed", mark=mark, change="c2", direction="store_to_files")
        # c1's events would have come with c2's, in the same sync: none did.
        assert watcher.since(mark, "c1") == [], watcher
        mark = watcher.mark()
        path.write_text(TASKS_MD.replace("1.1 first", "1.1 the file's other words"))
        event = watcher.wait_for("conflict_detected", mark=mark, change="c1")
        assert event["trigger"] == "watcher", watcher
        assert "1.1 the store's words" in task(repo, "c1", "1.1")["text"]
    finally:
        watcher.close()


# --- beside git ---------------------------------------------------------------------------


@pytest.mark.parametrize("held", ["index.lock", "MERGE_HEAD"])
def test_nothing_is_synced_while_git_is_at_work(repo: Path, watch: Start, held: str) -> None:
    """Found by review: git writes the store's files and the markdown one after the other,
    and a sync between the two paired one branch's records with the other's files. While
    git holds its index (a checkout) or a merge waits for the user, events wait."""
    watcher = watch()
    git_dir = repo / ".git"
    (git_dir / held).write_text("0" * 40 + "\n")
    mark = watcher.mark()
    tick(repo / "openspec/changes/c1/tasks.md", "1.1")
    time.sleep(QUIET_S)
    assert syncs(watcher.since(mark)) == [], watcher
    assert task(repo, "c1", "1.1")["done"] is False
    (git_dir / held).unlink()
    watcher.wait_for("sync_completed", mark=mark, change="c1", units="task 1.1")
    assert task(repo, "c1", "1.1")["done"] is True


def test_checkouts_beside_the_watcher_leave_the_tree_clean(repo: Path, watch: Start) -> None:
    """Branches with other ticks, switched back and forth while the watcher runs: the
    hooks and the watcher agree, nothing is left modified, no sync is made of a half
    checkout."""
    from testing import commit_all, git

    commit_all(repo, "two changes")
    lib = repo / "lib"
    lib.mkdir()
    for n in range(400):  # a checkout that takes a while
        (lib / f"f{n}.txt").write_text(f"main {n}\n")
    commit_all(repo, "lib")
    git(repo, "checkout", "-q", "-b", "other")
    ok(cli("openspec", "done", "c1", "1.1", cwd=repo))
    for n in range(400):
        (lib / f"f{n}.txt").write_text(f"other {n}\n")
    commit_all(repo, "tick on other")
    git(repo, "checkout", "-q", "main")
    watcher = watch()
    mark = watcher.mark()
    for branch in ("other", "main", "other", "main"):
        git(repo, "checkout", "-q", branch)
        time.sleep(0.5)
        assert git(repo, "status", "--porcelain") == "", (branch, watcher)
    bogus = [e for e in watcher.since(mark) if e["event"] != "sync_started"]
    assert all(e["event"] == "sync_completed" for e in bogus), watcher
    assert task(repo, "c1", "1.1")["done"] is False
