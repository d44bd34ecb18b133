"""``git-taskstore-merge BASE OURS THEIRS [MARKER_SIZE [PATH]]``: the merge driver.

Git runs it as ``git-taskstore-merge %O %A %B %L %P`` whenever both sides changed a
``.taskstore/*.jsonl`` file: in merges, rebases, cherry-picks, reverts and stash pops.
The result goes into OURS; exit 0 when clean, 1 when a conflict remains.

It never leaves OURS alone silently: input that is not clean JSONL (conflict markers from
a criss-cross merge base, lines that do not parse) and any internal error fall back to
git's own three-way text merge, with markers, and exit 1. No click here: git starts this
process for every merged file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

USAGE = "usage: git-taskstore-merge BASE OURS THEIRS [MARKER_SIZE [PATH]]"


def _say(message: str) -> None:
    sys.stderr.write(f"git-taskstore-merge: {message}\n")


def text_merge(base: bytes, ours: bytes, theirs: bytes, path: str) -> bytes:
    """git's own three-way text merge (libgit2, through pygit2), markers included.

    The one text merge of the driver: for input that is not clean JSONL and for any
    internal error. pygit2 is imported here only: it costs more than the clean path.
    """
    return text_merge_result(base, ours, theirs, path)[0]


def text_merge_result(base: bytes, ours: bytes, theirs: bytes, path: str) -> tuple[bytes, bool]:
    """text_merge, and whether it merged without a conflict (libgit2 says, not a search
    for markers: a file may hold a marker-like line of its own)."""
    import tempfile

    import pygit2

    def run(repo: pygit2.Repository) -> tuple[bytes, bool]:
        base_e, ours_e, theirs_e = (
            pygit2.IndexEntry(path, repo.create_blob(data), pygit2.enums.FileMode.BLOB)
            for data in (base, ours, theirs)
        )
        result = repo.merge_file_from_index(base_e, ours_e, theirs_e, use_deprecated=False)
        contents: str | bytes = result.contents
        merged = contents.encode() if isinstance(contents, str) else contents
        return merged, bool(result.automergeable)

    found = pygit2.discover_repository(os.getcwd())
    if found:
        return run(pygit2.Repository(found))
    # Outside a repository (a test, a manual run): a throwaway one holds the blobs.
    with tempfile.TemporaryDirectory(prefix="taskstore-merge-") as tmp:
        return run(pygit2.init_repository(tmp, bare=True))


def both_sides(ours: bytes, theirs: bytes, marker_size: int) -> bytes:
    """Both whole files between markers: what is left when even the text merge fails.

    The configured merge command writes the same when no driver can start at all.
    """

    def ended(data: bytes) -> bytes:
        return data if not data or data.endswith(b"\n") else data + b"\n"

    return (
        b"<" * marker_size
        + b" ours\n"
        + ended(ours)
        + b"=" * marker_size
        + b"\n"
        + ended(theirs)
        + b">" * marker_size
        + b" theirs\n"
    )


def fallback_merge(base: bytes, ours: bytes, theirs: bytes, path: str, marker_size: int) -> bytes:
    """The text merge, or if even that fails, both whole files between markers."""
    try:
        return text_merge(base, ours, theirs, path)
    except Exception as exc:
        _say(f"{path}: text merge failed too ({type(exc).__name__}: {exc}); both sides kept")
        return both_sides(ours, theirs, marker_size)


def write_result(ours_path: str, parts: list[bytes]) -> None:
    """Replace OURS with the result: a new file renamed over it, so OURS is never torn.

    No fsync: OURS is git's temporary copy, read back as soon as the driver exits and
    never the file that must survive a crash (git writes that one itself).
    """
    tmp = f"{ours_path}.taskstore-{os.getpid()}.tmp"
    try:
        with open(tmp, "xb") as handle:
            handle.writelines(parts)
        os.chmod(tmp, os.stat(ours_path).st_mode & 0o777)
        os.replace(tmp, ours_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def merge_markdown(
    base: bytes, ours: bytes, theirs: bytes, path: str, marker_size: int
) -> tuple[int, bytes]:
    """An OpenSpec tasks.md (``openspec init`` declares the driver for them): line by line
    when both sides only edited task lines, else git's text merge. (exit code, result)"""
    from .openspec.linemerge import merge_lines

    merged = merge_lines(base, ours, theirs)
    if merged is not None:
        return 0, merged
    try:
        merged, clean = text_merge_result(base, ours, theirs, path)
    except Exception as exc:
        _say(f"{path}: text merge failed ({type(exc).__name__}: {exc}); both sides kept")
        return 1, both_sides(ours, theirs, marker_size)
    return (0 if clean else 1), merged


def merge_files(
    base_path: str, ours_path: str, theirs_path: str, marker_size: int, path: str
) -> int:
    with open(base_path, "rb") as b, open(ours_path, "rb") as o, open(theirs_path, "rb") as t:
        base, ours, theirs = b.read(), o.read(), t.read()
    if path.endswith(".md"):
        code, merged = merge_markdown(base, ours, theirs, path, marker_size)
        write_result(ours_path, [merged])
        return code
    try:
        from .merge import NotJsonl, merge_records

        try:
            result = merge_records(base, ours, theirs, marker_size=marker_size)
        except NotJsonl as exc:
            _say(f"{path}: not clean JSONL ({exc}); falling back to a text merge")
            parts, clean = [fallback_merge(base, ours, theirs, path, marker_size)], False
        else:
            parts, clean = result.parts, result.clean
            if not clean:
                ids = ", ".join(c.id for c in result.conflicts[:5])
                more = f" and {len(result.conflicts) - 5} more" if len(result.conflicts) > 5 else ""
                _say(
                    f"{path}: {len(result.conflicts)} record(s) changed on both sides at the "
                    f"same updated_at ({ids}{more}): run `git taskstore resolve {path}` "
                    "(--ours, --theirs or --newest), then `git add` it"
                )
    except Exception as exc:  # a bug of ours must not cost the user a side of the merge
        _say(f"{path}: internal error ({type(exc).__name__}: {exc}); falling back to a text merge")
        parts, clean = [fallback_merge(base, ours, theirs, path, marker_size)], False
    write_result(ours_path, parts)
    return 0 if clean else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        print(__doc__.split("\n\n", 1)[1].strip() if __doc__ else "")
        return 0
    if not 3 <= len(args) <= 5:
        _say(USAGE)
        return 2
    marker_size = 7
    if len(args) >= 4:
        try:
            marker_size = int(args[3])
        except ValueError:
            _say(f"MARKER_SIZE must be a number, got {args[3]!r}")
            return 2
        if marker_size < 1:
            marker_size = 7
    path = args[4] if len(args) == 5 else args[1]
    try:
        return merge_files(args[0], args[1], args[2], marker_size, path)
    except OSError as exc:
        _say(f"{path}: {exc.strerror}: {exc.filename}")
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
