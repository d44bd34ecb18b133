"""taskmodel/: models.py (typed records, validation) and operations.py
(relations, markdown bodies, slugs, cascading deletes, status counts).

Every refusal is checked for what a caller relies on: the exception type, a message that
says what is allowed, and every file of the store byte-for-byte unchanged.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from git_taskstore import AlreadyExistsError, NotFoundError, Store, ValidationError
from git_taskstore.ids import new_id
from git_taskstore.records import Record
from git_taskstore.taskmodel import (
    CHECKS,
    DEPENDENCY_TYPES,
    EXECUTION_STATUSES,
    KINDS,
    MODELS,
    PRD,
    PRD_STATUSES,
    SLUG_MAX_BYTES,
    TASK_SPEC_STATUSES,
    Dependency,
    Execution,
    RepoState,
    StatusCount,
    TaskModel,
    TaskSpec,
    Workflow,
    model_for_id,
    slugify,
)

# The cache and lock files: derived, never committed, free to change on any read.
CACHE_NAMES = ("taskstore.db", "taskstore.db-wal", "taskstore.db-shm", "taskstore.lock")
ID_ALPHABET = set("0123456789abcdefghjkmnpqrstvwxyz")


# --- helpers ---------------------------------------------------------------------------


def snapshot(store: Store) -> dict[str, bytes]:
    """Every file of the store folder (bodies included) except the cache and the lock."""
    root = Path(store.path)
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.startswith(CACHE_NAMES)
    }


def lines_of(store: Store, collection: str) -> list[dict[str, Any]]:
    import json

    path = Path(store.file_path(collection))
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def model(store: Store) -> TaskModel:
    return TaskModel(store)


@pytest.fixture
def tree(model: TaskModel) -> dict[str, Any]:
    """A PRD with a task spec (following a workflow) and two executions of it."""
    wf = model.create_workflow("tdd", content="red, green, refactor")
    prd = model.create_prd("Add OAuth Authentication", description="login with OAuth")
    spec = model.create_task_spec(prd.id, "Implementation", workflow_name="tdd")
    first = model.create_execution(spec.id, worktree_path="/wt/1", branch_name="b1")
    second = model.create_execution(spec.id)
    return {"wf": wf, "prd": prd, "spec": spec, "e1": first, "e2": second}


# --- validation of each model ----------------------------------------------------------

BAD_STATUSES: list[Any] = ["", "done", "DRAFT", " draft", "in progress", None, 1, True]


@pytest.mark.parametrize("bad", BAD_STATUSES, ids=repr)
@pytest.mark.parametrize(
    ("cls", "allowed", "kwargs"),
    [
        (PRD, PRD_STATUSES, {"title": "T"}),
        (TaskSpec, TASK_SPEC_STATUSES, {"prd_id": "prd-x", "phase_name": "P"}),
        (Execution, EXECUTION_STATUSES, {"ts_id": "ts-x"}),
    ],
    ids=["PRD", "TaskSpec", "Execution"],
)
def test_every_bad_status_is_refused_naming_the_allowed_ones(
    store: Store, cls: type[Record], allowed: tuple[str, ...], kwargs: dict[str, Any], bad: Any
) -> None:
    record = cls(**kwargs, status=bad)  # type: ignore[call-arg]
    before = snapshot(store)
    with pytest.raises(ValidationError) as caught:
        record.check()
    message = str(caught.value)
    assert ", ".join(allowed) in message, message
    assert repr(bad) in message, message
    assert "\n" not in message
    with pytest.raises(ValidationError):
        store.create(record)
    assert snapshot(store) == before
    assert not os.path.exists(store.file_path(cls.collection()))


@pytest.mark.parametrize(
    ("cls", "allowed"),
    [(PRD, PRD_STATUSES), (TaskSpec, TASK_SPEC_STATUSES), (Execution, EXECUTION_STATUSES)],
    ids=["PRD", "TaskSpec", "Execution"],
)
def test_every_allowed_status_is_accepted(cls: type[Record], allowed: tuple[str, ...]) -> None:
    kwargs = {PRD: {"title": "T"}, TaskSpec: {"prd_id": "p", "phase_name": "P"}}.get(
        cls, {"ts_id": "t"}
    )
    for status in allowed:
        cls(**kwargs, status=status).check()  # type: ignore[call-arg]


def test_default_statuses_are_valid_and_documented() -> None:
    assert PRD().status == "draft"
    assert TaskSpec().status == "pending"
    assert Execution().status == "running"
    assert Dependency().dependency_type == "notify"
    assert PRD_STATUSES == (
        "draft",
        "ready",
        "active",
        "in_progress",
        "complete",
        "failed",
        "cancelled",
    )
    assert TASK_SPEC_STATUSES == ("pending", "blocked", "running", "complete", "failed")
    assert EXECUTION_STATUSES == ("running", "paused", "complete", "failed", "stopped")
    assert DEPENDENCY_TYPES == ("notify", "query", "share")


@pytest.mark.parametrize("bad", ["", "broadcast", "NOTIFY", None, 0], ids=repr)
def test_a_bad_dependency_type_is_refused_naming_the_allowed_ones(bad: Any) -> None:
    with pytest.raises(ValidationError, match="notify, query, share"):
        Dependency(from_exec_id="exec-x", dependency_type=bad).check()


BAD_RECORDS: list[Any] = [
    pytest.param(PRD(title=""), "title", id="prd-no-title"),
    pytest.param(PRD(title="   \t"), "title", id="prd-blank-title"),
    pytest.param(PRD(title=None), "title", id="prd-title-none"),  # type: ignore[arg-type]
    pytest.param(PRD(title="T", review_passes=-1), "review_passes", id="prd-passes-negative"),
    pytest.param(PRD(title="T", review_passes=True), "review_passes", id="prd-passes-bool"),
    pytest.param(PRD(title="T", review_passes="3"), "review_passes", id="prd-passes-str"),  # type: ignore[arg-type]
    pytest.param(PRD(title="T", review_passes=1.5), "review_passes", id="prd-passes-float"),  # type: ignore[arg-type]
    pytest.param(TaskSpec(phase_name="P"), "prd_id", id="ts-no-prd"),
    pytest.param(TaskSpec(prd_id="prd-x"), "phase_name", id="ts-no-phase"),
    pytest.param(TaskSpec(prd_id="prd-x", phase_name=" "), "phase_name", id="ts-blank-phase"),
    pytest.param(Execution(), "ts_id", id="exec-no-ts"),
    pytest.param(Execution(ts_id="ts-x", iteration_count=-1), "iteration_count", id="exec-neg"),
    pytest.param(Execution(ts_id="ts-x", iteration_count=False), "iteration_count", id="exec-b"),
    pytest.param(Dependency(), "from_exec_id", id="dep-no-from"),
    pytest.param(Workflow(), "name", id="wf-no-name"),
    pytest.param(Workflow(name="  "), "name", id="wf-blank-name"),
    pytest.param(Workflow(name="w", version=-1), "version", id="wf-version-negative"),
    pytest.param(Workflow(name="w", version="2"), "version", id="wf-version-str"),  # type: ignore[arg-type]
    pytest.param(RepoState(), "repo_path", id="repo-no-path"),
]


@pytest.mark.parametrize(("record", "field"), BAD_RECORDS)
def test_required_fields_and_counts_are_checked_and_nothing_is_written(
    store: Store, record: Record, field: str
) -> None:
    before = snapshot(store)
    with pytest.raises(ValidationError, match=field):
        record.check()
    with pytest.raises(ValidationError, match=field):
        store.create(record)
    with pytest.raises(ValidationError, match=field):
        store.put(record)
    assert snapshot(store) == before
    assert store.collections() == []


def test_counts_of_zero_and_more_are_accepted() -> None:
    PRD(title="T", review_passes=0).check()
    PRD(title="T", review_passes=7).check()
    Execution(ts_id="t", iteration_count=0).check()
    Execution(ts_id="t", iteration_count=10**6).check()
    Workflow(name="w", version=0).check()


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda m: m.create_prd(""), "title"),
        (lambda m: m.create_prd("T", status="done"), "status"),
        (lambda m: m.create_workflow("w", version=-2), "version"),
        (lambda m: m.create_workflow(" "), "name"),
    ],
    ids=["prd-title", "prd-status", "wf-version", "wf-name"],
)
def test_task_model_refusals_write_no_record_and_no_body(
    model: TaskModel, call: Any, field: str
) -> None:
    model.create_prd("Existing")  # so the folders exist and the snapshot has content
    before = snapshot(model.store)
    with pytest.raises(ValidationError, match=field):
        call(model)
    assert snapshot(model.store) == before


def test_a_refused_task_spec_or_execution_writes_nothing(
    model: TaskModel, tree: dict[str, Any]
) -> None:
    before = snapshot(model.store)
    with pytest.raises(ValidationError, match="pending, blocked"):
        model.create_task_spec(tree["prd"].id, "P", status="started")
    with pytest.raises(ValidationError, match="phase_name"):
        model.create_task_spec(tree["prd"].id, "")
    with pytest.raises(ValidationError, match="running, paused"):
        model.create_execution(tree["spec"].id, status="done")
    with pytest.raises(ValidationError, match="notify, query, share"):
        model.create_dependency(tree["e1"].id, dependency_type="ask")
    assert snapshot(model.store) == before


# --- ids --------------------------------------------------------------------------------


def test_each_model_generates_ids_with_its_prefix(model: TaskModel, tree: dict[str, Any]) -> None:
    dep = model.create_dependency(tree["e1"].id, to_exec_id=tree["e2"].id)
    expected = {
        "prd-": tree["prd"],
        "ts-": tree["spec"],
        "exec-": tree["e1"],
        "dep-": dep,
        "wf-": tree["wf"],
    }
    for prefix, record in expected.items():
        assert record.id.startswith(prefix), record
        rest = record.id[len(prefix) :]
        assert len(rest) == 16 and set(rest) <= ID_ALPHABET, record.id
        assert type(record).id_prefix == prefix
        assert model_for_id(record.id) is type(record)
        assert model.store.get(type(record), record.id) == record
    assert model_for_id("nothing-known") is None


def test_ids_are_unique_over_10000_quick_creations_and_sort_by_time() -> None:
    before_ms = time.time_ns() // 1_000_000
    made = [new_id("prd-") for _ in range(10_000)]
    after_ms = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    for rid in made:
        assert rid.startswith("prd-") and len(rid) == 4 + 16, rid
        assert set(rid[4:]) <= ID_ALPHABET, rid
    # The first 9 characters are the time: never decreasing in creation order, and it
    # decodes to the time the id was made.
    times = [rid[4:13] for rid in made]
    assert times == sorted(times)
    decoded = int("".join(f"{sorted(ID_ALPHABET).index(c):05b}" for c in times[0]), 2)
    assert before_ms <= decoded <= after_ms


def test_ids_made_in_different_milliseconds_sort_in_creation_order(model: TaskModel) -> None:
    made = []
    for n in range(5):
        made.append(model.create_prd(f"PRD {n}").id)
        time.sleep(0.002)
    assert sorted(made) == made
    listed = [p.id for p in model.store.list(PRD, sort="id")]
    assert listed == made


def test_repo_state_is_keyed_by_its_repo_path(store: Store) -> None:
    """README: RepoState's id is the repo path; a second put updates the same record."""
    first = store.create(RepoState(repo_path="/home/ana/repo", last_synced_commit="a" * 40))
    assert first.id == "/home/ana/repo"
    store.put(RepoState(repo_path="/home/ana/repo", last_synced_commit="b" * 40))
    rows = store.list(RepoState)
    assert [(r.id, r.last_synced_commit) for r in rows] == [("/home/ana/repo", "b" * 40)]
    assert RepoState(id="explicit", repo_path="/x").id == "explicit"
    assert TaskModel(store).find("/home/ana/repo") == rows[0]


# --- relations ---------------------------------------------------------------------------


def test_a_task_spec_needs_an_existing_prd(model: TaskModel, tree: dict[str, Any]) -> None:
    before = snapshot(model.store)
    with pytest.raises(NotFoundError, match="no PRD 'prd-missing'"):
        model.create_task_spec("prd-missing", "Design")
    assert snapshot(model.store) == before
    model.delete_prd(model.create_prd("Gone").id)
    gone = snapshot(model.store)
    deleted = next(p for p in lines_of(model.store, "prds") if p.get("deleted"))["id"]
    with pytest.raises(NotFoundError, match="no PRD"):
        model.create_task_spec(deleted, "Design")  # a deleted PRD is no PRD
    assert snapshot(model.store) == gone


def test_a_task_spec_naming_a_missing_workflow_is_refused(
    model: TaskModel, tree: dict[str, Any]
) -> None:
    before = snapshot(model.store)
    with pytest.raises(NotFoundError, match="no workflow named 'nope'"):
        model.create_task_spec(tree["prd"].id, "Review", workflow_name="nope")
    assert snapshot(model.store) == before
    spec = model.create_task_spec(tree["prd"].id, "Review", workflow_name="tdd", assigned_to="bo")
    assert (spec.workflow_name, spec.assigned_to) == ("tdd", "bo")


def test_an_execution_needs_an_existing_task_spec(model: TaskModel, tree: dict[str, Any]) -> None:
    before = snapshot(model.store)
    with pytest.raises(NotFoundError, match="no task spec 'ts-missing'"):
        model.create_execution("ts-missing")
    with pytest.raises(NotFoundError, match="no task spec"):
        model.create_execution(tree["prd"].id)  # a PRD is not a task spec
    assert snapshot(model.store) == before
    made = model.create_execution(tree["spec"].id, current_phase="red")
    assert (made.status, made.iteration_count, made.completed_at) == ("running", 0, None)
    assert made.started_at > 0


def test_a_dependency_needs_existing_executions(model: TaskModel, tree: dict[str, Any]) -> None:
    before = snapshot(model.store)
    with pytest.raises(NotFoundError, match="no execution 'exec-missing'"):
        model.create_dependency("exec-missing")
    with pytest.raises(NotFoundError, match="no execution 'exec-missing'"):
        model.create_dependency(tree["e1"].id, to_exec_id="exec-missing")
    with pytest.raises(NotFoundError, match="no execution"):
        model.create_dependency("exec-missing", to_exec_id=tree["e1"].id)
    assert snapshot(model.store) == before
    broadcast = model.create_dependency(tree["e1"].id, payload={"files": ["a.py"]})
    direct = model.create_dependency(
        tree["e1"].id, to_exec_id=tree["e2"].id, dependency_type="query", payload=[1, "x"]
    )
    assert broadcast.to_exec_id is None and broadcast.payload == {"files": ["a.py"]}
    assert model.store.get(Dependency, direct.id) == direct


def test_a_workflow_name_is_unique(model: TaskModel, tree: dict[str, Any]) -> None:
    before = snapshot(model.store)
    with pytest.raises(AlreadyExistsError, match="a workflow named 'tdd' already exists"):
        model.create_workflow("tdd", version=2)
    assert snapshot(model.store) == before
    assert model.workflow_by_name("tdd") == tree["wf"]
    assert model.workflow_by_name("TDD") is None  # names are case-sensitive
    with pytest.raises(NotFoundError, match="no workflow named 'x'"):
        model.workflow_by_name("x", required=True)
    model.create_workflow("TDD")


@pytest.mark.parametrize("shared", [True, False], ids=["one-store", "a-store-each"])
def test_two_threads_racing_for_a_workflow_name_exactly_one_wins(
    tmp_path: Path, shared: bool
) -> None:
    """Under the store lock: a store shared by threads, or one store per thread (as two
    processes would have)."""
    Store.open(tmp_path).close()
    common = Store.open(tmp_path)
    try:
        for round_ in range(5):
            name = f"deploy-{round_}"
            barrier = threading.Barrier(2)
            outcomes: list[Any] = []

            def race(
                name: str = name,
                barrier: threading.Barrier = barrier,
                outcomes: list[Any] = outcomes,
            ) -> None:
                store = common if shared else Store.open(tmp_path)
                try:
                    barrier.wait()
                    outcomes.append(TaskModel(store).create_workflow(name))
                except Exception as exc:  # collected and checked below
                    outcomes.append(exc)
                finally:
                    if not shared:
                        store.close()

            threads = [threading.Thread(target=race) for _ in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            won = [o for o in outcomes if isinstance(o, Workflow)]
            lost = [o for o in outcomes if not isinstance(o, Workflow)]
            assert len(won) == 1, outcomes
            assert len(lost) == 1 and isinstance(lost[0], AlreadyExistsError), outcomes
            rows = [w for w in common.list(Workflow) if w.name == name]
            assert [w.id for w in rows] == [won[0].id]
    finally:
        common.close()


# --- delete_prd ---------------------------------------------------------------------------


def test_deleting_a_prd_with_task_specs_is_refused(model: TaskModel, tree: dict[str, Any]) -> None:
    second = model.create_task_spec(tree["prd"].id, "Review")
    before = snapshot(model.store)
    with pytest.raises(ValidationError) as caught:
        model.delete_prd(tree["prd"].id)
    message = str(caught.value)
    assert tree["spec"].id in message and second.id in message, message
    assert "2 task spec" in message and "--cascade" in message, message
    assert snapshot(model.store) == before
    assert model.store.get(PRD, tree["prd"].id) == tree["prd"]


def test_the_refusal_names_at_most_three_task_specs(model: TaskModel) -> None:
    prd = model.create_prd("Big")
    specs = [model.create_task_spec(prd.id, f"Phase {n}") for n in range(5)]
    with pytest.raises(ValidationError) as caught:
        model.delete_prd(prd.id)
    message = str(caught.value)
    assert "5 task spec" in message and ", ..." in message, message
    assert all(s.id in message for s in specs[:3]), message
    assert specs[4].id not in message


def test_cascade_deletes_specs_prd_and_their_bodies_as_tombstones(
    model: TaskModel, tree: dict[str, Any]
) -> None:
    store = model.store
    other = model.create_prd("Other work")
    other_spec = model.create_task_spec(other.id, "Implementation")
    second = model.create_task_spec(tree["prd"].id, "Review")
    bodies = [model.body_path(r) for r in (tree["prd"], tree["spec"], second)]
    assert all(p and os.path.exists(p) for p in bodies)

    deleted = model.delete_prd(tree["prd"].id, cascade=True)

    assert [r.id for r in deleted] == [tree["spec"].id, second.id, tree["prd"].id]
    assert not any(os.path.exists(p) for p in bodies if p)
    assert store.get(PRD, tree["prd"].id) is None
    assert store.get(TaskSpec, tree["spec"].id) is None
    assert store.get(TaskSpec, second.id) is None
    # Tombstones appended: the history stays in the file (and in git).
    prd_lines = lines_of(store, "prds")
    assert prd_lines[-1] == {"id": tree["prd"].id, "deleted": True, "updated_at": ANY_INT}
    spec_tail = lines_of(store, "task_specs")[-2:]
    assert [(s["id"], s.get("deleted")) for s in spec_tail] == [
        (tree["spec"].id, True),
        (second.id, True),
    ]
    assert any(line.get("title") == tree["prd"].title for line in prd_lines)
    # The other PRD and its spec are untouched; the executions stay (nothing cascades there).
    assert store.get(PRD, other.id) == other
    assert store.get(TaskSpec, other_spec.id) == other_spec
    assert model.body(other_spec) == "# Implementation\n"
    assert store.get(Execution, tree["e1"].id) is not None
    assert model.find(tree["prd"].id) is None


def test_a_prd_without_task_specs_is_deleted_without_cascade(model: TaskModel) -> None:
    prd = model.create_prd("Lonely")
    path = model.body_path(prd)
    assert [r.id for r in model.delete_prd(prd.id)] == [prd.id]
    assert path and not os.path.exists(path)
    with pytest.raises(NotFoundError, match="no PRD"):
        model.delete_prd(prd.id)
    with pytest.raises(NotFoundError, match="no PRD 'prd-never'"):
        model.delete_prd("prd-never", cascade=True)


class _AnyInt:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and not isinstance(other, bool) and other > 0

    def __repr__(self) -> str:
        return "ANY_INT"


ANY_INT: Any = _AnyInt()


# --- set_status ---------------------------------------------------------------------------


def test_set_status_on_each_type(model: TaskModel, tree: dict[str, Any]) -> None:
    for record, status in [(tree["prd"], "in_progress"), (tree["spec"], "blocked")]:
        out = model.set_status(record.id, status)
        assert type(out) is type(record) and out.status == status  # type: ignore[attr-defined]
        stored = model.store.get(type(record), record.id)
        assert stored is not None and stored.status == status  # type: ignore[attr-defined]
        assert stored.updated_at > record.updated_at
        assert stored.created_at == record.created_at
        assert stored.file == record.file  # type: ignore[attr-defined]
    paused = model.set_status(tree["e1"].id, "paused")
    assert isinstance(paused, Execution) and paused.completed_at is None


@pytest.mark.parametrize(
    ("key", "allowed"),
    [("prd", PRD_STATUSES), ("spec", TASK_SPEC_STATUSES), ("e1", EXECUTION_STATUSES)],
)
def test_set_status_refuses_a_bad_status_and_writes_nothing(
    model: TaskModel, tree: dict[str, Any], key: str, allowed: tuple[str, ...]
) -> None:
    before = snapshot(model.store)
    with pytest.raises(ValidationError) as caught:
        model.set_status(tree[key].id, "bogus")
    assert ", ".join(allowed) in str(caught.value)
    assert snapshot(model.store) == before


def test_set_status_of_a_record_without_status_or_a_missing_one(
    model: TaskModel, tree: dict[str, Any]
) -> None:
    dep = model.create_dependency(tree["e1"].id)
    before = snapshot(model.store)
    with pytest.raises(ValidationError, match="a workflow has no status"):
        model.set_status(tree["wf"].id, "complete")
    with pytest.raises(ValidationError, match="a dependency has no status"):
        model.set_status(dep.id, "complete")
    with pytest.raises(NotFoundError, match="no record 'prd-missing'"):
        model.set_status("prd-missing", "ready")
    assert snapshot(model.store) == before


@pytest.mark.parametrize("final", ["complete", "failed", "stopped"])
def test_an_execution_gets_completed_at_when_it_ends(
    model: TaskModel, tree: dict[str, Any], final: str
) -> None:
    start = time.time_ns() // 1_000_000
    done = model.set_status(tree["e1"].id, final)
    end = time.time_ns() // 1_000_000
    assert isinstance(done, Execution)
    assert done.completed_at is not None and start <= done.completed_at <= end
    stored = model.store.get(Execution, tree["e1"].id)
    assert stored is not None and stored.completed_at == done.completed_at
    # Ending again keeps the first time it ended.
    time.sleep(0.002)
    again = model.set_status(tree["e1"].id, "complete")
    assert isinstance(again, Execution) and again.completed_at == done.completed_at
    assert model.store.get(Execution, tree["e2"].id).completed_at is None  # type: ignore[union-attr]


def test_unknown_fields_of_a_stored_prd_survive_set_status(model: TaskModel) -> None:
    extra = {"labels": ["auth", "p1"], "owner": {"name": "ana"}, "estimate": 3.5, "x": None}
    model.store.collection("prds").put({"id": "prd-extra", "title": "T", **extra})
    out = model.set_status("prd-extra", "ready")
    assert out.extra_fields == extra
    raw = model.store.collection("prds").get("prd-extra")
    assert raw is not None
    assert raw["status"] == "ready"
    assert {k: raw[k] for k in extra} == extra
    assert model.find("prd-extra") == out


# --- slugs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("title", "slug"),
    [
        ("Add OAuth Authentication", "add-oauth-authentication"),  # the README's example
        ("Hello, World!", "hello-world"),
        ("v1.2.3: fix (the) #bug?", "v123-fix-the-bug"),
        ("C++ & C#", "c-c"),
        ("a - b -- c", "a-b-c"),
        ("  leading and trailing  ", "leading-and-trailing"),
        ("--dashes--", "dashes"),
        ("tabs\tand\nnewlines", "tabs-and-newlines"),
        ("Café Über Straße", "café-über-straße"),
        ("日本語 テスト", "日本語-テスト"),
        ("Ελληνικά Δοκιμή", "ελληνικά-δοκιμή"),
        ("snake_case_name", "snakecasename"),
        ("__init__", "init"),
        ("a _ b", "a-b"),
        ("../../etc/passwd", "etcpasswd"),
        ("", "untitled"),
        ("   ", "untitled"),
        ("!!!", "untitled"),
        ("___", "untitled"),
        ("-", "untitled"),
    ],
)
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_slugify_caps_long_titles(model: TaskModel) -> None:
    """A long title used to make a file name over 255 bytes: OSError, a traceback."""
    for title in ["word " * 100, "x" * 300, "é" * 300, "日本" * 200]:
        slug = slugify(title)
        assert 0 < len(slug.encode("utf-8")) <= SLUG_MAX_BYTES
        assert not slug.endswith("-")
        assert title.lower().replace(" ", "-").startswith(slug)
    prd = model.create_prd("Ship " * 80)
    assert model.body(prd) == f"# {' '.join(['Ship'] * 80)}\n"  # whitespace folded
    again = model.create_prd("Ship " * 80)
    assert again.file == prd.file.removesuffix(".md") + "-2.md"  # type: ignore[union-attr]


def test_slug_collisions_add_2_3(model: TaskModel) -> None:
    files = [model.create_prd("Add OAuth!").file for _ in range(3)]
    assert files == ["prds/add-oauth.md", "prds/add-oauth-2.md", "prds/add-oauth-3.md"]
    assert model.create_prd("add oauth").file == "prds/add-oauth-4.md"
    prd = model.create_prd("Other")
    specs = [model.create_task_spec(prd.id, "Add OAuth").file for _ in range(2)]
    assert specs == ["task_specs/add-oauth.md", "task_specs/add-oauth-2.md"]  # own folder
    for name in files:
        assert (Path(model.store.path) / str(name)).is_file()


def test_a_slug_whose_file_exists_without_a_record_is_skipped(model: TaskModel) -> None:
    folder = Path(model.store.path) / "prds"
    folder.mkdir()
    (folder / "design.md").write_text("somebody's notes\n")
    (folder / "design-2.md").write_text("more notes\n")
    prd = model.create_prd("Design")
    assert prd.file == "prds/design-3.md"
    assert (folder / "design.md").read_text() == "somebody's notes\n"
    assert (folder / "design-2.md").read_text() == "more notes\n"


def test_a_name_claimed_by_a_record_whose_body_is_missing_is_not_reused(
    model: TaskModel,
) -> None:
    first = model.create_prd("Design")
    os.unlink(str(model.body_path(first)))
    second = model.create_prd("Design")
    assert second.file == "prds/design-2.md"
    with pytest.raises(NotFoundError):
        model.body(first)
    # A deleted record's name is free again (its body went with it).
    model.delete_prd(second.id)
    assert model.create_prd("Design").file == "prds/design-2.md"


# --- bodies --------------------------------------------------------------------------------


def test_bodies_are_written_on_create(model: TaskModel, tree: dict[str, Any]) -> None:
    root = Path(model.store.path)
    prd, spec = tree["prd"], tree["spec"]
    assert prd.file == "prds/add-oauth-authentication.md"
    assert (root / prd.file).read_text() == "# Add OAuth Authentication\n"
    assert spec.file == "task_specs/implementation.md"
    assert model.body(spec) == "# Implementation\n"
    text = "# Login\n\nUse **OAuth** — with PKCE.\n\n- [ ] tests\n"
    given = model.create_prd("Login", body=text)
    assert (root / "prds/login.md").read_bytes() == text.encode("utf-8")
    assert model.create_prd("Empty", body="").file == "prds/empty.md"
    assert (root / "prds/empty.md").read_text() == ""
    spec_text = "no trailing newline"
    s2 = model.create_task_spec(given.id, "Tests", body=spec_text)
    assert model.body(s2) == spec_text


def test_a_body_edited_on_disk_is_what_body_returns(model: TaskModel, tree: dict[str, Any]) -> None:
    path = Path(str(model.body_path(tree["prd"])))
    path.write_text("# Edited\n\nby hand\n")
    assert model.body(tree["prd"]) == "# Edited\n\nby hand\n"
    reread = model.find(tree["prd"].id)
    assert reread is not None and model.body(reread) == "# Edited\n\nby hand\n"
    model.set_body(tree["spec"], "# Set\n")
    assert Path(str(model.body_path(tree["spec"]))).read_text() == "# Set\n"


def test_a_missing_body_is_not_found_and_check_names_it(
    model: TaskModel, tree: dict[str, Any]
) -> None:
    assert model.store.check(checks=CHECKS) == []
    rel = tree["spec"].file
    os.unlink(os.path.join(model.store.path, rel))
    with pytest.raises(NotFoundError) as caught:
        model.body(tree["spec"])
    assert tree["spec"].id in str(caught.value) and rel in str(caught.value)
    problems = model.store.check(checks=CHECKS)
    assert len(problems) == 1, problems
    text = str(problems[0])
    assert tree["spec"].id in text and rel in text and "missing" in text
    assert problems[0].path.endswith("task_specs.jsonl")
    model.set_body(tree["spec"], "# back\n")  # writing it again is the fix
    assert model.store.check(checks=CHECKS) == []


def test_records_without_a_body(model: TaskModel, tree: dict[str, Any]) -> None:
    assert model.body(tree["e1"]) is None
    assert model.body(tree["wf"]) is None
    assert model.body_path(tree["e1"]) is None
    with pytest.raises(ValidationError, match="has no body file"):
        model.set_body(tree["e1"], "x")
    bare = model.store.create(PRD(title="made without the model"))
    assert bare.file is None and model.body(bare) is None


# --- status_counts and count_by -----------------------------------------------------------


def test_status_counts_and_count_by(model: TaskModel, tree: dict[str, Any]) -> None:
    store = model.store
    ready = model.create_prd("Two", status="ready")
    model.create_prd("Three", status="ready")
    model.set_status(tree["e2"].id, "complete")
    model.create_dependency(tree["e1"].id)
    gone = model.create_prd("Deleted", status="failed")
    model.delete_prd(gone.id)
    store.collection("notes").put({"id": "n1", "text": "no status"})
    store.collection("notes").put({"id": "n2", "status": 3})

    counts = model.status_counts()
    assert set(counts) == {
        StatusCount("dependencies", "-", 1),
        StatusCount("executions", "complete", 1),
        StatusCount("executions", "running", 1),
        StatusCount("notes", "-", 1),
        StatusCount("notes", "3", 1),
        StatusCount("prds", "draft", 1),
        StatusCount("prds", "ready", 2),
        StatusCount("task_specs", "pending", 1),
        StatusCount("workflows", "-", 1),
    }
    assert len(counts) == 9
    assert [c.collection for c in counts] == sorted(c.collection for c in counts)
    assert store.collection("prds").count_by("status") == {"draft": 1, "ready": 2}
    assert store.collection("notes").count_by("status") == {None: 1, 3: 1}
    assert store.collection("task_specs").count_by("workflow_name") == {"tdd": 1}
    assert store.collection("executions").count_by("worktree_path") == {"/wt/1": 1, None: 1}
    assert store.collection("nothing_here").count_by("status") == {}
    with pytest.raises(ValidationError):
        store.collection("prds").count_by("bad field")
    model.set_status(ready.id, "active")
    assert store.collection("prds").count_by("status") == {"draft": 1, "ready": 1, "active": 1}


def test_status_counts_of_an_empty_store(model: TaskModel) -> None:
    assert model.status_counts() == []


# --- find ------------------------------------------------------------------------------------


def test_find_locates_each_type_by_id(model: TaskModel, tree: dict[str, Any]) -> None:
    dep = model.create_dependency(tree["e1"].id)
    for record in [tree["prd"], tree["spec"], tree["e1"], tree["e2"], tree["wf"], dep]:
        found = model.find(record.id)
        assert type(found) is type(record) and found == record
    assert model.find("prd-1m7yzxve43ncfx4c") is None
    assert model.find("unknown") is None


def test_find_without_a_known_prefix_looks_everywhere(model: TaskModel) -> None:
    store = model.store
    made: list[Record] = [
        store.create(PRD(id="auth-login", title="custom id")),
        store.create(TaskSpec(id="phase-1", prd_id="auth-login", phase_name="P")),
        store.create(Execution(id="run 42", ts_id="phase-1")),
        store.create(Workflow(id="review-flow", name="review")),
        store.create(RepoState(repo_path="/srv/repo")),
        # A known prefix in another collection than its own: still found.
        store.create(Workflow(id="prd-imposter", name="imposter")),
    ]
    for record in made:
        assert model.find(record.id) == record, record
        assert type(model.find(record.id)) is type(record)


def test_kinds_name_every_model_with_an_id_prefix() -> None:
    named = set(KINDS.values())
    assert named == {m for m in MODELS if m.id_prefix}
    assert {KINDS[k] for k in ("prd", "ts", "execution", "dep", "workflow")} == named


@pytest.mark.parametrize(
    "hostile", ["../../outside.md", "ABSOLUTE", "prds/../../outside.md", "LINK"]
)
def test_a_body_path_out_of_its_folder_is_never_read_written_or_deleted(
    model: TaskModel, tree: dict[str, Any], tmp_path: Path, hostile: str
) -> None:
    """A `file` field that arrived through git pointing out of the store (a relative
    escape, an absolute path, a link committed into prds/): body, set_body and delete
    --cascade leave the outside file alone, check names the record. (Mutation: join the
    path without the realpath check in bodies.body_file: body() prints the outside file.)"""
    outside = tmp_path / "outside.md"
    outside.write_text("secret\n")
    store = model.store
    if hostile == "ABSOLUTE":
        hostile = str(outside)
    elif hostile == "LINK":
        os.symlink(outside, os.path.join(store.path, "prds", "link.md"))
        hostile = "prds/link.md"
    hostile_prd = store.update(replace(tree["prd"], file=hostile))
    with pytest.raises(ValidationError, match="is not inside prds/"):
        model.body(hostile_prd)
    with pytest.raises(ValidationError, match="is not inside prds/"):
        model.set_body(hostile_prd, "overwritten\n")
    problems = [str(p) for p in store.check(checks=CHECKS)]
    assert any("is not inside prds/" in p and hostile_prd.id in p for p in problems), problems
    model.delete_prd(hostile_prd.id, cascade=True)
    assert outside.read_text() == "secret\n"
    assert store.get(PRD, hostile_prd.id) is None
