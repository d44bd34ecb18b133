"""The exceptions git-taskstore raises for expected failures.

Every message is one line that says what is wrong and, where there is one, what to do.
The CLI prints them as ``error: <message>`` and exits 1; anything else is a bug.
"""

from __future__ import annotations


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


class VersionConflictError(TaskstoreError):
    """An update with ``expect_version`` found another version: someone wrote in between."""


class StoreVersionError(TaskstoreError):
    """The store's .version is newer than this release, or unreadable."""


class StorePathError(TaskstoreError):
    """The store path cannot be used (a file, unwritable, ...)."""


class WriteError(TaskstoreError, OSError):
    """The file system refused a write (a full disk, the size limit, a read-only file);
    nothing of it was kept."""


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
