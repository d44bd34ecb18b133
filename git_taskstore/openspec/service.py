"""Two-way sync between OpenSpec change folders and the store: the service object.

``OpenSpecSync(store)`` syncs both ways or one way, tells each change's state, settles
conflicts, ticks a task or replaces a proposal section through the store, and reads the
records and the history. Each sync is a ``syncrun.SyncRun`` (the three-way rule per
unit, the writes) under the store's lock; ``lastsync`` tells by stat what changed since.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .. import names
from ..errors import NotFoundError, TaskstoreError, ValidationError
from ..records import Filter, Op
from . import config as configs
from . import lastsync
from .edit import set_section
from .folders import scan
from .mirror import CHANGES, FILES, HISTORY, SECTIONS, TASKS, task_id
from .syncrun import (
    ChangeResult,
    SyncReport,
    SyncRun,
    check_task_value,
    section_value,
    task_value,
    trusted_change,
    trusted_task,
)

if TYPE_CHECKING:
    from ..store import Store

TRIGGERS = ("watcher", "periodic", "store_edit", "manual", "hook")
DIRECTIONS = ("files_to_store", "store_to_files")


class OpenSpecSync:
    """The OpenSpec change folders of a work tree, kept in sync with a store.

    ``OpenSpecSync(store)`` reads the roots from the store's ``openspec.json`` (see
    ``init``); the folders live under the folder that holds the store.
    """

    def __init__(self, store: Store, *, top: str | None = None) -> None:
        self.store = store
        self.top = os.path.abspath(top) if top else os.path.dirname(store.path)
        self.config = configs.load(store.path)
        self.retries = 0  # attempts after a transient error (the watcher sets more)
        self._assume_clean = False  # see _sync_after_edit
        self.backoff_s = 0.1

    @staticmethod
    def init(store: Store, roots: Iterable[str] = ("openspec",)) -> configs.Config:
        """Record the OpenSpec roots in the store's committed settings; return them."""
        try:
            config = configs.load(store.path)
        except TaskstoreError:  # none yet, or unreadable: init writes good ones (never
            config = configs.Config()  # through a link: the rename replaces the link)
        chosen = [configs.check_root(r) for r in roots] or ["openspec"]
        config.roots = list(dict.fromkeys(chosen))
        configs.save(store.path, config)
        _ignore_local_files(store.path)
        return config

    # --- reading -------------------------------------------------------------------------

    def changes(self, filters: Iterable[Filter] = ()) -> list[dict[str, Any]]:
        return self.store.collection(CHANGES).list(filters, sort="id")

    def show(self, change: str) -> dict[str, Any]:
        """A change's record with its tasks (``tasks``), in file order."""
        record = self.store.collection(CHANGES).get(_change_id(change))
        if record is None:
            raise NotFoundError(
                f"no OpenSpec change {change!r} in the store; run `git taskstore openspec sync`"
            )
        record["tasks"] = self.tasks(change)
        return record

    def files(self, change: str) -> dict[str, str]:
        """The raw text of each file of a change, by name, as last synced."""
        rows = self.store.collection(FILES).list([Filter("change", Op.EQ, change)], sort="id")
        return {row["name"]: row["text"] for row in rows}

    def tasks(self, change: str) -> list[dict[str, Any]]:
        return self.store.collection(TASKS).list([Filter("change", Op.EQ, change)], sort="position")

    def history(self, change: str | None = None, *, limit: int | None = 20) -> list[dict[str, Any]]:
        """Sync history, newest first."""
        filters = [Filter("change", Op.EQ, change)] if change else []
        return self.store.collection(HISTORY).list(filters, sort="-id", limit=limit)

    def status(self, change: str | None = None) -> list[ChangeResult]:
        """Per change: what a sync would do now, without doing it."""
        return self.sync(change, dry_run=True).changes

    def detect_conflicts(self, change: str | None = None) -> list[ChangeResult]:
        """The changes whose files and records both changed one unit, differently."""
        return [r for r in self.status(change) if r.conflicts]

    # --- writing -------------------------------------------------------------------------

    def sync_from_files(self, change: str | None = None, **kw: Any) -> SyncReport:
        return self.sync(change, direction="files_to_store", **kw)

    def sync_to_files(self, change: str | None = None, **kw: Any) -> SyncReport:
        return self.sync(change, direction="store_to_files", **kw)

    def resolve(self, change: str, winner: str, *, trigger: str = "manual") -> ChangeResult:
        """Settle a change's conflicts: ``winner`` is "files" or "store"."""
        if winner not in ("files", "store"):
            raise ValidationError('winner must be "files" or "store"')
        report = self.sync(change, winner=winner, trigger=trigger)
        return report.changes[0]

    def set_task(
        self,
        change: str,
        task: str,
        *,
        done: bool | None = None,
        text: str | None = None,
        trigger: str = "store_edit",
    ) -> ChangeResult:
        """Tick, untick or reword a task through the store, then write it into tasks.md.

        ``task`` is its key (its number, ``1.2``, or ``~`` and a digest of its text) or
        ``#N``, its place in ``openspec instructions apply``. A conflict or error is in
        the result (and recorded), not raised.
        """
        change = _change_id(change)
        key = task.strip()
        tasks = self.store.collection(TASKS)
        with self.store.locked():
            if self.store.collection(CHANGES).get(change) is None:
                raise NotFoundError(
                    f"no OpenSpec change {change!r} in the store; see `git taskstore openspec list`"
                )
            if key.startswith("#") and key[1:].isdigit():
                found = [t for t in self.tasks(change) if t.get("ordinal") == int(key[1:])]
                key = found[0]["key"] if found else key
            record_id = task_id(change, key)
            current = tasks.get(record_id)
            if current is None:
                known = [t["key"] for t in self.tasks(change)]
                hint = f" (it has {', '.join(known[:12])})" if known else ""
                raise NotFoundError(f"change {change!r} has no task {task!r}{hint}")
            patch: dict[str, Any] = {"id": record_id}
            if done is not None:
                patch["done"] = done
            if text is not None:
                patch["text"] = text
                problem = check_task_value(key, {"done": True, "text": text})
                if problem:
                    raise ValidationError(problem)
            if len(patch) > 1 and any(current.get(k) != v for k, v in patch.items()):
                clean = self._store_clean()
                tasks.put(patch, merge=True)
                return self._sync_after_edit(change, trigger, clean)
            return self.sync(change, trigger=trigger).changes[0]

    def set_section(
        self, change: str, section: str, body: str, *, trigger: str = "store_edit"
    ) -> ChangeResult:
        """Replace a proposal section (why, what_changes, impact) through the store, then
        write it into proposal.md."""
        if section not in SECTIONS:
            raise ValidationError(f"section must be one of {', '.join(SECTIONS)}")
        change = _change_id(change)
        # A body the file could not hold (a header, an unclosed fence) is refused now, not
        # left in the store as a sync error of every later sync.
        set_section("", SECTIONS[section], body)
        changes = self.store.collection(CHANGES)
        with self.store.locked():
            if changes.get(change) is None:
                raise NotFoundError(f"no OpenSpec change {change!r} in the store")
            clean = self._store_clean()
            changes.put({"id": change, section: body}, merge=True)
            return self._sync_after_edit(change, trigger, clean)

    def _store_clean(self) -> bool:
        """No record written since the last sync that knew them all."""
        return lastsync.store_signature(self.store.path) == lastsync.load(self.store.path).get(
            "store"
        )

    def _sync_after_edit(self, change: str, trigger: str, clean: bool) -> ChangeResult:
        """Sync the change just edited through the store (lock held); when the store was
        clean before that edit, it is clean again after this sync of that change."""
        self._assume_clean = clean
        try:
            return self.sync(change, trigger=trigger).changes[0]
        finally:
            self._assume_clean = False

    def sync(
        self,
        change: str | None = None,
        *,
        direction: str | None = None,
        winner: str | None = None,
        trigger: str = "manual",
        dry_run: bool = False,
        only: Iterable[str] | None = None,
    ) -> SyncReport:
        """Sync one change, the changes in ``only``, or all; ``direction`` limits it to one
        way ("files_to_store" or "store_to_files"); ``winner`` settles conflicts."""
        if direction is not None and direction not in DIRECTIONS:
            raise ValidationError(f"direction must be one of {', '.join(DIRECTIONS)}")
        if trigger not in TRIGGERS:
            raise ValidationError(f"trigger must be one of {', '.join(TRIGGERS)}")
        wanted = None if change is None else {_change_id(change)}
        if only is not None:
            wanted = (wanted or set()) | set(only)
        with self.store.locked():
            roots = lastsync.root_stats(self.top, self.config.roots)
            folders, skipped, missing = scan(self.top, self.config.roots)
            by_id = {f.change: f for f in folders}
            records = {
                r["id"]: trusted_change(r)
                for r in self.store.collection(CHANGES).list()
                if wanted is None or r["id"] in wanted
            }
            ids = sorted(set(by_id if wanted is None else wanted & set(by_id)) | set(records))
            if change is not None and not ids:
                raise NotFoundError(
                    f"no OpenSpec change {change!r} under {', '.join(self.config.roots)}"
                )
            tasks = self._tasks_by_change(None if wanted is None else ids)
            run = SyncRun(self, trigger, direction, winner, dry_run, missing)
            run.store_was_clean = run.store_was_clean or self._assume_clean
            with contextlib.nullcontext() if dry_run else self.store.batch():
                for change_id in ids:
                    run.change(
                        change_id,
                        by_id.get(change_id),
                        records.get(change_id),
                        tasks.get(change_id, {}),
                    )
                if not dry_run:
                    run.flush_history()
            if not dry_run:
                run.seen["roots"] = lastsync.jsonable(roots)
                run.seen["skipped"] = lastsync.jsonable(
                    lastsync.folder_stats(self.top, [s.folder for s in skipped])
                )
                run.seen["folders"] = {f.change: f.folder for f in folders}
                run.save_lastsync(wanted is None and direction is None)
        return SyncReport(run.results, skipped, missing)

    def _tasks_by_change(self, ids: list[str] | None) -> dict[str, dict[str, dict[str, Any]]]:
        collection = self.store.collection(TASKS)
        if ids is not None and len(ids) <= 8:
            rows = [r for i in ids for r in collection.list([Filter("change", Op.EQ, i)])]
        else:
            rows = collection.list()
        grouped: dict[str, dict[str, dict[str, Any]]] = {}
        for row in rows:
            task = trusted_task(row)
            if task is not None:
                grouped.setdefault(task["change"], {})[task["key"]] = task
        return grouped

    # --- the sweep -------------------------------------------------------------------------

    def changed_since_last_sync(self) -> list[str]:
        """Changes whose files or folders moved (by lstat) since their last sync, or whose
        records the store changed since: what a periodic sweep syncs. Nothing is listed
        where no folder moved (see lastsync.py): one lstat per file and per folder."""
        last = lastsync.load(self.store.path)
        changed = lastsync.moved(self.top, self.config.roots, last)
        if lastsync.store_signature(self.store.path) != last.get("store"):
            changed += [c for c in self._store_edited() if c not in changed]
        return sorted(set(changed))

    def needs_sync(self) -> bool:
        """Whether a file or the store's OpenSpec records changed since the last sync of
        every change: what the git hooks ask."""
        return lastsync.needs_sync(self.store.path, self.top, self.config.roots)

    def _store_edited(self) -> list[str]:
        edited = set()
        for change, units in self._tasks_by_change(None).items():
            for record in units.values():
                if task_value(record) != record.get("synced"):
                    edited.add(change)
                    break
        for record in map(trusted_change, self.store.collection(CHANGES).list()):
            synced = record["synced"]
            if any(section_value(record.get(f)) != section_value(synced.get(f)) for f in SECTIONS):
                edited.add(record["id"])
        return sorted(edited)


def _change_id(change: str) -> str:
    return names.validate_id(change.strip() if isinstance(change, str) else change)


def _ignore_local_files(store_dir: str) -> None:
    from ..layout import ensure_gitignore

    ensure_gitignore(store_dir)
