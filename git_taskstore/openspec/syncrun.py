"""One sync over several OpenSpec changes: the three-way rule per unit, the writes into
the files and the records, the history, and what the last sync saw.

Each unit the store can edit (a task's done flag and text; a proposal section) has three
values: the file's (F), the store's (S), and the base (B), the file's value when the two
were last in sync, kept in the unit's record (``synced``) so that it travels with git.

- F == S: in sync (the base is brought up to it);
- only F moved from B: the file's value goes into the store;
- only S moved from B: the store's value is written into the file;
- both moved, to different values: a conflict, recorded on the change and in the history;
  neither side is overwritten until a winner is named.

A sync writes the files first and the records after: a crash between the two leaves
F == S, which the next sync takes as in sync. Everything else a change record shows
(title, status, deltas, counts, hashes) follows the files.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from .. import names
from ..errors import ValidationError
from ..ids import new_id
from . import lastsync
from .edit import set_section, set_task
from .folders import (
    BACKUPS_NAME,
    ChangeFolder,
    FolderError,
    Skipped,
    Snapshot,
    dir_stats,
    file_names,
    read_change,
    replace_file,
)
from .mirror import (
    CHANGES,
    FILES,
    HISTORY,
    SECTIONS,
    TASKS,
    Parsed,
    file_record,
    parse_change,
    task_id,
    task_record,
)
from .parse import OpenSpecParseError, parse_tasks

if TYPE_CHECKING:
    from .service import OpenSpecSync

SAME, TO_STORE, TO_FILES, CONFLICT = "same", "to_store", "to_files", "conflict"
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)+[A-Za-z]*")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class ChangeResult:
    """What a sync did (or, for status, would do) to one change."""

    change: str
    folder: str | None
    state: str = "in_sync"  # in_sync | files_changed | store_changed | both_changed |
    # conflict | error | deleted
    to_store: list[str] = field(default_factory=list)  # units the files gave the store
    to_files: list[str] = field(default_factory=list)  # units the store gave the files
    files_written: list[str] = field(default_factory=list)  # paths, relative to the top
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    resolved: list[dict[str, Any]] = field(default_factory=list)  # conflicts a winner settled
    error: str | None = None
    transient: bool = False
    synced_at: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "change": self.change,
            "folder": self.folder,
            "state": self.state,
            "to_store": self.to_store,
            "to_files": self.to_files,
            "files_written": self.files_written,
            "conflicts": self.conflicts,
            "resolved": self.resolved,
            "error": self.error,
            "synced_at": self.synced_at,
        }


@dataclass
class SyncReport:
    """Every change a sync looked at, plus the folders it skipped and roots it missed."""

    changes: list[ChangeResult]
    skipped: list[Skipped]
    missing_roots: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "changes": [c.to_dict() for c in self.changes],
            "skipped": [{"folder": s.folder, "reason": s.reason} for s in self.skipped],
            "missing_roots": self.missing_roots,
        }


def decide(f: object, s: object, b: object, winner: str | None = None) -> str:
    """The three-way rule of one unit; ``winner`` ("files"/"store") settles a conflict."""
    if f == s:
        return SAME
    if s == b:
        return TO_STORE
    if f == b:
        return TO_FILES
    if winner == "files":
        return TO_STORE
    if winner == "store":
        return TO_FILES
    return CONFLICT


def task_value(record: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if record is None else {"done": record.get("done"), "text": record.get("text")}


def section_value(value: object) -> object:
    # An empty section and a missing one are the same to OpenSpec (and to set_section).
    return None if value in ("", None) else value


def trusted_change(record: dict[str, Any]) -> dict[str, Any]:
    """A change record as the sync may rely on it. Records arrive through git, from
    strangers: a field of the wrong type reads as absent (the sync rewrites it), and a
    file name that could not be a record id of this change is dropped."""
    record = dict(record)
    for name in ("synced", "hashes"):
        if not isinstance(record.get(name), dict):
            record[name] = {}
    record["hashes"] = {
        n: h for n, h in record["hashes"].items() if _valid_id(f"{record['id']}/{n}")
    }
    if not isinstance(record.get("conflicts"), list):
        record["conflicts"] = []
    return record


def trusted_task(record: dict[str, Any]) -> dict[str, Any] | None:
    """A task record the sync may rely on, or None for one that is not the sync's own: its
    id must be ``<change>/<key>`` of its own fields; a base of the wrong shape reads as
    none (never synced)."""
    change, key = record.get("change"), record.get("key")
    if not isinstance(change, str) or not isinstance(key, str):
        return None
    if record.get("id") != task_id(change, key):
        return None
    synced = record.get("synced")
    if not (isinstance(synced, dict) and set(synced) == {"done", "text"}):
        record = {**record, "synced": None}
    return record


def _valid_id(record_id: str) -> bool:
    try:
        names.validate_id(record_id)
    except ValidationError:
        return False
    return True


def check_task_value(key: str, value: dict[str, Any]) -> str | None:
    done, text = value["done"], value["text"]
    if not isinstance(done, bool):
        return f"task {key}: done is {done!r}; set it to true or false"
    if not isinstance(text, str) or not text.strip() or "\n" in text or "\r" in text:
        return f"task {key}: its text must be one non-empty line"
    if _NUMBER.fullmatch(key):  # a numbered task keeps its number (its key)
        parsed = parse_tasks(f"- [ ] {text.strip()}")
        if not parsed or parsed[0].number != key:
            return (
                f"task {key}: the new text {text!r} does not start with its number {key}; "
                "renumber tasks in tasks.md itself"
            )
    return None


class SyncRun:
    """One sync over several changes: the writes it holds and the history it adds."""

    def __init__(
        self,
        service: OpenSpecSync,
        trigger: str,
        direction: str | None,
        winner: str | None,
        dry_run: bool,
        missing_roots: list[str],
    ) -> None:
        self.service = service
        self.store = service.store
        self.top = service.top
        self.trigger = trigger
        self.direction = direction
        self.winner = winner
        self.dry_run = dry_run
        self.missing_roots = missing_roots
        self.results: list[ChangeResult] = []
        self.history: list[dict[str, Any]] = []
        self.seen = lastsync.load(self.store.path)
        # No record written since the last sync that knew them all (under the lock).
        self.store_was_clean = lastsync.store_signature(self.store.path) == self.seen.get("store")
        self.now = now_ms()
        # History ids sort in the order written: time-ordered across runs, a counter within.
        self.id_base = new_id("sync-")

    # One change --------------------------------------------------------------------------

    def change(
        self,
        change: str,
        where: ChangeFolder | None,
        record: dict[str, Any] | None,
        tasks: dict[str, dict[str, Any]],
    ) -> None:
        if where is None:
            if record is None:
                return
            self._gone(change, record, tasks)
            return
        attempts = 0 if self.dry_run else self.service.retries
        for attempt in range(attempts + 1):
            result = ChangeResult(change, where.folder)
            try:
                self._sync(result, where, record, tasks)
            except (FolderError, OpenSpecParseError, ValidationError, OSError) as exc:
                # An OSError here is the disk's (full, read-only): told as this change's
                # error, as permission and vanished files are, and tried again.
                transient = (isinstance(exc, FolderError) and exc.transient) or isinstance(
                    exc, OSError
                )
                if isinstance(exc, OSError):
                    exc = FolderError(f"{where.folder}: {exc.strerror or exc}", transient=True)
                if transient and attempt < attempts:
                    time.sleep(self.service.backoff_s * 2**attempt)
                    continue
                # No record of this change was written, and no file unless a later one
                # failed (which leaves that file equal to the store: in sync next time).
                result.to_store, result.to_files, result.files_written = [], [], []
                result.state, result.error, result.transient = "error", str(exc), transient
                self._record_error(result, where, record)
                if transient:
                    self._forget(change)  # the next sweep tries again
                else:
                    self._remember_as_is(where)  # tried again once its files move
            break
        self.results.append(result)

    def _allowed(self, decision: str) -> bool:
        if decision == TO_STORE:
            return self.direction in (None, "files_to_store")
        if decision == TO_FILES:
            return self.direction in (None, "store_to_files")
        return True

    def _sync(
        self,
        result: ChangeResult,
        where: ChangeFolder,
        record: dict[str, Any] | None,
        tasks: dict[str, dict[str, Any]],
    ) -> None:
        dirs = dir_stats(self.top, where.folder)  # before the listing: see dir_stats
        snapshot = read_change(self.top, where.folder)
        parsed = parse_change(where, snapshot)
        synced = (record or {}).get("synced") or {}
        kept: set[str] = set()  # units left as they are in the store (conflict, pending)
        problems: list[str] = []
        task_edits: dict[str, dict[str, Any]] = {}
        section_edits: dict[str, Any] = {}
        moved = {"files": False, "store": False}

        for key in [*parsed.tasks, *(k for k in tasks if k not in parsed.tasks)]:
            in_file = parsed.tasks.get(key)
            f = None if in_file is None else {"done": in_file.done, "text": in_file.text}
            s = task_value(tasks.get(key))
            b = (tasks.get(key) or {}).get("synced")
            decision = self._decide(result, f"task {key}", f, s, b)
            if decision == TO_FILES and s is not None:
                problem = check_task_value(key, s)
                if problem:
                    problems.append(problem)
                    kept.add(f"task {key}")
                    continue
            self._note(result, f"task {key}", decision, f, s, b, kept, moved)
            if decision == TO_FILES and self._allowed(decision):
                task_edits[key] = s or {}
        for name, heading in SECTIONS.items():
            f_text = section_value(parsed.sections[name])
            s_text = section_value((record or {}).get(name))
            b_text = section_value(synced.get(name))
            decision = self._decide(result, f"section {heading}", f_text, s_text, b_text)
            if decision == TO_FILES and s_text is not None and not isinstance(s_text, str):
                problems.append(f"section {name}: should be text, not {type(s_text).__name__}")
                kept.add(f"section {heading}")
                continue
            self._note(result, f"section {heading}", decision, f_text, s_text, b_text, kept, moved)
            if decision == TO_FILES and self._allowed(decision):
                section_edits[heading] = s_text or ""

        result.state = _verdict(moved, result.conflicts, problems)
        if problems:
            result.error = "; ".join(problems)
        if self.dry_run:
            return
        texts = self._write_files(
            result, where, snapshot, parsed, task_edits, section_edits, set(tasks)
        )
        if texts is not snapshot:
            parsed = parse_change(where, texts)
        self._write_records(
            result,
            change_record=record,
            parsed=parsed,
            where=where,
            tasks=tasks,
            kept=kept,
            snapshot=texts,
        )
        if moved.get("held"):
            self._forget(where.change)  # the other direction is still to come
        else:
            after = self._dirs_after_writing(where, texts) if texts is not snapshot else dirs
            self._remember(where, texts, after)

    def _decide(self, result: ChangeResult, unit: str, f: object, s: object, b: object) -> str:
        decision = decide(f, s, b, self.winner)
        if decision in (TO_STORE, TO_FILES) and decide(f, s, b) == CONFLICT:
            # Settled by the winner: the losing value goes into the history.
            lost = s if decision == TO_STORE else f
            result.resolved.append({"unit": unit, "files": f, "store": s, "base": b, "lost": lost})
        return decision

    def _note(
        self,
        result: ChangeResult,
        unit: str,
        decision: str,
        f: object,
        s: object,
        b: object,
        kept: set[str],
        moved: dict[str, bool],
    ) -> None:
        if decision == SAME:
            return
        if decision == CONFLICT:
            result.conflicts.append({"unit": unit, "files": f, "store": s, "base": b})
            kept.add(unit)
            return
        if not self._allowed(decision):
            kept.add(unit)
            moved["files" if decision == TO_STORE else "store"] = True
            moved["held"] = True  # by the direction: for a later sync
            return
        moved["files" if decision == TO_STORE else "store"] = True
        (result.to_store if decision == TO_STORE else result.to_files).append(unit)

    def _write_files(
        self,
        result: ChangeResult,
        where: ChangeFolder,
        snapshot: Snapshot,
        parsed: Parsed,
        task_edits: dict[str, dict[str, Any]],
        section_edits: dict[str, Any],
        task_keys: set[str],
    ) -> Snapshot:
        """Apply the store's edits to the files; the snapshot of the files afterwards.
        ``task_keys``: the keys of the change's task records."""
        if not task_edits and not section_edits:
            return snapshot
        new_texts: dict[str, str] = {}
        if task_edits:
            text = snapshot.texts.get("tasks.md", "")
            appended = []
            # A file task of the same value that has no record of its own is this one,
            # appended by a sync killed before it wrote the records: not appended again.
            unclaimed = {(t.done, t.text) for k, t in parsed.tasks.items() if k not in task_keys}
            for key, value in task_edits.items():
                task = parsed.tasks.get(key)
                if task is None:
                    if (value["done"], value["text"]) not in unclaimed:
                        appended.append(f"- [{'x' if value['done'] else ' '}] {value['text']}")
                    continue
                text = set_task(
                    text,
                    task.position,
                    done=value["done"] if value["done"] != task.done else None,
                    new_text=value["text"] if value["text"] != task.text else None,
                )
            if appended:
                newline = "\r\n" if "\r\n" in text else "\n"
                if text and not text.endswith(("\n", "\r")):
                    text += newline
                text += newline.join(appended) + newline
            new_texts["tasks.md"] = text
        if section_edits:
            text = snapshot.texts.get("proposal.md", "")
            for heading, body in section_edits.items():
                text = set_section(text, heading, body)
            new_texts["proposal.md"] = text
        backups = os.path.join(self.store.path, BACKUPS_NAME)
        after = Snapshot(dict(snapshot.texts), dict(snapshot.raw), dict(snapshot.stats))
        # Every file's new bytes first: one that cannot be written (not UTF-8) stops the
        # change before any file is.
        encoded = {
            name: _encode(text, snapshot.raw.get(name), f"{where.folder}/{name}")
            for name, text in new_texts.items()
        }
        for name, data in encoded.items():
            text = new_texts[name]
            if data == snapshot.raw.get(name):
                continue
            info = replace_file(
                self.top,
                where.folder,
                name,
                snapshot.raw.get(name),
                data,
                backups,
                self.service.config.backups,
            )
            after.texts[name], after.raw[name], after.stats[name] = text, data, info
            result.files_written.append(f"{where.folder}/{name}")
        return after

    def _write_records(
        self,
        result: ChangeResult,
        *,
        change_record: dict[str, Any] | None,
        parsed: Parsed,
        where: ChangeFolder,
        tasks: dict[str, dict[str, Any]],
        kept: set[str],
        snapshot: Snapshot,
    ) -> None:
        change = result.change
        collection = self.store.collection(TASKS)
        for ordinal, (key, task) in enumerate(parsed.tasks.items(), 1):
            wanted = task_record(change, key, task, ordinal)
            current = tasks.get(key)
            if f"task {key}" in kept and current is not None:
                for name in ("done", "text", "synced"):
                    wanted[name] = current.get(name)
            if current is None or any(current.get(k) != v for k, v in wanted.items()):
                collection.put(wanted)
        for key in tasks:
            if key not in parsed.tasks and f"task {key}" not in kept:
                collection.delete(task_id(change, key))
        old = change_record or {}
        old_synced = old.get("synced") or {}
        wanted_change: dict[str, Any] = {"id": change, **parsed.fields}
        synced: dict[str, Any] = {}
        for name, heading in SECTIONS.items():
            if f"section {heading}" in kept:
                wanted_change[name] = old.get(name)
                synced[name] = old_synced.get(name)
            else:
                wanted_change[name] = parsed.sections[name]
                synced[name] = parsed.sections[name]
        wanted_change["synced"] = synced
        wanted_change["conflicts"] = result.conflicts
        wanted_change["sync_error"] = result.error
        wanted_change["store_changed_at"] = (
            self.now if result.to_files else old.get("store_changed_at")
        )
        wanted_change["synced_at"] = old.get("synced_at")
        if old.get("hashes") == parsed.fields["hashes"] and "files_changed_at" in old:
            # The same bytes with another mtime (a checkout, a clone): not a change, and
            # no write that would leave the store's files modified after every checkout.
            wanted_change["files_changed_at"] = old["files_changed_at"]
        # Files the store had another text of, not counting those this sync wrote.
        old_hashes = old.get("hashes") or {}
        written = {f"{where.folder}/{n}" for n in parsed.fields["hashes"]} & set(
            result.files_written
        )
        from_files = [
            f"{where.folder}/{n}"
            for n in sorted(set(old_hashes) | set(parsed.fields["hashes"]))
            if old_hashes.get(n) != parsed.fields["hashes"].get(n)
            and f"{where.folder}/{n}" not in written
        ]
        if from_files or result.to_store or result.to_files or change_record is None:
            wanted_change["synced_at"] = self.now
        if any(old.get(k) != v for k, v in wanted_change.items()):
            self.store.collection(CHANGES).put(wanted_change)
        result.synced_at = wanted_change["synced_at"]
        files = [f"{where.folder}/{n}" for n in sorted(snapshot.texts)]
        for name, digest in parsed.fields["hashes"].items():
            if old_hashes.get(name) != digest:
                self.store.collection(FILES).put(file_record(change, name, snapshot))
        for name in old_hashes:
            if name not in parsed.fields["hashes"]:
                self.store.collection(FILES).delete(f"{change}/{name}")
        if (from_files and self._allowed(TO_STORE)) or result.to_store:
            self._history(change, "files_to_store", True, None, from_files, result.to_store)
        if result.to_files:
            self._history(
                change, "store_to_files", True, None, result.files_written, result.to_files
            )
        if result.resolved:
            lost = orjson.dumps({c["unit"]: c["lost"] for c in result.resolved}).decode()
            self._history(
                change,
                "files_to_store" if self.winner == "files" else "store_to_files",
                True,
                f"resolved, the {self.winner} won; the other side had: {lost}",
                files,
                [c["unit"] for c in result.resolved],
            )
        if result.conflicts and result.conflicts != old.get("conflicts"):
            units = [c["unit"] for c in result.conflicts]
            self._history(
                change,
                self.direction or "both",
                False,
                f"conflict: {', '.join(units)} changed in the files and in the store",
                files,
                units,
            )
        if result.error and result.error != old.get("sync_error"):
            self._history(change, self.direction or "both", False, result.error, files, [])

    def _record_error(
        self, result: ChangeResult, where: ChangeFolder, record: dict[str, Any] | None
    ) -> None:
        if self.dry_run or (record is not None and record.get("sync_error") == result.error):
            return
        patch = {"id": result.change, "sync_error": result.error}
        if record is None:
            patch.update(root=where.root, folder=where.folder, status=None)
        self.store.collection(CHANGES).put(patch, merge=True)
        self._history(result.change, self.direction or "both", False, result.error, [], [])

    def _gone(self, change: str, record: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> None:
        root = record.get("root")
        if root in self.missing_roots or root not in self.service.config.roots:
            return  # a missing root is warned of and retried, never taken as deletions
        result = ChangeResult(change, record.get("folder"), state="deleted")
        self.results.append(result)
        if self.dry_run:
            return
        for key in tasks:
            self.store.collection(TASKS).delete(task_id(change, key))
        for name in record.get("hashes") or {}:
            self.store.collection(FILES).delete(f"{change}/{name}")
        self.store.collection(CHANGES).delete(change)
        lost = {k: task_value(t) for k, t in tasks.items() if task_value(t) != t.get("synced")}
        note = (
            None
            if not lost
            else f"folder deleted; store edits dropped: {orjson.dumps(lost).decode()}"
        )
        self._history(
            change, "files_to_store", True, note, [str(record.get("folder"))], ["deleted"]
        )
        self.seen.get("files", {}).pop(change, None)

    # History and what the last sync saw --------------------------------------------------

    def _history(
        self,
        change: str,
        direction: str,
        success: bool,
        error: str | None,
        files: list[str],
        units: list[str],
    ) -> None:
        self.history.append(
            {
                "id": f"{self.id_base}{len(self.history):04d}",
                "change": change,
                "direction": direction,
                "at": self.now,
                "success": success,
                "error": error,
                "files": files,
                "units": units,
                "trigger": self.trigger,
            }
        )

    def flush_history(self) -> None:
        if not self.history:
            return
        collection = self.store.collection(HISTORY)
        collection.put_many(self.history)
        limit = self.service.config.history_limit
        excess = collection.count() + len(self.history) - limit
        if excess > 0:
            for old in collection.list(sort="id", limit=excess):
                collection.delete(old["id"])

    def _remember(
        self, where: ChangeFolder, snapshot: Snapshot, dirs: dict[str, tuple[int, int]] | None
    ) -> None:
        self.seen.setdefault("files", {})[where.change] = {
            "folder": where.folder,
            "dirs": None if dirs is None else lastsync.jsonable(dirs),
            "files": {k: list(v) for k, v in sorted(snapshot.stats.items())},
        }

    def _dirs_after_writing(
        self, where: ChangeFolder, snapshot: Snapshot
    ) -> dict[str, tuple[int, int]] | None:
        """The folder's stats after this sync's own writes moved its mtime, if its files
        are still the ones this sync saw (stats first, then the listing: a file added
        after the stats moves them again); else None: listed again by the next sweep."""
        try:
            dirs = dir_stats(self.top, where.folder)
            same = file_names(self.top, where.folder) == sorted(
                snapshot.texts, key=lambda n: (n.startswith("specs/"), n)
            )
        except (OSError, FolderError):
            return None
        return dirs if same else None

    def _remember_as_is(self, where: ChangeFolder) -> None:
        """A change whose files cannot be synced as they are: not read again until one
        of them (or its folder) moves."""
        try:
            dirs = dir_stats(self.top, where.folder)
            names = file_names(self.top, where.folder)
        except (OSError, FolderError):
            self._forget(where.change)
            return
        stats = lastsync.stat_files(self.top, where.folder, names)
        self._remember(where, Snapshot(stats=stats), dirs)

    def _forget(self, change: str) -> None:
        self.seen.get("files", {}).pop(change, None)

    def save_lastsync(self, whole: bool) -> None:
        """Keep each synced file's stat, and the stat of the store's files when every
        record is known to be synced: after a sync of every change both ways, or after
        any sync when only this process wrote the store since the last such (under the
        lock, its writes applied). The sweep compares both to tell what changed since."""
        clean = whole or self.store_was_clean
        self.seen["store"] = lastsync.store_signature(self.store.path) if clean else None
        self.seen["saved_at"] = time.time_ns()
        lastsync.save(self.store.path, self.seen)


def _verdict(moved: dict[str, bool], conflicts: list[dict[str, Any]], problems: list[str]) -> str:
    if conflicts:
        return "conflict"
    if problems:
        return "error"
    if moved["files"] and moved["store"]:
        return "both_changed"
    if moved["files"]:
        return "files_changed"
    if moved["store"]:
        return "store_changed"
    return "in_sync"


def _encode(text: str, original: bytes | None, shown: str) -> bytes:
    """The edited text's bytes; a file that is not UTF-8 is never written (its bad bytes
    were read as U+FFFD, and writing them back would change them)."""
    if original is not None:
        try:
            original.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FolderError(
                f"{shown} is not valid UTF-8 (byte {exc.start}); the store does not write "
                "into it: fix its encoding"
            ) from None
    return text.encode("utf-8")
