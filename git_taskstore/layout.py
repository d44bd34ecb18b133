"""The store folder: making it, its schema version and migrations, its .gitignore, and
which of its files are collections.
"""

from __future__ import annotations

import contextlib
import os
import re
import time

from . import log, names
from .errors import StorePathError, StoreVersionError
from .files import atomic_write
from .paths import UNTRACKED_NAMES, VERSION_NAME, display_path

TYPE_CHECKING = False  # typing's import would double what a hook's probe costs
if TYPE_CHECKING:
    from collections.abc import Callable

# The schema version this release writes. Version 1 is the Rust crate's layout.
SCHEMA_VERSION = 1

# Migrations from version N to N+1, applied in order when an older store is opened.
# Version 0 is a store folder with no .version file (hand-made, or a pre-1 crate).
MIGRATIONS: dict[int, Callable[[str], None]] = {0: lambda store_dir: None}


class Listing:
    """The JSONL files of a store folder."""

    __slots__ = ("collections", "misnamed", "refused")

    def __init__(self, collections: list[str], misnamed: list[str], refused: list[str]) -> None:
        self.collections = collections  # collection names, sorted
        self.misnamed = misnamed  # paths of *.jsonl files whose name is not a collection name
        self.refused = refused  # paths of *.jsonl links, folders and devices: never followed


def list_files(store_dir: str) -> Listing:
    """The one scan of a store folder: its collections, and the files check reports."""
    found: list[str] = []
    misnamed: list[str] = []
    refused: list[str] = []
    with os.scandir(store_dir) as entries:
        for entry in entries:
            if not entry.name.endswith(names.SUFFIX):
                continue
            if not entry.is_file(follow_symlinks=False):
                refused.append(entry.path)
                continue
            name = entry.name[: -len(names.SUFFIX)]
            if names.COLLECTION_RE.fullmatch(name):
                found.append(name)
            else:
                misnamed.append(entry.path)
    return Listing(sorted(found), sorted(misnamed), sorted(refused))


def prepare(store_dir: str, *, create: bool) -> None:
    """Make sure ``store_dir`` is a store of this schema version: create it (if allowed),
    migrate an older one, refuse a newer one."""
    if os.path.exists(store_dir) and not os.path.isdir(store_dir):
        raise StorePathError(
            f"{display_path(store_dir)} is a file, not a store folder: "
            "move it away or choose another store with --store"
        )
    if not os.path.isdir(store_dir):
        if not create:
            raise StorePathError(
                f"no store at {display_path(store_dir)}: run `git taskstore init` first"
            )
        try:
            os.makedirs(store_dir, exist_ok=True)
        except OSError as exc:
            raise StorePathError(
                f"cannot create {display_path(store_dir)}: {exc.strerror}"
            ) from None
    if os.path.exists(os.path.join(store_dir, VERSION_NAME)):
        _migrate(store_dir, read_version(store_dir))
        return
    try:
        if list_files(store_dir).collections:
            _migrate(store_dir, 0)
        else:
            _write_version(store_dir)
        ensure_gitignore(store_dir)
    except OSError as exc:
        raise StorePathError(
            f"cannot make {display_path(store_dir)} a store ({exc.strerror}): "
            "choose a folder you can write with --store"
        ) from None


def read_version(store_dir: str) -> int:
    """The schema version in ``.version``; StoreVersionError if it holds no number."""
    path = os.path.join(store_dir, VERSION_NAME)
    if os.path.islink(path):  # it could name any file: its bytes would go into the error
        raise StoreVersionError(
            f"{display_path(path)} is a symbolic link, not the store's version file: "
            f"restore it from git (`git checkout -- {display_path(path)}`) or write "
            f"{SCHEMA_VERSION} into a file there"
        )
    try:
        with open(path, "rb") as handle:
            text = handle.read().strip()
    except OSError as exc:
        raise StoreVersionError(
            f"cannot read {display_path(path)} ({exc.strerror}): restore it from git "
            f"(`git checkout -- {display_path(path)}`) or write {SCHEMA_VERSION} into a file there"
        ) from None
    try:
        version = int(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        version = -1
    if version < 0:
        raise StoreVersionError(
            f"{display_path(path)} should hold a schema version number, found {text[:40]!r}: "
            f"restore it from git (`git checkout -- {display_path(path)}`) "
            f"or write {SCHEMA_VERSION}"
        )
    return version


# A temp file of files.atomic_write: ".<name>.<12 hex digits>.tmp".
_LEFTOVER = re.compile(r"\..+\.[0-9a-f]{12}\.tmp")
# A temp file younger than this may belong to a rewrite still running.
LEFTOVER_AGE_S = 60.0


def remove_leftovers(store_dir: str) -> list[str]:
    """Delete the temp files of rewrites killed part-way (lock held); return their names."""
    removed = []
    now = time.time()
    with os.scandir(store_dir) as entries:
        for entry in entries:
            if not _LEFTOVER.fullmatch(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                if now - entry.stat(follow_symlinks=False).st_mtime > LEFTOVER_AGE_S:
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return removed


def unlink_links(store_dir: str) -> None:
    """Remove symbolic links where the store keeps its own untracked files (the cache, its
    WAL, the lock, the owners' folder): one committed with `git add -f` would make SQLite
    or the lock write through it, outside the store. The names are the store's to manage."""
    for name in [n for n in UNTRACKED_NAMES if "*" not in n]:
        path = os.path.join(store_dir, name)
        if os.path.islink(path):
            with contextlib.suppress(OSError):
                os.unlink(path)
                log.warning(
                    "removed %s: a symbolic link where git-taskstore keeps its own file",
                    display_path(path),
                )


def ensure_gitignore(store_dir: str) -> bool:
    """Make the store's .gitignore list the cache and lock files; True if it changed."""
    path = os.path.join(store_dir, ".gitignore")
    current = ""
    if os.path.islink(path):
        # Never read through it: its target's bytes would land in the store, and in a
        # commit. The link is replaced with the store's own file.
        log.warning("%s was a symbolic link; replaced with the store's own", display_path(path))
    else:
        try:
            with open(path, "rb") as handle:
                current = handle.read().decode("utf-8", "replace")
        except FileNotFoundError:
            pass
    have = {line.strip() for line in current.splitlines()}
    missing = [line for line in UNTRACKED_NAMES if line not in have]
    if not missing and not os.path.islink(path):
        return False
    if current and not current.endswith("\n"):
        current += "\n"
    atomic_write(path, (current + "".join(line + "\n" for line in missing)).encode())
    return True


def _migrate(store_dir: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{display_path(store_dir)} holds schema version {version}, newer than the "
            f"{SCHEMA_VERSION} this release reads: upgrade git-taskstore "
            "(pip install -U git-taskstore)"
        )
    if version == SCHEMA_VERSION:
        return
    for step in range(version, SCHEMA_VERSION):
        MIGRATIONS[step](store_dir)
    _write_version(store_dir)
    log.info("migrated %s to schema version %d", display_path(store_dir), SCHEMA_VERSION)


def _write_version(store_dir: str) -> None:
    # No trailing newline, as the Rust crate writes it.
    atomic_write(os.path.join(store_dir, VERSION_NAME), str(SCHEMA_VERSION).encode())
