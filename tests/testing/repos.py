"""Helpers for tests that drive real git in a repository wired by `git taskstore init`."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from git_taskstore import Collection, Store

from . import Result, cli, commit_all, git, init_repo

TASKS = Path(".taskstore") / "tasks.jsonl"
TASKS_REL = TASKS.as_posix()


def run_git(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """Real git whose failure is an expected outcome: exit code and both streams."""
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def ok(result: Result) -> Result:
    assert result.code == 0, result
    assert "Traceback" not in result.out + result.err, result
    return result


def new_repo(path: Path, *, hooks: bool = True) -> Path:
    """A repository with an initialised store (driver, attribute, hooks), committed."""
    init_repo(path)
    ok(cli("init", *([] if hooks else ["--no-hooks"]), cwd=path))
    commit_all(path, "init taskstore")
    return path


def hooks_dir(repo: Path) -> Path:
    return Path(git(repo, "rev-parse", "--path-format=absolute", "--git-path", "hooks").strip())


def files_in(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every hook file (not git's *.sample): name -> (bytes, mode)."""
    return {
        p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.endswith(".sample")
    }


def write_hook(folder: Path, name: str, body: str) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    data = f"#!/bin/sh\n{body}\n".encode()
    path.write_bytes(data)
    path.chmod(0o755)
    return data


def append_raw(repo: Path, text: str, collection: str = "tasks") -> None:
    """Write bytes into a JSONL file by hand (a forced tie, a broken line)."""
    with open(repo / ".taskstore" / f"{collection}.jsonl", "a") as handle:
        handle.write(text)


def line(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":")) + "\n"


def freshness(repo: Path) -> dict[str, str]:
    """What `git taskstore status` says of each collection, without syncing."""
    status = json.loads(ok(cli("status", "--json", cwd=repo)).out)
    return {row["name"]: row["freshness"] for row in status["collections"]}


def path_without_git_taskstore() -> str:
    """PATH with every folder holding a git-taskstore script left out (git stays)."""
    dirs = [
        d
        for d in os.environ["PATH"].split(os.pathsep)
        if d and not os.path.exists(os.path.join(d, "git-taskstore"))
    ]
    assert shutil.which("git", path=os.pathsep.join(dirs)), "git must stay reachable"
    return os.pathsep.join(dirs)


def assert_broken_commit_refused(repo: Path) -> None:
    """The pre-commit hook runs here: a line that does not parse is refused, by name."""
    before = git(repo, "rev-parse", "HEAD")
    append_raw(repo, "{not json\n", collection="broken")
    git(repo, "add", ".taskstore/broken.jsonl")
    refused = run_git(repo, "commit", "-qm", "broken")
    assert refused.code != 0, refused
    assert "commit refused" in refused.err and ".taskstore/broken.jsonl:1" in refused.err, refused
    assert git(repo, "rev-parse", "HEAD") == before
    git(repo, "rm", "-qf", ".taskstore/broken.jsonl")


@contextmanager
def on_branch(repo: Path, name: str, start: str | None = None) -> Iterator[Store]:
    """Check out ``name`` (created at ``start`` if given), yield the store, then commit."""
    if start is None:
        git(repo, "checkout", "-q", name)
    else:
        git(repo, "checkout", "-q", "-b", name, start)
    with Store.open(repo, create=False) as store:
        yield store
    commit_all(repo, f"work on {name}")


def seed_t1(repo: Path) -> dict[str, Any]:
    """Commit t1 and t2 on main."""
    with on_branch(repo, "main") as s:
        t1 = tasks_of(s).put({"id": "t1", "title": "a", "status": "open"})
        tasks_of(s).put({"id": "t2", "title": "b", "status": "open"})
    return t1


def tasks_of(store: Store) -> Collection:
    return store.collection("tasks")


def state(repo: Path, collection: str = "tasks") -> dict[str, dict[str, Any]]:
    """The live records of a collection, read back through the store: id -> record."""
    with Store.open(repo, create=False) as store:
        return {r["id"]: r for r in store.collection(collection).list()}
