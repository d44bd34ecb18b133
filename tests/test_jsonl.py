"""The on-disk format: parsing, the current-version rule, validation and safe writes."""

from __future__ import annotations

import os
import re
import stat
import zlib
from pathlib import Path

import orjson
import pytest

from git_taskstore import Store, ValidationError
from git_taskstore.files import atomic_write
from git_taskstore.freshness import Digest
from git_taskstore.jsonl import (
    APPEND_BLOCK_LINES,
    UNTIMED,
    BadLine,
    Winner,
    append_lines,
    conflict_marker_line,
    line_of,
    parse_line,
    reduce_lines,
)
from git_taskstore.names import MAX_ID_BYTES, validate_collection, validate_field, validate_id


def line(**fields: object) -> bytes:
    return orjson.dumps(fields)


def lines(*records: bytes) -> bytes:
    return b"".join(record + b"\n" for record in records)


def state(data: bytes) -> dict[str, tuple[int, int, bool]]:
    """id -> (version, winning line, deleted) under the current-version rule."""
    winners, _ = reduce_lines(data)
    return {rid: (w.version, w.line, w.deleted) for rid, w in winners.items()}


def bad_lines(data: bytes) -> list[int]:
    return [b.line for b in reduce_lines(data)[1]]


# --- parse_line -------------------------------------------------------------------------


def test_parse_line_returns_the_record() -> None:
    assert parse_line(b'{"id":"a","title":"x","n":1}') == {"id": "a", "title": "x", "n": 1}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id":"a",', "not valid JSON"),
        (b"hello", "not valid JSON"),
        (b'{"id":"caf\xe9"}', "not valid UTF-8"),
        (b"\xff\xfe\x00", "not valid UTF-8"),
        (b'["id","a"]', "not a JSON object (found an array)"),
        (b'"a"', "not a JSON object (found a string)"),
        (b"42", "not a JSON object (found a number)"),
        (b"true", "not a JSON object (found a boolean)"),
        (b"null", "not a JSON object (found null)"),
        (b'{"title":"no id"}', 'no non-blank string "id"'),
        (b'{"id":""}', 'no non-blank string "id"'),
        (b'{"id":"   "}', 'no non-blank string "id"'),
        (b'{"id":"\\t\\n"}', 'no non-blank string "id"'),
        (b'{"id":42}', 'no non-blank string "id"'),
        (b'{"id":null}', 'no non-blank string "id"'),
        (orjson.dumps({"id": "x" * (MAX_ID_BYTES + 1)}), "longer than 256 bytes"),
        # 86 three-byte characters: 86 characters but 258 bytes.
        (orjson.dumps({"id": "\u20ac" * 86}), "longer than 256 bytes"),
    ],
)
def test_parse_line_names_the_reason_a_line_is_not_a_record(raw: bytes, reason: str) -> None:
    result = parse_line(raw)
    assert isinstance(result, str)
    assert reason in result


@pytest.mark.parametrize("record_id", ["x" * MAX_ID_BYTES, "\u20ac" * 85, " padded ", "a"])
def test_parse_line_accepts_ids_up_to_the_byte_limit(record_id: str) -> None:
    assert parse_line(orjson.dumps({"id": record_id})) == {"id": record_id}


# --- reduce_lines: the current-version rule ---------------------------------------------


def test_greatest_updated_at_wins_wherever_its_line_is() -> None:
    data = lines(
        line(id="a", v="new", updated_at=300),
        line(id="a", v="old", updated_at=100),
        line(id="a", v="mid", updated_at=200),
    )
    winners, bad = reduce_lines(data)
    assert bad == []
    assert orjson.loads(winners["a"].raw)["v"] == "new"
    assert (winners["a"].version, winners["a"].line) == (300, 1)


def test_on_equal_updated_at_the_later_line_wins() -> None:
    data = lines(
        line(id="a", v="first", updated_at=100),
        line(id="a", v="second", updated_at=100),
        line(id="a", v="older", updated_at=99),
    )
    winners, _ = reduce_lines(data)
    assert orjson.loads(winners["a"].raw)["v"] == "second"
    assert winners["a"].line == 2


def test_created_at_stands_in_when_there_is_no_updated_at() -> None:
    # Immutable records of the Rust crate (signals) carry only created_at.
    data = lines(
        line(id="s", v="later", created_at=500),
        line(id="s", v="earlier", created_at=400),
    )
    assert state(data)["s"] == (500, 1, False)


def test_updated_at_takes_precedence_over_created_at() -> None:
    data = lines(
        line(id="a", v="x", created_at=900, updated_at=100),
        line(id="a", v="y", created_at=50, updated_at=200),
    )
    assert state(data)["a"] == (200, 2, False)


def test_a_record_without_timestamps_ranks_untimed_and_later_lines_win() -> None:
    data = lines(line(id="a", v=1), line(id="a", v=2))
    winners, _ = reduce_lines(data)
    assert winners["a"].version == UNTIMED  # no earlier line of "a" here: the caller ranks it
    assert orjson.loads(winners["a"].raw)["v"] == 2


def test_a_line_without_a_timestamp_is_no_older_than_the_lines_before_it() -> None:
    """A legacy tombstone (the Rust crate writes them) after a timed version deletes the
    record; a timed line after it wins again only with a newer version. (Mutation: rank
    an untimed line as version 0, and the record comes back.)"""
    data = lines(line(id="a", v=1, updated_at=500), line(id="a", deleted=True))
    winners, _ = reduce_lines(data)
    assert winners["a"].deleted and winners["a"].version == 500
    again = data + lines(line(id="a", v=2, updated_at=500))
    assert not reduce_lines(again)[0]["a"].deleted  # a tie: the later line


def test_a_boolean_updated_at_is_not_a_timestamp() -> None:
    data = lines(line(id="a", updated_at=True, created_at=7))
    assert state(data)["a"][0] == 7


def test_ids_are_reduced_independently_in_first_appearance_order() -> None:
    data = lines(
        line(id="b", updated_at=1),
        line(id="a", updated_at=1),
        line(id="b", updated_at=2),
        line(id="c", updated_at=1),
    )
    assert list(state(data)) == ["b", "a", "c"]
    assert state(data)["b"] == (2, 3, False)


def test_a_newer_tombstone_deletes_and_an_older_line_cannot_resurrect() -> None:
    data = lines(
        line(id="a", title="x", updated_at=100),
        line(id="a", deleted=True, updated_at=200),
        line(id="a", title="stale edit", updated_at=150),
    )
    assert state(data)["a"] == (200, 2, True)


def test_a_newer_live_line_after_a_tombstone_recreates_the_record() -> None:
    data = lines(
        line(deleted=True, id="a", updated_at=200),
        line(id="a", title="again", updated_at=300),
    )
    assert state(data)["a"] == (300, 2, False)


@pytest.mark.parametrize("flag", [False, "true", 1, None])
def test_only_deleted_true_makes_a_tombstone(flag: object) -> None:
    assert state(lines(line(id="a", deleted=flag, updated_at=1)))["a"][2] is False


def test_bad_lines_are_reported_with_one_based_numbers_and_blank_lines_skipped() -> None:
    data = (
        line(id="a", updated_at=1)
        + b"\n\n"  # line 2 is blank
        + b"   \n"  # line 3 is whitespace only
        + b"{not json\n"  # line 4
        + b"[1,2]\n"  # line 5
        + line(id="b", updated_at=1)  # line 6
        + b"\n"
        + b'{"id":""}\n'  # line 7
        + b'{"id":"caf\xe9"}\n'  # line 8
        + orjson.dumps({"id": "y" * 300})  # line 9, the last one, without a newline
    )
    winners, bad = reduce_lines(data)
    assert set(winners) == {"a", "b"}
    assert winners["b"].line == 6
    assert [b.line for b in bad] == [4, 5, 7, 8, 9]
    reasons = {b.line: b.reason for b in bad}
    assert "not valid JSON" in reasons[4]
    assert "not a JSON object" in reasons[5]
    assert '"id"' in reasons[7]
    assert "UTF-8" in reasons[8]
    assert "256 bytes" in reasons[9]


def test_a_multibyte_id_over_the_byte_limit_is_a_bad_line() -> None:
    data = lines(orjson.dumps({"id": "\u20ac" * 86}), orjson.dumps({"id": "\u20ac" * 85}))
    winners, bad = reduce_lines(data)
    assert list(winners) == ["\u20ac" * 85]
    assert [b.line for b in bad] == [1]


def test_first_line_numbers_lines_of_a_chunk_as_lines_of_the_file() -> None:
    data = lines(b"garbage", line(id="a", updated_at=1))
    winners, bad = reduce_lines(data, first_line=41)
    assert bad == [BadLine(41, bad[0].reason)]
    assert winners["a"].line == 42


def test_crlf_line_endings_still_parse() -> None:
    data = line(id="a", updated_at=1) + b"\r\n" + line(id="b", updated_at=1) + b"\r\n"
    winners, bad = reduce_lines(data)
    assert set(winners) == {"a", "b"}
    assert bad == []


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id":"a","updated_at":5}',
        b'{"id":"   "}',
        b'{"id":5}',
        b"[]",
        b"nope",
        b'{"id":"\xff"}',
        orjson.dumps({"id": "x" * 257}),
        orjson.dumps({"id": "\u20ac" * 86}),
        orjson.dumps({"id": "\u20ac" * 85}),
    ],
)
def test_reduce_lines_and_parse_line_agree_on_what_is_a_record(raw: bytes) -> None:
    winners, bad = reduce_lines(raw + b"\n")
    assert isinstance(parse_line(raw), dict) == bool(winners)
    assert isinstance(parse_line(raw), str) == bool(bad)


def test_reduce_lines_block_by_block_matches_one_pass() -> None:
    """The cache reads files in blocks cut at newlines; the result must not depend on it."""
    data = lines(
        line(id="a", v=1, updated_at=10),
        b"bad",
        line(id="b", v=1, created_at=5),
        line(id="a", v=2, updated_at=10),
        line(id="a", v=3, updated_at=9),
        line(id="b", deleted=True, updated_at=6),
    )
    whole, whole_bad = reduce_lines(data)
    parts = data.split(b"\n")
    winners: dict[str, Winner] = {}
    bad: list[BadLine] = []
    first, second, third = parts[:2], parts[2:4], parts[4:]  # lines 1-2, 3-4, 5-
    number = 1
    for block in (first, second, third):
        reduce_lines(b"\n".join(block), number, winners, bad)
        number += len(block)
    assert winners == whole
    assert list(winners) == list(whole)
    assert bad == whole_bad == [BadLine(2, bad[0].reason)]


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tasks", "a", "Task_List-2", "x" * 64, "0"])
def test_valid_collection_names(name: str) -> None:
    assert validate_collection(name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "a b", "a/b", "../x", "tasks.jsonl", "t\u00e2che", "a\n", None, 5]
)
def test_invalid_collection_names(name: object) -> None:
    with pytest.raises(ValidationError, match="collection name"):
        validate_collection(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["status", "created_at", "A1", "_", "x" * 64])
def test_valid_field_names(name: str) -> None:
    assert validate_field(name) == name


@pytest.mark.parametrize(
    "name", ["", "x" * 65, "a-b", "a.b", "a b", "$", "a'b", "a]", "data')--", None]
)
def test_invalid_field_names(name: object) -> None:
    with pytest.raises(ValidationError, match="field name"):
        validate_field(name)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["a", "x" * MAX_ID_BYTES, "\u20ac" * 85, "with space"])
def test_valid_ids(value: str) -> None:
    assert validate_id(value) == value


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "blank"),
        ("   ", "blank"),
        ("\t\n", "blank"),
        ("x" * (MAX_ID_BYTES + 1), "257 bytes"),
        ("\u20ac" * 86, "258 bytes"),
        (5, "must be a string"),
        (None, "must be a string"),
    ],
)
def test_invalid_ids(value: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        validate_id(value)


def test_record_line_is_the_compact_line() -> None:
    record = {"id": "a", "title": "x", "n": None, "tags": ["é"]}
    assert line_of(record) == '{"id":"a","title":"x","n":null,"tags":["é"]}'


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (float("nan"), "v"),
        ([1, {"w": float("inf")}], "v[1].w"),
        ({"deep": [None, float("-inf")]}, "v.deep[1]"),
    ],
)
def test_record_line_refuses_nan_with_its_path(value: object, path: str) -> None:
    # orjson writes NaN as null: the check must look wherever a null came out.
    with pytest.raises(ValidationError, match=rf"field {re.escape(repr(path))} holds NaN"):
        line_of({"id": "a", "v": value})


def test_record_line_falls_back_to_the_stdlib_for_what_orjson_refuses() -> None:
    # Ints wider than 64 bits keep their digits; nested non-str keys become strings, as
    # the stdlib writes them.
    assert line_of({"id": "a", "big": 2**70}) == '{"id":"a","big":1180591620717411303424}'
    assert line_of({"id": "a", "m": {1: "x"}}) == '{"id":"a","m":{"1":"x"}}'
    with pytest.raises(ValidationError, match="holds NaN"):
        line_of({"id": "a", "big": 2**70, "f": float("nan")})
    with pytest.raises(ValidationError, match="not JSON-serialisable"):
        line_of({"id": "a", "s": {1, 2}})


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([{"id": "a"}], "JSON object, got an array"),
        ("a", "JSON object, got a string"),
        (None, "JSON object, got null"),
        ({"title": "x"}, 'no "id"'),
        ({"id": ""}, "blank"),
        ({"id": 7}, "must be a string"),
        ({"id": "a", 3: "x"}, "field names must be strings"),
    ],
)
def test_record_line_rejects(record: object, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        line_of(record)


# --- append_lines -----------------------------------------------------------------------


def test_append_lines_creates_the_file_and_writes_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    assert append_lines(str(path), ['{"id":"a"}', '{"id":"b"}']) == (0, 22)
    assert path.read_bytes() == b'{"id":"a"}\n{"id":"b"}\n'
    assert append_lines(str(path), ['{"id":"c"}']) == (22, 11)
    assert path.read_bytes() == b'{"id":"a"}\n{"id":"b"}\n{"id":"c"}\n'


def test_append_lines_feeds_the_digest_every_byte_it_writes(tmp_path: Path) -> None:
    # Blocks of APPEND_BLOCK_LINES lines: what the cache hashes must be exactly what
    # reached the file, the newline that ends a torn line included.
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"id":"torn"')
    lines = [f'{{"id":"r{i}"}}' for i in range(APPEND_BLOCK_LINES * 2 + 3)]
    digest = Digest()
    start, size = append_lines(str(path), lines, digest)
    appended = path.read_bytes()[start:]
    assert (digest.offset, size) == (len(appended), len(appended))
    assert digest.lines == appended.count(b"\n") == len(lines) + 1
    assert (digest.crc, digest.adler) == (zlib.crc32(appended), zlib.adler32(appended))


def test_a_torn_last_line_stays_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    torn = b'{"id":"a","updated_at":1}\n{"id":"b","tit'
    path.write_bytes(torn)
    start, size = append_lines(str(path), ['{"id":"c","updated_at":2}'])
    assert (start, size) == (len(torn), len(b'\n{"id":"c","updated_at":2}\n'))
    data = path.read_bytes()
    assert data == torn + b'\n{"id":"c","updated_at":2}\n'
    winners, bad = reduce_lines(data)
    assert set(winners) == {"a", "c"}
    assert [b.line for b in bad] == [2]


def test_append_after_a_complete_last_line_adds_no_blank_line(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'{"id":"a"}\n')
    append_lines(str(path), ['{"id":"b"}'])
    assert path.read_bytes() == b'{"id":"a"}\n{"id":"b"}\n'


def test_append_lines_writes_into_the_file_now_at_the_path(tmp_path: Path) -> None:
    # git checkout replaces files; each append must reach the current file, not an old inode.
    path = tmp_path / "t.jsonl"
    append_lines(str(path), ['{"id":"a"}'])
    atomic_write(str(path), b'{"id":"z"}\n')
    append_lines(str(path), ['{"id":"b"}'])
    assert path.read_bytes() == b'{"id":"z"}\n{"id":"b"}\n'


# --- atomic_write -----------------------------------------------------------------------


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_bytes(b"old\n")
    os.chmod(path, 0o600)
    inode = path.stat().st_ino
    with open(path, "rb") as reader:
        atomic_write(str(path), b"new\n")
        # A reader of the old file keeps seeing the old bytes: the new file was renamed in.
        assert reader.read() == b"old\n"
    assert path.read_bytes() == b"new\n"
    assert path.stat().st_ino != inode
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["t.jsonl"]


def test_atomic_write_creates_a_new_file_readable_by_all(tmp_path: Path) -> None:
    path = tmp_path / "new.jsonl"
    atomic_write(str(path), b"x\n")
    assert path.read_bytes() == b"x\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_atomic_write_removes_its_temp_file(tmp_path: Path) -> None:
    # The rename fails because a non-empty folder is in the way.
    target = tmp_path / "t.jsonl"
    target.mkdir()
    (target / "keep").write_bytes(b"kept")
    with pytest.raises(OSError):
        atomic_write(str(target), b"data\n")
    assert sorted(os.listdir(tmp_path)) == ["t.jsonl"]
    assert (target / "keep").read_bytes() == b"kept"


# --- conflict_marker_line ---------------------------------------------------------------


def test_no_conflict_markers() -> None:
    assert conflict_marker_line(lines(line(id="a"), line(id="b"))) is None
    assert conflict_marker_line(b"") is None


def test_marker_text_inside_a_json_value_is_not_a_marker() -> None:
    data = lines(line(id="a", note="<<<<<<< HEAD"), line(id="b", note="=======\n>>>>>>> x"))
    assert conflict_marker_line(data) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"id":"a"}\n<<<<<<< HEAD\n{"id":"b"}\n=======\n{"id":"c"}\n>>>>>>> br\n', 2),
        (b'{"id":"a"}\n{"id":"b"}\n=======\n', 3),
        (b'{"id":"a"}\n>>>>>>> theirs\n', 2),
        (b"<<<<<<< ours\n|||||||base\n=======\n>>>>>>> theirs", 1),
        (b'{"id":"a"}\n<<<<<<< HEAD\n|||||||  merged common ancestors\n', 2),
    ],
)
def test_the_first_conflict_marker_line_is_found(data: bytes, expected: int) -> None:
    assert conflict_marker_line(data) == expected


def test_a_winner_holds_the_winning_line_and_the_line_its_id_first_appeared_on() -> None:
    first = line(id="a", updated_at=3)
    newest = line(id="a", updated_at=5)
    data = lines(line(id="b", updated_at=1), first, b"junk", newest, line(id="a", updated_at=4))
    winners, _ = reduce_lines(data)
    assert winners["a"] == Winner(5, 4, newest, False, first_line=2)
    assert winners["b"].first_line == 1


@pytest.mark.parametrize(
    "value", [b"9223372036854775808", b"1" + b"0" * 30, b"-" + b"9" * 25, b"1e300"]
)
def test_a_version_beyond_64_bits_is_clamped_not_a_crash(tmp_path: Path, value: bytes) -> None:
    """Found by review: such an updated_at (a line arriving through git, a legacy import)
    made every read of its collection end in an OverflowError traceback."""
    folder = tmp_path / ".taskstore"
    folder.mkdir()
    (folder / "things.jsonl").write_bytes(b'{"id":"a","updated_at":' + value + b'}\n{"id":"b"}\n')
    with Store.open(tmp_path) as store:
        assert {r["id"] for r in store.collection("things").list()} == {"a", "b"}
        for rid in ("a", "b"):
            store.collection("things").put({"id": rid, "x": 1})
            assert store.collection("things").get(rid)["x"] == 1  # type: ignore[index]
