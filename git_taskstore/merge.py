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

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from . import jsonl

_MISSING: Any = object()


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


def _parse_side(data: bytes, name: str, base: _Side | None = None) -> _Side:
    # PERF (bench/bench_merge.py): a side is nearly always the base plus appended lines.
    # Then the base's part is already checked and reduced: parse only the new lines, going
    # on from a copy of the base's winners (reduce_lines is made to continue). The same
    # winners and line numbers as parsing the whole file, at a third of the cost.
    start, first_line = 0, 1
    lines: list[bytes] = []
    winners: dict[str, jsonl.Winner] = {}
    if base is not None and base.data.endswith(b"\n") and data.startswith(base.data):
        start, first_line = len(base.data), base.data.count(b"\n") + 1
        lines, winners = list(base.lines), dict(base.current)
    tail = data[start:] if start else data
    # From the base's last newline: conflict_marker_line looks for "\n=======", so a
    # separator on the first new line would slip through it (line 1 is that empty rest).
    marker = jsonl.conflict_marker_line(data[start - 1 :] if start else data)
    if marker is not None:
        raise NotJsonl(
            f"{name}: conflict marker on line {marker + first_line - (2 if start else 1)}"
        )
    lines += [line for line in tail.split(b"\n") if line.strip()]
    # reduce the text as
    # it is (reduce_lines skips blank lines itself), not the lines without the blank ones,
    # so the line number NotJsonl gives is the bad line's number in the file.
    winners, bad = jsonl.reduce_lines(tail, first_line, winners)
    if bad:
        raise NotJsonl(f"{name}: line {bad[0].line}: {bad[0].reason}")
    return _Side(data, lines, winners)


def _canonical(raw: bytes | None) -> bytes | None:
    if raw is None:
        return None
    return orjson.dumps(orjson.loads(raw), option=orjson.OPT_SORT_KEYS)


def _same(a: bytes | None, b: bytes | None) -> bool:
    return a == b or (a is not None and b is not None and _canonical(a) == _canonical(b))


def _is_deleted(raw: bytes | None) -> bool:
    # A record absent from a file that had it in the base counts as deleted there.
    return raw is None or jsonl.is_tombstone(orjson.loads(raw))


def merge_records(base: bytes, ours: bytes, theirs: bytes, *, marker_size: int = 7) -> MergeResult:
    """Merge three JSONL texts; raise NotJsonl if any is not clean JSONL."""
    b = _parse_side(base, "base")
    o = _parse_side(ours, "ours", b)
    t = _parse_side(theirs, "theirs", b)

    seen = set(b.lines)
    seen.update(o.lines)
    theirs_new: list[bytes] = []
    for line in t.lines:
        if line not in seen:
            seen.add(line)
            theirs_new.append(line)
    out_lines = o.lines + theirs_new

    # The file's current version of each id once both histories are in it: ours, then
    # theirs' new lines, which come later and so win ties.
    file_winner = dict(o.current)
    for rid, w in jsonl.reduce_lines(b"\n".join(theirs_new))[0].items():
        if rid not in file_winner or w.version >= file_winner[rid].version:
            file_winner[rid] = w

    appended: list[bytes] = []
    conflicts: list[Conflict] = []
    blocks: list[bytes] = []
    base_set = set(b.lines)
    histories: dict[str, dict[str, list[dict[str, Any]]]] = {}

    def history(name: str, side: _Side) -> dict[str, list[dict[str, Any]]]:
        # Built once per side, and only when some id needs it.
        if name not in histories:
            histories[name] = _new_history(side, base_set)
        return histories[name]

    ids = list(o.current) + [rid for rid in t.current if rid not in o.current]
    ids += [rid for rid in b.current if rid not in o.current and rid not in t.current]
    for rid in ids:
        ow, tw, bw, current = (
            o.current.get(rid),
            t.current.get(rid),
            b.current.get(rid),
            file_winner.get(rid),
        )
        # PERF: the same line on both sides and already the file's current version (every
        # id neither side touched): the rules below would take it and add nothing.
        if (
            ow is not None
            and tw is not None
            and current is not None
            and ow.raw == tw.raw == current.raw
        ):
            continue
        base_raw = bw.raw if bw is not None else None
        ours_v, ours_raw = (ow.version, ow.raw) if ow is not None else (0, None)
        theirs_v, theirs_raw = (tw.version, tw.raw) if tw is not None else (0, None)
        top = max(
            ours_v,
            theirs_v,
            bw.version if bw is not None else 0,
            current.version if current is not None else 0,
        )
        if _same(ours_raw, theirs_raw) or _same(theirs_raw, base_raw):
            merged = ours_raw
        elif _same(ours_raw, base_raw):
            merged = theirs_raw
        elif _is_deleted(ours_raw) or _is_deleted(theirs_raw):
            merged = jsonl.dumps(jsonl.tombstone(rid, top))
        else:
            # Both sides hold a live record here (deletes were settled above).
            assert ours_raw is not None and theirs_raw is not None
            merged_record, conflicted = _merge_fields(
                base_raw,
                ours_raw,
                theirs_raw,
                ours_v,
                theirs_v,
                history("ours", o).get(rid, []),
                history("theirs", t).get(rid, []),
            )
            if conflicted:
                conflicts.append(Conflict(rid, sorted(conflicted)))
                blocks.append(
                    _conflict_block(
                        merged_record, conflicted, ours_raw, theirs_raw, top, marker_size
                    )
                )
                continue
            merged = jsonl.dumps(merged_record)
        if merged is None:
            # Removed from the file on the side that wins. Lines the other side kept would
            # bring it back, so a tombstone goes after them (either way round, no record).
            if current is None or _is_deleted(current.raw):
                continue
            merged = jsonl.dumps(jsonl.tombstone(rid, top))
        if current is not None and _same(current.raw, merged):
            continue
        appended.append(_at_least(merged, top))

    body = out_lines + appended
    data = b"".join(line + b"\n" for line in body) + b"".join(blocks)
    return MergeResult(data, conflicts)


def _merge_fields(
    base_raw: bytes | None,
    ours_raw: bytes,
    theirs_raw: bytes,
    ours_v: int,
    theirs_v: int,
    ours_history: list[dict[str, Any]],
    theirs_history: list[dict[str, Any]],
) -> tuple[dict[str, Any], set[str]]:
    """Field by field. A field changed on both sides goes to the side that changed it
    more recently: when a side first held its current value, per the versions it added
    since the base (else its record's version). Comparing whole records instead would let
    an old edit ride on a newer edit of another field, and would make two clones that
    merged the same push disagree at one updated_at."""
    base = orjson.loads(base_raw) if base_raw is not None else {}
    ours = orjson.loads(ours_raw)
    theirs = orjson.loads(theirs_raw)
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
            ours_t = _changed_at(ours_history, key, ov, bv, ours_v)
            theirs_t = _changed_at(theirs_history, key, tv, bv, theirs_v)
            if ours_t != theirs_t:
                value = ov if ours_t > theirs_t else tv
            else:
                conflicted.add(key)
                value = ov
        if value is not _MISSING:
            merged[key] = value
    return merged, conflicted


def _new_history(side: _Side, base_lines: set[bytes]) -> dict[str, list[dict[str, Any]]]:
    """Per id, the versions this side added since the base, oldest first (ties: file order)."""
    found: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
    for index, line in enumerate(side.lines):
        if line in base_lines:
            continue
        record = orjson.loads(line)
        found.setdefault(record["id"], []).append((jsonl.version_of(record), index, record))
    return {
        rid: [r for _, _, r in sorted(items, key=lambda x: x[:2])] for rid, items in found.items()
    }


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
    # 1, 1.0 and true are different values in JSON.
    return bool(
        orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)
    )


def _at_least(raw: bytes, version: int) -> bytes:
    """The line with updated_at raised to ``version`` if it is lower (it must win)."""
    record = orjson.loads(raw)
    if jsonl.version_of(record) >= version:
        return raw
    record["updated_at"] = max(version, jsonl.version_of(record))
    return jsonl.dumps(record)


def _conflict_block(
    merged: dict[str, Any],
    conflicted: set[str],
    ours_raw: bytes,
    theirs_raw: bytes,
    top: int,
    marker_size: int,
) -> bytes:
    """Two candidate lines: the field-merged record with ours' or theirs' values."""
    ours, theirs = orjson.loads(ours_raw), orjson.loads(theirs_raw)
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
