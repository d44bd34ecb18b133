"""batch.py and the batch writes: put_many, create_many, ``with store.batch()``.

Validated first, then one lock, one append per file and one SQLite transaction, or
nothing at all.
"""

from __future__ import annotations

import gc
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from testing.writers import (
    Task,
    file_records,
    typed_lines,
)

from git_taskstore import (
    AlreadyExistsError,
    NotFoundError,
    Record,
    Store,
    ValidationError,
)
from git_taskstore.gcpause import gc_pause
from git_taskstore.store import GC_PAUSE_MIN

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
