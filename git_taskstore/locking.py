"""The store's write lock: an exclusive ``flock`` on ``taskstore.lock``, re-entrant within
this process.

``flock`` is what filelock takes on POSIX, so any tool locking the file with filelock is
excluded too. filelock itself is not used: 4.3 takes ~85 ms to import and ~640 us per
acquire and release here (a raw flock: ~20 us), and a default write takes the lock once.
git-taskstore runs where ``fcntl`` does (Linux, macOS, the BSDs).
"""

from __future__ import annotations

import fcntl
import os
import time

# A blocked acquire tries again after 0.5 ms, then twice as long each time up to 10 ms: a
# write holds the lock for about a millisecond, and a fixed long wait (filelock's is
# 50 ms) would cap how many writers a second a busy store serves.
FIRST_WAIT_S = 0.0005
POLL_S = 0.01


class FlockLock:
    """An exclusive lock on a file, re-entrant: nested acquires count, the last release
    unlocks. Callers serialise their threads themselves (the store holds its mutex around
    the lock): a count per process, not per thread.

    The file is opened on each first acquire and closed on the last release, never kept
    open: if it is deleted and made again (``git clean -X``), every process locks the file
    that is there now.
    """

    def __init__(self, path: str, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._fd: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        """Take the lock, waiting up to ``timeout`` seconds; TimeoutError if it stays taken."""
        if self._depth:
            self._depth += 1
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + self.timeout
        wait = FIRST_WAIT_S
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(self.path) from None
                    time.sleep(wait)
                    wait = min(wait * 2, POLL_S)
        except BaseException:  # the timeout, or an interrupt while waiting
            os.close(fd)
            raise
        self._fd, self._depth = fd, 1

    def release(self) -> None:
        if not self._depth:
            raise RuntimeError(f"{self.path} is not locked")
        self._depth -= 1
        if self._depth:
            return
        fd, self._fd = self._fd, None
        assert fd is not None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
