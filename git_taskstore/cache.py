"""The SQLite cache's schema and statements: one place that knows its tables.

- one table per collection (``r_<collection>``) holds the current version of each id,
  tombstones included, so an older line can never resurrect a deleted record; its rowid
  order is the store's order (the order ids first appeared in the file);
- ``files`` remembers how far each JSONL file has been read (a :class:`FileState`);
- ``indexes`` names the fields a collection has an index on;
- ``computed`` holds a collection's computed values (name, rule and fields, see
  :mod:`git_taskstore.computed`), each with an expression index: the dict-level API and
  the CLI query them by name, as the typed API that declared them does;
- ``pending`` holds debounced writes not yet in the files. Reads lay them over the
  collection's table, the newer version winning, so they are current at once while a
  debounced write touches a single b-tree.

Everything but ``pending`` is derived from the JSONL files. A collection's table is never
dropped where another process could see it missing (a rebuild replaces it inside one
transaction; a deleted file empties it), and a collection with pending rows always has
one: a read never has to guess whether a missing table hides pending writes.

Callers hold the store's file lock around anything that changes the cache, inside
:meth:`Cache.transaction` (``BEGIN IMMEDIATE``). WAL mode lets readers in other processes
see the previous state until the commit: never an empty table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain, islice
from typing import Any

from . import query
from .computed import Computed
from .freshness import FileState
from .records import Filter

SCHEMA_VERSION = 8

# (data of the current version, its version, deleted), as a table or pending row holds it.
Current = tuple[str, int, bool]
# (id, line, version, deleted): a row of a collection's table.
Row = tuple[str, str, int, bool]

# Rows per INSERT statement: 4 parameters each, well under the 32,766 SQLite allows.
# Binding one statement of 1,000 rows costs the sqlite3 module a fraction of stepping one
# statement per row (100,000 rows: 150 ms against 210).
_ROWS_PER_INSERT = 1000
_MANY_ROWS = ",".join(["(?,?,?,?)"] * _ROWS_PER_INSERT)
# Ids looked up per statement: well under the parameters SQLite allows.
_IDS_PER_LOOKUP = 500
_FILE_COLUMNS = ", ".join(FileState._fields)
_FILE_VALUES = "(" + ",".join("?" * (len(FileState._fields) + 1)) + ")"


class CacheCorrupt(Exception):
    """The database file is not usable; the store deletes and rebuilds it."""


def _table(collection: str) -> str:
    # Collection names are validated to [A-Za-z0-9_-], so quoting is enough.
    return f'"r_{collection}"'


def _index(collection: str, field: str) -> str:
    return f'"ix_{collection}__{field}"'


def _computed_index(collection: str, name: str) -> str:
    # Apart from the fields' indexes: a stored field may have a computed value's name.
    return f'"cx_{collection}__{name}"'


class Cache:
    """One connection to a store's cache database."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = _connect(path)
        # Collections known to have a table: tables are never seen to disappear.
        self._tables: set[str] = set()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE ... COMMIT``; a nested call joins the outer transaction."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def forget_tables(self) -> None:
        """Another process recreated the schema: look tables up again."""
        self._tables.clear()

    # --- files ------------------------------------------------------------------------

    def file_state(self, collection: str) -> FileState | None:
        row = self.conn.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE collection = ?", (collection,)
        ).fetchone()
        return FileState(*row) if row else None

    def save_state(self, collection: str, state: FileState) -> None:
        self.conn.execute(
            f"INSERT OR REPLACE INTO files (collection, {_FILE_COLUMNS}) VALUES {_FILE_VALUES}",
            (collection, *state),
        )

    def cached_collections(self) -> list[str]:
        """Collections whose file the cache has read."""
        return [r[0] for r in self.conn.execute("SELECT collection FROM files ORDER BY 1")]

    # --- tables -----------------------------------------------------------------------

    def has_table(self, collection: str) -> bool:
        if collection in self._tables:
            return True
        found = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            ("r_" + collection,),
        ).fetchone()
        if found:
            self._tables.add(collection)
        return found is not None

    def ensure_table(self, collection: str) -> None:
        """Create the collection's table (and its declared indexes) if it is not there."""
        if collection not in self._tables:
            self._create_table(collection)
            self._create_indexes(collection)

    def replace(self, collection: str, rows: Iterable[Row]) -> None:
        """Make ``rows`` the whole table (a rebuild), in the caller's transaction.

        The table is dropped and made again rather than emptied: inserting into a table
        without indexes, then indexing, is the fastest way in, and inside the transaction
        no other connection sees it gone.
        """
        self.conn.execute(f"DROP TABLE IF EXISTS {_table(collection)}")
        self._tables.discard(collection)
        self._create_table(collection)
        self._insert(collection, rows)
        self._create_indexes(collection)

    def forget(self, collection: str) -> None:
        """The collection's file is gone: empty its table and forget the file.

        Pending writes stay: they are not derived from the file (a checkout of a branch
        without it must not lose them), and reads still see them.
        """
        with self.transaction():
            if self.has_table(collection):
                self.conn.execute(f"DELETE FROM {_table(collection)}")
            self.conn.execute("DELETE FROM files WHERE collection = ?", (collection,))

    def upsert(self, collection: str, rows: Sequence[Row]) -> None:
        """Make rows current, unless the table holds a newer version of their id."""
        if not rows:
            return
        self.ensure_table(collection)
        table = _table(collection)
        # ">=": on equal versions the later line wins, and these lines come later.
        self._insert(
            collection,
            rows,
            " ON CONFLICT(id) DO UPDATE SET data = excluded.data,"
            " updated_at = excluded.updated_at, deleted = excluded.deleted"
            f" WHERE excluded.updated_at >= {table}.updated_at",
        )

    def _insert(self, collection: str, rows: Iterable[Row], tail: str = "") -> None:
        head = f"INSERT INTO {_table(collection)} (id, data, updated_at, deleted) VALUES "
        values = chain.from_iterable(rows)
        while flat := list(islice(values, _ROWS_PER_INSERT * 4)):
            count = len(flat) // 4
            many = _MANY_ROWS if count == _ROWS_PER_INSERT else ",".join(["(?,?,?,?)"] * count)
            self.conn.execute(head + many + tail, flat)

    def _create_table(self, collection: str) -> None:
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {_table(collection)} ("
            " id TEXT PRIMARY KEY, data TEXT NOT NULL,"
            " updated_at INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)"
        )
        self._tables.add(collection)

    # --- indexes ----------------------------------------------------------------------

    def indexed_fields(self, collection: str) -> set[str]:
        rows = self.conn.execute("SELECT field FROM indexes WHERE collection = ?", (collection,))
        return {r[0] for r in rows}

    def ensure_indexes(
        self, collection: str, fields: Sequence[str], *, rebuild: bool = False
    ) -> int:
        """Declare indexes on fields of a collection; return how many were (re)built."""
        fields = [f for f in fields if f != "id"]  # the primary key is indexed already
        indexed = self.indexed_fields(collection)
        if not rebuild and set(fields) <= indexed:
            return 0
        # A computed value has an index of its own (the CLI asks for one by name).
        computed = self.computed_fields(collection)
        fields = [f for f in fields if f not in computed]
        if not fields or (not rebuild and set(fields) <= indexed):
            return 0
        with self.transaction():
            self._create_table(collection)
            for field in fields:
                self.conn.execute(
                    "INSERT OR IGNORE INTO indexes (collection, field) VALUES (?, ?)",
                    (collection, field),
                )
                if rebuild:
                    self.conn.execute(f"DROP INDEX IF EXISTS {_index(collection, field)}")
                self._create_index(collection, field)
        return len(fields)

    def _create_indexes(self, collection: str) -> None:
        for field in self.indexed_fields(collection):
            self._create_index(collection, field)
        for name, computed in self.computed_fields(collection).items():
            self._create_computed_index(collection, name, computed)

    def _create_index(self, collection: str, field: str) -> None:
        # Partial on live rows: every query says "deleted = 0", so the planner may use it.
        self.conn.execute(
            f"CREATE INDEX IF NOT EXISTS {_index(collection, field)}"
            f" ON {_table(collection)} ({query.field_expr(field)}) WHERE deleted = 0"
        )

    # --- computed values ------------------------------------------------------------------

    def computed_fields(self, collection: str) -> dict[str, Computed]:
        """The collection's computed values, by name."""
        rows = self.conn.execute(
            "SELECT name, rule, fields FROM computed WHERE collection = ?", (collection,)
        )
        return {name: Computed(rule, tuple(fields.split(","))) for name, rule, fields in rows}

    def ensure_computed(
        self,
        collection: str,
        computed: Mapping[str, Computed],
        *,
        rebuild: bool = False,
        fields: Iterable[str] = (),
    ) -> int:
        """Declare computed values of a collection, each with its index (a name given a
        new rule gets a new index), and forget any the cache holds under a name that is
        one of ``fields`` now (a class's stored fields: an older release computed it);
        return how many were (re)built."""
        known = self.computed_fields(collection)
        changed = {n: c for n, c in computed.items() if rebuild or known.get(n) != c}
        stale = [name for name in fields if name in known and name not in computed]
        if not changed and not stale:
            return 0
        with self.transaction():
            for name in stale:
                self.conn.execute(
                    "DELETE FROM computed WHERE collection = ? AND name = ?", (collection, name)
                )
                self.conn.execute(f"DROP INDEX IF EXISTS {_computed_index(collection, name)}")
            self._create_table(collection)
            for name, value in changed.items():
                self.conn.execute(
                    "INSERT OR REPLACE INTO computed (collection, name, rule, fields)"
                    " VALUES (?, ?, ?, ?)",
                    (collection, name, value.rule, ",".join(value.fields)),
                )
                self.conn.execute(f"DROP INDEX IF EXISTS {_computed_index(collection, name)}")
                self._create_computed_index(collection, name, value)
        return len(changed)

    def _create_computed_index(self, collection: str, name: str, computed: Computed) -> None:
        # Partial on live rows, as the fields' indexes are.
        self.conn.execute(
            f"CREATE INDEX IF NOT EXISTS {_computed_index(collection, name)}"
            f" ON {_table(collection)} (({computed.sql})) WHERE deleted = 0"
        )

    # --- pending (debounced) writes -----------------------------------------------------

    def add_pending(self, collection: str, rows: Sequence[Row], owner: int, seq: int) -> None:
        """Record debounced writes of process ``owner``; ``seq`` orders them."""
        self.ensure_table(collection)  # reads find pending rows through the table
        self.conn.executemany(
            "INSERT OR REPLACE INTO pending"
            " (collection, id, data, updated_at, deleted, owner, seq) VALUES (?,?,?,?,?,?,?)",
            [
                (collection, rid, data, version, deleted, owner, seq + n)
                for n, (rid, data, version, deleted) in enumerate(rows)
            ],
        )

    def pending_owners(self) -> list[int]:
        """The processes that have pending writes (0: carried over a schema change)."""
        return [r[0] for r in self.conn.execute("SELECT DISTINCT owner FROM pending")]

    def pending_counts(self, owners: Sequence[int] | None = None) -> dict[str, int]:
        """Pending writes per collection (of ``owners`` only, if given)."""
        where, params = _owned_by(owners)
        return dict(
            self.conn.execute(
                f"SELECT collection, COUNT(*) FROM pending WHERE 1{where} GROUP BY 1 ORDER BY 1",
                params,
            )
        )

    def take_pending(self, collection: str, owners: Sequence[int] | None = None) -> list[Row]:
        """Remove the collection's pending rows (of ``owners``); return those to append.

        A pending write superseded meanwhile (a newer version came from a pull, a merge or
        another writer) is dropped: the newer updated_at wins. So is one whose very version
        the table holds already (an export cut short after its append): appending it again
        would only repeat the line. Rows come in the order of the writes.
        """
        self.ensure_table(collection)
        table = _table(collection)
        where, params = _owned_by(owners)
        rows = self.conn.execute(
            "SELECT p.id, p.data, p.updated_at, p.deleted FROM pending p"
            f" LEFT JOIN {table} t ON t.id = p.id WHERE p.collection = ?{where}"
            " AND (t.id IS NULL OR p.updated_at > t.updated_at"
            " OR (p.updated_at = t.updated_at AND p.data IS NOT t.data)) ORDER BY p.seq",
            (collection, *params),
        ).fetchall()
        self.conn.execute(f"DELETE FROM pending WHERE collection = ?{where}", (collection, *params))
        return [(rid, data, version, bool(deleted)) for rid, data, version, deleted in rows]

    def has_pending(self, collection: str) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM pending WHERE collection = ? LIMIT 1", (collection,)
        ).fetchone()
        return row is not None

    # --- reads: a table with the pending rows laid over it --------------------------------

    def currents(self, collection: str, ids: Sequence[str]) -> dict[str, Current]:
        """The current (data, version, deleted) of each id that has one, tombstones and
        pending writes included."""
        if not self.has_table(collection):
            return {}
        table = _table(collection)
        # Pending rows are looked up with the table's in one statement when the write is
        # small; a big one (a load) asks first whether there are any, and whether the
        # table has a row at all: a first load would look 100,000 ids up for nothing.
        big = len(ids) > _IDS_PER_LOOKUP
        pending = not big or self.has_pending(collection)
        if big and not pending and not self._any_row(collection):
            return {}
        found: dict[str, Current] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _IDS_PER_LOOKUP):
            chunk = unique[start : start + _IDS_PER_LOOKUP]
            marks = ", ".join("?" * len(chunk))
            sql = f"SELECT id, data, updated_at, deleted, 0 FROM {table} WHERE id IN ({marks})"
            params: list[str] = chunk
            if pending:
                sql += (
                    " UNION ALL SELECT id, data, updated_at, deleted, 1 FROM pending"
                    f" WHERE collection = ? AND id IN ({marks})"
                )
                params = [*chunk, collection, *chunk]
            for rid, data, version, deleted, is_pending in self.conn.execute(sql, params):
                have = found.get(rid)
                # A pending write ties with a version of the file as the later line.
                if have is None or version > have[1] or (is_pending and version == have[1]):
                    found[rid] = (data, version, bool(deleted))
        return found

    def _any_row(self, collection: str) -> bool:
        return (
            self.conn.execute(f"SELECT 1 FROM {_table(collection)} LIMIT 1").fetchone() is not None
        )

    def select(
        self,
        collection: str,
        filters: Sequence[Filter] = (),
        *,
        sort: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        computed: Mapping[str, Computed] | None = None,
    ) -> list[str]:
        """The JSON lines of the live records that pass the filters (``computed``: as
        for count)."""
        source = self._source(collection)
        if source is None:
            return []
        table, order, first = source
        if computed is None:
            computed = self.computed_fields(collection) if filters or sort else query.NONE
        sql, params = query.select(
            table, order, filters, sort=sort, limit=limit, offset=offset, computed=computed
        )
        return [row[0] for row in self.conn.execute(sql, (*first, *params))]

    def count(
        self,
        collection: str,
        filters: Sequence[Filter] = (),
        computed: Mapping[str, Computed] | None = None,
    ) -> int:
        """Live records that pass the filters; ``computed``: the computed values to read
        names as (a typed query's class's), else those the cache knows."""
        source = self._source(collection)
        if source is None:
            return 0
        table, _, first = source
        if computed is None:
            computed = self.computed_fields(collection) if filters else query.NONE
        sql, params = query.count(table, filters, computed)
        return int(self.conn.execute(sql, (*first, *params)).fetchone()[0])

    def count_by(self, collection: str, field: str) -> dict[Any, int]:
        """Live records per value of a field (None: null or missing)."""
        source = self._source(collection)
        if source is None:
            return {}
        table, _, first = source
        out: dict[Any, int] = {}
        sql = query.count_by(table, field, self.computed_fields(collection))
        for value, kind, n in self.conn.execute(sql, first):
            key = {"true": True, "false": False}.get(kind, value)
            out[key] = out.get(key, 0) + n
        return out

    def counts(self, collection: str) -> tuple[int, int]:
        """(live, deleted) records, pending writes included."""
        source = self._source(collection)
        if source is None:
            return 0, 0
        table, _, first = source
        live, deleted = self.conn.execute(query.counts(table), first).fetchone()
        return int(live), int(deleted)

    def _source(self, collection: str) -> tuple[str, str, tuple[str, ...]] | None:
        """(source, order, its parameters): the collection's current versions, for
        query.py, or None if it has none. With nothing pending (always, outside debounced
        mode) the source is the table itself, and its indexes serve the query."""
        if not self.has_table(collection):
            return None
        table = _table(collection)
        if not self.has_pending(collection):
            return table, "rowid", ()
        # The table's rows that no pending write supersedes, then the pending writes that
        # no row of the table supersedes, each at the place its id holds in the table (or
        # after all of them, in the order of the writes).
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
        return source, "pos IS NULL, pos, seq", (collection, collection)

    def integrity_problems(self) -> list[str]:
        rows = self.conn.execute("PRAGMA quick_check").fetchall()
        return [r[0] for r in rows if r[0] != "ok"]


def _owned_by(owners: Sequence[int] | None) -> tuple[str, list[int]]:
    if owners is None:
        return "", []
    return f" AND owner IN ({', '.join('?' * len(owners)) or 'NULL'})", list(owners)


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        # Records are a few hundred bytes: 16 KiB pages make rebuilds and batches faster
        # than 4 KiB ones (measured: 1.30x the floor against 1.70x, and 1.31x against
        # 1.62x; 8 KiB sat between). Every commit writes whole pages to the WAL, which is
        # why a debounced write touches a single b-tree: the pending table's, which has no
        # rowid. Takes effect on a new file only, before WAL mode.
        conn.execute("PRAGMA page_size = 16384")
        conn.execute("PRAGMA journal_mode = WAL")
        # A checkpoint every 256 pages (4 MiB) and the WAL cut back to 4 MiB after it: at
        # SQLite's default of 1,000 pages of 16 KiB, the WAL of a 115 KB store grew to 16 MB.
        conn.execute("PRAGMA wal_autocheckpoint = 256")
        conn.execute("PRAGMA journal_size_limit = 4194304")
        # The cache is derived from fsynced JSONL: losing its last transaction to a power
        # cut costs a catch-up, except for pending (debounced) writes, which survive a
        # killed process but not a power cut: the price of no fsync per debounced write.
        conn.execute("PRAGMA synchronous = NORMAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            _create_schema(conn)
    except sqlite3.OperationalError:
        conn.close()
        raise
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise CacheCorrupt(str(exc)) from exc
    return conn


def _create_schema(conn: sqlite3.Connection) -> None:
    """Drop whatever an older cache schema had and create this one (the cache is derived,
    but for pending writes, which are carried over with no owner: the next open exports
    them)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
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
            " head BLOB, tail BLOB, synced_ns INTEGER, bad_lines INTEGER, conflict_line INTEGER,"
            " ctime_ns INTEGER)"
        )
        conn.execute(
            "CREATE TABLE indexes (collection TEXT, field TEXT, PRIMARY KEY (collection, field))"
        )
        conn.execute(
            "CREATE TABLE computed (collection TEXT, name TEXT, rule TEXT NOT NULL,"
            " fields TEXT NOT NULL, PRIMARY KEY (collection, name))"
        )
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
        for collection in {row[0] for row in carried}:
            conn.execute(
                f"CREATE TABLE {_table(collection)} (id TEXT PRIMARY KEY, data TEXT NOT NULL,"
                " updated_at INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0)"
            )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
