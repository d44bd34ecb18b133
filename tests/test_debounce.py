"""debounce.py: debounced mode, in one process and across real processes.

A write is acknowledged once durable in the SQLite cache and marked pending; it reaches
the JSONL after N ms without writes, on flush(), close(), at exit, by `git taskstore
flush` and by the pre-commit hook, and survives SIGKILL, checkouts and merges.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from testing import cli, commit_all, git, init_repo
from testing.writers import (
    LONG_DEBOUNCE_MS,
    READ_TIMEOUT_S,
    VENV_BIN,
    Child,
    Writer,
    current_in_file,
    file_records,
    jsonl_path,
)

from git_taskstore import (
    AlreadyExistsError,
    ConflictMarkersError,
    Filter,
    Op,
    Store,
    TaskstoreError,
    ValidationError,
)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Writer]]:
    started: list[Child] = []

    def make(root: Path, debounce_ms: int | None = LONG_DEBOUNCE_MS, **kw: Any) -> Writer:
        writer = Writer(root, debounce_ms, **kw)
        started.append(writer)
        return writer

    yield make
    for child in started:
        child.kill()


def test_debounced_writes_are_current_at_once_and_exported_by_flush(tmp_path: Path) -> None:
    store = Store.open(tmp_path, debounce_ms=LONG_DEBOUNCE_MS)
    tasks = store.collection("tasks")
    path = Path(store.file_path("tasks"))
    tasks.put({"id": "a", "v": 1})
    tasks.put({"id": "a", "v": 2})  # the same id twice: one pending version
    tasks.put({"id": "b", "v": 1})
    tasks.delete("b")
    assert not path.exists()
    assert store.pending() == {"tasks": 2}
    assert tasks.get("a")["v"] == 2 and tasks.get("b") is None  # type: ignore[index]
    assert tasks.count() == 1
    assert store.flush() == 2
    assert store.pending() == {}
    current = current_in_file(path)
    assert current["a"]["v"] == 2 and current["b"]["deleted"] is True
    assert store.flush() == 0
    store.close()


def _reads(store: Store, ids: list[str]) -> dict[str, Any]:
    """Every kind of read of the tasks collection."""
    tasks = store.collection("tasks")
    return {
        "list": tasks.list(),
        "open": tasks.list([Filter("status", Op.EQ, "open")]),
        "tagged": tasks.list([Filter("tags", Op.CONTAINS, "ui")], sort="-priority"),
        "by_priority": tasks.list(sort="priority"),
        "page": tasks.list(limit=5, offset=3),
        "count": tasks.count(),
        "count_open": tasks.count([Filter("status", Op.EQ, "open")]),
        "count_by": tasks.count_by("status"),
        "get": {rid: tasks.get(rid) for rid in ids},
        "status": [(s.name, s.records, s.deleted) for s in store.status()],
    }


@pytest.mark.parametrize("seed", range(4))
def test_reads_over_pending_writes_are_the_reads_after_the_export(
    tmp_path: Path, seed: int
) -> None:
    """Debounced writes are laid over the table by every read: what each read gives
    with writes pending is what it gives once they are in the file, and once the cache
    is rebuilt from the file alone (the order included: an updated id keeps its place,
    new ids follow in the order they were written)."""
    rng = random.Random(seed)
    store = Store.open(tmp_path, debounce_ms=LONG_DEBOUNCE_MS)
    tasks = store.collection("tasks")
    if seed % 2:
        tasks.ensure_index("status")  # the same reads through an index

    def record(rid: str) -> dict[str, Any]:
        return {
            "id": rid,
            "status": rng.choice(["open", "done", "blocked"]),
            "priority": rng.randrange(4),
            "tags": rng.sample(["ui", "api", "db"], rng.randrange(3)),
        }

    ids = [f"t{i:02d}" for i in range(30)]
    tasks.put_many([record(rid) for rid in ids[:15]])
    store.flush()
    for _ in range(60):
        rid = rng.choice(ids)
        action = rng.random()
        if action < 0.5:
            tasks.put(record(rid))
        elif action < 0.7:
            tasks.put({"id": rid, "status": "open"}, merge=True)
        else:
            tasks.delete(rid)
    assert store.pending()
    pending = _reads(store, ids)
    assert pending["count"] == len(pending["list"]) > 0
    store.flush()
    assert store.pending() == {}
    assert _reads(store, ids) == pending
    store.sync(full=True)
    assert _reads(store, ids) == pending
    store.close()


def test_export_and_status_show_a_collection_whose_only_writes_are_pending(tmp_path: Path) -> None:
    with Store.open(tmp_path, debounce_ms=LONG_DEBOUNCE_MS) as store:
        store.collection("tasks").put({"id": "t"})
        store.flush()
        store.collection("notes").put({"id": "n"})
        assert not Path(store.file_path("notes")).exists()
        exported = store.export_data()
        assert sorted(exported) == ["notes", "tasks"]
        assert [r["id"] for r in exported["notes"]] == ["n"]
        shown = [(s.name, s.records, s.freshness) for s in store.status()]
        assert shown == [("notes", 1, "pending"), ("tasks", 1, "fresh")]


@pytest.mark.parametrize("read", ["list", "get"])
def test_a_read_during_an_export_of_a_new_collection_sees_its_pending_writes(
    tmp_path: Path, read: str
) -> None:
    # The collection has pending writes and its file is gone (as after a checkout removed
    # it): the cache forgets the file's rows and keeps the pending ones. An export
    # committing between the reader's look for pending rows and its read of the records
    # moves them into the table; the read must see one state or the other, never neither.
    writer = Store.open_dir(tmp_path, debounce_ms=LONG_DEBOUNCE_MS)
    writer.collection("notes").put_many([{"id": "n1"}, {"id": "n2"}])
    writer.engine.cache.forget("notes")  # what a sync does when the file is gone
    reader = Store.open_dir(tmp_path)
    notes = reader.collection("notes")
    exported = []

    def export_now(sql: str) -> None:  # runs just before each statement of the reader
        # The read of the records, pending rows included (not has_pending's LIMIT 1).
        reads_records = "FROM pending" in sql and "LIMIT 1" not in sql
        if not exported and reads_records:
            exported.append(writer.flush())

    reader.engine.cache.conn.set_trace_callback(export_now)
    if read == "list":
        assert [r["id"] for r in notes.list()] == ["n1", "n2"]
    else:
        assert notes.get("n1") == {"id": "n1", **stamps(notes.get("n1"))}
    reader.engine.cache.conn.set_trace_callback(None)
    assert exported == [2]  # the export did land in the middle of the read
    assert [r["id"] for r in notes.list()] == ["n1", "n2"]
    reader.close()
    writer.close()


def stamps(record: dict[str, Any] | None) -> dict[str, Any]:
    assert record is not None
    return {"created_at": record["created_at"], "updated_at": record["updated_at"]}


def test_a_debounced_write_plans_on_what_the_file_says_now(tmp_path: Path) -> None:
    # The write plans on the cache and checks, in the same statement, that the cache
    # reflects the file; here another tool has appended meanwhile, so it syncs first.
    store = Store.open(tmp_path, debounce_ms=LONG_DEBOUNCE_MS)
    tasks = store.collection("tasks")
    tasks.put({"id": "x", "v": 1, "created_at": 5})
    store.flush()
    assert tasks.get("x")["v"] == 1  # type: ignore[index]
    later = tasks.get("x")["updated_at"] + 60_000  # type: ignore[index]
    append_line(
        store.file_path("tasks"),
        {"id": "x", "v": 2, "extra": "appended", "created_at": 5, "updated_at": later},
    )
    patched = tasks.put({"id": "x", "v": 3}, merge=True)
    assert patched == {
        "id": "x",
        "v": 3,
        "extra": "appended",
        "created_at": 5,
        "updated_at": later + 1,
    }
    with open(store.file_path("tasks"), "ab") as handle:
        handle.write(b"<<<<<<< HEAD\n")
    with pytest.raises(ConflictMarkersError):
        tasks.put({"id": "y"})
    assert store.pending() == {"tasks": 1}  # the patch only
    store.close()


def test_a_debounced_batch_looked_up_again_after_a_sync_plans_from_what_it_was_given(
    tmp_path: Path,
) -> None:
    # tasks passes the freshness check, notes (a file another tool wrote, not read yet)
    # does not: the write syncs and looks up again. Another debounced writer writes tasks
    # in between (and dies, its writes pending); the batch's patches must merge over those
    # writes, not over what a first planning made of the records.
    store = Store.open_dir(tmp_path, debounce_ms=LONG_DEBOUNCE_MS)
    tasks = store.collection("tasks")
    tasks.put({"id": "x", "a": 1, "b": 1, "created_at": 5})
    store.flush()
    (tmp_path / "notes.jsonl").write_text('{"id":"m","updated_at":1}\n')
    other = (
        "import os, sys; from git_taskstore import Store;"
        " o = Store.open_dir(sys.argv[1], debounce_ms=600000); t = o.collection('tasks');"
        " t.put({'id': 'x', 'b': 2}, merge=True); t.create({'id': 'y', 'b': 2, 'created_at': 7});"
        " os._exit(0)"
    )
    seen = {"rollback": False, "other": False}

    def between(sql: str) -> None:  # at the first statement after the first attempt
        if seen["rollback"] and not seen["other"]:
            seen["other"] = True
            subprocess.run([sys.executable, "-c", other, str(tmp_path)], check=True, timeout=60)
        seen["rollback"] = seen["rollback"] or sql.strip().upper() == "ROLLBACK"

    store.engine.cache.conn.set_trace_callback(between)
    with store.batch():
        tasks.put({"id": "x", "a": 2}, merge=True)
        tasks.put({"id": "y", "a": 2}, merge=True)
        store.collection("notes").put({"id": "n"})
    store.engine.cache.conn.set_trace_callback(None)
    assert seen["other"]
    fields = ("a", "b", "created_at")
    assert {k: tasks.get("x")[k] for k in fields} == {"a": 2, "b": 2, "created_at": 5}  # type: ignore[index]
    assert {k: tasks.get("y")[k] for k in fields} == {"a": 2, "b": 2, "created_at": 7}  # type: ignore[index]
    store.close()


def test_a_new_collections_debounced_writes_take_one_lookup_after_the_first(
    tmp_path: Path,
) -> None:
    store = Store.open_dir(tmp_path, debounce_ms=LONG_DEBOUNCE_MS)
    notes = store.collection("notes")
    notes.put({"id": "n1"})  # no table, no file: looked up the long way, table made
    statements: list[str] = []
    store.engine.cache.conn.set_trace_callback(statements.append)
    notes.put({"id": "n2"})
    store.engine.cache.conn.set_trace_callback(None)
    # BEGIN, the file's state, the lookup of the id (table and pending rows), the pending
    # row, COMMIT: no sync, no lock, no second attempt.
    assert "ROLLBACK" not in statements and len(statements) == 5, statements
    assert [r["id"] for r in notes.list()] == ["n1", "n2"] and store.pending() == {"notes": 2}
    store.close()
    assert [r["id"] for r in file_records(Path(store.file_path("notes")))] == ["n1", "n2"]


def append_line(path: str, record: dict[str, Any]) -> None:
    with open(path, "ab") as handle:
        handle.write(json.dumps(record).encode() + b"\n")


def test_close_exports_pending_writes(tmp_path: Path) -> None:
    with Store.open(tmp_path, debounce_ms=LONG_DEBOUNCE_MS) as store:
        store.collection("tasks").put({"id": "a"})
        path = Path(store.file_path("tasks"))
        assert not path.exists()
    assert [r["id"] for r in file_records(path)] == ["a"]
    with Store.open(tmp_path) as again:
        assert again.pending() == {} and again.exported_at_open == {}


def test_a_batch_in_debounced_mode_goes_pending_as_a_whole(tmp_path: Path) -> None:
    with Store.open(tmp_path, debounce_ms=LONG_DEBOUNCE_MS) as store:
        tasks = store.collection("tasks")
        with store.batch():
            tasks.put_many([{"id": f"t{i}"} for i in range(10)])
            store.collection("notes").put({"id": "n"})
            assert store.pending() == {}
        assert store.pending() == {"notes": 1, "tasks": 10}
        assert not Path(store.file_path("tasks")).exists()
        with pytest.raises(AlreadyExistsError), store.batch():
            tasks.put({"id": "new"})
            tasks.create({"id": "t1"})
        assert store.pending() == {"notes": 1, "tasks": 10} and tasks.get("new") is None
    assert len(file_records(Path(store.file_path("tasks")))) == 10


def test_close_does_not_stall_when_the_flusher_fires_as_another_thread_holds_the_lock(
    tmp_path: Path,
) -> None:
    # The flusher wakes while another thread holds the store; close() must wait for that
    # thread only, not for the flusher's 5 s join timeout.
    for _ in range(3):
        store = Store.open(tmp_path, debounce_ms=30)
        store.collection("tasks").put({"id": "a"})
        holding = threading.Event()

        def hold(s: Store = store, ev: threading.Event = holding) -> None:
            with s.locked():
                ev.set()
                time.sleep(0.3)  # the deadline passes: the flusher waits for us

        thread = threading.Thread(target=hold)
        thread.start()
        assert holding.wait(30)
        time.sleep(0.1)
        started = time.monotonic()
        store.close()
        elapsed = time.monotonic() - started
        thread.join()
        assert elapsed < 3.0, f"close() took {elapsed:.1f}s"
        assert file_records(Path(store.file_path("tasks")))[-1]["id"] == "a"


def test_an_invalid_debounce_setting_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Words, fractions, negative and absurd delays are refused, by the variable and by
    the API. (Mutation: clamp instead of refusing, as before: -5 opens a store.)"""
    Store.open(tmp_path).close()
    for value in ("soon", "1.5", "10ms", "-5", "99999999999999999999", "3600001"):
        monkeypatch.setenv("TASKSTORE_DEBOUNCE_MS", value)
        with pytest.raises(ValidationError) as info:
            Store.open(tmp_path)
        assert "TASKSTORE_DEBOUNCE_MS" in str(info.value) and repr(value) in str(info.value)
        assert "milliseconds" in str(info.value)
        result = cli("list", "tasks", cwd=tmp_path)
        assert result.code == 1, result
        assert result.err.startswith("error: TASKSTORE_DEBOUNCE_MS must be a whole number"), result
        assert "Traceback" not in result.err
    for bad in (-5, 3_600_001, 1.5, True):
        with pytest.raises(ValidationError, match="debounce_ms must be a whole number"):
            Store.open(tmp_path, debounce_ms=bad)  # type: ignore[arg-type]
    monkeypatch.setenv("TASKSTORE_DEBOUNCE_MS", "600000")
    with Store.open(tmp_path) as store:
        store.collection("tasks").put({"id": "a"})
        assert store.pending() == {"tasks": 1}  # the variable turns debouncing on
    monkeypatch.setenv("TASKSTORE_DEBOUNCE_MS", "")
    with Store.open(tmp_path) as store:
        store.collection("tasks").put({"id": "b"})
        assert store.pending() == {}  # empty: off


def test_a_debounced_write_is_visible_at_once_to_another_process(
    tmp_path: Path, spawn: Callable[..., Writer]
) -> None:
    Store.open(tmp_path).close()
    writer = spawn(tmp_path)
    path = jsonl_path(tmp_path, "tasks")
    written = writer.put("tasks", {"id": "a", "title": "pending"})
    assert writer.call("pending") == {"tasks": 1}
    assert not path.exists()  # acknowledged, not exported
    reader = spawn(tmp_path, None)
    assert reader.call("get", collection="tasks", id="a") == written
    writer.put("tasks", {"id": "a", "title": "second"})
    assert reader.call("get", collection="tasks", id="a")["title"] == "second"
    writer.call("close")
    assert current_in_file(path)["a"]["title"] == "second"


@pytest.mark.slow
def test_pending_writes_reach_the_jsonl_only_after_the_quiet_period(
    tmp_path: Path, spawn: Callable[..., Writer]
) -> None:
    debounce_s = 1.0
    Store.open(tmp_path).close()
    writer = spawn(tmp_path, int(debounce_s * 1000))
    path = jsonl_path(tmp_path, "tasks")
    # A burst twice as long as the debounce: a timer from the first write would export
    # in the middle of it.
    acked: list[float] = []
    changed_at: float | None = None
    start = time.monotonic()
    i = 0
    while time.monotonic() - start < 2 * debounce_s:
        writer.put("tasks", {"id": f"t{i}", "i": i})
        acked.append(time.monotonic())
        i += 1
        if changed_at is None and path.exists():
            changed_at = time.monotonic()
        time.sleep(0.05)
    last = acked[-1]
    gaps = [b - a for a, b in itertools.pairwise(acked)]
    if max(gaps) < debounce_s - 0.2:  # a stalled machine may leave a real quiet period
        assert changed_at is None, "exported during the burst"
    while not path.exists() or len(file_records(path)) < i:
        assert time.monotonic() < last + debounce_s + 30, "never exported"
        time.sleep(0.01)
    exported_seen = time.monotonic()
    # The flusher's deadline is set just before put() returns: allow for that delay.
    assert exported_seen >= last + debounce_s - 0.2
    assert [r["id"] for r in file_records(path)] == [f"t{j}" for j in range(i)]
    assert writer.call("pending") == {}
    writer.die()


@pytest.mark.parametrize("how", ["quit", "env"])
def test_a_process_that_exits_without_close_exports_at_exit(
    tmp_path: Path, spawn: Callable[..., Writer], how: str
) -> None:
    Store.open(tmp_path).close()
    if how == "env":  # debounced by $TASKSTORE_DEBOUNCE_MS rather than the argument
        writer = spawn(tmp_path, None, env={"TASKSTORE_DEBOUNCE_MS": str(LONG_DEBOUNCE_MS)})
    else:
        writer = spawn(tmp_path)
    for i in range(5):
        writer.put("tasks", {"id": f"t{i}"})
    assert writer.call("pending") == {"tasks": 5}
    assert not jsonl_path(tmp_path, "tasks").exists()
    assert writer.quit() == 0
    assert [r["id"] for r in file_records(jsonl_path(tmp_path, "tasks"))] == [
        f"t{i}" for i in range(5)
    ]
    with Store.open(tmp_path) as store:
        assert store.pending() == {} and store.exported_at_open == {}


BURST = r"""
import os, sys
from git_taskstore import Store

store = Store.open(sys.argv[1], debounce_ms=int(sys.argv[2]))
tasks = store.collection("tasks")
notes = store.collection("notes")
i = 0
while True:
    tasks.put({"id": "t%05d" % i, "i": i, "pad": "x" * (i % 300)})
    if i % 7 == 0:
        notes.put({"id": "shared", "i": i})
    if i % 11 == 0 and i:
        tasks.delete("t%05d" % (i - 1))
    sys.stdout.write("%d\n" % i)
    sys.stdout.flush()
    i += 1
"""


@pytest.mark.parametrize("debounce_ms", [LONG_DEBOUNCE_MS, 3], ids=["no-export", "exporting"])
def test_sigkill_in_a_burst_loses_no_acknowledged_write(tmp_path: Path, debounce_ms: int) -> None:
    Store.open(tmp_path).close()
    child = Child([sys.executable, "-c", BURST, str(tmp_path), str(debounce_ms)], tmp_path)
    acked: list[int] = []
    try:
        while len(acked) < 400:
            acked.append(int(child.read()))
    finally:
        os.kill(child.proc.pid, signal.SIGKILL)
        child.proc.wait(timeout=READ_TIMEOUT_S)
    assert child.proc.returncode == -signal.SIGKILL
    # Lines printed before the kill landed were acknowledged too.
    while True:
        line = child.lines.get(timeout=READ_TIMEOUT_S)
        if line is None:
            break
        if line.endswith("\n"):
            acked.append(int(line))
    with Store.open(tmp_path) as store:
        assert store.pending() == {}
        exported = store.exported_at_open
        tasks = current_in_file(jsonl_path(tmp_path, "tasks"))
        last = max(acked)
        assert sorted(acked) == list(range(last + 1))
        for i in acked:
            record = tasks[f"t{i:05d}"]  # every acknowledged write is in the file
            deleted = record.get("deleted", False)
            if (i + 1) % 11 == 0 and i + 1 <= last:
                assert deleted, record
            elif i < last:  # the last one's delete may have landed unacknowledged
                assert not deleted and record["i"] == i, record
            assert store.collection("tasks").get(f"t{i:05d}") == (None if deleted else record)
        shared = current_in_file(jsonl_path(tmp_path, "notes"))["shared"]
        assert shared["i"] >= max(i for i in acked if i % 7 == 0) and shared["i"] % 7 == 0
        assert store.check() == []  # no torn or invalid line anywhere
    if debounce_ms == LONG_DEBOUNCE_MS:
        assert exported.get("tasks", 0) > 0  # the reopen did the export


def test_an_appended_newer_version_beats_a_pending_older_one_and_vice_versa(
    tmp_path: Path, spawn: Callable[..., Writer]
) -> None:
    with Store.open(tmp_path) as store:
        store.collection("tasks").put_many([{"id": "r", "v": 0}, {"id": "s", "v": 0}])
    path = jsonl_path(tmp_path, "tasks")
    writer = spawn(tmp_path)
    pending_r = writer.put("tasks", {"id": "r", "v": "pending"})
    pending_s = writer.put("tasks", {"id": "s", "v": "pending"})
    base = file_records(path)[0]["updated_at"]
    # Another tool appends (no lock, no cache): r newer than the pending version, s older
    # than it but newer than what the file held.
    with open(path, "ab") as handle:
        newer_r = {"id": "r", "v": "appended", "updated_at": pending_r["updated_at"] + 60_000}
        older_s = {"id": "s", "v": "appended", "updated_at": base + 1}
        assert older_s["updated_at"] < pending_s["updated_at"]
        handle.write(json.dumps(newer_r).encode() + b"\n" + json.dumps(older_s).encode() + b"\n")
    assert writer.call("get", collection="tasks", id="r")["v"] == "appended"
    assert writer.call("get", collection="tasks", id="s")["v"] == "pending"
    assert writer.call("flush") == 1  # r's pending version is dropped, s's exported
    current = current_in_file(path)
    assert current["r"]["v"] == "appended" and current["s"]["v"] == "pending"
    assert [r["v"] for r in file_records(path) if r["id"] == "r"] == [0, "appended"]
    writer.call("close")


def _repo_with_tasks(root: Path, *, hooks: bool) -> Path:
    repo = init_repo(root)
    if hooks:
        result = cli("init", cwd=repo)
        assert result.code == 0, result
    with Store.open(repo) as store:
        store.collection("tasks").put_many(
            [{"id": name, "v": "main"} for name in ("keep", "theirs-newer", "ours-newer")]
        )
    commit_all(repo, "tasks on main")
    return repo


def _append_on_branch(repo: Path, branch: str, records: list[dict[str, Any]]) -> None:
    git(repo, "checkout", "-q", "-b", branch)
    with open(jsonl_path(repo, "tasks"), "ab") as handle:
        for record in records:
            handle.write(json.dumps(record).encode() + b"\n")
    commit_all(repo, f"tasks on {branch}")
    git(repo, "checkout", "-q", "main")


@pytest.fixture
def venv_first_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))


@pytest.mark.usefixtures("venv_first_on_path")
@pytest.mark.parametrize("hooks", [False, True], ids=["no-hooks", "hooks"])
@pytest.mark.parametrize("how", ["checkout", "merge"])
def test_a_checkout_or_merge_under_pending_writes_drops_none(
    tmp_path: Path, spawn: Callable[..., Writer], hooks: bool, how: str
) -> None:
    repo = _repo_with_tasks(tmp_path / "repo", hooks=hooks)
    path = jsonl_path(repo, "tasks")
    base = current_in_file(path)["keep"]["updated_at"]
    far = base + 10**9  # newer than any write of this test
    _append_on_branch(
        repo,
        "other",
        [
            {"id": "branch-only", "v": "other", "updated_at": base + 1},
            {"id": "theirs-newer", "v": "other", "updated_at": far},
            {"id": "ours-newer", "v": "other", "updated_at": base + 1},
        ],
    )
    main_bytes = path.read_bytes()
    writer = spawn(repo)
    writer.put("tasks", {"id": "new", "v": "pending"})
    writer.put("tasks", {"id": "theirs-newer", "v": "pending"})
    mine = writer.put("tasks", {"id": "ours-newer", "v": "pending"})
    assert mine["updated_at"] > base + 1
    assert path.read_bytes() == main_bytes  # the work tree is clean: git goes ahead
    if how == "checkout":
        git(repo, "checkout", "-q", "other")
    else:
        git(repo, "merge", "-q", "--ff-only", "other")  # a pull, as it lands
    # The writer sees the branch and its own pending writes on top, newest winning.
    seen = {r["id"]: r["v"] for r in writer.call("list", collection="tasks")}
    expected = {
        "keep": "main",
        "branch-only": "other",
        "theirs-newer": "other",
        "ours-newer": "pending",
        "new": "pending",
    }
    assert seen == expected
    writer.call("flush")  # (with hooks, post-checkout/post-merge exported already)
    assert {k: v["v"] for k, v in current_in_file(path).items()} == expected
    in_file = file_records(path)
    assert [r["v"] for r in in_file if r["id"] == "theirs-newer"] == ["main", "other"]
    assert sum(r["id"] == "new" for r in in_file) == 1
    assert writer.call("pending") == {}
    writer.call("close")


@pytest.mark.usefixtures("venv_first_on_path")
def test_a_checkout_to_a_branch_without_the_file_keeps_pending_writes(
    tmp_path: Path, spawn: Callable[..., Writer]
) -> None:
    repo = _repo_with_tasks(tmp_path / "repo", hooks=False)
    git(repo, "checkout", "-q", "-b", "bare")
    git(repo, "rm", "-q", ".taskstore/tasks.jsonl")
    commit_all(repo, "no tasks here")
    git(repo, "checkout", "-q", "main")
    writer = spawn(repo)
    writer.put("tasks", {"id": "new", "v": "pending"})
    git(repo, "checkout", "-q", "bare")
    assert not jsonl_path(repo, "tasks").exists()
    assert writer.call("get", collection="tasks", id="new")["v"] == "pending"
    assert writer.call("flush") == 1
    assert [r["id"] for r in file_records(jsonl_path(repo, "tasks"))] == ["new"]
    assert [r["id"] for r in writer.call("list", collection="tasks")] == ["new"]
    writer.call("close")


def test_git_taskstore_flush_exports_pending_writes(
    tmp_path: Path, spawn: Callable[..., Writer]
) -> None:
    Store.open(tmp_path).close()
    path = jsonl_path(tmp_path, "tasks")
    writer = spawn(tmp_path)
    for i in range(3):
        writer.put("tasks", {"id": f"t{i}"})
    writer.put("notes", {"id": "n"})
    result = cli("flush", "--json", cwd=tmp_path)
    assert result.code == 0, result
    assert json.loads(result.out) == {"exported": 4}
    assert [r["id"] for r in file_records(path)] == ["t0", "t1", "t2"]
    assert writer.call("pending") == {}
    writer.put("tasks", {"id": "t3"})
    writer.die()  # a dead writer's pending write: the command exports it all the same
    result = cli("flush", cwd=tmp_path)
    assert result.code == 0, result
    assert result.out.strip() == "exported 1 pending write(s)"
    result = cli("flush", cwd=tmp_path)
    assert result.out.strip() == "exported 0 pending write(s)"
    assert [r["id"] for r in file_records(path)] == ["t0", "t1", "t2", "t3"]


@pytest.mark.usefixtures("venv_first_on_path")
@pytest.mark.parametrize("commit", [["commit", "-q", "-m", "c"], ["commit", "-q", "-a", "-m", "c"]],
                         ids=["commit", "commit-a"])  # fmt: skip
@pytest.mark.parametrize("writer_alive", [True, False], ids=["alive", "dead"])
def test_the_pre_commit_hook_exports_pending_writes_into_the_commit(
    tmp_path: Path, spawn: Callable[..., Writer], commit: list[str], writer_alive: bool
) -> None:
    repo = _repo_with_tasks(tmp_path / "repo", hooks=True)
    assert (repo / ".git" / "hooks" / "pre-commit").exists()
    (repo / "README").write_text("one\n")
    commit_all(repo, "readme")
    writer = spawn(repo)
    writer.put("tasks", {"id": "new", "v": "pending"})
    writer.put("tasks", {"id": "keep", "v": "changed"})
    writer.put("notes", {"id": "n", "v": "pending"})
    if not writer_alive:
        writer.die()
    (repo / "README").write_text("two\n")
    git(repo, "add", "README")
    git(repo, *commit)
    committed = {
        name: {
            json.loads(line)["id"]: json.loads(line)
            for line in git(repo, "show", f"HEAD:.taskstore/{name}.jsonl").splitlines()
        }
        for name in ("tasks", "notes")
    }
    assert committed["tasks"]["new"]["v"] == "pending"
    assert committed["tasks"]["keep"]["v"] == "changed"
    assert committed["notes"]["n"]["v"] == "pending"
    assert git(repo, "status", "--porcelain", "--", ".taskstore") == ""
    if writer_alive:
        assert writer.call("pending") == {}
        writer.call("close")
    with Store.open(repo) as store:
        assert store.pending() == {}


def test_a_closed_store_refuses_writes_and_keeps_nothing_pending(tmp_path: Path) -> None:
    store = Store.open(tmp_path, debounce_ms=LONG_DEBOUNCE_MS)
    store.collection("tasks").put({"id": "a"})
    store.close()
    store.close()  # twice is once
    with pytest.raises(TaskstoreError, match="closed"):
        store.collection("tasks").put({"id": "b"})
    assert [r["id"] for r in file_records(Path(store.file_path("tasks")))] == ["a"]


def test_opening_the_store_exports_only_the_pending_writes_of_dead_writers(
    tmp_path: Path,
) -> None:
    """A live debouncing process exports its own writes when its debounce runs out; a
    killed one's are exported by the next process that opens the store."""
    code = (
        "import sys, time\n"
        "from git_taskstore import Store\n"
        "s = Store.open(sys.argv[1], debounce_ms=600_000)\n"
        "s.collection('t').put({'id': 'live'})\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    writer = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        jsonl_file = tmp_path / ".taskstore" / "t.jsonl"
        with Store.open(tmp_path) as other:
            assert other.collection("t").get("live") is not None  # visible at once
            assert other.exported_at_open == {}
        assert not jsonl_file.exists() or b'"live"' not in jsonl_file.read_bytes()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    with Store.open(tmp_path) as after:
        assert after.exported_at_open == {"t": 1}
    assert b'"live"' in jsonl_file.read_bytes()


@pytest.mark.usefixtures("venv_first_on_path")
def test_a_write_exported_between_git_add_and_git_commit_goes_into_the_commit(
    tmp_path: Path, spawn: Callable[..., Writer]
) -> None:
    """`git add -A` while a write is pending, the flusher exports it, `git commit`: the
    hook stages the lines appended since the add, so the commit holds the write and the
    work tree is clean. (Mutation: drop _stage_appended from the pre-commit hook: the
    commit misses the write and the JSONL shows as modified.)"""
    repo = _repo_with_tasks(tmp_path / "repo", hooks=True)
    writer = spawn(repo)
    writer.put("tasks", {"id": "early", "v": "exported before the add"})
    writer.call("flush")
    writer.put("tasks", {"id": "late", "v": "pending at add"})
    git(repo, "add", "-A")
    writer.call("flush")  # what the flusher does once the debounce runs out
    git(repo, "commit", "-q", "-m", "c")
    committed = [
        json.loads(line)["id"]
        for line in git(repo, "show", "HEAD:.taskstore/tasks.jsonl").splitlines()
    ]
    assert "early" in committed and "late" in committed
    assert git(repo, "status", "--porcelain", "--", ".taskstore") == ""
    writer.call("close")


def test_a_killed_writer_in_another_pid_namespace_has_its_writes_exported(
    tmp_path: Path,
) -> None:
    """A container's writer is pid 1 in its namespace; here pid 1 is init, alive. Its
    claim is an flock, which the kernel drops when it dies in any namespace, so the next
    open exports its writes. (Mutation: owner = os.getpid() with a pid check, as before:
    the writes stay pending.) Needs unshare(1) and root; skips otherwise."""
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0 or probe.stdout.strip() != "1":
        pytest.skip(f"no new pid namespace here: {probe.stderr.strip()[:100]}")
    code = (
        "import os, sys, time\n"
        "from git_taskstore import Store\n"
        "s = Store.open(sys.argv[1], debounce_ms=600_000)\n"
        "s.collection('t').put({'id': 'boxed', 'pid': os.getpid()})\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    writer = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", sys.executable, "-c", code, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        with Store.open(tmp_path) as other:
            assert other.exported_at_open == {}  # alive: its own debounce exports it
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    deadline = time.monotonic() + 10
    while True:  # until the kernel has ended the writer inside the namespace
        with Store.open(tmp_path) as store:
            if store.exported_at_open or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    with Store.open(tmp_path) as store:
        assert store.pending() == {}
        record = store.collection("t").get("boxed")
        assert record is not None and record["pid"] == 1
    assert b'"boxed"' in (tmp_path / ".taskstore" / "t.jsonl").read_bytes()
