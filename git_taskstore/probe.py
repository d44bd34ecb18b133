"""Whether a store's cache already reflects every JSONL file, or holds debounced writes
not yet exported, asked without opening the store.

What a hook costs when a merge, rebase or checkout left the store alone: one stat per
file and two small queries, with neither orjson nor the store imported (together most of
a hook's start-up). The answer may only err towards "no": then the hook opens the store,
which checks everything, and every read checks freshness again anyway.

The queries read the cache's ``files`` and ``pending`` tables, which cache.py defines; a
cache of another layout fails them, and fails towards "no".
"""

from __future__ import annotations

import os
import sqlite3
import stat

from .freshness import racy_window_ns
from .layout import list_files
from .names import SUFFIX
from .paths import DB_NAME

TYPE_CHECKING = False  # typing's import is a tenth of what a hook with nothing to do costs
if TYPE_CHECKING:
    from typing import Any


def cache_is_fresh(store_dir: str) -> bool:
    """True only if the cache holds every JSONL file of ``store_dir`` exactly as it is
    now (no file new, gone, changed or inside its racy window) and no debounced write is
    waiting to be exported."""
    try:
        rows = _cache_rows(store_dir, _PENDING, _FILES)
    except FileNotFoundError:
        return False
    if rows is None or rows[0]:
        return False
    states = rows[1]
    try:
        files = set(list_files(store_dir).collections)
    except OSError:
        return False
    if files != {state[0] for state in states}:
        return False
    for collection, inode, size, mtime_ns, offset, synced_ns, ctime_ns in states:
        try:
            st = os.stat(os.path.join(store_dir, collection + SUFFIX))
        except OSError:
            return False
        now = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if now != (inode, size, mtime_ns, ctime_ns) or size != offset:
            return False
        if synced_ns - mtime_ns < racy_window_ns(mtime_ns):
            return False
    return True


def has_pending(store_dir: str) -> bool:
    """Whether the cache may hold debounced writes not yet in the files: False only when
    it has none, or there is no cache (a write is in the pending table before it is
    acknowledged, so an empty table means nothing acknowledged is left to export)."""
    try:
        rows = _cache_rows(store_dir, _PENDING)
    except FileNotFoundError:
        return False
    return rows is None or bool(rows[0])


_PENDING = "SELECT 1 FROM pending LIMIT 1"
_FILES = "SELECT collection, inode, size, mtime_ns, offset, synced_ns, ctime_ns FROM files"


def _cache_rows(store_dir: str, *queries: str) -> list[list[Any]] | None:
    """Each query's rows from the store's cache, read without opening the store; None
    if the cache cannot be read (another layout, locked, corrupt, not a regular file).
    FileNotFoundError if there is no cache file."""
    db = os.path.join(store_dir, DB_NAME)
    try:
        mode = os.lstat(db).st_mode
    except FileNotFoundError:
        raise
    except OSError:
        return None
    if not stat.S_ISREG(mode):
        # A link (it could come from a pull) is not followed: the store, opened instead,
        # removes links at its own untracked names.
        return None
    try:
        conn = sqlite3.connect(db, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        return [conn.execute(query).fetchall() for query in queries]
    except sqlite3.Error:
        return None
    finally:
        conn.close()
