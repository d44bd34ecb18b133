"""sync.py and freshness.py: every read sees what the files say now.

Real files and real SQLite; other tools' writes are made behind the store's back.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from testing import run_python
from testing.stores import (
    Task,
    append_raw,
    ids,
    rewrite_in_place_keeping_stat,
    snapshot,
    sync_action,
)

from git_taskstore import (
    AlreadyExistsError,
    Collection,
    ConflictMarkersError,
    Filter,
    Op,
    Store,
)
from git_taskstore.files import atomic_write
from git_taskstore.jsonl import parse_line


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


@pytest.mark.parametrize("how", ["catch-up", "rebuild"])
def test_a_tombstone_without_a_timestamp_deletes_the_record(
    store: Store, tasks: Collection, how: str
) -> None:
    """`{"id":"a","deleted":true}` (the Rust crate's and older tools' tombstone) after a
    timed version: the record is gone, read by a catch-up or a rebuild, and a later write
    brings it back with a version above it. (Mutation: rank untimed lines as version 0 in
    reduce_lines, or skip the catch-up's lookup of the cached version: "a" comes back.)"""
    tasks.put({"id": "a", "v": 1})
    tasks.put({"id": "b", "v": 1})
    append_raw(store.file_path("tasks"), b'{"id":"a","deleted":true}\n')
    if how == "rebuild":
        store.sync(full=True)
    assert tasks.get("a") is None
    assert [r["id"] for r in tasks.list()] == ["b"]
    tasks.put({"id": "a", "v": 2})
    assert tasks.get("a")["v"] == 2
    store.sync(full=True)
    assert tasks.get("a")["v"] == 2


def test_a_same_size_rewrite_that_sets_the_mtime_back_is_seen(
    store: Store, tasks: Collection
) -> None:
    """`touch -r`, `cp -p`, `rsync -t` or an editor keeping times: the same size, the same
    inode, the old mtime, other bytes. The ctime still moves, and the read sees the new
    record. (Mutation: drop the ctime from FileState.matches: the old record is served.)"""
    tasks.put({"id": "a", "v": "one"})
    path = store.file_path("tasks")
    tasks.list()  # the cache has read the file, outside its racy window
    st = os.stat(path)
    time.sleep(0.05)
    data = Path(path).read_bytes()
    with open(path, "r+b") as handle:
        handle.write(data.replace(b'"one"', b'"two"'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(path).st_size == st.st_size and os.stat(path).st_mtime_ns == st.st_mtime_ns
    assert tasks.get("a")["v"] == "two"
