"""One store folder's JSONL files and SQLite cache under one lock: fresh reads, planned writes.

A read: freshness (one stat, a sync under the lock if the file changed) → query → rows.
A write: validated requests (writes.make_request) → under the lock and in one cache
transaction, each collection synced and planned (writes.plan) → the lines appended to the
JSONL file (jsonl.append_lines: the truth, fsynced) → the rows recorded in the cache.
Everything is decided, and anything refused has raised, before the first byte is written.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext, suppress
from typing import Any, TypeVar

from . import jsonl, layout, log, names, sync
from .cache import Cache, CacheCorrupt, Row
from .computed import Computed
from .errors import ConflictMarkersError, StorePathError, TaskstoreError, WriteError
from .fieldtimes import public
from .freshness import EMPTY_STATE, Digest
from .gcpause import gc_paused
from .gitguard import GitGuard
from .locking import FlockLock
from .paths import DB_NAME, LOCK_NAME, display_path
from .records import Filter
from .sync import SyncResult
from .writes import Request, by_collection, ids_of, plan

T = TypeVar("T")

LOCK_TIMEOUT_S = 60.0
# Writes of more records than this pause the cycle collector while they run: it would
# walk every record, copy, request and line again and again (all acyclic) as they grow.
GC_PAUSE_MIN = 1000
# SQLite errors that a cache rebuilt from the JSONL files cures: its files turned
# read-only, or damaged under this connection.
CURABLE = ("attempt to write a readonly database", "disk I/O error", "database disk image")
# SQLite errors of a cache that cannot take a write.
CACHE_FULL = ("database or disk is full", "unable to open database file")
# What to do when an append fails, by errno.
FIXES = {
    errno.ENOSPC: "free some space on its disk",
    errno.EDQUOT: "free some of your disk quota",
    errno.EFBIG: "raise the file-size limit (ulimit -f) or compact the store",
    errno.EROFS: "the store is on a read-only file system: write from a writable checkout",
    errno.EACCES: "make the file and its folder writable for you",
    errno.EPERM: "make the file and its folder writable for you",
}
# How often a write plans again because git replaced a file under it before giving up.
REPLAN_TRIES = 20


class Engine:
    """The JSONL files and the cache of one store folder, shared by its threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db_path = os.path.join(path, DB_NAME)
        # Held around every use of the cache connection and the lock (threads).
        self.mutex = threading.RLock()
        layout.unlink_links(path)
        # True once this process reads through a cache in memory (the file cannot be
        # written): a second fault is not cured again.
        self.in_memory = False
        self.cache = self._open_cache()
        self._lock: FlockLock | None = None
        self._ignores_checked = False
        self.closed = False
        self.git = GitGuard(path)

    def close(self) -> None:
        with self.mutex:
            self.closed = True
            self.cache.close()

    # --- paths and locking --------------------------------------------------------------

    def file_path(self, collection: str) -> str:
        return os.path.join(self.path, collection + names.SUFFIX)

    def collections(self) -> list[str]:
        """Collections with a JSONL file, sorted by name."""
        return layout.list_files(self.path).collections

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's write lock (re-entrant within a thread)."""
        with self.mutex:
            if self._lock is None:
                self._lock = FlockLock(os.path.join(self.path, LOCK_NAME), LOCK_TIMEOUT_S)
            try:
                self._lock.acquire()
            except TimeoutError:
                raise TaskstoreError(
                    f"the store {display_path(self.path)} has been locked by another process "
                    f"for {LOCK_TIMEOUT_S:.0f}s: wait for it to finish, or stop it"
                ) from None
            try:
                if not self._ignores_checked:
                    self._ignore_lock_file()
                yield
            finally:
                self._lock.release()

    def _ignore_lock_file(self) -> None:
        # The lock file exists from now on: a store made by the Rust crate does not ignore
        # it yet, and it should not show up in `git status`.
        self._ignores_checked = True
        with suppress(OSError):
            if layout.ensure_gitignore(self.path):
                log.info(
                    "added the cache and lock files to %s",
                    display_path(os.path.join(self.path, ".gitignore")),
                )

    def guarded(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` under the mutex; if the cache turns out damaged, or recreated by
        another process, replace or re-read it and run ``fn`` once more."""
        with self.mutex:
            if self.closed:
                raise TaskstoreError("the store is closed")
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                message = str(exc)
                if message.startswith("no such table"):
                    # Another release recreated the schema under this connection.
                    self.cache.forget_tables()
                elif message.startswith(CURABLE):
                    self._recover_cache(exc)
                elif message.startswith(CACHE_FULL) and not self.in_memory:
                    # A read's sync on a full disk: this process goes on in memory, and
                    # the file (pending writes and all) stays for when space is back.
                    # Writes never get here: Engine.write turns this into WriteError.
                    self.cache.close()
                    self.cache = self._memory_cache(exc)
                else:
                    raise
            except sqlite3.DatabaseError as exc:
                self._recover_cache(exc)
            return fn()

    def _open_cache(self) -> Cache:
        """The cache file; rebuilt if it is damaged; in memory if it cannot be written now
        (a read-only checkout, a full disk, a folder in its place), so that reads work all
        the same. A cache that is only unwritable is never deleted: it may hold debounced
        writes not yet exported, which the next open with space (or rights) exports."""
        try:
            return Cache(self.db_path)
        except CacheCorrupt as exc:
            first = exc
        except sqlite3.OperationalError as exc:
            if align_journal_modes(self.db_path):
                # Made writable again, with its -wal and -shm still read-only.
                with suppress(CacheCorrupt, sqlite3.OperationalError):
                    return Cache(self.db_path)
            return self._memory_cache(exc)
        self._delete_cache_files()
        try:
            cache = Cache(self.db_path)
        except (CacheCorrupt, sqlite3.OperationalError) as exc:
            return self._memory_cache(exc)
        log.info(
            "cache %s was unusable (%s); rebuilt it from the JSONL files",
            display_path(self.db_path),
            first,
        )
        return cache

    def _memory_cache(self, exc: Exception) -> Cache:
        log.info(
            "cache %s cannot be written (%s): reading through a cache in memory",
            display_path(self.db_path),
            exc,
        )
        self.in_memory = True
        return Cache(":memory:")

    def _recover_cache(self, exc: sqlite3.DatabaseError) -> None:
        with self.locked():
            log.info(
                "cache %s is damaged (%s); rebuilding it from the JSONL files",
                display_path(self.db_path),
                exc,
            )
            self.cache.close()
            self.cache = self._open_cache()

    def _delete_cache_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with suppress(OSError):  # a folder in its place, a read-only store: left
                os.unlink(self.db_path + suffix)

    # --- freshness ----------------------------------------------------------------------

    def fresh(self, collection: str) -> None:
        """Make one collection's cache reflect its file; ConflictMarkersError if the file
        holds conflict markers. The common case costs one stat and one small query."""
        path = self.file_path(collection)
        needed, state = sync.needs_sync(self.cache, collection, path)
        if needed:
            with self.locked():
                self.fresh_locked(collection)
        elif state is not None and state.conflict_line is not None:
            raise ConflictMarkersError(display_path(path), state.conflict_line)

    def fresh_locked(self, collection: str) -> None:
        """fresh(), for a caller that holds the lock (inside its transaction)."""
        path = self.file_path(collection)
        if sync.sync(self.cache, collection, path).action == "conflict":
            state = self.cache.file_state(collection)
            raise ConflictMarkersError(
                display_path(path), state.conflict_line if state and state.conflict_line else 0
            )

    def sync(self, *, full: bool = False) -> list[SyncResult]:
        """Bring the cache up to date with every JSONL file (rebuild all with ``full``)."""

        def run() -> list[SyncResult]:
            names = self.collections()
            gone = [name for name in self.cache.cached_collections() if name not in names]
            with self.locked():
                return [
                    sync.sync(self.cache, name, self.file_path(name), full=full and name in names)
                    for name in names + gone
                ]

        return self.guarded(run)

    def is_stale(self) -> bool:
        """True if any JSONL file changed, appeared or vanished since the cache read it."""

        def run() -> bool:
            names = set(self.collections()) | set(self.cache.cached_collections())
            return any(
                sync.freshness(self.cache, name, self.file_path(name)) not in ("fresh", "conflict")
                for name in names
            )

        return self.guarded(run)

    # --- reads --------------------------------------------------------------------------

    def get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            self.fresh(collection)
            found = self.cache.currents(collection, (record_id,)).get(record_id)
            if found is None or found[2]:
                return None
            record: dict[str, Any] = jsonl.loads(found[0])
            return public(record)

        return self.guarded(run)

    def select(
        self,
        collection: str,
        filters: Sequence[Filter],
        sort: str | None,
        limit: int | None,
        offset: int,
        computed: Mapping[str, Computed] | None = None,
    ) -> list[str]:
        def run() -> list[str]:
            self.fresh(collection)
            return self.cache.select(
                collection, filters, sort=sort, limit=limit, offset=offset, computed=computed
            )

        return self.guarded(run)

    def count(
        self,
        collection: str,
        filters: Sequence[Filter],
        computed: Mapping[str, Computed] | None = None,
    ) -> int:
        def run() -> int:
            self.fresh(collection)
            return self.cache.count(collection, filters, computed)

        return self.guarded(run)

    def count_by(self, collection: str, field: str) -> dict[Any, int]:
        def run() -> dict[Any, int]:
            self.fresh(collection)
            return self.cache.count_by(collection, field)

        return self.guarded(run)

    def ensure_indexes(self, collection: str, fields: Sequence[str], *, rebuild: bool) -> int:
        return self.guarded(lambda: self.cache.ensure_indexes(collection, fields, rebuild=rebuild))

    def ensure_computed(
        self,
        collection: str,
        computed: Mapping[str, Computed],
        *,
        rebuild: bool,
        fields: Sequence[str] = (),
    ) -> int:
        return self.guarded(
            lambda: self.cache.ensure_computed(collection, computed, rebuild=rebuild, fields=fields)
        )

    # --- writes -------------------------------------------------------------------------

    def apply(self, requests: list[Request]) -> None:
        """Write validated requests: one lock, one append and fsync per file, one cache
        transaction for all."""

        def planned() -> list[tuple[str, list[Row]]]:
            found = []
            for collection, group in by_collection(requests).items():
                self.fresh_locked(collection)
                ids = ids_of(group)
                found.append((collection, plan(group, ids, self.cache.currents(collection, ids))))
            return found

        big = sum(len(request.records) for request in requests) > GC_PAUSE_MIN
        with gc_paused() if big else nullcontext():
            self.write(planned)
        for request in requests:
            request.stamp_typed()

    def write(self, planned: Callable[[], list[tuple[str, list[Row]]]]) -> None:
        """Under the lock and in one cache transaction: wait out git, plan (``planned``
        syncs and returns each collection's rows), append the lines to the files, check
        that they are in the files at the paths with git done, and only then record them
        in the cache. If git replaced a file meanwhile, it all runs again on what git left.
        """
        for _ in range(REPLAN_TRIES):
            appends: list[jsonl.Append] = []
            try:
                with self.write_transaction():
                    self.git.wait()
                    self._append_verified(planned(), appends)
                for done in appends:
                    done.committed = True
                return
            except _FileReplaced:
                continue
            except sqlite3.OperationalError as exc:
                if not str(exc).startswith(CACHE_FULL + CURABLE):
                    raise
                # The lines are in the files, but the cache could not take them (a full
                # disk, say): the write fails whole, its lines truncated away below.
                raise WriteError(
                    f"cannot record the write in {display_path(self.db_path)} ({exc}); "
                    "nothing was written (free space or make the cache writable, then retry)"
                ) from None
            finally:
                # Truncated back unless the cache took the write (all or nothing), and
                # held open until then: see jsonl.Append.
                for done in appends:
                    if not done.committed:
                        done.undo()
                    done.close()
        raise TaskstoreError(
            f"the files of {display_path(self.path)} were replaced {REPLAN_TRIES} times "
            "while this write ran: is something rewriting them in a loop? nothing was written"
        )

    @contextmanager
    def write_transaction(self) -> Iterator[None]:
        """The write lock and one cache transaction around a write."""
        with self.locked(), self.cache.transaction():
            yield

    def _append_verified(
        self, planned: list[tuple[str, list[Row]]], appends: list[jsonl.Append]
    ) -> None:
        """Append each collection's lines, check they are in the files at the paths once
        git is done, then record the rows in the cache; ``appends`` collects the open
        appends for the caller to settle when the transaction ends."""
        states = []
        for collection, rows in planned:
            if not rows:
                continue
            before = self.cache.file_state(collection)
            digest = Digest(before or EMPTY_STATE)
            lines = [row[1] for row in rows]
            appends.append(self._open_append(collection, lines, digest, create=before is None))
            states.append((collection, rows, before, digest))
        # git may have started after the first wait: let it finish, then look.
        self.git.wait()
        if not all(done.at_path() for done in appends):
            raise _FileReplaced
        for (collection, rows, before, digest), done in zip(states, appends, strict=True):
            self.cache.upsert(collection, rows)
            sync.advance(self.cache, collection, done.path, before, digest, done.start)

    def _open_append(
        self, collection: str, lines: list[str], digest: Digest, *, create: bool
    ) -> jsonl.Append:
        path = self.file_path(collection)
        try:
            return jsonl.open_append(path, lines, digest, create=create)
        except FileNotFoundError:
            # The cache read this file, and now it is gone: git is replacing it, or it was
            # deleted since the sync. Either way, sync again and plan again.
            self.git.wait()
            raise _FileReplaced from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StorePathError(
                    f"{display_path(path)} is a symbolic link: git-taskstore does not write "
                    "through links (one that arrived through git could point anywhere); "
                    "replace it with the file itself"
                ) from None
            fix = FIXES.get(exc.errno or 0, "fix the file or the disk")
            raise WriteError(
                f"cannot append to {display_path(path)}: {exc.strerror}; nothing was "
                f"written ({fix}, then retry)"
            ) from None


class _FileReplaced(Exception):
    """A file changed under a write (git replaced it): plan again from what is there."""


def align_journal_modes(db_path: str) -> bool:
    """Give the cache's -wal and -shm files the cache's own mode; True if one changed.

    SQLite makes them with the database's mode: a cache made read-only (a read-only
    checkout, a chmod) and then writable again keeps read-only ones, which fail every
    open of a user who is not root.
    """
    try:
        mode = os.stat(db_path).st_mode & 0o777
    except OSError:
        return False
    changed = False
    for suffix in ("-wal", "-shm"):
        with suppress(OSError):
            if os.stat(db_path + suffix).st_mode & 0o777 != mode:
                os.chmod(db_path + suffix, mode)
                changed = True
    return changed
