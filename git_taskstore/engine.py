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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from typing import Any, TypeVar

from . import jsonl, layout, log, names, sync
from .cache import Cache, CacheCorrupt, Row
from .errors import ConflictMarkersError, EnvironmentFault, TaskstoreError, environment_fault
from .freshness import EMPTY_STATE, Digest
from .gcpause import gc_paused
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
# What a read-only folder or file says: a read may go on without the lock file.
_READ_ONLY_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)
# OperationalErrors a fresh connection does not cure: another process holds the database.
_BUSY = ("database is locked", "database table is locked")


class Engine:
    """The JSONL files and the cache of one store folder, shared by its threads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.db_path = os.path.join(path, DB_NAME)
        # Held around every use of the cache connection and the lock (threads).
        self.mutex = threading.RLock()
        # True once the cache lives in memory: the one on disk cannot be written.
        self.in_memory = False
        # Appends made so far: a write whose lines reached a file is not run again.
        self.appends = 0
        self.cache = self._open_cache()
        self._lock: FlockLock | None = None
        self._ignores_checked = False
        self.closed = False

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
    def locked(self, *, reading: bool = False) -> Iterator[None]:
        """Hold the store's write lock (re-entrant within a thread).

        With ``reading`` (a sync before a read), a lock file that cannot be made in a
        read-only folder is done without: nobody can write the files there either.
        """
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
            except OSError as exc:
                if reading and exc.errno in _READ_ONLY_ERRNOS:
                    yield
                    return
                raise environment_fault(exc) from None
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
            appends = self.appends
            try:
                try:
                    return fn()
                except sqlite3.OperationalError as exc:
                    if str(exc).startswith("no such table"):
                        # Another release recreated the schema under this connection.
                        self.cache.forget_tables()
                    elif str(exc).startswith(_BUSY) or self.in_memory:
                        raise
                    else:
                        self._cure_cache(exc, appends)
                except sqlite3.DatabaseError as exc:
                    self._recover_cache(exc)
                try:
                    return fn()
                except sqlite3.OperationalError as exc:
                    if str(exc).startswith(_BUSY) or self.in_memory:
                        raise
                    # The file opened again but the fault remains (a full disk): this
                    # process goes on with a cache in memory.
                    self._cure_cache(exc, appends, memory=True)
                    return fn()
            except OSError as exc:
                raise environment_fault(exc) from None
            except sqlite3.OperationalError as exc:
                raise EnvironmentFault(
                    f"cache {display_path(self.db_path)}: {exc}; free disk space or delete it "
                    "(it is rebuilt from the JSONL files)"
                ) from None

    def _cure_cache(
        self, exc: sqlite3.OperationalError, appends: int, *, memory: bool = False
    ) -> None:
        """Open the cache again after a fault that a new connection may cure (disk full,
        read-only, I/O error), in memory if the file cannot be written.

        If lines reached a JSONL file before the cache failed, the write is in the truth
        and is not run again (it would append its lines twice): the caller learns that the
        cache, not the write, failed; the next read catches the cache up from the file.
        """
        self.cache.close()
        self.cache = self._memory_cache(exc) if memory else self._open_cache()
        if self.appends != appends:
            raise EnvironmentFault(
                f"the write reached the JSONL files, but the cache {display_path(self.db_path)} "
                f"could not record it ({exc}): free disk space; the next read catches it up"
            )

    def _open_cache(self) -> Cache:
        try:
            try:
                return Cache(self.db_path)
            except CacheCorrupt as exc:
                log.info(
                    "cache %s was unreadable (%s); rebuilding it from the JSONL files",
                    display_path(self.db_path),
                    exc,
                )
                self._delete_cache_files()
                return Cache(self.db_path)
        except sqlite3.OperationalError as exc:
            if align_journal_modes(self.db_path):
                # The cache was made writable again, its -wal and -shm were not.
                with suppress(sqlite3.OperationalError):
                    return Cache(self.db_path)
            return self._memory_cache(exc)

    def _memory_cache(self, exc: Exception) -> Cache:
        """A cache this process rebuilds in memory: the one on disk cannot be written
        (a read-only checkout, a full disk, a folder in its place). Writes still go to
        the JSONL files, which are the truth."""
        log.info(
            "cache %s cannot be used (%s); reading the JSONL files into memory instead",
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
            self._delete_cache_files()
            self.cache = Cache(self.db_path)

    def _delete_cache_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(self.db_path + suffix)

    # --- freshness ----------------------------------------------------------------------

    def fresh(self, collection: str) -> None:
        """Make one collection's cache reflect its file; ConflictMarkersError if the file
        holds conflict markers. The common case costs one stat and one small query."""
        path = self.file_path(collection)
        needed, state = sync.needs_sync(self.cache, collection, path)
        if needed:
            with self.locked(reading=True):
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
            return record

        return self.guarded(run)

    def select(
        self,
        collection: str,
        filters: Sequence[Filter],
        sort: str | None,
        limit: int | None,
        offset: int,
    ) -> list[str]:
        def run() -> list[str]:
            self.fresh(collection)
            return self.cache.select(collection, filters, sort=sort, limit=limit, offset=offset)

        return self.guarded(run)

    def count(self, collection: str, filters: Sequence[Filter]) -> int:
        def run() -> int:
            self.fresh(collection)
            return self.cache.count(collection, filters)

        return self.guarded(run)

    def count_by(self, collection: str, field: str) -> dict[Any, int]:
        def run() -> dict[Any, int]:
            self.fresh(collection)
            return self.cache.count_by(collection, field)

        return self.guarded(run)

    def ensure_indexes(self, collection: str, fields: Sequence[str], *, rebuild: bool) -> int:
        return self.guarded(lambda: self.cache.ensure_indexes(collection, fields, rebuild=rebuild))

    # --- writes -------------------------------------------------------------------------

    def apply(self, requests: list[Request]) -> None:
        """Write validated requests: one lock, one append and fsync per file, one cache
        transaction for all."""
        big = sum(len(request.records) for request in requests) > GC_PAUSE_MIN
        with gc_paused() if big else nullcontext(), self.write_transaction():
            planned = []
            for collection, group in by_collection(requests).items():
                self.fresh_locked(collection)
                ids = ids_of(group)
                planned.append((collection, plan(group, ids, self.cache.currents(collection, ids))))
            for collection, rows in planned:
                self.append(collection, rows)
        for request in requests:
            request.stamp_typed()

    @contextmanager
    def write_transaction(self) -> Iterator[None]:
        """The write lock and one cache transaction around a write."""
        with self.locked(), self.cache.transaction():
            yield

    def append(self, collection: str, rows: list[Row]) -> None:
        """Append the rows' lines to the collection's file, then make them current in the
        cache (lock held, inside the cache transaction)."""
        if not rows:
            return
        path = self.file_path(collection)
        before = self.cache.file_state(collection)
        digest = Digest(before or EMPTY_STATE)
        self.appends += 1
        try:
            start, _ = jsonl.append_lines(path, [row[1] for row in rows], digest)
        except OSError as exc:
            raise environment_fault(exc, path) from None
        self.cache.upsert(collection, rows)
        sync.advance(self.cache, collection, path, before, digest, start)


def align_journal_modes(db_path: str) -> bool:
    """Give the cache's -wal and -shm files the cache's own mode; True if one changed.

    SQLite makes them with the database's mode: a cache once made read-only (a read-only
    checkout, a chmod) and made writable again keeps read-only ones, which fail every open.
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
