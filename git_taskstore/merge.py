"""Three-way merge of JSONL files, record by record and field by field: a pure function.

For each id, the current versions of base, ours and theirs are compared:

- a side equal to the base takes the other side; both changed the same way: take it;
- both changed: a delete (or a record removed from the file) wins over an edit; otherwise
  field by field: a field changed on one side takes that change, a field changed on both
  to different values takes the side with the newer version (``updated_at``), and the
  merged ``updated_at`` is the max. Equal versions with different values are a conflict.

The result keeps every line of ours, then the lines theirs added (not in the base, not in
ours), in their order: the history of both sides, nothing reordered or dropped. A line is
appended only where the merged version is not already the file's current version, with an
``updated_at`` no lower than any version of that id, so the one current-version rule
(greatest ``updated_at``, later line on a tie) reads the merged state back. That state
does not depend on which side is "ours" (a rebase swaps them).

Input that is not clean JSONL raises :class:`NotJsonl`; the driver then falls back to a
text merge. Nothing here touches git or the filesystem.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

import orjson

from . import jsonl
from .gcpause import gc_paused

TYPE_CHECKING = False  # the driver starts on every merge: typing is not worth its import
if TYPE_CHECKING:
    from typing import Any

_MISSING: Any = object()
_PLAIN = (str, int, bool, type(None))


class NotJsonl(Exception):
    """A side holds something other than one record per line (markers, bad lines)."""


@dataclass
class Conflict:
    """An id whose two sides changed fields to different values at the same version."""

    id: str
    fields: list[str]


@dataclass
class MergeResult:
    data: bytes
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.conflicts


@dataclass(slots=True)
class _Side:
    data: bytes
    lines: list[bytes]
    current: dict[str, jsonl.Winner]  # id -> its current version in this file
    # id -> its current version among the lines after the base's (all lines if the side
    # does not start with the base's text): the ids this side touched.
    added: dict[str, jsonl.Winner]
    shared: int = 0  # lines[:shared] are the base's lines
    only_appended: bool = False  # the side is the base's text plus lines


def _parse_side(data: bytes, name: str, base: _Side | None = None) -> _Side:
    # PERF (bench/bench_merge.py): a side is nearly always the base plus appended lines.
    # Then the base's part is already checked and reduced: parse only the new lines and
    # go on from the base's winners by the same rule. The same winners and line numbers
    # as parsing the whole file, at a third of the cost.
    start, first_line = 0, 1
    if base is not None and base.data.endswith(b"\n") and data.startswith(base.data):
        start, first_line = len(base.data), base.data.count(b"\n") + 1
    tail = data[start:] if start else data
    # From the base's last newline: conflict_marker_line looks for "\n=======", so a
    # separator on the first new line would slip through it (line 1 is that empty rest).
    marker = jsonl.conflict_marker_line(data[start - 1 :] if start else data)
    if marker is not None:
        raise NotJsonl(
            f"{name}: conflict marker on line {marker + first_line - (2 if start else 1)}"
        )
    # reduce the text as it is (reduce_lines skips blank lines itself), not the lines
    # without the blank ones, so the line number NotJsonl gives is the bad line's in the file.
    added, bad = jsonl.reduce_lines(tail, first_line)
    if bad:
        raise NotJsonl(f"{name}: line {bad[0].line}: {bad[0].reason}")
    new_lines = _lines(tail)
    if not start or base is None:
        for rid, winner in added.items():
            if winner.version == jsonl.UNTIMED:  # an untimed line with none before it
                added[rid] = winner._replace(version=0)
        return _Side(data, new_lines, added, added)
    current = dict(base.current)
    for rid, winner in added.items():
        # reduce_lines' rule, going on: the greater version wins, the later line on a tie.
        # (The winner's first_line stays its first line after the base's: unused here.)
        previous = current.get(rid)
        if winner.version == jsonl.UNTIMED:
            # No timestamp: no older than the base's lines of its id.
            winner = added[rid] = winner._replace(
                version=previous.version if previous is not None else 0
            )
        if previous is None or winner.version >= previous.version:
            current[rid] = winner
    return _Side(data, base.lines + new_lines, current, added, len(base.lines), True)


def _lines(text: bytes) -> list[bytes]:
    """The lines of ``text`` that are not blank."""
    lines = text.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    # PERF: where every line starts with "{" (as JSONL lines nearly always do), none is
    # blank: counted in C rather than stripping each line.
    if text.count(b"\n{") + text.startswith(b"{") == len(lines):
        return lines
    return [line for line in lines if line.strip()]


class _Lines:
    """Raw lines parsed and canonicalised on demand, each at most once per merge.

    PERF: comparing two lines as JSON parses and re-serialises both. Few ids get that far,
    but each compares the same three or four lines several times. A record handed out
    here is shared: never modify it.
    """

    def __init__(self) -> None:
        self._records: dict[bytes, dict[str, Any]] = {}
        self._canonical: dict[bytes, bytes] = {}

    def record(self, raw: bytes) -> dict[str, Any]:
        record = self._records.get(raw)
        if record is None:
            record = self._records[raw] = orjson.loads(raw)
        return record

    def known(self, raw: bytes, record: dict[str, Any]) -> None:
        """``raw`` is ``record`` serialised: no need to parse it (orjson round-trips)."""
        self._records.setdefault(raw, record)

    def canonical(self, raw: bytes) -> bytes:
        found = self._canonical.get(raw)
        if found is None:
            found = self._canonical[raw] = orjson.dumps(
                self.record(raw), option=orjson.OPT_SORT_KEYS
            )
        return found

    def same(self, a: bytes | None, b: bytes | None) -> bool:
        if a == b:
            return True
        if a is None or b is None or self.record(a) != self.record(b):
            # Records equal as JSON are equal in Python (not the other way: 1 == 1.0).
            return False
        return self.canonical(a) == self.canonical(b)

    def is_deleted(self, raw: bytes | None) -> bool:
        # A record absent from a file that had it in the base counts as deleted there.
        return raw is None or jsonl.is_tombstone(self.record(raw))


def _line_ids(side: _Side) -> dict[bytes, str]:
    """The id of each line that is the current version of an id among the side's added
    lines. PERF: most added lines are, so most lines are placed without a parse."""
    return {w.raw: rid for rid, w in side.added.items()}


def _id_and_version(line: bytes, side: _Side, known: dict[bytes, str]) -> tuple[str, int]:
    rid = known.get(line)
    if rid is not None:
        return rid, side.added[rid].version
    record = orjson.loads(line)
    return record["id"], jsonl.version_of(record)


def _added_lines(
    side: _Side, base_lines: set[bytes], wanted: set[str]
) -> dict[str, list[tuple[int, int, bytes]]]:
    """For the ids in ``wanted``, the lines this side added since the base, as
    (version, index, line) in file order."""
    known = _line_ids(side)
    found: dict[str, list[tuple[int, int, bytes]]] = {}
    for index in range(side.shared, len(side.lines)):
        line = side.lines[index]
        rid = known.get(line)
        if (rid is not None and rid not in wanted) or line in base_lines:
            continue
        rid, version = _id_and_version(line, side, known)
        if rid in wanted:
            found.setdefault(rid, []).append((version, index, line))
    return found


def merge_records(base: bytes, ours: bytes, theirs: bytes, *, marker_size: int = 7) -> MergeResult:
    """Merge three JSONL texts; raise NotJsonl if any is not clean JSONL."""
    # PERF: the merge holds ~10^5 acyclic objects per side; each run of the cycle collector
    # would walk them all (a third of the time of a merge of big rewrites).
    with gc_paused():
        return _merge(base, ours, theirs, marker_size)


def _merge(base: bytes, ours: bytes, theirs: bytes, marker_size: int) -> MergeResult:
    b = _parse_side(base, "base")
    o = _parse_side(ours, "ours", b)
    t = _parse_side(theirs, "theirs", b)

    base_set = set(b.lines)
    # A side's first `shared` lines are the base's, in base_set already.
    seen = set(base_set)
    seen.update(o.lines[o.shared :])
    theirs_new: list[bytes] = []
    for line in t.lines[t.shared :]:
        if line not in seen:
            seen.add(line)
            theirs_new.append(line)
    out_lines = o.lines + theirs_new

    # The file's current version of each id once both histories are in it is ours', but
    # where theirs' new lines (which come later, and so win ties) hold a version as new:
    # those ids are in theirs_newer, as (version, line).
    theirs_top: dict[str, tuple[int, bytes]] = {}
    known = _line_ids(t)
    for line in theirs_new:
        rid, version = _id_and_version(line, t, known)
        found = theirs_top.get(rid)
        if found is None or version >= found[0]:
            theirs_top[rid] = (version, line)
    theirs_newer = {
        rid: top
        for rid, top in theirs_top.items()
        if rid not in o.current or top[0] >= o.current[rid].version
    }

    if o.only_appended and t.only_appended:
        # PERF: an id theirs added no line for holds the base's line on theirs, and ours'
        # current line in the file (theirs_newer is empty for it): settled by the first
        # rule below, and skipped here. The others in the same order as below.
        ids = [rid for rid in b.current if rid in t.added]
        ids += [rid for rid in o.added if rid not in b.current and rid in t.added]
        ids += [rid for rid in t.added if rid not in o.current]
    else:
        ids = list(o.current) + [rid for rid in t.current if rid not in o.current]
        ids += [rid for rid in b.current if rid not in o.current and rid not in t.current]
    # PERF: where one side holds the base's line and the file's current version is the
    # other side's line (an id only one side touched), the rules below would take that
    # line and add nothing: settle those ids without a parse.
    rest: list[tuple[str, bytes | None, bytes | None, bytes | None, bytes | None]] = []
    for rid in ids:
        ow, tw, bw = o.current.get(rid), t.current.get(rid), b.current.get(rid)
        ours_raw = ow.raw if ow is not None else None
        theirs_raw = tw.raw if tw is not None else None
        base_raw = bw.raw if bw is not None else None
        newer = theirs_newer.get(rid)
        current_raw = newer[1] if newer is not None else ours_raw
        if current_raw is None or not (
            (theirs_raw == base_raw and current_raw == ours_raw)
            or (ours_raw == base_raw and current_raw == theirs_raw)
        ):
            rest.append((rid, ours_raw, theirs_raw, base_raw, current_raw))

    lines = _Lines()
    appended: list[bytes] = []
    conflicts: list[Conflict] = []
    blocks: list[bytes] = []
    added: dict[str, dict[str, list[tuple[int, int, bytes]]]] = {}
    wanted = {rid for rid, *_ in rest}

    def history(name: str, side: _Side, rid: str) -> list[dict[str, Any]]:
        # Per id, the versions this side added since the base, oldest first (ties: file
        # order). Indexed once per side, and only when some id needs it.
        if name not in added:
            added[name] = _added_lines(side, base_set, wanted)
        return [lines.record(line) for _, _, line in sorted(added[name].get(rid, ()))]

    def version_in(side: _Side, rid: str) -> int:
        found = side.current.get(rid)
        return found.version if found is not None else 0

    for rid, ours_raw, theirs_raw, base_raw, current_raw in rest:
        ours_v, theirs_v = version_in(o, rid), version_in(t, rid)
        newer = theirs_newer.get(rid)
        current_v = newer[0] if newer is not None else ours_v
        top = max(ours_v, theirs_v, version_in(b, rid), current_v)
        if lines.same(ours_raw, theirs_raw) or lines.same(theirs_raw, base_raw):
            merged = ours_raw
        elif lines.same(ours_raw, base_raw):
            merged = theirs_raw
        elif lines.is_deleted(ours_raw) or lines.is_deleted(theirs_raw):
            merged = jsonl.dumps(jsonl.tombstone(rid, top))
        else:
            # Both sides hold a live record here (deletes were settled above).
            assert ours_raw is not None and theirs_raw is not None
            ours_record, theirs_record = lines.record(ours_raw), lines.record(theirs_raw)
            merged_record, conflicted = _merge_fields(
                lines.record(base_raw) if base_raw is not None else {},
                ours_record,
                theirs_record,
                ours_v,
                theirs_v,
                partial(history, "ours", o, rid),
                partial(history, "theirs", t, rid),
            )
            if conflicted:
                conflicts.append(Conflict(rid, sorted(conflicted)))
                blocks.append(
                    _conflict_block(
                        merged_record, conflicted, ours_record, theirs_record, top, marker_size
                    )
                )
                continue
            merged = jsonl.dumps(merged_record)
            lines.known(merged, merged_record)
        if merged is None:
            # Removed from the file on the side that wins. Lines the other side kept would
            # bring it back, so a tombstone goes after them (either way round, no record).
            if current_raw is None or lines.is_deleted(current_raw):
                continue
            merged = jsonl.dumps(jsonl.tombstone(rid, top))
        if current_raw is not None and lines.same(current_raw, merged):
            continue
        appended.append(_at_least(merged, lines.record(merged), top))

    # The empty last item puts a newline after every line, and gives b"" for no lines.
    data = b"\n".join([*out_lines, *appended, b""])
    if blocks:
        data += b"".join(blocks)
    return MergeResult(data, conflicts)


def _merge_fields(
    base: dict[str, Any],
    ours: dict[str, Any],
    theirs: dict[str, Any],
    ours_v: int,
    theirs_v: int,
    ours_history: Callable[[], list[dict[str, Any]]],
    theirs_history: Callable[[], list[dict[str, Any]]],
) -> tuple[dict[str, Any], set[str]]:
    """Field by field. A field changed on both sides goes to the side that changed it
    more recently: when a side first held its current value, per the versions it added
    since the base (else its record's version). Comparing whole records instead would let
    an old edit ride on a newer edit of another field, and would make two clones that
    merged the same push disagree at one updated_at. The histories are asked for only
    then (PERF: most ids have no such field)."""
    merged: dict[str, Any] = {}
    conflicted: set[str] = set()
    for key in _keys(ours, theirs):
        if key == "updated_at":
            merged[key] = max(ours_v, theirs_v)
            continue
        ov, tv, bv = ours.get(key, _MISSING), theirs.get(key, _MISSING), base.get(key, _MISSING)
        if _value_eq(ov, tv) or _value_eq(tv, bv):
            value = ov
        elif _value_eq(ov, bv):
            value = tv
        else:
            ours_t = _changed_at(ours_history(), key, ov, bv, ours_v)
            theirs_t = _changed_at(theirs_history(), key, tv, bv, theirs_v)
            if ours_t != theirs_t:
                value = ov if ours_t > theirs_t else tv
            else:
                conflicted.add(key)
                value = ov
        if value is not _MISSING:
            merged[key] = value
    return merged, conflicted


def _changed_at(
    history: list[dict[str, Any]], key: str, value: Any, base_value: Any, fallback: int
) -> int:
    """The version at which a side last changed ``key`` to its current ``value``."""
    previous, when = base_value, None
    for record in history:
        current = record.get(key, _MISSING)
        if not _value_eq(current, previous):
            when, previous = jsonl.version_of(record), current
    return when if when is not None and _value_eq(previous, value) else fallback


def _keys(*records: dict[str, Any]) -> Iterable[str]:
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return seen


def _value_eq(a: Any, b: Any) -> bool:
    if a is _MISSING or b is _MISSING:
        return a is b
    # PERF: values equal as JSON are equal in Python; a string, an integer, a boolean or
    # null equal in Python to one of its own type is equal as JSON (floats are not:
    # 0.0 == -0.0, and neither are containers: [1] == [1.0]).
    if a != b:
        return False
    if type(a) is type(b) and type(a) in _PLAIN:
        return True
    # 1, 1.0 and true are different values in JSON.
    return bool(
        orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)
    )


def _at_least(raw: bytes, record: dict[str, Any], version: int) -> bytes:
    """The line ``raw`` (holding ``record``) with updated_at raised to ``version`` if it is
    lower (it must win)."""
    if jsonl.version_of(record) >= version:
        return raw
    return jsonl.dumps(dict(record, updated_at=max(version, jsonl.version_of(record))))


def _conflict_block(
    merged: dict[str, Any],
    conflicted: set[str],
    ours: dict[str, Any],
    theirs: dict[str, Any],
    top: int,
    marker_size: int,
) -> bytes:
    """Two candidate lines: the field-merged record with ours' or theirs' values."""
    sides = []
    for source in (ours, theirs):
        candidate = dict(merged)
        # Conflicted fields in sorted order: a set's order follows PYTHONHASHSEED, and a key
        # put back (removed on the other side) lands at the end, so the bytes would change
        # from one process to the next.
        for key in sorted(conflicted):
            if key in source:
                candidate[key] = source[key]
            else:
                candidate.pop(key, None)
        candidate["updated_at"] = max(top, jsonl.version_of(candidate))
        sides.append(jsonl.dumps(candidate))
    return (
        b"<" * marker_size
        + b" ours\n"
        + sides[0]
        + b"\n"
        + b"=" * marker_size
        + b"\n"
        + sides[1]
        + b"\n"
        + b">" * marker_size
        + b" theirs\n"
    )


# --- resolving conflict blocks ----------------------------------------------------------

STRATEGIES = ("newest", "ours", "theirs")


def resolve_conflicts(data: bytes, strategy: str = "newest") -> tuple[bytes, int]:
    """Settle every git-style conflict block in JSONL text; return (text, blocks settled).

    ``ours`` keeps the lines above ``=======``, ``theirs`` those below; ``newest`` keeps
    both, so the one current-version rule decides: the greater ``updated_at`` wins, and on a
    tie the later line, theirs. A diff3 base section (``|||||||``) is dropped. Raises
    ValueError for a block that is not closed, naming its line.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    out: list[bytes] = []
    sections: dict[str, list[bytes]] = {}
    section: str | None = None
    opened = 0
    blocks = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.startswith(b"<<<<<<<") and section is None:
            section, opened, sections = "ours", number, {"ours": [], "base": [], "theirs": []}
        elif line.startswith(b"|||||||") and section == "ours":
            section = "base"
        elif line.startswith(b"=======") and section in ("ours", "base"):
            section = "theirs"
        elif line.startswith(b">>>>>>>") and section == "theirs":
            keep = {"ours": ["ours"], "theirs": ["theirs"], "newest": ["ours", "theirs"]}
            for side in keep[strategy]:
                out.extend(sections[side])
            section = None
            blocks += 1
        elif section is None:
            out.append(line)
        else:
            sections[section].append(line)
    if section is not None:
        raise ValueError(f"line {opened}: conflict block is not closed (no >>>>>>> line)")
    return b"\n".join(out), blocks
