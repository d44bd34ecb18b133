"""``git taskstore watch``: keep OpenSpec folders and the store in sync as either changes.

A thread waits on file events (the ``watchfiles`` library: inotify, FSEvents or
ReadDirectoryChanges under it) for the OpenSpec roots and the store folder; bursts are
debounced into one sync of the changes they touched. A periodic sweep syncs what the
events missed. The watcher reacts to its own writes not at all: a sync that writes a file
or a record leaves both sides equal, so the sync their events start finds nothing to do,
and its own store writes are told apart by the store files' stat.

One watcher runs per work tree: it holds ``.taskstore/openspec-watch.lock``, which is
also how ``status`` tells whether one is running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import TaskstoreError
from .folders import ARCHIVED
from .mirror import CHANGES, TASKS
from .service import ChangeResult, OpenSpecSync, _store_signature

if TYPE_CHECKING:
    from ..store import Store

LOCK_NAME = "openspec-watch.lock"
DEBOUNCE_MS = 100
SWEEP_S = 30.0
SWEEP_LIMIT = 50  # changes one sweep syncs at most
RECENT_S = 30.0  # a change synced this recently is left to the next sweep
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)

Emit = Callable[[dict[str, Any]], None]


def running(store_dir: str) -> int | None:
    """The pid of the watcher running for this store, or None."""
    path = os.path.join(store_dir, LOCK_NAME)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 32).decode("ascii", "replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class _Claim:
    """The watcher's lock: one watcher per store, its pid inside for ``status``."""

    def __init__(self, store_dir: str) -> None:
        path = os.path.join(store_dir, LOCK_NAME)
        if os.path.islink(path):
            os.unlink(path)
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            pid = running(store_dir)
            raise TaskstoreError(
                f"a watcher is already running for this store (pid {pid}); stop it first"
            ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())

    def release(self) -> None:
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)


class Watcher:
    """Watches one store's OpenSpec roots and its files until ``stop`` is set."""

    def __init__(
        self,
        store: Store,
        *,
        emit: Emit,
        debounce_ms: int = DEBOUNCE_MS,
        sweep_s: float = SWEEP_S,
        sweep_limit: int = SWEEP_LIMIT,
        recent_s: float = RECENT_S,
    ) -> None:
        self.store = store
        self.service = OpenSpecSync(store)
        self.service.retries = 3  # a file vanished or locked mid-read: tried again
        self.service.backoff_s = 0.2
        self.emit = emit
        self.debounce_ms = debounce_ms
        self.sweep_s = sweep_s
        self.sweep_limit = sweep_limit
        self.recent_s = recent_s
        self.stop = threading.Event()
        self.last_synced: dict[str, float] = {}  # change -> monotonic time of its last sync
        self.own_store_signature: list[Any] | None = None
        self._restart = threading.Event()  # set when a root appears or vanishes

    # --- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        """Watch until stopped; a crash of the watching thread restarts it with backoff."""
        claim = _Claim(self.store.path)
        try:
            self._loop()
        except KeyboardInterrupt:
            self.stop.set()
        finally:
            self.stop.set()
            claim.release()
            self._event("watch_stopped")

    def _loop(self) -> None:
        self._event("watch_started", roots=self.service.config.roots)
        self._sync(None, "periodic")  # what changed while nobody watched
        failures = 0
        next_sweep = time.monotonic() + self.sweep_s
        while not self.stop.is_set():
            crashed: list[BaseException] = []
            ended = threading.Event()
            thread = threading.Thread(
                target=self._guarded, args=(crashed, ended), name="openspec-watch", daemon=True
            )
            thread.start()
            # Blocking waits: woken by the thread ending, a stop, or the next sweep.
            while not ended.wait(timeout=max(0.0, next_sweep - time.monotonic())):
                if self.stop.is_set():
                    break
                self.sweep()
                next_sweep = time.monotonic() + self.sweep_s
                if self._roots_changed():
                    self._restart.set()  # watch the roots as they are now
            thread.join()
            if crashed and not self.stop.is_set():
                delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
                failures += 1
                self._event("watcher_error", error=_describe(crashed[0]), retry_in_s=delay)
                self.stop.wait(delay)
            else:
                failures = 0
            self._restart.clear()

    def _guarded(self, crashed: list[BaseException], ended: threading.Event) -> None:
        try:
            self._watch()
        except BaseException as exc:  # reported by run(), which restarts the thread
            crashed.append(exc)
        finally:
            ended.set()

    def _paths(self) -> list[str]:
        paths = [self.store.path]
        self._present = []
        for root in self.service.config.roots:
            path = os.path.join(self.service.top, root)
            if os.path.isdir(path) and not os.path.islink(path):
                paths.append(path)
                self._present.append(root)
            else:
                self._event("warning", message=f"OpenSpec root {root}/ is missing; retrying")
        return paths

    def _roots_changed(self) -> bool:
        present = [
            r for r in self.service.config.roots if os.path.isdir(os.path.join(self.service.top, r))
        ]
        return present != getattr(self, "_present", present)

    def _watch(self) -> None:
        import watchfiles

        stop = _AnyEvent(self.stop, self._restart)
        for batch in watchfiles.watch(
            *self._paths(),
            watch_filter=self._wanted,
            debounce=self.debounce_ms,
            stop_event=stop,
            rust_timeout=0,
            raise_interrupt=False,
        ):
            changes, store_touched = self._affected({path for _, path in batch})
            if store_touched and _store_signature(self.store) != self.own_store_signature:
                changes |= set(self.service.changed_since_last_sync())
            if changes:
                self._sync(sorted(changes), "watcher")

    def _wanted(self, change: Any, path: str) -> bool:
        store = self.store.path
        if path.startswith(store + os.sep) or path == store:
            name = os.path.basename(path)
            return name in (f"{CHANGES}.jsonl", f"{TASKS}.jsonl")
        name = os.path.basename(path)
        return not (name.startswith(".") and name.endswith(".tmp"))

    def _affected(self, paths: set[str]) -> tuple[set[str], bool]:
        """The change ids the paths lie in, and whether the store's files were among them."""
        changes: set[str] = set()
        store_touched = False
        top = self.service.top
        for path in paths:
            if path.startswith(self.store.path + os.sep):
                store_touched = True
                continue
            rel = os.path.relpath(path, top).replace(os.sep, "/")
            for root in self.service.config.roots:
                prefix = f"{root}/changes/"
                if not rel.startswith(prefix):
                    continue
                parts = rel[len(prefix) :].split("/")
                if parts[0] == "archive" and len(parts) > 1:
                    dated = ARCHIVED.fullmatch(parts[1])
                    if dated:
                        changes.add(dated.group(2))
                elif parts[0]:
                    changes.add(parts[0])
        return changes, store_touched

    # --- syncing --------------------------------------------------------------------------

    def sweep(self) -> None:
        """Sync what the events missed: at most sweep_limit changes, none synced lately."""
        try:
            candidates = self.service.changed_since_last_sync()
        except (TaskstoreError, OSError) as exc:
            self._event("sync_failed", change=None, error=str(exc), trigger="periodic")
            return
        now = time.monotonic()
        due = [c for c in candidates if now - self.last_synced.get(c, -1e9) >= self.recent_s]
        if due:
            self._sync(due[: self.sweep_limit], "periodic")

    def _sync(self, changes: list[str] | None, trigger: str) -> None:
        try:
            if changes is not None:
                # Only changes with something to do are announced: the events of the
                # watcher's own writes find both sides equal.
                changes = [
                    r.change
                    for r in self.service.sync(only=changes, dry_run=True).changes
                    if r.state != "in_sync" or r.error
                ]
                if not changes:
                    return
            for change in changes or []:
                self._event("sync_started", change=change, trigger=trigger)
            report = self.service.sync(only=changes, trigger=trigger)
        except (TaskstoreError, OSError) as exc:
            self._event("sync_failed", change=None, error=str(exc), trigger=trigger)
            return
        finally:
            self.own_store_signature = _store_signature(self.store)
        now = time.monotonic()
        for result in report.changes:
            self.last_synced[result.change] = now
            self._report(result, trigger)

    def _report(self, result: ChangeResult, trigger: str) -> None:
        base = {"change": result.change, "trigger": trigger}
        if result.conflicts:
            self._event(
                "conflict_detected",
                **base,
                units=[c["unit"] for c in result.conflicts],
                files=[result.folder],
            )
        if result.error:
            self._event("sync_failed", **base, error=result.error, files=[result.folder])
        if result.to_store or result.state in ("files_changed", "deleted"):
            self._event(
                "sync_completed",
                **base,
                direction="files_to_store",
                units=result.to_store,
                files=[result.folder],
            )
        if result.to_files:
            self._event(
                "sync_completed",
                **base,
                direction="store_to_files",
                units=result.to_files,
                files=result.files_written,
            )

    def _event(self, name: str, **fields: Any) -> None:
        self.emit({"event": name, "at": time.time_ns() // 1_000_000, **fields})


class _AnyEvent:
    """Set when any of the events is: what watchfiles polls to stop."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
