"""The Store: typed and dict-level access to the records of one ``.taskstore`` folder.

Writes take the store's file lock, append whole lines to the JSONL file (the truth) with
one fsync, then update the SQLite cache in the same locked section. Reads check per
collection whether the file changed since the cache last read it and catch up first, so
every read sees what the JSONL files say now.
"""

from __future__ import annotations

import atexit
import builtins
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import jsonl, maintenance
from .cache import Cache, CacheCorrupt, SyncResult
from .errors import (
    ConflictMarkersError,
    StorePathError,
    StoreVersionError,
    TaskstoreError,
    ValidationError,
)
from .gcpause import gc_pause, gc_paused
from .ids import new_id
from .locking import Lock, file_lock
from .paths import DB_NAME, LOCK_NAME, STORE_DIRNAME, UNTRACKED_NAMES, VERSION_NAME, display_path
from .records import Filter, Record, dicts_of
from .writes import Current, Flusher, Request, Row, by_collection, ids_of, make_request, plan

if TYPE_CHECKING:
    from .maintenance import CollectionStatus, CompactResult, ImportResult, Problem

log = logging.getLogger("git_taskstore")

R = TypeVar("R", bound=Record)
T = TypeVar("T")

# The schema version this release writes. Version 1 is the Rust crate's layout.
SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 60.0
# Writes of more records than this pause the cycle collector while they run.
GC_PAUSE_MIN = 1000

# Migrations from version N to N+1, applied in order when an older store is opened.
# Version 0 is a store folder with no .version file (hand-made, or a pre-1 crate).
MIGRATIONS: dict[int, Callable[[str], None]] = {0: lambda store_dir: None}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class _NotFresh(Exception):
    """The cache may not reflect a collection's file: sync it first."""


@dataclass(slots=True)
class _Batch:
    """A thread's open ``batch()``: the requests it holds and the time it began."""

    stamp: int
    requests: builtins.list[Request] = field(default_factory=list)
    held: int = 0  # records held
    paused_gc: bool = False  # whether it holds the cycle collector paused

    def expect(self, records: int) -> None:
        """About to hold this many more records: past GC_PAUSE_MIN in all, the cycle
        collector is paused until the batch is written, as put_many pauses it (each
        collection would walk every record held, again and again as they grow: 0.17 s of
        100,000 put() calls). A batch of a few records never pauses it."""
        if not self.paused_gc and self.held + records > GC_PAUSE_MIN:
            gc_pause.begin()
            self.paused_gc = True

    def hold(self, requests: builtins.list[Request]) -> None:
        for request in requests:
            self.expect(len(request.records))
            if self.requests and self.requests[-1].joins(request):
                self.requests[-1].extend(request)
            else:
                self.requests.append(request)
            self.held += len(request.records)

    def add(self, collection: str, mode: str, record: object) -> dict[str, Any] | None:
        """Hold one more record of a put, create or update, if it joins the request held
        last (the stamped copy then, else None): a loop of single puts, without a request
        per call."""
        last = self.requests[-1] if self.requests else None
        if (
            last is None
            or last.collection != collection
            or last.mode != mode
            or last.own_created is None
            or last.typed is not None
        ):
            return None
        self.expect(1)
        copy = last.add(record)
        self.held += 1
        return copy

    def resume_gc(self) -> None:
        if self.paused_gc:
            gc_pause.end()
            self.paused_gc = False


class Collection:
    """Dict-level access to one collection, for generic tools (the CLI uses it)."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = jsonl.validate_collection(name)

    def __repr__(self) -> str:
        return f"<Collection {self.name!r} of {self.store.path}>"

    def get(self, record_id: str) -> dict[str, Any] | None:
        jsonl.validate_id(record_id)
        return self.store._get(self.name, record_id)

    def put(self, record: dict[str, Any], *, merge: bool = False) -> dict[str, Any]:
        """Create or replace a record (or, with merge, update only the fields given)."""
        return self.store._write(self.name, [record], "patch" if merge else "put")[0]

    def put_many(
        self, records: Sequence[dict[str, Any]], *, merge: bool = False
    ) -> list[dict[str, Any]]:
        return self.store._write(self.name, list(records), "patch" if merge else "put")

    def create(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write a new record; AlreadyExistsError if its id holds a live record."""
        return self.store._write(self.name, [record], "create")[0]

    def update(self, record: dict[str, Any]) -> dict[str, Any]:
        """Replace a live record; NotFoundError if there is none."""
        return self.store._write(self.name, [record], "update")[0]

    def delete(self, record_id: str) -> bool:
        """Append a tombstone; False if there was no live record."""
        return self.store._delete(self.name, record_id)

    def list(
        self,
        filters: Iterable[Filter] = (),
        *,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        rows = self.store._query(self.name, list(filters), sort, limit, offset)
        return [jsonl.loads(row) for row in rows]

    def count(self, filters: Iterable[Filter] = ()) -> int:
        return self.store._count(self.name, list(filters))

    def count_by(self, field: str) -> dict[Any, int]:
        """How many live records hold each value of ``field`` (None: null or missing)."""
        jsonl.validate_field(field)
        return self.store._count_by(self.name, field)

    def ensure_index(self, *fields: str) -> int:
        for name in fields:
            jsonl.validate_field(name)
        return self.store._ensure_indexes(self.name, fields)


class Store:
    """A ``.taskstore`` folder: JSONL files (the truth) and a SQLite cache beside them.

    Safe to share between threads; several processes may open the same store and write
    at once.
    """

    def __init__(
        self, store_dir: str, *, create: bool = True, debounce_ms: int | None = None
    ) -> None:
        self.path = os.path.abspath(store_dir)
        # read first: a bad $TASKSTORE_DEBOUNCE_MS raised after the cache was opened
        # (and left it open) and after pending writes had been exported.
        if debounce_ms is None:
            debounce_ms = _debounce_from_env()
        self._mutex = threading.RLock()
        self._batches = threading.local()
        self._flusher: Flusher | None = None
        self._prepare_dir(create)
        self._lock: Lock | None = None
        self._ignores_checked = False
        self._cache = self._open_cache()
        self._closed = False
        # Pending writes of an earlier process exported as this store opened, per
        # collection. the pre-commit hook staged only what its own flush() exported,
        # always nothing (opening had exported it all), so the commit missed the writes;
        # and `git taskstore flush` reported 0.
        self.exported_at_open: dict[str, int] = {}
        if self._cache.pending_counts(orphans_only=True):
            # Debounced writes of a process that did not get to export them (killed). A
            # live writer's are its own to export when its debounce runs out.
            self._export_leftovers()
        if debounce_ms:
            self._flusher = Flusher(debounce_ms / 1000, self.flush)
            _OPEN_DEBOUNCED.add(self)

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str] = ".",
        *,
        create: bool = True,
        debounce_ms: int | None = None,
    ) -> Store:
        """Open (or create) the store ``<path>/.taskstore``.

        With ``debounce_ms`` (or $TASKSTORE_DEBOUNCE_MS), a write is acknowledged once it
        is durable in the cache, and reaches the JSONL files after that many ms without
        writes, on flush(), on close() and at exit.
        """
        return cls(
            os.path.join(os.fspath(path), STORE_DIRNAME), create=create, debounce_ms=debounce_ms
        )

    @classmethod
    def open_dir(
        cls,
        store_dir: str | os.PathLike[str],
        *,
        create: bool = True,
        debounce_ms: int | None = None,
    ) -> Store:
        """Open (or create) the store in ``store_dir`` itself."""
        return cls(os.fspath(store_dir), create=create, debounce_ms=debounce_ms)

    def _export_leftovers(self) -> None:
        try:
            self.exported_at_open = self.flush_each(orphans_only=True)
        except TaskstoreError as exc:
            log.warning("pending writes of an earlier process not exported yet: %s", exc)
        else:
            exported = sum(self.exported_at_open.values())
            if exported:
                log.info("exported %d pending write(s) left by an earlier process", exported)

    def _prepare_dir(self, create: bool) -> None:
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise StorePathError(
                f"{display_path(self.path)} is a file, not a store folder: "
                "move it away or choose another store with --store"
            )
        version_path = os.path.join(self.path, VERSION_NAME)
        if not os.path.isdir(self.path):
            if not create:
                raise StorePathError(
                    f"no store at {display_path(self.path)}: run `git taskstore init` first"
                )
            try:
                os.makedirs(self.path, exist_ok=True)
            except OSError as exc:
                raise StorePathError(
                    f"cannot create {display_path(self.path)}: {exc.strerror}"
                ) from None
        if not os.path.exists(version_path):
            has_data = any(name.endswith(jsonl.SUFFIX) for name in os.listdir(self.path))
            if has_data:
                self._migrate(0)
            else:
                self._write_version()
            self._ensure_gitignore()
            return
        self._migrate(read_version(self.path))

    def _migrate(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"{display_path(self.path)} holds schema version {version}, newer than the "
                f"{SCHEMA_VERSION} this release reads: upgrade git-taskstore "
                "(pip install -U git-taskstore)"
            )
        if version == SCHEMA_VERSION:
            return
        while version < SCHEMA_VERSION:
            MIGRATIONS[version](self.path)
            version += 1
        self._write_version()
        log.info("migrated %s to schema version %d", display_path(self.path), SCHEMA_VERSION)

    def _write_version(self) -> None:
        # No trailing newline, as the Rust crate writes it.
        jsonl.atomic_write(os.path.join(self.path, VERSION_NAME), str(SCHEMA_VERSION).encode())

    def _ensure_gitignore(self) -> bool:
        """Make .gitignore list the cache and lock files; True if it changed."""
        path = os.path.join(self.path, ".gitignore")
        try:
            with open(path, "rb") as handle:
                current = handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            current = ""
        have = {line.strip() for line in current.splitlines()}
        missing = [line for line in UNTRACKED_NAMES if line not in have]
        if not missing:
            return False
        text = current
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(line + "\n" for line in missing)
        jsonl.atomic_write(path, text.encode())
        return True

    def _open_cache(self) -> Cache:
        db = os.path.join(self.path, DB_NAME)
        try:
            return Cache(db)
        except CacheCorrupt as exc:
            log.info(
                "cache %s was unreadable (%s); rebuilding it from the JSONL files",
                display_path(db),
                exc,
            )
            self._delete_cache_files()
            return Cache(db)

    def _delete_cache_files(self) -> None:
        db = os.path.join(self.path, DB_NAME)
        for suffix in ("", "-wal", "-shm"):
            with suppress(FileNotFoundError):
                os.unlink(db + suffix)

    def _recover_cache(self, exc: sqlite3.DatabaseError) -> None:
        """The cache went bad under us: replace it (under the lock) and go on."""
        with self.locked():
            log.info(
                "cache %s is damaged (%s); rebuilding it from the JSONL files",
                display_path(os.path.join(self.path, DB_NAME)),
                exc,
            )
            self._cache.close()
            self._delete_cache_files()
            self._cache = Cache(os.path.join(self.path, DB_NAME))

    def _guarded(self, fn: Callable[[], T]) -> T:
        """Run fn under the store mutex; on a corrupt cache, rebuild it and retry once."""
        with self._mutex:
            self._check_open()
            try:
                return fn()
            except sqlite3.OperationalError:
                raise
            except sqlite3.DatabaseError as exc:
                self._recover_cache(exc)
                return fn()

    def _check_open(self) -> None:
        if self._closed:
            raise TaskstoreError("the store is closed")

    def close(self) -> None:
        """Export pending writes (debounced mode) and close the cache."""
        if self._flusher is not None:
            # stopped before taking the mutex. Stopped inside it, close() waited the
            # whole 5 s join timeout whenever the flusher had just woken up and was waiting
            # for the mutex (held by close), and its flush then failed on a closed store.
            self._flusher.stop()
        with self._mutex:
            if self._closed:
                return
            if self._flusher is not None:
                _OPEN_DEBOUNCED.discard(self)
                try:
                    self.flush()
                except TaskstoreError as exc:
                    log.warning(
                        "pending writes kept in the cache (%s): `git taskstore flush` exports"
                        " them once that is fixed",
                        exc,
                    )
            self._cache.close()
            self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    # --- paths and locking --------------------------------------------------------------

    def file_path(self, collection: str) -> str:
        return os.path.join(self.path, collection + jsonl.SUFFIX)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's write lock (re-entrant within a thread)."""
        with self._mutex:
            if self._lock is None:
                self._lock = file_lock(os.path.join(self.path, LOCK_NAME), LOCK_TIMEOUT_S)
            try:
                self._lock.acquire()
            except TimeoutError:
                raise TaskstoreError(
                    f"the store {display_path(self.path)} has been locked by another process "
                    f"for {LOCK_TIMEOUT_S:.0f}s: wait for it to finish, or stop it"
                ) from None
            try:
                if not self._ignores_checked:
                    # The lock file now exists: a store made by the Rust crate does not
                    # ignore it yet, and it should not show up in `git status`.
                    self._ignores_checked = True
                    with suppress(OSError):
                        if self._ensure_gitignore():
                            log.info(
                                "added the cache and lock files to %s",
                                display_path(os.path.join(self.path, ".gitignore")),
                            )
                yield
            finally:
                self._lock.release()

    # --- sync ---------------------------------------------------------------------------

    def collections(self) -> builtins.list[str]:
        """Collections with a JSONL file, sorted by name."""
        names = []
        with os.scandir(self.path) as entries:
            for entry in entries:
                if entry.name.endswith(jsonl.SUFFIX) and entry.is_file():
                    name = entry.name[: -len(jsonl.SUFFIX)]
                    if jsonl.COLLECTION_RE.fullmatch(name):
                        names.append(name)
        return sorted(names)

    def _fresh(self, collection: str) -> None:
        """Make one collection's cache reflect its file; raise if it holds conflict markers.

        The common case costs one stat and one small query; anything else syncs under the
        lock and decides from what the sync found.
        """
        path = self.file_path(collection)
        needed, state = self._cache.needs_sync(collection, path)
        if needed:
            with self.locked():
                action = self._cache.sync(collection, path).action
            if action == "conflict":
                state = self._cache.file_state(collection)
            else:
                return
        if state is not None and state.conflict_line is not None:
            raise ConflictMarkersError(display_path(path), state.conflict_line)

    def sync(self, *, full: bool = False) -> builtins.list[SyncResult]:
        """Bring the cache up to date with every JSONL file (rebuild all with full)."""

        def run() -> builtins.list[SyncResult]:
            results = []
            names = self.collections()
            with self.locked():
                for name in names:
                    results.append(self._cache.sync(name, self.file_path(name), full=full))
                for name in self._cache.cached_collections():
                    if name not in names:
                        results.append(self._cache.sync(name, self.file_path(name)))
            return results

        return self._guarded(run)

    def is_stale(self) -> bool:
        """True if any JSONL file changed, appeared or vanished since the cache read it."""

        def run() -> bool:
            names = set(self.collections()) | set(self._cache.cached_collections())
            return any(
                self._cache.freshness(n, self.file_path(n)) not in ("fresh", "conflict")
                for n in names
            )

        return self._guarded(run)

    # --- dict-level primitives ----------------------------------------------------------

    def collection(self, name: str) -> Collection:
        return Collection(self, name)

    def _get(self, collection: str, record_id: str) -> dict[str, Any] | None:
        def run() -> dict[str, Any] | None:
            self._fresh(collection)
            row = self._cache.current(collection, record_id)
            if row is None or row[2]:
                return None
            value: dict[str, Any] = jsonl.loads(row[0])
            return value

        return self._guarded(run)

    def _query(
        self,
        collection: str,
        filters: builtins.list[Filter],
        sort: str | None,
        limit: int | None,
        offset: int,
    ) -> builtins.list[str]:
        if limit is not None and limit < 0:
            raise ValidationError(f"limit must be 0 or more, got {limit}")

        def run() -> builtins.list[str]:
            self._fresh(collection)
            rows = self._cache.query(collection, filters, sort=sort, limit=limit, offset=offset)
            assert isinstance(rows, list)
            return rows

        return self._guarded(run)

    def _count(self, collection: str, filters: builtins.list[Filter]) -> int:
        def run() -> int:
            self._fresh(collection)
            n = self._cache.query(collection, filters, count_only=True)
            assert isinstance(n, int)
            return n

        return self._guarded(run)

    def _count_by(self, collection: str, field: str) -> dict[Any, int]:
        def run() -> dict[Any, int]:
            self._fresh(collection)
            return self._cache.count_by(collection, field)

        return self._guarded(run)

    def _ensure_indexes(
        self, collection: str, fields: Sequence[str], *, rebuild: bool = False
    ) -> int:
        return self._guarded(
            lambda: self._cache.ensure_indexes(collection, fields, rebuild=rebuild)
        )

    def _request(
        self,
        collection: str,
        mode: str,
        records: builtins.list[dict[str, Any]],
        typed: builtins.list[Record] | None = None,
    ) -> Request:
        return make_request(collection, mode, records, self._stamp(), typed)

    def _stamp(self) -> int:
        # Inside a batch, the time it began: one stamp for all its records.
        batch: _Batch | None = getattr(self._batches, "batch", None)
        return now_ms() if batch is None else batch.stamp

    def _write(
        self, collection: str, records: builtins.list[dict[str, Any]], mode: str
    ) -> builtins.list[dict[str, Any]]:
        """Write records: mode is put, patch, create, update or import.

        import keeps the records' own timestamps and skips those not newer than the store's.
        ``collection`` is a name already validated (by Collection, a Record class, import).
        Returns the records written, completed in place (inside a batch: all of them,
        stamped with the time the batch began, and settled when it ends: a record whose id
        already holds a version by then gets a later one).
        """
        batch: _Batch | None = getattr(self._batches, "batch", None)
        if batch is not None:
            added = batch.add(collection, mode, records[0]) if len(records) == 1 else None
            if added is not None:
                return [added]
            batch.expect(len(records))  # before the request is made
        # The cycle collector would walk every record of a big batch again and again (the
        # records, copies, requests and lines are acyclic): paused, as in a rebuild. Not
        # for a few records: a batch() of single puts would pay for the pause on each.
        with gc_paused() if len(records) > GC_PAUSE_MIN else nullcontext():
            request = self._request(collection, mode, records)
            if self._submit([request]):
                return request.records[:]  # a batch may add later calls' records to it
            return request.written

    def _delete(self, collection: str, record_id: str) -> bool:
        """Append a tombstone; False if there was no live record (inside a batch: True)."""
        jsonl.validate_id(record_id)
        request = self._request(collection, "delete", [{"id": record_id}])
        return self._submit([request]) or bool(request.written)

    def _submit(self, requests: builtins.list[Request]) -> bool:
        """Apply, or hold until the thread's batch ends (True then)."""
        if not requests:
            return False
        batch: _Batch | None = getattr(self._batches, "batch", None)
        if batch is not None:
            batch.hold(requests)
            return True
        if self._flusher is not None:
            self._guarded(lambda: self._write_pending(requests))
            self._flusher.poke()
        else:
            self._guarded(lambda: self._apply(requests))
        return False

    def _apply(self, requests: builtins.list[Request]) -> None:
        """One lock, one append and fsync per file, one SQLite transaction for all."""
        with gc_paused(), self.locked(), self._cache.transaction():
            planned = []
            for collection, group in by_collection(requests).items():
                self._fresh_locked(collection)
                ids = ids_of(group)
                planned.append(
                    (collection, plan(group, ids, self._cache.currents(collection, ids)))
                )
            # Everything was decided (and anything refused raised) before the first byte.
            for collection, rows in planned:
                if rows:
                    self._append(collection, rows)
        for request in requests:
            request.stamp_typed()

    def _write_pending(self, requests: builtins.list[Request]) -> None:
        """Debounced: durable in the cache, current at once, exported to JSONL later."""
        groups = by_collection(requests)
        try:
            # Looked up with, in the same statement, the check that the cache reflects
            # the file; if it may not, nothing is planned yet: the long way, under the
            # write lock, syncs and looks up in the transaction that records the write.
            self._record_pending(groups, synced=False)
        except _NotFresh:
            with self.locked():
                self._record_pending(groups, synced=True)
        for request in requests:
            request.stamp_typed()

    def _record_pending(self, groups: dict[str, builtins.list[Request]], *, synced: bool) -> None:
        """Look up, plan and record a debounced write in one transaction; with ``synced``
        (the caller holds the write lock), each file is synced in it first."""
        with self._cache.transaction():
            # Every collection looked up before any is planned: planning completes the
            # records in place, and a retry must not start from records planned on a
            # cache it then found stale.
            found: dict[str, tuple[builtins.list[str], dict[str, Current]]] = {}
            for collection, group in groups.items():
                ids = ids_of(group)
                if synced:
                    self._fresh_locked(collection)
                    # A new collection gets its (empty) table, so that its next writes
                    # take the one-statement way.
                    self._cache.ensure_table(collection)
                    found[collection] = ids, self._cache.currents(collection, ids)
                else:
                    path = self.file_path(collection)
                    currents = self._cache.currents_if_fresh(collection, path, ids)
                    if currents is None:
                        raise _NotFresh
                    found[collection] = ids, currents
            for collection, group in groups.items():
                self._cache.record_pending(collection, plan(group, *found[collection]))

    def _fresh_locked(self, collection: str) -> None:
        # Inside the write lock and transaction: catch up, and refuse a conflicted file.
        result = self._cache.sync(collection, self.file_path(collection))
        if result.action == "conflict":
            state = self._cache.file_state(collection)
            raise ConflictMarkersError(
                display_path(self.file_path(collection)),
                state.conflict_line if state and state.conflict_line else 0,
            )

    def _append(self, collection: str, rows: builtins.list[Row]) -> None:
        path = self.file_path(collection)
        lines = [row[1] for row in rows]
        self._cache.record_append(
            collection, path, rows, lambda on_block: jsonl.append_lines(path, lines, on_block)
        )

    # --- batches and debounced writes ---------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold this thread's writes and apply them together when the block ends.

        Every record is validated when it is given (a bad one raises inside the block);
        at the end, one lock, one append and one fsync per file, one SQLite transaction.
        If the block raises, or a create/update is refused at the end, nothing is written.
        Reads inside the block do not see the held writes. Its records are stamped with
        the time the block began, one time for all. Once it holds more than GC_PAUSE_MIN
        records, the cycle collector is paused until they are written (as put_many
        pauses it), and then runs again.
        """
        outer: _Batch | None = getattr(self._batches, "batch", None)
        if outer is not None:
            # Nested: the outer batch applies everything. if this block raises, its
            # own writes are discarded; they were kept, and written at the outer end when
            # the outer block caught the exception.
            held = outer.requests
            mark = len(held)
            size = len(held[-1].records) if held else 0
            try:
                yield
            except BaseException:
                del held[mark:]
                if held:  # this block's first writes may have joined the last request
                    held[-1].truncate(size)
                outer.held = sum(len(request.records) for request in held)
                raise
            return
        self._batches.batch = batch = _Batch(now_ms())
        try:
            try:
                yield
            finally:
                self._batches.batch = None
            if batch.requests:
                self._submit(batch.requests)
        finally:
            batch.resume_gc()

    def flush(self) -> int:
        """Export pending (debounced) writes to the JSONL files now; return how many.

        A pending write that a newer version has superseded meanwhile (a pull, a merge,
        another writer) is dropped: the newer updated_at wins, as everywhere.
        """
        return sum(self.flush_each().values())

    def flush_each(self, *, orphans_only: bool = False) -> dict[str, int]:
        """Export pending writes now; return how many went to each collection's file."""

        def run() -> dict[str, int]:
            exported: dict[str, int] = {}
            pending = self._cache.pending_counts(orphans_only=orphans_only)
            if not pending:
                return exported
            with self.locked(), self._cache.transaction():
                for collection in pending:
                    self._fresh_locked(collection)
                    taken = self._cache.take_pending(collection, orphans_only=orphans_only)
                    if taken:
                        self._append(collection, taken)
                        exported[collection] = len(taken)
            return exported

        return self._guarded(run)

    def pending(self) -> dict[str, int]:
        """Debounced writes not yet in the JSONL files, per collection."""
        return self._guarded(self._cache.pending_counts)

    # --- typed API ----------------------------------------------------------------------

    def create(self, record: R) -> R:
        """Write a new record (an id is generated when ``record.id`` is ""); return it."""
        if record.id == "":
            record.id = new_id(type(record).id_prefix)
        return self._typed_write(record, "create")

    def update(self, record: R) -> R:
        """Replace an existing record; NotFoundError if it does not exist."""
        return self._typed_write(record, "update")

    def put(self, record: R) -> R:
        """Create or replace."""
        if record.id == "":
            record.id = new_id(type(record).id_prefix)
        return self._typed_write(record, "put")

    def _typed_write(self, record: R, mode: str) -> R:
        self._submit([self._typed_request(record, mode)])
        return record

    def _typed_request(self, record: Record, mode: str) -> Request:
        record.validate()
        cls = type(record)
        self._declare(cls)
        return self._request(cls.collection(), mode, [record.to_dict()], [record])

    def create_many(self, records: Iterable[R]) -> builtins.list[R]:
        """Create many typed records in one write: all validated first (one bad record
        writes nothing), then one lock, one append and fsync per file, one transaction."""
        records = builtins.list(records)
        stamp = self._stamp()
        requests = []
        first = 1
        with gc_paused():
            # One request per run of records of one type, all with one stamp.
            for _, run in groupby(records, key=type):
                group: builtins.list[Record] = builtins.list(run)
                cls = type(group[0])
                for record in group:
                    if record.id == "":
                        record.id = new_id(cls.id_prefix)
                    record.validate()
                self._declare(cls)
                data = dicts_of(group)
                requests.append(
                    make_request(cls.collection(), "create", data, stamp, group, first=first)
                )
                first += len(group)
            self._submit(requests)
        return records

    def get(self, cls: type[R], record_id: str) -> R | None:
        data = self.collection(cls.collection()).get(record_id)
        return None if data is None else cls.from_dict(data)

    def delete(self, cls: type[Record], record_id: str) -> bool:
        return self._delete(cls.collection(), record_id)

    def list(
        self,
        cls: type[R],
        filters: Iterable[Filter] = (),
        *,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[R]:
        self._declare(cls)
        rows = self.collection(cls.collection()).list(
            filters, sort=sort, limit=limit, offset=offset
        )
        return [cls.from_dict(row) for row in rows]

    def count(self, cls: type[Record], filters: Iterable[Filter] = ()) -> int:
        self._declare(cls)
        return self.collection(cls.collection()).count(filters)

    def rebuild_indexes(self, cls: type[Record]) -> int:
        """(Re)build the indexes a record type declares; returns how many.

        Kept for users of the Rust API: indexes are maintained on every sync already.
        """
        return self._ensure_indexes(cls.collection(), cls.indexed_fields, rebuild=True)

    def _declare(self, cls: type[Record]) -> None:
        if cls.indexed_fields:
            self._ensure_indexes(cls.collection(), cls.indexed_fields)

    # --- maintenance (maintenance.py) ------------------------------------------------

    def compact(self, collection: str | None = None) -> builtins.list[CompactResult]:
        """Rewrite files to their current versions (tombstones and bad lines kept), atomically."""
        return maintenance.compact(self, collection)

    def check(self, *, quick: bool = False) -> builtins.list[Problem]:
        """Validate every JSONL file and the cache; an empty list means all is well.

        ``quick`` trusts the cache for files it read whole without a problem and that have
        not changed since, and skips the cache's integrity check (maintenance.check)."""
        return maintenance.check(self, quick=quick)

    def status(self) -> builtins.list[CollectionStatus]:
        """Per collection: records, freshness and file size, without syncing first."""
        return maintenance.status(self)

    def stats(self) -> builtins.list[CollectionStatus]:
        """Like status(), after a sync: exact counts of every collection."""
        self.sync()
        return maintenance.status(self)

    def backup(self, dest: str | os.PathLike[str]) -> builtins.list[str]:
        """Copy the store's tracked files (not the cache) into a new folder; return them."""
        return maintenance.backup(self, dest)

    def export_data(self) -> dict[str, builtins.list[dict[str, Any]]]:
        """Every live record of every collection, in the store's order (a collection
        whose only writes are still pending, with no file yet, included)."""
        names = sorted(set(self.collections()) | set(self.pending()))
        return {name: self.collection(name).list() for name in names}

    def import_data(self, data: dict[str, builtins.list[dict[str, Any]]]) -> ImportResult:
        """Write records keeping their timestamps, skipping any the store holds newer."""
        return maintenance.import_data(self, data)

    def init_files(self) -> bool:
        """Make sure .version and .gitignore are in place; True if anything changed."""
        return self._ensure_gitignore()


@overload
def read_version(store_dir: str) -> int: ...
@overload
def read_version(store_dir: str, default: int) -> int: ...
def read_version(store_dir: str, default: int | None = None) -> int:
    path = os.path.join(store_dir, VERSION_NAME)
    try:
        with open(path, "rb") as handle:
            text = handle.read().strip()
    except FileNotFoundError:
        if default is not None:
            return default
        raise
    try:
        version = int(text.decode("ascii"))
        if version < 0:
            # A negative version reached MIGRATIONS[-1] and raised a bare KeyError.
            raise ValueError(text)
        return version
    except (UnicodeDecodeError, ValueError):
        raise StoreVersionError(
            f"{display_path(path)} should hold a schema version number, found {text[:40]!r}: "
            f"restore it from git (`git checkout -- {display_path(path)}`) "
            f"or write {SCHEMA_VERSION}"
        ) from None


def _debounce_from_env() -> int | None:
    value = os.environ.get("TASKSTORE_DEBOUNCE_MS")
    if not value:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        raise ValidationError(
            f"TASKSTORE_DEBOUNCE_MS must be a number of milliseconds, got {value!r}"
        ) from None


# Stores in debounced mode still open: their pending writes are exported at exit.
_OPEN_DEBOUNCED: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _export_at_exit() -> None:
    for store in list(_OPEN_DEBOUNCED):
        store.close()
