"""Whether a JSONL file is still what the cache read: its stat, its racy window, its bytes.

The cache remembers, per file, a :class:`FileState`: the stat it saw and a running digest
of the bytes it read. A file that matches that stat outside the racy window is unchanged;
inside the window (a rewrite in the same mtime tick keeps the stat) only its bytes can
tell. A file that only grew keeps its head and tail, which is how an append is told from
a rewrite without reading the whole prefix again.
"""

from __future__ import annotations

import os
import zlib
from collections import namedtuple

# typing's import is a tenth of what a hook with nothing to do costs (probe.py); mypy
# treats this name as typing's.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

# How much of the start and of the end of the already-read bytes is kept to make sure a
# grown file kept its prefix (an append), rather than being rewritten.
HEAD_BYTES = 256
TAIL_BYTES = 256
# Files are hashed and read in blocks, so memory follows the number of ids, not the size.
READ_BLOCK = 8 << 20


def racy_window_ns(mtime_ns: int) -> int:
    """How long after a file's mtime another write could leave the same mtime.

    Linux filesystems stamp files from the kernel's coarse clock, at most a 10 ms tick
    behind the fine clock this process reads; FAT, HFS+ and some network filesystems keep
    whole seconds, seen as an mtime with no sub-second part.
    """
    return 2_000_000_000 if mtime_ns % 1_000_000_000 == 0 else 20_000_000


if TYPE_CHECKING:

    class _State(NamedTuple):
        inode: int
        size: int
        mtime_ns: int
        offset: int  # bytes read: the cache reflects exactly data[:offset]
        lines: int  # newlines in data[:offset]
        crc: int  # crc32 and adler32 of data[:offset], kept incrementally
        adler: int
        head: bytes  # data[:HEAD_BYTES]
        tail: bytes  # data[offset - TAIL_BYTES:offset]
        synced_ns: int  # wall clock just before the file was last read
        bad_lines: int
        conflict_line: int | None
        ctime_ns: int

else:
    _State = namedtuple(
        "_State",
        "inode size mtime_ns offset lines crc adler head tail synced_ns bad_lines conflict_line"
        " ctime_ns",
    )


class FileState(_State):
    """What the cache knows of one JSONL file: its stat and how far it has been read (a
    row of the cache's ``files`` table, in its column order)."""

    __slots__ = ()

    def matches(self, st: os.stat_result) -> bool:
        """The file is as it was when read to ``offset``, by its stat. The ctime counts
        too, as it does for git: a rewrite that keeps the size and sets the mtime back
        (``touch -r``, ``cp -p``, ``rsync -t``, an editor keeping times) changes it."""
        return (
            st.st_ino == self.inode
            and st.st_size == self.size == self.offset
            and st.st_mtime_ns == self.mtime_ns
            and st.st_ctime_ns == self.ctime_ns
        )

    def is_racy(self) -> bool:
        """Read so soon after its last change that a same-size rewrite could hide."""
        return self.synced_ns - self.mtime_ns < racy_window_ns(self.mtime_ns)

    def is_fresh(self, st: os.stat_result) -> bool:
        """Unchanged since it was read, by the stat alone (no bytes need comparing)."""
        return self.matches(st) and not self.is_racy()


EMPTY_STATE = FileState(0, 0, 0, 0, 0, zlib.crc32(b""), zlib.adler32(b""), b"", b"", 0, 0, None, 0)


class Digest:
    """The running crc32/adler32, line count, head and tail of the bytes read so far."""

    __slots__ = ("adler", "crc", "head", "lines", "offset", "tail")

    def __init__(self, state: FileState = EMPTY_STATE) -> None:
        self.offset = state.offset
        self.lines = state.lines
        self.crc = state.crc
        self.adler = state.adler
        self.head = state.head
        self.tail = state.tail

    def feed(self, data: bytes, lines: int | None = None) -> None:
        """Go on past ``data``, which holds ``lines`` newlines (counted if not given)."""
        self.offset += len(data)
        self.lines += data.count(b"\n") if lines is None else lines
        self.crc = zlib.crc32(data, self.crc)
        self.adler = zlib.adler32(data, self.adler)
        if len(self.head) < HEAD_BYTES:
            self.head += data[: HEAD_BYTES - len(self.head)]
        self.tail = (
            data[-TAIL_BYTES:] if len(data) >= TAIL_BYTES else (self.tail + data)[-TAIL_BYTES:]
        )

    def state(
        self, st: os.stat_result, synced_ns: int, bad_lines: int, conflict: int | None = None
    ) -> FileState:
        return FileState(
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
            self.offset,
            self.lines,
            self.crc,
            self.adler,
            self.head,
            self.tail,
            synced_ns,
            bad_lines,
            conflict,
            st.st_ctime_ns,
        )


def prefix_kept(fd: int, state: FileState) -> bool:
    """Whether a grown file still starts and ends (up to the old size) as it was read.

    Head and tail are what an append cannot change and a rewrite almost always does;
    checking them costs two small reads instead of the whole prefix.
    """
    if os.pread(fd, len(state.head), 0) != state.head:
        return False
    if os.pread(fd, len(state.tail), state.offset - len(state.tail)) != state.tail:
        return False
    if state.offset and not state.tail.endswith(b"\n"):
        # The last line read had no newline: only a newline may follow it, else bytes
        # were glued onto a line already read as complete.
        return os.pread(fd, 1, state.offset) == b"\n"
    return True


def same_content(state: FileState, path: str) -> bool:
    """Whether the file holds exactly the bytes the cache read (hashed block by block)."""
    crc, adler, size = zlib.crc32(b""), zlib.adler32(b""), 0
    try:
        with open(path, "rb") as handle:
            while block := handle.read(READ_BLOCK):
                crc = zlib.crc32(block, crc)
                adler = zlib.adler32(block, adler)
                size += len(block)
    except FileNotFoundError:
        return False
    return (size, crc, adler) == (state.offset, state.crc, state.adler)


def out_of_racy_window(path: str, st: os.stat_result) -> os.stat_result:
    """Set the mtime of a file we have just appended to (lock held) back past the racy
    window, and return its stat.

    Read within the window of its mtime, a file must be compared by content, which for
    our own appends would hash the whole file again on the next read or write (30 ms a
    write on a 30 MB store). With its mtime in the past, any later write by anyone stamps
    a new mtime, which the stat comparison sees. A file we may not set times on (another
    owner's) keeps its mtime, and the next access compares its content instead.
    """
    back = st.st_mtime_ns - 2 * racy_window_ns(st.st_mtime_ns)
    try:
        os.utime(path, ns=(st.st_atime_ns, back))
        return os.stat(path)
    except OSError:
        return st
