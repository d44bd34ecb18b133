"""Bringing a collection's cache up to date with its JSONL file.

A file that only grew (same inode, its old head and tail intact) is caught up by reading
just its new bytes; anything else rebuilds that one collection's table inside one
transaction, so a concurrent reader sees the old or the new state, never an empty table.
The caller holds the store's write lock around :func:`sync`; :func:`needs_sync` and
:func:`freshness` only look.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from . import jsonl, log
from .cache import Cache, Row
from .errors import StorePathError
from .freshness import (
    EMPTY_STATE,
    READ_BLOCK,
    Digest,
    FileState,
    out_of_racy_window,
    prefix_kept,
    same_content,
)
from .gcpause import gc_paused
from .jsonl import BadLine, Winner
from .paths import display_path

# At most this many bad lines are named one by one in the log per sync.
MAX_LOGGED_BAD_LINES = 5


@dataclass(frozen=True, slots=True)
class SyncResult:
    collection: str
    action: str  # "fresh", "caught-up", "rebuilt", "dropped", "conflict"
    lines_read: int = 0
    bad_lines: tuple[BadLine, ...] = ()


def needs_sync(cache: Cache, collection: str, path: str) -> tuple[bool, FileState | None]:
    """(whether the file may differ from the cache, the cached state): one stat.

    The fast path of every read; anything short of an exact stat match outside the racy
    window is left to sync(), under the lock. The state is asked every time, never
    remembered: another process may have rebuilt the cache under an unchanged file.
    """
    state = cache.file_state(collection)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return state is not None, state
    return state is None or not state.is_fresh(st), state


def freshness(cache: Cache, collection: str, path: str) -> str:
    """'fresh', 'stale', 'new', 'deleted', 'absent' or 'conflict', changing nothing.

    A file inside the racy window is compared by content hash.
    """
    state = cache.file_state(collection)
    try:
        st = regular_file(path)
    except FileNotFoundError:
        return "absent" if state is None else "deleted"
    if state is None:
        return "new"
    if not state.matches(st) or (state.is_racy() and not same_content(state, path)):
        return "stale"
    return "conflict" if state.conflict_line is not None else "fresh"


def regular_file(path: str) -> os.stat_result:
    """The lstat of a collection's file; StorePathError if it is anything but a regular
    file. A link that arrived through git could point anywhere: it is never followed."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise StorePathError(
            f"{display_path(path)} is {kind}: git-taskstore reads and writes collections only "
            "as regular files in the store folder; replace it with the file itself"
        )
    return st


def sync(cache: Cache, collection: str, path: str, *, full: bool = False) -> SyncResult:
    """Bring one collection up to date with its file, in one transaction (lock held)."""
    with cache.transaction():
        state = cache.file_state(collection)
        synced_ns = time.time_ns()
        try:
            st = regular_file(path)
        except FileNotFoundError:
            if state is None:
                return SyncResult(collection, "fresh")
            cache.forget(collection)
            return SyncResult(collection, "dropped")
        if full or state is None or st.st_ino != state.inode or st.st_size < state.offset:
            return _rebuild(cache, collection, path, synced_ns)
        if st.st_size > state.offset:
            return _catch_up(cache, collection, path, state, synced_ns)
        if not state.is_fresh(st):
            # Touched, or read too soon after a change: compare the bytes.
            if not same_content(state, path):
                return _rebuild(cache, collection, path, synced_ns)
            # The same bytes: remember the new stat and the later read time, which ends
            # the racy window once it is far enough from the mtime.
            state = state._replace(
                inode=st.st_ino,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                ctime_ns=st.st_ctime_ns,
                synced_ns=synced_ns,
            )
            cache.save_state(collection, state)
        return SyncResult(collection, "fresh" if state.conflict_line is None else "conflict")


def advance(
    cache: Cache, collection: str, path: str, before: FileState | None, digest: Digest, start: int
) -> None:
    """Move the file's state past an append of ours (lock held): ``before`` is the state
    when the append began, ``digest`` has been fed the appended bytes, ``start`` is where
    they begin.

    If the file did not hold exactly what the cache had read when the append began
    (someone changed it without the lock), the state is left alone, and the next read
    catches up or rebuilds from the file.
    """
    if before is None and start == 0:
        # The append created the file: the rows just written have a file behind them.
        before = EMPTY_STATE
    if before is None or before.offset != start or before.conflict_line is not None:
        return
    try:
        st = out_of_racy_window(path, os.stat(path))
    except FileNotFoundError:  # gone since: the next read syncs from what is there
        return
    if st.st_size != digest.offset:
        return
    cache.save_state(collection, digest.state(st, time.time_ns(), before.bad_lines))


def _catch_up(
    cache: Cache, collection: str, path: str, state: FileState, synced_ns: int
) -> SyncResult:
    if state.conflict_line is not None:
        return _rebuild(cache, collection, path, synced_ns)
    winners: dict[str, Winner] = {}
    bad: list[BadLine] = []
    digest = Digest(state)
    try:
        with open(path, "rb") as handle:
            if not prefix_kept(handle.fileno(), state):
                return _rebuild(cache, collection, path, synced_ns)
            handle.seek(state.offset)
            _consume(handle, digest, winners, bad)
            st = os.fstat(handle.fileno())
    except FileNotFoundError:
        return sync(cache, collection, path)
    if any(item.reason == jsonl.MARKER for item in bad):
        return _rebuild(cache, collection, path, synced_ns)
    untimed = [rid for rid, w in winners.items() if w.version == jsonl.UNTIMED]
    if untimed:
        # Lines without a timestamp and no earlier line of their id among the new bytes:
        # they tie with the version the cache holds, and the later line wins the tie.
        have = cache.currents(collection, untimed)
        for rid in untimed:
            found = have.get(rid)
            winners[rid] = winners[rid]._replace(version=found[1] if found else 0)
    cache.upsert(collection, list(_rows(winners)))
    cache.save_state(collection, digest.state(st, synced_ns, state.bad_lines + len(bad)))
    _log_bad(path, bad)
    return SyncResult(collection, "caught-up", digest.lines - state.lines, tuple(bad))


def _rebuild(cache: Cache, collection: str, path: str, synced_ns: int) -> SyncResult:
    winners: dict[str, Winner] = {}
    bad: list[BadLine] = []
    digest = Digest()
    with gc_paused():
        try:
            with open(path, "rb") as handle:
                _consume(handle, digest, winners, bad)
                st = os.fstat(handle.fileno())
        except FileNotFoundError:
            cache.forget(collection)
            return SyncResult(collection, "dropped")
        marker = next((item.line for item in bad if item.reason == jsonl.MARKER), None)
        if marker is not None:
            # Whatever the table held stays: the collection is unreadable until resolved.
            cache.ensure_table(collection)
            cache.save_state(collection, digest.state(st, synced_ns, 0, marker))
            return SyncResult(collection, "conflict")
        cache.replace(collection, _rows(winners))
    cache.save_state(collection, digest.state(st, synced_ns, len(bad)))
    _log_bad(path, bad)
    return SyncResult(collection, "rebuilt", digest.lines, tuple(bad))


def _consume(
    handle: BinaryIO, digest: Digest, winners: dict[str, Winner], bad: list[BadLine]
) -> None:
    """Read ``handle`` to its end in blocks, reducing whole lines into ``winners``.

    The store lock is held, so a last line without a newline is final (a torn write or a
    hand-edited file), not a writer half-way through.
    """
    carry = b""
    while block := handle.read(READ_BLOCK):
        if carry:
            block = carry + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:
            carry = block
            continue
        part, carry = block[:cut], block[cut:]
        jsonl.reduce_lines(part, digest.lines + 1, winners, bad)
        digest.feed(part)
    if carry:
        jsonl.reduce_lines(carry, digest.lines + 1, winners, bad)
        digest.feed(carry)


def _rows(winners: dict[str, Winner]) -> Iterator[Row]:
    # A generator: a rebuild inserts each decoded line and lets it go. An untimed first
    # line of an id ranks as 0.
    return ((rid, w.raw.decode(), max(w.version, 0), w.deleted) for rid, w in winners.items())


def _log_bad(path: str, bad: Sequence[BadLine]) -> None:
    shown = display_path(path)
    for item in bad[:MAX_LOGGED_BAD_LINES]:
        log.warning(
            "%s:%d: %s; line skipped (`git taskstore check` lists every problem)",
            shown,
            item.line,
            item.reason,
        )
    if len(bad) > MAX_LOGGED_BAD_LINES:
        log.warning("%s: %d more bad lines skipped", shown, len(bad) - MAX_LOGGED_BAD_LINES)
