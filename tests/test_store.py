"""store.py: the typed and dict-level API (create, update, put, delete, get, list)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from testing.stores import (
    Note,
    Task,
    file_lines,
    query_plan,
    records_in_file,
    snapshot,
)

from git_taskstore import (
    AlreadyExistsError,
    Collection,
    Filter,
    NotFoundError,
    Op,
    Record,
    Store,
    ValidationError,
)


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
