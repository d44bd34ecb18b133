"""``git taskstore watch``: keep OpenSpec folders and the store in sync as either changes.

A thread waits on file events (the ``watchfiles`` library: inotify, FSEvents or
ReadDirectoryChanges under it) for the OpenSpec roots and the store folder. A burst of
events is synced once it has been quiet for the debounce time (or, if it goes on, every
few seconds), as one sync of the changes it touched. Once its watches are in place (at
the start, and after a root appeared, vanished or was replaced) the watcher syncs what
changed while nothing watched; a periodic sweep syncs what the events missed.

The watcher reacts to its own writes not at all: a sync that writes a file or a record
leaves both sides equal, so the sync their events would start finds nothing to do and
says nothing; its own store writes are told apart by the store files' stat, taken under
the store's lock right after it wrote them.

One watcher runs per work tree: it holds ``.taskstore/openspec-watch.lock``, which is
also how ``status`` tells whether one is running.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..errors import TaskstoreError
from ..gitguard import GitGuard
from . import CHANGES, TASKS
from .folders import ARCHIVED, plain_dir
from .lastsync import store_signature
from .service import OpenSpecSync
from .syncrun import ChangeResult, SyncReport

if TYPE_CHECKING:
    from ..store import Store

LOCK_NAME = "openspec-watch.lock"
DEBOUNCE_MS = 100
STEP_MS = 50  # how often watchfiles looks at its stop event, and groups raw events
MAX_WAIT_S = 2.0  # a burst that goes on is synced at least this often (or 5 debounces)
SWEEP_S = 30.0
SWEEP_LIMIT = 50  # changes one sweep syncs at most
RECENT_S = 30.0  # a change synced this recently is left to the next sweep
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
# What git leaves in its folder while an operation waits for the user to finish it.
GIT_IN_PROGRESS = (
    "MERGE_HEAD",
    "rebase-merge",
    "rebase-apply",
    "CHERRY_PICK_HEAD",
    "REVERT_HEAD",
)

Emit = Callable[[dict[str, Any]], None]
Identity = tuple[int, int] | None  # a root's (st_dev, st_ino); None: missing


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
        self.started = threading.Event()  # set once the first sync is done, watches in place
        self._restart = threading.Event()  # set when a root appears, vanishes or is replaced
        self._watched: dict[str, Identity] = {}  # each root as the running watch saw it
        self._syncing = threading.RLock()  # one sync at a time: the watch thread or the sweep
        self._emitting = threading.Lock()  # one event line at a time
        self._thread: threading.Thread | None = None
        self._git = GitGuard(store.path)
        self._known_conflicts: dict[str, Any] = {}  # recorded before the running sync

    # --- the loop -----------------------------------------------------------------------

    def run(self) -> None:
        """Watch until stopped; a crash of the watching thread restarts it with backoff."""
        claim = _Claim(self.store.path)
        try:
            self._loop()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop.set()
            if self._thread is not None:
                # It sees the stop within a step, or once its sync ends: the lock (what
                # `status` asks) is released only when no sync of this watcher runs.
                self._thread.join()
            claim.release()
            self._event("watch_stopped")

    def _loop(self) -> None:
        failures = 0
        next_sweep = time.monotonic() + self.sweep_s
        while not self.stop.is_set():
            crashed: list[BaseException] = []
            ended = threading.Event()
            self._restart.clear()
            self._thread = threading.Thread(
                target=self._guarded, args=(crashed, ended), name="openspec-watch", daemon=True
            )
            self._thread.start()
            # Blocking waits: woken by the thread ending (a stop, a restart, a crash) or by
            # the next sweep.
            while not ended.wait(timeout=max(0.0, next_sweep - time.monotonic())):
                if self.started.is_set() and not self.stop.is_set():
                    try:
                        self.sweep()
                    except Exception as exc:  # the next sweep tries again
                        self._event("watcher_error", error=_describe(exc), retry_in_s=self.sweep_s)
                next_sweep = time.monotonic() + self.sweep_s
                if self._roots_changed():
                    self._restart.set()  # watch the roots as they are now
            self._thread.join()
            if crashed and not self.stop.is_set():
                delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
                failures += 1
                self._event("watcher_error", error=_describe(crashed[0]), retry_in_s=delay)
                self.stop.wait(delay)
            elif not crashed:
                failures = 0

    def _guarded(self, crashed: list[BaseException], ended: threading.Event) -> None:
        try:
            self._watch()
        except BaseException as exc:  # reported by run(), which restarts the thread
            crashed.append(exc)
        finally:
            ended.set()

    def _roots(self) -> dict[str, Identity]:
        """Each root's identity now: a folder that is replaced (a checkout deletes and
        re-creates it) is another folder, its old watch deaf to the new one."""
        found: dict[str, Identity] = {}
        for root in self.service.config.roots:
            identity = None
            if plain_dir(self.service.top, root):
                with contextlib.suppress(OSError):
                    info = os.lstat(os.path.join(self.service.top, root))
                    identity = (info.st_dev, info.st_ino)
            found[root] = identity
        return found

    def _roots_changed(self) -> bool:
        return self._roots() != self._watched

    def _paths(self) -> list[str]:
        self._watched = self._roots()
        paths = [self.store.path]
        for root, identity in self._watched.items():
            if identity is None:
                self._event("warning", message=f"OpenSpec root {root}/ is missing; retrying")
            else:
                paths.append(os.path.join(self.service.top, root))
        return paths

    def _watch(self) -> None:
        import watchfiles

        quiet_s = self.debounce_ms / 1000
        longest_s = max(MAX_WAIT_S, 5 * quiet_s)
        paths = self._paths()
        roots = set(paths[1:])
        pending: set[str] = set()
        first = last = 0.0
        ready = False
        # rust_timeout with yield_on_timeout: an empty batch when nothing happened for a
        # debounce (or a step): the first one says the watches are in place, the later
        # ones end a burst's quiet time. watchfiles' own grouping (debounce, step) only
        # gathers the raw events of one moment; its debounce is no quiet time.
        for batch in watchfiles.watch(
            *paths,
            watch_filter=self._wanted,
            debounce=STEP_MS,
            step=STEP_MS,
            stop_event=_AnyEvent(self.stop, self._restart),
            rust_timeout=max(self.debounce_ms, STEP_MS),
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            now = time.monotonic()
            if self._git_at_work():
                # git rewrites the files and the store's records one after the other: a
                # sync now would pair one branch's records with another's files. The
                # events wait; git's own hooks sync once it is done, and so does this.
                if batch:
                    pending.update(path for _, path in batch)
                    last = now
                continue
            if not ready:
                ready = True
                self._catch_up()
            if batch:
                pending.update(path for _, path in batch)
                last = now
                first = first or now
                if not roots.isdisjoint(pending):
                    # A root itself was deleted or moved: its watch is deaf to the folder
                    # now at its path, which may well have the same inode. Watch anew; the
                    # catch-up then syncs what the pending events were about.
                    return
            if pending and (now - last >= quiet_s or now - first >= longest_s):
                touched, pending, first = pending, set(), 0.0
                changes, store_touched = self._affected(touched)
                if changes or store_touched:
                    self._sync(changes, "watcher")
            if self._roots_changed():
                return  # run() watches the roots as they are now, and catches up

    def _git_at_work(self) -> bool:
        """Whether git is rewriting the work tree (index.lock, a stash) or stands in the
        middle of a merge, rebase, cherry-pick or revert left for the user to finish."""
        if self._git.busy():
            return True
        git_dir = self._git.git_dir
        return git_dir is not None and any(
            os.path.exists(os.path.join(git_dir, name)) for name in GIT_IN_PROGRESS
        )

    def _catch_up(self) -> None:
        """Sync what changed while nothing watched; the first time, every change."""
        if self.started.is_set():
            self._sync_changed("periodic", recent_s=0.0)
            return
        self._sync(None, "periodic")
        self.started.set()
        self._event("watch_started", roots=self.service.config.roots)

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
        """Sync what the events missed: at most sweep_limit changes, none synced lately,
        those synced longest ago first; none while git is at work (the next sweep)."""
        if self._git_at_work():
            return
        self._sync_changed("periodic", recent_s=self.recent_s, limit=self.sweep_limit)

    def _sync_changed(self, trigger: str, *, recent_s: float, limit: int | None = None) -> None:
        with self._syncing:
            try:
                candidates = self.service.changed_since_last_sync()
            except (TaskstoreError, OSError) as exc:
                self._event("sync_failed", change=None, error=str(exc), trigger=trigger)
                return
            now = time.monotonic()
            due = [c for c in candidates if now - self.last_synced.get(c, -1e9) >= recent_s]
            due.sort(key=lambda c: self.last_synced.get(c, -1e9))  # none starves
            if due:
                self._sync(due[:limit], trigger)

    def _sync(self, changes: Iterable[str] | None, trigger: str) -> None:
        """Sync the changes (None: all) that have something to do, announcing each; and,
        if another process wrote the store since this watcher's last sync, the changes
        whose records it edited."""
        with self._syncing:
            try:
                with self.store.locked():  # no other writer between the syncs and the stat
                    report = self._sync_locked(changes, trigger)
            except (TaskstoreError, OSError) as exc:
                self._event("sync_failed", change=None, error=str(exc), trigger=trigger)
                return
            if report is None:
                return
            now = time.monotonic()
            for result in report.changes:
                self.last_synced[result.change] = now
                self._report(result, trigger)

    def _sync_locked(self, changes: Iterable[str] | None, trigger: str) -> SyncReport | None:
        wanted = None if changes is None else set(changes)
        if wanted is not None and store_signature(self.store.path) != self.own_store_signature:
            # Written by someone else since this watcher's last sync (its event may be on
            # its way: then it finds the signature its own and nothing to do).
            wanted |= set(self.service.changed_since_last_sync())
        try:
            if wanted is not None and not wanted:
                return None  # the events of the watcher's own store writes
            # Only changes with something to do are announced and synced: the events of
            # the watcher's own writes find both sides equal.
            only = None if wanted is None else sorted(wanted)
            dry = self.service.sync(only=only, dry_run=True)
            todo = [r.change for r in dry.changes if self._news(r, first=wanted is None)]
            for change in todo:
                self._event("sync_started", change=change, trigger=trigger)
            records = self.store.collection(CHANGES)
            self._known_conflicts = {c: (records.get(c) or {}).get("conflicts") for c in todo}
            # Every change wanted is synced, those in sync too: a sync that finds nothing
            # writes nothing but what it saw, so the next sweep does not list them again.
            report = self.service.sync(only=only, trigger=trigger)
            report.changes = [r for r in report.changes if r.change in todo]
            return report
        finally:
            self.own_store_signature = store_signature(self.store.path)

    def _news(self, result: ChangeResult, *, first: bool) -> bool:
        """Whether a dry run found something to sync or to tell: not a change in sync, nor
        (but at the first sync) one whose only news is the conflict it already recorded,
        which every later write to the store would otherwise announce again."""
        if result.state == "in_sync" and not result.error:
            return False
        if first or result.state != "conflict" or result.to_store or result.to_files:
            return True
        record = self.store.collection(CHANGES).get(result.change) or {}
        return bool(record.get("conflicts") != result.conflicts)

    def _report(self, result: ChangeResult, trigger: str) -> None:
        base = {"change": result.change, "trigger": trigger}
        if result.conflicts and result.conflicts != self._known_conflicts.get(result.change):
            self._event(
                "conflict_detected",
                **base,
                direction="both",
                units=[c["unit"] for c in result.conflicts],
                files=[result.folder],
            )
        if result.error:
            self._event(
                "sync_failed", **base, direction="both", error=result.error, files=[result.folder]
            )
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
        with self._emitting:
            self.emit({"event": name, "at": time.time_ns() // 1_000_000, **fields})


class _AnyEvent:
    """Set when any of the events is: what watchfiles polls to stop."""

    def __init__(self, *events: threading.Event) -> None:
        self.events = events

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
