"""The store's write lock: flock on taskstore.lock, re-entrant, excluding other processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from git_taskstore import Store, TaskstoreError
from git_taskstore import engine as engine_module
from git_taskstore.locking import FlockLock

HOLD = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("held", flush=True)
    sys.stdin.readline()  # until the test says so
    """
)


def hold_in_another_process(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdout.readline() == "held\n"
    return child


def let_go(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.wait(timeout=10) == 0


def assert_held(path: Path) -> None:
    """Another open file of the lock cannot take it: flock locks belong to open files."""
    with pytest.raises(TimeoutError):
        FlockLock(str(path), timeout=0.05).acquire()


def test_another_process_waits_until_the_lock_is_released(tmp_path: Path) -> None:
    path = tmp_path / "taskstore.lock"
    child = hold_in_another_process(path)
    lock = FlockLock(str(path), timeout=0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        lock.acquire()
    assert time.monotonic() - started >= 0.2
    let_go(child)
    lock.timeout = 5
    lock.acquire()
    lock.release()


def test_the_lock_is_reentrant_and_held_until_the_last_release(tmp_path: Path) -> None:
    path = tmp_path / "taskstore.lock"
    lock = FlockLock(str(path), timeout=5)
    lock.acquire()
    lock.acquire()
    lock.release()
    assert_held(path)
    lock.release()
    probe = FlockLock(str(path), timeout=0.05)
    probe.acquire()
    probe.release()
    with pytest.raises(RuntimeError, match="not locked"):
        probe.release()


def test_a_deleted_lock_file_is_made_again(tmp_path: Path) -> None:
    path = tmp_path / "taskstore.lock"
    lock = FlockLock(str(path), timeout=5)
    lock.acquire()
    lock.release()
    path.unlink()  # git clean -X, say
    lock.acquire()
    assert path.exists()
    assert_held(path)  # the file that is there now is the one locked
    lock.release()


def test_a_write_to_a_store_locked_too_long_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "LOCK_TIMEOUT_S", 0.2)
    with Store.open(tmp_path) as store:
        child = hold_in_another_process(Path(store.path) / "taskstore.lock")
        try:
            with pytest.raises(TaskstoreError, match="has been locked by another process"):
                store.collection("tasks").put({"id": "a"})
        finally:
            let_go(child)
        store.collection("tasks").put({"id": "a"})
        assert store.collection("tasks").get("a") is not None


def test_a_lock_file_deleted_under_its_holder_keeps_others_out(tmp_path: Path) -> None:
    """The holder's file is unlinked (git clean -X) and a newcomer makes a new one at the
    path: the folder's lock still keeps the newcomer out until the holder lets go.
    (Mutation: take only the file's lock, and the newcomer gets in at once.)"""
    path = tmp_path / "taskstore.lock"
    holder = FlockLock(str(path), timeout=5)
    holder.acquire()
    path.unlink()
    newcomer = FlockLock(str(path), timeout=0.1)
    with pytest.raises(TimeoutError):
        newcomer.acquire()
    holder.release()
    newcomer.timeout = 5
    newcomer.acquire()
    newcomer.release()


HOLD_STORE = textwrap.dedent(
    """
    import sys
    from git_taskstore import Store
    with Store.open_dir(sys.argv[1]) as store, store.locked():
        print("held", flush=True)
        sys.stdin.readline()
        store.collection("tasks").put({"id": "holder"})
    """
)


def test_writes_wait_for_a_holder_whose_lock_file_was_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the store; its lock file is deleted: a write here waits
    rather than slipping in beside it. (Mutation: the file's lock alone lets it in.)"""
    monkeypatch.setattr(engine_module, "LOCK_TIMEOUT_S", 0.3)
    with Store.open(tmp_path) as store:
        child = subprocess.Popen(
            [sys.executable, "-c", HOLD_STORE, store.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline() == "held\n"
            (Path(store.path) / "taskstore.lock").unlink()
            with pytest.raises(TaskstoreError, match="has been locked by another process"):
                store.collection("tasks").put({"id": "meanwhile"})
        finally:
            let_go(child)
        tasks = store.collection("tasks")
        tasks.put({"id": "after"})
        assert {r["id"] for r in tasks.list()} == {"holder", "after"}


def test_a_lock_file_replaced_while_waiting_is_locked_again(tmp_path: Path) -> None:
    """Another tool holds taskstore.lock; the file is replaced while we wait, and a third
    process locks the new one. When the first lets go we hold a lock on a file no longer
    at the path: we must lock the file there now, and so wait for the third. (Mutation:
    drop the _same_file check: acquire returns while the third still holds the file.)"""
    path = tmp_path / "taskstore.lock"
    first = hold_in_another_process(path)
    lock = FlockLock(str(path), timeout=10)
    acquired = threading.Event()
    waiter = threading.Thread(target=lambda: (lock.acquire(), acquired.set()))
    waiter.start()
    time.sleep(0.2)  # the waiter now holds the folder and waits for the file
    path.unlink()
    path.touch()
    third = hold_in_another_process(path)
    let_go(first)
    assert not acquired.wait(0.5), "locked a file that is no longer at the path"
    let_go(third)
    assert acquired.wait(5)
    waiter.join()
    lock.release()
