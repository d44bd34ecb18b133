"""The JSONL format and its files: validate, serialise, parse, reduce, append, rewrite.

One JSON object per line, append-only, in ``<collection>.jsonl``. This module is the only
place that knows how a line is parsed, validated and serialised, how lines are appended
and files rewritten, and which line of an id is its current version.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
from collections import namedtuple
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import orjson

from .errors import ValidationError
from .gcpause import gc_pause
from .names import MAX_ID_BYTES, plain_id, validate_id

# typing is imported by nothing else on the merge driver's path (~12 M instructions of a
# merge that costs ~150 M); mypy treats this name as typing's.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple

    from .freshness import Digest


# Lines git writes around a conflict. "=======" alone is also a separator; a JSON object
# line can never start with any of these.
_MARKER_PREFIXES = (b"<<<<<<<", b"=======", b">>>>>>>", b"|||||||")


def positive_int(value: object) -> bool:
    """An integer above 0 that is not a bool: a valid timestamp of a record's own."""
    return value.__class__ is int and value > 0


def same_json(a: Any, b: Any) -> bool:
    """JSON equality: unlike ==, true is not 1 and 1.0 is not 1 (they differ on disk)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same_json, a, b))
    return bool(a == b)


def lines_of(records: Sequence[object], first: int = 1) -> list[str]:
    """Check records that are about to be written; return their lines (without newline).

    Serialising is the check: orjson refuses keys that are not strings and values JSON
    cannot hold, faster than a walk over the record in Python could look at them. The one
    thing it lets through is NaN or Infinity, written as null: only a line holding a null
    can have one, and only such a record is walked. A refusal names the record by its
    place, counted from ``first``, when there are several ("record 3: ...").
    """
    lines: list[str] = []
    add = lines.append
    try:
        for record in records:
            add(line_of(record))
    except ValidationError as exc:
        if len(records) == 1 and first == 1:
            raise
        raise ValidationError(f"record {first + len(lines)}: {exc}") from None
    return lines


def line_of(record: object) -> str:
    """Check one record that is about to be written; return its line (see lines_of).

    The common case inline (a 100,000-record batch): a dict with a short id that orjson
    takes. Anything else goes the long way, which says what is wrong.
    """
    if type(record) is dict and plain_id(record.get("id")):
        try:
            line: str = orjson.dumps(record).decode()
        except TypeError:
            return _checked_line(record)
        if "null" in line:
            _refuse_non_finite(record)
        return line
    return _checked_line(record)


def _checked_line(record: object) -> str:
    """line_of() the long way: every check in turn, the first that fails says why."""
    if not isinstance(record, dict):
        raise ValidationError(f"a record must be a JSON object, got {_json_type(record)}")
    if "id" not in record:
        raise ValidationError('record has no "id" field: every record needs one')
    validate_id(record["id"])
    try:
        raw = orjson.dumps(record)
    except TypeError as exc:
        if str(exc) == "Recursion limit reached":
            raise _refuse_deep() from None
        # Non-str keys, or ints wider than 64 bits (which the stdlib writes); the walk
        # first, so NaN is refused with its path rather than the stdlib's message.
        for key in record:
            if not isinstance(key, str):
                raise ValidationError(f"field names must be strings, got {key!r}") from None
        _refuse_non_finite(record)
        return dumps(record).decode()
    if b"null" in raw:
        _refuse_non_finite(record)
    return raw.decode()


def _refuse_non_finite(record: dict[str, Any]) -> None:
    bad = _non_finite(record)
    if bad is not None:
        raise ValidationError(
            f"field {bad!r} holds NaN or Infinity, which JSON cannot represent: "
            "store null or a string instead"
        )


def _non_finite(value: Any, path: str = "") -> str | None:
    """The path of the first NaN or infinite float in a record, or None.

    orjson would write them as null: a silent change of the value.
    """
    if isinstance(value, float):
        return None if math.isfinite(value) else path
    if isinstance(value, dict):
        for key, item in value.items():
            found = _non_finite(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _non_finite(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _json_type(value: object) -> str:
    return {
        list: "an array",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def version_of(record: dict[str, Any]) -> int:
    """The timestamp that orders versions of one id: updated_at, else created_at, else 0.

    Immutable records written by the Rust crate (signals) carry only created_at.
    """
    for key in ("updated_at", "created_at"):
        value = record.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value if -_INT64 <= value < _INT64 else _clamp(value)
        if isinstance(value, float) and value == value:  # not NaN
            return _clamp(value)
    return 0


# SQLite's integers are 64-bit: a version beyond them (a line written by anyone, arriving
# through git) is taken as the greatest or least one, rather than failing every read.
_INT64 = 2**63
MAX_VERSION = _INT64 - 1


def _clamp(value: float) -> int:
    if value >= _INT64:
        return MAX_VERSION
    if value < -_INT64:
        return -_INT64
    return int(value)


# The version reduce_lines gives a line without a timestamp that no earlier line of its
# id precedes: it ties with whatever version its id already has (0 in a whole file).
UNTIMED = -1


def has_time(record: dict[str, Any]) -> bool:
    """Whether the record carries a timestamp that orders it (see version_of)."""
    for key in ("updated_at", "created_at"):
        value = record.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value == value:
            return True
    return False


def is_tombstone(record: dict[str, Any]) -> bool:
    return record.get("deleted") is True


def tombstone(record_id: str, updated_at: int) -> dict[str, Any]:
    return {"id": record_id, "deleted": True, "updated_at": updated_at}


def dumps(record: dict[str, Any]) -> bytes:
    """One line, without the newline. Keys keep their order; output is compact."""
    try:
        return orjson.dumps(record)
    except TypeError as exc:
        if str(exc) == "Recursion limit reached":
            raise _refuse_deep() from None
        # orjson refuses ints wider than 64 bits and non-str keys; the stdlib does not.
        try:
            return json.dumps(
                record, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode("utf-8")
        except RecursionError:
            raise _refuse_deep() from None
        except (TypeError, ValueError) as exc:
            raise ValidationError(
                f"record is not JSON-serialisable ({exc}): store only objects, arrays, "
                "strings, numbers, booleans and null"
            ) from None


# Parse one JSON value (a ValueError says why not): orjson's own, without a wrapper, as
# every record a read returns goes through it.
loads = orjson.loads


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a valid record. ``line`` is 1-based."""

    line: int
    reason: str


def conflict_marker_line(data: bytes) -> int | None:
    """1-based number of the first line that is a git conflict marker, or None."""
    if b"<<<<<<<" not in data and b">>>>>>>" not in data and b"\n=======" not in data:
        return None
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.startswith(_MARKER_PREFIXES):
            return number
    return None


MARKER = "merge conflict marker"


def parse_line(raw: bytes) -> dict[str, Any] | str:
    """The record on one line, or the reason it is not one."""
    if raw.startswith(_MARKER_PREFIXES):
        return MARKER
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return "not valid UTF-8"
        return f"not valid JSON ({str(exc).split(':')[0]})"
    if not isinstance(value, dict):
        return f"not a JSON object (found {_json_type(value)})"
    record_id = value.get("id")
    if not isinstance(record_id, str) or not record_id.strip():
        return 'record has no non-blank string "id"'
    if len(record_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES:
        return f"record id is longer than {MAX_ID_BYTES} bytes"
    if too_deep(raw):
        return TOO_DEEP
    return value


# orjson writes at most this many nested objects and arrays (the record itself counts):
# a record that it could not write back out (get --json, export) is refused on the way in
# and read as a bad line on the way out of a file.
MAX_DEPTH = 254
TOO_DEEP = f"nested deeper than {MAX_DEPTH} levels of objects and arrays"
_STRINGS = rb'"(?:[^"\\]|\\.)*"'


def too_deep(raw: bytes) -> bool:
    """Whether a line nests more than MAX_DEPTH objects and arrays (cheap for short lines:
    each level takes at least two bytes)."""
    if len(raw) <= 2 * MAX_DEPTH or raw.count(b"{") + raw.count(b"[") <= MAX_DEPTH:
        return False
    depth = deepest = 0
    for byte in re.sub(_STRINGS, b"", raw):
        if byte == 0x7B or byte == 0x5B:  # { [
            depth += 1
            deepest = max(deepest, depth)
        elif byte == 0x7D or byte == 0x5D:  # } ]
            depth -= 1
    return deepest > MAX_DEPTH


def _refuse_deep() -> ValidationError:
    return ValidationError(
        f"record nests objects and arrays deeper than {MAX_DEPTH} levels, or contains "
        "itself: flatten it (git-taskstore could not write it back out)"
    )


if TYPE_CHECKING:

    class Winner(NamedTuple):
        """The current version of one id within some lines."""

        version: int
        line: int  # 1-based line of this version
        raw: bytes
        deleted: bool
        # The line where the id first appeared: its place in the store's order (0: unknown).
        first_line: int = 0

else:
    Winner = namedtuple("Winner", "version line raw deleted first_line", defaults=(0,))


def reduce_lines(
    data: bytes | list[bytes],
    first_line: int = 1,
    winners: dict[str, Winner] | None = None,
    bad: list[BadLine] | None = None,
    blanks: list[int] | None = None,
) -> tuple[dict[str, Winner], list[BadLine]]:
    """The current version of each id in ``data``: greatest version, later line on a tie.

    The hot loop of every rebuild, catch-up and merge, so it parses each line once and
    keeps only the winning raw bytes: memory grows with the number of ids, not of lines.
    Dict order is first appearance. ``data`` is the text, or its lines split at b"\\n" by
    a caller that needs them too. Blank lines are skipped; bad lines (conflict markers
    among them, with the reason MARKER) are returned, never dropped; the numbers of the
    blank lines go into ``blanks`` if it is given. Pass ``winners`` and ``bad`` to go on
    from an earlier call (reading a file block by block).
    """
    winners = {} if winners is None else winners
    bad = [] if bad is None else bad
    loads = orjson.loads
    new_winner = tuple.__new__
    number = first_line - 1
    plain_length = MAX_ID_BYTES // 4  # plain_id, inlined: a call per line costs ~8%
    shallow = 2 * MAX_DEPTH  # a line this short cannot nest too deep
    # The loop builds only acyclic objects; pausing the cycle collector saves ~20%.
    gc_pause.begin()
    try:
        for raw in data.split(b"\n") if isinstance(data, bytes) else data:
            number += 1
            try:
                record = loads(raw)
                record_id = record["id"]
                ok = (
                    type(record_id) is str
                    and 0 < len(record_id) <= plain_length
                    and not record_id.isspace()
                ) or (
                    type(record_id) is str
                    and record_id.strip() != ""
                    and len(record_id.encode("utf-8", "surrogatepass")) <= MAX_ID_BYTES
                )
            except Exception:  # not JSON, not an object, no id: sorted out below
                ok = False
            if not ok or (len(raw) > shallow and too_deep(raw)):
                if raw.strip():
                    reason = parse_line(raw)
                    bad.append(BadLine(number, reason if isinstance(reason, str) else "bad id"))
                elif blanks is not None:
                    blanks.append(number)
                continue
            updated = record.get("updated_at")
            previous = winners.get(record_id)
            if type(updated) is not int or not -_INT64 <= updated < _INT64:
                updated = version_of(record)
                if updated == 0 and not has_time(record):
                    # No timestamp: no older than the lines before it, so it wins a tie
                    # with the latest of them. UNTIMED, if none came before in ``data``:
                    # the caller ranks it against what it already holds.
                    updated = previous.version if previous is not None else UNTIMED
            # tuple.__new__ skips the NamedTuple's Python-level __new__: ~15% of the loop.
            if previous is None:
                winners[record_id] = new_winner(
                    Winner, (updated, number, raw, record.get("deleted") is True, number)
                )
            elif updated >= previous.version:
                winners[record_id] = new_winner(
                    Winner,
                    (updated, number, raw, record.get("deleted") is True, previous.first_line),
                )
    finally:
        gc_pause.end()
    return winners, bad


# --- writing -------------------------------------------------------------------------


class Append:
    """Lines appended to one file, its descriptor held until the write is settled.

    Holding the descriptor keeps the inode alive, so a file git put at the path meanwhile
    can never reuse its number: ``at_path`` is a sound test of "my lines are in the file
    at the path". ``undo`` truncates the file back to where the append began.
    """

    __slots__ = ("committed", "dev", "end", "fd", "ino", "path", "start")

    def __init__(self, path: str, fd: int, start: int) -> None:
        st = os.fstat(fd)
        self.path, self.fd, self.start, self.end = path, fd, start, start
        self.committed = False  # set by the writer once the write is acknowledged
        self.dev, self.ino = st.st_dev, st.st_ino

    def at_path(self) -> bool:
        """True if the file at the path is the one appended to, holding the lines."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        return st.st_ino == self.ino and st.st_dev == self.dev and st.st_size >= self.end

    def undo(self) -> None:
        # A failed undo leaves the lines: whole lines of a write that was not acknowledged
        # (a torn one stays on its own line), which a later read takes as written.
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, self.start)
            os.fsync(self.fd)

    def close(self) -> None:
        os.close(self.fd)


def open_append(
    path: str, lines: list[str], digest: Digest | None = None, *, create: bool = True
) -> Append:
    """Append whole lines durably and return the open :class:`Append` (close it).

    The file is opened for this write only, with O_APPEND: git checkout replaces files,
    and a handle kept open would write into the deleted inode. ``create=False`` refuses
    to make a missing file (FileNotFoundError): the caller knows the file existed, so git
    is replacing it, and a file made now would hold only these lines. Symbolic links are
    never followed (ELOOP). If the file does not end in a newline (a torn line left by a
    crash), a newline goes first so the fragment stays on its own line. A write that
    fails part-way (a full disk, the size limit, an I/O error) is truncated back before
    the error is raised. ``digest`` is fed each block as it is written.
    """
    flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW
    # O_RDWR rather than O_WRONLY so the last byte can be read with pread; O_APPEND still
    # puts every write at the end, whatever the offset.
    fd = os.open(path, flags | os.O_CREAT if create else flags, 0o644)
    try:
        start = os.fstat(fd).st_size
        done = Append(path, fd, start)
    except BaseException:
        os.close(fd)
        raise
    try:
        blocks: Iterator[tuple[bytes, int]] = _blocks(lines)
        if start and os.pread(fd, 1, start - 1) != b"\n":
            blocks = itertools.chain([(b"\n", 1)], blocks)
        for block, newlines in blocks:
            view = memoryview(block)
            written = 0
            while written < len(block):
                written += os.write(fd, view[written:])
            done.end += written
            if digest is not None:
                digest.feed(block, newlines)
        os.fsync(fd)
    except BaseException:
        done.undo()
        done.close()
        raise
    return done


def append_lines(path: str, lines: list[str], digest: Digest | None = None) -> tuple[int, int]:
    """Append whole lines durably (see :func:`open_append`); return (offset where they
    start, bytes written)."""
    done = open_append(path, lines, digest)
    done.close()
    return done.start, done.end - done.start


# Lines per write() of an append. A block of ~1 MB is encoded in memory that the next one
# reuses; one buffer for a 100,000-line batch (30 MB, and as much again to encode it)
# took page faults that cost twice the write (56 ms against 29).
APPEND_BLOCK_LINES = 4096


def _blocks(lines: list[str]) -> Iterator[tuple[bytes, int]]:
    for first in range(0, len(lines), APPEND_BLOCK_LINES):
        chunk = lines[first : first + APPEND_BLOCK_LINES]
        # The newline after the last line joined in (not added after: a copy).
        yield "\n".join([*chunk, ""]).encode(), len(chunk)
