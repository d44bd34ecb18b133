"""Environment faults: a read-only checkout, a full disk, folders where files belong, a
growing WAL. Each gets one line (never a traceback) and leaves every stored byte as it was.

The read-only and full-disk cases mount (a read-only bind mount, a 1 MiB tmpfs): they need
root, as CI and the development machine have; elsewhere they skip, saying so. The
file-size limit is covered without a mount by test_engine's RLIMIT_FSIZE tests.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from testing import Result, init_repo, ok
from testing.inprocess import cli
from testing.stores import snapshot

from git_taskstore import Store


@contextmanager
def mounted(*args: str, target: Path) -> Iterator[None]:
    done = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount refused here ({done.stderr.strip()}): needs root")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """``folder`` as a read-only file system (a read-only bind mount over itself)."""
    with mounted("--bind", str(folder), target=folder):
        remount = subprocess.run(
            ["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True, text=True
        )
        if remount.returncode != 0:
            pytest.skip(f"read-only remount refused here ({remount.stderr.strip()})")
        yield


def fails(result: Result, *needles: str) -> None:
    """Exit 1, one error line (notes may come before it), no traceback."""
    assert result.code == 1, result
    assert "Traceback" not in result.out + result.err, result
    errors = [line for line in result.err.splitlines() if not line.startswith("note: ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), result
    for needle in needles:
        assert needle in errors[0], result


def make_repo(path: Path) -> Path:
    repo = init_repo(path)
    ok(cli("init", cwd=repo))
    ok(cli("put", "tasks", '{"id": "a", "v": 1}', cwd=repo))
    return repo


@pytest.mark.parametrize("cache", ["kept", "deleted"])
def test_a_read_only_checkout_reads_and_refuses_writes_in_one_line(
    tmp_path: Path, cache: str
) -> None:
    """Reads work through a cache in memory when the cache cannot be written (mutation:
    no in-memory fallback in Engine._open_cache: a traceback at PRAGMA journal_mode);
    a write is one line naming the file system, and nothing changes."""
    repo = make_repo(tmp_path / "repo")
    store = repo / ".taskstore"
    if cache == "deleted":
        for name in os.listdir(store):
            if name.startswith("taskstore.db"):
                os.unlink(store / name)
    before = snapshot(store)
    with read_only(repo):
        listed = ok(cli("list", "tasks", "--json", cwd=repo))
        assert '"id":"a"' in listed.out.replace(" ", "")
        fails(cli("put", "tasks", '{"id": "b"}', cwd=repo), "Read-only file system")
        ok(cli("check", cwd=repo))
        status = ok(cli("status", cwd=repo)).out
        # Counted from the files, not the empty cache in memory. (Mutation: no sync in
        # Store.status for a cache in memory: "tasks 0 new".)
        row = next(line.split() for line in status.splitlines() if line.startswith("tasks"))
        assert "cache: in memory" in status and row[1:3] == ["1", "fresh"], status
    assert snapshot(store) == before


def test_a_full_disk_refuses_a_write_in_one_line_and_keeps_every_byte(tmp_path: Path) -> None:
    """A store on a 1 MiB tmpfs, filled: the write that does not fit is truncated away
    (mutation: drop Append.undo: a fragment stays), reads go on, and once space is freed
    the store writes again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=1m", "tmpfs", target=disk):
        repo = make_repo(disk / "repo")
        store = repo / ".taskstore"
        filler = disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"x" * 512):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        before = snapshot(store)
        big = '{"id": "big", "pad": "' + "y" * 200_000 + '"}'
        result = cli("put", "tasks", big, cwd=repo)
        fails(result, "No space left on device", "nothing was written")
        assert snapshot(store) == before
        ok(cli("list", "tasks", cwd=repo))
        filler.unlink()
        ok(cli("put", "tasks", big, cwd=repo))
        with Store.open(repo) as opened:
            assert {r["id"] for r in opened.collection("tasks").list()} == {"a", "big"}


def test_folders_where_files_belong_are_one_line_each(tmp_path: Path) -> None:
    """A .version that is a folder, a collection that is a folder, a cache that is a
    folder, --store /proc: one line each (mutation: let read_version's OSError through:
    a traceback)."""
    repo = make_repo(tmp_path / "repo")
    store = repo / ".taskstore"
    (store / "dir.jsonl").mkdir()
    fails(cli("list", "dir", cwd=repo), "is not a regular file")
    ok(cli("list", "tasks", cwd=repo))  # the other collections work
    for name in os.listdir(store):
        if name.startswith("taskstore.db"):
            os.unlink(store / name)
    (store / "taskstore.db").mkdir()
    assert '"id":"a"' in ok(cli("list", "tasks", "--json", cwd=repo)).out.replace(" ", "")
    (store / "taskstore.db").rmdir()
    os.unlink(store / ".version")
    (store / ".version").mkdir()
    fails(cli("list", "tasks", cwd=repo), "cannot read .taskstore/.version")
    fails(cli("--store", "/proc", "list", "x", cwd=repo), "cannot make /proc a store")


def test_the_wal_stays_bounded(tmp_path: Path) -> None:
    """3,000 single writes (about 450 KB of JSONL): the WAL stays near 4 MiB, where
    SQLite's defaults (1,000 pages of 16 KiB) let it reach 16 MB. (Mutation: drop the
    wal_autocheckpoint and journal_size_limit pragmas: the WAL passes 5 MB.)"""
    with Store.open(tmp_path) as store:
        tasks = store.collection("tasks")
        for i in range(3000):
            tasks.put({"id": f"t{i % 300}", "title": f"task {i}", "n": i})
        wal = Path(store.path) / "taskstore.db-wal"
        assert wal.stat().st_size <= 5 * 1024 * 1024, wal.stat().st_size


@pytest.mark.parametrize("wal", ["left", "checkpointed"])
def test_a_full_disk_never_deletes_a_cache_that_holds_pending_writes(
    tmp_path: Path, wal: str
) -> None:
    """A debounced write is acknowledged once it is in the cache; its process dies before
    exporting it; the disk fills. A read must go on through a cache in memory and leave
    the file alone, so that the pending write is exported once space is back. With the
    WAL left by the killed writer, the open works and the read's sync hits the full disk
    (mutation: drop the CACHE_FULL branch of Engine.guarded: a traceback); with the WAL
    checkpointed away, the open itself fails at journal_mode=WAL (mutation: delete the
    cache files on that OperationalError in Engine._open_cache, as it did: p is lost)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=1m", "tmpfs", target=disk):
        folder = disk / "store"
        with Store.open_dir(folder) as store:
            store.collection("tasks").put({"id": "a"})
        writer = (
            "import os, sys; from git_taskstore import Store;"
            " s = Store.open_dir(sys.argv[1], debounce_ms=600000);"
            " s.collection('tasks').put({'id': 'p'}); os._exit(0)"
        )
        subprocess.run([sys.executable, "-c", writer, str(folder)], check=True, timeout=60)
        assert b'"p"' not in (folder / "tasks.jsonl").read_bytes()  # pending, in the cache
        if wal == "checkpointed":
            conn = sqlite3.connect(folder / "taskstore.db")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.close()  # the last connection: -wal and -shm go
            assert not (folder / "taskstore.db-wal").exists()
        filler = disk / "filler"
        with open(filler, "wb", buffering=0) as handle:
            for size in (65536, 4096, 512, 1):
                try:
                    while handle.write(b"\0" * size):
                        pass
                except OSError:
                    continue
        listed = ok(cli("list", "tasks", "--json", "--store", str(folder), cwd=disk))
        assert '"a"' in listed.out
        filler.unlink()
        with Store.open_dir(folder) as store:
            assert store.collection("tasks").get("p") is not None
        assert b'"p"' in (folder / "tasks.jsonl").read_bytes()


def test_a_cache_deleted_under_an_open_store_loses_nothing(tmp_path: Path) -> None:
    """The cache files go while a store has them open (a user tidying up, `git clean
    -X`): the open store goes on in the file it holds, a new one rebuilds from the JSONL,
    and both see every write, the truth being the JSONL. (Mutation: needs_sync trusting a
    known state without its stat: the first store never sees "c".)"""
    with Store.open_dir(str(tmp_path / "store")) as store:
        tasks = store.collection("tasks")
        tasks.put({"id": "a"})
        for name in os.listdir(store.path):
            if name.startswith("taskstore.db"):
                os.unlink(os.path.join(store.path, name))
        tasks.put({"id": "b"})
        with Store.open_dir(str(tmp_path / "store")) as other:
            assert sorted(r["id"] for r in other.collection("tasks").list()) == ["a", "b"]
            other.collection("tasks").put({"id": "c"})
        assert sorted(r["id"] for r in tasks.list()) == ["a", "b", "c"]


def test_a_cache_corrupted_under_an_open_store_is_rebuilt(tmp_path: Path) -> None:
    """Every page overwritten while a store has the cache open: the next store to open
    it finds garbage, rebuilds it from the JSONL with a note, and the two stores go on
    seeing each other's writes. (Mutation: let CacheCorrupt out of Engine._open_cache:
    "file is not a database" reaches the second open.)"""
    with Store.open_dir(str(tmp_path / "store")) as first:
        tasks = first.collection("tasks")
        tasks.put({"id": "a"})
        for name in ("taskstore.db", "taskstore.db-wal", "taskstore.db-shm"):
            path = os.path.join(first.path, name)
            if os.path.exists(path):
                with open(path, "r+b") as handle:
                    handle.write(b"\xff" * os.path.getsize(path))
        with Store.open_dir(str(tmp_path / "store")) as second:
            assert [r["id"] for r in second.collection("tasks").list()] == ["a"]
            tasks.put({"id": "b"})
            assert sorted(r["id"] for r in second.collection("tasks").list()) == ["a", "b"]
