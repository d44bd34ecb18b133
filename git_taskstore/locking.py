"""The store's write lock: an exclusive ``flock`` on the store folder and on
``taskstore.lock``, re-entrant within this process.

``flock`` is what filelock takes on POSIX, so any tool locking the file with filelock is
excluded too. filelock itself is not used: 4.3 takes ~85 ms to import and ~640 us per
acquire and release here (a raw flock: ~20 us), and a default write takes the lock once.
git-taskstore runs where ``fcntl`` does (Linux, macOS, the BSDs).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

# A blocked acquire tries again after 0.5 ms, then twice as long each time up to 10 ms: a
# write holds the lock for about a millisecond, and a fixed long wait (filelock's is
# 50 ms) would cap how many writers a second a busy store serves.
FIRST_WAIT_S = 0.0005
POLL_S = 0.01


class FlockLock:
    """An exclusive lock on a file and on the folder holding it, re-entrant: nested
    acquires count, the last release unlocks. Callers serialise their threads themselves
    (the store holds its mutex around the lock): a count per process, not per thread.

    The folder's lock is what keeps git-taskstore's writers apart: a folder cannot be
    unlinked from under its lock while it holds files, whereas a lock file can (``git
    clean -X``, a user tidying up), and a writer that then makes a new lock file at the
    path would lock it while the holder still works. The file's lock is kept for other
    tools that lock ``taskstore.lock`` (filelock takes ``flock`` too); after taking it,
    the file at the path must still be the one locked, else it is locked again.
    Both are opened on each first acquire and closed on the last release.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.folder = os.path.dirname(os.path.abspath(path))
        self.timeout = timeout
        self._fds: tuple[int, ...] | None = None
        self._depth = 0

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; TimeoutError if it stays taken."""
        if self._depth:
            self._depth += 1
            return
        deadline = time.monotonic() + self.timeout
        folder = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            _flock(folder, deadline, self.path)
            while True:
                fd = _open_lock_file(self.path)
                if fd is None:  # a read-only store: the folder's lock does it all
                    break
                try:
                    _flock(fd, deadline, self.path)
                    if _same_file(fd, self.path):
                        break
                except BaseException:
                    os.close(fd)
                    raise
                os.close(fd)  # replaced while we waited: lock the file there now
        except BaseException:  # the timeout, or an interrupt while waiting
            os.close(folder)
            raise
        self._fds, self._depth = (folder,) if fd is None else (folder, fd), 1

    def release(self) -> None:
        if not self._depth:
            raise RuntimeError(f"{self.path} is not locked")
        self._depth -= 1
        if self._depth:
            return
        fds, self._fds = self._fds, None
        assert fds is not None
        for fd in reversed(fds):
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


def _open_lock_file(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
    # A read-only checkout (reads sync the cache under the lock): an existing file is
    # locked as it is; none can be made, and none is needed beside the folder's lock.
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None


def _flock(fd: int, deadline: float, path: str) -> None:
    wait = FIRST_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(path) from None
            time.sleep(wait)
            wait = min(wait * 2, POLL_S)


def _same_file(fd: int, path: str) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (st.st_ino, st.st_dev) == (held.st_ino, held.st_dev)
