"""engine.py: one folder under one lock: threads, a damaged cache, a closed store."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from testing.stores import (
    Task,
    file_lines,
    make_history,
    snapshot,
)

from git_taskstore import (
    Filter,
    Op,
    Store,
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
            assert store.count(Task, [Filter("v", Op.EQ, 3)]) == 1
            assert [p.line for p in store.check()] == [4]  # the {broken line, nothing else
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert errors == []
    if damage == "garbage":
        assert any("rebuilding" in m for m in caplog.messages)
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


def test_a_cache_made_writable_again_gets_writable_wal_and_shm(tmp_path: Path) -> None:
    """SQLite makes -wal and -shm with the cache's mode: after a read-only spell they stay
    0444 and every open fails (as a non-root user) until they are deleted by hand. Opening
    aligns them. Mutation: chmod nothing in align_journal_modes: modes stay 0o444."""
    with Store.open_dir(tmp_path / "store") as store:
        store.collection("tasks").put({"id": "a"})
        db = Path(store.path) / "taskstore.db"
        for suffix in ("-wal", "-shm"):
            os.chmod(f"{db}{suffix}", 0o444)
        assert align_journal_modes(str(db)) is True
        for suffix in ("-wal", "-shm"):
            assert os.stat(f"{db}{suffix}").st_mode & 0o777 == db.stat().st_mode & 0o777
        assert align_journal_modes(str(db)) is False
