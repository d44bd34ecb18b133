"""Where a store lives and what its folder holds.

Finding the store does not import pygit2: the CLI and the hooks start as fresh processes,
and walking up to the folder that holds ``.git`` is all they need.
"""

from __future__ import annotations

import os

STORE_DIRNAME = ".taskstore"
DB_NAME = "taskstore.db"
LOCK_NAME = "taskstore.lock"
VERSION_NAME = ".version"
# Files in the store folder that are never committed (the Rust crate also writes a log).
UNTRACKED_NAMES = (
    "taskstore.db",
    "taskstore.db-wal",
    "taskstore.db-shm",
    "taskstore.lock",
    "taskstore.log",
    "taskstore.owners",  # debounced writers' claims (debounce.Owner)
    ".*.tmp",  # what a killed rewrite leaves (files.atomic_write)
    "openspec.state",  # the stat of each OpenSpec file at its last sync (openspec.service)
    "openspec-backups",  # copies of the OpenSpec files a sync replaced
    "openspec-watch.lock",  # held by a running `git taskstore watch`
)
ENV_STORE = "TASKSTORE_DIR"


def display_path(path: str) -> str:
    """A path as a user would type it: relative to the current folder when near it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith(os.pardir + os.sep + os.pardir) else rel


def find_worktree(start: str) -> str | None:
    """The top of the git work tree containing ``start``, or None outside git.

    ``.git`` may be a folder or, in linked worktrees and submodules, a file.
    """
    path = os.path.abspath(start)
    while True:
        if os.path.exists(os.path.join(path, ".git")):
            return path
        parent = os.path.dirname(path)
        if parent == path:
            return None
        path = parent


def default_store_dir(cwd: str | None = None, explicit: str | None = None) -> str:
    """The store a command works on: ``explicit`` (--store), $TASKSTORE_DIR, else
    ``.taskstore`` at the top of the enclosing git work tree, else ``./.taskstore``."""
    chosen = explicit or os.environ.get(ENV_STORE)
    if chosen:
        return os.path.abspath(chosen)
    cwd = cwd or os.getcwd()
    top = find_worktree(cwd)
    return os.path.join(top or cwd, STORE_DIRNAME)


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path``, links resolved, is ``folder`` or lies under it."""
    real, top = os.path.realpath(path), os.path.realpath(folder)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)
