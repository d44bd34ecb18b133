"""Record history read from git: every version of one record, and record-level diffs.

Git holds every committed state of the JSONL files, so the history of a record is the
current version of its id (the one rule of ``jsonl.reduce_lines``) in each commit that
changed it. ``record_log`` walks the commits, ``record_diff`` compares two states.

pygit2 is imported inside the functions: it costs ~80 ms of start-up that no other
command should pay. Speed comes from not parsing what cannot matter: a commit whose file
has the same blob as its parent's is skipped unread, each blob is read once, and only the
lines that contain the id's bytes are parsed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pygit2
from pygit2.enums import SortMode

from . import log
from .errors import NotFoundError, TaskstoreError
from .fieldtimes import TIMES_KEY, public
from .jsonl import BadLine, Winner, loads, reduce_lines, same_json
from .layout import list_files
from .names import COLLECTION_RE, SUFFIX, validate_collection, validate_id
from .paths import STORE_DIRNAME, display_path

Record = dict[str, Any]

# Characters that no JSON encoder in use escapes inside a string (Go escapes <, > and &
# for HTML; some escape '/' and "'"). An id made of these alone is found on disk exactly as
# its quoted self, '"t-1"', which never matches inside "t-10".
_PLAIN_ID_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - set("\"\\/<>&'")


# --- results -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChanges:
    """How one version of a record differs from another, field by field."""

    added: dict[str, Any]  # field -> new value (the field was absent)
    removed: dict[str, Any]  # field -> old value (the field is gone)
    changed: dict[str, tuple[Any, Any]]  # field -> (old value, new value)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "changed": {k: {"old": old, "new": new} for k, (old, new) in self.changed.items()},
        }


NO_CHANGES = FieldChanges({}, {}, {})


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One commit that changed a record, and the record as that commit left it.

    ``action`` is "created" (first appearance: every field in ``changes.added``),
    "changed", "deleted" (a tombstone), "restored" (live again after a tombstone: every
    field added) or "removed" (no line of the id any more, as after the file was deleted).
    ``changes`` compare with the version in the commit's first parent.
    """

    commit: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    commit_time: int  # seconds since the epoch (committer time)
    commit_offset: int  # minutes east of UTC
    summary: str
    collection: str
    record_id: str
    action: str
    record: Record | None
    changes: FieldChanges

    @property
    def deleted(self) -> bool:
        return self.record is not None and self.record.get("deleted") is True

    @property
    def date(self) -> dt.datetime:
        """The commit time in the commit's own time zone."""
        zone = dt.timezone(dt.timedelta(minutes=self.commit_offset))
        return dt.datetime.fromtimestamp(self.commit_time, tz=zone)

    def to_json(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "parents": list(self.parents),
            "author": {"name": self.author_name, "email": self.author_email},
            "time": self.commit_time,
            "offset_minutes": self.commit_offset,
            "date": self.date.isoformat(),
            "summary": self.summary,
            "collection": self.collection,
            "id": self.record_id,
            "action": self.action,
            "deleted": self.deleted,
            "record": self.record,
            "changes": self.changes.to_json(),
        }


@dataclass(frozen=True, slots=True)
class CollectionDiff:
    """Record-level changes of one collection between two states, in file order."""

    added: list[str]  # live in B, absent or tombstoned in A
    deleted: list[str]  # live in A, absent or tombstoned in B
    changed: dict[str, FieldChanges]  # live in both, different

    def __bool__(self) -> bool:
        return bool(self.added or self.deleted or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "deleted": self.deleted,
            "changed": {k: v.to_json() for k, v in self.changed.items()},
        }


# --- comparing versions --------------------------------------------------------------------


def field_changes(old: Record | None, new: Record | None) -> FieldChanges:
    # Field times are bookkeeping of every edit, not a change of the record's.
    old = {k: v for k, v in (old or {}).items() if k != TIMES_KEY}
    new = {k: v for k, v in (new or {}).items() if k != TIMES_KEY}
    return FieldChanges(
        added={k: v for k, v in new.items() if k not in old},
        removed={k: v for k, v in old.items() if k not in new},
        changed={k: (old[k], v) for k, v in new.items() if k in old and not same_json(old[k], v)},
    )


def _is_live(record: Record | None) -> bool:
    return record is not None and record.get("deleted") is not True


def _action(old: Record | None, new: Record | None) -> tuple[str, FieldChanges]:
    if new is None:
        return "removed", NO_CHANGES
    if not _is_live(new):
        return "deleted", NO_CHANGES
    if old is None:
        return "created", field_changes(None, new)
    if not _is_live(old):
        return "restored", field_changes(None, new)
    return "changed", field_changes(old, new)


# --- the repository ------------------------------------------------------------------------


def _open(repo_dir: str, store_dir: str | None) -> tuple[pygit2.Repository, str, str]:
    """The repository, the store folder, and the store's path in trees ("" or "a/b/")."""

    start = os.path.abspath(repo_dir)
    try:
        found = pygit2.discover_repository(start)
    except pygit2.GitError:
        found = None
    repo = pygit2.Repository(found) if found else None
    if repo is None or repo.is_bare or not repo.workdir:
        raise TaskstoreError(
            f"not inside a git work tree: {start}; record history is read from the "
            "commits of the store's files, so run this inside the repository"
        )
    top = os.path.realpath(repo.workdir)
    store = os.path.abspath(store_dir or os.path.join(top, STORE_DIRNAME))
    rel = os.path.relpath(os.path.realpath(store), top)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise TaskstoreError(
            f"the store {display_path(store)} is outside the git work tree "
            f"{display_path(top)}: its history is not in this repository"
        )
    prefix = "" if rel == os.curdir else rel.replace(os.sep, "/") + "/"
    return repo, store, prefix


@contextlib.contextmanager
def _trusting_reads() -> Iterator[None]:
    """Read objects without re-hashing each one, as git itself reads them.

    libgit2 checks every object it inflates against its id by default: SHA-1 (with
    collision detection) of every version of a growing file was 85% of the time of a log.
    Corruption is what `git fsck` is for. The option is process-wide and has no getter;
    it is put back to libgit2's default afterwards.
    """

    pygit2.settings.enable_strict_hash_verification(False)
    try:
        yield
    finally:
        pygit2.settings.enable_strict_hash_verification(True)


def _tree_collections(repo: pygit2.Repository, tree: pygit2.Tree, prefix: str) -> dict[str, Any]:
    """Collection name -> blob id of its file in ``tree``, sorted by name."""

    folder: pygit2.Object = tree
    if prefix:
        try:
            folder = tree[prefix.rstrip("/")]
        except KeyError:
            return {}
    if not isinstance(folder, pygit2.Tree):
        return {}
    found: dict[str, Any] = {}
    for entry in folder:
        name = entry.name or ""
        if entry.type_str == "blob" and name.endswith(SUFFIX):
            collection = name[: -len(SUFFIX)]
            if COLLECTION_RE.fullmatch(collection):
                found[collection] = entry.id
    return dict(sorted(found.items()))


def _worktree_collections(store: str) -> dict[str, str]:
    """Collection name -> path of its file in the store folder on disk, sorted by name."""
    try:
        names = list_files(store).collections
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return {name: os.path.join(store, name + SUFFIX) for name in names}


def _resolve_tree(repo: pygit2.Repository, rev: str) -> pygit2.Tree:

    try:
        obj = repo.revparse_single(rev)
        return obj.peel(pygit2.Tree)
    except (KeyError, ValueError, pygit2.GitError):
        if rev.strip() == "HEAD" and repo.head_is_unborn:
            raise TaskstoreError("unknown revision 'HEAD': there are no commits yet") from None
        raise TaskstoreError(
            f"unknown revision {rev!r}: not a commit or tree in this repository "
            "(see `git log --oneline`)"
        ) from None


def _summary(commit: pygit2.Commit) -> str:
    try:
        message = commit.message
    except (UnicodeDecodeError, LookupError):
        message = commit.raw_message.decode("utf-8", "replace")
    return message.strip().split("\n", 1)[0].strip()


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value or ""


# --- the version of one id in a file -------------------------------------------------------


class _Versions:
    """The current version of one id in files, each blob read and parsed once.

    Only lines containing the id's bytes are parsed; the current-version rule then runs on
    those lines alone, in file order, so ties still go to the later line.
    """

    def __init__(self, repo: pygit2.Repository, record_id: str) -> None:
        self.repo = repo
        self.record_id = record_id
        self.needle = _needle(record_id)
        self.by_blob: dict[Any, Record | None] = {}
        # Most commits change other records: the id's lines are then the same as in the
        # parent, and the version comes from here without parsing.
        self.by_lines: dict[bytes, Record | None] = {}
        # The last file searched and the (start, end) of its lines holding the needle.
        self.last_data = b""
        self.last_spans: list[tuple[int, int]] = []

    def of_blob(self, blob_id: Any) -> Record | None:
        if blob_id is None:
            return None
        try:
            return self.by_blob[blob_id]
        except KeyError:
            pass
        _, data = self.repo.odb.read(blob_id)
        version = self.by_blob[blob_id] = self.of_data(data)
        return version

    def of_data(self, data: bytes) -> Record | None:
        if self.needle is None:
            # Nothing to search for: every line is parsed, and not kept as a cache key.
            return self._reduce(data)
        last = self.last_data
        if data.endswith(b"\n") and len(data) <= len(last) and last.startswith(data):
            # Walking back through an append-only file, the older version is a prefix of
            # the newer one: its lines are the newer one's that end within it, and a
            # compare costs far less than a search.
            size = len(data)
            spans = [span for span in self.last_spans if span[1] < size]
        else:
            spans = _spans_with(data, self.needle)
        self.last_data = data
        self.last_spans = spans
        lines = b"\n".join([data[start:end] for start, end in spans])
        try:
            return self.by_lines[lines]
        except KeyError:
            pass
        version = self.by_lines[lines] = self._reduce(lines)
        return version

    def _reduce(self, lines: bytes) -> Record | None:
        winner = reduce_lines(lines)[0].get(self.record_id)
        return None if winner is None else _loads(winner.raw)


def _needle(record_id: str) -> bytes | None:
    """Bytes every line of the id contains, or None to read every line."""
    if all(c in _PLAIN_ID_CHARS for c in record_id):
        return b'"' + record_id.encode() + b'"'
    # Another spelling may escape the rest: look for the longest plain run.
    best = ""
    run = ""
    for c in record_id:
        run = run + c if c in _PLAIN_ID_CHARS else ""
        if len(run) > len(best):
            best = run
    return best.encode() or None


def _spans_with(data: bytes, needle: bytes) -> list[tuple[int, int]]:
    """(start, end) of each line that holds ``needle``; ``end`` is its newline's offset."""
    find = data.find
    rfind = data.rfind
    spans = []
    pos = find(needle)
    while pos >= 0:
        start = rfind(b"\n", 0, pos) + 1
        end = find(b"\n", pos)
        if end < 0:
            end = len(data)
        spans.append((start, end))
        pos = find(needle, end)
    return spans


def _loads(raw: bytes) -> Record:
    """A version as readers see it: field times are the merge's bookkeeping."""
    value: Record = public(loads(raw))
    return value


# --- log -----------------------------------------------------------------------------------


def record_log(
    repo_dir: str,
    store_dir: str | None,
    record_id: str,
    collection: str | None = None,
    max_count: int | None = None,
) -> list[LogEntry]:
    """Every version of a record through the commits that changed it, newest first.

    Commits are walked from HEAD in topological and time order. A commit is listed when
    the current version of the id in its file differs from the one in its first parent; a
    merge is not listed when it kept one parent's version as it was (that parent's own
    commit lists the change), like git's history simplification. ``collection`` defaults
    to the first collection at HEAD whose file holds the id (a tombstone counts), else the
    newest in history that held it. ``store_dir`` None is ``.taskstore`` at the top of the
    work tree. Raises NotFoundError when no commit holds the record.
    """

    validate_id(record_id)
    if collection is not None:
        validate_collection(collection)
    repo, store, prefix = _open(repo_dir, store_dir)
    if repo.head_is_unborn:
        raise NotFoundError(f"no commits yet: {record_id!r} has no history")
    with _trusting_reads():
        versions = _Versions(repo, record_id)
        if collection is None:
            collection = _find_collection(repo, prefix, versions, store)
        entries = _walk(repo, prefix + collection + SUFFIX, collection, versions, max_count)
    if not entries:
        raise NotFoundError(
            f"{collection}/{record_id}: no commit reachable from HEAD holds this record"
        )
    return entries


def _walk(
    repo: pygit2.Repository,
    path: str,
    collection: str,
    versions: _Versions,
    max_count: int | None,
) -> list[LogEntry]:

    blob_of_commit: dict[Any, Any] = {}

    def blob_at(commit_id: Any, tree: pygit2.Tree | None = None) -> Any:
        try:
            return blob_of_commit[commit_id]
        except KeyError:
            pass
        if tree is None:
            try:
                tree = repo[commit_id].peel(pygit2.Tree)
            except KeyError:  # a shallow clone's boundary: no parent to compare with
                blob_of_commit[commit_id] = None
                return None
        try:
            entry = tree[path]
            blob = entry.id if entry.type_str == "blob" else None
        except KeyError:
            blob = None
        blob_of_commit[commit_id] = blob
        return blob

    entries: list[LogEntry] = []
    head = repo.head.peel(pygit2.Commit)
    for commit in repo.walk(head.id, SortMode.TOPOLOGICAL | SortMode.TIME):
        blob = blob_at(commit.id, commit.tree)
        parent_ids = commit.parent_ids
        parent_blob = blob_at(parent_ids[0]) if parent_ids else None
        if blob == parent_blob:
            continue
        new = versions.of_blob(blob)
        old = versions.of_blob(parent_blob)
        if same_json(new, old):
            continue
        if any(same_json(new, versions.of_blob(blob_at(p))) for p in parent_ids[1:]):
            continue
        action, changes = _action(old, new)
        author = commit.author
        entries.append(
            LogEntry(
                commit=str(commit.id),
                parents=tuple(str(p) for p in parent_ids),
                author_name=_text(author.raw_name).strip(),
                author_email=_text(author.raw_email).strip(),
                commit_time=commit.commit_time,
                commit_offset=commit.commit_time_offset,
                summary=_summary(commit),
                collection=collection,
                record_id=versions.record_id,
                action=action,
                record=new,
                changes=changes,
            )
        )
        if max_count is not None and len(entries) >= max_count:
            break
    return entries


def _find_collection(repo: pygit2.Repository, prefix: str, versions: _Versions, store: str) -> str:
    """The first collection at HEAD whose file holds the id, else the newest in history."""

    head = repo.head.peel(pygit2.Commit)
    at_head = [
        name
        for name, blob in _tree_collections(repo, head.tree, prefix).items()
        if versions.of_blob(blob) is not None
    ]
    if at_head:
        if len(at_head) > 1:
            log.warning(
                "%r is in %d collections (%s): showing %s; choose with --collection",
                versions.record_id,
                len(at_head),
                ", ".join(at_head),
                at_head[0],
            )
        return at_head[0]
    seen_trees: set[Any] = set()
    for commit in repo.walk(head.id, SortMode.TOPOLOGICAL | SortMode.TIME):
        tree = commit.tree
        try:
            folder_id = tree[prefix.rstrip("/")].id if prefix else tree.id
        except KeyError:
            continue
        if folder_id in seen_trees:
            continue
        seen_trees.add(folder_id)
        for name, blob in _tree_collections(repo, tree, prefix).items():
            if versions.of_blob(blob) is not None:
                return name
    raise NotFoundError(
        f"no record {versions.record_id!r} in any collection of {display_path(store)}, "
        "at HEAD or in its history"
    )


# --- diff ----------------------------------------------------------------------------------


def record_diff(
    repo_dir: str,
    store_dir: str | None,
    rev_a: str = "HEAD",
    rev_b: str | None = None,
    collection: str | None = None,
) -> dict[str, CollectionDiff]:
    """Record-level changes from revision ``rev_a`` to ``rev_b`` (None: the files on disk).

    Added ids are live in B and absent or tombstoned in A; deleted ids the reverse;
    changed ids are live in both with different current versions. A collection on one
    side only is all added or all deleted. Only collections with changes are returned,
    sorted by name; ``collection`` limits the comparison to one.
    """

    if collection is not None:
        validate_collection(collection)
    repo, store, prefix = _open(repo_dir, store_dir)
    tree_a = _resolve_tree(repo, rev_a)
    files_a = _tree_collections(repo, tree_a, prefix)
    files_b: dict[str, Any]
    if rev_b is None:
        files_b = _worktree_collections(store)
    else:
        files_b = _tree_collections(repo, _resolve_tree(repo, rev_b), prefix)
    names = sorted(set(files_a) | set(files_b))
    if collection is not None:
        names = [n for n in names if n == collection]

    with _trusting_reads():
        return _diff(repo, store, prefix, rev_a, rev_b, files_a, files_b, names)


def _diff(
    repo: pygit2.Repository,
    store: str,
    prefix: str,
    rev_a: str,
    rev_b: str | None,
    files_a: dict[str, Any],
    files_b: dict[str, Any],
    names: list[str],
) -> dict[str, CollectionDiff]:

    result: dict[str, CollectionDiff] = {}
    for name in names:
        blob_a = files_a.get(name)
        data_a = repo.odb.read(blob_a)[1] if blob_a is not None else b""
        source_b = files_b.get(name)
        if source_b is None:
            data_b = b""
        elif rev_b is None:
            try:
                with open(source_b, "rb") as handle:
                    data_b = handle.read()
            except FileNotFoundError:  # removed since the folder was listed
                data_b = b""
            if blob_a is not None and pygit2.hash(data_b) == blob_a:
                continue
        else:
            if source_b == blob_a:
                continue
            data_b = repo.odb.read(source_b)[1]
        where_a = f"{rev_a}:{prefix}{name}{SUFFIX}"
        where_b = (
            display_path(os.path.join(store, name + SUFFIX))
            if rev_b is None
            else f"{rev_b}:{prefix}{name}{SUFFIX}"
        )
        diff = _compare(_current(data_a, where_a), _current(data_b, where_b))
        if diff:
            result[name] = diff
    return result


def _current(data: bytes, where: str) -> dict[str, Winner]:
    winners, bad = reduce_lines(data)
    if bad:
        _warn_bad(where, bad)
    return winners


def _warn_bad(where: str, bad: list[BadLine]) -> None:
    first = bad[0]
    more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
    log.warning("%s:%d: %s: line skipped%s", where, first.line, first.reason, more)


def _compare(a: dict[str, Winner], b: dict[str, Winner]) -> CollectionDiff:
    added: list[str] = []
    deleted: list[str] = []
    changed: dict[str, FieldChanges] = {}
    for record_id, was in a.items():
        now = b.get(record_id)
        if not was.deleted and (now is None or now.deleted):
            deleted.append(record_id)
    for record_id, new in b.items():
        if new.deleted:
            continue
        old = a.get(record_id)
        if old is None or old.deleted:
            added.append(record_id)
        elif old.raw != new.raw:
            changes = field_changes(_loads(old.raw), _loads(new.raw))
            if changes:
                changed[record_id] = changes
    return CollectionDiff(added, deleted, changed)
