"""The Store: the typed and dict-level API over one ``.taskstore`` folder.

A ``put`` reads top to bottom: :class:`Collection` copies and validates the records into a
request (writes.make_request), then ``Store._submit`` holds it in the thread's batch,
records it as pending (debounce.record), or writes it now (engine.Engine.apply: lock,
sync, plan, append to the JSONL, record in the cache). A read asks the engine, which
brings the collection's cache up to date with its file first.
"""

from __future__ import annotations

import atexit
import builtins
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from itertools import groupby
from typing import TYPE_CHECKING, Any, TypeVar

from . import debounce, jsonl, layout, log, names
from .batch import Batch
from .engine import GC_PAUSE_MIN, Engine
from .errors import (
    NotFoundError,
    StorePathError,
    TaskstoreError,
    ValidationError,
    VersionConflictError,
)
from .fieldtimes import public
from .gcpause import gc_paused
from .ids import new_id
from .paths import STORE_DIRNAME
from .query import check_window
from .records import Filter, Record, rules_of, validated, version_in
from .schema import compiled
from .sync import SyncResult
from .writes import Request, Rules, make_request

if TYPE_CHECKING:
    from .computed import Computed
    from .hooks import Integration
    from .legacy import LegacyImportResult
    from .maintenance import Check, CollectionStatus, CompactResult, ImportResult, Problem

R = TypeVar("R", bound=Record)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Collection:
    """Dict-level access to one collection, for generic tools (the CLI uses it)."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = names.validate_collection(name)

    def __repr__(self) -> str:
        return f"<Collection {self.name!r} of {self.store.path}>"

    def get(self, record_id: str) -> dict[str, Any] | None:
        return self.store.engine.get(self.name, names.validate_id(record_id))

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

    def update(
        self, record: dict[str, Any], *, expect_version: int | None = None
    ) -> dict[str, Any]:
        """Replace a live record; NotFoundError if there is none. With ``expect_version``
        (the ``updated_at`` it was read at), VersionConflictError if another version was
        written since: the check and the write hold the store's lock together."""
        if expect_version is None:
            return self.store._write(self.name, [record], "update")[0]
        with self.store._atomic("update(expect_version=...)"):
            self.store._expect(self.name, record.get("id"), expect_version, ())
            return self.store._write(self.name, [record], "update")[0]

    def import_many(self, records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write records keeping their own timestamps; a record is skipped where the store
        holds that version or a newer one. Returns those written."""
        return self.store._write(self.name, list(records), "import")

    def delete(self, record_id: str) -> bool:
        """Append a tombstone; False if there was no live record (inside a batch: True)."""
        names.validate_id(record_id)
        request = self.store._request(self.name, "delete", [{"id": record_id}])
        return self.store._submit([request]) or bool(request.written)

    def list(
        self,
        filters: Iterable[Filter] = (),
        *,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        return self._list(filters, sort, limit, offset, None)

    def _list(
        self,
        filters: Iterable[Filter],
        sort: str | None,
        limit: int | None,
        offset: int,
        computed: Mapping[str, Computed] | None,
    ) -> builtins.list[dict[str, Any]]:
        """list(), reading the names of ``computed`` as those values (a typed query's
        class's), or, with None, the computed values the cache knows."""
        check_window(limit, offset)
        if sort:
            names.validate_field(sort.removeprefix("-"))
        rows = self.store.engine.select(self.name, tuple(filters), sort, limit, offset, computed)
        return [public(jsonl.loads(row)) for row in rows]

    def count(self, filters: Iterable[Filter] = ()) -> int:
        return self.store.engine.count(self.name, tuple(filters))

    def count_by(self, field: str) -> dict[Any, int]:
        """How many live records hold each value of ``field`` (None: null or missing)."""
        return self.store.engine.count_by(self.name, names.validate_field(field))

    def ensure_index(self, *fields: str) -> int:
        for name in fields:
            names.validate_field(name)
        return self.store.engine.ensure_indexes(self.name, fields, rebuild=False)


class Store:
    """A ``.taskstore`` folder: JSONL files (the truth) and a SQLite cache beside them.

    Safe to share between threads; several processes may open the same store and write
    at once.
    """

    def __init__(
        self, store_dir: str, *, create: bool = True, debounce_ms: int | None = None
    ) -> None:
        self.path = os.path.abspath(store_dir)
        # Checked before anything is opened: a bad value leaves nothing to close.
        debounce.check_delay(debounce_ms)
        if debounce_ms is None:
            debounce_ms = debounce.delay_from_env()
        layout.prepare(self.path, create=create)
        self.engine = Engine(self.path)
        self._batches = threading.local()
        self._flusher: debounce.Flusher | None = None
        # Pending writes of processes that died before exporting them, exported as this
        # store opened, per collection (the pre-commit hook stages those files too).
        self.exported_at_open: dict[str, int] = {}
        if self.engine.guarded(lambda: self.engine.cache.pending_owners()):
            self._export_orphans()
        self._owner: debounce.Owner | None = None
        if debounce_ms:
            self._owner = debounce.Owner(self.path)
            self._flusher = debounce.Flusher(debounce_ms / 1000, self.flush)
            _OPEN_DEBOUNCED.add(self)

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

    def _export_orphans(self) -> None:
        try:
            self.exported_at_open = debounce.flush(self.engine, orphans_only=True)
        except TaskstoreError as exc:
            log.warning("pending writes of an earlier process not exported yet: %s", exc)
            return
        exported = sum(self.exported_at_open.values())
        if exported:
            log.info("exported %d pending write(s) left by an earlier process", exported)

    def close(self) -> None:
        """Export pending writes (debounced mode) and close the cache."""
        if self._flusher is not None:
            # Stopped before taking the mutex, which a flusher that has just woken up
            # may be waiting for.
            self._flusher.stop()
        with self.engine.mutex:
            if self.engine.closed:
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
            if self._owner is not None:
                self._owner.release()
            self.engine.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.path}>"

    # --- the folder -----------------------------------------------------------------------

    def file_path(self, collection: str) -> str:
        """The JSONL file of a collection."""
        return self.engine.file_path(collection)

    def locked(self) -> AbstractContextManager[None]:
        """Hold the store's write lock (re-entrant within a thread): what another writer
        waits for. A read-modify-write inside it sees no other writer's write."""
        return self.engine.locked()

    def collections(self) -> builtins.list[str]:
        """Collections with a JSONL file, sorted by name."""
        return self.engine.collections()

    def sync(self, *, full: bool = False) -> builtins.list[SyncResult]:
        """Bring the cache up to date with every JSONL file (rebuild all with full)."""
        return self.engine.sync(full=full)

    def is_stale(self) -> bool:
        """True if any JSONL file changed, appeared or vanished since the cache read it."""
        return self.engine.is_stale()

    def init_files(self) -> bool:
        """Make sure .gitignore lists the cache and lock files; True if it changed."""
        return layout.ensure_gitignore(self.path)

    def install_git_integration(
        self, *, hooks: bool = True, allow_hooks_path: bool = False
    ) -> Integration:
        """What `git taskstore init` does in git, from code (a daemon that sets itself up
        at start): the merge driver in this clone's config, the .gitattributes line for
        the store's files, and the hooks, which remember this store's folder.

        Idempotent. Returns the report (``changed``, ``warnings``, what is in place);
        StorePathError outside a git work tree.
        """
        from .git import find_repo
        from .hooks import integrate

        self.init_files()
        repo = find_repo(os.path.dirname(self.path))
        if repo is None:
            raise StorePathError(
                f"{self.path} is not in a git work tree: nothing to wire (git init first)"
            )
        return integrate(repo, self.path, hooks=hooks, allow_hooks_path=allow_hooks_path)

    # --- writes -----------------------------------------------------------------------------

    def collection(self, name: str) -> Collection:
        return Collection(self, name)

    def _request(
        self,
        collection: str,
        mode: str,
        records: Sequence[object],
        typed: Sequence[Record] | None = None,
        rules: Rules | None = None,
    ) -> Request:
        """Copy and validate the records of one call, stamped with its time (inside a
        batch, the time the batch began)."""
        batch: Batch | None = getattr(self._batches, "batch", None)
        stamp = now_ms() if batch is None else batch.stamp
        return make_request(
            collection, mode, records, stamp, None if typed is None else [*typed], rules=rules
        )

    def _write(
        self, collection: str, records: builtins.list[dict[str, Any]], mode: str
    ) -> builtins.list[dict[str, Any]]:
        """Write dict records of one collection: mode is put, patch, create, update or
        import (which keeps the records' own timestamps and skips those not newer than
        the store's). Returns the records written, completed in place; inside a batch, all
        of them, settled when it ends."""
        batch: Batch | None = getattr(self._batches, "batch", None)
        if batch is not None:
            added = batch.add(collection, mode, records[0]) if len(records) == 1 else None
            if added is not None:
                return [added]
            batch.expect(len(records))  # before the request is made
        with gc_paused() if len(records) > GC_PAUSE_MIN else nullcontext():
            request = self._request(collection, mode, records)
            if self._submit([request]):
                return request.records[:]  # a batch may add later calls' records to it
            return request.written

    def _submit(self, requests: builtins.list[Request]) -> bool:
        """Write validated requests now, or hold them until the thread's batch ends (True
        then)."""
        if not requests:
            return False
        batch: Batch | None = getattr(self._batches, "batch", None)
        if batch is not None:
            batch.hold(requests)
            return True
        if self._flusher is not None:
            owner = self._owner.id if self._owner is not None else 0
            self.engine.guarded(lambda: debounce.record(self.engine, requests, owner))
            self._flusher.poke()
        else:
            self.engine.guarded(lambda: self.engine.apply(requests))
        return False

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Hold this thread's writes and apply them together when the block ends.

        Every record is validated when it is given (a bad one raises inside the block);
        at the end, one lock, one append and one fsync per file, one SQLite transaction.
        If the block raises, or a create/update is refused at the end, nothing is written.
        Reads inside the block do not see the held writes. Its records are stamped with
        the time the block began, one time for all. Once it holds more than GC_PAUSE_MIN
        records, the cycle collector is paused until they are written.
        """
        outer: Batch | None = getattr(self._batches, "batch", None)
        if outer is not None:
            # Nested: the outer block writes everything; this one's writes are dropped if
            # it raises (and the outer block goes on if it catches that).
            mark = outer.mark()
            try:
                yield
            except BaseException:
                outer.discard_from(mark)
                raise
            return
        self._batches.batch = batch = Batch(now_ms())
        try:
            try:
                yield
            finally:
                self._batches.batch = None
            self._submit(batch.requests)
        finally:
            batch.resume_gc()

    def flush(self) -> int:
        """Export pending (debounced) writes to the JSONL files now; return how many.

        A pending write that a newer version has superseded meanwhile (a pull, a merge,
        another writer) is dropped: the newer updated_at wins, as everywhere.
        """
        return sum(self.flush_each().values())

    def flush_each(self) -> dict[str, int]:
        """flush(), returning how many writes went to each collection's file."""
        return debounce.flush(self.engine)

    def pending(self) -> dict[str, int]:
        """Debounced writes not yet in the JSONL files, per collection."""
        return self.engine.guarded(lambda: self.engine.cache.pending_counts())

    # --- typed API ----------------------------------------------------------------------

    def create(self, record: R) -> R:
        """Write a new record (an id is generated when ``record.id`` is ""); return it."""
        return self._typed_write(record, "create")

    def update(self, record: R, *, expect_version: int | None = None) -> R:
        """Replace an existing record; NotFoundError if it does not exist. With
        ``expect_version`` (the ``updated_at`` it was read at: its version),
        VersionConflictError if another version was written since (checked and written
        under the lock)."""
        if expect_version is None:
            return self._typed_write(record, "update")
        cls = type(record)
        with self._atomic("update(expect_version=...)"):
            self._expect(cls.collection(), record.id, expect_version, cls.versioned_by)
            return self._typed_write(record, "update")

    def modify(self, cls: type[R], record_id: str, change: Callable[[R], R | None]) -> R:
        """Read, change and write one record as one step: under the store's lock, so no
        other thread or process writes it in between. ``change`` gets the current record
        and changes it in place (or returns the new one); NotFoundError if there is none.
        Returns the record written."""
        with self._atomic("modify()"):
            current = self.get(cls, record_id)
            if current is None:
                raise NotFoundError(f"{cls.collection()}/{record_id} not found: nothing to modify")
            changed = change(current)
            return self._typed_write(changed if changed is not None else current, "update")

    @contextmanager
    def _atomic(self, what: str) -> Iterator[None]:
        """The lock for a read-then-write; refused inside a batch, whose writes wait for
        its end, after the lock is gone."""
        if getattr(self._batches, "batch", None) is not None:
            raise ValidationError(
                f"{what} cannot run inside store.batch(): the batch writes after the check"
            )
        with self.locked():
            yield

    def _expect(
        self, collection: str, record_id: object, version: int, versioned_by: Sequence[str]
    ) -> None:
        current = self.collection(collection).get(names.validate_id(record_id))
        if current is None:
            raise NotFoundError(f"{collection}/{record_id} not found: nothing to update")
        found = version_in(current, versioned_by)
        if found != version:
            raise VersionConflictError(
                f"{collection}/{record_id} is at version {found}, not {version}: another "
                "writer changed it; read it again and retry"
            )

    def put(self, record: R) -> R:
        """Create or replace (an id is generated when ``record.id`` is "")."""
        return self._typed_write(record, "put")

    def _typed_write(self, record: R, mode: str) -> R:
        cls = type(record)
        if record.id == "" and mode != "update":
            record.id = new_id(cls.id_prefix)
        data = validated([record])
        self._declare(cls)
        rules = rules_of(cls, held=self._flusher is not None)
        self._submit([self._request(cls.collection(), mode, data, [record], rules)])
        return record

    def create_many(self, records: Iterable[R]) -> builtins.list[R]:
        """Create many typed records in one write: all validated first (one bad record
        writes nothing), then one lock, one append and fsync per file, one transaction."""
        records = [*records]
        batch: Batch | None = getattr(self._batches, "batch", None)
        stamp = now_ms() if batch is None else batch.stamp
        requests = []
        first = 1
        with gc_paused():
            # One request per run of records of one type, all with one stamp.
            for _, run in groupby(records, key=type):
                group: builtins.list[Record] = [*run]
                cls = type(group[0])
                for record in group:
                    if record.id == "":
                        record.id = new_id(cls.id_prefix)
                data = validated(group)
                self._declare(cls)
                requests.append(
                    make_request(
                        cls.collection(),
                        "create",
                        data,
                        stamp,
                        group,
                        first=first,
                        rules=rules_of(cls, held=self._flusher is not None),
                    )
                )
                first += len(group)
            self._submit(requests)
        return records

    def get(self, cls: type[R], record_id: str) -> R | None:
        data = self.collection(cls.collection()).get(record_id)
        return None if data is None else cls.from_dict(data)

    def delete(self, cls: type[Record], record_id: str) -> bool:
        return self.collection(cls.collection()).delete(record_id)

    def list(
        self,
        cls: type[R],
        filters: Iterable[Filter] = (),
        *,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[R]:
        filters = tuple(filters)
        _check_declared(
            cls, [f.field for f in filters] + ([sort.removeprefix("-")] if sort else [])
        )
        self._declare(cls)
        # The class's own computed values: the cache's may be another class's, or an
        # older release's, under a name that is a stored field here.
        rows = self.collection(cls.collection())._list(
            filters, sort, limit, offset, cls.computed_fields
        )
        return [cls.from_dict(row) for row in rows]

    def count(self, cls: type[Record], filters: Iterable[Filter] = ()) -> int:
        filters = tuple(filters)
        _check_declared(cls, [f.field for f in filters])
        self._declare(cls)
        return self.engine.count(cls.collection(), filters, cls.computed_fields)

    def rebuild_indexes(self, cls: type[Record]) -> int:
        """(Re)build the indexes a record type declares, its computed values' too; returns
        how many.

        Kept for users of the Rust API: indexes are maintained on every sync already.
        """
        return self.engine.ensure_indexes(
            cls.collection(), cls.indexed_fields, rebuild=True
        ) + self.engine.ensure_computed(cls.collection(), cls.computed_fields, rebuild=True)

    def _declare(self, cls: type[Record]) -> None:
        if cls.indexed_fields:
            self.engine.ensure_indexes(cls.collection(), cls.indexed_fields, rebuild=False)
        # Kept in the cache: the dict-level API and the CLI query them by name too. A name
        # the cache computes that is a field of the class now is forgotten.
        self.engine.ensure_computed(
            cls.collection(), cls.computed_fields, rebuild=False, fields=_fields_of(cls)
        )

    # --- maintenance (maintenance.py) ------------------------------------------------
    # Imported by each method: most processes (hooks, reads, writes) never call one, and
    # the module's result classes cost ~2 ms of every start.

    def compact(self, collection: str | None = None) -> builtins.list[CompactResult]:
        """Rewrite files to their current versions (tombstones and bad lines kept), atomically."""
        from . import maintenance

        return maintenance.compact(self.engine, collection)

    def check(self, *, quick: bool = False, checks: Sequence[Check] = ()) -> builtins.list[Problem]:
        """Validate every JSONL file and the cache; an empty list means all is well.

        ``quick`` trusts the cache for files it read whole without a problem and that have
        not changed since, and skips the cache's integrity check. ``checks`` are further
        checks of the records (the task model's: taskmodel.CHECKS)."""
        from . import maintenance

        return maintenance.check(self, quick=quick, checks=checks)

    def status(self) -> builtins.list[CollectionStatus]:
        """Per collection: records, freshness and file size, without syncing first (but
        for a cache in memory, which holds nothing until it has read the files)."""
        if self.cache_in_memory:
            self.sync()
        from . import maintenance

        return maintenance.status(self.engine)

    @property
    def cache_in_memory(self) -> bool:
        """True when this process reads through a cache in memory: the cache file cannot
        be written (a read-only checkout, a full disk)."""
        return self.engine.in_memory

    def stats(self) -> builtins.list[CollectionStatus]:
        """Like status(), after a sync: exact counts of every collection."""
        self.sync()
        from . import maintenance

        return maintenance.status(self.engine)

    def backup(self, dest: str | os.PathLike[str]) -> builtins.list[str]:
        """Copy the store's tracked files (not the cache) into a new folder; return them."""
        from . import maintenance

        return maintenance.backup(self.engine, dest)

    def export_data(self) -> dict[str, builtins.list[dict[str, Any]]]:
        """Every live record of every collection, in the store's order (a collection
        whose only writes are still pending, with no file yet, included)."""
        names = sorted(set(self.collections()) | set(self.pending()))
        return {name: self.collection(name).list() for name in names}

    def import_data(self, data: dict[str, builtins.list[dict[str, Any]]]) -> ImportResult:
        """Write records keeping their timestamps, skipping any the store holds newer."""
        from . import maintenance

        return maintenance.import_data(self, data)

    def import_jsonl(
        self,
        path: str | os.PathLike[str],
        *,
        order: str,
        collection: str | None = None,
        existing: str = "refuse",
    ) -> LegacyImportResult:
        """Import JSONL files another store wrote under its own rule, named by ``order``:
        "last-line-wins" (per id, the last line is current; a tombstone last: deleted).

        ``path`` is one file (into ``collection``, else the file's name without .jsonl) or
        a folder of ``<collection>.jsonl`` files. Each id's last line is written byte for
        byte as its only line; bad lines are reported in the result and skipped. An id the
        store holds in another version: ``existing`` "refuse" (AlreadyExistsError, nothing
        written), "keep" (the store's), or "replace" (written as a new version, as put()
        or delete() would). All is validated before the first write."""
        from . import legacy

        return legacy.import_jsonl(
            self, path, order=order, collection=collection, existing=existing
        )


def _fields_of(cls: type[Record]) -> tuple[str, ...]:
    return compiled(cls).fields


def _check_declared(cls: type[Record], fields: Sequence[str]) -> None:
    """A typed query names fields its class declares: a typo would match nothing, silently."""
    if not fields:
        return
    known = {*_fields_of(cls), *cls.computed_fields}
    unknown = [name for name in fields if name not in known]
    if unknown:
        raise ValidationError(
            f"{cls.__name__} has no field {unknown[0]!r} to filter or sort on "
            f"(it has {', '.join(sorted(known))}); query undeclared fields with "
            f"store.collection({cls.collection()!r}).list(...)"
        )


# Stores in debounced mode still open: their pending writes are exported at exit.
_OPEN_DEBOUNCED: weakref.WeakSet[Store] = weakref.WeakSet()


@atexit.register
def _export_at_exit() -> None:
    for store in [*_OPEN_DEBOUNCED]:
        store.close()
