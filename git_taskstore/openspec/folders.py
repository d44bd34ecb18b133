"""OpenSpec change folders on disk: finding them, reading them, replacing one of their files.

Everything here arrives through git, from strangers: no link is followed (a folder or a
file that is a symbolic link is refused), no path leaves the work tree, files over
:data:`MAX_FILE_BYTES` are refused, and a replaced file is written atomically (temp file
and rename) after a copy of the old one is kept under the store's untracked backups.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
from dataclasses import dataclass, field

from ..errors import TaskstoreError
from ..files import atomic_write
from . import MARKDOWN
from .lastsync import ARCHIVE, lstat_or_none

# OpenSpec's own rule for a change id (`openspec new change` refuses any other).
CHANGE_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# `openspec archive` moves a change to archive/YYYY-MM-DD-<id>.
ARCHIVED = re.compile(r"(\d{4}-\d{2}-\d{2})-(.+)")
# What makes a folder a change: any of these (`openspec new change` writes the last).
CHANGE_MARKS = (*MARKDOWN, "specs", ".openspec.yaml")
MAX_FILE_BYTES = 1 << 20  # OpenSpec files are pages of prose; 1 MiB is far beyond one
MAX_SPEC_FILES = 200
BACKUPS_NAME = "openspec-backups"  # in the store: copies of the files a sync replaced
MAX_SPEC_DEPTH = 16  # folders under specs/: OpenSpec's capabilities nest one or two deep


class FolderError(TaskstoreError):
    """A change folder or one of its files cannot be used; the message says why and what to do."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        # A file vanished or was replaced mid-read, or permission was denied: worth retrying.
        self.transient = transient


@dataclass(frozen=True)
class ChangeFolder:
    """Where a change lives: its id, its folder relative to the top, and whether archived."""

    change: str
    root: str  # the OpenSpec root it belongs to, relative to the top ("openspec")
    folder: str  # relative to the top, "/"-separated
    archived_on: str | None  # "YYYY-MM-DD" for a folder under changes/archive/


@dataclass(frozen=True)
class Skipped:
    """A folder under changes/ that is not synced, and why."""

    folder: str  # as it can be shown: bytes that are not UTF-8 escaped
    reason: str

    def __post_init__(self) -> None:
        shown = self.folder.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        object.__setattr__(self, "folder", shown)


@dataclass
class Snapshot:
    """The files of one change folder as read: relative name -> text, and their stats."""

    texts: dict[str, str] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    stats: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # mtime_ns, size, ino

    def digest(self, name: str) -> str:
        return hashlib.sha1(self.raw[name]).hexdigest()

    def newest_mtime_ms(self) -> int:
        return max((s[0] for s in self.stats.values()), default=0) // 1_000_000


def plain_dir(top: str, rel: str) -> bool:
    """Whether every component of ``rel`` under ``top`` is a real folder, no link among them."""
    path = top
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            return False
        path = os.path.join(path, part)
        found = lstat_or_none(path)
        if found is None or not stat.S_ISDIR(found.st_mode):
            return False
    return True


def scan(top: str, roots: list[str]) -> tuple[list[ChangeFolder], list[Skipped], list[str]]:
    """Every change folder under the roots; folders that are not synced; missing roots.

    An active change and an archived one with the same id: the active one is the change.
    """
    found: dict[str, ChangeFolder] = {}
    skipped: list[Skipped] = []
    missing: list[str] = []
    for root in roots:
        changes = f"{root}/changes"
        if not plain_dir(top, changes):
            missing.append(root)
            continue
        for folder in _list_dir(top, changes, skipped):
            _add(found, skipped, folder)
        archive = f"{changes}/{ARCHIVE}"
        if plain_dir(top, archive):
            for folder in _list_dir(top, archive, skipped, archived=True):
                _add(found, skipped, folder)
    return sorted(found.values(), key=lambda f: f.change), skipped, missing


def _add(found: dict[str, ChangeFolder], skipped: list[Skipped], folder: ChangeFolder) -> None:
    other = found.get(folder.change)
    if other is None:
        found[folder.change] = folder
        return
    if other.archived_on is not None and folder.archived_on is None:
        found[folder.change] = folder
        other, folder = folder, other
    # Archived twice: the newer archive is the change.
    if (
        folder.archived_on is not None
        and other.archived_on is not None
        and folder.archived_on > other.archived_on
    ):
        found[folder.change] = folder
        other, folder = folder, other
    skipped.append(
        Skipped(folder.folder, f"change {folder.change!r} is also at {other.folder}; kept that one")
    )


def _list_dir(
    top: str, rel: str, skipped: list[Skipped], *, archived: bool = False
) -> list[ChangeFolder]:
    folders = []
    root = rel.rsplit("/changes", 1)[0]
    with os.scandir(os.path.join(top, rel)) as entries:
        for entry in entries:
            if entry.name.startswith(".") or (not archived and entry.name == ARCHIVE):
                continue
            where = f"{rel}/{entry.name}"
            if entry.is_symlink():
                skipped.append(Skipped(where, "is a symbolic link; links are never followed"))
                continue
            if not entry.is_dir(follow_symlinks=False):
                continue
            name, day = entry.name, None
            if archived:
                dated = ARCHIVED.fullmatch(entry.name)
                if dated is None:
                    skipped.append(Skipped(where, "an archived change is named YYYY-MM-DD-<id>"))
                    continue
                day, name = dated.group(1), dated.group(2)
            if not CHANGE_ID.fullmatch(name):
                skipped.append(
                    Skipped(
                        where,
                        f"{name!r} is not an OpenSpec change id (lower-case letters and "
                        "digits in words joined by '-'): rename the folder",
                    )
                )
                continue
            if not any(os.path.lexists(os.path.join(entry.path, m)) for m in CHANGE_MARKS):
                skipped.append(
                    Skipped(where, "not a change: none of proposal.md, tasks.md, design.md, specs/")
                )
                continue
            folders.append(ChangeFolder(name, root, where, day))
    return folders


def file_names(top: str, folder: str) -> list[str]:
    """The files of a change the store reads, relative to its folder (a link among them
    is listed, and read_file refuses it). One directory scan per folder."""
    base = os.path.join(top, folder)
    names = []
    has_specs = False
    with os.scandir(base) as entries:
        for entry in entries:
            if entry.name in MARKDOWN:
                names.append(entry.name)
            elif entry.name == "specs" and entry.is_dir(follow_symlinks=False):
                has_specs = True
    names.sort()
    if has_specs:
        names += sorted(_walk_specs(base, folder)[0])
    return names


def dir_stats(top: str, folder: str) -> dict[str, tuple[int, int]]:
    """(mtime_ns, inode) of a change folder and of every folder under its specs/, taken
    before they are listed: a file added, removed or renamed in one of them moves its
    mtime, so a sweep that finds them all unmoved need not list them again."""
    base = f"{top}/{folder}"
    found = lstat_or_none(base)
    if found is None or not stat.S_ISDIR(found.st_mode):
        return {}
    stats = {".": (found.st_mtime_ns, found.st_ino)}
    with contextlib.suppress(FolderError, OSError):
        stats.update(_walk_specs(base, folder)[1])
    return stats


def _walk_specs(base: str, folder: str) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """The spec.md files under a change's specs/ and the (mtime_ns, inode) of its folders
    (specs/ itself included), walked without recursion and never through a link; a tree
    deeper than MAX_SPEC_DEPTH, with over MAX_SPEC_FILES files, or a name that is not
    UTF-8 is a FolderError."""
    files: list[str] = []
    dirs: dict[str, tuple[int, int]] = {}
    root = lstat_or_none(f"{base}/specs")
    if root is None or not stat.S_ISDIR(root.st_mode):
        return files, dirs
    dirs["specs"] = (root.st_mtime_ns, root.st_ino)
    todo = [("specs", 1)]
    while todo:
        rel, depth = todo.pop()
        with os.scandir(f"{base}/{rel}") as entries:
            for entry in entries:
                try:
                    entry.name.encode("utf-8")
                except UnicodeEncodeError:
                    raise FolderError(
                        f"{folder}/{rel} holds a name that is not UTF-8: rename it"
                    ) from None
                if entry.is_dir(follow_symlinks=False):
                    if depth >= MAX_SPEC_DEPTH:
                        raise FolderError(
                            f"{folder}/specs nests folders deeper than {MAX_SPEC_DEPTH}: flatten it"
                        )
                    info = entry.stat(follow_symlinks=False)
                    dirs[f"{rel}/{entry.name}"] = (info.st_mtime_ns, info.st_ino)
                    todo.append((f"{rel}/{entry.name}", depth + 1))
                elif entry.name == "spec.md":
                    files.append(f"{rel}/spec.md")
                    if len(files) > MAX_SPEC_FILES:
                        raise FolderError(
                            f"{folder}/specs holds over {MAX_SPEC_FILES} spec files; split the "
                            "change"
                        )
    return files, dirs


def read_file(top: str, folder: str, name: str) -> tuple[bytes, tuple[int, int, int]]:
    """A file's bytes, never through a link, never over MAX_FILE_BYTES."""
    shown = f"{folder}/{name}"
    path = os.path.join(top, folder, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise FolderError(f"{shown} vanished while it was read", transient=True) from None
    except PermissionError:
        raise FolderError(
            f"{shown} cannot be read (permission denied): fix its permissions", transient=True
        ) from None
    except OSError as exc:
        if os.path.islink(path):
            raise FolderError(
                f"{shown} is a symbolic link; the store never reads through links: "
                "replace it with the file"
            ) from None
        raise FolderError(f"{shown} cannot be read ({exc.strerror})", transient=True) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise FolderError(f"{shown} is a folder, not a file: replace it with a file")
        if not stat.S_ISREG(info.st_mode):
            raise FolderError(f"{shown} is not a regular file: replace it with a file")
        if info.st_size > MAX_FILE_BYTES:
            raise FolderError(
                f"{shown} is {info.st_size / 1e6:.1f} MB, over the {MAX_FILE_BYTES >> 20} MiB "
                "an OpenSpec file may have here: split it"
            )
        chunks = []
        size = 0
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_FILE_BYTES:
                raise FolderError(f"{shown} grew past {MAX_FILE_BYTES >> 20} MiB while read")
        return b"".join(chunks), (info.st_mtime_ns, info.st_size, info.st_ino)
    finally:
        os.close(fd)


def read_change(top: str, folder: str) -> Snapshot:
    """Every file of a change folder the store reads."""
    if not plain_dir(top, folder):
        raise FolderError(f"{folder} vanished or was replaced while it was read", transient=True)
    snapshot = Snapshot()
    for name in file_names(top, folder):
        data, info = read_file(top, folder, name)
        if b"\0" in data:
            raise FolderError(f"{folder}/{name} holds binary data (NUL bytes): not markdown")
        snapshot.raw[name] = data
        snapshot.stats[name] = info
        snapshot.texts[name] = data.decode("utf-8", errors="replace")
    return snapshot


def replace_file(
    top: str, folder: str, name: str, expected: bytes | None, data: bytes, backups: str, keep: int
) -> tuple[int, int, int]:
    """Write ``data`` as the file (atomically), if it still holds ``expected``.

    The replaced bytes are kept under ``backups/<folder>/`` (at most ``keep`` copies per
    file). A file changed since it was read is left alone (FolderError, transient): the
    next sync reads it again. Returns the new file's stat.
    """
    if not plain_dir(top, folder) or (
        "/" in name and not plain_dir(top, f"{folder}/{os.path.dirname(name)}")
    ):
        raise FolderError(f"{folder} vanished or was replaced during the sync", transient=True)
    path = os.path.join(top, folder, name)

    def still_as_read() -> None:
        # Checked once the new bytes are durable, right before the rename: an editor's
        # save in between is not overwritten (a save within the rename itself can be).
        if expected is not None:
            current, _ = read_file(top, folder, name)
            if current != expected:
                raise FolderError(f"{folder}/{name} changed during the sync", transient=True)
        elif os.path.lexists(path):
            raise FolderError(f"{folder}/{name} appeared during the sync", transient=True)

    still_as_read()  # before the work of writing, too
    try:
        atomic_write(path, data, before_rename=still_as_read)
    except OSError as exc:
        raise FolderError(
            f"cannot write {folder}/{name} ({exc.strerror}): check the folder's permissions",
            transient=isinstance(exc, PermissionError | FileNotFoundError),
        ) from None
    info = os.lstat(path)
    if expected is not None:
        _backup(backups, folder, name, expected, keep)
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _flat(path: str, longest: int = 120) -> str:
    """A relative path as one file name, shortened (with a digest) to fit any file system."""
    flat = path.replace("/", "__")
    if len(flat.encode()) <= longest:
        return flat
    return flat[: longest // 2] + "-" + hashlib.sha1(path.encode()).hexdigest()[:12]


def _backup(backups: str, folder: str, name: str, data: bytes, keep: int) -> None:
    if keep <= 0:
        return
    where = os.path.join(backups, _flat(folder))
    for path in (backups, where):
        # A link here (committed with `git add -f` by a stranger) is never written through.
        if os.path.islink(path) or (os.path.lexists(path) and not os.path.isdir(path)):
            os.unlink(path)
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
    stem = _flat(name)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"{time.time_ns() % 10**9:09d}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with os.fdopen(os.open(os.path.join(where, f"{stamp}-{stem}"), flags, 0o644), "wb") as out:
        out.write(data)
    kept = sorted(n for n in os.listdir(where) if n.endswith(f"-{stem}"))
    for old in kept[:-keep]:
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(where, old))
