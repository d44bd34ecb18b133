"""The exceptions git-taskstore raises for expected failures.

Every message is one line that says what is wrong and, where there is one, what to do.
The CLI prints them as ``error: <message>`` and exits 1; anything else is a bug.
"""

from __future__ import annotations

import os

from .paths import display_path


class TaskstoreError(Exception):
    """Base class of every expected failure."""


class ValidationError(TaskstoreError, ValueError):
    """Input rejected before anything was written."""


class NotFoundError(TaskstoreError, KeyError):
    """The record does not exist (or is deleted)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class AlreadyExistsError(TaskstoreError):
    """create() of an id that already holds a live record."""


class StoreVersionError(TaskstoreError):
    """The store's .version is newer than this release, or unreadable."""


class StorePathError(TaskstoreError):
    """The store path cannot be used (a file, unwritable, ...)."""


class ConflictMarkersError(TaskstoreError):
    """A JSONL file holds unresolved merge conflict markers."""

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line
        super().__init__(
            f"{path}:{line}: unresolved merge conflict markers; "
            f"run `git taskstore resolve {path}` (or edit the file to keep the lines you want), "
            "then `git add` it"
        )


class EnvironmentFault(TaskstoreError):
    """The file system refused an operation (full disk, size limit, read-only, a folder
    where a file belongs): nothing was written; the message names the file and the fix."""

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


# errno -> what to do about it. Numbers rather than the errno module: errors.py is
# imported by every process, hooks included.
_FIXES = {
    28: "free some disk space, then run the command again",  # ENOSPC
    122: "free some disk space (quota exceeded), then run the command again",  # EDQUOT
    27: "the file-size limit (`ulimit -f`) is too small for it: raise the limit",  # EFBIG
    13: "make it writable (chmod u+w) or work on a clone you may write",  # EACCES
    1: "make it writable (chmod u+w) or work on a clone you may write",  # EPERM
    30: "the file system is read-only: work on a writable clone",  # EROFS
    21: "a folder stands where a file belongs: move it away",  # EISDIR
    20: "a file stands where a folder belongs: move it away",  # ENOTDIR
    2: "check that the store folder exists and can hold files",  # ENOENT
    5: "the disk reports an I/O error: check it, then run `git taskstore check`",  # EIO
}


def environment_fault(exc: OSError, path: str | None = None) -> EnvironmentFault:
    """The one-line error for an OSError: the file, what the system said, what to do."""
    where = path or exc.filename
    if where and str(where).endswith(".tmp"):
        # A temp file of a durable rewrite (files.atomic_write): its folder is what counts.
        where = os.path.dirname(str(where))
    what = exc.strerror or str(exc)
    fix = _FIXES.get(exc.errno or 0, "check the file and its folder")
    head = f"{display_path(str(where))}: " if where else ""
    return EnvironmentFault(f"{head}{what.lower()}; {fix}", exc.errno)
