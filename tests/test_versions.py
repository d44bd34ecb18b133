"""Immutable and set-once records, and versions derived from a record's own fields
(issue 14): what the store refuses, and what it writes (no updated_at it was not asked for),
through writes, a raw append, and a real git merge."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
from testing import commit_all, git
from testing.repos import new_repo, on_branch

from git_taskstore import Record, Store, ValidationError, VersionConflictError


@dataclass
class Event(Record):
    collection_name: ClassVar[str] = "events"
    immutable: ClassVar[bool] = True
    loop_id: str = ""
    text: str = ""


@dataclass
class Signal(Record):
    collection_name: ClassVar[str] = "signals"
    immutable: ClassVar[bool] = True
    set_once: ClassVar[tuple[str, ...]] = ("acknowledged_at",)
    loop_id: str = ""
    kind: str = ""
    acknowledged_at: int | None = None


@dataclass
class Job(Record):
    collection_name: ClassVar[str] = "jobs"
    versioned_by: ClassVar[tuple[str, ...]] = ("completed_at", "created_at")
    tool: str = ""
    completed_at: int | None = None
    result: str | None = None


@dataclass
class Note(Record):
    """Mutable, stamped as usual, with one set-once field."""

    collection_name: ClassVar[str] = "notes"
    set_once: ClassVar[tuple[str, ...]] = ("closed_by",)
    text: str = ""
    closed_by: str | None = None


def lines(store: Store, collection: str) -> list[dict[str, object]]:
    with open(store.file_path(collection), encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_an_immutable_record_refuses_every_change_and_writes_no_updated_at(store: Store) -> None:
    event = store.create(Event(id="e1", loop_id="l1", text="started"))
    assert lines(store, "events") == [
        {"id": "e1", "created_at": event.created_at, "loop_id": "l1", "text": "started"}
    ]
    assert event.updated_at == event.created_at  # its version: created_at
    for change in ({"text": "edited"}, {"loop_id": "l2"}, {"created_at": 5}):
        changed = Event(**{**vars(store.get(Event, "e1")), **change})  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="Event e1 is immutable"):
            store.update(changed)
        with pytest.raises(ValidationError, match="immutable"):
            store.put(changed)
        with pytest.raises(ValidationError, match="immutable"), store.batch():
            store.put(changed)
    assert len(lines(store, "events")) == 1
    # Writing it again as it is changes nothing that matters; deleting it is allowed.
    same = store.get(Event, "e1")
    assert same is not None
    store.put(same)
    assert store.delete(Event, "e1")
    assert store.get(Event, "e1") is None


def test_a_set_once_field_is_set_once_and_the_rest_stays_frozen(store: Store) -> None:
    signal = store.create(Signal(id="s1", loop_id="l1", kind="stop"))
    assert "acknowledged_at" not in lines(store, "signals")[0]
    signal.acknowledged_at = 1_000
    store.update(signal)
    assert store.get(Signal, "s1") == signal
    signal.acknowledged_at = 2_000
    with pytest.raises(ValidationError, match="acknowledged_at is set once, and holds 1000"):
        store.update(signal)
    signal.acknowledged_at = None
    with pytest.raises(ValidationError, match="set once"):
        store.update(signal)
    signal = store.get(Signal, "s1")  # type: ignore[assignment]
    signal.kind = "go"
    with pytest.raises(ValidationError, match="Signal s1 is immutable: kind"):
        store.update(signal)
    assert [line.get("acknowledged_at") for line in lines(store, "signals")] == [None, 1_000]
    assert all("updated_at" not in line for line in lines(store, "signals"))


def test_set_once_on_a_mutable_class_leaves_the_other_fields_free(store: Store) -> None:
    note = store.create(Note(id="n1", text="a"))
    note.text, note.closed_by = "b", "ann"
    store.update(note)
    note.text = "c"
    store.update(note)
    note.closed_by = "bob"
    with pytest.raises(ValidationError, match="closed_by is set once"):
        store.update(note)
    assert all("updated_at" in line for line in lines(store, "notes"))


def test_a_derived_version_is_what_the_typed_record_reads_and_expects(store: Store) -> None:
    job = store.create(Job(id="j1", tool="grep"))
    assert job.updated_at == job.created_at
    read = store.get(Job, "j1")
    assert read is not None and read.updated_at == job.created_at
    read.completed_at, read.result = job.created_at + 50, "ok"
    store.update(read, expect_version=job.created_at)
    again = store.get(Job, "j1")
    assert again is not None and again.updated_at == job.created_at + 50 == read.updated_at
    with pytest.raises(VersionConflictError, match=f"at version {job.created_at + 50}"):
        store.update(again, expect_version=job.created_at)
    # The store's own field times ride along (stripped on reads), but no updated_at.
    assert [sorted(line) for line in lines(store, "jobs")] == [
        ["created_at", "id", "tool"],
        ["_times", "completed_at", "created_at", "id", "result", "tool"],
    ]


def test_a_line_without_updated_at_reads_as_the_version_the_store_used(store: Store) -> None:
    """A legacy line (created_at only) read by a stamped class: its version is its
    created_at, the one the store orders it by, not 0; expect_version agrees."""
    from testing.stores import Task

    with open(store.file_path("tasks"), "w", encoding="utf-8") as handle:
        handle.write('{"id":"t1","title":"legacy","created_at":1700000000000}\n')
    task = store.get(Task, "t1")
    assert task is not None and task.updated_at == 1_700_000_000_000
    task.title = "new"
    store.update(task, expect_version=task.updated_at)
    assert task.updated_at > 1_700_000_000_000


def test_an_unstamped_write_after_a_stamped_line_is_stamped_to_win(store: Store) -> None:
    """A record whose current line has an updated_at above the new line's version would
    hide the write: the store stamps that one write so it wins, and says so in the line."""
    store.collection("jobs").put({"id": "j1", "tool": "x", "created_at": 100})
    job = store.get(Job, "j1")
    assert job is not None
    job.result = "later"
    store.update(job)
    assert store.get(Job, "j1").result == "later"  # type: ignore[union-attr]
    assert "updated_at" in lines(store, "jobs")[-1]
    Path(store.path, "taskstore.db").unlink()  # the file alone says the same
    with Store.open_dir(store.path) as fresh:
        assert fresh.get(Job, "j1").result == "later"  # type: ignore[union-attr]


def test_a_recreated_immutable_record_starts_a_new_life(store: Store) -> None:
    store.create(Event(id="e1", text="first"))
    store.delete(Event, "e1")
    store.create(Event(id="e1", text="second"))
    assert store.get(Event, "e1").text == "second"  # type: ignore[union-attr]
    Path(store.path, "taskstore.db").unlink()
    with Store.open_dir(store.path) as fresh:
        assert fresh.get(Event, "e1").text == "second"  # type: ignore[union-attr]


@pytest.mark.slow
def test_acknowledgements_and_completions_merge_through_git(tmp_path: Path) -> None:
    """Two branches: one acknowledges a signal and completes a job, the other adds
    events and a signal. git merges with the store's driver; every write is there, and
    no line gained an updated_at."""
    repo = new_repo(tmp_path / "repo")
    with on_branch(repo, "main") as store:
        store.create(Signal(id="s1", loop_id="l1", kind="stop"))
        store.create(Job(id="j1", tool="grep"))
        store.create(Event(id="e1", text="start"))
    with on_branch(repo, "ack", "main") as store:
        signal = store.get(Signal, "s1")
        assert signal is not None
        signal.acknowledged_at = 5
        store.update(signal)
        job = store.get(Job, "j1")
        assert job is not None
        job.completed_at, job.result = job.created_at + 1, "ok"
        store.update(job)
    with on_branch(repo, "more", "main") as store:
        store.create(Event(id="e2", text="more"))
        store.create(Signal(id="s2", loop_id="l1", kind="go"))
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--no-edit", "ack")
    git(repo, "merge", "-q", "--no-edit", "more")
    commit_all(repo, "merged")
    with Store.open(repo, create=False) as store:
        assert store.get(Signal, "s1").acknowledged_at == 5  # type: ignore[union-attr]
        assert store.get(Job, "j1").result == "ok"  # type: ignore[union-attr]
        assert {e.id for e in store.list(Event)} == {"e1", "e2"}
        assert {s.id for s in store.list(Signal)} == {"s1", "s2"}
        for collection in ("signals", "jobs", "events"):
            assert all("updated_at" not in line for line in lines(store, collection))


@pytest.mark.slow
@pytest.mark.parametrize("into", ["a", "b"])
def test_the_later_of_two_acknowledgements_wins_the_merge_either_way(
    tmp_path: Path, into: str
) -> None:
    """Both writes share the signal's one version; their field times (the time of each
    write) decide, whichever branch git merges into which."""
    repo = new_repo(tmp_path / "repo")
    with on_branch(repo, "main") as store:
        store.create(Signal(id="s1", loop_id="l1", kind="stop"))
    for branch, when in (("a", 5), ("b", 6)):
        with on_branch(repo, branch, "main") as store:
            store.modify(Signal, "s1", lambda s, when=when: setattr(s, "acknowledged_at", when))
    git(repo, "checkout", "-q", into)
    git(repo, "merge", "-q", "--no-edit", "b" if into == "a" else "a")
    with Store.open(repo, create=False) as store:
        assert store.get(Signal, "s1").acknowledged_at == 6  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_typed_write_after_a_dict_level_one_wins_the_merge(tmp_path: Path) -> None:
    """Found by review: a dict-level put stamps updated_at (the clock) on a job; a later
    typed write of the same field on another branch, without updated_at, lost the merge
    to it in silence. Its field time is the time of the write now."""
    repo = new_repo(tmp_path / "repo")
    with on_branch(repo, "main") as store:
        store.create(Job(id="j1", tool="grep"))
    with on_branch(repo, "a", "main") as store:
        store.collection("jobs").put({"id": "j1", "result": "a"}, merge=True)
    time.sleep(0.01)
    with on_branch(repo, "b", "main") as store:
        job = store.get(Job, "j1")
        assert job is not None
        job.result = "b"
        store.put(job)
    for into, other in (("a", "b"), ("b", "a")):
        git(repo, "checkout", "-q", into)
        git(repo, "merge", "-q", "--no-edit", other)
        with Store.open(repo, create=False) as store:
            assert store.get(Job, "j1").result == "b", into  # type: ignore[union-attr]
        git(repo, "reset", "-q", "--hard", "HEAD~1")


def test_a_held_back_write_does_not_beat_a_later_write_of_another_process(
    tmp_path: Path,
) -> None:
    """Found by review: in debounced mode a pending write of a self-versioned record
    reached the file after another writer's later write, and won by coming later (their
    versions tie). Held back, it is stamped, and the later write outranks it."""
    held = Store.open(tmp_path, debounce_ms=60_000)
    direct = Store.open(tmp_path)
    try:
        held.put(Job(id="j1", tool="grep", result="held"))
        job = direct.get(Job, "j1")
        assert job is not None and job.result == "held"
        job.result = "direct"
        direct.update(job)
        held.close()
        assert direct.get(Job, "j1").result == "direct"  # type: ignore[union-attr]
    finally:
        held.close()
        direct.close()
    Path(tmp_path, ".taskstore", "taskstore.db").unlink()
    with Store.open(tmp_path) as fresh:
        assert fresh.get(Job, "j1").result == "direct"  # type: ignore[union-attr]


def test_set_once_and_versioned_by_name_fields_of_the_class(store: Store) -> None:
    @dataclass
    class Typo(Record):
        collection_name: ClassVar[str] = "typos"
        set_once: ClassVar[tuple[str, ...]] = ("closed_byy",)
        closed_by: str | None = None

    with pytest.raises(ValidationError, match=r"Typo.set_once names 'closed_byy'"):
        store.create(Typo(id="t1"))
    assert store.collections() == []


@dataclass
class Reading(Record):
    collection_name: ClassVar[str] = "readings"
    immutable: ClassVar[bool] = True
    set_once: ClassVar[tuple[str, ...]] = ("checked_at",)
    value: float = 0.0
    checked_at: int | None = None


def test_an_immutable_record_can_be_acknowledged_whatever_its_line_held(store: Store) -> None:
    """Found by review: a float field written as 3 read back as 3.0 and counted as a
    change; a line without created_at had one filled in, which counted as a change too."""
    store.collection("readings").put_many(
        [{"id": "r1", "value": 3, "created_at": 5}, {"id": "r2", "value": 1.5}]
    )
    with open(store.file_path("readings"), "a", encoding="utf-8") as handle:
        handle.write('{"id": "r3", "value": 2}\n')  # a legacy line: no times at all
    for rid in ("r1", "r2", "r3"):
        store.modify(Reading, rid, lambda r: setattr(r, "checked_at", 9))
        assert store.get(Reading, rid).checked_at == 9  # type: ignore[union-attr]
    reading = store.get(Reading, "r1")
    assert reading is not None
    reading.value = 4.0
    with pytest.raises(ValidationError, match="immutable: value cannot change"):
        store.update(reading)
