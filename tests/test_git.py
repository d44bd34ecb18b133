"""git-taskstore inside real git: merges, rebases and resolve through the driver, fresh clones.

Every test drives the real `git` binary in a temporary repository wired by
`git taskstore init`, so git itself starts `git-taskstore-merge` and the hooks, found on
PATH exactly as a user's shell would find them. Records are written through the Store API
(real `updated_at` stamps); only a forced conflict or a broken file is written by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from testing import Result, cli, git
from testing.repos import (
    TASKS,
    TASKS_REL,
    append_raw,
    freshness,
    line,
    new_repo,
    ok,
    on_branch,
    run_git,
    seed_t1,
    state,
    tasks_of,
)

from git_taskstore import Record, Store

State = dict[str, dict[str, dict[str, Any]]]  # collection -> id -> record


# git runs the hooks and git-taskstore-merge by name: they must be this venv's.
pytestmark = pytest.mark.usefixtures("venv_first_on_path")


# --- helpers ------------------------------------------------------------------------------


@dataclass
class Task(Record):
    """A typed record that declares only some of the fields the file holds."""

    collection_name: ClassVar[str] = "tasks"
    title: str = ""
    status: str = "open"


def full_state(repo: Path) -> State:
    """Every collection with live records: collection -> id -> record."""
    with Store.open(repo, create=False) as store:
        every = {name: store.collection(name).list() for name in store.collections()}
    return {name: {r["id"]: r for r in rows} for name, rows in every.items() if rows}


def unmerged(repo: Path) -> list[str]:
    return git(repo, "diff", "--name-only", "--diff-filter=U").split()


def assert_clean_store(repo: Path) -> None:
    """`check` passes: no markers, no bad lines, a valid cache."""
    ok(cli("check", cwd=repo))


# --- the merge rules, as a merge and as a rebase --------------------------------------------
#
# Each rule builds three commits: main (the base), then "left" and "right" forked from it,
# left written before right so right's edits carry the newer updated_at. It returns the
# state every way of combining the two branches must read back.

RULES: dict[str, Any] = {}


def rule(fn: Any) -> Any:
    RULES[fn.__name__.removeprefix("rule_")] = fn
    return fn


@rule
def rule_one_sided_edit(repo: Path) -> State:
    with on_branch(repo, "main") as s:
        tasks_of(s).put({"id": "t1", "title": "a", "status": "open"})
        tasks_of(s).put({"id": "t2", "title": "b", "status": "open"})
    with on_branch(repo, "left", "main") as s:
        left = tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
    with on_branch(repo, "right", "main") as s:
        right = tasks_of(s).put({"id": "t2", "title": "B"}, merge=True)
    return {"tasks": {"t1": left, "t2": right}}


@rule
def rule_both_same(repo: Path) -> State:
    with on_branch(repo, "main") as s:
        t1 = tasks_of(s).put({"id": "t1", "title": "a", "status": "open"})
        tasks_of(s).put({"id": "t2", "title": "b", "status": "open"})
    # t1: the very same version on both sides (as a cherry-pick or an import leaves it);
    # t2: the same change made on both sides at different times.
    same = {**t1, "status": "done", "updated_at": t1["updated_at"] + 5_000}
    with on_branch(repo, "left", "main") as s:
        s.import_data({"tasks": [dict(same)]})
        tasks_of(s).put({"id": "t2", "status": "done"}, merge=True)
    with on_branch(repo, "right", "main") as s:
        s.import_data({"tasks": [dict(same)]})
        right_t2 = tasks_of(s).put({"id": "t2", "status": "done"}, merge=True)
    return {"tasks": {"t1": same, "t2": right_t2}}


@rule
def rule_field_level(repo: Path) -> State:
    with on_branch(repo, "main") as s:
        base = tasks_of(s).put(
            {"id": "t1", "title": "a", "status": "open", "owner": "ann", "pri": 1}
        )
    with on_branch(repo, "left", "main") as s:
        tasks_of(s).put({"id": "t1", "title": "A (left)", "owner": "bob"}, merge=True)
    with on_branch(repo, "right", "main") as s:
        right = tasks_of(s).put({"id": "t1", "status": "done", "owner": "cy"}, merge=True)
    # title: only left changed it; status: only right; owner: both, right is newer.
    merged = {**base, "title": "A (left)", "status": "done", "owner": "cy"}
    merged["updated_at"] = right["updated_at"]
    return {"tasks": {"t1": merged}}


@rule
def rule_delete_beats_edit(repo: Path) -> State:
    with on_branch(repo, "main") as s:
        for rid in ("t1", "t2", "t3"):
            tasks_of(s).put({"id": rid, "title": rid, "status": "open"})
        t3 = tasks_of(s).get("t3")
    # t1: deleted on left, edited later on right; t2: edited on left, deleted later on
    # right. The delete wins both ways round, whichever side is "ours".
    with on_branch(repo, "left", "main") as s:
        assert tasks_of(s).delete("t1")
        tasks_of(s).put({"id": "t2", "status": "edited on left"}, merge=True)
    with on_branch(repo, "right", "main") as s:
        tasks_of(s).put({"id": "t1", "status": "edited on right"}, merge=True)
        assert tasks_of(s).delete("t2")
    return {"tasks": {"t3": t3}}


@rule
def rule_unknown_fields_kept(repo: Path) -> State:
    meta = {"origin": "rust-crate", "tags": ["x", "y"], "weight": 2.5}
    with on_branch(repo, "main") as s:
        base = tasks_of(s).put({"id": "t1", "title": "a", "status": "open", "rust_meta": meta})
    with on_branch(repo, "left", "main") as s:
        # A typed edit: Task declares neither rust_meta nor labels.
        task = s.get(Task, "t1")
        assert task is not None and task.extra_fields == {"rust_meta": meta}
        task.status = "done"
        s.update(task)
    with on_branch(repo, "right", "main") as s:
        right = tasks_of(s).put({"id": "t1", "labels": ["ui"], "title": "A"}, merge=True)
    merged = {**base, "title": "A", "status": "done", "labels": ["ui"]}
    merged["updated_at"] = right["updated_at"]
    return {"tasks": {"t1": merged}}


@rule
def rule_new_record_on_each_side(repo: Path) -> State:
    with on_branch(repo, "main") as s:
        base = tasks_of(s).put({"id": "t1", "title": "a", "status": "open"})
    with on_branch(repo, "left", "main") as s:
        left = tasks_of(s).put({"id": "t-left", "title": "made on left"})
    with on_branch(repo, "right", "main") as s:
        right = tasks_of(s).put({"id": "t-right", "title": "made on right"})
    return {"tasks": {"t1": base, "t-left": left, "t-right": right}}


@rule
def rule_new_collection_on_each_side(repo: Path) -> State:
    """Both sides create notes.jsonl: git calls the driver with an empty base (add/add)."""
    with on_branch(repo, "main") as s:
        base = tasks_of(s).put({"id": "t1", "title": "a"})
    with on_branch(repo, "left", "main") as s:
        left = s.collection("notes").put({"id": "n-left", "text": "left"})
        shared_l = s.collection("notes").put({"id": "n-both", "text": "same id", "by": "left"})
    with on_branch(repo, "right", "main") as s:
        right = s.collection("notes").put({"id": "n-right", "text": "right"})
        shared_r = s.collection("notes").put({"id": "n-both", "text": "same id", "by": "right"})
    assert shared_r["updated_at"] > shared_l["updated_at"]
    notes = {"n-left": left, "n-right": right, "n-both": {**shared_l, **shared_r}}
    # Created on both sides: created_at differs, and the newer side wins each field.
    return {"tasks": {"t1": base}, "notes": notes}


@rule
def rule_compacted_on_one_side(repo: Path) -> State:
    """`compact` rewrites the file on one branch while the other appends to it."""
    with on_branch(repo, "main") as s:
        for status in ("open", "active", "blocked"):
            tasks_of(s).put({"id": "t1", "title": "a", "status": status})
        tasks_of(s).put({"id": "t2", "title": "doomed"})
        assert tasks_of(s).delete("t2")
        t3 = tasks_of(s).put({"id": "t3", "title": "c"})
    with on_branch(repo, "left", "main") as s:
        (compacted,) = s.compact("tasks")
        assert compacted.lines_after < compacted.lines_before
    with on_branch(repo, "right", "main") as s:
        t1 = tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
        t4 = tasks_of(s).put({"id": "t4", "title": "d"})
    return {"tasks": {"t1": t1, "t3": t3, "t4": t4}}


# (how, first parent or upstream, the other branch)
COMBINATIONS = [
    ("merge", "left", "right"),
    ("merge", "right", "left"),
    ("rebase", "left", "right"),  # right's commits replayed onto left
    ("rebase", "right", "left"),
]


def combine(repo: Path, how: str, onto: str, other: str) -> Result:
    if how == "merge":
        git(repo, "checkout", "-q", "-B", "result", onto)
        return run_git(repo, "merge", "--no-edit", other)
    git(repo, "checkout", "-q", "-B", "result", other)
    return run_git(repo, "rebase", onto)


# One rule runs by default, every rule in CI: each case is four real merges and rebases.
@pytest.mark.parametrize(
    "name",
    [pytest.param(name, marks=() if name == "field_level" else pytest.mark.slow) for name in RULES],
)
def test_merge_rule_through_merge_and_rebase(tmp_path: Path, name: str) -> None:
    repo = new_repo(tmp_path / "a repo")  # a space in the path, for the hooks' quoting
    expected = RULES[name](repo)
    for how, onto, other in COMBINATIONS:
        done = ok(combine(repo, how, onto, other))
        assert "CONFLICT" not in done.out + done.err, (how, onto, other, done)
        assert git(repo, "merge-base", "--is-ancestor", onto, "HEAD") == ""  # both sides in
        # post-merge / post-rewrite brought the cache up to date: no manual sync.
        assert set(freshness(repo).values()) == {"fresh"}, (how, onto, other)
        assert full_state(repo) == expected, (how, onto, other)
        assert git(repo, "status", "--porcelain") == ""
    assert_clean_store(repo)


def test_same_line_on_both_sides_is_kept_once(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    expected = rule_both_same(repo)
    ok(combine(repo, "merge", "left", "right"))
    same = expected["tasks"]["t1"]
    records = [json.loads(raw) for raw in (repo / TASKS).read_text().splitlines()]
    assert records.count(same) == 1


@pytest.mark.slow
def test_criss_cross_merge_is_record_level(tmp_path: Path) -> None:
    """Two branches that merged each other: git first merges the two merge bases into a
    virtual base (calling the driver), then merges against it."""
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    with on_branch(repo, "a", "main") as s:
        tasks_of(s).put({"id": "t1", "title": "A"}, merge=True)
    with on_branch(repo, "b", "main") as s:
        tasks_of(s).put({"id": "t1", "status": "active"}, merge=True)
    a1, b1 = (git(repo, "rev-parse", x).strip() for x in ("a", "b"))
    git(repo, "checkout", "-q", "a")
    ok(run_git(repo, "merge", "--no-edit", b1))
    git(repo, "checkout", "-q", "b")
    ok(run_git(repo, "merge", "--no-edit", a1))
    assert len(git(repo, "merge-base", "--all", "a", "b").split()) == 2  # criss-cross
    with on_branch(repo, "a") as s:
        owner = tasks_of(s).put({"id": "t1", "owner": "ana"}, merge=True)
    with on_branch(repo, "b") as s:
        tasks_of(s).put({"id": "t2", "status": "done"}, merge=True)
        made = tasks_of(s).put({"id": "t3", "title": "on b"})
    for how, onto, other in (("merge", "a", "b"), ("merge", "b", "a")):
        done = ok(combine(repo, how, onto, other))
        assert "CONFLICT" not in done.out, done
        now = state(repo)
        assert now["t1"] == {**owner, "title": "A", "status": "active"}
        assert now["t2"]["status"] == "done" and now["t3"] == made
        assert freshness(repo) == {"tasks": "fresh"}
    assert_clean_store(repo)


@pytest.mark.slow
def test_multi_commit_rebase_matches_merge(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    with on_branch(repo, "main") as s:
        tasks_of(s).put({"id": "t1", "f": "base", "g": "base"})
    with on_branch(repo, "right", "main") as s:
        tasks_of(s).put({"id": "t1", "f": "right, early"}, merge=True)
    with on_branch(repo, "left", "main") as s:
        tasks_of(s).put({"id": "t1", "f": "left, later"}, merge=True)
    with on_branch(repo, "right") as s:
        tasks_of(s).put({"id": "t1", "g": "right, last"}, merge=True)
    results = {}
    for how, onto, other in COMBINATIONS:
        ok(combine(repo, how, onto, other))
        results[(how, onto, other)] = state(repo)
    # Merges give f to right (its record is newer: g was written last); replaying right
    # onto left merges commit by commit and gives f to left, which wrote it after right.
    assert len({json.dumps(r, sort_keys=True) for r in results.values()}) == 1, results


# --- cherry-pick, revert, stash pop ---------------------------------------------------------


def test_cherry_pick_merges_records(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    with on_branch(repo, "feature", "main") as s:
        tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
        made = tasks_of(s).put({"id": "t3", "title": "from feature"})
    with on_branch(repo, "main") as s:
        retitled = tasks_of(s).put({"id": "t1", "title": "A"}, merge=True)
    ok(run_git(repo, "cherry-pick", "feature"))
    now = state(repo)
    assert now["t1"] == {**retitled, "status": "done"}
    assert now["t3"] == made
    assert set(now) == {"t1", "t2", "t3"}
    assert_clean_store(repo)


def test_revert_undoes_one_commit_of_records(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    with on_branch(repo, "main") as s:
        tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
    bad = git(repo, "rev-parse", "HEAD").strip()
    with on_branch(repo, "main") as s:
        later = tasks_of(s).put({"id": "t1", "title": "A"}, merge=True)
        made = tasks_of(s).put({"id": "t3", "title": "later work"})
    ok(run_git(repo, "revert", "--no-edit", bad))
    now = state(repo)
    # The reverted field is back; the later edit of another field, and t3, stay.
    assert now["t1"]["status"] == "open"
    assert now["t1"]["title"] == "A"
    assert now["t1"]["updated_at"] >= later["updated_at"]
    assert now["t3"] == made
    assert_clean_store(repo)


def test_stash_pop_merges_records(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    with Store.open(repo, create=False) as s:
        tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
        stashed_new = tasks_of(s).put({"id": "t4", "title": "in the stash"})
    git(repo, "stash", "-q")
    assert "t4" not in state(repo)
    with on_branch(repo, "main") as s:
        retitled = tasks_of(s).put({"id": "t1", "title": "A"}, merge=True)
        made = tasks_of(s).put({"id": "t3", "title": "committed meanwhile"})
    ok(run_git(repo, "stash", "pop"))
    assert git(repo, "stash", "list") == ""  # popped: git saw no conflict
    now = state(repo)
    assert now["t1"] == {**retitled, "status": "done"}
    assert now["t3"] == made
    assert now["t4"] == stashed_new
    assert_clean_store(repo)


# --- conflicts --------------------------------------------------------------------------------


def conflicting_branches(repo: Path) -> dict[str, Any]:
    """t1 changed on both sides to different values at the same updated_at (by hand), plus
    clean changes around it: a new record on each side and another collection."""
    with on_branch(repo, "main") as s:
        base = tasks_of(s).put({"id": "t1", "title": "a", "status": "open"})
        s.collection("notes").put({"id": "n1", "text": "untouched collection"})
    tie = base["updated_at"] + 1_000
    with on_branch(repo, "left", "main") as s:
        tasks_of(s).put({"id": "t-left", "title": "made on left"})
    append_raw(repo, line({**base, "status": "left", "updated_at": tie}))
    git(repo, "commit", "-q", "-am", "left sets t1 at the tie")
    with on_branch(repo, "right", "main") as s:
        tasks_of(s).put({"id": "t-right", "title": "made on right"})
    append_raw(repo, line({**base, "status": "right", "updated_at": tie}))
    git(repo, "commit", "-q", "-am", "right sets t1 at the tie")
    git(repo, "checkout", "-q", "left")
    return base


def conflict_block(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The one conflict block of a file: its two sides, each one JSON record."""
    lines = text.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("<<<<<<<"))
    assert lines[start + 2].startswith("=======") and lines[start + 4].startswith(">>>>>>>")
    return json.loads(lines[start + 1]), json.loads(lines[start + 3])


def assert_conflict_reported(repo: Path, merged: Result) -> None:
    assert merged.code != 0, merged
    assert "CONFLICT" in merged.out, merged
    assert "git taskstore resolve" in merged.err, merged  # the driver says what to do
    assert unmerged(repo) == [TASKS_REL]
    # Readable markers: one block whose two sides are whole records.
    ours, theirs = conflict_block((repo / TASKS).read_text())
    assert (ours["id"], ours["status"]) == ("t1", "left")
    assert (theirs["id"], theirs["status"]) == ("t1", "right")
    # The store refuses that collection, naming the file and the fix...
    listing = cli("list", "tasks", cwd=repo)
    assert listing.code == 1, listing
    assert TASKS_REL in listing.err and "git taskstore resolve" in listing.err, listing
    assert "Traceback" not in listing.err
    # ...while the others keep working.
    assert list(state(repo, "notes")) == ["n1"]
    # Committing the file as it is is refused by the pre-commit hook, naming file and line.
    refused = run_git(repo, "commit", "-am", "merge with markers")
    assert refused.code != 0, refused
    assert f"{TASKS_REL}:" in refused.err and "commit refused" in refused.err, refused
    assert "<<<<<<<" in (repo / TASKS).read_text()


@pytest.mark.parametrize(
    ("flag", "winner"), [("--theirs", "right"), ("--ours", "left"), (None, "right")]
)
def test_conflict_reported_then_resolved(tmp_path: Path, flag: str | None, winner: str) -> None:
    repo = new_repo(tmp_path / "repo")
    conflicting_branches(repo)
    merged = run_git(repo, "merge", "--no-edit", "right")
    assert_conflict_reported(repo, merged)

    resolved = ok(cli("resolve", *([flag] if flag else []), cwd=repo))
    assert f"{TASKS_REL}: 1 conflict(s) resolved" in resolved.out
    assert "<<<<<<<" not in (repo / TASKS).read_text()
    git(repo, "add", TASKS_REL)
    ok(run_git(repo, "commit", "--no-edit"))
    assert_clean_store(repo)
    now = state(repo)
    assert now["t1"]["status"] == winner
    assert {"t-left", "t-right"} <= set(now)
    assert git(repo, "status", "--porcelain") == ""
    if flag is None:
        # --newest keeps both candidate lines; the tie goes to the later one, theirs.
        statuses = [json.loads(x).get("status") for x in (repo / TASKS).read_text().splitlines()]
        assert statuses[-2:] == ["left", "right"]


@pytest.mark.slow
def test_rebase_conflict_resolved_then_continued(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    conflicting_branches(repo)
    stopped = run_git(repo, "rebase", "right")
    assert stopped.code != 0 and "CONFLICT" in stopped.out + stopped.err, stopped
    assert unmerged(repo) == [TASKS_REL]
    ok(cli("resolve", "--theirs", cwd=repo))  # in a rebase, theirs is the replayed commit
    git(repo, "add", TASKS_REL)
    ok(run_git(repo, "rebase", "--continue", env={"GIT_EDITOR": "true"}))
    assert state(repo)["t1"]["status"] == "left"
    assert freshness(repo) == {"notes": "fresh", "tasks": "fresh"}
    assert_clean_store(repo)


def test_bad_jsonl_on_one_side_falls_back_to_a_text_merge(tmp_path: Path) -> None:
    repo = new_repo(tmp_path / "repo")
    seed_t1(repo)
    with on_branch(repo, "left", "main") as s:
        left = tasks_of(s).put({"id": "t-left", "title": "made on left"})
    git(repo, "checkout", "-q", "-b", "right", "main")
    append_raw(repo, "this line is not JSON\n")
    refused = run_git(repo, "commit", "-qam", "broken")
    assert refused.code != 0 and f"{TASKS_REL}:3" in refused.err, refused
    git(repo, "commit", "-q", "--no-verify", "-am", "broken, committed anyway")

    git(repo, "checkout", "-q", "left")
    merged = run_git(repo, "merge", "--no-edit", "right")
    assert merged.code != 0, merged
    assert "CONFLICT" in merged.out, merged
    assert "not clean JSONL" in merged.err and "text merge" in merged.err, merged
    assert unmerged(repo) == [TASKS_REL]
    text = (repo / TASKS).read_text()
    # Both sides are in the file, between markers: never "ours" alone, silently.
    assert "<<<<<<<" in text and ">>>>>>>" in text
    assert line(left) in text and "this line is not JSON\n" in text


# --- a fresh clone ----------------------------------------------------------------------------


@pytest.mark.slow
def test_fresh_clone_needs_init_for_the_driver(tmp_path: Path) -> None:
    origin = new_repo(tmp_path / "origin")
    seed_t1(origin)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert (clone / ".gitattributes").read_text() == ".taskstore/*.jsonl merge=taskstore\n"

    status = ok(cli("status", cwd=clone))
    assert "warning" in status.err and "driver" in status.err, status
    assert "git taskstore init" in status.err, status
    assert "merge driver: MISSING" in status.out

    def diverge(tag: str) -> None:
        with on_branch(clone, f"left-{tag}", "main") as s:
            tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
        with on_branch(clone, f"right-{tag}", "main") as s:
            tasks_of(s).put({"id": "t1", "title": "A"}, merge=True)

    # Without the driver, git merges the lines as text: both sides appended, a conflict.
    diverge("before")
    text_merge = run_git(clone, "merge", "--no-edit", "left-before")
    assert text_merge.code != 0 and "CONFLICT" in text_merge.out, text_merge
    git(clone, "merge", "--abort")

    ok(cli("init", cwd=clone))
    assert "taskstore" in git(clone, "config", "--get", "merge.taskstore.driver")
    assert git(clone, "status", "--porcelain") == ""  # nothing to commit: config only
    status = json.loads(ok(cli("status", "--json", cwd=clone)).out)
    assert status["git"]["driver"] and status["git"]["attribute"]
    assert status["git"]["warnings"] == []
    diverge("after")
    ok(run_git(clone, "merge", "--no-edit", "left-after"))
    t1 = state(clone)["t1"]
    assert (t1["title"], t1["status"]) == ("A", "done")
    assert freshness(clone) == {"tasks": "fresh"}


def test_text_conflict_from_a_merge_without_the_driver_is_resolvable(tmp_path: Path) -> None:
    """A clone merged before `init` (or a diff3-style text merge): resolve still settles it."""
    origin = new_repo(tmp_path / "origin")
    seed_t1(origin)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    git(clone, "config", "merge.conflictStyle", "diff3")
    with on_branch(clone, "left", "main") as s:
        tasks_of(s).put({"id": "t1", "status": "done"}, merge=True)
    with on_branch(clone, "right", "main") as s:
        newer = tasks_of(s).put({"id": "t1", "title": "A"}, merge=True)
    merged = run_git(clone, "merge", "--no-edit", "left")
    assert merged.code != 0 and "|||||||" in (clone / TASKS).read_text(), merged
    assert cli("list", "tasks", cwd=clone).code == 1
    ok(cli("resolve", cwd=clone))
    git(clone, "add", TASKS_REL)
    ok(run_git(clone, "commit", "--no-edit"))
    assert_clean_store(clone)
    # --newest: the greater updated_at wins the whole record (no field merge without the
    # driver: run `git taskstore init` in every clone before merging).
    assert state(clone)["t1"] == newer
