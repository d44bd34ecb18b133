"""engine.py: one folder under one lock: threads, a damaged cache, a closed store."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from testing.stores import (
    file_lines,
    make_history,
    snapshot,
)

from git_taskstore import (
    Filter,
    Op,
    Store,
    StorePathError,
)
from git_taskstore.engine import align_journal_modes
from git_taskstore.jsonl import parse_line


@pytest.mark.parametrize("damage", ["garbage", "deleted", "empty"])
def test_a_damaged_cache_is_rebuilt_and_the_data_is_intact(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Store.open(tmp_path) as store:
        make_history(store)
        store.collection("tasks").ensure_index("v")
        expected = store.export_data()
        folder = Path(store.path)
    before = snapshot(folder)
    db = folder / "taskstore.db"
    for extra in ("taskstore.db-wal", "taskstore.db-shm"):
        (folder / extra).unlink(missing_ok=True)
    if damage == "garbage":
        db.write_bytes(b"this is not a database\x00" * 512)
    elif damage == "empty":
        db.write_bytes(b"")
    else:
        db.unlink()
    with caplog.at_level(logging.INFO, logger="git_taskstore"):  # the rebuild is a note
        with Store.open(tmp_path) as store:
            assert store.export_data() == expected
            assert store.collection("tasks").get("b") is None
            assert store.collection("tasks").count([Filter("v", Op.EQ, 3)]) == 1
            assert [p.line for p in store.check()] == [4]  # the {broken line, nothing else
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == []
    if damage == "garbage":
        assert any("rebuilt it from the JSONL files" in m for m in caplog.messages)
    assert snapshot(folder) == before


def test_a_store_shared_by_eight_threads_loses_nothing(store: Store) -> None:
    tasks = store.collection("tasks")
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(60):
                tasks.put({"id": f"t{n}-{i}", "n": n, "i": i})
                tasks.put({"id": "shared", f"f{n}": i}, merge=True)
                if i % 10 == 0:
                    tasks.count([Filter("n", Op.EQ, n)])
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert tasks.count() == 8 * 60 + 1
    shared = tasks.get("shared")
    assert shared is not None
    assert {k: v for k, v in shared.items() if k.startswith("f")} == {f"f{n}": 59 for n in range(8)}
    lines = file_lines(store.file_path("tasks"))
    assert len(lines) == 2 * 8 * 60
    assert all(isinstance(parse_line(raw), dict) for raw in lines)
    with Store.open_dir(store.path) as fresh:
        assert fresh.collection("tasks").count() == 8 * 60 + 1


def test_store_is_a_context_manager_and_refuses_use_after_close(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.collection("tasks").put({"id": "a"})
    with pytest.raises(Exception, match="closed"):
        store.collection("tasks").list()


FILL_UP = textwrap.dedent(
    """
    import resource, signal, sys
    from git_taskstore import Store, TaskstoreError
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a kill
    store_dir, limit, how = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    big = [{"id": f"b-{i}", "pad": "x" * 200} for i in range(500)]
    with Store.open_dir(store_dir) as store:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
        try:
            if how == "batch":
                with store.batch():
                    store.collection("a").put({"id": "a-new"})
                    store.collection("b").put_many(big)
            else:
                store.collection("b").put_many(big)
        except TaskstoreError as exc:
            print(exc)
            sys.exit(1)
    """
)


@pytest.mark.parametrize("where", ["file", "cache"])
@pytest.mark.parametrize("how", ["put_many", "batch"])
def test_a_write_cut_short_by_the_file_size_limit_leaves_no_byte(
    tmp_path: Path, how: str, where: str
) -> None:
    """EFBIG part-way through the append (``file``), or when the cache commits after it
    (``cache``: the WAL outgrows the limit): the lines already written, in this file and
    in the other collection of the batch, are truncated away, and the error is one line.
    (Mutation: drop Append.undo, and the first blocks of the write stay.)"""
    with Store.open(tmp_path) as store:
        store.collection("a").put({"id": "a-old"})
        store.collection("b").put_many([{"id": f"old-{i}", "pad": "y" * 200} for i in range(40)])
        folder = Path(store.path)
    before = snapshot(folder)
    biggest = max(p.stat().st_size for p in folder.iterdir() if p.is_file())
    limit = (folder / "b.jsonl").stat().st_size + 30_000 if where == "file" else biggest + 30_000
    done = subprocess.run(
        [sys.executable, "-c", FILL_UP, str(folder), str(limit), how],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1, done.stderr
    expected = "cannot append to" if where == "file" else "cannot record the write in"
    assert expected in done.stdout, done.stderr
    assert "nothing was written" in done.stdout
    assert len(done.stdout.strip().splitlines()) == 1
    assert snapshot(folder) == before
    with Store.open(tmp_path) as store:
        assert store.collection("b").count() == 40
        assert [r["id"] for r in store.collection("a").list()] == ["a-old"]


def test_a_symlinked_collection_is_neither_read_nor_written(tmp_path: Path) -> None:
    """A link that arrived through git, pointing outside the store: writes and reads of
    that collection refuse it in one line, the outside file keeps its bytes, check names
    it, and the other collections work. (Mutation: open without O_NOFOLLOW / stat instead
    of lstat, and the put appends to the outside file.)"""
    outside = tmp_path / "outside.jsonl"
    outside.write_bytes(b'{"id":"secret","updated_at":1}\n')
    with Store.open(tmp_path / "repo") as store:
        store.collection("ok").put({"id": "fine"})
        os.symlink(outside, Path(store.path) / "tasks.jsonl")
        with pytest.raises(StorePathError, match="is a symbolic link"):
            store.collection("tasks").put({"id": "x"})
        with pytest.raises(StorePathError, match="is a symbolic link"):
            store.collection("tasks").list()
        assert outside.read_bytes() == b'{"id":"secret","updated_at":1}\n'
        assert [r["id"] for r in store.collection("ok").list()] == ["fine"]
        assert any("symbolic link" in p.message for p in store.check())
        store.sync()


def test_a_cache_made_writable_again_gets_writable_wal_and_shm(tmp_path: Path) -> None:
    """SQLite makes -wal and -shm with the cache's mode: after a read-only spell they stay
    0444 and every open by a user who is not root fails. Engine._open_cache aligns them
    (rather than deleting the cache, which may hold pending writes) and opens again.
    The suite runs as root, whom no mode stops: the function is tested on its own.
    Mutation: chmod nothing in align_journal_modes: the modes stay 0o444."""
    with Store.open_dir(tmp_path / "store") as store:
        store.collection("tasks").put({"id": "a"})
        db = Path(store.path) / "taskstore.db"
        for suffix in ("-wal", "-shm"):
            os.chmod(f"{db}{suffix}", 0o444)
        assert align_journal_modes(str(db)) is True
        for suffix in ("-wal", "-shm"):
            assert os.stat(f"{db}{suffix}").st_mode & 0o777 == db.stat().st_mode & 0o777
        assert align_journal_modes(str(db)) is False
