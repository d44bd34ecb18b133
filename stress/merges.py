"""Many clones of one bare remote writing the same records: every field ends at its newest write.

In each round every clone edits the shared records (a random set of fields each time,
every write its own millisecond) and commits; then, in another order, each pulls (half
with ``--rebase``, half with a merge) and pushes, retrying while the push is rejected. In
the end every clone pulls once more. The oracle is the log of every acknowledged write:
after every pull, each field must hold the value of the newest write of it that the
clone's file holds; in the end, of the newest write anywhere, alike in every clone. The
same run with git's ``merge=union`` (every line of both sides kept, the newest whole
version wins) is the peer.

    python -m stress.merges --clones 10 --rounds 20
    python -m stress.merges --clones 10 --rounds 20 --union
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from git_taskstore import Store

FIELDS = ("status", "title", "owner", "priority", "notes")
ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "stress",
    "GIT_AUTHOR_EMAIL": "stress@example.com",
    "GIT_COMMITTER_NAME": "stress",
    "GIT_COMMITTER_EMAIL": "stress@example.com",
}


@dataclass
class Report:
    clones: int
    rounds: int
    driver: str
    writes: int = 0
    pulls: int = 0
    merge_commits: int = 0
    rejected_pushes: int = 0
    stopped_pulls: int = 0  # pulls that stopped on a conflict (then resolved --newest)
    wrong_fields: int = 0  # fields not at their newest write, in the final state
    # After each pull: fields not at the newest write the clone's file holds (a wrong
    # value pushed spreads until a later write overwrites it), and pulls with any.
    wrong_after_pulls: int = 0
    pulls_with_wrong_fields: int = 0
    clones_disagree: int = 0
    examples: list[str] = field(default_factory=list)


# The environment of every git and git-taskstore process: sealed by run().
_env: dict[str, str] = {}


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, env=_env or None
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} in {cwd.name}: {proc.stderr.strip()}")
    return proc


def taskstore(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "git_taskstore", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env=_env or None,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git taskstore {' '.join(args)}: {proc.stderr.strip()}")


def next_millisecond(after: int) -> int:
    while (now := time.time_ns() // 1_000_000) <= after:
        time.sleep(0.0005)
    return now


def run(work: Path, clones: int, rounds: int, ids: int, union: bool, seed: int) -> Report:
    # A sealed git: no user or system config; the hooks and the driver are this Python's.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    _env.clear()
    _env.update(os.environ, **ENV, HOME=str(work), PATH=path)
    rng = random.Random(seed)
    _writes.clear()
    report = Report(clones, rounds, "merge=union" if union else "git-taskstore-merge")
    remote = work / "remote.git"
    git(work, "init", "-q", "--bare", "-b", "main", str(remote))
    shared = [f"s{i}" for i in range(ids)]
    seed_dir = work / "seed"
    git(work, "init", "-q", "-b", "main", str(seed_dir))
    taskstore(seed_dir, "init")
    with Store.open(seed_dir, create=False) as store:
        store.collection("tasks").put_many([{"id": rid, "title": "seed"} for rid in shared])
    git(seed_dir, "add", "-A")
    git(seed_dir, "commit", "-q", "-m", "seed")
    git(seed_dir, "push", "-q", str(remote), "main")
    paths = []
    for n in range(clones):
        path = work / f"clone{n}"
        git(work, "clone", "-q", str(remote), str(path))
        taskstore(path, "init")
        if union:  # info/attributes outranks the committed .gitattributes
            (path / ".git" / "info").mkdir(exist_ok=True)
            (path / ".git" / "info" / "attributes").write_text("*.jsonl merge=union\n")
        paths.append(path)
    newest: dict[tuple[str, str], tuple[int, Any]] = {}  # (id, field) -> (version, value)
    last = 0
    for round_no in range(rounds):
        for n in rng.sample(range(clones), clones):
            path = paths[n]
            with Store.open(path, create=False) as store:
                tasks = store.collection("tasks")
                for rid in rng.sample(shared, max(1, ids // 2)):
                    last = next_millisecond(last)
                    chosen = rng.sample(FIELDS, rng.randint(1, 3))
                    patch = {f: f"c{n} r{round_no} {f}" for f in chosen}
                    written = tasks.put({"id": rid, **patch}, merge=True)
                    last = max(last, written["updated_at"])
                    line = _last_line(path)
                    for key, value in patch.items():
                        newest[rid, key] = (written["updated_at"], value)
                        _writes.append((line, rid, key, written["updated_at"], value))
                    report.writes += 1
            git(path, "add", "-A")
            git(path, "commit", "-q", "-m", f"clone{n} round {round_no}")
        # Everyone has worked; now, in another order, each pulls and pushes: a clone's
        # writes meet newer writes of others made before it pushed.
        for n in rng.sample(range(clones), clones):
            _sync(paths[n], rng.random() < 0.5, report)
    for path in paths:
        _pull(path, False, report)
    states = []
    for path in paths:
        with Store.open(path, create=False) as store:
            states.append({r["id"]: r for r in store.collection("tasks").list()})
    report.clones_disagree = sum(state != states[0] for state in states)
    for (rid, key), (version, value) in sorted(newest.items()):
        got = states[0].get(rid, {}).get(key)
        if got != value:
            report.wrong_fields += 1
            if len(report.examples) < 5:
                report.examples.append(
                    f"{rid}.{key} = {got!r}, newest write {value!r} at {version}"
                )
    report.merge_commits = int(
        git(paths[0], "rev-list", "--count", "--merges", "HEAD").stdout.strip() or 0
    )
    return report


# Every write made: (its line in the file, id, field, version, value). A write is in a
# clone's history when its line is in the clone's file (a rebase replays it verbatim).
_writes: list[tuple[bytes, str, str, int, Any]] = []


def _last_line(path: Path) -> bytes:
    data = (path / ".taskstore" / "tasks.jsonl").read_bytes()
    return data.rstrip(b"\n").rsplit(b"\n", 1)[-1]


def _check_pull(path: Path, report: Report) -> None:
    """Each field against the newest write of it that the clone's file holds."""
    lines = set((path / ".taskstore" / "tasks.jsonl").read_bytes().split(b"\n"))
    newest: dict[tuple[str, str], tuple[int, Any]] = {}
    for line, rid, key, version, value in _writes:
        if line in lines and version > newest.get((rid, key), (0, None))[0]:
            newest[rid, key] = (version, value)
    with Store.open(path, create=False) as store:
        state = {r["id"]: r for r in store.collection("tasks").list()}
    wrong = sum(state.get(rid, {}).get(key) != value for (rid, key), (_, value) in newest.items())
    report.wrong_after_pulls += wrong
    report.pulls_with_wrong_fields += wrong > 0


def _sync(path: Path, rebase: bool, report: Report) -> None:
    for _ in range(20):
        if git(path, "push", "-q", "origin", "HEAD:main", check=False).returncode == 0:
            return
        report.rejected_pushes += 1
        _pull(path, rebase, report)
    raise RuntimeError(f"{path.name}: push still rejected after 20 pulls")


def _pull(path: Path, rebase: bool, report: Report) -> None:
    report.pulls += 1
    how = "--rebase" if rebase else "--no-rebase"
    proc = git(path, "pull", "-q", "--no-edit", how, "origin", "main", check=False)
    if proc.returncode == 0:
        _check_pull(path, report)
        return
    # A conflict: settle it the way a user would, keeping the newest version of each id.
    report.stopped_pulls += 1
    if len(report.examples) < 5:
        said = [
            line for line in proc.stderr.splitlines() if "taskstore" in line or "CONFLICT" in line
        ]
        report.examples.append(f"{path.name}: pull {how} stopped: {' | '.join(said)[:300]}")
    for _ in range(3):
        taskstore(path, "resolve", "--newest")
        git(path, "add", "-A")
        if rebase:
            done = git(path, "-c", "core.editor=true", "rebase", "--continue", check=False)
        else:
            done = git(path, "commit", "-q", "--no-edit", check=False)
        if done.returncode == 0 and not (path / ".git" / "rebase-merge").exists():
            return
    raise RuntimeError(f"{path.name}: could not settle a stopped pull")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clones", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--ids", type=int, default=8, help="shared records")
    parser.add_argument("--union", action="store_true", help="git's merge=union, the peer")
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="stress-merges-") as tmp:
        report = run(Path(tmp), args.clones, args.rounds, args.ids, args.union, args.seed)
    data = vars(report)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for key, value in data.items():
            print(f"{key:18} {value}")
    lost = report.wrong_fields or report.wrong_after_pulls or report.clones_disagree
    return 1 if lost or report.stopped_pulls else 0


if __name__ == "__main__":
    sys.exit(main())
