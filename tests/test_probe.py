"""probe.py: whether a store's cache reflects every file, or holds pending writes, asked
without opening the store.

Each case changes the store the way git or another tool would, and asks the probe; it
may only say "fresh" when the store itself would find nothing to do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from git_taskstore import Store
from git_taskstore.probe import cache_is_fresh, has_pending

A_MINUTE_AGO_NS = 60 * 10**9


def age(path: Path) -> None:
    """Set a file's mtime a minute back: outside the racy window of the last sync."""
    then = time.time_ns() - A_MINUTE_AGO_NS
    os.utime(path, ns=(then, then))


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    folder = tmp_path / ".taskstore"
    with Store.open_dir(folder) as store:
        store.collection("tasks").put({"id": "t1"})
        store.collection("notes").put({"id": "n1"})
    for name in ("tasks", "notes"):
        age(folder / f"{name}.jsonl")
    with Store.open_dir(folder) as store:
        store.sync()
    return folder


def test_fresh_after_a_sync(store_dir: Path) -> None:
    assert cache_is_fresh(str(store_dir))
    with Store.open_dir(store_dir) as store:
        assert not store.is_stale()  # what the store says too


def test_an_append_by_another_tool_is_seen(store_dir: Path) -> None:
    path = store_dir / "tasks.jsonl"
    with open(path, "ab") as handle:
        handle.write(b'{"id":"t2","updated_at":5}\n')
    assert not cache_is_fresh(str(store_dir))


def test_a_same_size_rewrite_with_the_old_mtime_is_seen_by_its_inode(store_dir: Path) -> None:
    # What git checkout does: a new file in place of the old one, here of the same size
    # and with the same mtime.
    path = store_dir / "tasks.jsonl"
    st = path.stat()
    data = path.read_bytes().replace(b"t1", b"t9")
    path.unlink()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert not cache_is_fresh(str(store_dir))


def test_a_new_file_and_a_deleted_file_are_seen(store_dir: Path) -> None:
    new = store_dir / "more.jsonl"
    new.write_bytes(b'{"id":"m1","updated_at":1}\n')
    age(new)
    assert not cache_is_fresh(str(store_dir))
    new.unlink()
    assert cache_is_fresh(str(store_dir))
    (store_dir / "notes.jsonl").unlink()
    assert not cache_is_fresh(str(store_dir))


def test_a_file_read_inside_its_racy_window_is_not_trusted(tmp_path: Path) -> None:
    folder = tmp_path / ".taskstore"
    with Store.open_dir(folder) as store:
        path = Path(store.file_path("tasks"))
        path.write_bytes(b'{"id":"t1","updated_at":1}\n')  # another tool, just now
        store.sync()
    assert not cache_is_fresh(str(folder))


def test_pending_writes_are_not_fresh(store_dir: Path) -> None:
    child = (
        "import os, sys; from git_taskstore import Store;"
        " s = Store.open_dir(sys.argv[1], debounce_ms=600000);"
        " s.collection('tasks').put({'id': 't2'}); os._exit(0)"
    )
    assert not has_pending(str(store_dir))
    subprocess.run([sys.executable, "-c", child, str(store_dir)], check=True, timeout=60)
    assert not cache_is_fresh(str(store_dir))  # the hook opens the store, which exports them
    assert has_pending(str(store_dir))  # the pre-commit hook opens the store to export them
    with Store.open_dir(store_dir) as store:
        store.flush()
    assert not has_pending(str(store_dir))


def test_no_cache_or_an_unreadable_one_is_not_fresh(store_dir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        db = store_dir / f"taskstore.db{suffix}"
        if db.exists():
            db.unlink()
    assert not cache_is_fresh(str(store_dir))
    assert not has_pending(str(store_dir))  # no cache: no debounced write was ever kept
    (store_dir / "taskstore.db").write_bytes(b"not a database, not even close" * 100)
    assert not cache_is_fresh(str(store_dir))
    assert has_pending(str(store_dir))  # cannot tell: the hook opens the store
    assert not cache_is_fresh(str(store_dir / "missing"))


def test_a_cache_that_is_a_link_is_not_followed(store_dir: Path, tmp_path: Path) -> None:
    # A pull could bring a link at the cache's name: the probe must not open its target
    # (sqlite would write -wal and -shm files beside it, outside the store).
    outside = tmp_path / "outside"
    outside.mkdir()
    db = store_dir / "taskstore.db"
    db.rename(outside / "taskstore.db")
    db.symlink_to(outside / "taskstore.db")
    before = sorted(p.name for p in outside.iterdir())
    assert not cache_is_fresh(str(store_dir))
    assert has_pending(str(store_dir))  # cannot tell: the hook opens the store
    assert sorted(p.name for p in outside.iterdir()) == before
