"""Maintenance of a store: compaction, checks, status, backup and import.

Functions of a :class:`Store`, kept apart so store.py stays the read/write core.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import jsonl
from .errors import ConflictMarkersError, NotFoundError, StorePathError, ValidationError
from .paths import UNTRACKED_NAMES, display_path

if TYPE_CHECKING:
    from .store import Store


@dataclass(frozen=True)
class Problem:
    """One finding of check(): a file, a 1-based line (0: the whole file), a message."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class CollectionStatus:
    name: str
    records: int
    deleted: int
    freshness: str  # fresh, stale, new, deleted, conflict; pending: debounced writes, no file yet
    bad_lines: int
    file_bytes: int
    lines: int


@dataclass
class CompactResult:
    collection: str
    lines_before: int
    lines_after: int
    bad_lines_kept: int


@dataclass
class ImportResult:
    written: int = 0
    skipped: int = 0  # the store already held that version or a newer one
    collections: dict[str, int] = field(default_factory=dict)


def compact(store: Store, collection: str | None = None) -> list[CompactResult]:
    """Rewrite files to their current versions (tombstones and bad lines kept), atomically."""
    names = [jsonl.validate_collection(collection)] if collection else store.collections()
    if collection and not os.path.exists(store.file_path(collection)):
        raise NotFoundError(f"no collection {collection!r} in {display_path(store.path)}")

    def run() -> list[CompactResult]:
        results = []
        with store.locked():
            for name in names:
                results.append(_compact_one(store, name))
        return results

    return store._guarded(run)


def _compact_one(store: Store, name: str) -> CompactResult:
    path = store.file_path(name)
    with open(path, "rb") as handle:
        data = handle.read()
    marker = jsonl.conflict_marker_line(data)
    if marker is not None:
        raise ConflictMarkersError(display_path(path), marker)
    winners, bad = jsonl.reduce_lines(data)
    raw_lines = data.split(b"\n")
    # Bad lines are kept where they were: compaction never drops what it cannot read.
    # # each id's current line goes where the id first appeared, not where its current
    # version was. The store's order (list() unsorted, export) is first appearance; keyed
    # on w.line, compaction moved every updated record to the end of that order.
    keep = sorted(
        [(w.first_line, w.raw) for w in winners.values()]
        + [(b.line, raw_lines[b.line - 1]) for b in bad]
    )
    out = b"".join(raw + b"\n" for _, raw in keep)
    lines_before = sum(1 for line in raw_lines if line.strip())
    if out != data:
        jsonl.atomic_write(path, out)
    store._cache.sync(name, path, full=True)
    return CompactResult(name, lines_before, len(keep), len(bad))


def check(store: Store, *, quick: bool = False) -> list[Problem]:
    """Validate every JSONL file and the cache; an empty list means all is well.

    ``quick`` (the pre-push hook) does not read again a file the cache read whole without
    a bad line and that has not changed since (its stat, outside the racy window), and
    leaves out the cache's own integrity check: a push sends the files, not the cache.
    """

    def run() -> list[Problem]:
        problems: list[Problem] = []
        with os.scandir(store.path) as entries:
            for entry in entries:
                if entry.name.endswith(jsonl.SUFFIX) and not jsonl.COLLECTION_RE.fullmatch(
                    entry.name[: -len(jsonl.SUFFIX)]
                ):
                    problems.append(
                        Problem(
                            display_path(entry.path),
                            0,
                            "not a valid collection name; file ignored",
                        )
                    )
        bodies = _body_collections()
        for name in store.collections():
            if quick and _read_clean(store, name):
                file_problems = []
            else:
                file_problems = check_file(store.file_path(name))
            problems.extend(file_problems)
            if name in bodies and not any(
                p.message.startswith(jsonl.MARKER) for p in file_problems
            ):
                problems.extend(_missing_bodies(store, name))
        for problem in () if quick else store._cache.integrity_problems():
            problems.append(
                Problem(
                    display_path(store._cache.path),
                    0,
                    f"cache: {problem} (delete it; it is rebuilt)",
                )
            )
        return problems

    return store._guarded(run)


def _read_clean(store: Store, collection: str) -> bool:
    needed, state = store._cache.needs_sync(collection, store.file_path(collection))
    return not needed and state is not None and not state.bad_lines and not state.conflict_line


def _body_collections() -> set[str]:
    """The collections whose records name a markdown body in ``file``: PRDs and task specs.
    (A field ``file`` of another collection is the user's own: asked of every collection,
    a path into the repository was reported as a missing body, and a collection of 100,000
    records without the field cost the pre-push hook a 60 ms scan.)"""
    from .models import PRD, TaskSpec

    return {PRD.collection(), TaskSpec.collection()}


def _missing_bodies(store: Store, collection: str) -> list[Problem]:
    """Records whose ``file`` field names a body file that is not there."""
    from .records import Filter, Op

    problems = []
    for record in store.collection(collection).list([Filter("file", Op.NE, None)]):
        relative = record["file"]
        if isinstance(relative, str) and not os.path.exists(os.path.join(store.path, relative)):
            problems.append(
                Problem(
                    display_path(store.file_path(collection)),
                    0,
                    f"{record['id']}: its body file {relative} is missing "
                    "(restore it from git, or write it again)",
                )
            )
    return problems


def status(store: Store) -> list[CollectionStatus]:
    """Per collection: records, freshness and file size, without syncing first."""

    def run() -> list[CollectionStatus]:
        out = []
        pending = store._cache.pending_counts()
        names = sorted(
            set(store.collections()) | set(store._cache.cached_collections()) | set(pending)
        )
        for name in names:
            path = store.file_path(name)
            freshness = store._cache.freshness(name, path)
            if freshness == "absent" and name in pending:
                freshness = "pending"
            live, deleted = store._cache.counts(name)
            state = store._cache.file_state(name)
            size = os.path.getsize(path) if os.path.exists(path) else 0
            out.append(
                CollectionStatus(
                    name,
                    live,
                    deleted,
                    freshness,
                    state.bad_lines if state else 0,
                    size,
                    state.lines if state else 0,
                )
            )
        return out

    return store._guarded(run)


def backup(store: Store, dest: str | os.PathLike[str]) -> list[str]:
    """Copy the store's tracked files (not the cache) into a new folder; return them."""
    dest = os.path.abspath(os.fspath(dest))
    if os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise StorePathError(
            f"{display_path(dest)} exists and is not an empty folder: choose a new path"
        )

    def run() -> list[str]:
        copied: list[str] = []
        with store.locked():
            # Copied beside DEST, then renamed: a backup is there whole or not at all.
            parent = os.path.dirname(dest)
            os.makedirs(parent, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix="." + os.path.basename(dest) + ".", dir=parent)
            try:
                copied.extend(_copy_tracked(store.path, tmp))
                if os.path.isdir(dest):
                    os.rmdir(dest)
                os.replace(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return copied

    return store._guarded(run)


def _copy_tracked(src: str, dst: str) -> list[str]:
    """Copy a store folder's tracked files (not the cache, lock or temp files)."""
    copied = []
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel_root = os.path.relpath(root, src)
        os.makedirs(os.path.join(dst, rel_root), exist_ok=True)
        for name in sorted(files):
            if name in UNTRACKED_NAMES or name.endswith(".tmp"):
                continue
            rel = os.path.normpath(os.path.join(rel_root, name))
            shutil.copy2(os.path.join(root, name), os.path.join(dst, rel))
            copied.append(rel)
    return copied


def import_data(store: Store, data: dict[str, list[dict[str, Any]]]) -> ImportResult:
    """Write records keeping their timestamps; a record is skipped where the store
    already holds that version or a newer one (the same newest-wins rule as merges).

    Everything is validated before the first write.
    """
    if not isinstance(data, dict):
        raise ValidationError("import data must map collection names to lists of records")
    for name, records in data.items():
        jsonl.validate_collection(name)
        if not isinstance(records, list):
            raise ValidationError(f"{name}: expected a list of records")
        store._request(name, "import", records)
    result = ImportResult()
    for name, records in data.items():
        written = store._write(name, records, "import")
        result.written += len(written)
        result.skipped += len(records) - len(written)
        result.collections[name] = len(written)
    return result


def check_file(path: str) -> list[Problem]:
    """Every problem of one JSONL file: conflict markers, lines that are not records."""
    with open(path, "rb") as handle:
        return problems_in(display_path(path), handle.read())


def problems_in(shown: str, data: bytes) -> list[Problem]:
    """The problems of JSONL text (a file, or a blob staged for a commit)."""
    problems = []
    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        parsed = jsonl.parse_line(line)
        if parsed == jsonl.MARKER:
            problems.append(
                Problem(
                    shown,
                    number,
                    f"{jsonl.MARKER}: run `git taskstore resolve {shown}` "
                    "(or edit the file), then `git add` it",
                )
            )
        elif isinstance(parsed, str):
            problems.append(Problem(shown, number, parsed))
    return problems
