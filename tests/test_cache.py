"""cache.py: the indexes the cache keeps on declared fields."""

from __future__ import annotations

from testing.stores import (
    Task,
    ids,
    query_plan,
)

from git_taskstore import (
    Collection,
    Filter,
    Op,
    Store,
)
from git_taskstore.files import atomic_write


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
