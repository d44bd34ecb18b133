"""writes.py: planning a write (updated_at always moves forward)."""

from __future__ import annotations

import orjson
from testing.stores import (
    Task,
    append_raw,
    records_in_file,
)

from git_taskstore import (
    Collection,
    Store,
)

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
