"""Several clones of one bare remote converge through push, pull and the merge driver.

git is the distributed engine: every clone is a full replica. Three clones write and edit
records (the same ids in every clone, and ids of their own), commit, then pull (merge or
rebase) and push in turn, for several rounds. In the end every clone holds the same state,
every write made anywhere is either there or superseded by a newer version, and no pull
ever stopped on a conflict. Every write gets its own millisecond: the rules only conflict
on equal updated_at.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from testing import Result, cli, commit_all, git, init_repo

from git_taskstore import Store
from git_taskstore.jsonl import reduce_lines

ROUNDS = 5
SHARED = ("s1", "s2", "s3", "s4")  # every clone edits these every round
FIELDS = ("status", "title", "owner", "pri")


# git runs the hooks and git-taskstore-merge by name: they must be this venv's. Each test
# drives several clones through many pulls and pushes: CI runs them, the default loop skips.
pytestmark = [pytest.mark.usefixtures("venv_first_on_path"), pytest.mark.slow]


@dataclass
class Write:
    """One write made in one clone: what it set, and the version it got."""

    clone: str
    collection: str
    id: str
    fields: dict[str, Any]  # the fields the write set ({} for a delete)
    version: int
    deleted: bool = False


def run_git(cwd: Path, *args: str) -> Result:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def next_millisecond(after: int) -> None:
    """Wait until the clock has passed ``after``: no two writes share an updated_at."""
    while time.time_ns() // 1_000_000 <= after:
        time.sleep(0.001)


@dataclass
class Clone:
    name: str
    path: Path
    rebase: bool  # pulls with --rebase instead of a merge
    log: list[Write]  # shared by all clones

    def put(self, store: Store, collection: str, fields: dict[str, Any]) -> None:
        written = store.collection(collection).put(fields, merge=True)
        patch = {k: v for k, v in fields.items() if k != "id"}
        self.log.append(Write(self.name, collection, written["id"], patch, written["updated_at"]))

    def delete(self, store: Store, collection: str, record_id: str) -> None:
        assert store.collection(collection).delete(record_id)
        winners, _ = reduce_lines(store_file(self.path, collection).read_bytes())
        stone = winners[record_id]
        assert stone.deleted
        self.log.append(Write(self.name, collection, record_id, {}, stone.version, True))

    def work(self, round_no: int, rng: random.Random) -> None:
        """Edit every shared id (a random set of fields), create one record of our own,
        edit the previous one, delete an older one now and then; then commit."""
        with Store.open(self.path, create=False) as store:
            for rid in SHARED:
                chosen = rng.sample(FIELDS, rng.randint(1, len(FIELDS)))
                patch = {f: f"{self.name} r{round_no} {f}" for f in chosen}
                self.put(store, "tasks", {"id": rid, **patch, f"seen_by_{self.name}": round_no})
            mine = f"{self.name}-{round_no}"
            self.put(store, "tasks", {"id": mine, "title": f"made by {self.name}", "pri": 0})
            if round_no >= 1:
                self.put(store, "tasks", {"id": f"{self.name}-{round_no - 1}", "status": "done"})
            if round_no >= 2 and round_no % 2 == 0:
                self.delete(store, "tasks", f"{self.name}-{round_no - 2}")
            self.put(store, "notes", {"id": "board", f"line_{self.name}": round_no})
        commit_all(self.path, f"{self.name}: round {round_no}")

    def pull(self) -> None:
        how = "--rebase" if self.rebase else "--no-rebase"
        result = run_git(self.path, "pull", "-q", "--no-edit", how, "origin", "main")
        assert result.code == 0, f"{self.name}: pull {how} failed\n{result}"
        assert "CONFLICT" not in result.out + result.err, result
        assert "git-taskstore-merge" not in result.err, result  # no fallback, no conflict

    def push(self) -> bool:
        result = run_git(self.path, "push", "-q", "origin", "HEAD:main")
        if result.code != 0:
            assert "rejected" in result.err or "fetch first" in result.err, result
        return result.code == 0

    def sync_with_remote(self, *, pull_first: bool = True) -> int:
        """(Pull and) push; pull and push again while the push is rejected. Return the
        number of rejected pushes."""
        if not pull_first and self.push():
            return 0
        rejected = 0 if pull_first else 1
        for _ in range(5):
            self.pull()
            if self.push():
                return rejected
            rejected += 1
        raise AssertionError(f"{self.name}: push still rejected {rejected} times")


def store_file(repo: Path, collection: str) -> Path:
    return repo / ".taskstore" / f"{collection}.jsonl"


def current_versions(repo: Path) -> dict[tuple[str, str], Any]:
    """(collection, id) -> the current version in the files, tombstones included."""
    out = {}
    for path in sorted((repo / ".taskstore").glob("*.jsonl")):
        winners, bad = reduce_lines(path.read_bytes())
        assert not bad, (path, bad)
        for rid, winner in winners.items():
            out[(path.stem, rid)] = winner
    return out


def live_state(repo: Path) -> dict[str, dict[str, dict[str, Any]]]:
    with Store.open(repo, create=False) as store:
        every = {name: store.collection(name).list() for name in store.collections()}
    return {name: {r["id"]: r for r in rows} for name, rows in every.items()}


def make_clones(tmp_path: Path, log: list[Write], rebasing: set[str]) -> list[Clone]:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    seed = init_repo(tmp_path / "seed")
    assert cli("init", cwd=seed).code == 0
    with Store.open(seed, create=False) as store:
        store.collection("tasks").put_many([{"id": rid, "title": "seed"} for rid in SHARED])
    commit_all(seed, "seed")
    git(seed, "push", "-q", str(remote), "main")
    clones = []
    for name in ("ana", "bo", "cy"):
        path = tmp_path / name
        git(tmp_path, "clone", "-q", str(remote), str(path))
        done = cli("init", cwd=path)
        assert done.code == 0, done
        assert git(path, "status", "--porcelain") == ""  # init changed config only
        clones.append(Clone(name, path, name in rebasing, log))
    return clones


def assert_converged(clones: list[Clone], log: list[Write]) -> None:
    heads = {git(c.path, "rev-parse", "HEAD") for c in clones}
    assert len(heads) == 1, heads
    states = [live_state(c.path) for c in clones]
    assert all(s == states[0] for s in states), "clones at the same commit read differently"
    for clone in clones:
        assert cli("check", cwd=clone.path).code == 0
        status = json.loads(cli("status", "--json", cwd=clone.path).out)
        # Pulls (post-merge, post-rewrite) kept every cache fresh on their own.
        assert {row["freshness"] for row in status["collections"]} == {"fresh"}, clone.name

    final = current_versions(clones[0].path)
    for write in log:
        winner = final.get((write.collection, write.id))
        assert winner is not None, f"{write} vanished"
        if winner.version > write.version:
            continue  # superseded by a newer version
        assert winner.version == write.version, f"{write} lost to an older {winner}"
        record = json.loads(winner.raw)
        if write.deleted:
            assert winner.deleted, f"{write}: the delete was undone"
        else:
            # The newest version of its record: every field it set is there.
            assert {k: record.get(k) for k in write.fields} == write.fields, (write, record)
    assert newest_writes_won(log, live_state(clones[0].path)) == []


def newest_writes_won(log: list[Write], state: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Each field of each live record against the newest write that set it (no write
    here follows a delete of its id): what differs, if anything."""
    newest: dict[tuple[str, str, str], Write] = {}
    for write in log:
        for key in write.fields:
            found = newest.get((write.collection, write.id, key))
            if found is None or write.version > found.version:
                newest[write.collection, write.id, key] = write
    wrong = []
    for (collection, rid, key), write in newest.items():
        record = state.get(collection, {}).get(rid)
        if record is not None and record.get(key) != write.fields[key]:
            wrong.append(f"{collection}/{rid}.{key}: {record.get(key)!r}, newest {write}")
    return wrong


def test_three_clones_converge(tmp_path: Path) -> None:
    rng = random.Random(20260101)
    log: list[Write] = []
    clones = make_clones(tmp_path, log, rebasing={"bo"})
    rejected = 0
    for round_no in range(ROUNDS):
        # Odd rounds start from the same commit everywhere: then the first push wins and
        # the others are rejected, pull (merging their own work into it) and push again.
        catch_up = round_no % 2 == 1
        if catch_up:
            for clone in clones:
                clone.pull()
        # Everyone works (in an order that changes each round), each write its own ms...
        for clone in rng.sample(clones, len(clones)):
            next_millisecond(max(w.version for w in log) if log else 0)
            clone.work(round_no, rng)
        # ...then, in another order, pulls and pushes.
        for clone in rng.sample(clones, len(clones)):
            rejected += clone.sync_with_remote(pull_first=not catch_up)
    for clone in clones:
        clone.pull()
    assert rejected >= 2 * (ROUNDS // 2)  # the retry path ran

    assert_converged(clones, log)
    assert sum(w.deleted for w in log) == 2 * len(clones)
    merged = sum("Merge" in git(c.path, "log", "--format=%s") for c in clones)
    assert merged  # the pulls really merged (not only fast-forwards)


def test_two_clones_merging_the_same_push_do_not_conflict(tmp_path: Path) -> None:
    log: list[Write] = []
    ana, bo, cy = make_clones(tmp_path, log, rebasing=set())
    # cy, then bo, set the same field; ana, last, sets another one.
    for clone, patch in ((cy, {"status": "cy"}), (bo, {"status": "bo"}), (ana, {"owner": "ana"})):
        next_millisecond(max(w.version for w in log) if log else 0)
        with Store.open(clone.path, create=False) as store:
            clone.put(store, "tasks", {"id": "s1", **patch})
        commit_all(clone.path, clone.name)
    assert ana.push()
    bo.pull()  # both merge ana's commit: s1 gets ana's updated_at in both...
    cy.pull()
    assert bo.push()
    assert not cy.push()  # ...and cy, rejected, pulls bo's merge: same updated_at, two values
    cy.sync_with_remote()
    for clone in (ana, bo):
        clone.pull()
    assert_converged([ana, bo, cy], log)
    assert live_state(ana.path)["tasks"]["s1"]["status"] == "bo"  # bo wrote it after cy
