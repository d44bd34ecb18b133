"""maintenance.py: compaction, check, backup, export and import."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from testing.stores import (
    append_raw,
    file_lines,
    ids,
    make_history,
    snapshot,
)

from git_taskstore import (
    Collection,
    ConflictMarkersError,
    NotFoundError,
    Store,
    StorePathError,
    ValidationError,
)
from git_taskstore.taskmodel import CHECKS


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


def test_an_imported_tombstone_deletes_at_once_not_after_a_rebuild(
    tasks: Collection, store: Store
) -> None:
    """Found by review: the cache took an imported tombstone for a live record (get gave
    the tombstone back, count counted it) until the next full rebuild read the file."""
    current = tasks.put({"id": "a", "v": "mine"})
    tombstone = {"id": "a", "deleted": True, "updated_at": current["updated_at"] + 1}
    assert store.import_data({"tasks": [tombstone, {"id": "b", "deleted": True}]}).written == 2
    assert tasks.get("a") is None and tasks.get("b") is None
    assert tasks.count() == 0 and tasks.list() == []
    store.sync(full=True)
    assert tasks.get("a") is None and tasks.count() == 0


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
