"""The SQLite query cache: derived from the JSONL files, disposable, rebuilt at will.

This module owns the schema. One table per collection holds the current version of each
id (tombstones included, so an older line can never resurrect a deleted record); the
``files`` table remembers how far each JSONL file has been read, so a file that only grew
is caught up by reading just its new bytes.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from . import jsonl
from .jsonl import BadLine, Winner
from .records import Filter, Op

log = logging.getLogger("git_taskstore")

SCHEMA_VERSION = 1
# How much of the already-read file is compared to make sure a grown file kept its prefix.
TAIL_BYTES = 256
# At most this many bad lines are named one by one in the log per sync.
MAX_LOGGED_BAD_LINES = 5


def racy_window_ns(mtime_ns: int) -> int:
    """How long after a file's mtime another write could leave the same mtime.

    Linux filesystems stamp files from a coarse clock (a few ms); FAT, HFS+ and some
    network filesystems keep whole seconds, seen as an mtime with no sub-second part.
    """
    return 2_000_000_000 if mtime_ns % 1_000_000_000 == 0 else 100_000_000


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
    tail: bytes  # data[offset - TAIL_BYTES:offset]
    synced_ns: int  # wall clock just before the file was last read
    bad_lines: int
    conflict_line: int | None

    def matches(self, st: os.stat_result) -> bool:
        return (
            st.st_ino == self.inode
            and st.st_size == self.size == self.offset
            and st.st_mtime_ns == self.mtime_ns
        )

    def is_racy(self) -> bool:
        return self.synced_ns - self.mtime_ns < racy_window_ns(self.mtime_ns)


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
            conn.execute("PRAGMA journal_mode = WAL")
            # The cache is derived from fsynced JSONL: losing its last transaction to a
            # power cut costs a catch-up, never data.
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
            "SELECT inode, size, mtime_ns, offset, lines, crc, adler, tail, synced_ns,"
            " bad_lines, conflict_line FROM files WHERE collection = ?",
            (collection,),
        ).fetchone()
        return FileState(*row) if row else None

    def cached_collections(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT collection FROM files ORDER BY 1")]

    def _save_state(self, collection: str, state: FileState) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO files (collection, inode, size, mtime_ns, offset, lines,"
            " crc, adler, tail, synced_ns, bad_lines, conflict_line)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                collection,
                state.inode,
                state.size,
                state.mtime_ns,
                state.offset,
                state.lines,
                state.crc,
                state.adler,
                state.tail,
                state.synced_ns,
                state.bad_lines,
                state.conflict_line,
            ),
        )

    def freshness(self, collection: str, path: str) -> str:
        """'fresh', 'stale', 'new', 'deleted', 'absent' or 'conflict' without reading data.

        'fresh' needs an exact stat match outside the racy window; a racy file compares
        its content hash.
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
        if state.is_racy():
            data = _read(path, 0)
            if data is None or not _same_hash(state, data):
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
            if state.matches(st) and not state.is_racy():
                # FIX (tests/test_store.py::test_writes_to_a_conflicted_collection_are_
                # refused_without_writing[a-minute-old-after-a-read]): an unchanged file
                # whose conflict markers were already recorded was reported "fresh", so
                # _fresh_locked let put/delete append to a file with conflict markers.
                if state.conflict_line is not None:
                    return SyncResult(collection, "conflict")
                return SyncResult(collection, "fresh")
            data = _read(path, 0)
            if data is None:
                return self._sync(collection, path, full)
            if len(data) == state.offset and _same_hash(state, data):
                # Touched, or inside the racy window, but the same bytes: remember the new
                # stat (and the later read time, which ends the racy window).
                st = os.stat(path)
                self._save_state(collection, _replace_stat(state, st, synced_ns))
                if state.conflict_line is not None:
                    return SyncResult(collection, "conflict")
                return SyncResult(collection, "fresh")
            return self._rebuild(collection, path, synced_ns, data)
        return self._catch_up(collection, path, state, synced_ns)

    def _catch_up(self, collection: str, path: str, state: FileState, synced_ns: int) -> SyncResult:
        start = max(0, state.offset - len(state.tail))
        chunk = _read(path, start)
        if chunk is None:
            return self._rebuild(collection, path, synced_ns)
        prefix_len = state.offset - start
        if chunk[:prefix_len] != state.tail or len(chunk) < prefix_len:
            return self._rebuild(collection, path, synced_ns)
        new = chunk[prefix_len:]
        partial = state.offset > 0 and not state.tail.endswith(b"\n")
        if partial and not new.startswith(b"\n"):
            # Bytes glued onto a line we already read as complete: read the file anew.
            return self._rebuild(collection, path, synced_ns)
        marker = jsonl.conflict_marker_line(new)
        if marker is not None or state.conflict_line is not None:
            return self._rebuild(collection, path, synced_ns)
        # The store lock is held, so a last line without a newline is final (a torn write
        # or a hand-edited file), not a writer half-way through.
        first_line = state.lines + 1
        winners, bad = jsonl.reduce_lines(new, first_line)
        self._upsert(collection, winners)
        st = os.stat(path)
        self._save_state(
            collection,
            FileState(
                inode=st.st_ino,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                offset=state.offset + len(new),
                lines=state.lines + new.count(b"\n"),
                crc=zlib.crc32(new, state.crc),
                adler=zlib.adler32(new, state.adler),
                tail=(state.tail + new)[-TAIL_BYTES:],
                synced_ns=synced_ns,
                bad_lines=state.bad_lines + len(bad),
                conflict_line=None,
            ),
        )
        _log_bad(path, bad)
        return SyncResult(collection, "caught-up", new.count(b"\n"), tuple(bad))

    def _rebuild(
        self, collection: str, path: str, synced_ns: int, data: bytes | None = None
    ) -> SyncResult:
        if data is None:
            data = _read(path, 0)
            if data is None:
                self.drop(collection)
                return SyncResult(collection, "dropped")
        st = os.stat(path)
        base_state = FileState(
            inode=st.st_ino,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            offset=len(data),
            lines=data.count(b"\n"),
            crc=zlib.crc32(data),
            adler=zlib.adler32(data),
            tail=data[-TAIL_BYTES:],
            synced_ns=synced_ns,
            bad_lines=0,
            conflict_line=None,
        )
        marker = jsonl.conflict_marker_line(data)
        if marker is not None:
            # Keep whatever the table held: the collection is unreadable until resolved,
            # and the old rows cost nothing.
            self._ensure_table(collection)
            self._save_state(collection, _with(base_state, conflict_line=marker))
            return SyncResult(collection, "conflict")
        winners, bad = jsonl.reduce_lines(data)
        conn = self.conn
        conn.execute(f"DROP TABLE IF EXISTS {_table(collection)}")
        self._ensure_table(collection, with_indexes=False)
        conn.executemany(
            f"INSERT INTO {_table(collection)} (id, data, updated_at, deleted) VALUES (?,?,?,?)",
            [(rid, w.raw.decode(), w.version, w.deleted) for rid, w in winners.items()],
        )
        self._create_indexes(collection)
        self._save_state(collection, _with(base_state, bad_lines=len(bad)))
        _log_bad(path, bad)
        return SyncResult(collection, "rebuilt", base_state.lines, tuple(bad))

    def record_append(
        self, collection: str, path: str, start: int, payload: bytes, winners: dict[str, Winner]
    ) -> None:
        """After our own append (lock held): upsert the new versions and advance the state.

        If the file did not hold exactly what the cache had read when the append began
        (someone changed it without the lock), the state is left alone and the next read
        catches up or rebuilds from the file.
        """
        self._upsert(collection, winners)
        state = self.file_state(collection)
        if state is None and start == 0:
            # FIX (tests/test_store.py::test_a_deleted_file_empties_its_collection): the
            # append created the file (it did not exist when the writer synced under this
            # lock). Without a state row the rows just upserted had no file behind them:
            # deleting the file before the next read left them visible ("absent", not
            # "deleted"). Start from the state of an empty file and advance it as usual.
            state = FileState(0, 0, 0, 0, 0, zlib.crc32(b""), zlib.adler32(b""), b"", 0, 0, None)
        if state is None or state.offset != start or state.conflict_line is not None:
            return
        st = os.stat(path)
        if st.st_size != start + len(payload):
            return
        self._save_state(
            collection,
            FileState(
                inode=st.st_ino,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                offset=st.st_size,
                lines=state.lines + payload.count(b"\n"),
                crc=zlib.crc32(payload, state.crc),
                adler=zlib.adler32(payload, state.adler),
                tail=(state.tail + payload)[-TAIL_BYTES:],
                # The file was written after the last read: only its new mtime matters.
                synced_ns=time.time_ns(),
                bad_lines=state.bad_lines,
                conflict_line=None,
            ),
        )

    def _upsert(self, collection: str, winners: dict[str, Winner]) -> None:
        if not winners:
            return
        self._ensure_table(collection)
        table = _table(collection)
        # ">=" because on equal versions the later line wins, and these lines come later.
        self.conn.executemany(
            f"INSERT INTO {table} (id, data, updated_at, deleted) VALUES (?,?,?,?)"
            " ON CONFLICT(id) DO UPDATE SET data = excluded.data,"
            " updated_at = excluded.updated_at, deleted = excluded.deleted"
            f" WHERE excluded.updated_at >= {table}.updated_at",
            [(rid, w.raw.decode(), w.version, w.deleted) for rid, w in winners.items()],
        )

    def drop(self, collection: str) -> None:
        with self.transaction():
            self.conn.execute(f"DROP TABLE IF EXISTS {_table(collection)}")
            self.conn.execute("DELETE FROM files WHERE collection = ?", (collection,))

    # --- tables and indexes -------------------------------------------------------------

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

    # --- reads --------------------------------------------------------------------------

    def current(self, collection: str, record_id: str) -> tuple[str, int, bool] | None:
        """(data, version, deleted) of an id, tombstones included."""
        try:
            row = self.conn.execute(
                f"SELECT data, updated_at, deleted FROM {_table(collection)} WHERE id = ?",
                (record_id,),
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return None
            raise
        return (row[0], row[1], bool(row[2])) if row else None

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
        sql = f"SELECT {select} FROM {_table(collection)} WHERE deleted = 0{where}"
        if not count_only:
            if sort:
                descending = sort.startswith("-")
                field = jsonl.validate_field(sort.lstrip("-"))
                sql += f" ORDER BY {_expr(field)} {'DESC' if descending else 'ASC'}, rowid"
            else:
                sql += " ORDER BY rowid"
            if limit is not None or offset:
                sql += " LIMIT ? OFFSET ?"
                params.extend([-1 if limit is None else limit, offset])
        try:
            cursor = self.conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0 if count_only else []
            raise
        if count_only:
            return int(cursor.fetchone()[0])
        return [row[0] for row in cursor]

    def counts(self, collection: str) -> tuple[int, int]:
        """(live, deleted) records."""
        try:
            row = self.conn.execute(
                f"SELECT COALESCE(SUM(deleted = 0), 0), COALESCE(SUM(deleted), 0)"
                f" FROM {_table(collection)}"
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0, 0
            raise
        return int(row[0]), int(row[1])

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
        for name in tables:
            conn.execute(f'DROP TABLE IF EXISTS "{name}"')
        conn.execute(
            "CREATE TABLE files (collection TEXT PRIMARY KEY, inode INTEGER, size INTEGER,"
            " mtime_ns INTEGER, offset INTEGER, lines INTEGER, crc INTEGER, adler INTEGER,"
            " tail BLOB, synced_ns INTEGER, bad_lines INTEGER, conflict_line INTEGER)"
        )
        conn.execute(
            "CREATE TABLE indexes (collection TEXT, field TEXT, PRIMARY KEY (collection, field))"
        )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _where(filters: Sequence[Filter]) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for f in filters:
        expr = _expr(f.field)
        value = f.value
        if f.op is Op.EQ:
            if value is None:
                clauses.append(f"{expr} IS NULL")
            else:
                clauses.append(f"{expr} = ?")
                params.append(value)
        elif f.op is Op.NE:
            clauses.append(f"{expr} IS NOT ?")
            params.append(value)
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
            present = [v for v in value if v is not None]
            parts = []
            if present:
                parts.append(f"{expr} IN ({', '.join('?' * len(present))})")
                params.extend(present)
            if len(present) != len(value):
                parts.append(f"{expr} IS NULL")
            clauses.append(f"({' OR '.join(parts)})" if parts else "0")
        else:
            sql_op = {Op.GT: ">", Op.GTE: ">=", Op.LT: "<", Op.LTE: "<="}[f.op]
            clauses.append(f"{expr} {sql_op} ?")
            params.append(value)
    where = "".join(f" AND {c}" for c in clauses)
    return where, params


def _like(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _read(path: str, start: int) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            if start:
                handle.seek(start)
            return handle.read()
    except FileNotFoundError:
        return None


def _same_hash(state: FileState, data: bytes) -> bool:
    return zlib.crc32(data) == state.crc and zlib.adler32(data) == state.adler


def _with(state: FileState, **changes: Any) -> FileState:
    from dataclasses import replace

    return replace(state, **changes)


def _replace_stat(state: FileState, st: os.stat_result, synced_ns: int) -> FileState:
    return _with(
        state, inode=st.st_ino, size=st.st_size, mtime_ns=st.st_mtime_ns, synced_ns=synced_ns
    )


def _log_bad(path: str, bad: Sequence[BadLine]) -> None:
    for item in bad[:MAX_LOGGED_BAD_LINES]:
        log.warning(
            "%s:%d: %s; line skipped (`git taskstore check` lists every problem)",
            path,
            item.line,
            item.reason,
        )
    if len(bad) > MAX_LOGGED_BAD_LINES:
        log.warning("%s: %d more bad lines skipped", path, len(bad) - MAX_LOGGED_BAD_LINES)
