"""Immutable and set-once records, and versions derived from a record's own fields
(issue 14): what the store refuses, and what it writes (no updated_at it was not asked for),
through writes, a raw append, and a real git merge."""

from __future__ import annotations

import json
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
    assert [sorted(line) for line in lines(store, "jobs")] == [
        ["created_at", "id", "tool"],
        ["completed_at", "created_at", "id", "result", "tool"],
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
def test_two_branches_acknowledging_one_signal_differently_conflict(tmp_path: Path) -> None:
    """Both at the signal's one version: neither write is newer, so the driver reports a
    conflict (git's exit 1) rather than keep one acknowledgement silently."""
    repo = new_repo(tmp_path / "repo")
    with on_branch(repo, "main") as store:
        store.create(Signal(id="s1", loop_id="l1", kind="stop"))
    for branch, when in (("a", 5), ("b", 6)):
        with on_branch(repo, branch, "main") as store:
            store.modify(
                Signal,
                "s1",
                lambda signal, when=when: setattr(  # type: ignore[misc]
                    signal, "acknowledged_at", when
                ),
            )
    git(repo, "checkout", "-q", "a")
    merged = git(repo, "merge", "-q", "--no-edit", "b", check=False)
    assert "CONFLICT" in merged, merged
    assert git(repo, "diff", "--name-only", "--diff-filter=U").split() == [
        ".taskstore/signals.jsonl"
    ]
