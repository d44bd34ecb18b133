"""Maintenance of a store: compaction, checks, status, backup and import.

Each works through the public API of the engine (or the store) it is given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import jsonl, layout, log, names, sync
from .errors import ConflictMarkersError, NotFoundError, StorePathError, ValidationError
from .files import atomic_write
from .paths import UNTRACKED_NAMES, display_path, is_inside
from .writes import make_request

if TYPE_CHECKING:
    from .engine import Engine
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


# A check of the records beyond the files' format (the task model's body files): given
# the store and the collections it holds, the problems it finds.
Check = Callable[["Store", Sequence[str]], list[Problem]]


def compact(engine: Engine, collection: str | None = None) -> list[CompactResult]:
    """Rewrite files to their current versions (tombstones and bad lines kept), atomically."""
    wanted = [names.validate_collection(collection)] if collection else engine.collections()
    if collection and not os.path.exists(engine.file_path(collection)):
        raise NotFoundError(f"no collection {collection!r} in {display_path(engine.path)}")

    def run() -> list[CompactResult]:
        with engine.locked():
            for name in layout.remove_leftovers(engine.path):
                log.info("removed %s, left by a rewrite that was killed", name)
            return [_compact_one(engine, name) for name in wanted]

    return engine.guarded(run)


def _compact_one(engine: Engine, name: str) -> CompactResult:
    path = engine.file_path(name)
    with open(path, "rb") as handle:
        data = handle.read()
    marker = jsonl.conflict_marker_line(data)
    if marker is not None:
        raise ConflictMarkersError(display_path(path), marker)
    winners, bad = jsonl.reduce_lines(data)
    raw_lines = data.split(b"\n")
    # Bad lines are kept where they were: compaction never drops what it cannot read.
    # Each id's current line goes where the id first appeared, which is the store's order
    # (list() unsorted, export), not where its current version was.
    keep = sorted(
        [(w.first_line, w.raw) for w in winners.values()]
        + [(b.line, raw_lines[b.line - 1]) for b in bad]
    )
    out = b"".join(raw + b"\n" for _, raw in keep)
    lines_before = sum(1 for line in raw_lines if line.strip())
    if out != data:
        atomic_write(path, out)
    sync.sync(engine.cache, name, path, full=True)
    return CompactResult(name, lines_before, len(keep), len(bad))


def check(store: Store, *, quick: bool = False, checks: Sequence[Check] = ()) -> list[Problem]:
    """Validate every JSONL file and the cache; an empty list means all is well.

    ``quick`` (the pre-push hook) does not read again a file the cache read whole without
    a bad line and that has not changed since (its stat, outside the racy window), and
    leaves out the cache's own integrity check: a push sends the files, not the cache.
    ``checks`` run on the collections whose file has no conflict markers.
    """
    engine = store.engine

    def run() -> list[Problem]:
        listing = layout.list_files(engine.path)
        problems = [
            Problem(display_path(path), 0, "not a valid collection name; file ignored")
            for path in listing.misnamed
        ] + [
            Problem(
                display_path(path),
                0,
                "a symbolic link, folder or device, not a file: never read or written; "
                "replace it with the file itself",
            )
            for path in listing.refused
        ]
        readable = []
        for name in listing.collections:
            if quick and _read_clean(engine, name):
                readable.append(name)
                continue
            found = check_file(engine.file_path(name))
            problems += found
            if not any(p.message.startswith(jsonl.MARKER) for p in found):
                readable.append(name)
        for extra in checks:
            problems += extra(store, readable)
        problems.sort(key=lambda problem: (problem.path, problem.line))
        if not quick:
            problems += [
                Problem(display_path(engine.db_path), 0, f"cache: {p} (delete it; it is rebuilt)")
                for p in engine.cache.integrity_problems()
            ]
        return problems

    return engine.guarded(run)


def _read_clean(engine: Engine, collection: str) -> bool:
    needed, state = sync.needs_sync(engine.cache, collection, engine.file_path(collection))
    return not needed and state is not None and not state.bad_lines and not state.conflict_line


def status(engine: Engine) -> list[CollectionStatus]:
    """Per collection: records, freshness and file size, without syncing first."""
    cache = engine.cache

    def run() -> list[CollectionStatus]:
        out = []
        pending = cache.pending_counts()
        names = sorted(set(engine.collections()) | set(cache.cached_collections()) | set(pending))
        for name in names:
            path = engine.file_path(name)
            freshness = sync.freshness(cache, name, path)
            if freshness == "absent" and name in pending:
                freshness = "pending"
            live, deleted = cache.counts(name)
            state = cache.file_state(name)
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

    return engine.guarded(run)


def backup(engine: Engine, dest: str | os.PathLike[str]) -> list[str]:
    """Copy the store's tracked files (not the cache) into a new folder; return them."""
    dest = os.path.abspath(os.fspath(dest))
    if is_inside(dest, engine.path):
        raise StorePathError(
            f"{display_path(dest)} is inside the store {display_path(engine.path)}: "
            "a backup there would be copied into itself and committed; choose a path outside"
        )
    if os.path.exists(dest) and (not os.path.isdir(dest) or os.listdir(dest)):
        raise StorePathError(
            f"{display_path(dest)} exists and is not an empty folder: choose a new path"
        )

    # Imported here: they cost every command's start-up a few ms, and only backups use them.
    import shutil
    import tempfile

    def run() -> list[str]:
        copied: list[str] = []
        with engine.locked():
            # Copied beside DEST, then renamed: a backup is there whole or not at all.
            parent = os.path.dirname(dest)
            os.makedirs(parent, exist_ok=True)
            tmp = tempfile.mkdtemp(prefix="." + os.path.basename(dest) + ".", dir=parent)
            try:
                copied.extend(_copy_tracked(engine.path, tmp))
                if os.path.isdir(dest):
                    os.rmdir(dest)
                os.replace(tmp, dest)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return copied

    return engine.guarded(run)


def _copy_tracked(src: str, dst: str) -> list[str]:
    """Copy a store folder's tracked files (not the cache, lock or temp files)."""
    import shutil

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
        names.validate_collection(name)
        if not isinstance(records, list):
            raise ValidationError(f"{name}: expected a list of records")
        make_request(name, "import", records, 0)  # validated before the first write
    result = ImportResult()
    for name, records in data.items():
        written = store.collection(name).import_many(records)
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
