"""Debounced mode: writes acknowledged once durable in the cache, exported to JSONL later.

A debounced write is planned like any other, then recorded in the cache's ``pending``
table instead of being appended; reads lay pending rows over the tables, so it is current
at once. :class:`Flusher` exports them after the debounce has run out without writes;
``flush`` exports them on demand (``Store.flush()``, close, exit, ``git taskstore flush``,
the pre-commit hook), and a store opening finds the pending writes of processes that
died before exporting them.

Pending rows are the one part of the cache that is not derived from the files: a cache
deleted while it holds them loses them (``git taskstore flush`` first).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable

from . import log
from .cache import Current, Row
from .engine import Engine
from .errors import ValidationError
from .writes import Request, by_collection, ids_of, plan


class _NotFresh(Exception):
    """The cache may not reflect a collection's file: the write goes the long way."""


def record(engine: Engine, requests: list[Request], owner: int) -> None:
    """Look up, plan and record a debounced write in one cache transaction.

    The short way takes no file lock: if every file is as the cache read it, the write is
    planned on the cache. Otherwise, under the write lock, each file is synced first, in
    the transaction that records the write.
    """
    groups = by_collection(requests)
    try:
        with engine.cache.transaction():
            _record(engine, groups, owner, synced=False)
    except _NotFresh:
        with engine.write_transaction():
            _record(engine, groups, owner, synced=True)
    for request in requests:
        request.stamp_typed()


def _record(engine: Engine, groups: dict[str, list[Request]], owner: int, *, synced: bool) -> None:
    # Every collection is looked up before any is planned: planning completes the records
    # in place, and a retry must not start from records planned on a stale cache.
    found: dict[str, tuple[list[str], dict[str, Current]]] = {}
    for collection, group in groups.items():
        if synced:
            engine.fresh_locked(collection)
        elif not _reflects_file(engine, collection):
            raise _NotFresh
        ids = ids_of(group)
        found[collection] = ids, engine.cache.currents(collection, ids)
    seq = time.time_ns()  # orders the writes, which the export and the reads follow
    for collection, group in groups.items():
        rows = plan(group, *found[collection])
        engine.cache.add_pending(collection, rows, owner, seq)
        seq += len(rows)


def _reflects_file(engine: Engine, collection: str) -> bool:
    state = engine.cache.file_state(collection)
    try:
        st = os.stat(engine.file_path(collection))
    except FileNotFoundError:
        # No file, and nothing read of one: a collection so far only written debounced.
        return state is None
    return state is not None and state.conflict_line is None and state.is_fresh(st)


def flush(engine: Engine, *, orphans_only: bool = False) -> dict[str, int]:
    """Export pending writes (only those of dead processes, with ``orphans_only``);
    return how many went to each collection's file.

    A pending write that a newer version has superseded meanwhile (a pull, a merge,
    another writer) is dropped: the newer updated_at wins, as everywhere.
    """

    def run() -> dict[str, int]:
        owners = orphans(engine) if orphans_only else None
        pending = engine.cache.pending_counts(owners)
        exported: dict[str, int] = {}
        if not pending:
            return exported

        def planned() -> list[tuple[str, list[Row]]]:
            # Taken inside the write's transaction: a write that runs again (git replaced
            # a file under it) takes them again, and a failed one leaves them pending.
            exported.clear()
            found = []
            for collection in pending:
                engine.fresh_locked(collection)
                rows = engine.cache.take_pending(collection, owners)
                found.append((collection, rows))
                if rows:
                    exported[collection] = len(rows)
            return found

        engine.write(planned)
        return exported

    return engine.guarded(run)


# Under the store folder: one file per debounced store open, named after its owner id.
OWNERS_DIR = "taskstore.owners"


class Owner:
    """A debounced store's claim on its pending writes: a random id, and an ``flock``
    held on ``taskstore.owners/<id>`` while the store is open.

    A pid cannot say whether a writer lives: in another pid namespace (a container
    sharing the folder) its pid 1 is this namespace's init, and pids are reused. An
    ``flock`` is released by the kernel when its holder dies, in any namespace.
    """

    def __init__(self, store_dir: str) -> None:
        folder = os.path.join(store_dir, OWNERS_DIR)
        os.makedirs(folder, exist_ok=True)
        while True:
            self.id = int.from_bytes(os.urandom(7), "big") + 1  # never 0: "no owner"
            self.path = os.path.join(folder, str(self.id))
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                continue
            break
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd: int | None = fd

    def release(self) -> None:
        """Give up the claim (the store's pending writes are exported by then)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(fd)


def orphans(engine: Engine) -> list[int]:
    """Owners of pending writes that are no longer running (0: carried over a schema
    change, or written before owners were ids)."""
    return [owner for owner in engine.cache.pending_owners() if not _alive(engine.path, owner)]


def _alive(store_dir: str, owner: int) -> bool:
    if owner <= 0:
        return False
    path = os.path.join(store_dir, OWNERS_DIR, str(owner))
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False  # no claim on disk: its owner released it or never made one
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(path)  # the owner died holding it
    return False


# The longest debounce: writes wait this long at most before they reach the JSONL file
# (an hour). Beyond it a typo (a delay in microseconds, say) is the likelier story.
MAX_DELAY_MS = 3_600_000


def delay_from_env() -> int | None:
    """$TASKSTORE_DEBOUNCE_MS, validated; None when unset or empty."""
    value = os.environ.get("TASKSTORE_DEBOUNCE_MS")
    if not value:
        return None
    try:
        delay = int(value)
    except ValueError:
        delay = -1
    if not 0 <= delay <= MAX_DELAY_MS:
        raise ValidationError(
            f"TASKSTORE_DEBOUNCE_MS must be a whole number of milliseconds from 0 to "
            f"{MAX_DELAY_MS}, got {value!r}"
        )
    return delay


def check_delay(delay: object) -> None:
    """ValidationError unless ``delay`` (debounce_ms) is None or 0 to MAX_DELAY_MS."""
    if delay is not None and (type(delay) is not int or not 0 <= delay <= MAX_DELAY_MS):
        raise ValidationError(
            f"debounce_ms must be a whole number of milliseconds from 0 to {MAX_DELAY_MS}, "
            f"got {delay!r}"
        )


class Flusher:
    """Calls ``flush`` once ``delay`` seconds have passed without a new ``poke()``.

    One daemon thread for the store's life, woken by a condition: a debounced write only
    moves a deadline, so a burst of 10,000 writes starts no thread and no timer. The
    thread is woken only when it has no deadline to wait for: waiting for one, it wakes
    at the old deadline and waits again for the new one (a wake-up per write switched
    threads on every write).
    """

    def __init__(self, delay: float, flush: Callable[[], object]) -> None:
        self.delay = delay
        self._flush = flush
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        with self._cond:
            idle = self._deadline is None
            self._deadline = time.monotonic() + self.delay
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="taskstore-flush", daemon=True
                )
                self._thread.start()
            elif idle:
                self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._deadline = None
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        with self._cond:
            while not self._stopped:
                if self._deadline is None:
                    self._cond.wait()
                    continue
                delay = self._deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                self._deadline = None
                self._cond.release()
                try:
                    self._flush()
                except Exception as exc:  # pending writes stay durable in the cache
                    log.warning("pending writes not exported yet (%s); they stay in the cache", exc)
                finally:
                    self._cond.acquire()
