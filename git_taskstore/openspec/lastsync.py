"""What changed since the last OpenSpec sync, told by stat alone (no parse, no store).

The untracked ``.taskstore/openspec.state`` keeps, from the last sync, the stat of every
file it read, the (mtime, inode) of every folder it listed (each change folder, its
``specs/`` folders, each root's ``changes/`` and ``changes/archive/``) and of the store's
OpenSpec files. A file added, removed or renamed moves its folder's mtime; an edit in
place moves the file's. So a sweep, and the git hooks on every commit, stat what they
know and list nothing unless something moved. Light on purpose: the hooks import it
before they decide whether to open the store at all.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys

from . import CHANGES, TASKS

TYPE_CHECKING = False  # typing costs a hook 4 ms; mypy reads it the same
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

STATE_NAME = "openspec.state"
# A file or folder changed this close before a sync may change again within the same
# mtime (and size): read again, as git treats a file changed in the second it indexed it.
RACY_NS = 2_000_000_000
ARCHIVE = "archive"


def loads(data: bytes) -> Any:
    """JSON, parsed by orjson in a process that has it, else by the standard library.

    PERF: importing orjson costs a hook 14 ms (it pulls in dataclasses), json 2 ms; the
    hooks read the state and the settings on every commit and checkout. Raises ValueError.
    """
    fast = sys.modules.get("orjson")
    if fast is not None:
        return fast.loads(data)
    import json

    return json.loads(data)


def load(store_dir: str) -> dict[str, Any]:
    """The state of the last sync; empty when there is none (or it is not the store's)."""
    path = os.path.join(store_dir, STATE_NAME)
    if os.path.islink(path):
        return {}
    try:
        with open(path, "rb") as handle:
            data = loads(handle.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save(store_dir: str, state: dict[str, Any]) -> None:
    """Keep the state; a failure only costs the next sweep a listing."""
    import orjson

    from ..files import atomic_write

    with contextlib.suppress(OSError):
        path = os.path.join(store_dir, STATE_NAME)
        if os.path.islink(path):
            os.unlink(path)
        atomic_write(path, orjson.dumps(state))


def jsonable(stats: dict[str, Any]) -> dict[str, Any]:
    """Stats as the state file gives them back: tuples become lists."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in stats.items()}


def settled(stats: Iterable[Any], before_ns: int) -> bool:
    """No folder of these changed so close to the last sync that a later change could
    share its mtime."""
    return all(s is None or s[0] < before_ns for s in stats)


def store_signature(store_dir: str) -> list[Any]:
    """The stat of the store's OpenSpec files: moved, a record may have been edited."""
    found: list[Any] = []
    for name in (CHANGES, TASKS):
        try:
            info = os.stat(os.path.join(store_dir, f"{name}.jsonl"))
            found.append([name, info.st_mtime_ns, info.st_size, info.st_ino])
        except OSError:
            found.append([name, None])
    return found


def lstat_or_none(path: str) -> os.stat_result | None:
    """os.lstat, or None for a path that is not there."""
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def stat_files(top: str, folder: str, names: Iterable[str]) -> dict[str, tuple[int, int, int]]:
    """One lstat per file: (mtime_ns, size, inode)."""
    stats = {}
    base = f"{top}/{folder}/"
    for name in names:
        found = lstat_or_none(base + name)
        if found is not None:
            stats[name] = (found.st_mtime_ns, found.st_size, found.st_ino)
    return stats


def stat_dirs(top: str, folder: str, rels: Iterable[str]) -> dict[str, tuple[int, int]]:
    """(mtime_ns, inode) of the folders named (``.`` is the change folder itself)."""
    stats = {}
    for rel in rels:
        found = lstat_or_none(f"{top}/{folder}" if rel == "." else f"{top}/{folder}/{rel}")
        if found is not None and stat.S_ISDIR(found.st_mode):
            stats[rel] = (found.st_mtime_ns, found.st_ino)
    return stats


def folder_stats(top: str, folders: Iterable[str]) -> dict[str, tuple[int, int] | None]:
    """(mtime_ns, inode) of folders given from the top (None: gone or not a folder)."""
    stats: dict[str, tuple[int, int] | None] = {}
    for rel in folders:
        found = lstat_or_none(f"{top}/{rel}")
        ok = found is not None and stat.S_ISDIR(found.st_mode)
        stats[rel] = (found.st_mtime_ns, found.st_ino) if ok and found else None
    return stats


def root_stats(top: str, roots: Iterable[str]) -> dict[str, tuple[int, int] | None]:
    """(mtime_ns, inode) of each root's changes/ and changes/archive/: unmoved, the set of
    change folders is what the last scan found."""
    return folder_stats(top, [f"{r}/changes{tail}" for r in roots for tail in ("", "/archive")])


def moved(top: str, roots: list[str], state: dict[str, Any]) -> list[str]:
    """The changes whose files or folders moved since the state was saved (new and
    vanished changes included; none are called vanished while a root is missing)."""
    fresh_before = int(state.get("saved_at") or 0) - RACY_NS
    now_roots = root_stats(top, roots)
    # A folder the last scan skipped (empty, say) may have become a change since.
    skipped = folder_stats(top, state.get("skipped") or {})
    listed = {**now_roots, **skipped}
    if (
        state.get("roots") == jsonable(now_roots)
        and state.get("skipped", {}) == jsonable(skipped)
        and settled(listed.values(), fresh_before)
    ):
        folders: dict[str, str] = dict(state.get("folders") or {})
        missing = [r for r in roots if now_roots.get(f"{r}/changes") is None]
    else:
        from .folders import scan  # what is there now, listed

        found, _, missing = scan(top, roots)
        folders = {f.change: f.folder for f in found}
    seen = state.get("files") or {}
    changed = []
    for change, folder in folders.items():
        entry = seen.get(change)
        if not isinstance(entry, dict) or entry.get("folder") != folder:
            changed.append(change)
            continue
        dirs, files = entry.get("dirs"), entry.get("files") or {}
        if dirs is None:  # the sync wrote into the folder itself: listed again
            changed.append(change)
            continue
        now_dirs = stat_dirs(top, folder, dirs)
        now_files = stat_files(top, folder, files)
        if (
            jsonable(now_dirs) != dirs
            or jsonable(now_files) != files
            or not settled(now_dirs.values(), fresh_before)
            or not settled(now_files.values(), fresh_before)
        ):
            changed.append(change)
    if not missing:
        changed += [c for c in seen if c not in folders]
    return changed


def needs_sync(store_dir: str, top: str, roots: list[str]) -> bool:
    """Whether a file or the store's OpenSpec records changed since the last sync of
    every change: what the git hooks ask before they open the store."""
    state = load(store_dir)
    return store_signature(store_dir) != state.get("store") or bool(moved(top, roots, state))
