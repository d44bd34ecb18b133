"""Helpers of the store tests: folder snapshots, writes behind its back, typed records."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import orjson

from git_taskstore import (
    Record,
    Store,
    sync,
)


def snapshot(folder: str | os.PathLike[str]) -> dict[str, bytes]:
    """relpath -> bytes of every file under folder, except the cache and the lock."""
    root = Path(folder)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(("taskstore.db", "taskstore.lock"))
    }


def file_lines(path: str | os.PathLike[str]) -> list[bytes]:
    return [raw for raw in Path(path).read_bytes().split(b"\n") if raw.strip()]


def records_in_file(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in file_lines(path)]


def append_raw(path: str | os.PathLike[str], data: bytes) -> None:
    """Append bytes the way another tool would: a plain append, no lock, no store."""
    with open(path, "ab") as handle:
        handle.write(data)


def ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["id"] for r in records]


def sync_action(store: Store, collection: str) -> str:
    with store.locked():
        return sync.sync(store.engine.cache, collection, store.file_path(collection)).action


def query_plan(store: Store, run: Callable[[], object]) -> str:
    """The EXPLAIN QUERY PLAN of the last SELECT on a record table that ``run()`` issues."""
    statements: list[str] = []
    conn = store.engine.cache.conn
    conn.set_trace_callback(statements.append)
    try:
        run()
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.startswith('SELECT data FROM "r_')]
    assert selects, statements
    rows = conn.execute("EXPLAIN QUERY PLAN " + selects[-1]).fetchall()
    return "\n".join(str(row[-1]) for row in rows)


def rewrite_in_place_keeping_stat(path: str, old: bytes, new: bytes) -> None:
    """Replace ``old`` by ``new`` (same length) inside the file, keeping inode, size and
    mtime_ns: what a second write within one mtime tick looks like to stat()."""
    assert len(old) == len(new)
    before = os.stat(path)
    data = Path(path).read_bytes()
    assert data.count(old) == 1
    with open(path, "r+b") as handle:
        handle.write(data.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )


@dataclass
class Task(Record):
    collection_name: ClassVar[str] = "tasks"
    indexed_fields: ClassVar[tuple[str, ...]] = ("status", "priority")
    title: str = ""
    status: str = "open"
    priority: int = 0
    tags: list[str] = field(default_factory=list)


@dataclass
class Note(Record):
    collection_name: ClassVar[str] = "notes"
    id_prefix: ClassVar[str] = "note-"
    text: str = ""


def make_history(store: Store) -> None:
    tasks = store.collection("tasks")
    tasks.put({"id": "a", "v": 1})
    tasks.put({"id": "b", "v": 1})
    tasks.put({"id": "a", "v": 2}, merge=True)
    append_raw(store.file_path("tasks"), b"{broken\n")
    tasks.put({"id": "c", "v": 1})
    tasks.delete("b")
    tasks.put({"id": "a", "v": 3}, merge=True)
    store.collection("notes").put({"id": "n", "text": "x"})
