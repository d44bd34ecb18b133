"""The Store: typed and dict APIs, queries, the cache's view of the files, maintenance.

Real files and real SQLite throughout. Every case of bad input checks both the error and
that no byte of any file in the store folder changed.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import orjson
import pytest
from testing import fixture_dir, run_python

from git_taskstore import (
    AlreadyExistsError,
    Collection,
    ConflictMarkersError,
    Filter,
    NotFoundError,
    Op,
    Record,
    Store,
    StorePathError,
    StoreVersionError,
    ValidationError,
    sync,
)
from git_taskstore.files import atomic_write
from git_taskstore.jsonl import parse_line
from git_taskstore.paths import UNTRACKED_NAMES
from git_taskstore.taskmodel import CHECKS

# --- helpers ----------------------------------------------------------------------------


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


@pytest.fixture
def tasks(store: Store) -> Collection:
    return store.collection("tasks")


# --- typed API --------------------------------------------------------------------------


def test_create_generates_an_id_and_timestamps(store: Store) -> None:
    before = int(time.time() * 1000)
    task = store.create(Task(title="Add OAuth", priority=2))
    assert task.id
    assert before <= task.created_at == task.updated_at <= int(time.time() * 1000) + 1
    assert store.get(Task, task.id) == task


def test_generated_ids_use_the_class_prefix_and_are_unique(store: Store) -> None:
    notes = [store.create(Note(text=str(i))) for i in range(50)]
    assert all(n.id.startswith("note-") for n in notes)
    assert len({n.id for n in notes}) == 50


def test_create_keeps_a_given_id(store: Store) -> None:
    store.create(Task(id="t-1", title="x"))
    got = store.get(Task, "t-1")
    assert got is not None and got.title == "x"


def test_create_of_an_existing_id_is_refused_without_writing(store: Store) -> None:
    store.create(Task(id="t-1", title="first"))
    before = snapshot(store.path)
    with pytest.raises(AlreadyExistsError, match="tasks/t-1 already exists"):
        store.create(Task(id="t-1", title="second"))
    assert snapshot(store.path) == before
    assert store.get(Task, "t-1").title == "first"  # type: ignore[union-attr]


def test_update_replaces_fields_keeps_created_at_and_bumps_updated_at(store: Store) -> None:
    task = store.create(Task(id="t-1", title="x"))
    created, updated = task.created_at, task.updated_at
    task.status = "done"
    task.created_at = 0
    store.update(task)
    got = store.get(Task, "t-1")
    assert got is not None
    assert got.status == "done"
    assert got.created_at == created
    assert got.updated_at > updated


def test_update_of_a_missing_record_is_refused_without_writing(store: Store) -> None:
    store.create(Task(id="t-1"))
    before = snapshot(store.path)
    with pytest.raises(NotFoundError, match="tasks/nope not found"):
        store.update(Task(id="nope"))
    assert snapshot(store.path) == before


def test_put_creates_then_replaces(store: Store) -> None:
    store.put(Task(id="t-1", title="a"))
    store.put(Task(id="t-1", title="b"))
    assert [t.title for t in store.list(Task)] == ["b"]


def test_put_with_empty_id_generates_one(store: Store) -> None:
    note = store.put(Note(text="x"))
    assert note.id.startswith("note-")
    assert store.get(Note, note.id) == note


def test_delete_and_get_of_a_deleted_record(store: Store) -> None:
    store.create(Task(id="t-1"))
    assert store.delete(Task, "t-1") is True
    assert store.get(Task, "t-1") is None
    assert store.delete(Task, "t-1") is False
    assert store.list(Task) == []
    assert store.count(Task) == 0


def test_create_after_delete_is_allowed(store: Store) -> None:
    store.create(Task(id="t-1", title="old"))
    store.delete(Task, "t-1")
    store.create(Task(id="t-1", title="new"))
    assert store.get(Task, "t-1").title == "new"  # type: ignore[union-attr]


def test_typed_list_count_with_filters_and_sort(store: Store) -> None:
    for i, status in enumerate(["open", "done", "open", "open"]):
        store.create(Task(id=f"t-{i}", status=status, priority=i))
    found = store.list(Task, [Filter("status", Op.EQ, "open")], sort="-priority")
    assert [t.id for t in found] == ["t-3", "t-2", "t-0"]
    assert all(isinstance(t, Task) for t in found)
    assert store.count(Task, [Filter("status", Op.EQ, "open")]) == 3
    assert store.count(Task) == 4


def test_unknown_fields_survive_a_typed_round_trip(store: Store) -> None:
    # Written by another tool or a newer release: fields the class does not declare.
    store.collection("tasks").put(
        {"id": "t-1", "title": "x", "estimate": {"hours": 3}, "labels": ["a"], "rust_only": None}
    )
    task = store.get(Task, "t-1")
    assert task is not None
    assert task.extra_fields == {"estimate": {"hours": 3}, "labels": ["a"], "rust_only": None}
    task.status = "done"
    store.update(task)
    latest = records_in_file(store.file_path("tasks"))[-1]
    assert latest["status"] == "done"
    assert latest["estimate"] == {"hours": 3}
    assert latest["labels"] == ["a"]
    assert "rust_only" in latest and latest["rust_only"] is None
    assert "extra_fields" not in latest


def test_typed_records_declare_their_indexes(store: Store) -> None:
    store.create(Task(id="t-1", status="open"))
    assert store.engine.cache.indexed_fields("tasks") == {"status", "priority"}
    plan = query_plan(store, lambda: store.list(Task, [Filter("priority", Op.EQ, 0)]))
    assert "ix_tasks__priority" in plan


def test_a_record_class_without_collection_name_is_refused(store: Store) -> None:
    @dataclass
    class Nameless(Record):
        text: str = ""

    before = snapshot(store.path)
    with pytest.raises(ValidationError, match="no collection_name"):
        store.create(Nameless(text="x"))
    assert snapshot(store.path) == before
    assert store.collections() == []


# --- dict API ---------------------------------------------------------------------------


def test_put_returns_the_written_record_with_timestamps(tasks: Collection) -> None:
    out = tasks.put({"id": "a", "title": "x"})
    assert out["id"] == "a" and out["title"] == "x"
    assert out["created_at"] == out["updated_at"] > 0
    assert tasks.get("a") == out


def test_put_does_not_change_the_callers_dict(tasks: Collection) -> None:
    record = {"id": "a", "title": "x"}
    tasks.put(record)
    assert record == {"id": "a", "title": "x"}


def test_put_replaces_the_whole_record(tasks: Collection) -> None:
    tasks.put({"id": "a", "title": "x", "status": "open"})
    tasks.put({"id": "a", "title": "y"})
    got = tasks.get("a")
    assert got is not None
    assert got["title"] == "y" and "status" not in got


def test_put_merge_updates_only_the_given_fields(tasks: Collection) -> None:
    first = tasks.put({"id": "a", "title": "x", "status": "open"})
    tasks.put({"id": "a", "status": "done"}, merge=True)
    got = tasks.get("a")
    assert got is not None
    assert (got["title"], got["status"]) == ("x", "done")
    assert got["created_at"] == first["created_at"]
    assert got["updated_at"] > first["updated_at"]


def test_put_merge_of_a_new_id_creates_it(tasks: Collection) -> None:
    tasks.put({"id": "a", "status": "done"}, merge=True)
    assert tasks.get("a")["status"] == "done"  # type: ignore[index]


def test_dict_create_of_an_existing_id_is_refused_without_writing(
    store: Store, tasks: Collection
) -> None:
    tasks.create({"id": "a", "v": 1})
    before = snapshot(store.path)
    with pytest.raises(AlreadyExistsError):
        tasks.create({"id": "a", "v": 2})
    assert snapshot(store.path) == before


def test_dict_update_of_a_missing_or_deleted_id_is_refused_without_writing(
    store: Store, tasks: Collection
) -> None:
    tasks.put({"id": "gone"})
    tasks.delete("gone")
    before = snapshot(store.path)
    for rid in ("missing", "gone"):
        with pytest.raises(NotFoundError):
            tasks.update({"id": rid, "v": 1})
    assert snapshot(store.path) == before


def test_dict_update_replaces_a_live_record(tasks: Collection) -> None:
    tasks.put({"id": "a", "v": 1})
    tasks.update({"id": "a", "v": 2})
    assert tasks.get("a")["v"] == 2  # type: ignore[index]


def test_delete_appends_a_tombstone_and_is_false_the_second_time(
    store: Store, tasks: Collection
) -> None:
    tasks.put({"id": "a"})
    assert tasks.delete("a") is True
    stone = records_in_file(store.file_path("tasks"))[-1]
    assert stone["id"] == "a" and stone["deleted"] is True
    before = snapshot(store.path)
    assert tasks.delete("a") is False
    assert tasks.delete("never-existed") is False
    assert snapshot(store.path) == before
    assert tasks.get("a") is None


def test_put_many_writes_all_records_in_one_append(store: Store, tasks: Collection) -> None:
    out = tasks.put_many([{"id": "a", "v": 1}, {"id": "b", "v": 1}, {"id": "a", "v": 2}])
    assert [r["v"] for r in out] == [1, 1, 2]
    assert out[2]["updated_at"] > out[0]["updated_at"]
    assert tasks.get("a")["v"] == 2  # type: ignore[index]
    assert len(file_lines(store.file_path("tasks"))) == 3


@pytest.mark.parametrize(
    "record",
    [
        {"title": "no id"},
        {"id": ""},
        {"id": "   "},
        {"id": 5},
        {"id": "x" * 257},
        {"id": "\u20ac" * 86},
        ["id", "a"],
        {"id": "a", "bad": {1, 2}},
        {"id": "a", "bad": object()},
    ],
)
def test_invalid_records_are_refused_without_writing(
    store: Store, tasks: Collection, record: Any
) -> None:
    tasks.put({"id": "existing"})
    before = snapshot(store.path)
    with pytest.raises(ValidationError):
        tasks.put(record)
    assert snapshot(store.path) == before


def test_one_invalid_record_in_a_batch_writes_none_of_it(store: Store, tasks: Collection) -> None:
    tasks.put({"id": "existing"})
    before = snapshot(store.path)
    with pytest.raises(ValidationError, match="record 2"):
        tasks.put_many([{"id": "a"}, {"id": ""}, {"id": "c"}])
    with pytest.raises(ValidationError):
        tasks.put_many([{"id": "a"}, {"id": "b", "bad": {1}}])
    assert snapshot(store.path) == before


@pytest.mark.parametrize("name", ["", "a b", "../x", "x" * 65, "tasks.jsonl", "t/u"])
def test_invalid_collection_names_are_refused_without_writing(store: Store, name: str) -> None:
    store.collection("tasks").put({"id": "a"})
    before = snapshot(store.path)
    with pytest.raises(ValidationError, match="collection name"):
        store.collection(name).put({"id": "b"})
    assert snapshot(store.path) == before
    assert store.collections() == ["tasks"]


@pytest.mark.parametrize("record_id", ["", "  ", "x" * 257])
def test_get_and_delete_with_an_invalid_id_are_refused(
    store: Store, tasks: Collection, record_id: str
) -> None:
    tasks.put({"id": "a"})
    before = snapshot(store.path)
    with pytest.raises(ValidationError):
        tasks.get(record_id)
    with pytest.raises(ValidationError):
        tasks.delete(record_id)
    assert snapshot(store.path) == before


def test_ensure_index_refuses_a_bad_field_name(store: Store, tasks: Collection) -> None:
    tasks.put({"id": "a"})
    before = snapshot(store.path)
    with pytest.raises(ValidationError, match="field name"):
        tasks.ensure_index("a.b")
    assert snapshot(store.path) == before


# --- filters, sort, limit ---------------------------------------------------------------

ROWS: list[dict[str, Any]] = [
    {
        "id": "r1",
        "title": "Fix Login bug",
        "status": "open",
        "priority": 3,
        "score": 1.5,
        "done": False,
        "owner": "ann",
        "tags": ["backend", "auth"],
    },
    {
        "id": "r2",
        "title": "Add OAuth",
        "status": "done",
        "priority": 1,
        "score": 2.25,
        "done": True,
        "owner": None,
        "tags": ["auth"],
    },
    {
        "id": "r3",
        "title": "Write docs",
        "status": "open",
        "priority": 2,
        "score": 0.5,
        "done": False,
        "tags": [],
    },
    {
        "id": "r4",
        "title": "100% coverage",
        "status": "blocked",
        "priority": 5,
        "score": -1.0,
        "done": False,
        "owner": "bob",
        "tags": ["tests"],
    },
    {
        "id": "r5",
        "title": "login_page",
        "status": "open",
        "priority": 4,
        "score": 3.0,
        "done": True,
        "owner": "ann",
    },
]
ROW_FIELDS = ("title", "status", "priority", "score", "done", "owner", "tags")


@pytest.fixture(params=["indexed", "not-indexed"])
def rows(request: pytest.FixtureRequest, store: Store) -> Collection:
    coll = store.collection("rows")
    if request.param == "indexed":
        coll.ensure_index(*ROW_FIELDS)
    coll.put_many(ROWS)
    # A deleted record must never match anything.
    coll.put({"id": "r6", "status": "open", "priority": 3, "owner": "ann", "tags": ["auth"]})
    coll.delete("r6")
    return coll


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([Filter("status", Op.EQ, "open")], ["r1", "r3", "r5"]),
        ([Filter("priority", Op.EQ, 3)], ["r1"]),
        ([Filter("score", Op.EQ, 2.25)], ["r2"]),
        ([Filter("score", Op.EQ, 3)], ["r5"]),
        ([Filter("done", Op.EQ, True)], ["r2", "r5"]),
        ([Filter("done", Op.EQ, False)], ["r1", "r3", "r4"]),
        ([Filter("owner", Op.EQ, None)], ["r2", "r3"]),
        ([Filter("id", Op.EQ, "r2")], ["r2"]),
        ([Filter("status", Op.NE, "open")], ["r2", "r4"]),
        ([Filter("owner", Op.NE, "ann")], ["r2", "r3", "r4"]),
        ([Filter("owner", Op.NE, None)], ["r1", "r4", "r5"]),
        ([Filter("done", Op.NE, True)], ["r1", "r3", "r4"]),
        ([Filter("priority", Op.GT, 3)], ["r4", "r5"]),
        ([Filter("priority", Op.GTE, 3)], ["r1", "r4", "r5"]),
        ([Filter("priority", Op.LT, 2)], ["r2"]),
        ([Filter("priority", Op.LTE, 2)], ["r2", "r3"]),
        ([Filter("score", Op.GT, 1.5)], ["r2", "r5"]),
        ([Filter("score", Op.LT, 0)], ["r4"]),
        ([Filter("score", Op.LTE, 0.5)], ["r3", "r4"]),
        ([Filter("title", Op.GT, "M")], ["r3", "r5"]),
        ([Filter("title", Op.LT, "B")], ["r2", "r4"]),
        ([Filter("id", Op.GTE, "r4")], ["r4", "r5"]),
        ([Filter("title", Op.CONTAINS, "login")], ["r1", "r5"]),
        ([Filter("title", Op.CONTAINS, "LOGIN")], ["r1", "r5"]),
        ([Filter("title", Op.CONTAINS, "%")], ["r4"]),
        ([Filter("title", Op.CONTAINS, "_")], ["r5"]),
        ([Filter("title", Op.CONTAINS, "n_p")], ["r5"]),
        ([Filter("id", Op.CONTAINS, "3")], ["r3"]),
        ([Filter("tags", Op.CONTAINS, "auth")], ["r1", "r2"]),
        ([Filter("tags", Op.CONTAINS, "tests")], ["r4"]),
        ([Filter("tags", Op.CONTAINS, "aut")], []),
        ([Filter("status", Op.IN, ["done", "blocked"])], ["r2", "r4"]),
        ([Filter("owner", Op.IN, ["bob", None])], ["r2", "r3", "r4"]),
        ([Filter("owner", Op.IN, [None])], ["r2", "r3"]),
        ([Filter("priority", Op.IN, (1, 5))], ["r2", "r4"]),
        ([Filter("score", Op.IN, [0.5, 3.0])], ["r3", "r5"]),
        ([Filter("done", Op.IN, [True])], ["r2", "r5"]),
        ([Filter("status", Op.IN, [])], []),
        ([Filter("id", Op.IN, ["r1", "r6", "zz"])], ["r1"]),
        ([Filter("missing_field", Op.EQ, None)], ["r1", "r2", "r3", "r4", "r5"]),
        ([Filter("missing_field", Op.EQ, "x")], []),
        (
            [Filter("status", Op.EQ, "open"), Filter("priority", Op.GTE, 3)],
            ["r1", "r5"],
        ),
        (
            [
                Filter("status", Op.EQ, "open"),
                Filter("owner", Op.EQ, "ann"),
                Filter("title", Op.CONTAINS, "bug"),
            ],
            ["r1"],
        ),
        ([Filter("status", Op.EQ, "open"), Filter("status", Op.EQ, "done")], []),
    ],
    ids=repr,
)
def test_filters(rows: Collection, filters: list[Filter], expected: list[str]) -> None:
    assert ids(rows.list(filters)) == expected
    assert rows.count(filters) == len(expected)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("priority", ["r2", "r3", "r1", "r5", "r4"]),
        ("-priority", ["r4", "r5", "r1", "r3", "r2"]),
        ("score", ["r4", "r3", "r1", "r2", "r5"]),
        ("-score", ["r5", "r2", "r1", "r3", "r4"]),
        ("title", ["r4", "r2", "r1", "r3", "r5"]),
        # Ties keep the store's order.
        ("status", ["r4", "r2", "r1", "r3", "r5"]),
        ("-status", ["r1", "r3", "r5", "r2", "r4"]),
        ("id", ["r1", "r2", "r3", "r4", "r5"]),
        ("-id", ["r5", "r4", "r3", "r2", "r1"]),
    ],
)
def test_sort(rows: Collection, sort: str, expected: list[str]) -> None:
    assert ids(rows.list(sort=sort)) == expected


def test_limit_and_offset(rows: Collection) -> None:
    assert ids(rows.list(sort="priority", limit=2)) == ["r2", "r3"]
    assert ids(rows.list(sort="priority", limit=2, offset=2)) == ["r1", "r5"]
    assert ids(rows.list(sort="priority", offset=4)) == ["r4"]
    assert ids(rows.list(sort="priority", offset=9)) == []
    assert rows.list(limit=0) == []
    assert ids(rows.list([Filter("status", Op.EQ, "open")], sort="-priority", limit=1)) == ["r5"]


def test_negative_limit_is_refused(store: Store, rows: Collection) -> None:
    before = snapshot(store.path)
    with pytest.raises(ValidationError, match="limit"):
        rows.list(limit=-1)
    assert snapshot(store.path) == before


@pytest.mark.parametrize(
    "make",
    [
        lambda: Filter("a.b", Op.EQ, 1),
        lambda: Filter("x", Op.IN, "ab"),
        lambda: Filter("x", Op.IN, [[1]]),  # type: ignore[list-item]
        lambda: Filter("x", Op.EQ, {"a": 1}),  # type: ignore[arg-type]
        lambda: Filter("x", Op.GT, None),
        lambda: Filter("x", Op.CONTAINS, None),
        lambda: Filter("x", "=", 1),  # type: ignore[arg-type]
    ],
)
def test_invalid_filters_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValidationError):
        make()


def test_sort_by_an_invalid_field_is_refused(store: Store, rows: Collection) -> None:
    before = snapshot(store.path)
    with pytest.raises(ValidationError, match="field name"):
        rows.list(sort="-a b")
    assert snapshot(store.path) == before


def test_list_of_a_collection_that_does_not_exist_is_empty(store: Store) -> None:
    assert store.collection("nothing").list() == []
    assert store.collection("nothing").count() == 0
    assert store.collection("nothing").get("a") is None
    assert store.collections() == []


# --- indexes ----------------------------------------------------------------------------


def test_an_indexed_field_query_uses_the_index(store: Store, tasks: Collection) -> None:
    tasks.ensure_index("status")
    tasks.put_many([{"id": f"t{i}", "status": "open" if i % 3 else "done"} for i in range(30)])
    plan = query_plan(store, lambda: tasks.list([Filter("status", Op.EQ, "done")]))
    assert "ix_tasks__status" in plan
    assert len(tasks.list([Filter("status", Op.EQ, "done")])) == 10
    plan = query_plan(store, lambda: tasks.list([Filter("status", Op.IN, ["done", "x"])]))
    assert "ix_tasks__status" in plan
    assert tasks.count([Filter("status", Op.IN, ["done", "x"])]) == 10


def test_a_non_indexed_field_query_scans_and_still_filters(store: Store, tasks: Collection) -> None:
    tasks.ensure_index("status")
    tasks.put_many([{"id": f"t{i}", "status": "open", "size": i} for i in range(30)])
    plan = query_plan(store, lambda: tasks.list([Filter("size", Op.LT, 3)]))
    assert "ix_tasks__" not in plan
    assert ids(tasks.list([Filter("size", Op.LT, 3)])) == ["t0", "t1", "t2"]


def test_indexes_are_back_at_once_after_a_rebuild_from_a_rewritten_file(
    store: Store, tasks: Collection
) -> None:
    tasks.ensure_index("status")
    tasks.put({"id": "a", "status": "open"})
    atomic_write(
        store.file_path("tasks"),
        b'{"id":"b","status":"open","updated_at":1}\n{"id":"c","status":"done","updated_at":1}\n',
    )
    plan = query_plan(store, lambda: tasks.list([Filter("status", Op.EQ, "open")]))
    assert "ix_tasks__status" in plan
    assert ids(tasks.list([Filter("status", Op.EQ, "open")])) == ["b"]


def test_an_index_declared_on_existing_data_filters_at_once(
    store: Store, tasks: Collection
) -> None:
    tasks.put_many([{"id": "a", "status": "open"}, {"id": "b", "status": "done"}])
    tasks.ensure_index("status")
    plan = query_plan(store, lambda: tasks.list([Filter("status", Op.EQ, "done")]))
    assert "ix_tasks__status" in plan
    assert ids(tasks.list([Filter("status", Op.EQ, "done")])) == ["b"]


def test_rebuild_indexes_rebuilds_the_declared_ones(store: Store) -> None:
    store.create(Task(id="t-1", status="open", priority=1))
    assert store.rebuild_indexes(Task) == 2
    assert store.count(Task, [Filter("priority", Op.EQ, 1)]) == 1


# --- updated_at only moves forward ------------------------------------------------------

FAR_FUTURE = 4_102_444_800_000  # 2100-01-01


def test_update_bumps_updated_at_above_a_future_version(store: Store, tasks: Collection) -> None:
    path = store.file_path("tasks")
    append_raw(
        path, orjson.dumps({"id": "a", "v": 1, "created_at": 5, "updated_at": FAR_FUTURE}) + b"\n"
    )
    out = tasks.update({"id": "a", "v": 2})
    assert out["updated_at"] == FAR_FUTURE + 1
    assert out["created_at"] == 5
    assert records_in_file(path)[-1]["updated_at"] == FAR_FUTURE + 1
    assert tasks.get("a")["v"] == 2  # type: ignore[index]


def test_put_merge_and_delete_bump_above_a_future_version(store: Store, tasks: Collection) -> None:
    path = store.file_path("tasks")
    append_raw(path, orjson.dumps({"id": "a", "v": 1, "updated_at": FAR_FUTURE}) + b"\n")
    assert tasks.put({"id": "a", "v": 2}, merge=True)["updated_at"] == FAR_FUTURE + 1
    assert tasks.put({"id": "a", "v": 3})["updated_at"] == FAR_FUTURE + 2
    assert tasks.delete("a") is True
    assert records_in_file(path)[-1] == {"id": "a", "deleted": True, "updated_at": FAR_FUTURE + 3}
    assert tasks.get("a") is None


def test_a_stale_updated_at_given_by_the_caller_is_replaced(tasks: Collection) -> None:
    first = tasks.put({"id": "a", "v": 1})
    out = tasks.put({"id": "a", "v": 2, "updated_at": 1})
    assert out["updated_at"] > first["updated_at"]
    assert tasks.get("a")["v"] == 2  # type: ignore[index]


def test_typed_update_bumps_above_a_future_version(store: Store) -> None:
    append_raw(
        store.file_path("tasks"),
        orjson.dumps({"id": "t-1", "title": "x", "updated_at": FAR_FUTURE}) + b"\n",
    )
    task = store.get(Task, "t-1")
    assert task is not None
    task.title = "y"
    store.update(task)
    assert task.updated_at == FAR_FUTURE + 1
    assert store.get(Task, "t-1").title == "y"  # type: ignore[union-attr]


# --- reads see the files as they are now ------------------------------------------------


def test_is_stale_and_sync(store: Store, tasks: Collection) -> None:
    tasks.put({"id": "a"})
    assert store.is_stale() is False
    append_raw(store.file_path("tasks"), b'{"id":"b","updated_at":1}\n')
    assert store.is_stale() is True
    results = store.sync()
    assert [(r.collection, r.action) for r in results] == [("tasks", "caught-up")]
    assert store.is_stale() is False
    assert [(r.collection, r.action) for r in store.sync()] == [("tasks", "fresh")]
    assert [r.action for r in store.sync(full=True)] == ["rebuilt"]
    assert sorted(ids(tasks.list())) == ["a", "b"]


def test_is_stale_sees_new_and_deleted_files(store: Store, tasks: Collection) -> None:
    tasks.put({"id": "a"})
    store.sync()
    (Path(store.path) / "notes.jsonl").write_bytes(b'{"id":"n"}\n')
    assert store.is_stale() is True
    store.sync()
    assert store.is_stale() is False
    os.unlink(store.file_path("tasks"))
    assert store.is_stale() is True
    results = {r.collection: r.action for r in store.sync()}
    assert results == {"notes": "fresh", "tasks": "dropped"}
    assert store.is_stale() is False


def test_an_append_by_another_process_is_seen_by_the_next_read(
    store: Store, tasks: Collection
) -> None:
    tasks.ensure_index("status")
    tasks.put({"id": "a", "status": "open"})
    assert tasks.count([Filter("status", Op.EQ, "open")]) == 1
    run_python(
        "import sys\n"
        "with open(sys.argv[1], 'ab') as f:\n"
        '    f.write(b\'{"id":"b","status":"open","updated_at":1}\\n\')\n',
        store.file_path("tasks"),
    )
    assert ids(tasks.list([Filter("status", Op.EQ, "open")])) == ["a", "b"]
    assert tasks.get("b") is not None


def test_a_line_completed_by_a_later_append_is_read_whole(store: Store, tasks: Collection) -> None:
    tasks.put({"id": "a"})
    append_raw(store.file_path("tasks"), b'{"id":"b","ti')
    assert ids(tasks.list()) == ["a"]  # the fragment is a bad line for now
    append_raw(store.file_path("tasks"), b'tle":"x","updated_at":1}\n')
    assert tasks.get("b") == {"id": "b", "title": "x", "updated_at": 1}
    assert store.check() == []


def test_a_same_size_rewrite_within_one_mtime_tick_is_seen(store: Store, tasks: Collection) -> None:
    # A file written by someone else (git) and read at once is inside its racy window: a
    # rewrite within the same mtime tick keeps its stat, and only its content tells.
    tasks.ensure_index("status")
    path = Path(store.file_path("tasks"))
    path.write_bytes(b'{"id":"a","status":"open","updated_at":1}\n')
    assert tasks.get("a")["status"] == "open"  # type: ignore[index]
    rewrite_in_place_keeping_stat(str(path), b'"open"', b'"done"')
    assert store.is_stale() is True
    assert tasks.get("a")["status"] == "done"  # type: ignore[index]
    assert tasks.list([Filter("status", Op.EQ, "open")]) == []
    assert ids(tasks.list([Filter("status", Op.EQ, "done")])) == ["a"]


def test_a_same_size_rewrite_is_seen_by_a_store_opened_later(tmp_path: Path) -> None:
    with Store.open(tmp_path) as first:
        path = first.file_path("tasks")
        Path(path).write_bytes(b'{"id":"a","status":"open","updated_at":1}\n')
        first.collection("tasks").get("a")
    rewrite_in_place_keeping_stat(path, b'"open"', b'"done"')
    with Store.open(tmp_path) as second:
        assert second.collection("tasks").get("a")["status"] == "done"  # type: ignore[index]


def test_our_own_appends_leave_the_file_outside_its_racy_window(
    store: Store, tasks: Collection
) -> None:
    # After each of our appends the mtime is set back past the window, so the next read
    # trusts the stat instead of hashing the whole file (30 ms a write on a 30 MB store)...
    tasks.put({"id": "a", "status": "open"})
    path = store.file_path("tasks")
    state = store.engine.cache.file_state("tasks")
    assert state is not None and not state.is_racy()
    assert state.mtime_ns == os.stat(path).st_mtime_ns < time.time_ns() - 20_000_000
    # ...and any write after it, even in place and of the same size, stamps a new mtime.
    data = Path(path).read_bytes()
    with open(path, "r+b") as handle:
        handle.write(data.replace(b'"open"', b'"done"'))
    assert store.is_stale() is True
    assert tasks.get("a")["status"] == "done"  # type: ignore[index]


def test_a_file_found_fresh_is_read_again_once_anyone_changes_it(
    store: Store, tasks: Collection
) -> None:
    # Once a file has been found fresh, every later change must still show: in place,
    # appended by another tool, written by another connection, deleted.
    tasks.put({"id": "a", "status": "open"})
    assert tasks.get("a")["status"] == "open"  # type: ignore[index]
    path = store.file_path("tasks")
    data = Path(path).read_bytes()
    with open(path, "r+b") as handle:  # in place, the same size
        handle.write(data.replace(b'"open"', b'"done"'))
    assert tasks.get("a")["status"] == "done"  # type: ignore[index]
    append_raw(path, b'{"id":"b","updated_at":1}\n')  # another tool appends
    assert tasks.get("b") == {"id": "b", "updated_at": 1}
    with Store.open_dir(store.path) as other:  # another writer, another connection
        other.collection("tasks").put({"id": "c"})
    assert ids(tasks.list()) == ["a", "b", "c"]
    os.unlink(path)
    assert tasks.get("a") is None and tasks.list() == []


@pytest.mark.parametrize("debounce_ms", [0, 600_000], ids=["default", "debounced"])
def test_a_cache_recreated_by_another_release_is_rebuilt_under_an_unchanged_file(
    tmp_path: Path, debounce_ms: int
) -> None:
    # Another release (or the Rust crate) opening the cache with another schema drops
    # every table; the file did not change, and the store must still find it stale.
    store = Store.open(tmp_path, debounce_ms=debounce_ms)
    tasks = store.collection("tasks")
    tasks.put({"id": "x", "title": "keep", "created_at": 5})
    store.flush()
    assert tasks.get("x") is not None and tasks.count() == 1
    db = os.path.join(store.path, "taskstore.db")
    run_python(
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
        " c.execute('PRAGMA user_version = 4'); c.close();"
        " from git_taskstore.cache import Cache; Cache(sys.argv[1]).close()",
        db,
    )
    assert tasks.count() == 1 and tasks.get("x")["title"] == "keep"  # type: ignore[index]
    with pytest.raises(AlreadyExistsError):
        tasks.create({"id": "x"})
    assert tasks.update({"id": "x", "title": "new"})["created_at"] == 5
    store.close()


def test_a_new_file_is_a_new_collection(store: Store) -> None:
    store.collection("tasks").put({"id": "a"})
    (Path(store.path) / "notes.jsonl").write_bytes(b'{"id":"n1","text":"hi","updated_at":1}\n')
    assert store.collections() == ["notes", "tasks"]
    assert store.collection("notes").get("n1") == {"id": "n1", "text": "hi", "updated_at": 1}


def test_a_deleted_file_empties_its_collection(store: Store, tasks: Collection) -> None:
    tasks.ensure_index("status")
    tasks.put_many([{"id": "a", "status": "open"}, {"id": "b", "status": "open"}])
    store.collection("notes").put({"id": "n"})
    os.unlink(store.file_path("tasks"))
    assert store.collections() == ["notes"]
    assert tasks.list() == []
    assert tasks.list([Filter("status", Op.EQ, "open")]) == []
    assert tasks.count() == 0
    assert tasks.get("a") is None
    assert ids(store.collection("notes").list()) == ["n"]


def test_a_grown_file_is_caught_up_and_a_rewritten_one_rebuilt(
    store: Store, tasks: Collection
) -> None:
    path = store.file_path("tasks")
    tasks.put({"id": "a", "v": 1})
    assert sync_action(store, "tasks") == "fresh"
    append_raw(path, b'{"id":"b","v":1,"updated_at":1}\n')
    assert sync_action(store, "tasks") == "caught-up"
    assert sorted(ids(tasks.list())) == ["a", "b"]

    atomic_write(path, b'{"id":"c","v":1,"updated_at":1}\n')
    assert sync_action(store, "tasks") == "rebuilt"
    assert ids(tasks.list()) == ["c"]

    rewrite_in_place_keeping_stat(path, b'"v":1', b'"v":2')
    assert sync_action(store, "tasks") == "rebuilt"
    assert tasks.get("c")["v"] == 2  # type: ignore[index]

    Path(path).write_bytes(b'{"id":"d"}\n')  # truncated and rewritten, same inode
    assert sync_action(store, "tasks") == "rebuilt"
    assert ids(tasks.list()) == ["d"]


def test_catch_up_applies_the_current_version_rule(store: Store, tasks: Collection) -> None:
    tasks.put({"id": "a", "v": "live"})
    current = tasks.get("a")
    assert current is not None
    # An older version appended later must not win; a tombstone with a newer one must.
    append_raw(
        store.file_path("tasks"),
        orjson.dumps({"id": "a", "v": "older", "updated_at": current["updated_at"] - 1}) + b"\n",
    )
    assert tasks.get("a")["v"] == "live"  # type: ignore[index]
    append_raw(
        store.file_path("tasks"),
        orjson.dumps({"id": "a", "deleted": True, "updated_at": current["updated_at"] + 1}) + b"\n",
    )
    assert tasks.get("a") is None


def test_a_write_after_a_torn_last_line_keeps_both_apart(store: Store, tasks: Collection) -> None:
    tasks.put({"id": "a"})
    tasks.list()
    append_raw(store.file_path("tasks"), b'{"id":"b","ti')
    tasks.put({"id": "c"})
    raw = Path(store.file_path("tasks")).read_bytes().split(b"\n")
    assert raw[1] == b'{"id":"b","ti'
    assert parse_line(raw[2])["id"] == "c"  # type: ignore[index]
    assert sorted(ids(tasks.list())) == ["a", "c"]
    assert [(p.line, "not valid JSON" in p.message) for p in store.check()] == [(2, True)]
    with Store.open_dir(store.path) as fresh:
        assert sorted(ids(fresh.collection("tasks").list())) == ["a", "c"]


def test_bad_lines_are_skipped_with_a_warning_naming_file_and_line(
    store: Store, tasks: Collection, caplog: pytest.LogCaptureFixture
) -> None:
    tasks.put({"id": "a"})
    append_raw(store.file_path("tasks"), b"not json\n")
    with caplog.at_level(logging.WARNING, logger="git_taskstore"):
        assert ids(tasks.list()) == ["a"]
    assert any("tasks.jsonl:2" in m and "not valid JSON" in m for m in caplog.messages)
    assert b"not json" in Path(store.file_path("tasks")).read_bytes()


# --- compaction -------------------------------------------------------------------------


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


def test_compact_keeps_one_line_per_id_tombstones_and_bad_lines(store: Store) -> None:
    make_history(store)
    path = store.file_path("tasks")
    state_before = store.export_data()
    assert ids(state_before["tasks"]) == ["a", "c"]  # the order ids first appeared in
    results = {r.collection: r for r in store.compact()}
    assert (results["tasks"].lines_before, results["tasks"].lines_after) == (7, 4)
    assert results["tasks"].bad_lines_kept == 1
    assert (results["notes"].lines_before, results["notes"].lines_after) == (1, 1)
    lines = file_lines(path)
    assert lines[2] == b"{broken"  # a bad line stays between the records it was between
    kept = [orjson.loads(raw) for raw in lines[:2] + lines[3:]]
    assert [(r["id"], r.get("v"), r.get("deleted")) for r in kept] == [
        ("a", 3, None),
        ("b", None, True),
        ("c", 1, None),
    ]
    assert store.export_data() == state_before  # the same records, in the same order
    assert store.collection("tasks").get("b") is None
    assert [p.line for p in store.check()] == [3]


def test_compact_leaves_the_same_state_for_a_fresh_store(store: Store) -> None:
    make_history(store)
    before = store.export_data()
    store.compact("tasks")
    with Store.open_dir(store.path) as fresh:
        assert fresh.export_data() == before
    # A second compaction has nothing to do.
    data = Path(store.file_path("tasks")).read_bytes()
    store.compact()
    assert Path(store.file_path("tasks")).read_bytes() == data


def test_compact_replaces_the_file_atomically(store: Store) -> None:
    make_history(store)
    path = store.file_path("tasks")
    old = Path(path).read_bytes()
    inode = os.stat(path).st_ino
    with open(path, "rb") as reader:
        store.compact("tasks")
        assert reader.read() == old  # the old file was never written to
    assert os.stat(path).st_ino != inode
    leftovers = [n for n in os.listdir(store.path) if n.endswith(".tmp")]
    assert leftovers == []
    # The cache followed the rename: a write appends and a fresh read sees everything.
    store.collection("tasks").put({"id": "d"})
    assert sorted(ids(store.collection("tasks").list())) == ["a", "c", "d"]


def test_compact_refuses_conflict_markers_and_unknown_collections(store: Store) -> None:
    make_history(store)
    append_raw(store.file_path("tasks"), b"<<<<<<< HEAD\n=======\n>>>>>>> other\n")
    before = snapshot(store.path)
    with pytest.raises(ConflictMarkersError):
        store.compact("tasks")
    with pytest.raises(NotFoundError):
        store.compact("nope")
    with pytest.raises(ValidationError):
        store.compact("../x")
    assert snapshot(store.path) == before


# --- check ------------------------------------------------------------------------------


def test_check_of_a_healthy_store_is_empty(store: Store) -> None:
    make_history(store)
    store.compact()
    Path(store.file_path("tasks")).write_bytes(
        b"".join(raw + b"\n" for raw in file_lines(store.file_path("tasks")) if raw != b"{broken")
    )
    assert store.check() == []


def test_a_quick_check_trusts_only_files_the_cache_found_clean_and_unchanged_ones(
    store: Store, tasks: Collection
) -> None:
    # The pre-push hook's check: a file read whole without a bad line and unchanged since
    # is not read again; anything else is, and is reported as the full check reports it.
    prds = store.collection("prds")
    prds.put({"id": "a", "title": "A", "file": "prds/a.md"})
    tasks.put_many([{"id": "a", "file": "src/main.py"}, {"id": "b"}])  # not a body: the user's
    Path(store.path, "prds").mkdir()
    Path(store.path, "prds", "a.md").write_text("# a\n")
    tasks.get("a")
    assert store.check(quick=True) == [] == store.check()
    path = store.file_path("tasks")
    append_raw(path, b'{"id": \n')  # another tool appends a bad line...
    a_minute_ago = time.time_ns() - 60 * 10**9
    os.utime(path, ns=(a_minute_ago, a_minute_ago))  # ...long enough ago to trust the stat
    assert [p.line for p in store.check(quick=True)] == [3]
    assert tasks.get("a") is not None  # the cache has read it: one bad line, known
    assert [p.line for p in store.check(quick=True)] == [3] == [p.line for p in store.check()]
    Path(store.path, "prds", "a.md").unlink()  # a body file gone: the JSONL unchanged
    assert [p.line for p in store.check(quick=True)] == [3]  # the core knows no bodies
    found = [
        (os.path.basename(p.path), p.line, p.message[:16])
        for p in store.check(quick=True, checks=CHECKS)
    ]
    assert found == [("prds.jsonl", 0, "a: its body file"), ("tasks.jsonl", 3, "not valid JSON (")]


def test_check_reports_bad_lines_and_conflict_markers_with_file_and_line(store: Store) -> None:
    store.collection("notes").put({"id": "n"})
    Path(store.file_path("tasks")).write_bytes(
        b'{"id":"a"}\n'
        b"\n"
        b"[1]\n"  # 3
        b'{"id":""}\n'  # 4
        b"<<<<<<< HEAD\n"  # 5
        b'{"id":"b"}\n'
        b"=======\n"  # 7
        b'{"id":"c"}\n'
        b">>>>>>> branch\n"  # 9
        b'{"id":"\xff"}'  # 10, torn
    )
    (Path(store.path) / "bad name.jsonl").write_bytes(b'{"id":"x"}\n')
    before = snapshot(store.path)
    problems = store.check()
    assert snapshot(store.path) == before
    found = [(os.path.basename(p.path), p.line) for p in problems]
    assert found == [
        ("bad name.jsonl", 0),
        ("tasks.jsonl", 3),
        ("tasks.jsonl", 4),
        ("tasks.jsonl", 5),
        ("tasks.jsonl", 7),
        ("tasks.jsonl", 9),
        ("tasks.jsonl", 10),
    ]
    by_line = {p.line: p for p in problems if p.path.endswith("tasks.jsonl")}
    assert "not a JSON object" in by_line[3].message
    assert "conflict marker" in by_line[5].message
    assert "UTF-8" in by_line[10].message
    assert str(by_line[3]).endswith(f"tasks.jsonl:3: {by_line[3].message}")


# --- conflict markers -------------------------------------------------------------------

CONFLICTED = (
    b'{"id":"a","v":1,"updated_at":1}\n'
    b"<<<<<<< HEAD\n"
    b'{"id":"a","v":2,"updated_at":2}\n'
    b"=======\n"
    b'{"id":"a","v":3,"updated_at":2}\n'
    b">>>>>>> feature\n"
)


def test_conflict_markers_make_reads_of_that_collection_fail(store: Store) -> None:
    store.collection("notes").put({"id": "n"})
    Path(store.file_path("tasks")).write_bytes(CONFLICTED)
    before = snapshot(store.path)
    tasks = store.collection("tasks")
    for read in (tasks.list, tasks.count, lambda: tasks.get("a"), lambda: store.list(Task)):
        with pytest.raises(ConflictMarkersError) as raised:
            read()
        assert raised.value.line == 2
        message = str(raised.value)
        assert "tasks.jsonl:2" in message
        assert "git taskstore resolve" in message
    assert snapshot(store.path) == before
    assert ids(store.collection("notes").list()) == ["n"]
    store.collection("notes").put({"id": "m"})
    assert store.collection("notes").count() == 2


def test_conflict_markers_in_a_file_the_cache_had_read_are_seen(
    store: Store, tasks: Collection
) -> None:
    tasks.put({"id": "a", "v": 1})
    tasks.list()
    append_raw(store.file_path("tasks"), b"<<<<<<< HEAD\n")
    with pytest.raises(ConflictMarkersError, match=r"tasks\.jsonl:2"):
        tasks.list()
    atomic_write(store.file_path("tasks"), CONFLICTED)
    with pytest.raises(ConflictMarkersError, match=r"tasks\.jsonl:2"):
        tasks.get("a")


@pytest.mark.parametrize("after_a_read", [False, True], ids=["first-access", "after-a-read"])
@pytest.mark.parametrize("mtime", ["just-written", "a-minute-old"])
def test_writes_to_a_conflicted_collection_are_refused_without_writing(
    store: Store, after_a_read: bool, mtime: str
) -> None:
    path = Path(store.file_path("tasks"))
    path.write_bytes(CONFLICTED)
    if mtime == "a-minute-old":  # as after a checkout a minute ago: outside the racy window
        old = time.time() - 60
        os.utime(path, (old, old))
    store.collection("notes").put({"id": "n"})
    tasks = store.collection("tasks")
    if after_a_read:  # the cache has recorded the conflict
        with pytest.raises(ConflictMarkersError):
            tasks.list()
    before = snapshot(store.path)
    writes: list[Callable[[], object]] = [
        lambda: tasks.put({"id": "b"}),
        lambda: tasks.put({"id": "a", "v": 9}, merge=True),
        lambda: tasks.create({"id": "c"}),
        lambda: tasks.update({"id": "a"}),
        lambda: tasks.delete("a"),
        lambda: store.put(Task(id="t")),
        lambda: store.import_data({"tasks": [{"id": "z", "updated_at": 5}]}),
    ]
    for write in writes:
        with pytest.raises(ConflictMarkersError, match=r"tasks\.jsonl:2"):
            write()
    assert snapshot(store.path) == before


def test_a_resolved_file_reads_again(store: Store, tasks: Collection) -> None:
    Path(store.file_path("tasks")).write_bytes(CONFLICTED)
    with pytest.raises(ConflictMarkersError):
        tasks.list()
    atomic_write(
        store.file_path("tasks"),
        b'{"id":"a","v":1,"updated_at":1}\n{"id":"a","v":3,"updated_at":2}\n',
    )
    assert tasks.get("a")["v"] == 3  # type: ignore[index]
    tasks.put({"id": "b"})
    assert tasks.count() == 2


def test_sync_reports_a_conflicted_collection_without_raising(store: Store) -> None:
    store.collection("notes").put({"id": "n"})
    Path(store.file_path("tasks")).write_bytes(CONFLICTED)
    actions = {r.collection: r.action for r in store.sync()}
    assert actions == {"notes": "fresh", "tasks": "conflict"}


# --- opening: .version, paths, the cache ------------------------------------------------


def test_a_new_store_gets_version_and_gitignore(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        folder = Path(store.path)
        assert folder == tmp_path / ".taskstore"
        assert (folder / ".version").read_bytes() == b"1"
        ignored = (folder / ".gitignore").read_text().splitlines()
        assert set(UNTRACKED_NAMES) <= set(ignored)


def test_a_store_without_version_but_with_data_is_migrated(tmp_path: Path) -> None:
    folder = tmp_path / ".taskstore"
    folder.mkdir()
    (folder / "tasks.jsonl").write_bytes(b'{"id":"a","v":1,"updated_at":1}\n')
    with Store.open(tmp_path) as store:
        assert (folder / ".version").read_bytes() == b"1"
        assert store.collection("tasks").get("a") == {"id": "a", "v": 1, "updated_at": 1}
    assert (folder / "tasks.jsonl").read_bytes() == b'{"id":"a","v":1,"updated_at":1}\n'


@pytest.mark.parametrize(
    ("version", "match"),
    [
        (b"2", "schema version 2, newer"),
        (b"999", "schema version 999, newer"),
        (b"banana", "should hold a schema version number"),
        (b"", "should hold a schema version number"),
        (b"1.0", "should hold a schema version number"),
        (b"\xff\xfe", "should hold a schema version number"),
        (b"-1", "schema version"),
    ],
)
def test_an_unusable_version_is_refused_without_changing_a_file(
    tmp_path: Path, version: bytes, match: str
) -> None:
    folder = tmp_path / ".taskstore"
    folder.mkdir()
    (folder / ".version").write_bytes(version)
    (folder / "tasks.jsonl").write_bytes(b'{"id":"a"}\n')
    before = snapshot(folder)
    with pytest.raises(StoreVersionError, match=match):
        Store.open(tmp_path)
    assert snapshot(folder) == before
    assert sorted(os.listdir(folder)) == [".version", "tasks.jsonl"]


def test_a_store_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".taskstore").write_bytes(b"not a folder")
    before = snapshot(tmp_path)
    with pytest.raises(StorePathError, match="is a file"):
        Store.open(tmp_path)
    with pytest.raises(StorePathError, match="is a file"):
        Store.open_dir(tmp_path / ".taskstore")
    assert snapshot(tmp_path) == before


def test_opening_a_missing_store_without_create_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorePathError, match="no store"):
        Store.open(tmp_path, create=False)
    assert os.listdir(tmp_path) == []


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


# --- backup, export, import -------------------------------------------------------------


def test_backup_copies_only_tracked_files_into_a_store_with_the_same_state(
    tmp_path: Path, store: Store
) -> None:
    make_history(store)
    (Path(store.path) / "prds").mkdir()
    (Path(store.path) / "prds" / "oauth.md").write_text("# OAuth\n")
    dest = tmp_path / "backup"
    copied = store.backup(dest)
    assert sorted(copied) == sorted(snapshot(store.path))
    assert snapshot(dest) == snapshot(store.path)
    assert not any(name.startswith("taskstore.") for name in os.listdir(dest))
    assert not (tmp_path / "backup.partial").exists()
    with Store.open_dir(dest) as copy:
        assert copy.export_data() == store.export_data()
        assert copy.collection("tasks").get("b") is None
        assert [p.line for p in copy.check()] == [4]


def test_backup_into_an_empty_folder_works(tmp_path: Path, store: Store) -> None:
    store.collection("tasks").put({"id": "a"})
    (tmp_path / "empty").mkdir()
    store.backup(tmp_path / "empty")
    assert (tmp_path / "empty" / "tasks.jsonl").exists()


def test_backup_refuses_a_non_empty_destination(tmp_path: Path, store: Store) -> None:
    store.collection("tasks").put({"id": "a"})
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_bytes(b"mine")
    a_file = tmp_path / "file"
    a_file.write_bytes(b"also mine")
    before_store = snapshot(store.path)
    before_all = snapshot(tmp_path)
    for dest in (full, a_file):
        with pytest.raises(StorePathError, match="not an empty folder"):
            store.backup(dest)
    assert snapshot(store.path) == before_store
    assert snapshot(tmp_path) == before_all


def test_export_then_import_into_a_new_store_round_trips(tmp_path: Path, store: Store) -> None:
    make_history(store)
    data = store.export_data()
    with Store.open_dir(tmp_path / "other") as other:
        result = other.import_data(data)
        assert result.written == 3 and result.skipped == 0
        assert result.collections == {"notes": 1, "tasks": 2}
        assert other.export_data() == data
        again = other.import_data(data)
        assert (again.written, again.skipped) == (0, 3)
        assert other.export_data() == data


def test_import_skips_records_the_store_holds_newer(tasks: Collection, store: Store) -> None:
    current = tasks.put({"id": "a", "v": "mine"})
    old = {"id": "a", "v": "old", "updated_at": current["updated_at"] - 1000}
    new = {"id": "b", "v": "new", "updated_at": 5}
    result = store.import_data({"tasks": [old, new]})
    assert (result.written, result.skipped) == (1, 1)
    assert tasks.get("a")["v"] == "mine"  # type: ignore[index]
    assert tasks.get("b") == new
    newer = {"id": "a", "v": "theirs", "updated_at": current["updated_at"] + 1}
    assert store.import_data({"tasks": [newer]}).written == 1
    assert tasks.get("a") == newer


def test_import_validates_everything_before_writing(store: Store, tasks: Collection) -> None:
    tasks.put({"id": "a"})
    before = snapshot(store.path)
    bad_inputs: list[Any] = [
        {"tasks": [{"id": "b"}], "notes": [{"id": ""}]},
        {"tasks": [{"id": "b"}], "bad name": [{"id": "c"}]},
        {"tasks": {"id": "b"}},
        [{"id": "b"}],
    ]
    for data in bad_inputs:
        with pytest.raises(ValidationError):
            store.import_data(data)
    assert snapshot(store.path) == before


# --- the Rust crate's files -------------------------------------------------------------


@pytest.fixture
def rust_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "rust"
    shutil.copytree(fixture_dir("rust-taskstore"), repo)
    return repo


def test_the_rust_fixture_opens_with_the_state_its_readme_gives(rust_repo: Path) -> None:
    with Store.open(rust_repo) as store:
        assert store.collections() == ["loops", "signals"]
        loops = {r["id"]: r for r in store.collection("loops").list()}
        assert sorted(loops) == ["loop-0001", "loop-0002"]
        assert (loops["loop-0001"]["status"], loops["loop-0001"]["iteration"]) == ("complete", 4)
        assert (loops["loop-0002"]["status"], loops["loop-0002"]["iteration"]) == ("complete", 3)
        assert store.collection("loops").get("loop-0003") is None
        assert store.collection("loops").count([Filter("status", Op.EQ, "complete")]) == 2
        signals = store.collection("signals").list()
        assert ids(signals) == ["sig-01", "sig-02"]
        assert signals[1]["acknowledged_at"] == 1769000011500
        assert store.check() == []
        status = {s.name: (s.records, s.deleted, s.bad_lines) for s in store.status()}
        assert status == {"loops": (2, 1, 0), "signals": (2, 0, 0)}


def test_reading_the_rust_fixture_changes_no_data_and_only_ignores_the_lock(
    rust_repo: Path,
) -> None:
    folder = rust_repo / ".taskstore"
    before = snapshot(rust_repo)
    names_before = set(os.listdir(folder))
    with Store.open(rust_repo) as store:
        store.export_data()
        store.sync()
        store.is_stale()
    after = snapshot(rust_repo)
    # The crate's .gitignore does not list our lock file; it gains that one line, so the
    # lock never shows up in `git status`. Nothing else changes.
    gitignore = ".taskstore/.gitignore"
    assert after.pop(gitignore) == before.pop(gitignore) + b"taskstore.lock\n"
    assert after == before
    assert set(os.listdir(folder)) - names_before <= set(UNTRACKED_NAMES)


def test_a_write_to_the_rust_fixture_appends_one_line(rust_repo: Path) -> None:
    path = rust_repo / ".taskstore" / "loops.jsonl"
    before = path.read_bytes()
    with Store.open(rust_repo) as store:
        store.collection("loops").put({"id": "loop-0002", "status": "failed"}, merge=True)
    after = path.read_bytes()
    assert after.startswith(before)
    added = orjson.loads(after[len(before) :])
    assert added["status"] == "failed" and added["loop_type"] == "spec"
    assert added["created_at"] == 1769000001000


# --- threads ----------------------------------------------------------------------------


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


# --- filters compare values of the same JSON type only ----------------------------------


@pytest.mark.parametrize("indexed", [False, True])
@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        (Filter("v", Op.EQ, True), ["bool"]),
        (Filter("v", Op.EQ, 1), ["int", "float"]),
        (Filter("v", Op.EQ, "1"), ["text1"]),
        (Filter("v", Op.GT, 0), ["int", "float"]),  # text is not greater than a number
        (Filter("v", Op.LT, "z"), ["text1", "open"]),
        (Filter("v", Op.NE, 1), ["bool", "text1", "open", "missing", "null", "list"]),
        (Filter("v", Op.IN, ["open", 1, None]), ["int", "float", "open", "missing", "null"]),
        (Filter("v", Op.IN, [False]), []),
        (Filter("id", Op.IN, ["int", 2, True]), ["int"]),
    ],
)
def test_filters_never_match_across_json_types(
    tasks: Collection, flt: Filter, expected: list[str], indexed: bool
) -> None:
    if indexed:
        tasks.ensure_index("v")
    tasks.put_many(
        [
            {"id": "bool", "v": True},
            {"id": "int", "v": 1},
            {"id": "float", "v": 1.0},
            {"id": "text1", "v": "1"},
            {"id": "open", "v": "open"},
            {"id": "missing"},
            {"id": "null", "v": None},
            {"id": "list", "v": [1]},
        ]
    )
    assert [r["id"] for r in tasks.list([flt])] == expected


def test_nan_and_infinity_are_refused_not_written_as_null(tasks: Collection) -> None:
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValidationError, match="NaN or Infinity"):
            tasks.put({"id": "x", "nested": {"v": [1, bad]}})
    assert tasks.list() == []
    assert not os.path.exists(tasks.store.file_path("tasks"))
