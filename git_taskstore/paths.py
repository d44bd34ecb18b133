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
# Files in the store folder that are never committed (the Rust crate also writes a log),
# and the temp files of a rewrite that a killed process leaves (files.atomic_write).
UNTRACKED_NAMES = (
    "taskstore.db",
    "taskstore.db-wal",
    "taskstore.db-shm",
    "taskstore.lock",
    "taskstore.log",
    ".*.tmp",
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


def stores_in_attributes(top: str) -> list[str]:
    """The store folders that ``<top>/.gitattributes`` sends to the merge driver
    (``DIR/*.jsonl merge=taskstore`` lines, as ``init`` writes them), absolute.

    The file arrives through git, from anyone with push access: a folder is taken only if
    it is a plain relative path that stays inside the work tree once symlinks are
    resolved. What a hook does with it (open a store with a ``.version``) is no more than
    a command run there would do.
    """
    try:
        with open(os.path.join(top, ".gitattributes"), "rb") as handle:
            text = handle.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return []
    real_top = os.path.realpath(top)
    found: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or "merge=taskstore" not in words[1:]:
            continue
        pattern = words[0]
        if not pattern.endswith("/*.jsonl"):
            continue
        folder = pattern[: -len("/*.jsonl")]
        parts = folder.split("/")
        if (
            not folder
            or folder.startswith("/")
            or any(part in ("", ".", "..") for part in parts)
            or any(c in folder for c in '*?[]\\!"')
        ):
            continue
        path = os.path.join(top, *parts)
        real = os.path.realpath(path)
        if not real.startswith(real_top + os.sep):
            continue
        if path not in found:
            found.append(path)
    return found
