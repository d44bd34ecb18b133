"""Three-way merge of JSONL files, record by record and field by field: a pure function.

For each id, the current versions of base, ours and theirs are compared. A line both sides
added since the base (the same write on both: a cherry-pick, a commit both merged) is part
of what both started from: the id's newest such line stands in for its base, as it does
when a rebase replays the commits one by one.

- a side equal to the base takes the other side; both changed the same way: take it;
- both changed: a delete (or a record removed from the file) wins over an edit; otherwise
  field by field, and the merged ``updated_at`` is the max:

  - where both sides carry their field times (``_times``, fieldtimes.py: the store and
    this merge write them), each field takes the value of the side that changed it
    last, whatever the base holds: a value carried from another branch, or set back to
    an old value, keeps the time of the write that set it;
  - otherwise (a line written by another tool), a field changed on one side takes that
    change, and a field changed on both goes to the side whose lines since the base
    changed it last (else the newer version);
  - equal times with different values are a conflict.

  The merged line carries the field times it was decided by, so the next merge, in any
  order, decides by the same times.

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
from .fieldtimes import LIFE, TIMES_KEY, UNTIMED_KEYS, created, life_of, recorded, time_of
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
    """The merged text, in parts (PERF: the first is often ours' text itself, which a
    64 MiB merge need not copy again to write it out), and the ids left in conflict."""

    parts: list[bytes]
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)

    @property
    def clean(self) -> bool:
        return not self.conflicts


_Winners = dict[str, jsonl.Winner]  # id -> its current version among some lines


@dataclass(slots=True)
class _Side:
    lines: list[bytes]  # the lines that are not blank (from `shared` on: its own)
    current: _Winners  # id -> its current version in this file
    # id -> its current version among the lines after the base's (all lines if the side
    # does not start with the base's text): the ids this side touched.
    added: _Winners
    shared: int = 0  # lines[:shared] are the base's lines
    _line_ids: dict[bytes, str] | None = None

    def line_ids(self) -> dict[bytes, str]:
        """The id of each line that is the current version of an id among the side's
        added lines. PERF: most added lines are, so most lines are placed without a parse."""
        if self._line_ids is None:
            self._line_ids = {w.raw: rid for rid, w in self.added.items()}
        return self._line_ids


def _extends(side: bytes, base: bytes) -> bool:
    """Whether ``side`` is the base's text plus lines."""
    return base.endswith(b"\n") and side.startswith(base)


def _read(text: bytes, name: str, before: bytes = b"") -> tuple[list[bytes], _Winners, bool]:
    """The lines of ``text`` that are not blank, the current version of each id in them,
    and whether there were blank lines; NotJsonl for a bad line, numbered in the file
    where ``before`` (the base's text) precedes ``text``."""
    # Split once: reduce_lines numbers these lines, and the merge keeps them.
    split = text.split(b"\n")
    if split and not split[-1]:
        split.pop()
    blanks: list[int] = []
    winners, bad = jsonl.reduce_lines(split, blanks=blanks)
    if bad:
        # Counted only now: a newline count of the base is a scan of its whole text.
        raise _not_jsonl(name, jsonl.BadLine(bad[0].line + before.count(b"\n"), bad[0].reason))
    if blanks:
        split = [line for line in split if line.strip()]
    return split, winners, bool(blanks)


class _MarkedBase(NotJsonl):
    """The base holds conflict markers: merge_records settles it and merges again."""


def _not_jsonl(name: str, bad: jsonl.BadLine) -> NotJsonl:
    # A conflict marker is never a record: reduce_lines reports it as a bad line.
    if bad.reason == jsonl.MARKER:
        kind = _MarkedBase if name == "base" else NotJsonl
        return kind(f"{name}: conflict marker on line {bad.line}")
    return NotJsonl(f"{name}: line {bad.line}: {bad.reason}")


def _text(lines: list[bytes]) -> bytes:
    """The lines, each ended by a newline."""
    # The empty last item puts a newline after every line, and gives b"" for no lines.
    return b"\n".join([*lines, b""])


def _go_on(base: _Winners, added: _Winners, ids: Iterable[str] | None = None) -> _Winners:
    """The current versions of a side that is the base plus lines whose winners are
    ``added`` (of the ids in ``ids``, if given): reduce_lines' rule going on from the
    base's (the greater version wins, the later line on a tie). Settles the untimed
    versions of ``added`` that it looks at, in place."""
    current = dict(base)
    for rid in added if ids is None else ids:
        winner = added.get(rid)
        if winner is None:
            continue
        previous = current.get(rid)
        if winner.version == jsonl.UNTIMED:
            # No timestamp: no older than the base's lines of its id.
            winner = added[rid] = winner._replace(
                version=previous.version if previous is not None else 0
            )
        if previous is None or winner.version >= previous.version:
            current[rid] = winner
    return current


def _whole(text: bytes, name: str) -> _Side:
    lines, current, _ = _read(text, name)
    for rid, winner in current.items():
        if winner.version == jsonl.UNTIMED:  # an untimed line with none before it
            current[rid] = winner._replace(version=0)
    return _Side(lines, current, current)


def _parse_side(data: bytes, name: str, base: _Side, base_text: bytes) -> _Side:
    # PERF: where the side is the base plus lines, the base's part is already checked and
    # reduced: parse only the new lines and go on from the base's winners.
    if not _extends(data, base_text):
        return _whole(data, name)
    lines, added, _ = _read(data[len(base_text) :], name, base_text)
    return _Side(base.lines + lines, _go_on(base.current, added), added, len(base.lines))


_ID_PREFIX = b'{"id":"'


def _base_lines_of(
    base: bytes, ids: Iterable[str]
) -> tuple[list[tuple[str | None, int, bytes]], bool]:
    """The base's lines that may hold one of ``ids``, as (id or None, line number, line),
    and whether the base has blank lines.

    PERF: this is how the merge of two sides that only appended skips parsing the base.
    A line spelled as the store writes it, ``{"id":"<id>",...``, with no backslash (an
    escape could spell another "id" key) and no second "id" (a later duplicate key is
    the one JSON readers keep), is the line of that id: it is kept only if the id is one
    of ``ids``. Any other line that is not blank is kept with id None, to be parsed, and
    so checked, like any line. The lines skipped are those of ids neither side touched:
    both sides hold them as they are, and so does the result.
    """
    keys = {rid.encode(): rid for rid in ids}
    found: list[tuple[str | None, int, bytes]] = []
    start = len(_ID_PREFIX)
    lines = base.split(b"\n")
    last, blanks = len(lines), False  # the empty item after the last newline is no line
    for number, line in enumerate(lines, 1):
        if line.startswith(_ID_PREFIX) and b"\\" not in line and line.count(b'"id"') == 1:
            end = line.find(b'"', start)
            if end > 0:
                rid = keys.get(line[start:end])
                if rid is not None:
                    found.append((rid, number, line))
                continue
        if line.strip():
            found.append((None, number, line))
        elif number < last:
            blanks = True
    return found, blanks


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
    found: dict[str, list[tuple[int, int, bytes]]] = {}
    if len(side.lines) - side.shared == len(side.added):
        # PERF: as many lines as ids, so one line per id: each id's line is its winner.
        for one in wanted:
            winner = side.added.get(one)
            if winner is not None and winner.raw not in base_lines:
                found[one] = [(winner.version, 0, winner.raw)]
        return found
    known = side.line_ids()
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
    """Merge three JSONL texts; raise NotJsonl if any is not clean JSONL.

    A base that holds conflict markers (the virtual base git makes of two merge bases
    that settled a conflict differently) is settled first, each block keeping only its
    diff3 base section, if any: what the two merge bases disagreed on is left to the
    sides, which are merged record by record against the rest. A one-sided edit is never
    lost to a text merge, and a disagreement both sides still hold is a conflict."""
    # PERF: the merge holds ~10^5 acyclic objects per side; each run of the cycle collector
    # would walk them all (a third of the time of a merge of big rewrites).
    with gc_paused():
        try:
            return _merge(base, ours, theirs, marker_size)
        except _MarkedBase:
            try:
                settled, _ = resolve_conflicts(base, ANCESTOR)
            except ValueError:  # a block left open: not something to guess at
                raise NotJsonl("base: conflict block is not closed") from None
            return _merge(settled, ours, theirs, marker_size)


@dataclass(slots=True)
class _Plan:
    """What the per-id rules need, read from the three texts."""

    b: _Side
    o: _Side
    t: _Side
    base_lines: set[bytes]  # the base's lines (at least those of the ids in `ids`)
    head: bytes  # the result's text up to theirs' lines: ours' lines, each ended
    theirs_new: list[bytes]  # theirs' lines in neither the base nor ours, in file order
    ids: list[str]  # the ids the rules must look at, in the order their lines go out
    # Lines both sides added since the base (a cherry-pick, a commit merged on both):
    # writes both sides saw, in theirs' order. Each is a later base for its id.
    both_added: list[bytes] = field(default_factory=list)


def _plan_whole(base: bytes, ours: bytes, theirs: bytes) -> _Plan:
    """Any three texts: every line of each parsed, every id looked at."""
    b = _whole(base, "base")
    o = _parse_side(ours, "ours", b, base)
    t = _parse_side(theirs, "theirs", b, base)
    base_set = set(b.lines)
    # A side's first `shared` lines are the base's, in base_set already.
    seen = set(base_set)
    ours_added = set(o.lines[o.shared :])
    seen.update(ours_added)
    theirs_new: list[bytes] = []
    both_added: list[bytes] = []
    for line in t.lines[t.shared :]:
        if line not in seen:
            seen.add(line)
            theirs_new.append(line)
        elif line in ours_added and line not in base_set:
            both_added.append(line)
    ids = list(o.current) + [rid for rid in t.current if rid not in o.current]
    ids += [rid for rid in b.current if rid not in o.current and rid not in t.current]
    return _Plan(b, o, t, base_set, _text(o.lines), theirs_new, ids, both_added)


def _plan_appended(base: bytes, ours: bytes, theirs: bytes) -> _Plan:
    """Two sides that are the base's text plus lines: the merge of nearly every pull.

    PERF (bench_merge's rewrite case): an id only one side added lines for needs no rule.
    The file holds the base's lines, then that side's, as the side does, so its current
    version is the side's: nothing to append. Only the ids both sides touched (and those
    of theirs' lines the result drops as already present) are looked at, and only their
    lines of the base are parsed.
    """
    o_lines, o_added, o_blanks = _read(ours[len(base) :], "ours", base)
    t_lines, t_added, _ = _read(theirs[len(base) :], "theirs", base)
    candidates, base_blanks = _base_lines_of(base, t_added)
    base_set = {line for _, _, line in candidates}
    wanted = {rid for rid in t_added if rid in o_added}
    seen = set(o_lines)
    seen.update(base_set)
    theirs_new: list[bytes] = []
    known = {w.raw: rid for rid, w in t_added.items()}
    ours_added = set(o_lines)
    both_added: list[bytes] = []
    for line in t_lines:
        if line in seen:
            # Dropped: its place in the file changes, and with it maybe the current version.
            wanted.add(known.get(line) or jsonl.loads(line)["id"])
            if line in ours_added and line not in base_set:
                both_added.append(line)
        else:
            seen.add(line)
            theirs_new.append(line)
    parse = [(number, line) for rid, number, line in candidates if rid is None or rid in wanted]
    b_current, bad = jsonl.reduce_lines([line for _, line in parse])
    if bad:
        raise _not_jsonl("base", jsonl.BadLine(parse[bad[0].line - 1][0], bad[0].reason))
    for rid, winner in b_current.items():
        if winner.version == jsonl.UNTIMED:
            b_current[rid] = winner._replace(version=0)
    # In the order the whole plan gives them: the base's, ours' new ones, theirs' new ones.
    ids = [rid for rid in b_current if rid in wanted]
    ids += [rid for rid in o_added if rid in wanted and rid not in b_current]
    ids += [rid for rid in t_added if rid in wanted and rid not in b_current and rid not in o_added]
    b = _Side([], b_current, b_current)
    o = _Side(o_lines, _go_on(b_current, o_added, ids), o_added)
    t = _Side(t_lines, _go_on(b_current, t_added, ids), t_added, _line_ids=known)
    if base_blanks or o_blanks or not ours.endswith(b"\n"):
        head = _text([line for line in base.split(b"\n") if line.strip()] + o_lines)
    else:
        head = ours  # PERF: not copied, nor scanned again
    return _Plan(b, o, t, base_set, head, theirs_new, ids, both_added)


def _merge(base: bytes, ours: bytes, theirs: bytes, marker_size: int) -> MergeResult:
    if _extends(ours, base) and _extends(theirs, base):
        plan = _plan_appended(base, ours, theirs)
    else:
        plan = _plan_whole(base, ours, theirs)
    b, o, t, base_set = plan.b, plan.o, plan.t, plan.base_lines

    # The file's current version of each id once both histories are in it is ours', but
    # where theirs' new lines (which come later, and so win ties) hold a version as new:
    # those ids are in theirs_newer, as (version, line).
    theirs_top: dict[str, tuple[int, bytes]] = {}
    known = t.line_ids()
    for line in plan.theirs_new:
        rid, version = _id_and_version(line, t, known)
        found = theirs_top.get(rid)
        if found is None or version >= found[0]:
            theirs_top[rid] = (version, line)
    theirs_newer = {
        rid: newest
        for rid in plan.ids
        if (newest := theirs_top.get(rid)) is not None
        and (rid not in o.current or newest[0] >= o.current[rid].version)
    }

    # PERF: where one side holds the base's line and the file's current version is the
    # other side's line (an id only one side touched), the rules below would take that
    # line and add nothing: settle those ids without a parse.
    rest: list[tuple[str, bytes | None, bytes | None, bytes | None, bytes | None]] = []
    # A write both sides hold since the base (the same line in both) is part of what both
    # started from: the newest such line of an id stands in for its base, as it does when
    # a rebase replays the commits one by one.
    shared_base: dict[str, bytes] = {}
    if plan.both_added:
        shared, _ = jsonl.reduce_lines(plan.both_added)
        shared_base = {rid: winner.raw for rid, winner in shared.items()}
    for rid in plan.ids:
        ow, tw, bw = o.current.get(rid), t.current.get(rid), b.current.get(rid)
        ours_raw = ow.raw if ow is not None else None
        theirs_raw = tw.raw if tw is not None else None
        base_raw = shared_base.get(rid, bw.raw if bw is not None else None)
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

    histories: dict[tuple[str, str], list[dict[str, Any]]] = {}

    def history(name: str, side: _Side, rid: str) -> list[dict[str, Any]]:
        # Per id, the versions this side added since the base, oldest first (ties: file
        # order). Indexed once per side, and only when some id needs it; each id's once.
        found = histories.get((name, rid))
        if found is None:
            if name not in added:
                added[name] = _added_lines(side, base_set, wanted)
            found = [lines.record(line) for _, _, line in sorted(added[name].get(rid, ()))]
            histories[name, rid] = found
        return found

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
        elif (settled := _settle_lives(lines, rid, ours_raw, theirs_raw, base_raw, top)) != b"":
            merged = settled
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
            # The file already reads as the merged record, field times included. (Where
            # it holds the values but not the times, the merged line goes out: the next
            # merge must decide by the times this one did.)
            continue
        appended.append(_at_least(merged, lines.record(merged), top))

    return MergeResult([plan.head, _text([*plan.theirs_new, *appended]), *blocks], conflicts)


def _life(lines: _Lines, raw: bytes | None, base_raw: bytes | None) -> tuple[bool, int]:
    """(live, life) of a side's current line: which life of the id it holds, or ended (a
    record removed from the file ends the base's)."""
    if raw is None:
        return False, life_of(lines.record(base_raw)) if base_raw is not None else 0
    record = lines.record(raw)
    return not jsonl.is_tombstone(record), life_of(record)


def _settle_lives(
    lines: _Lines,
    rid: str,
    ours_raw: bytes | None,
    theirs_raw: bytes | None,
    base_raw: bytes | None,
    top: int,
) -> bytes | None:
    """Where a side deleted the id, or the sides hold different lives of it: the line the
    result must end with (None: no record, where the file has none). b"" when both hold
    the same life, for the field by field merge.

    A delete ends the life it saw, and no later one: an edit made beside it loses to it,
    and a record written again after a delete the other side has not seen lives on. Of
    two lives, the later one wins whole: no field of the older rides into it."""
    ours_live, ours_life = _life(lines, ours_raw, base_raw)
    theirs_live, theirs_life = _life(lines, theirs_raw, base_raw)
    if ours_live and theirs_live:
        if ours_life == theirs_life:
            return b""
        return ours_raw if ours_life > theirs_life else theirs_raw
    if ours_live and ours_life > theirs_life:
        return ours_raw
    if theirs_live and theirs_life > ours_life:
        return theirs_raw
    ended = max(ours_life, theirs_life)
    tombstone = jsonl.tombstone(rid, top)
    return jsonl.dumps({**tombstone, TIMES_KEY: {LIFE: ended}} if ended else tombstone)


def _merge_fields(
    base: dict[str, Any],
    ours: dict[str, Any],
    theirs: dict[str, Any],
    ours_v: int,
    theirs_v: int,
    ours_history: Callable[[], list[dict[str, Any]]],
    theirs_history: Callable[[], list[dict[str, Any]]],
) -> tuple[dict[str, Any], set[str]]:
    """Field by field; the merged record carries the field times it was decided by.

    Where both sides carry their field times (fieldtimes.py), each field takes the value
    of the side that changed it last; equal times with different values are a conflict.
    Otherwise (a side written by another tool), a field changed on one side only (against
    the base) takes that change, and a field changed on both goes to the side that changed
    it more recently, per the versions it added since the base (else its record's version).
    The histories are asked for only then (PERF: most ids have no such field)."""
    ours_times, theirs_times = recorded(ours), recorded(theirs)
    ours_start, theirs_start = created(ours), created(theirs)
    base_times = recorded(base)
    merged: dict[str, Any] = {}
    times: dict[str, int] = {}
    conflicted: set[str] = set()
    for key in _keys(ours, theirs, ours_times or {}, theirs_times or {}):
        if key == "updated_at":
            merged[key] = max(ours_v, theirs_v)
            continue
        if key in (TIMES_KEY, LIFE):
            continue
        ov, tv, bv = ours.get(key, _MISSING), theirs.get(key, _MISSING), base.get(key, _MISSING)
        if ours_times is not None and theirs_times is not None:
            # time_of, inlined (PERF: twice per field of every id both sides changed)
            ours_t = ours_times.get(key, ours_start if ov is not _MISSING else 0)
            theirs_t = theirs_times.get(key, theirs_start if tv is not _MISSING else 0)
            if _value_eq(ov, tv):
                value, when = ov, max(ours_t, theirs_t)
            elif ours_t != theirs_t:
                value, when = (ov, ours_t) if ours_t > theirs_t else (tv, theirs_t)
            else:
                conflicted.add(key)
                value, when = ov, ours_t
        elif _value_eq(ov, tv):
            # The same value on both: the later of the times the sides know it by (a side
            # that carries times may know of a write the other side's lines cannot show).
            value = ov
            when = max(
                _known_time(ours, key, ours_times, ours_history, base, base_times, ours_v),
                _known_time(theirs, key, theirs_times, theirs_history, base, base_times, theirs_v),
            )
        elif _value_eq(tv, bv):
            value = ov
            when = _side_time(ours, key, ours_times, ours_history, bv, ours_v)
        elif _value_eq(ov, bv):
            value = tv
            when = _side_time(theirs, key, theirs_times, theirs_history, bv, theirs_v)
        else:
            ours_t = _side_time(ours, key, ours_times, ours_history, bv, ours_v)
            theirs_t = _side_time(theirs, key, theirs_times, theirs_history, bv, theirs_v)
            if ours_t != theirs_t:
                value, when = (ov, ours_t) if ours_t > theirs_t else (tv, theirs_t)
            else:
                conflicted.add(key)
                value, when = ov, ours_t
        if value is not _MISSING:
            merged[key] = value
        if when > 0 and key not in UNTIMED_KEYS:
            times[key] = when
    start = created(merged)
    times = {key: when for key, when in times.items() if when != start}
    life = life_of(ours)  # the same as theirs' here
    if life:
        times[LIFE] = life
    merged[TIMES_KEY] = times
    return merged, conflicted


def _known_time(
    record: dict[str, Any],
    key: str,
    times: dict[str, int] | None,
    history: Callable[[], list[dict[str, Any]]],
    base: dict[str, Any],
    base_times: dict[str, int] | None,
    version: int,
) -> int:
    """When a side's value of ``key`` was written, as far as the side can tell: its field
    time if it carries them; else the base's time for a value the base holds, or when
    its lines since the base set it."""
    if times is not None:
        return time_of(record, key, times)
    base_value = base.get(key, _MISSING)
    if _value_eq(record.get(key, _MISSING), base_value):
        return time_of(base, key, base_times)
    return _side_time(record, key, times, history, base_value, version)


def _side_time(
    record: dict[str, Any],
    key: str,
    times: dict[str, int] | None,
    history: Callable[[], list[dict[str, Any]]],
    base_value: Any,
    version: int,
) -> int:
    """When a side changed ``key`` to its value: its field time if it carries them, else
    as its history since the base tells."""
    if times is not None:
        return time_of(record, key, times)
    added = history()
    if len(added) < 2:  # PERF: the side's one new version (or none) changed it, if anything
        return version
    return _changed_at(added, key, record.get(key, _MISSING), base_value, version)


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
# What a merge keeps of a base's blocks: the diff3 base section, if there is one, else
# nothing (the two sides are what the merge decides between).
ANCESTOR = "ancestor"


def resolve_conflicts(data: bytes, strategy: str = "newest") -> tuple[bytes, int]:
    """Settle every git-style conflict block in JSONL text; return (text, blocks settled).

    ``ours`` keeps the lines above ``=======``, ``theirs`` those below; ``newest`` keeps
    both, so the one current-version rule decides: the greater ``updated_at`` wins, and on a
    tie the later line, theirs. A diff3 base section (``|||||||``) is dropped. Raises
    ValueError for a block that is not closed, naming its line.
    """
    if strategy not in STRATEGIES and strategy != ANCESTOR:
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
            keep = {
                "ours": ["ours"],
                "theirs": ["theirs"],
                "newest": ["ours", "theirs"],
                ANCESTOR: ["base"],
            }
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
