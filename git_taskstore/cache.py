"""The SQLite query cache: derived from the JSONL files, disposable, rebuilt at will.

This module owns the schema. One table per collection holds the current version of each
id (tombstones included, so an older line can never resurrect a deleted record); the
``files`` table remembers how far each JSONL file has been read, so a file that only grew
is caught up by reading just its new bytes. The ``pending`` table holds debounced writes
not yet in the files (the one part of the cache that is not derived): every read lays
them over the collection's table, the newer version winning, so they are current at once
while a debounced write touches a single b-tree.

Locking: callers hold the store's file lock around anything that changes the cache, and
every change runs inside one ``BEGIN IMMEDIATE`` transaction. WAL mode lets readers in
other processes keep seeing the previous state until the commit: never an empty table.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from itertools import chain, islice
from typing import Any, BinaryIO, TypeVar

from . import jsonl
from .gcpause import gc_paused
from .jsonl import BadLine, Winner
from .paths import display_path
from .records import Filter, Op
from .writes import Current, Row

log = logging.getLogger("git_taskstore")

SCHEMA_VERSION = 5
# How much of the start and of the end of the already-read bytes is compared to make sure a
# grown file kept its prefix (an append), rather than being rewritten.
HEAD_BYTES = 256
TAIL_BYTES = 256
# Files are read in blocks so memory follows the number of ids, not the file's size.
READ_BLOCK = 8 << 20
# At most this many bad lines are named one by one in the log per sync.
MAX_LOGGED_BAD_LINES = 5
T = TypeVar("T")

# Rows per INSERT statement: 4 parameters each, well under the 32,766 SQLite allows.
_ROWS_PER_INSERT = 1000
_MANY_ROWS = ",".join(["(?,?,?,?)"] * _ROWS_PER_INSERT)
# Ids looked up per statement: well under the 32,766 parameters SQLite allows.
_CHUNK = 500


def racy_window_ns(mtime_ns: int) -> int:
    """How long after a file's mtime another write could leave the same mtime.

    Linux filesystems stamp files from the kernel's coarse clock, at most a 10 ms tick
    behind the fine clock this process reads; FAT, HFS+ and some network filesystems keep
    whole seconds, seen as an mtime with no sub-second part.
    """
    return 2_000_000_000 if mtime_ns % 1_000_000_000 == 0 else 20_000_000


@dataclass(frozen=True, slots=True)
class FileState:
    """What the cache knows of one JSONL file: its stat and how far it has been read."""

    inode: int
    size: int
    mtime_ns: int
    offset: int  # bytes read: the cache reflects exactly data[:offset]
    lines: int  # newlines in data[:offset]
    crc: int  # crc32 and adler32 of data[:offset], kept incrementally
    adler: int
    head: bytes  # data[:HEAD_BYTES]
    tail: bytes  # data[offset - TAIL_BYTES:offset]
    synced_ns: int  # wall clock just before the file was last read
    bad_lines: int
    conflict_line: int | None

    def matches(self, st: os.stat_result) -> bool:
        return _stat_matches(st, self.inode, self.size, self.mtime_ns, self.offset)

    def is_racy(self) -> bool:
        """Read so soon after its last change that a same-size rewrite could hide."""
        return _racy(self.synced_ns, self.mtime_ns)


def _stat_matches(st: os.stat_result, inode: int, size: int, mtime_ns: int, offset: int) -> bool:
    """The file is as it was when read to ``offset``, by its stat."""
    return st.st_ino == inode and st.st_size == size == offset and st.st_mtime_ns == mtime_ns


def _racy(synced_ns: int, mtime_ns: int) -> bool:
    return synced_ns - mtime_ns < racy_window_ns(mtime_ns)


EMPTY_STATE = FileState(0, 0, 0, 0, 0, zlib.crc32(b""), zlib.adler32(b""), b"", b"", 0, 0, None)


class _Digest:
    """The running crc32/adler32, line count, head and tail of the bytes read so far."""

    __slots__ = ("adler", "crc", "head", "lines", "offset", "tail")

    def __init__(self, state: FileState = EMPTY_STATE) -> None:
        self.offset = state.offset
        self.lines = state.lines
        self.crc = state.crc
        self.adler = state.adler
        self.head = state.head
        self.tail = state.tail

    def feed(self, data: bytes, lines: int | None = None) -> None:
        """Go on past ``data``, which holds ``lines`` newlines (counted if not given)."""
        self.offset += len(data)
        self.lines += data.count(b"\n") if lines is None else lines
        self.crc = zlib.crc32(data, self.crc)
        self.adler = zlib.adler32(data, self.adler)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.tail = (
            data[-TAIL_BYTES:] if len(data) >= TAIL_BYTES else (self.tail + data)[-TAIL_BYTES:]
        )

    def state(
        self, st: os.stat_result, synced_ns: int, bad_lines: int, conflict: int | None = None
    ) -> FileState:
        return FileState(
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            self.offset,
            self.lines,
            self.crc,
            self.adler,
            self.head,
            self.tail,
            synced_ns,
            bad_lines,
            conflict,
        )


def _consume(
    handle: BinaryIO, digest: _Digest, winners: dict[str, Winner], bad: list[BadLine]
) -> None:
    """Read ``handle`` to its end in blocks, reducing whole lines into ``winners``.

    The store lock is held, so a last line without a newline is final (a torn write or a
    hand-edited file), not a writer half-way through.
    """
    carry = b""
    while True:
        block = handle.read(READ_BLOCK)
        if not block:
            break
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


@dataclass(frozen=True, slots=True)
class SyncResult:
    collection: str
    action: str  # "fresh", "caught-up", "rebuilt", "dropped", "conflict"
    lines_read: int = 0
    bad_lines: tuple[BadLine, ...] = ()


def _table(collection: str) -> str:
    # Collection names are validated to [A-Za-z0-9_-], so quoting is enough.
    return f'"r_{collection}"'


def _index_name(collection: str, field: str) -> str:
    return f'"ix_{collection}__{field}"'


def _expr(field: str) -> str:
    # Field names are validated to [A-Za-z0-9_]; the literal path lets SQLite match the
    # expression against the index definition.
    if field == "id":
        return "id"
    return f"json_extract(data, '$.{field}')"


class CacheCorrupt(Exception):
    """The database file is not usable; the store deletes and rebuilds it."""


class Cache:
    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = self._connect(path)

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            # Records are a few hundred bytes: 16 KiB pages make rebuilds and batches
            # faster than 4 KiB ones (measured: 1.30x the floor against 1.70x, and 1.31x
            # against 1.62x; 8 KiB sat between). Every commit writes whole pages to the
            # WAL, which is why a debounced write touches a single b-tree: the pending
            # table's, which has no rowid (record_pending). Only takes effect on a new
            # file, before WAL mode.
            conn.execute("PRAGMA page_size = 16384")
            conn.execute("PRAGMA journal_mode = WAL")
            # The cache is derived from fsynced JSONL: losing its last transaction to a
            # power cut costs a catch-up, except for pending (debounced) writes, which
            # survive a killed process but not a power cut: the price of no fsync per
            # debounced write (documented in the README).
            conn.execute("PRAGMA synchronous = NORMAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                _create_schema(conn)
        except sqlite3.OperationalError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise CacheCorrupt(str(exc)) from exc
        return conn

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; nested calls join the outer transaction."""
        if self.conn.in_transaction:
            yield self.conn
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- file state -------------------------------------------------------------------

    def file_state(self, collection: str) -> FileState | None:
        row = self.conn.execute(
            "SELECT inode, size, mtime_ns, offset, lines, crc, adler, head, tail, synced_ns,"
            " bad_lines, conflict_line FROM files WHERE collection = ?",
            (collection,),
        ).fetchone()
        return FileState(*row) if row else None

    def cached_collections(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT collection FROM files ORDER BY 1")]

    def _save_state(self, collection: str, state: FileState) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO files (collection, inode, size, mtime_ns, offset, lines,"
            " crc, adler, head, tail, synced_ns, bad_lines, conflict_line)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (collection, *(getattr(state, f) for f in FileState.__slots__)),
        )

    def needs_sync(self, collection: str, path: str) -> tuple[bool, FileState | None]:
        """(whether the file may differ from the cache, the cached state): one stat.

        The fast path of every read; anything short of an exact stat match outside the
        racy window is left to sync(), under the lock.
        """
        # Asked every time, never remembered: another process may have rebuilt the
        # cache under an unchanged file (another release, or the Rust crate, recreating
        # the schema), and only the files table says so.
        state = self.file_state(collection)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return state is not None, state
        if state is None or not state.matches(st) or state.is_racy():
            return True, state
        return False, state

    def freshness(self, collection: str, path: str) -> str:
        """'fresh', 'stale', 'new', 'deleted', 'absent' or 'conflict', changing nothing.

        A file inside the racy window is compared by content hash.
        """
        state = self.file_state(collection)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "absent" if state is None else "deleted"
        if state is None:
            return "new"
        if not state.matches(st):
            return "stale"
        if state.is_racy() and not _same_content(state, path):
            return "stale"
        return "conflict" if state.conflict_line is not None else "fresh"

    # --- sync -------------------------------------------------------------------------

    def sync(self, collection: str, path: str, *, full: bool = False) -> SyncResult:
        """Bring one collection up to date with its file. Caller holds the store lock."""
        with self.transaction():
            return self._sync(collection, path, full)

    def _sync(self, collection: str, path: str, full: bool) -> SyncResult:
        state = self.file_state(collection)
        synced_ns = time.time_ns()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if state is None:
                return SyncResult(collection, "fresh")
            self.drop(collection)
            return SyncResult(collection, "dropped")
        if full or state is None or st.st_ino != state.inode or st.st_size < state.offset:
            return self._rebuild(collection, path, synced_ns)
        if st.st_size == state.offset:
            if not state.matches(st) or state.is_racy():
                # Touched, or read too soon after a change: compare the bytes.
                if not _same_content(state, path):
                    return self._rebuild(collection, path, synced_ns)
                # The same bytes: remember the new stat and the later read time, which
                # ends the racy window once it is far enough from the mtime.
                state = replace(
                    state,
                    inode=st.st_ino,
                    size=st.st_size,
                    mtime_ns=st.st_mtime_ns,
                    synced_ns=synced_ns,
                )
                self._save_state(collection, state)
            action = "conflict" if state.conflict_line is not None else "fresh"
            return SyncResult(collection, action)
        return self._catch_up(collection, path, state, synced_ns)

    def _catch_up(self, collection: str, path: str, state: FileState, synced_ns: int) -> SyncResult:
        if state.conflict_line is not None:
            return self._rebuild(collection, path, synced_ns)
        winners: dict[str, Winner] = {}
        bad: list[BadLine] = []
        digest = _Digest(state)
        try:
            with open(path, "rb") as handle:
                if not _prefix_kept(handle.fileno(), state):
                    return self._rebuild(collection, path, synced_ns)
                handle.seek(state.offset)
                _consume(handle, digest, winners, bad)
                st = os.fstat(handle.fileno())
        except FileNotFoundError:
            return self._sync(collection, path, False)
        if any(item.reason == jsonl.MARKER for item in bad):
            return self._rebuild(collection, path, synced_ns)
        self._upsert(collection, list(_rows(winners)))
        self._save_state(collection, digest.state(st, synced_ns, state.bad_lines + len(bad)))
        _log_bad(path, bad)
        return SyncResult(collection, "caught-up", digest.lines - state.lines, tuple(bad))

    def _rebuild(self, collection: str, path: str, synced_ns: int) -> SyncResult:
        with gc_paused():
            return self._rebuild_unpaused(collection, path, synced_ns)

    def _rebuild_unpaused(self, collection: str, path: str, synced_ns: int) -> SyncResult:
        winners: dict[str, Winner] = {}
        bad: list[BadLine] = []
        digest = _Digest()
        try:
            with open(path, "rb") as handle:
                _consume(handle, digest, winners, bad)
                st = os.fstat(handle.fileno())
        except FileNotFoundError:
            self.drop(collection)
            return SyncResult(collection, "dropped")
        marker = next((item.line for item in bad if item.reason == jsonl.MARKER), None)
        if marker is not None:
            # Keep whatever the table held: the collection is unreadable until resolved,
            # and the old rows cost nothing.
            self._ensure_table(collection)
            self._save_state(collection, digest.state(st, synced_ns, 0, marker))
            return SyncResult(collection, "conflict")
        self.conn.execute(f"DROP TABLE IF EXISTS {_table(collection)}")
        self._ensure_table(collection, with_indexes=False)
        self._insert(_table(collection), _rows(winners))
        self._create_indexes(collection)
        self._save_state(collection, digest.state(st, synced_ns, len(bad)))
        _log_bad(path, bad)
        return SyncResult(collection, "rebuilt", digest.lines, tuple(bad))

    def record_append(
        self,
        collection: str,
        path: str,
        rows: list[Row],
        append: Callable[[Callable[[bytes, int], object]], tuple[int, int]],
    ) -> None:
        """Make an append of ours current (lock held): ``append(on_block)`` writes the
        rows' lines to the file, showing each block to ``on_block(data, newlines)``, and
        returns (offset where they start, bytes written). The rows are upserted and the
        file's state advanced past the new bytes.

        If the file did not hold exactly what the cache had read when the append began
        (someone changed it without the lock), the state is left alone and the next read
        catches up or rebuilds from the file.
        """
        state = self.file_state(collection)
        digest = _Digest(state or EMPTY_STATE)
        start, size = append(digest.feed)
        self._upsert(collection, rows)
        if state is None and start == 0:
            # The append created the file: start from the state of an empty file, so the
            # rows just written have a file behind them (deleting it empties the table).
            state = EMPTY_STATE
        if state is None or state.offset != start or state.conflict_line is not None:
            return
        st = _outside_racy_window(path, os.stat(path))
        if st.st_size != start + size:
            return
        # The file was written after the last read: only its new mtime matters.
        self._save_state(collection, digest.state(st, time.time_ns(), state.bad_lines))

    def _upsert(self, collection: str, rows: list[Row]) -> None:
        if not rows:
            return
        table = _table(collection)
        # ">=" because on equal versions the later line wins, and these lines come later.
        upsert = (
            " ON CONFLICT(id) DO UPDATE SET data = excluded.data,"
            " updated_at = excluded.updated_at, deleted = excluded.deleted"
            f" WHERE excluded.updated_at >= {table}.updated_at"
        )
        try:
            self._insert(table, rows, upsert)
        except sqlite3.OperationalError as exc:
            # The table is there but for the first write of a collection (or after a
            # checkout dropped it): creating it only then spares every write a CREATE
            # TABLE IF NOT EXISTS and a look at its indexes. The first statement failed
            # as it was prepared, before any row.
            if not _no_such_table(exc):
                raise
            self._ensure_table(collection)
            self._insert(table, rows, upsert)

    def _insert(self, table: str, rows: Iterable[Row], tail: str = "") -> None:
        """INSERT the rows into a collection's table, many rows per statement: binding
        one statement of 1,000 rows costs the sqlite3 module a fraction of what stepping
        and resetting one statement per row does (100,000 rows: 150 ms against 210)."""
        head = f"INSERT INTO {table} (id, data, updated_at, deleted) VALUES "
        values = chain.from_iterable(rows)
        while flat := list(islice(values, _ROWS_PER_INSERT * 4)):
            count = len(flat) // 4
            many = _MANY_ROWS if count == _ROWS_PER_INSERT else ",".join(["(?,?,?,?)"] * count)
            self.conn.execute(head + many + tail, flat)

    # --- pending (debounced) writes ------------------------------------------------------

    def record_pending(self, collection: str, rows: list[Row]) -> None:
        """A debounced write: the new versions, marked pending (reads lay them over the
        collection's table). Only the pending table is written: every b-tree a commit
        touches is a 16 KiB page in the WAL, and pages written are what a debounced write
        costs (this one page: 0.04 ms a write; with the table's row and id index: 0.08).
        """
        owner = os.getpid()
        # seq keeps the order of the writes, which the export and the reads follow.
        seq = time.time_ns()
        self.conn.executemany(
            "INSERT OR REPLACE INTO pending"
            " (collection, id, data, updated_at, deleted, owner, seq) VALUES (?,?,?,?,?,?,?)",
            [
                (collection, rid, data, version, deleted, owner, seq + n)
                for n, (rid, data, version, deleted) in enumerate(rows)
            ],
        )

    def has_pending(self, collection: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM pending WHERE collection = ? LIMIT 1", (collection,)
        ).fetchone()
        return row is not None

    def pending_counts(self, *, orphans_only: bool = False) -> dict[str, int]:
        """Pending writes per collection; with orphans_only, those whose writer is gone."""
        owners = self._orphan_clause() if orphans_only else ""
        return dict(
            self.conn.execute(
                f"SELECT collection, COUNT(*) FROM pending WHERE 1{owners} GROUP BY 1 ORDER BY 1"
            )
        )

    def _orphan_clause(self) -> str:
        """SQL keeping pending rows whose writer process is no longer running.

        The cache is local to this machine, so a pid says whether its writer lives; a live
        one exports its own writes when its debounce runs out.
        """
        gone = [0]
        for (pid,) in self.conn.execute("SELECT DISTINCT owner FROM pending WHERE owner != 0"):
            if not _alive(pid):
                gone.append(pid)
        return f" AND owner IN ({', '.join(str(pid) for pid in gone)})"

    def take_pending(self, collection: str, *, orphans_only: bool = False) -> list[Row]:
        """Remove the collection's pending rows; return those still to be appended.

        A pending write superseded meanwhile (a newer version came from a pull, a merge or
        another writer) is dropped: the newer updated_at wins. So is one whose very version
        the file holds already (an export cut short after its append): appending it again
        would only repeat the line. The caller holds the lock and has synced the file.
        """
        table = _table(collection)
        owners = self._orphan_clause() if orphans_only else ""
        self._ensure_table(collection)
        # In the order of the writes (seq); unordered, they were exported in id order,
        # and a rebuild then listed the records in another order than the cache had.
        rows = self.conn.execute(
            f"SELECT p.id, p.data, p.updated_at, p.deleted FROM pending p"
            f" LEFT JOIN {table} t ON t.id = p.id WHERE p.collection = ?"
            f"{owners.replace('owner', 'p.owner')} AND (t.id IS NULL"
            f" OR p.updated_at > t.updated_at OR (p.updated_at = t.updated_at"
            f" AND p.data IS NOT t.data)) ORDER BY p.seq",
            (collection,),
        ).fetchall()
        self.conn.execute(f"DELETE FROM pending WHERE collection = ?{owners}", (collection,))
        return [(rid, data, version, bool(deleted)) for rid, data, version, deleted in rows]

    def drop(self, collection: str) -> None:
        with self.transaction():
            self.conn.execute(f"DROP TABLE IF EXISTS {_table(collection)}")
            # Pending writes stay: they are not derived from the file (a checkout of a
            # branch without it must not lose them), and reads still see them.
            self.conn.execute("DELETE FROM files WHERE collection = ?", (collection,))

    # --- tables and indexes -------------------------------------------------------------

    def ensure_table(self, collection: str) -> None:
        """Create the collection's table (and declared indexes) if it is not there."""
        self._ensure_table(collection)

    def _ensure_table(self, collection: str, *, with_indexes: bool = True) -> None:
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_table(collection)} ("
            " id TEXT PRIMARY KEY, data TEXT NOT NULL,"
            " updated_at INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)"
        )
        if with_indexes:
            self._create_indexes(collection)

    def _create_indexes(self, collection: str) -> None:
        for (field,) in self.conn.execute(
            "SELECT field FROM indexes WHERE collection = ?", (collection,)
        ).fetchall():
            self._create_index(collection, field)

    def _create_index(self, collection: str, field: str) -> None:
        # Partial on live rows: every query says "deleted = 0", so the planner may use it.
        self.conn.execute(
            f"CREATE INDEX IF NOT EXISTS {_index_name(collection, field)}"
            f" ON {_table(collection)} ({_expr(field)}) WHERE deleted = 0"
        )

    def indexed_fields(self, collection: str) -> set[str]:
        return {
            r[0]
            for r in self.conn.execute(
                "SELECT field FROM indexes WHERE collection = ?", (collection,)
            )
        }

    def ensure_indexes(
        self, collection: str, fields: Sequence[str], *, rebuild: bool = False
    ) -> int:
        """Declare indexes on fields of a collection; return how many were (re)built."""
        fields = [f for f in fields if f != "id"]  # the primary key is indexed already
        if not rebuild and set(fields) <= self.indexed_fields(collection):
            return 0
        with self.transaction():
            self._ensure_table(collection, with_indexes=False)
            for field in fields:
                self.conn.execute(
                    "INSERT OR IGNORE INTO indexes (collection, field) VALUES (?, ?)",
                    (collection, field),
                )
                if rebuild:
                    self.conn.execute(f"DROP INDEX IF EXISTS {_index_name(collection, field)}")
                self._create_index(collection, field)
        return len(fields)

    # --- reads: the tables, with pending writes laid over them ----------------------------

    def current(self, collection: str, record_id: str) -> Current | None:
        """(data, version, deleted) of an id, tombstones and pending writes included."""
        return self.currents(collection, (record_id,)).get(record_id)

    def currents(self, collection: str, ids: Sequence[str]) -> dict[str, Current]:
        """(data, version, deleted) of each id that has one, tombstones and pending writes
        included: the table and the pending rows in one statement per _CHUNK ids."""
        table = _table(collection)
        return self._with_or_without_table(
            lambda with_table: self._currents(collection, ids, table if with_table else None)
        )

    def _with_or_without_table(self, read: Callable[[bool], T]) -> T:
        """``read(with_table=True)``; if the collection has no table, ``read`` again in one
        snapshot: with the table if it appeared meanwhile, else without it (pending writes
        only). An export committing between "no such table" and a look at the pending rows
        creates the table and empties them: two separate looks would find neither."""
        try:
            return read(True)
        except sqlite3.OperationalError as exc:
            if not _no_such_table(exc):
                raise
        with self._snapshot():
            try:
                return read(True)
            except sqlite3.OperationalError as exc:
                if not _no_such_table(exc):
                    raise
            return read(False)

    def _currents(
        self, collection: str, ids: Sequence[str], table: str | None
    ) -> dict[str, Current]:
        # A first import into an empty table would look 100,000 ids up for nothing.
        big = len(ids) > _CHUNK
        if table is not None and big and not self._any_row(table):
            table = None
        pending = not big or self.has_pending(collection)
        if table is None and not pending:
            return {}
        unique = list(dict.fromkeys(ids))
        return _newest(
            chain.from_iterable(
                self._lookup(table, collection, pending, unique[start : start + _CHUNK])
                for start in range(0, len(unique), _CHUNK)
            )
        )

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads that see one state of the database (outside a transaction, each
        statement sees its own)."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            # The snapshot begins with the first read, the schema included.
            self.conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchone()
            yield
        finally:
            self.conn.execute("COMMIT")

    def currents_if_fresh(
        self, collection: str, path: str, ids: Sequence[str]
    ) -> dict[str, Current] | None:
        """currents() of a few ids, if the cache reflects the file as it is now; None if
        it may not (the caller syncs, and asks currents()). The file's state comes in the
        same statement as the ids: a debounced write makes one statement fewer (each is
        ~7 us here, a tenth of the write)."""
        if len(ids) > _CHUNK:
            return None
        unique = list(dict.fromkeys(ids))
        marks = ", ".join("?" * len(unique))
        try:
            rows = self.conn.execute(
                f"SELECT id, data, updated_at, deleted, 0, NULL, NULL FROM {_table(collection)}"
                f" WHERE id IN ({marks}) UNION ALL SELECT id, data, updated_at, deleted, 1,"
                f" NULL, NULL FROM pending WHERE collection = ? AND id IN ({marks})"
                " UNION ALL SELECT inode, size, mtime_ns, offset, 2, synced_ns, conflict_line"
                " FROM files WHERE collection = ?",
                (*unique, collection, *unique, collection),
            ).fetchall()
        except sqlite3.OperationalError as exc:
            if not _no_such_table(exc):
                raise
            return None  # no table yet: the long way
        states = [row for row in rows if row[4] == 2]
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if not states and st is None:
            # No file and nothing read of one: a collection so far only written debounced.
            return _newest(rows)
        if not states or st is None:
            return None
        inode, size, mtime_ns, offset, _, synced_ns, conflict_line = states[0]
        if (
            conflict_line is not None
            or not _stat_matches(st, inode, size, mtime_ns, offset)
            or _racy(synced_ns, mtime_ns)
        ):
            return None
        return _newest(row for row in rows if row[4] != 2)

    def _any_row(self, table: str) -> bool:
        return self.conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None

    def _lookup(
        self, table: str | None, collection: str, pending: bool, ids: list[str]
    ) -> Iterable[tuple[str, str, int, int, int]]:
        """The rows of ``ids`` in ``table`` and (if ``pending``) among the pending writes,
        each with a last column saying which (1: pending)."""
        marks = ", ".join("?" * len(ids))
        arms: list[str] = []
        params: list[str] = []
        if table is not None:
            arms.append(
                f"SELECT id, data, updated_at, deleted, 0 FROM {table} WHERE id IN ({marks})"
            )
            params += ids
        if pending:
            arms.append(
                "SELECT id, data, updated_at, deleted, 1 FROM pending"
                f" WHERE collection = ? AND id IN ({marks})"
            )
            params += [collection, *ids]
        return self.conn.execute(" UNION ALL ".join(arms), params) if arms else ()

    def _live(
        self, collection: str, build: Callable[[str, str], str], params: Sequence[Any] = ()
    ) -> list[Any] | None:
        """The rows of ``build(source, order)`` run with ``params``: a SELECT from
        ``source``, the collection's current versions (columns id, data, updated_at,
        deleted), where ``order`` sorts them in the store's order (first appearance,
        pending writes of new ids last, in the order they were made). None if the
        collection has neither a table nor pending writes.

        With nothing pending (always, outside debounced mode) the source is the table
        itself, and its indexes serve the query as they are.
        """
        return self._with_or_without_table(
            lambda with_table: self._live_rows(collection, build, params, with_table=with_table)
        )

    def _live_rows(
        self,
        collection: str,
        build: Callable[[str, str], str],
        params: Sequence[Any],
        *,
        with_table: bool,
    ) -> list[Any] | None:
        table = _table(collection)
        pending = self.has_pending(collection)
        first: tuple[str, ...] = ()
        if not with_table:
            # Pending writes of a collection whose table is not there (its file is new,
            # or a checkout removed it).
            if not pending:
                return None
            source, order, first = (
                "(SELECT NULL AS pos, seq, id, data, updated_at, deleted FROM pending"
                " WHERE collection = ?)",
                "seq",
                (collection,),
            )
        elif not pending:
            source, order = table, "rowid"
        else:
            # The table's rows that no pending write supersedes, then the pending writes
            # that no row of the table supersedes, each at the place its id holds in the
            # table (or after all of them, in the order of the writes).
            source = (
                "(SELECT t.rowid AS pos, 0 AS seq, t.id AS id, t.data AS data,"
                " t.updated_at AS updated_at, t.deleted AS deleted"
                f" FROM {table} t WHERE NOT EXISTS (SELECT 1 FROM pending p"
                " WHERE p.collection = ? AND p.id = t.id AND p.updated_at >= t.updated_at)"
                f" UNION ALL SELECT (SELECT t.rowid FROM {table} t WHERE t.id = p.id),"
                " p.seq, p.id, p.data, p.updated_at, p.deleted FROM pending p"
                f" WHERE p.collection = ? AND NOT EXISTS (SELECT 1 FROM {table} t"
                " WHERE t.id = p.id AND t.updated_at > p.updated_at))"
            )
            order, first = "pos IS NULL, pos, seq", (collection, collection)
        return self.conn.execute(build(source, order), (*first, *params)).fetchall()

    def query(
        self,
        collection: str,
        filters: Sequence[Filter] = (),
        *,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        count_only: bool = False,
    ) -> list[str] | int:
        where, params = _where(filters)
        select = "COUNT(*)" if count_only else "data"
        tail = ""
        if not count_only:
            if sort:
                descending = sort.startswith("-")
                field = jsonl.validate_field(sort.lstrip("-"))
                tail = f" ORDER BY {_expr(field)} {'DESC' if descending else 'ASC'}, {{order}}"
            else:
                tail = " ORDER BY {order}"
            if limit is not None or offset:
                tail += " LIMIT ? OFFSET ?"
                params.extend([-1 if limit is None else limit, offset])
        rows = self._live(
            collection,
            lambda source, order: (
                f"SELECT {select} FROM {source} WHERE deleted = 0{where}" + tail.format(order=order)
            ),
            params,
        )
        if rows is None:
            return 0 if count_only else []
        if count_only:
            return int(rows[0][0])
        return [row[0] for row in rows]

    def count_by(self, collection: str, field: str) -> dict[Any, int]:
        """Live records per value of a field (None: null or missing)."""
        rows = self._live(
            collection,
            lambda source, order: (
                f"SELECT {_expr(field)}, json_type(data, '$.{field}'),"
                f" COUNT(*) FROM {source} WHERE deleted = 0 GROUP BY 1, 2 ORDER BY 3 DESC"
            ),
        )
        out: dict[Any, int] = {}
        for value, kind, n in rows or ():
            key = {"true": True, "false": False}.get(kind, value)
            out[key] = out.get(key, 0) + n
        return out

    def counts(self, collection: str) -> tuple[int, int]:
        """(live, deleted) records, pending writes included."""
        rows = self._live(
            collection,
            lambda source, order: (
                f"SELECT COALESCE(SUM(deleted = 0), 0), COALESCE(SUM(deleted), 0) FROM {source}"
            ),
        )
        if rows is None:
            return 0, 0
        live, deleted = rows[0]
        return int(live), int(deleted)

    def integrity_problems(self) -> list[str]:
        rows = self.conn.execute("PRAGMA quick_check").fetchall()
        return [r[0] for r in rows if r[0] != "ok"]


def _create_schema(conn: sqlite3.Connection) -> None:
    """Drop whatever an older cache schema had and create this one (the cache is derived)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        # Pending writes are not derived from the files: carry them over (with no owner
        # process, so the next open exports them).
        carried = (
            conn.execute("SELECT collection, id, data, updated_at, deleted FROM pending").fetchall()
            if "pending" in tables
            else []
        )
        for name in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
        conn.execute(
            "CREATE TABLE files (collection TEXT PRIMARY KEY, inode INTEGER, size INTEGER,"
            " mtime_ns INTEGER, offset INTEGER, lines INTEGER, crc INTEGER, adler INTEGER,"
            " head BLOB, tail BLOB, synced_ns INTEGER, bad_lines INTEGER, conflict_line INTEGER)"
        )
        conn.execute(
            "CREATE TABLE indexes (collection TEXT, field TEXT, PRIMARY KEY (collection, field))"
        )
        # Debounced writes not yet in the JSONL: the one part of the cache that is not
        # derived from the files (a schema change must carry these rows over).
        conn.execute(
            "CREATE TABLE pending (collection TEXT, id TEXT, data TEXT NOT NULL,"
            " updated_at INTEGER NOT NULL, deleted INTEGER NOT NULL,"
            " owner INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0,"
            " PRIMARY KEY (collection, id)) WITHOUT ROWID"
        )
        conn.executemany(
            "INSERT INTO pending (collection, id, data, updated_at, deleted) VALUES (?,?,?,?,?)",
            carried,
        )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _where(filters: Sequence[Filter]) -> tuple[str, list[Any]]:
    """SQL for ANDed filters. Values only match values of the same JSON type: true is not 1,
    and 0 is not less than "open" (SQLite alone would say both)."""
    clauses: list[str] = []
    params: list[Any] = []
    for f in filters:
        expr = _expr(f.field)
        value = f.value
        if f.op is Op.EQ:
            clauses.append(_equals(f.field, value, params))
        elif f.op is Op.NE:
            clauses.append(
                f"{expr} IS NOT NULL"
                if value is None
                else f"NOT COALESCE({_equals(f.field, value, params)}, 0)"
            )
        elif f.op is Op.CONTAINS:
            if f.field == "id":
                clauses.append("id LIKE ? ESCAPE '\\'")
                params.append(_like(value))
            else:
                path = f"'$.{f.field}'"
                clauses.append(
                    f"(CASE json_type(data, {path}) WHEN 'array' THEN EXISTS"
                    f" (SELECT 1 FROM json_each(data, {path}) WHERE value = ?)"
                    f" ELSE {expr} LIKE ? ESCAPE '\\' END)"
                )
                params.extend([value, _like(value)])
        elif f.op is Op.IN:
            assert isinstance(value, list | tuple)
            clauses.append(_one_of(f.field, value, params))
        else:
            sql_op = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}[f.op]
            clauses.append(f"({expr} {sql_op} ?{_same_type(f.field, value)})")
            params.append(value)
    where = "".join(f" AND {c}" for c in clauses)
    return where, params


def _equals(field: str, value: Any, params: list[Any]) -> str:
    """``field = value``, index-friendly: the indexed expression compared with ``?``."""
    expr = _expr(field)
    if value is None:
        return f"{expr} IS NULL"
    if isinstance(value, bool) and field != "id":
        return f"json_type(data, '$.{field}') = '{'true' if value else 'false'}'"
    params.append(value)
    # json_extract returns text for strings and for arrays/objects (their JSON), and
    # integers for numbers and for true/false: only those look-alikes need the type check,
    # and leaving it off elsewhere keeps a count of a common value inside the index.
    ambiguous = (isinstance(value, str) and value[:1] in ("[", "{")) or (
        not isinstance(value, str) and value in (0, 1)
    )
    return f"({expr} = ?{_same_type(field, value) if ambiguous else ''})"


def _one_of(field: str, values: Sequence[Any], params: list[Any]) -> str:
    """``field IN values``: one ``IN (...)`` per JSON type, so the usual single-type list
    stays one index-friendly clause. Each part appends its parameters as it is built."""
    expr = _expr(field)
    groups: dict[str, list[Any]] = {}
    singles: list[Any] = []  # null and booleans: matched by type alone
    for value in values:
        if value is None or isinstance(value, bool):
            singles.append(value)
        else:
            groups.setdefault(json_types(value), []).append(value)
    parts: list[str] = []
    for members in groups.values():
        marks = ", ".join("?" * len(members))
        parts.append(f"({expr} IN ({marks}){_same_type(field, members[0])})")
        params.extend(members)
    parts.extend(_equals(field, value, params) for value in singles)
    return f"({' OR '.join(parts)})" if parts else "0"


def _same_type(field: str, value: Any) -> str:
    """An AND clause that keeps only stored values of the same JSON type as ``value``."""
    if field == "id":
        return "" if isinstance(value, str) else " AND 0"
    kind = json_types(value)
    return f" AND json_type(data, '$.{field}') IN ({kind})"


def json_types(value: Any) -> str:
    if isinstance(value, bool):
        return "'true', 'false'"
    if isinstance(value, int | float):
        return "'integer', 'real'"
    return "'text'"


def _like(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _prefix_kept(fd: int, state: FileState) -> bool:
    """Whether a grown file still starts and ends (up to the old size) as it was read.

    Head and tail are what an append cannot change and a rewrite almost always does;
    checking them costs two small reads instead of the whole prefix.
    """
    if os.pread(fd, len(state.head), 0) != state.head:
        return False
    if os.pread(fd, len(state.tail), state.offset - len(state.tail)) != state.tail:
        return False
    if state.offset and not state.tail.endswith(b"\n"):
        # The last line read had no newline: only a newline may follow it, else bytes
        # were glued onto a line already read as complete.
        return os.pread(fd, 1, state.offset) == b"\n"
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _outside_racy_window(path: str, st: os.stat_result) -> os.stat_result:
    """Set the mtime of a file we have just appended to (lock held) back past the racy
    window, and return its stat.

    Read within the window of its mtime, a file must be compared by content: a rewrite
    in the same mtime tick would keep its stat. After each of our own appends that was
    the whole file, hashed again by the next read or write: 30 ms a write on a 30 MB
    store. With its mtime in the past, any later write by anyone stamps a new mtime,
    which the stat comparison sees. A file we may not set times on (another owner's)
    keeps its mtime, and the next access compares its content as before.
    """
    back = st.st_mtime_ns - 2 * racy_window_ns(st.st_mtime_ns)
    try:
        os.utime(path, ns=(st.st_atime_ns, back))
        return os.stat(path)
    except OSError:
        return st


def _same_content(state: FileState, path: str) -> bool:
    """Whether the file holds exactly the bytes the cache read (hashed block by block)."""
    crc, adler, size = zlib.crc32(b""), zlib.adler32(b""), 0
    try:
        with open(path, "rb") as handle:
            while block := handle.read(READ_BLOCK):
                crc = zlib.crc32(block, crc)
                adler = zlib.adler32(block, adler)
                size += len(block)
    except FileNotFoundError:
        return False
    return (size, crc, adler) == (state.offset, state.crc, state.adler)


def _newest(rows: Iterable[tuple[Any, ...]]) -> dict[str, Current]:
    """Each id's newest version among (id, data, version, deleted, pending, ...) rows of
    the table and the pending writes."""
    out: dict[str, Current] = {}
    for rid, data, version, deleted, pending, *_ in rows:
        have = out.get(rid)
        # A pending write ties with a version of the file as the later line: it wins.
        if have is None or version > have[1] or (pending and version == have[1]):
            out[rid] = (data, version, bool(deleted))
    return out


def _no_such_table(exc: sqlite3.OperationalError) -> bool:
    return "no such table" in str(exc)


def _rows(winners: dict[str, Winner]) -> Iterator[Row]:
    # A generator: a rebuild inserts each decoded line and lets it go.
    return ((rid, w.raw.decode(), w.version, w.deleted) for rid, w in winners.items())


def _log_bad(path: str, bad: Sequence[BadLine]) -> None:
    path = display_path(path)
    for item in bad[:MAX_LOGGED_BAD_LINES]:
        log.warning(
            "%s:%d: %s; line skipped (`git taskstore check` lists every problem)",
            path,
            item.line,
            item.reason,
        )
    if len(bad) > MAX_LOGGED_BAD_LINES:
        log.warning("%s: %d more bad lines skipped", path, len(bad) - MAX_LOGGED_BAD_LINES)
