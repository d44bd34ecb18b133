"""Atomic read-modify-write (issue 14): store.modify and update(expect_version=...) hold
the lock from the read to the write, across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from testing.stores import Task

from git_taskstore import NotFoundError, Store, ValidationError, VersionConflictError

ROUNDS = 40

# A process that adds 1 to the priority of t1, ROUNDS times, through modify().
WORKER = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from testing.stores import Task
from git_taskstore import Store

def bump(task):
    task.priority += 1

with Store.open(sys.argv[1]) as store:
    for _ in range({ROUNDS}):
        store.modify(Task, "t1", bump)
"""


def test_modify_loses_no_increment_across_threads_and_processes(tmp_path: Path) -> None:
    """Mutation caught: modify() without the lock (get, then update) loses increments."""
    with Store.open(tmp_path) as store:
        store.put(Task(id="t1", title="counter"))

        def bump(task: Task) -> None:
            task.priority += 1

        def worker() -> None:
            for _ in range(ROUNDS):
                store.modify(Task, "t1", bump)

        procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path)]) for _ in range(2)]
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [p.wait(timeout=120) for p in procs] == [0, 0]
        got = store.get(Task, "t1")
        assert got is not None and got.priority == ROUNDS * 6


def test_modify_takes_a_returned_record_and_refuses_what_it_cannot_do(store: Store) -> None:
    store.put(Task(id="t1", title="a"))
    written = store.modify(Task, "t1", lambda t: Task(id=t.id, title="b", status="done"))
    assert (written.title, written.status) == ("b", "done")
    with pytest.raises(NotFoundError):
        store.modify(Task, "nope", lambda t: None)
    with store.batch(), pytest.raises(ValidationError, match=r"inside store\.batch"):
        store.modify(Task, "t1", lambda t: None)


def test_update_with_expect_version_fails_if_someone_wrote_in_between(store: Store) -> None:
    store.put(Task(id="t1", title="a"))
    mine = store.get(Task, "t1")
    assert mine is not None
    read_at = mine.updated_at
    other = store.get(Task, "t1")
    assert other is not None
    other.title = "theirs"
    store.update(other)
    mine.title = "mine"
    with pytest.raises(VersionConflictError, match="another writer changed it"):
        store.update(mine, expect_version=read_at)
    fresh = store.get(Task, "t1")
    assert fresh is not None and fresh.title == "theirs"
    fresh.title = "mine, again"
    assert store.update(fresh, expect_version=fresh.updated_at).title == "mine, again"
    tasks = store.collection("tasks")
    row = tasks.get("t1")
    assert row is not None
    with pytest.raises(VersionConflictError):
        tasks.update({"id": "t1", "title": "x"}, expect_version=row["updated_at"] - 1)
    tasks.update({"id": "t1", "title": "x"}, expect_version=row["updated_at"])
