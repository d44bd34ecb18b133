"""computed.py: values derived from a record's fields, filtered and sorted on like fields,
right after any sync (a raw append as a pull makes, a real git merge)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from testing import cli, commit_all, data, git
from testing.repos import line, new_repo, ok, on_branch
from testing.stores import append_raw, query_plan
from testing.writers import LONG_DEBOUNCE_MS

from git_taskstore import (
    Computed,
    Filter,
    Op,
    Record,
    Store,
    ValidationError,
    first_set,
    is_set,
    is_unset,
)


@dataclass
class Signal(Record):
    collection_name: ClassVar[str] = "signals"
    indexed_fields: ClassVar[tuple[str, ...]] = ("loop_id",)
    computed_fields: ClassVar[dict[str, Computed]] = {
        "acknowledged": is_set("acknowledged_at"),
        "unacknowledged": is_unset("acknowledged_at"),
    }
    loop_id: str = ""
    acknowledged_at: int | None = None


@dataclass
class Job(Record):
    collection_name: ClassVar[str] = "jobs"
    computed_fields: ClassVar[dict[str, Computed]] = {
        "effective_updated_at": first_set("completed_at", "created_at"),
        "label": first_set("title", "name"),
    }
    name: str = ""
    title: str | None = None
    completed_at: int | None = None


def signal_ids(store: Store, *filters: Filter, sort: str | None = None) -> list[str]:
    return [s.id for s in store.list(Signal, filters, sort=sort)]


def job_ids(store: Store, *filters: Filter, sort: str | None = None) -> list[str]:
    return [j.id for j in store.list(Job, filters, sort=sort)]


@pytest.fixture
def signals(store: Store) -> Store:
    """s1..s4 over two loops; s2 and s4 acknowledged, s5 deleted."""
    store.create(Signal(id="s1", loop_id="L1"))
    store.create(Signal(id="s2", loop_id="L1", acknowledged_at=100))
    store.create(Signal(id="s3", loop_id="L2"))
    store.create(Signal(id="s4", loop_id="L2", acknowledged_at=200))
    store.create(Signal(id="s5", loop_id="L1"))
    store.delete(Signal, "s5")
    return store


@pytest.fixture
def jobs(store: Store) -> Store:
    """Versions: j1 10 (no completion), j2 50 (completed), j3 30 (completed), j4 40."""
    store.create(Job(id="j1", name="build", created_at=10))
    store.create(Job(id="j2", name="test", title="Run tests", created_at=20, completed_at=50))
    store.create(Job(id="j3", name="lint", created_at=5, completed_at=30))
    store.create(Job(id="j4", name="docs", created_at=40))
    return store


# --- truth values -----------------------------------------------------------------------


def test_unacknowledged_signals_of_one_loop(signals: Store) -> None:
    wanted = [Filter("acknowledged", Op.EQ, False), Filter("loop_id", Op.EQ, "L1")]
    assert signal_ids(signals, *wanted) == ["s1"]
    assert signals.count(Signal, wanted) == 1
    assert signal_ids(signals, Filter("unacknowledged", Op.EQ, True)) == ["s1", "s3"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (Filter("acknowledged", Op.EQ, True), ["s2", "s4"]),
        (Filter("acknowledged", Op.EQ, False), ["s1", "s3"]),
        (Filter("acknowledged", Op.NE, True), ["s1", "s3"]),
        (Filter("acknowledged", Op.NE, False), ["s2", "s4"]),
        (Filter("acknowledged", Op.IN, [True]), ["s2", "s4"]),
        (Filter("acknowledged", Op.IN, [False, True]), ["s1", "s2", "s3", "s4"]),
        (Filter("unacknowledged", Op.EQ, False), ["s2", "s4"]),
        # A truth value is never null, and never a number or text.
        (Filter("acknowledged", Op.EQ, None), []),
        (Filter("acknowledged", Op.NE, None), ["s1", "s2", "s3", "s4"]),
        (Filter("acknowledged", Op.EQ, 1), []),
        (Filter("acknowledged", Op.EQ, 0), []),
        (Filter("acknowledged", Op.IN, [0, 1, "true"]), []),
        (Filter("acknowledged", Op.NE, 1), ["s1", "s2", "s3", "s4"]),
    ],
)
def test_truth_values_compare_as_booleans(
    signals: Store, where: Filter, expected: list[str]
) -> None:
    assert signal_ids(signals, where) == expected
    assert signals.count(Signal, [where]) == len(expected)


def test_a_null_field_is_unset_like_a_missing_one(store: Store) -> None:
    store.create(Signal(id="s0"))  # no acknowledged_at in its line
    coll = store.collection("signals")
    coll.put({"id": "sn", "loop_id": "L1", "acknowledged_at": None})
    coll.put({"id": "sz", "loop_id": "L1", "acknowledged_at": 0})
    assert signal_ids(store, Filter("acknowledged", Op.EQ, False)) == ["s0", "sn"]
    assert signal_ids(store, Filter("unacknowledged", Op.EQ, False)) == ["sz"]


def test_sort_on_a_truth_value_puts_false_first(signals: Store) -> None:
    assert signal_ids(signals, sort="acknowledged") == ["s1", "s3", "s2", "s4"]
    assert signal_ids(signals, sort="-acknowledged") == ["s2", "s4", "s1", "s3"]


# --- the first field set ----------------------------------------------------------------


def test_sort_by_the_first_field_set(jobs: Store) -> None:
    assert job_ids(jobs, sort="-effective_updated_at") == ["j2", "j4", "j3", "j1"]
    assert job_ids(jobs, sort="effective_updated_at") == ["j1", "j3", "j4", "j2"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        (Filter("effective_updated_at", Op.EQ, 30), ["j3"]),
        (Filter("effective_updated_at", Op.EQ, 10.0), ["j1"]),
        (Filter("effective_updated_at", Op.NE, 30), ["j1", "j2", "j4"]),
        (Filter("effective_updated_at", Op.GT, 30), ["j2", "j4"]),
        (Filter("effective_updated_at", Op.GTE, 30), ["j2", "j3", "j4"]),
        (Filter("effective_updated_at", Op.LT, 30), ["j1"]),
        (Filter("effective_updated_at", Op.LTE, 40), ["j1", "j3", "j4"]),
        (Filter("effective_updated_at", Op.IN, [50, 10]), ["j1", "j2"]),
        (Filter("effective_updated_at", Op.EQ, None), []),
        # Numbers compare with numbers only, as stored fields do.
        (Filter("effective_updated_at", Op.EQ, "30"), []),
        (Filter("effective_updated_at", Op.GT, "0"), []),
        (Filter("label", Op.EQ, "Run tests"), ["j2"]),
        (Filter("label", Op.EQ, "test"), []),
        (Filter("label", Op.IN, ["build", "lint"]), ["j1", "j3"]),
        (Filter("label", Op.GT, "c"), ["j3", "j4"]),
        (Filter("label", Op.GT, 0), []),
    ],
)
def test_filters_on_the_first_field_set(jobs: Store, where: Filter, expected: list[str]) -> None:
    assert job_ids(jobs, where) == expected
    assert jobs.count(Job, [where]) == len(expected)


def test_a_null_first_field_falls_through_to_the_next(store: Store) -> None:
    jobs = store.collection("jobs")
    jobs.put({"id": "j1", "name": "a", "created_at": 10, "completed_at": None})
    jobs.put({"id": "j2", "name": "b", "created_at": 20, "completed_at": 5})
    assert job_ids(store, Filter("effective_updated_at", Op.EQ, 10)) == ["j1"]
    assert job_ids(store, sort="effective_updated_at") == ["j2", "j1"]


def test_the_type_is_the_type_of_the_field_picked(store: Store) -> None:
    """title is text where set, else name: a title of true is not the text "true"."""
    store.create(Job(id="j0", name="x"))  # Job declares its computed values
    jobs = store.collection("jobs")
    jobs.put({"id": "j1", "name": "true", "title": True})  # not a Job: read as dicts
    jobs.put({"id": "j2", "name": "true"})
    assert [r["id"] for r in jobs.list([Filter("label", Op.EQ, True)])] == ["j1"]
    assert [r["id"] for r in jobs.list([Filter("label", Op.EQ, "true")])] == ["j2"]
    assert jobs.count_by("label") == {"x": 1, True: 1, "true": 1}


# --- indexes ----------------------------------------------------------------------------


def test_queries_on_computed_values_use_their_index(signals: Store, jobs: Store) -> None:
    plan = query_plan(signals, lambda: signals.list(Signal, [Filter("acknowledged", Op.EQ, False)]))
    assert "USING INDEX cx_signals__acknowledged" in plan, plan
    # The latest jobs since a time: the index finds them and gives their order.
    since = [Filter("effective_updated_at", Op.GT, 30)]
    plan = query_plan(jobs, lambda: jobs.list(Job, since, sort="-effective_updated_at"))
    assert "USING INDEX cx_jobs__effective_updated_at (<expr>>?)" in plan, plan
    plan = query_plan(jobs, lambda: jobs.list(Job, [Filter("effective_updated_at", Op.EQ, 30)]))
    assert "USING INDEX cx_jobs__effective_updated_at (<expr>=?)" in plan, plan
    # The dict-level API asks the same index for the name.
    coll = signals.collection("signals")
    plan = query_plan(signals, lambda: coll.list([Filter("acknowledged", Op.EQ, True)]))
    assert "USING INDEX cx_signals__acknowledged" in plan, plan


def test_a_changed_rule_under_one_name_answers_by_the_new_rule(signals: Store) -> None:
    @dataclass
    class Flipped(Record):
        collection_name: ClassVar[str] = "signals"
        computed_fields: ClassVar[dict[str, Computed]] = {
            "acknowledged": is_unset("acknowledged_at")
        }
        loop_id: str = ""
        acknowledged_at: int | None = None

    assert [s.id for s in signals.list(Flipped, [Filter("acknowledged", Op.EQ, True)])] == [
        "s1",
        "s3",
    ]
    plan = query_plan(signals, lambda: signals.list(Flipped, [Filter("acknowledged", Op.EQ, True)]))
    assert "USING INDEX cx_signals__acknowledged" in plan, plan
    assert signal_ids(signals, Filter("acknowledged", Op.EQ, True)) == ["s2", "s4"]


def test_rebuild_indexes_counts_computed_values(signals: Store) -> None:
    assert signals.rebuild_indexes(Signal) == 3  # loop_id, acknowledged, unacknowledged
    assert signal_ids(signals, Filter("acknowledged", Op.EQ, True)) == ["s2", "s4"]


# --- right after any sync ---------------------------------------------------------------


def test_lines_appended_by_hand_are_queried_by_a_fresh_store(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.create(Signal(id="s1", loop_id="L1"))
        store.create(Signal(id="s2", loop_id="L1"))
        path = store.file_path("signals")
        assert signal_ids(store, Filter("acknowledged", Op.EQ, False)) == ["s1", "s2"]
    # As a pull brings them: s1 acknowledged, a new s3, s2 deleted.
    far = 4_000_000_000_000
    append_raw(
        path,
        (
            line({"id": "s1", "loop_id": "L1", "acknowledged_at": 7, "updated_at": far})
            + line({"id": "s3", "loop_id": "L1", "created_at": far, "updated_at": far})
            + line({"id": "s2", "deleted": True, "updated_at": far})
        ).encode(),
    )
    with Store.open(tmp_path) as store:
        # The dict-level API first: nothing typed has run in this process.
        unacked = store.collection("signals").list([Filter("acknowledged", Op.EQ, False)])
        assert [r["id"] for r in unacked] == ["s3"]
        assert signal_ids(store, Filter("acknowledged", Op.EQ, True)) == ["s1"]
        assert store.count(Signal, [Filter("unacknowledged", Op.EQ, True)]) == 1


def test_a_deleted_cache_is_rebuilt_with_the_computed_values(signals: Store) -> None:
    path = signals.path
    signals.close()
    for suffix in ("", "-wal", "-shm"):
        Path(path, "taskstore.db" + suffix).unlink(missing_ok=True)
    with Store.open_dir(path) as store:
        assert signal_ids(store, Filter("acknowledged", Op.EQ, True)) == ["s2", "s4"]


def test_pending_debounced_writes_are_queried_too(tmp_path: Path) -> None:
    with Store.open(tmp_path, debounce_ms=LONG_DEBOUNCE_MS) as store:
        store.create(Signal(id="s1", loop_id="L1"))
        store.flush()
        store.update(Signal(id="s1", loop_id="L1", acknowledged_at=5))
        store.create(Signal(id="s2", loop_id="L1"))
        assert store.pending() == {"signals": 2}
        assert signal_ids(store, Filter("acknowledged", Op.EQ, False)) == ["s2"]
        assert signal_ids(store, sort="-acknowledged") == ["s1", "s2"]


@pytest.mark.usefixtures("venv_first_on_path")
def test_after_a_git_merge_of_two_branches(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    with on_branch(repo, "main") as store:
        store.create(Signal(id="s1", loop_id="L1", created_at=1))
        store.create(Signal(id="s2", loop_id="L1", created_at=2))
    with on_branch(repo, "left", "main") as store:
        store.modify(Signal, "s1", lambda s: setattr(s, "acknowledged_at", 10))
    with on_branch(repo, "right", "main") as store:
        store.modify(Signal, "s2", lambda s: setattr(s, "acknowledged_at", 20))
        store.create(Signal(id="s3", loop_id="L1", created_at=3))
    git(repo, "checkout", "-q", "left")
    git(repo, "merge", "-q", "--no-edit", "right")
    lines = (repo / ".taskstore" / "signals.jsonl").read_text().splitlines()
    assert not any(text.startswith("<<<<<<<") for text in lines)
    with Store.open(repo, create=False) as store:
        coll = store.collection("signals")
        unacked = [Filter("acknowledged", Op.EQ, False), Filter("loop_id", Op.EQ, "L1")]
        assert [r["id"] for r in coll.list(unacked)] == ["s3"]
        plan = query_plan(store, lambda: coll.list([Filter("acknowledged", Op.EQ, True)]))
        assert "USING INDEX cx_signals__acknowledged" in plan, plan
        assert signal_ids(store, Filter("acknowledged", Op.EQ, True)) == ["s1", "s2"]
    commit_all(repo, "merged")


# --- the dict-level API and the command line --------------------------------------------


def test_the_dict_level_api_knows_what_a_class_declared(signals: Store) -> None:
    coll = signals.collection("signals")
    assert [r["id"] for r in coll.list([Filter("acknowledged", Op.EQ, True)])] == ["s2", "s4"]
    assert coll.count([Filter("unacknowledged", Op.EQ, True)]) == 2
    assert coll.count_by("acknowledged") == {True: 2, False: 2}
    # Indexed already, by the computed value's own index.
    assert coll.ensure_index("acknowledged", "loop_id") == 0
    sorted_ids = [r["id"] for r in coll.list(sort="-acknowledged", limit=2)]
    assert sorted_ids == ["s2", "s4"]


def test_the_command_line_filters_on_a_computed_value(tmp_path: Path, signals: Store) -> None:
    assert signals.path == os.path.join(tmp_path, ".taskstore")
    found = data(cli("list", "signals", "--where", "acknowledged=false", "--json", cwd=tmp_path))
    assert [r["id"] for r in found] == ["s1", "s3"]
    counted = cli(
        "list", "signals", "-w", "acknowledged=true", "-w", "loop_id=L2", "--count", cwd=tmp_path
    )
    assert ok(counted).out.strip() == "1"
    # The CLI's habit of indexing what it filters on leaves the computed index alone.
    plan = query_plan(
        signals,
        lambda: signals.collection("signals").list([Filter("acknowledged", Op.EQ, True)]),
    )
    assert "USING INDEX cx_signals__acknowledged" in plan, plan


# --- mistakes ---------------------------------------------------------------------------


def test_a_typed_query_accepts_computed_names_and_still_refuses_typos(signals: Store) -> None:
    with pytest.raises(ValidationError, match="no field 'acknowleged'"):
        signals.list(Signal, [Filter("acknowleged", Op.EQ, True)])
    with pytest.raises(ValidationError, match="no field 'acknowleged'"):
        signals.list(Signal, sort="-acknowleged")
    assert signals.count(Signal, [Filter("acknowledged", Op.EQ, True)]) == 2


def test_contains_on_a_computed_value_is_refused(jobs: Store) -> None:
    with pytest.raises(ValidationError, match="label is a computed value"):
        jobs.list(Job, [Filter("label", Op.CONTAINS, "test")])


@pytest.mark.parametrize(
    ("computed", "message"),
    [
        ({"acknowledged_at": is_set("acknowledged_at")}, "is a field of Bad already"),
        ({"id": is_set("acknowledged_at")}, "is a field of Bad already"),
        ({"acked": is_set("acknowledged")}, "reads 'acknowledged', which Bad does not"),
        ({"acked": first_set("acknowledged_at", "nope")}, "reads 'nope'"),
        ({"bad name": is_set("acknowledged_at")}, "invalid field name 'bad name'"),
        ({"acked": "acknowledged_at IS NOT NULL"}, "make it with is_set()"),
        (["acked"], "must be a dict"),
    ],
)
def test_a_bad_declaration_is_refused_when_the_class_is_made(computed: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):

        @dataclass
        class Bad(Record):
            collection_name: ClassVar[str] = "bad"
            computed_fields: ClassVar[Any] = computed
            acknowledged_at: int | None = None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: is_set("a') OR 1 --"), "invalid field name"),
        (lambda: first_set(), "takes field names"),
        (lambda: first_set("a", "b c"), "invalid field name"),
        (lambda: Computed("is_set", ("a", "b")), "takes one field"),
        (lambda: Computed("max_of", ("a", "b")), "unknown computed rule 'max_of'"),
    ],
)
def test_a_computed_value_is_made_of_valid_names_only(make: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make()


@dataclass
class SignalV1(Record):
    collection_name: ClassVar[str] = "sigs"
    computed_fields: ClassVar[dict[str, Computed]] = {"acknowledged": is_set("acknowledged_at")}
    acknowledged_at: int | None = None


@dataclass
class SignalV2(Record):
    """A later release: `acknowledged` is a stored field now."""

    collection_name: ClassVar[str] = "sigs"
    acknowledged: bool = False


def test_a_computed_name_an_older_release_left_in_the_cache_yields_to_the_field(
    store: Store,
) -> None:
    """Found by review: the cache kept v1's declaration and read v2's stored field as
    v1's computed value, in the typed API and the CLI, until the cache was deleted."""
    store.create(SignalV1(id="s1"))
    assert store.count(SignalV1, [Filter("acknowledged", Op.EQ, False)]) == 1
    store.create(SignalV2(id="s2", acknowledged=True))
    ids = [s.id for s in store.list(SignalV2, [Filter("acknowledged", Op.EQ, True)])]
    assert ids == ["s2"]
    assert store.count(SignalV2, [Filter("acknowledged", Op.EQ, True)]) == 1
    # Declared by V2, the cache forgets the computed name: the dict-level API agrees.
    rows = store.collection("sigs").list([Filter("acknowledged", Op.EQ, True)])
    assert [r["id"] for r in rows] == ["s2"]
