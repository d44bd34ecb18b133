"""Whether git is rewriting a store's work tree (index.lock, a stash under way), and waiting it out.

git holds ``index.lock`` (``git rev-parse --git-path index.lock``) while checkout, stash,
merge, reset and rebase unlink and re-create work-tree files. A line appended in that
window can land in a file git is about to replace, and a writer that creates a missing
file there makes git abort. ``git stash`` works in two processes: it reads the files into
a stash through an index of its own (``index.stash.<pid>``), without index.lock, records
the stash (``refs/stash.lock``, then a line in ``logs/refs/stash``), then starts ``git
reset --hard``, which takes index.lock to put the files back: a line appended between
the two would be in neither. So git is at work while any of these exist, and for
``STASH_SETTLE_S`` after the stash's log changed. A write waits for git before it
appends, and again before it is acknowledged, when it checks that its lines are in the
file at the path. Finding the files walks up to ``.git`` once and spawns no git.
"""

from __future__ import annotations

import os
import time

from . import log
from .paths import display_path, find_worktree

# How long a write waits for git before it goes ahead anyway: a checkout of a large tree
# takes seconds, while an index.lock left by a killed git stays until someone removes it
# (and git itself refuses to run until then), and `git commit -a` may hold it while its
# editor is open: writes wait this long at most, then go on and verify their lines.
WAIT_S = 10.0
FIRST_POLL_S = 0.001
MAX_POLL_S = 0.02
# From the stash's log line to `git reset --hard` holding index.lock is one process start:
# a few milliseconds, this many on a loaded machine.
STASH_SETTLE_S = 0.25
# How long git must have held nothing, once seen at work, before a write goes on.
QUIET_S = 0.02


def git_dir_of(store_dir: str) -> str | None:
    """The git dir of the work tree holding ``store_dir`` (where its index.lock goes), or
    None outside git."""
    top = find_worktree(store_dir)
    if top is None:
        return None
    dot_git = os.path.join(top, ".git")
    if os.path.isdir(dot_git):
        return dot_git
    # A linked worktree or a submodule: ``.git`` is a file naming the real git dir.
    try:
        with open(dot_git, encoding="utf-8") as handle:
            first = handle.readline().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not first.startswith("gitdir:"):
        return None
    return os.path.normpath(os.path.join(top, first[len("gitdir:") :].strip()))


class GitGuard:
    """Waits out git operations on one store's work tree."""

    def __init__(self, store_dir: str) -> None:
        self.git_dir = git_dir_of(store_dir)
        # git exports GIT_INDEX_FILE to the hooks it runs with its index locked (pre-commit
        # of `commit -a` or of `commit PATH`): git is not rewriting files then, and waiting
        # for its lock to go would wait for ourselves.
        if os.environ.get("GIT_INDEX_FILE"):
            self.git_dir = None

    def busy(self) -> bool:
        git_dir = self.git_dir
        if git_dir is None:
            return False
        try:
            # One listing answers for index.lock and a stash's index: ~9 us, where a
            # scandir loop cost 10 and an lexists beside it 2 more (twice a write).
            names = os.listdir(git_dir)
            if "index.lock" in names or any(n.startswith("index.stash.") for n in names):
                return True
            if os.path.lexists(os.path.join(git_dir, "refs", "stash.lock")):
                return True
            stashed = os.stat(os.path.join(git_dir, "logs", "refs", "stash")).st_mtime_ns
        except OSError:
            return False
        return time.time_ns() - stashed < STASH_SETTLE_S * 1e9

    def wait(self, timeout: float = WAIT_S) -> None:
        """Return once no git operation holds the work tree (or after ``timeout``).

        Once git was seen at work, it must stay away for ``QUIET_S`` before this returns:
        between its steps (a stash's index gone, its log not yet written) git holds
        nothing for a moment, and a writer released into that moment would append to a
        file about to be replaced.
        """
        if not self.busy():
            return
        deadline = time.monotonic() + timeout
        poll = FIRST_POLL_S
        quiet_since: float | None = None
        while True:
            now = time.monotonic()
            if self.busy():
                quiet_since = None
            elif quiet_since is None:
                quiet_since = now
            elif now - quiet_since >= QUIET_S:
                return
            if now >= deadline:
                log.warning(
                    "git has held %s for %.0fs: writing anyway (if no git command is "
                    "running, a killed one left index.lock or index.stash.*: remove it)",
                    display_path(self.git_dir or ""),
                    timeout,
                )
                return
            time.sleep(poll)
            poll = min(poll * 2, MAX_POLL_S)
