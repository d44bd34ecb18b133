"""Importing JSONL files written under another store's rule: "the last line wins".

A home-made JSONL store often has one rule: per id, the last line of the file is the
current version, and a tombstone (``{"id": X, "deleted": true}``) as that last line means
deleted. Its lines may lack ``updated_at``, or carry times that went backwards. The
store's own rule orders versions by ``updated_at`` (jsonl.reduce_lines), so copying such
lines as they are would reinterpret them: an earlier line with a greater ``updated_at``
would win. Here each id's current version is decided by the legacy rule, and that one
line is written, byte for byte, as the id's only line in the store, where the store's
rule reads it as current too (and so does every rebuild, check and clone).

Everything is read and validated, and every id looked up, before the first write; the
write itself is one append per file and one cache transaction (Engine.write).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from . import jsonl, log, names
from .errors import AlreadyExistsError, StorePathError, ValidationError
from .fieldtimes import TIMES_KEY, public
from .gcpause import gc_paused
from .maintenance import Problem
from .paths import display_path, is_inside
from .writes import TOMBSTONE_KEY, ids_of, make_request, plan

if TYPE_CHECKING:
    from .cache import Current, Row
    from .store import Store

# The rules a legacy file may have followed. One for now: the option is explicit so that
# reading a file under the wrong rule is never a default.
LAST_LINE_WINS = "last-line-wins"
ORDERS = (LAST_LINE_WINS,)
# What to do with an id the store already holds in another version than the file's.
EXISTING = ("refuse", "keep", "replace")
# How many ids a refusal names before it counts the rest.
SHOWN_IDS = 5


@dataclass(frozen=True, slots=True)
class Source:
    """The bytes of one legacy file and the collection they go to."""

    collection: str
    shown: str  # how messages name it: the path as typed, or "stdin"
    data: bytes
    path: str | None = None  # the file itself (None: stdin)


@dataclass(frozen=True, slots=True)
class LastLine:
    """The line that is an id's current version under the legacy rule."""

    line: int  # 1-based
    raw: bytes  # the line as the file holds it, without the blanks around it
    record: dict[str, Any]

    @property
    def deleted(self) -> bool:
        return jsonl.is_tombstone(self.record)


@dataclass
class LegacyFile:
    """One legacy file read by the last-line rule."""

    winners: dict[str, LastLine]  # in the order ids first appear
    lines: int  # lines that are not blank
    superseded: int  # earlier lines of an id, replaced by a later one
    bad_lines: list[Problem]


@dataclass
class CollectionImport:
    """What an import did with one legacy file: every line that is not blank is counted
    once, as an id's current version (imported, deleted, unchanged, replaced or kept),
    an earlier version (superseded) or a bad line."""

    collection: str
    source: str
    lines: int = 0
    imported: int = 0  # ids new to the store, written as their last line
    deleted: int = 0  # ids new to the store whose last line is a tombstone: not written
    unchanged: int = 0  # ids the store already holds as the file says (a second run)
    replaced: int = 0  # ids the store held otherwise, written again (existing="replace")
    kept: int = 0  # ids the store holds otherwise, left as they are (existing="keep")
    superseded: int = 0
    bad_lines: list[Problem] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.imported + self.replaced


@dataclass
class LegacyImportResult:
    order: str
    existing: str
    collections: dict[str, CollectionImport] = field(default_factory=dict)

    def total(self, name: str) -> int:
        """The sum of one count over the collections (``imported``, ``deleted``...)."""
        return sum(getattr(item, name) for item in self.collections.values())

    @property
    def written(self) -> int:
        return self.total("written")

    @property
    def bad_lines(self) -> list[Problem]:
        return [bad for item in self.collections.values() for bad in item.bad_lines]

    def as_json(self) -> dict[str, Any]:
        counts = ("lines", "imported", "deleted", "unchanged", "replaced", "kept", "superseded")
        return {
            "order": self.order,
            "existing": self.existing,
            "written": self.written,
            **{name: self.total(name) for name in counts},
            "bad_lines": [asdict(bad) for bad in self.bad_lines],
            "collections": {
                name: {
                    "source": item.source,
                    "written": item.written,
                    **{count: getattr(item, count) for count in counts},
                    "bad_lines": len(item.bad_lines),
                }
                for name, item in self.collections.items()
            },
        }


def check_options(order: str, existing: str) -> None:
    if order not in ORDERS:
        raise ValidationError(
            f"unknown order {order!r}: the one rule a legacy file is read by is "
            f"{LAST_LINE_WINS!r}; files that follow the store's own rule (the greatest "
            "updated_at wins) import with import_data()"
        )
    if existing not in EXISTING:
        raise ValidationError(
            f"unknown existing={existing!r}: use one of {', '.join(map(repr, EXISTING))}"
        )


def read_last_line_wins(shown: str, data: bytes) -> LegacyFile:
    """Each id's current version in ``data`` by the legacy rule: its last line that is a
    record. A line that is not one (not JSON, cut short, no id) is reported, never a
    reason to stop: the legacy store skipped it too."""
    winners: dict[str, LastLine] = {}
    bad: list[Problem] = []
    lines = superseded = 0
    # A byte order mark (a file saved by a Windows editor) is not part of the first record.
    split = data.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    for number, raw in enumerate(split, 1):
        raw = raw.strip(b" \t\r")  # a file written with CRLF, a line indented
        if not raw:
            continue
        lines += 1
        parsed = jsonl.parse_line(raw)
        if isinstance(parsed, str):
            if number == len(split) and not data.endswith(b"\n") and parsed != jsonl.MARKER:
                parsed += "; the last line has no newline after it: cut short?"
            bad.append(Problem(shown, number, parsed))
            continue
        rid = parsed["id"]
        if rid in winners:
            superseded += 1
        # A key assigned again keeps its place: ids stay in the order they first appear,
        # the store's order (as compaction keeps it).
        winners[rid] = LastLine(number, raw, parsed)
    return LegacyFile(winners, lines, superseded, bad)


def sources_at(path: str | os.PathLike[str], collection: str | None = None) -> list[Source]:
    """The legacy files at ``path``: one file (its collection ``collection``, else its
    name without .jsonl), or a folder's ``<collection>.jsonl`` files."""
    path = os.fspath(path)
    shown = display_path(path)
    if os.path.isdir(path):
        if collection is not None:
            raise ValidationError(
                f"{shown} is a folder: its <collection>.jsonl files name their collections; "
                "give a collection only with one file"
            )
        entries = sorted(os.listdir(path))
        found = [
            name
            for name in entries
            if name.endswith(names.SUFFIX) and os.path.isfile(os.path.join(path, name))
        ]
        for name in entries:
            if name not in found and not name.startswith("."):
                # Said, not silent: Events.JSONL, loops.jsonl.1 or a sub-folder may be
                # data the user meant to bring.
                log.warning(
                    "%s: not imported (only the folder's <collection>.jsonl files are)",
                    display_path(os.path.join(path, name)),
                )
        if not found:
            raise ValidationError(f"{shown} holds no <collection>.jsonl file to import")
        return [_read(os.path.join(path, name), None) for name in found]
    return [_read(path, collection)]


def _read(path: str, collection: str | None) -> Source:
    shown = display_path(path)
    if collection is None:
        stem = os.path.basename(path).removesuffix(names.SUFFIX)
        if not names.COLLECTION_RE.fullmatch(stem):
            raise ValidationError(
                f"{shown}: {stem!r} is not a valid collection name (1-64 letters, digits, "
                "'_' or '-'): rename the file, or import it alone with --collection NAME"
            )
        collection = stem
    names.validate_collection(collection)
    with open(path, "rb") as handle:
        return Source(collection, shown, handle.read(), os.path.abspath(path))


def import_jsonl(
    store: Store,
    path: str | os.PathLike[str],
    *,
    order: str,
    collection: str | None = None,
    existing: str = "refuse",
) -> LegacyImportResult:
    """Store.import_jsonl: read the files at ``path``, then import_sources()."""
    check_options(order, existing)
    return import_sources(store, sources_at(path, collection), existing=existing)


def import_sources(
    store: Store, sources: Sequence[Source], *, existing: str = "refuse"
) -> LegacyImportResult:
    """Import each id's last line of each source (see the module's docstring).

    An id new to the store gets its last line as it is, or nothing if that line is a
    tombstone. An id the store holds as the file says is left alone (a second run writes
    nothing). An id the store holds otherwise (a different record, a tombstone, a live
    record where the file says deleted) is, by ``existing``: "refuse" (AlreadyExistsError,
    nothing written), "keep" (the store's version stays) or "replace" (the file's version
    written as put() or delete() would write it: a new version, stamped now).
    """
    check_options(LAST_LINE_WINS, existing)
    seen: set[str] = set()
    for source in sources:
        names.validate_collection(source.collection)
        if source.collection in seen:
            raise ValidationError(f"two sources for the collection {source.collection!r}")
        seen.add(source.collection)
        if source.path is not None and is_inside(source.path, store.path):
            raise StorePathError(
                f"{source.shown} is inside the store {display_path(store.path)}: a legacy "
                "file is imported from outside it"
            )
    read = [(source, read_last_line_wins(source.shown, source.data)) for source in sources]
    for source, legacy in read:
        _validate(source, legacy, existing)
    engine = store.engine
    done: list[CollectionImport] = []

    def planned() -> list[tuple[str, list[Row]]]:
        # Run under the lock, inside the write's transaction, and again from the start if
        # git replaces a file meanwhile: every decision is made on what the store holds now.
        done.clear()
        out: list[tuple[str, list[Row]]] = []
        refused: list[tuple[str, list[str]]] = []
        for source, legacy in read:
            name = source.collection
            engine.fresh_locked(name)
            currents = engine.cache.currents(name, list(legacy.winners))
            counts = CollectionImport(
                name,
                source.shown,
                legacy.lines,
                superseded=legacy.superseded,
                bad_lines=legacy.bad_lines,
            )
            rows, differ = _plan_new(legacy, currents, counts)
            if differ and existing == "refuse":
                refused.append((name, differ))
            elif differ and existing == "keep":
                counts.kept = len(differ)
            elif differ:
                rows += _plan_replace(name, legacy, differ, currents)
                counts.replaced = len(differ)
            out.append((name, rows))
            done.append(counts)
        if refused:
            raise _refusal(refused)
        return out

    with gc_paused():
        engine.guarded(lambda: engine.write(planned))
    result = LegacyImportResult(LAST_LINE_WINS, existing)
    result.collections = {counts.collection: counts for counts in done}
    return result


def _validate(source: Source, legacy: LegacyFile, existing: str) -> None:
    """Refuse, before anything is written, a current version the store would not read
    back as the file holds it."""
    for last in legacy.winners.values():
        where = f"{source.shown}:{last.line}"
        if TIMES_KEY in last.record:
            raise ValidationError(
                f"{where}: the field {TIMES_KEY!r} is the store's own bookkeeping (reads "
                "leave it out): rename it in the file, then import again"
            )
        if existing == "replace" and not last.deleted and TOMBSTONE_KEY in last.record:
            # Only refused where such a record may have to be written as a new version,
            # which put() refuses; as the id's only line it reads as a live record.
            raise ValidationError(
                f'{where}: the field "deleted" is reserved for tombstones, and existing='
                '"replace" may write this record as put() does: rename the field'
            )


def _plan_new(
    legacy: LegacyFile, currents: dict[str, Current], counts: CollectionImport
) -> tuple[list[Row], list[str]]:
    """The rows of ids new to the store (their last lines, byte for byte), counted; and the
    ids the store holds in another version than the file's."""
    rows: list[Row] = []
    differ: list[str] = []
    for rid, last in legacy.winners.items():
        found = currents.get(rid)
        if found is None:
            if last.deleted:
                counts.deleted += 1  # nothing to delete: the store never had it
            else:
                # The id's only line: current by the store's rule whatever its times say.
                # Its version is the one a rebuild gives a lone line (an untimed one: 0).
                version = max(jsonl.version_of(last.record), 0)
                rows.append((rid, last.raw.decode(), version, False))
                counts.imported += 1
        elif _same(found, last):
            counts.unchanged += 1
        else:
            differ.append(rid)
    return rows, differ


def _same(found: Current, last: LastLine) -> bool:
    """Whether the store's current version is the file's: both deleted, or the same fields
    and values (the store's field times aside)."""
    line, _, deleted = found
    if deleted or last.deleted:
        return deleted and last.deleted
    return jsonl.same_json(public(jsonl.loads(line)), last.record)


def _plan_replace(
    name: str, legacy: LegacyFile, differ: list[str], currents: dict[str, Current]
) -> list[Row]:
    """Rows that make the file's version current over the store's: a new version, as put()
    or delete() writes it (updated_at above the store's, field times)."""
    from .store import now_ms

    stamp = now_ms()
    live = [dict(legacy.winners[rid].record) for rid in differ if not legacy.winners[rid].deleted]
    dead = [{"id": rid} for rid in differ if legacy.winners[rid].deleted]
    requests = [
        make_request(name, mode, records, stamp)
        for mode, records in (("put", live), ("delete", dead))
        if records
    ]
    return plan(requests, ids_of(requests), {rid: currents[rid] for rid in differ})


def _refusal(refused: list[tuple[str, list[str]]]) -> AlreadyExistsError:
    parts = []
    for name, ids in refused:
        shown = ", ".join(ids[:SHOWN_IDS]) + (
            f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
        )
        parts.append(f"{len(ids)} in {name} ({shown})")
    return AlreadyExistsError(
        f"ids the store already holds in another version than the file's: {'; '.join(parts)}. "
        'Nothing was written: choose existing="keep" (the store\'s versions stay) or '
        '"replace" (the file\'s are written as new versions); `--existing keep|replace` '
        "on the command line"
    )
