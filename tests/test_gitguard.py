"""gitguard.py: what counts as git at work on a store's work tree, and waiting it out."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import pytest

from git_taskstore import Store, gitguard
from git_taskstore.gitguard import GitGuard


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".taskstore").mkdir()
    return tmp_path


@pytest.mark.parametrize("name", ["index.lock", "index.stash.4242", "refs/stash.lock"])
def test_git_is_at_work_while_its_files_exist(repo: Path, name: str) -> None:
    """(Mutation: look for index.lock alone: a stash's own index reads as idle.)"""
    guard = GitGuard(str(repo / ".taskstore"))
    assert not guard.busy()
    (repo / ".git" / name).touch()
    assert guard.busy()
    (repo / ".git" / name).unlink()
    assert not guard.busy()


def test_a_fresh_stash_log_line_counts_until_it_settles(repo: Path) -> None:
    log = repo / ".git" / "logs" / "refs" / "stash"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.touch()
    guard = GitGuard(str(repo / ".taskstore"))
    assert guard.busy()
    old = time.time() - 1
    os.utime(log, (old, old))
    assert not guard.busy()


def test_inside_a_hook_with_the_index_locked_nothing_is_waited_for(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (repo / ".git" / "index.lock").touch()
    monkeypatch.setenv("GIT_INDEX_FILE", str(repo / ".git" / "index.lock"))
    assert not GitGuard(str(repo / ".taskstore")).busy()


def test_a_linked_worktree_finds_its_own_git_dir(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    other = tmp_path_factory.mktemp("wt") / "other"
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(other)], check=True)
    git_dir = gitguard.git_dir_of(str(other / ".taskstore"))
    assert git_dir is not None and Path(git_dir).parent.name == "worktrees"


def test_an_index_lock_left_by_a_killed_git_is_waited_for_once(
    repo: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Writes go on after WAIT_S with a warning, and then no longer wait for that same
    file; a new lock is waited for again. (Mutation: forget stale locks: every write
    waits WAIT_S.)"""
    monkeypatch.setattr(gitguard, "WAIT_S", 0.3)
    (repo / ".git" / "index.lock").touch()
    with caplog.at_level(logging.WARNING, logger="git_taskstore"), Store.open(repo) as store:
        tasks = store.collection("tasks")
        started = time.monotonic()
        tasks.put({"id": "a"})
        assert time.monotonic() - started >= 0.3
        assert any("no longer waiting for index.lock" in m for m in caplog.messages)
        started = time.monotonic()
        for i in range(5):
            tasks.put({"id": f"b{i}"})
        assert time.monotonic() - started < 0.3 * 5
        assert len(tasks.list()) == 6
