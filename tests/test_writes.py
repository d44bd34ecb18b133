"""writes.py: planning a write (updated_at always moves forward)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from testing.stores import (
    Task,
    append_raw,
    records_in_file,
    snapshot,
)

from git_taskstore import (
    Collection,
    Store,
    ValidationError,
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


@pytest.mark.parametrize("value", [True, False, None, "yes"])
def test_a_record_with_a_deleted_field_is_refused(store: Store, value: object) -> None:
    """A live record carrying "deleted": true would read as a tombstone on every rebuild
    and every other clone: the field is reserved. (Mutation: drop the check in
    make_request, and the put is acknowledged, then the record vanishes on sync --full.)"""
    tasks = store.collection("tasks")
    before = snapshot(store.path)
    for write in (
        lambda: tasks.put({"id": "a", "deleted": value}),
        lambda: tasks.put_many([{"id": "b"}, {"id": "a", "deleted": value}]),
        lambda: tasks.put({"id": "a", "deleted": value}, merge=True),
    ):
        with pytest.raises(ValidationError, match='"deleted" is reserved for tombstones'):
            write()
    with pytest.raises(ValidationError, match='record 2: the field "deleted"'):
        tasks.put_many([{"id": "b"}, {"id": "a", "deleted": value}])
    with pytest.raises(ValidationError, match="reserved"), store.batch():
        tasks.put({"id": "c", "deleted": value})
    assert snapshot(store.path) == before
    tasks.put({"id": "a"})
    tasks.delete("a")
    assert b'"deleted":true' in Path(store.file_path("tasks")).read_bytes()


def nested(depth: int) -> dict[str, Any]:
    """A record whose objects nest ``depth`` deep, itself included."""
    value: Any = 1
    for _ in range(depth - 1):
        value = {"a": value}
    return {"id": "deep", "v": value} if depth > 1 else {"id": "deep"}


def test_records_nest_at_most_254_deep_and_deeper_lines_are_bad_lines(store: Store) -> None:
    """254 levels write and read back; 255, 990, 100,000 levels and a record containing
    itself are one ValidationError each, nothing written; a 300-deep line that arrived in
    the file is a bad line for reads, check and export, not a crash. (Mutation: drop the
    recursion check in _checked_line: the stdlib fallback writes 255-990 levels, and
    get/export then raise TypeError.)"""
    tasks = store.collection("tasks")
    tasks.put(nested(254))
    got = tasks.get("deep")
    assert got is not None and got["v"] == nested(254)["v"]
    before = snapshot(store.path)
    selfish: dict[str, Any] = {"id": "loop"}
    selfish["me"] = selfish
    for record in (nested(255), nested(990), nested(100_000), selfish):
        with pytest.raises(ValidationError, match="deeper than 254 levels"):
            tasks.put(record)
    assert snapshot(store.path) == before
    deep_line = b'{"id":"deep2","v":' + b'{"a":' * 299 + b"1" + b"}" * 300 + b"\n"
    with open(store.file_path("tasks"), "ab") as handle:
        handle.write(deep_line)
    assert tasks.get("deep2") is None
    assert [r["id"] for r in tasks.list()] == ["deep"]
    assert any("deeper than 254" in p.message for p in store.check())
    store.export_data()
