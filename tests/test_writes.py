"""Batched and debounced writes.

Batches: ``with store.batch()``, ``put_many`` and ``create_many`` validate every record
first, then write with one lock, one append per file and one SQLite transaction, or not at
all. One fsync is not observable from a test; one append and one lock are, indirectly: the
file grows by exactly the batch's lines, and the lines of concurrent batches never
interleave.

Debounced mode: a write is acknowledged once it is durable in the SQLite cache and marked
pending; it reaches the JSONL after N ms without writes, on flush(), close(), at exit, by
``git taskstore flush`` and by the pre-commit hook, and survives SIGKILL, checkouts and
merges. Those tests drive real processes: a writer child that takes one command per line
on stdin and answers one JSON line per command.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from testing import cli, commit_all, git, init_repo

from git_taskstore import (
    AlreadyExistsError,
    ConflictMarkersError,
    Filter,
    NotFoundError,
    Op,
    Record,
    Store,
    TaskstoreError,
    ValidationError,
)
from git_taskstore.gcpause import gc_pause
from git_taskstore.store import GC_PAUSE_MIN

READ_TIMEOUT_S = 60.0
LONG_DEBOUNCE_MS = 600_000  # never fires during a test: only explicit exports count
VENV_BIN = str(Path(sys.executable).parent)


# --- helpers ------------------------------------------------------------------------------


def jsonl_path(root: Path, collection: str) -> Path:
    return root / ".taskstore" / f"{collection}.jsonl"


def file_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def file_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, parsed (a line that does not parse fails the test)."""
    data = file_bytes(path) or b""
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def current_in_file(path: Path) -> dict[str, dict[str, Any]]:
    """The current version of each id by the file's rule: greatest updated_at, later
    line on a tie; tombstones included."""
    out: dict[str, dict[str, Any]] = {}
    for record in file_records(path):
        held = out.get(record["id"])
        if held is None or record["updated_at"] >= held["updated_at"]:
            out[record["id"]] = record
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


WRITER = r"""
import json, os, sys
from git_taskstore import Store

debounce = int(sys.argv[2]) if len(sys.argv) > 2 else None
store = Store.open(sys.argv[1], debounce_ms=debounce)
print(json.dumps({"exported_at_open": store.exported_at_open}), flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    op = cmd.pop("op")
    if op == "quit":
        break  # a normal exit without close(): atexit must export
    if op == "die":
        os._exit(0)  # no atexit: pending writes stay in the cache
    try:
        if op == "put":
            out = store.collection(cmd["collection"]).put(cmd["record"])
        elif op == "delete":
            out = store.collection(cmd["collection"]).delete(cmd["id"])
        elif op == "get":
            out = store.collection(cmd["collection"]).get(cmd["id"])
        elif op == "list":
            out = store.collection(cmd["collection"]).list()
        elif op == "flush":
            out = store.flush()
        elif op == "pending":
            out = store.pending()
        elif op == "close":
            out = store.close()
        else:
            out = {"error": "unknown op " + op}
    except Exception as exc:
        out = {"error": type(exc).__name__ + ": " + str(exc)}
    print(json.dumps({"out": out}), flush=True)
"""


class Child:
    """A child process whose stdout lines are read by a thread, with timeouts."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            args,
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)

    def read(self, timeout: float = READ_TIMEOUT_S) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no answer from the child in {timeout}s") from None
        if line is None:
            code = self.proc.wait(timeout=READ_TIMEOUT_S)
            time.sleep(0.05)  # let the stderr pump catch up
            raise AssertionError(f"the child ended (exit {code}): {''.join(self.stderr)}")
        return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def wait(self) -> int:
        code = self.proc.wait(timeout=READ_TIMEOUT_S)
        time.sleep(0.05)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=READ_TIMEOUT_S)


class Writer(Child):
    """A process holding a store open, debounced unless told otherwise."""

    def __init__(
        self,
        root: Path,
        debounce_ms: int | None = LONG_DEBOUNCE_MS,
        env: dict[str, str] | None = None,
    ) -> None:
        args = [sys.executable, "-c", WRITER, str(root)]
        if debounce_ms is not None:
            args.append(str(debounce_ms))
        super().__init__(args, root, env)
        self.hello = json.loads(self.read())

    def call(self, op: str, **kwargs: Any) -> Any:
        self.send(json.dumps({"op": op, **kwargs}))
        out = json.loads(self.read())["out"]
        if isinstance(out, dict) and set(out) == {"error"}:
            raise AssertionError(f"{op} failed in the child: {out['error']}")
        return out

    def put(self, collection: str, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.call("put", collection=collection, record=record)
        return out

    def quit(self) -> int:
        """End normally without close(); return the exit code."""
        self.send(json.dumps({"op": "quit"}))
        return self.wait()

    def die(self) -> int:
        """End with os._exit: no close(), no atexit."""
        self.send(json.dumps({"op": "die"}))
        return self.wait()


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


@dataclass(kw_only=True)
class Task(Record):
    collection_name: ClassVar[str] = "tasks"
    indexed_fields: ClassVar[tuple[str, ...]] = ("status",)
    id_prefix: ClassVar[str] = "task-"
    title: str = ""
    status: str = "open"

    def validate(self) -> None:
        if not self.title.strip():
            raise ValidationError(f"task {self.id!r} has no title")


def typed_lines(store: Store, collection: str) -> list[dict[str, Any]]:
    return file_records(Path(store.file_path(collection)))


# --- batches: validated first, all or nothing ------------------------------------------------


BAD_RECORDS = pytest.mark.parametrize(
    "bad",
    [
        {"id": ""},
        {"id": "  "},
        {"title": "no id"},
        {"id": "x" * 257},
        {"id": "nan", "score": float("nan")},
        {"id": "deep", "a": [{"b": float("inf")}]},
        {"id": "set", "tags": {1, 2}},
        ["not", "a", "dict"],
    ],
    ids=["empty-id", "blank-id", "no-id", "long-id", "nan", "nested-inf", "not-json", "list"],
)


@BAD_RECORDS
def test_a_bad_record_inside_a_batch_raises_there_and_nothing_is_written(
    store: Store, bad: dict[str, Any]
) -> None:
    tasks = store.collection("tasks")
    tasks.put({"id": "seed", "v": 0})
    path = Path(store.file_path("tasks"))
    before = path.read_bytes()
    reached = []
    with pytest.raises(ValidationError), store.batch():
        tasks.put({"id": "ok-1", "v": 1})
        store.collection("notes").put({"id": "n-1"})
        tasks.put(bad)
        reached.append("after the bad record")  # the bad put raises inside the block
    assert reached == []
    assert path.read_bytes() == before
    assert not Path(store.file_path("notes")).exists()
    assert tasks.get("ok-1") is None and tasks.count() == 1
    assert store.collection("notes").count() == 0


@BAD_RECORDS
def test_a_bad_put_caught_inside_a_batch_leaves_the_rest_of_it(store: Store, bad: Any) -> None:
    # The put joins the request of the put before it (one request for a loop of puts):
    # refused, it must leave nothing of itself there.
    tasks = store.collection("tasks")
    with store.batch():
        first = tasks.put({"id": "a", "v": 1})
        with pytest.raises(ValidationError):
            tasks.put(bad)
        second = tasks.put({"id": "b", "v": 2})
        assert tasks.get("a") is None
    assert file_records(Path(store.file_path("tasks"))) == [first, second]
    assert first["updated_at"] == second["updated_at"] == first["created_at"]


def test_a_big_batch_pauses_the_cycle_collector_until_it_is_written(store: Store) -> None:
    tasks = store.collection("tasks")
    with store.batch():
        for i in range(GC_PAUSE_MIN):
            tasks.put({"id": f"t{i}"})
        assert gc.isenabled()  # a batch of a few records never pauses it
        tasks.put({"id": "one-more"})
        assert not gc.isenabled()
    assert gc.isenabled() and tasks.count() == GC_PAUSE_MIN + 1
    with pytest.raises(KeyError), store.batch():
        tasks.put_many([{"id": f"u{i}"} for i in range(GC_PAUSE_MIN + 1)])
        assert not gc.isenabled()
        raise KeyError("the block fails")
    assert gc.isenabled() and tasks.count() == GC_PAUSE_MIN + 1
    gc.disable()  # paused by the caller: left paused
    try:
        with store.batch():
            tasks.put_many([{"id": f"v{i}"} for i in range(GC_PAUSE_MIN + 1)])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_pauses_of_the_cycle_collector_are_counted() -> None:
    # A batch in one thread, a rebuild in another: the collector runs again when the
    # last pause ends, not the first.
    gc_pause.begin()
    gc_pause.begin()
    gc_pause.end()
    assert not gc.isenabled()
    gc_pause.end()
    assert gc.isenabled()


def test_one_bad_record_in_put_many_writes_none_and_names_it(store: Store) -> None:
    tasks = store.collection("tasks")
    tasks.put({"id": "seed"})
    before = Path(store.file_path("tasks")).read_bytes()
    with pytest.raises(ValidationError, match=r"record 3: .*NaN"):
        tasks.put_many([{"id": "a"}, {"id": "b"}, {"id": "c", "x": float("-inf")}, {"id": "d"}])
    assert Path(store.file_path("tasks")).read_bytes() == before
    assert tasks.count() == 1


def test_a_refused_create_at_the_end_writes_nothing_in_any_collection(store: Store) -> None:
    tasks, notes = store.collection("tasks"), store.collection("notes")
    tasks.put({"id": "taken", "v": 1})
    notes.put({"id": "n-0"})
    before = {name: Path(store.file_path(name)).read_bytes() for name in ("tasks", "notes")}
    with pytest.raises(AlreadyExistsError, match="tasks/taken already exists"), store.batch():
        notes.put({"id": "n-1"})  # an earlier collection in the batch...
        notes.put({"id": "n-2"})
        tasks.put({"id": "fresh"})
        tasks.create({"id": "taken", "v": 2})  # ...refused only when the batch ends
    after = {name: Path(store.file_path(name)).read_bytes() for name in ("tasks", "notes")}
    assert after == before
    assert notes.get("n-1") is None and tasks.get("fresh") is None
    assert tasks.get("taken")["v"] == 1  # type: ignore[index]


def test_a_refused_update_at_the_end_writes_nothing_in_any_collection(store: Store) -> None:
    tasks, notes = store.collection("tasks"), store.collection("notes")
    tasks.put({"id": "a"})
    before = Path(store.file_path("tasks")).read_bytes()
    with pytest.raises(NotFoundError, match="notes/missing not found"), store.batch():
        tasks.put({"id": "b"})
        tasks.delete("a")
        notes.update({"id": "missing", "v": 1})
    assert Path(store.file_path("tasks")).read_bytes() == before
    assert not Path(store.file_path("notes")).exists()
    assert tasks.get("a") is not None and tasks.get("b") is None


def test_create_twice_in_one_batch_is_refused_as_a_whole(store: Store) -> None:
    tasks = store.collection("tasks")
    with pytest.raises(AlreadyExistsError), store.batch():
        tasks.create({"id": "a", "v": 1})
        tasks.create({"id": "a", "v": 2})
    assert not Path(store.file_path("tasks")).exists()
    # update of a record created earlier in the same batch is fine
    with store.batch():
        tasks.create({"id": "a", "v": 1})
        tasks.update({"id": "a", "v": 2})
    assert tasks.get("a")["v"] == 2  # type: ignore[index]
    versions = [r["updated_at"] for r in file_records(Path(store.file_path("tasks")))]
    assert len(versions) == 2 and versions[1] > versions[0]


def test_an_exception_in_the_block_discards_every_held_write(store: Store) -> None:
    tasks = store.collection("tasks")
    tasks.put({"id": "seed"})
    before = Path(store.file_path("tasks")).read_bytes()
    with pytest.raises(RuntimeError, match="changed my mind"), store.batch():
        tasks.put({"id": "a"})
        tasks.delete("seed")
        raise RuntimeError("changed my mind")
    assert Path(store.file_path("tasks")).read_bytes() == before
    assert tasks.get("seed") is not None and tasks.get("a") is None
    # and the thread is out of the batch: the next write goes through at once
    tasks.put({"id": "b"})
    assert tasks.get("b") is not None


def test_a_batch_appends_exactly_its_lines_once_at_the_end(store: Store) -> None:
    tasks, notes = store.collection("tasks"), store.collection("notes")
    tasks.put_many([{"id": f"old-{i}", "n": i} for i in range(5)])
    path = Path(store.file_path("tasks"))
    before = path.read_bytes()
    with store.batch():
        for i in range(50):
            tasks.put({"id": f"t-{i}", "n": i})
        tasks.put({"id": "old-1", "n": 100}, merge=True)
        tasks.delete("old-2")
        tasks.delete("never-was")  # no live record: no line
        notes.put({"id": "n-1"})
        assert path.read_bytes() == before  # nothing yet, however many writes
    after = path.read_bytes()
    assert after.startswith(before)
    added = [json.loads(line) for line in after[len(before) :].splitlines()]
    assert [r["id"] for r in added] == [f"t-{i}" for i in range(50)] + ["old-1", "old-2"]
    assert added[-1]["deleted"] is True
    assert len(set(r["updated_at"] for r in added[:50])) == 1  # one stamp for the batch
    assert tasks.count() == 5 - 1 + 50
    assert len(file_records(Path(store.file_path("notes")))) == 1


def test_reads_inside_a_batch_do_not_see_held_writes(store: Store) -> None:
    tasks = store.collection("tasks")
    tasks.put({"id": "a", "v": 1})
    with store.batch():
        out = tasks.put({"id": "b", "v": 1})
        again = tasks.put({"id": "b", "v": 2})
        tasks.put({"id": "a", "v": 2})
        tasks.delete("a")
        assert tasks.get("b") is None
        assert tasks.get("a")["v"] == 1  # type: ignore[index]
        assert tasks.count() == 1
        assert out["updated_at"] == again["updated_at"]  # the time the batch began
    # The caller's dicts show what was written: the second put of b follows the first.
    assert again["updated_at"] == out["updated_at"] + 1
    assert again["created_at"] == out["created_at"]
    assert tasks.get("b") == again
    assert tasks.get("a") is None


def test_a_batch_holds_only_its_own_threads_writes(store: Store) -> None:
    tasks = store.collection("tasks")
    other_done = threading.Event()

    def other() -> None:
        tasks.put({"id": "from-other-thread"})
        other_done.set()

    with store.batch():
        tasks.put({"id": "held"})
        thread = threading.Thread(target=other)
        thread.start()
        assert other_done.wait(30)
        thread.join()
        assert tasks.get("from-other-thread") is not None  # not held by our batch
        assert tasks.get("held") is None
    assert tasks.get("held") is not None


def test_nested_batches_apply_once_at_the_outer_end(store: Store) -> None:
    tasks = store.collection("tasks")
    path = Path(store.file_path("tasks"))
    with store.batch():
        tasks.put({"id": "outer-1"})
        with store.batch():
            tasks.put({"id": "inner-1"})
            with store.batch():
                tasks.put({"id": "innermost"})
        assert not path.exists()  # the inner ends wrote nothing
        tasks.put({"id": "outer-2"})
    ids = [r["id"] for r in file_records(path)]
    assert ids == ["outer-1", "inner-1", "innermost", "outer-2"]
    assert len({r["updated_at"] for r in file_records(path)}) == 1


def test_an_inner_batch_that_raises_discards_its_writes_only(store: Store) -> None:
    tasks = store.collection("tasks")
    with store.batch():
        tasks.put({"id": "kept-1"})
        try:
            with store.batch():
                tasks.put({"id": "dropped"})
                raise KeyError("inner")
        except KeyError:
            pass
        tasks.put({"id": "kept-2"})
    ids = [r["id"] for r in file_records(Path(store.file_path("tasks")))]
    assert ids == ["kept-1", "kept-2"]


def test_an_inner_exception_left_to_propagate_discards_the_whole_batch(store: Store) -> None:
    tasks = store.collection("tasks")
    with pytest.raises(KeyError), store.batch():
        tasks.put({"id": "outer"})
        with store.batch():
            tasks.put({"id": "inner"})
            raise KeyError("inner")
    assert not Path(store.file_path("tasks")).exists()


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "store-per-thread"])
def test_eight_threads_batching_at_once_lose_nothing(tmp_path: Path, shared: bool) -> None:
    threads, per_thread = 8, 200
    main = Store.open(tmp_path)
    stores = [main if shared else Store.open(tmp_path) for _ in range(threads)]
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            store = stores[index]
            tasks = store.collection("tasks")
            barrier.wait(timeout=60)
            with store.batch():
                for i in range(per_thread):
                    tasks.put({"id": f"w{index}-{i:03d}", "thread": index, "i": i})
                # every thread also writes one record in common: the bump rule must give
                # each batch a version above the one before, under one lock
                tasks.put({"id": "shared", "last": index}, merge=True)
                store.collection(f"per_thread_{index}").put({"id": "x"})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not errors, errors
    path = Path(main.file_path("tasks"))
    lines = file_records(path)
    assert len(lines) == threads * (per_thread + 1)
    # Each batch went in with one append: its lines are contiguous, never interleaved.
    runs: list[int] = []
    for record in lines:
        owner = record.get("thread", record.get("last"))
        if not runs or runs[-1] != owner:
            runs.append(owner)
    assert sorted(runs) == list(range(threads)), runs
    # The shared record's versions strictly increase in file order.
    shared_versions = [r["updated_at"] for r in lines if r["id"] == "shared"]
    assert shared_versions == sorted(set(shared_versions))
    assert main.collection("tasks").get("shared")["last"] == runs[-1]  # type: ignore[index]
    # The cache agrees with the file, before and after a full rebuild.
    assert main.collection("tasks").count() == threads * per_thread + 1
    main.sync(full=True)
    assert main.collection("tasks").count() == threads * per_thread + 1
    for index in range(threads):
        assert main.collection(f"per_thread_{index}").count() == 1
    for store in {id(s): s for s in stores}.values():
        store.close()


# --- create_many: typed --------------------------------------------------------------------


def test_create_many_sets_ids_and_timestamps_on_the_objects(store: Store) -> None:
    tasks = [Task(title=f"task {i}") for i in range(20)] + [Task(id="mine", title="named")]
    returned = store.create_many(tasks)
    assert returned == tasks
    assert all(t.id.startswith("task-") for t in tasks[:20]) and tasks[20].id == "mine"
    assert len({t.id for t in tasks}) == 21
    stamps = {t.updated_at for t in tasks}
    assert len(stamps) == 1 and stamps.pop() > 0
    assert all(t.created_at == t.updated_at for t in tasks)
    lines = typed_lines(store, "tasks")
    assert [(r["id"], r["created_at"], r["updated_at"]) for r in lines] == [
        (t.id, t.created_at, t.updated_at) for t in tasks
    ]
    assert store.get(Task, "mine") == tasks[20]
    assert store.count(Task) == 21


def test_create_many_with_one_invalid_record_writes_nothing(store: Store) -> None:
    store.create(Task(id="seed", title="seed"))
    before = Path(store.file_path("tasks")).read_bytes()
    batch = [Task(title="fine"), Task(title="   "), Task(title="fine too")]
    with pytest.raises(ValidationError, match="has no title"):
        store.create_many(batch)
    assert Path(store.file_path("tasks")).read_bytes() == before
    assert all(t.updated_at == 0 for t in batch)  # validated before anything was planned


def test_create_many_of_an_existing_id_writes_nothing(store: Store) -> None:
    store.create(Task(id="seed", title="seed"))
    before = Path(store.file_path("tasks")).read_bytes()
    with pytest.raises(AlreadyExistsError, match="tasks/seed"):
        store.create_many([Task(title="new"), Task(id="seed", title="again")])
    assert Path(store.file_path("tasks")).read_bytes() == before
    assert store.count(Task) == 1


def test_create_many_inside_a_batch_joins_it(store: Store) -> None:
    with store.batch():
        made = store.create_many([Task(title="a"), Task(title="b")])
        store.collection("notes").put({"id": "n"})
        assert store.count(Task) == 0
    assert store.count(Task) == 2
    assert all(t.updated_at > 0 for t in made)


@dataclass(kw_only=True)
class Note(Record):
    collection_name: ClassVar[str] = "notes"
    text: str = ""


def test_create_many_of_mixed_types_is_one_stamp_and_numbers_records_in_the_list(
    store: Store,
) -> None:
    made = store.create_many([Task(title="a"), Note(text="n"), Note(text="m"), Task(title="b")])
    assert len({r.updated_at for r in made}) == 1
    assert store.count(Task) == 2 and store.count(Note) == 2
    with pytest.raises(ValidationError, match=r"record 3: field 'bad' holds NaN"):
        store.create_many(
            [Task(title="c"), Note(text="ok"), Note(text="x", extra_fields={"bad": float("nan")})]
        )
    assert store.count(Task) == 2 and store.count(Note) == 2


def test_to_dict_writes_declared_fields_only_whatever_the_instance_holds() -> None:
    # to_dict copies the instance's dict when it holds exactly the declared fields; a
    # field deleted and set again, or an attribute set on the instance, must not change
    # what is written.
    task = Task(id="t", title="x")
    assert list(task.to_dict()) == ["id", "created_at", "updated_at", "title", "status"]
    del task.title
    task.title = "y"
    task.extra_fields["more"] = 1
    written = {"id": "t", "created_at": 0, "updated_at": 0, "title": "y", "status": "open"}
    assert task.to_dict() == {**written, "more": 1}
    task._seen = True  # type: ignore[attr-defined]
    assert task.to_dict() == {**written, "more": 1}
    assert list(task.to_dict()) == ["id", "created_at", "updated_at", "title", "status", "more"]


@dataclass(kw_only=True)
class Shouting(Record):
    """A record class with a to_dict of its own."""

    collection_name: ClassVar[str] = "shouts"
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "text": self.text.upper()}


def test_create_many_writes_what_to_dict_gives(store: Store) -> None:
    # create_many looks up what a class needs once for all its records: a field set
    # again, extra fields and a to_dict of the class's own must come out as to_dict gives.
    plain, again, extra = Task(id="p", title="x"), Task(id="a"), Task(id="e", title="z")
    del again.title
    again.title = "set again"
    extra.extra_fields["more"] = 1
    shouts = [Shouting(id="s", text="hi")]
    expected = [r.to_dict() for r in (plain, again, extra)] + [{**shouts[0].to_dict()}]
    store.create_many([plain, again, extra, *shouts])
    written = typed_lines(store, "tasks") + typed_lines(store, "shouts")
    stamps = ("created_at", "updated_at")
    assert [{k: v for k, v in r.items() if k not in stamps} for r in written] == [
        {k: v for k, v in r.items() if k not in stamps} for r in expected
    ]
    assert written[-1]["text"] == "HI"


def test_a_batch_stamps_after_a_version_written_meanwhile(tmp_path: Path) -> None:
    # The batch's records carry the time it began; an id that another writer gave a later
    # version before the batch ended gets a version after that one, keeping its created_at.
    store = Store.open(tmp_path)
    other = Store.open(tmp_path)
    tasks = store.collection("tasks")
    with store.batch():
        began = tasks.put({"id": "new", "v": 1})["updated_at"]
        out = tasks.put({"id": "x", "v": 1})
        later = began + 60_000
        other.import_data({"tasks": [{"id": "x", "v": 0, "created_at": 5, "updated_at": later}]})
    assert tasks.get("new")["updated_at"] == began  # type: ignore[index]
    assert tasks.get("x") == out
    assert (out["v"], out["created_at"], out["updated_at"]) == (1, 5, later + 1)
    other.close()
    store.close()


# --- debounced mode, in one process ---------------------------------------------------------


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
    Store.open(tmp_path).close()
    for value in ("soon", "1.5", "10ms"):
        monkeypatch.setenv("TASKSTORE_DEBOUNCE_MS", value)
        with pytest.raises(ValidationError) as info:
            Store.open(tmp_path)
        assert "TASKSTORE_DEBOUNCE_MS" in str(info.value) and repr(value) in str(info.value)
        assert "milliseconds" in str(info.value)
        result = cli("list", "tasks", cwd=tmp_path)
        assert result.code == 1, result
        assert result.err.startswith("error: TASKSTORE_DEBOUNCE_MS must be a number"), result
        assert "Traceback" not in result.err
    monkeypatch.setenv("TASKSTORE_DEBOUNCE_MS", "600000")
    with Store.open(tmp_path) as store:
        store.collection("tasks").put({"id": "a"})
        assert store.pending() == {"tasks": 1}  # the variable turns debouncing on
    monkeypatch.setenv("TASKSTORE_DEBOUNCE_MS", "")
    with Store.open(tmp_path) as store:
        store.collection("tasks").put({"id": "b"})
        assert store.pending() == {}  # empty: off


# --- debounced mode, real processes ---------------------------------------------------------


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
