"""Importing legacy JSONL stores whose rule was "the last line of an id wins".

The legacy data is generated here: timestamps that go backwards, lines without any,
tombstones with and without times, ids re-created after a tombstone, corrupt and cut
lines, unicode written raw and escaped. What each id's current version should be comes
from an oracle written from the legacy rule alone (the stdlib's json, the last line of
each id), never from the code under test; the store is read back through its public API,
its files byte for byte, and again after the cache is deleted and rebuilt.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from testing import assert_fails, data, git, init_repo, ok
from testing.inprocess import cli
from testing.stores import file_lines, snapshot

from git_taskstore import AlreadyExistsError, Store, StorePathError, ValidationError

CLOCK = 1_700_000_000_000


# --- the oracle: the legacy rule, written from its definition -------------------------


def last_lines(data: bytes) -> tuple[dict[str, bytes], list[int], int]:
    """Per id its last line that is a record (ids in the order they first appear), the
    numbers of the lines that are not records, and how many lines are not blank."""
    last: dict[str, bytes] = {}
    bad: list[int] = []
    counted = 0
    for number, raw in enumerate(data.split(b"\n"), 1):
        raw = raw.strip(b" \t\r")
        if not raw:
            continue
        counted += 1
        try:
            value = json.loads(raw.decode("utf-8"), parse_constant=not_json)
        except ValueError:  # not UTF-8, not JSON (NaN and Infinity are not JSON either)
            bad.append(number)
            continue
        if not isinstance(value, dict) or not isinstance(value.get("id"), str):
            bad.append(number)
            continue
        if not value["id"].strip():
            bad.append(number)
            continue
        last[value["id"]] = raw
    return last, bad, counted


def not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def is_tombstone(raw: bytes) -> bool:
    return json.loads(raw).get("deleted") is True


def same_bytes(record: dict[str, Any] | None, raw: bytes) -> bool:
    """A record read back holds exactly the line's fields, in order, of the same JSON
    types (1.0 is not 1, true is not 1)."""
    return record is not None and orjson.dumps(record) == orjson.dumps(orjson.loads(raw))


# --- legacy data ---------------------------------------------------------------------

TITLES = ["Plan the loop", "été ✓", "日本語のタスク", "emoji 🚀 ok", 'quote " and \\ slash', ""]


def record_line(rng: random.Random, rid: str, clock: int) -> bytes:
    """One legacy version of ``rid``: any JSON, timestamps as a careless writer left them."""
    record: dict[str, Any] = {"id": rid}
    fields: dict[str, Any] = {
        "title": rng.choice(TITLES),
        "status": rng.choice(["running", "done", "zombie"]),
        "iteration": rng.choice([3, "3", 3.0, None, True]),
        "tags": rng.sample(["a", "β", "c"], rng.randrange(3)),
        "meta": {"parent": rng.choice([None, "loop-1"]), "depth": rng.randrange(4)},
        "big": 123456789012345678901234567890,  # wider than 64 bits: kept as written
    }
    for key in rng.sample(sorted(fields), rng.randrange(1, len(fields) + 1)):
        record[key] = fields[key]
    times = rng.random()
    if times < 0.3:
        pass  # no timestamp at all
    elif times < 0.5:
        record["updated_at"] = clock - rng.randrange(1, 10_000_000)  # the clock went back
    elif times < 0.6:
        record["created_at"] = clock
    else:
        record["created_at"] = CLOCK
        record["updated_at"] = clock
    if rng.random() < 0.5:
        rng_items = list(record.items())
        rng.shuffle(rng_items)
        record = dict([("id", rid), *[(k, v) for k, v in rng_items if k != "id"]])
    separators = rng.choice([None, (",", ":")])
    return json.dumps(record, ensure_ascii=rng.random() < 0.5, separators=separators).encode()


def corrupt_line(rng: random.Random, good: bytes) -> bytes:
    return rng.choice(
        [
            good[: rng.randrange(1, len(good) - 1)],  # a write cut short
            b"not json at all",
            b"[1, 2, 3]",
            b'{"title": "a record without an id"}',
            b'{"id": "", "v": 1}',
            b'{"id": 42}',
            b'{"id": "x", "v": "\xff\xfe not UTF-8"}',
            b'{"id": "x", "v": NaN}',
        ]
    )


def legacy_data(seed: int, lines: int, ids: int) -> bytes:
    """A legacy file: versions, tombstones (timed or not), re-creations, bad lines."""
    rng = random.Random(seed)
    out: list[bytes] = []
    clock = CLOCK
    for _ in range(lines):
        clock += rng.randrange(1, 5000)
        rid = rng.choice([f"loop-{rng.randrange(ids)}", f"lööp-{rng.randrange(ids // 10 + 1)}"])
        roll = rng.random()
        if roll < 0.05:
            out.append(corrupt_line(rng, record_line(rng, rid, clock)))
        elif roll < 0.15:
            tomb: dict[str, Any] = {"id": rid, "deleted": True}
            if rng.random() < 0.5:
                tomb["updated_at"] = clock - rng.randrange(0, 10_000_000)
            out.append(json.dumps(tomb).encode())
        else:
            out.append(record_line(rng, rid, clock))
        if rng.random() < 0.01:
            out.append(b"")
    # The last line cut short, with no newline after it: what a crash leaves.
    return b"\n".join(out) + b"\n" + record_line(rng, "loop-0", clock)[:25]


def reinterpreted(data: bytes) -> int:
    """How many ids the store's own rule (greatest updated_at, untimed lines tying) would
    read otherwise than the legacy rule: the reason the option exists."""
    last, _, _ = last_lines(data)
    best: dict[str, tuple[int, bytes]] = {}
    for raw in data.split(b"\n"):
        try:
            value = json.loads(raw.decode("utf-8"))
            rid = value["id"]
        except (ValueError, TypeError, KeyError):
            continue
        if not isinstance(rid, str) or rid not in last:
            continue
        stamp = value.get("updated_at", value.get("created_at"))
        version = stamp if isinstance(stamp, int) else best.get(rid, (0, b""))[0]
        if rid not in best or version >= best[rid][0]:
            best[rid] = (version, raw)
    return sum(1 for rid, raw in last.items() if best[rid][1] != raw)


# --- checks ----------------------------------------------------------------------------


def assert_holds_last_lines(store: Store, collection: str, legacy: bytes) -> None:
    """Every id's current version is its last legacy line: the fields byte for byte, the
    store's file holding exactly those lines (no tombstone for an id it never had), in
    the order the ids first appeared."""
    last, _, _ = last_lines(legacy)
    live = {rid: raw for rid, raw in last.items() if not is_tombstone(raw)}
    coll = store.collection(collection)
    for rid, raw in last.items():
        got = coll.get(rid)
        if is_tombstone(raw):
            assert got is None, rid
        else:
            assert same_bytes(got, raw), (rid, got, raw)
    assert [r["id"] for r in coll.list()] == list(live)
    assert coll.count() == len(live)
    assert file_lines(store.file_path(collection)) == list(live.values())


def reopened_from_scratch(store_dir: str) -> Store:
    """The store opened again with its cache deleted: a rebuild from the JSONL files."""
    for suffix in ("", "-wal", "-shm"):
        path = os.path.join(store_dir, "taskstore.db" + suffix)
        if os.path.exists(path):
            os.unlink(path)
    return Store.open_dir(store_dir)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --- hand-written cases ----------------------------------------------------------------

CASES = b"\n".join(
    [
        b'{"id": "skew", "v": 1, "updated_at": 1700000009000}',  # 1
        b'{"id": "untimed", "v": 1, "updated_at": 1700000000000}',  # 2
        b'{"id": "skew", "v": 2, "updated_at": 1700000001000}',  # 3: the clock went back
        b'{"id": "untimed", "v": 2}',  # 4: no timestamp
        b'{"id": "gone", "v": 1, "created_at": 5}',  # 5
        b'{"id": "gone", "deleted": true}',  # 6: a tombstone without a time
        b'{"id": "back", "v": 1, "updated_at": 1700000005000}',  # 7
        b'{"id": "back", "deleted": true, "updated_at": 1700000006000}',  # 8
        b'{"id": "back", "v": 3, "updated_at": 1700000002000}',  # 9: re-created, older time
        b'{"id": "caf\\u00e9", "title": "\\u00e9t\\u00e9 \xe2\x9c\x93", "n": '
        b"123456789012345678901234567890, "
        b'"f": 1.0, "ok": true}\r',  # 10: escaped and raw UTF-8, a 30-digit integer, CRLF
        b"not json",  # 11
        b'{"id": "trunc", "v": 1, "upd',  # 12: cut short in the middle of the file
        b"[1, 2]",  # 13
        b'{"title": "no id"}',  # 14
        b"",  # 15: blank, not counted
        b'{"id": "skew", "v": 3, "updated_at": 1700000000500',  # 16: cut short, no newline
    ]
)


def test_each_ids_last_line_is_current_whatever_its_times_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # bad lines are named by the path as typed
    write(tmp_path / "legacy" / "loops.jsonl", CASES)
    with Store.open(tmp_path / "repo") as store:
        result = store.import_jsonl("legacy/loops.jsonl", order="last-line-wins")
        loops = store.collection("loops")
        assert loops.get("skew") == {"id": "skew", "v": 2, "updated_at": 1700000001000}
        # No updated_at (nor created_at) added to a line that had none.
        assert loops.get("untimed") == {"id": "untimed", "v": 2}
        assert loops.get("gone") is None
        assert loops.get("back") == {"id": "back", "v": 3, "updated_at": 1700000002000}
        assert same_bytes(loops.get("café"), CASES.split(b"\n")[9].strip())
        # The store's file holds the legacy lines themselves: escapes, spacing and the
        # 30 digits (which reads give as a float, the parser's limit) all kept.
        assert file_lines(store.file_path("loops")) == [
            b'{"id": "skew", "v": 2, "updated_at": 1700000001000}',
            b'{"id": "untimed", "v": 2}',
            b'{"id": "back", "v": 3, "updated_at": 1700000002000}',
            CASES.split(b"\n")[9].rstrip(b"\r"),
        ]
    counts = result.collections["loops"]
    assert (counts.imported, counts.deleted, counts.superseded) == (4, 1, 5)
    assert (counts.unchanged, counts.replaced, counts.kept, counts.lines) == (0, 0, 0, 15)
    assert [(bad.path, bad.line) for bad in result.bad_lines] == [
        ("legacy/loops.jsonl", number) for number in (11, 12, 13, 14, 16)
    ]
    assert "not valid JSON" in result.bad_lines[0].message
    assert "cut short" in result.bad_lines[-1].message  # the last line, with no newline
    assert "JSON object" in result.bad_lines[2].message
    assert '"id"' in result.bad_lines[3].message
    assert result.written == 4
    # The store's own rule, applied to the file by a rebuild, reads the same.
    with reopened_from_scratch(str(tmp_path / "repo" / ".taskstore")) as fresh:
        assert fresh.check() == []
        assert_holds_last_lines(fresh, "loops", CASES)


def test_without_the_option_the_stores_rule_reads_the_same_lines_otherwise(
    tmp_path: Path,
) -> None:
    """The plain import is unchanged: the greatest updated_at wins. On these lines that
    is another version than the legacy store's, which is why the option is explicit."""
    records = [orjson.loads(raw) for raw in CASES.split(b"\n")[:4]]
    with Store.open(tmp_path) as store:
        store.import_data({"loops": records})
        loops = store.collection("loops")
        assert loops.get("skew") == {"id": "skew", "v": 1, "updated_at": 1700000009000}
        assert "updated_at" in loops.get("untimed")  # type: ignore[operator]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_generated_legacy_data_survives_a_rebuild(tmp_path: Path, seed: int) -> None:
    legacy = legacy_data(seed, lines=3000, ids=300)
    assert reinterpreted(legacy) > 20  # the data does exercise the difference
    last, bad, counted = last_lines(legacy)
    path = write(tmp_path / "legacy" / "loops.jsonl", legacy)
    store_dir = str(tmp_path / ".taskstore")
    with Store.open(tmp_path) as store:
        result = store.import_jsonl(path, order="last-line-wins")
        assert_holds_last_lines(store, "loops", legacy)
    counts = result.collections["loops"]
    assert [b.line for b in counts.bad_lines] == bad
    deleted = sum(1 for raw in last.values() if is_tombstone(raw))
    assert (counts.imported, counts.deleted) == (len(last) - deleted, deleted)
    # Every line that is not blank is accounted for, once.
    assert counts.lines == counted == len(last) + counts.superseded + len(bad)
    with reopened_from_scratch(store_dir) as fresh:
        assert fresh.check() == []
        assert_holds_last_lines(fresh, "loops", legacy)


def test_a_second_run_writes_nothing(tmp_path: Path) -> None:
    legacy = write(tmp_path / "legacy" / "loops.jsonl", legacy_data(4, lines=500, ids=60))
    with Store.open(tmp_path) as store:
        first = store.import_jsonl(legacy, order="last-line-wins")
        before = snapshot(store.path)
        again = store.import_jsonl(legacy, order="last-line-wins")
        assert snapshot(store.path) == before
    assert again.written == 0
    counts = again.collections["loops"]
    assert counts.unchanged == first.collections["loops"].imported
    assert counts.deleted == first.collections["loops"].deleted


def test_a_byte_order_mark_does_not_cost_the_first_record(tmp_path: Path) -> None:
    legacy = tmp_path / "loops.jsonl"
    legacy.write_bytes(b'\xef\xbb\xbf{"id": "a", "x": 1}\r\n{"id": "b", "x": 2}\r\n')
    with Store.open(tmp_path) as store:
        result = store.import_jsonl(legacy, order="last-line-wins")
        assert result.bad_lines == []
        assert store.collection("loops").get("a") == {"id": "a", "x": 1}
        assert file_lines(store.file_path("loops"))[0] == b'{"id": "a", "x": 1}'


# --- ids the store already holds ----------------------------------------------------------

EXISTING_LEGACY = b"\n".join(
    [
        b'{"id": "same", "v": 1}',
        b'{"id": "other", "v": "legacy", "created_at": 7}',
        b'{"id": "dead-here", "v": "legacy"}',
        b'{"id": "live-here", "v": 1}',
        b'{"id": "live-here", "deleted": true}',
        b'{"id": "both-dead", "deleted": true}',
        b'{"id": "new", "v": "legacy"}',
    ]
)


def seeded(tmp_path: Path) -> Store:
    """A store holding versions of the legacy ids: one the same, the others not."""
    store = Store.open(tmp_path)
    store.import_jsonl(
        write(tmp_path / "first.jsonl", b'{"id": "same", "v": 1}\n'),
        collection="loops",
        order="last-line-wins",
    )
    loops = store.collection("loops")
    loops.put({"id": "other", "v": "store"})
    for rid in ("dead-here", "live-here", "both-dead"):
        loops.put({"id": rid, "v": "store"})
    loops.delete("dead-here")
    loops.delete("both-dead")
    return store


def test_existing_ids_that_differ_are_refused_by_default_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    legacy = write(tmp_path / "legacy" / "loops.jsonl", EXISTING_LEGACY)
    with seeded(tmp_path) as store:
        before = snapshot(store.path)
        with pytest.raises(AlreadyExistsError) as refused:
            store.import_jsonl(legacy, order="last-line-wins")
        assert snapshot(store.path) == before
        assert store.collection("loops").get("new") is None
    message = str(refused.value)
    assert "3 in loops (other, dead-here, live-here)" in message
    assert "keep" in message and "replace" in message
    assert "same" not in message.split("(")[1] and "both-dead" not in message


def test_existing_keep_leaves_the_stores_versions(tmp_path: Path) -> None:
    legacy = write(tmp_path / "legacy" / "loops.jsonl", EXISTING_LEGACY)
    with seeded(tmp_path) as store:
        held = {rid: store.collection("loops").get(rid) for rid in ("other", "live-here")}
        result = store.import_jsonl(legacy, order="last-line-wins", existing="keep")
        loops = store.collection("loops")
        assert {rid: loops.get(rid) for rid in held} == held
        assert loops.get("dead-here") is None
        assert loops.get("new") == {"id": "new", "v": "legacy"}
    counts = result.collections["loops"]
    assert (counts.kept, counts.unchanged, counts.imported, counts.replaced) == (3, 2, 1, 0)


def test_existing_replace_writes_the_files_versions_as_new_versions(tmp_path: Path) -> None:
    legacy = write(tmp_path / "legacy" / "loops.jsonl", EXISTING_LEGACY)
    with seeded(tmp_path) as store:
        loops = store.collection("loops")
        old = loops.get("other")
        assert old is not None
        result = store.import_jsonl(legacy, order="last-line-wins", existing="replace")
        other = loops.get("other")
        assert other is not None
        # The legacy fields, its own created_at kept; updated_at above the store's.
        assert {k: v for k, v in other.items() if k != "updated_at"} == {
            "id": "other",
            "v": "legacy",
            "created_at": 7,
        }
        assert other["updated_at"] > old["updated_at"]
        back = loops.get("dead-here")
        assert back is not None and back["v"] == "legacy"
        assert loops.get("live-here") is None
        assert loops.get("same") == {"id": "same", "v": 1}
        assert loops.get("new") == {"id": "new", "v": "legacy"}
        assert result.collections["loops"].replaced == 3
        state = store.export_data()
    with reopened_from_scratch(os.path.join(tmp_path, ".taskstore")) as fresh:
        assert fresh.export_data() == state
        assert fresh.check() == []


def test_a_pending_debounced_write_counts_as_existing(tmp_path: Path) -> None:
    legacy = write(tmp_path / "loops.jsonl", b'{"id": "a", "v": "legacy"}\n')
    with Store.open(tmp_path / "repo", debounce_ms=60_000) as store:
        store.collection("loops").put({"id": "a", "v": "pending"})
        with pytest.raises(AlreadyExistsError, match=r"1 in loops \(a\)"):
            store.import_jsonl(legacy, order="last-line-wins")
        store.import_jsonl(legacy, order="last-line-wins", existing="keep")
        assert store.collection("loops").get("a")["v"] == "pending"  # type: ignore[index]


# --- validation and sources --------------------------------------------------------------


def test_a_folder_imports_each_collection_and_validates_all_before_writing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "legacy"
    write(folder / "loops.jsonl", b'{"id": "l1"}\r\n{"id": "l1", "v": 2}\r\n')
    write(folder / "signals.jsonl", b'{"id": "s1", "created_at": 3}\n')
    write(folder / "notes.txt", b"not a collection: left alone")
    bad = write(folder / "events.jsonl", b'{"id": "e1", "_times": {"v": 1}}\n')
    with Store.open(tmp_path / "repo") as store:
        before = snapshot(store.path)
        with pytest.raises(ValidationError, match=r"events\.jsonl:1: the field '_times'"):
            store.import_jsonl(folder, order="last-line-wins")
        assert snapshot(store.path) == before  # not even the valid collections
        bad.write_bytes(b'{"id": "e1"}\n')
        result = store.import_jsonl(folder, order="last-line-wins")
        assert sorted(result.collections) == ["events", "loops", "signals"]
        assert store.collection("loops").get("l1") == {"id": "l1", "v": 2}
        assert file_lines(store.file_path("loops")) == [b'{"id": "l1", "v": 2}']
        assert store.collection("signals").get("s1") == {"id": "s1", "created_at": 3}
        assert result.total("superseded") == 1


@pytest.mark.parametrize(
    ("kwargs", "error", "needle"),
    [
        pytest.param({"order": "newest"}, ValidationError, "last-line-wins", id="order"),
        pytest.param(
            {"order": "last-line-wins", "existing": "merge"}, ValidationError, "keep", id="existing"
        ),
        pytest.param(
            {"order": "last-line-wins", "collection": "bad name"},
            ValidationError,
            "invalid collection name",
            id="collection",
        ),
    ],
)
def test_bad_options_are_refused(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], needle: str
) -> None:
    legacy = write(tmp_path / "loops.jsonl", b'{"id": "a"}\n')
    with Store.open(tmp_path / "repo") as store:
        before = snapshot(store.path)
        with pytest.raises(error, match=needle):
            store.import_jsonl(legacy, **kwargs)
        assert snapshot(store.path) == before


def test_a_file_inside_the_store_is_refused(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.collection("loops").put({"id": "a"})
        with pytest.raises(StorePathError, match="inside the store"):
            store.import_jsonl(store.file_path("loops"), order="last-line-wins")


# --- the command line --------------------------------------------------------------------


def test_cli_imports_a_folder_into_a_git_store_that_a_clone_reads_alike(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    ok(cli("init", "--no-hooks", cwd=repo))
    legacy = tmp_path / "legacy"
    write(legacy / "loops.jsonl", CASES)
    write(legacy / "jobs.jsonl", b'{"id": "j1", "completed_at": 9}\n')
    result = ok(cli("import", str(legacy), "--last-line-wins", cwd=repo))
    shown = os.path.relpath(legacy / "loops.jsonl", repo)
    assert result.out.splitlines() == [
        f"jobs: 1 imported ({os.path.relpath(legacy / 'jobs.jsonl', repo)}, 1 lines)",
        "loops: 4 imported, 1 deleted (last line a tombstone: not imported), "
        f"5 earlier line(s) superseded, 5 bad line(s) skipped ({shown}, 15 lines)",
        "wrote 5 record(s) into 2 collections, 5 bad line(s) skipped",
    ]
    warnings = result.err.splitlines()
    assert [w.split(": ")[1] for w in warnings] == [f"{shown}:{n}" for n in (11, 12, 13, 14, 16)]
    assert all(w.startswith("warning: ") and w.endswith("line skipped") for w in warnings)
    ok(cli("check", cwd=repo))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "legacy import")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(repo), str(clone))
    with Store.open(clone) as store:  # a cache built from the committed files alone
        assert_holds_last_lines(store, "loops", CASES)
        assert store.collection("jobs").get("j1") == {"id": "j1", "completed_at": 9}


def test_cli_json_report_and_a_refusal(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    legacy = write(tmp_path / "legacy.jsonl", CASES)
    report = data(
        cli("import", str(legacy), "--collection", "loops", "--last-line-wins", "--json", cwd=repo)
    )
    assert {k: report[k] for k in ("written", "imported", "deleted", "superseded", "lines")} == {
        "written": 4,
        "imported": 4,
        "deleted": 1,
        "superseded": 5,
        "lines": 15,
    }
    assert [(b["line"], b["path"]) for b in report["bad_lines"]] == [
        (n, os.path.relpath(legacy, repo)) for n in (11, 12, 13, 14, 16)
    ]
    assert report["collections"]["loops"]["bad_lines"] == 5
    ok(cli("put", "loops", '{"id": "skew", "v": "changed here"}', cwd=repo))
    store = repo / ".taskstore"
    before = snapshot(store)
    args = ("import", str(legacy), "--collection", "loops", "--last-line-wins")
    assert_fails(cli(*args, cwd=repo), 1, "1 in loops (skew)", "--existing keep|replace")
    assert snapshot(store) == before
    replaced = data(cli(*args, "--existing", "replace", "--json", cwd=repo))
    assert (replaced["replaced"], replaced["unchanged"]) == (1, 3)
    assert data(cli("get", "loops", "skew", "--json", cwd=repo))["v"] == 2


def test_cli_reads_stdin_with_a_collection(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    result = ok(
        cli(
            "import",
            "-",
            "--collection",
            "loops",
            "--last-line-wins",
            cwd=repo,
            input=b'{"id": "a", "v": 1}\n{"id": "a", "v": 2}\n{oops\n',
        )
    )
    assert result.out.startswith("loops: 1 imported, 1 earlier line(s) superseded")
    assert result.err.startswith("warning: stdin:3: not valid JSON (")
    assert result.err.endswith("); line skipped\n") and result.err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "stdin", "code", "needles"),
    [
        pytest.param(["missing.jsonl"], None, 2, ["No such file", "import -h"], id="missing"),
        pytest.param(["legacy", "--collection", "c"], None, 2, ["folder"], id="folder-collection"),
        pytest.param(["empty"], None, 1, ["no <collection>.jsonl"], id="folder-without-files"),
        pytest.param(
            ["legacy/loops.jsonl", "--collection", "bad name"],
            None,
            1,
            ["invalid collection name"],
            id="bad-collection",
        ),
        pytest.param(
            ["bad name.jsonl"], None, 1, ["rename the file, or import it alone"], id="bad-file-name"
        ),
        pytest.param(["-"], "{}", 2, ["--collection"], id="stdin-without-collection"),
        pytest.param([".taskstore/tasks.jsonl"], None, 1, ["inside the store"], id="inside"),
    ],
)
def test_cli_bad_input_is_one_line_and_changes_nothing(
    tmp_path: Path, args: list[str], stdin: str | None, code: int, needles: list[str]
) -> None:
    repo = init_repo(tmp_path / "repo")
    ok(cli("put", "tasks", '{"id": "t1"}', cwd=repo))
    write(repo / "legacy" / "loops.jsonl", b'{"id": "a"}\n')
    write(repo / "bad name.jsonl", b'{"id": "a"}\n')
    (repo / "empty").mkdir()
    before = snapshot(repo / ".taskstore")
    result = cli("import", *args, "--last-line-wins", cwd=repo, input=stdin)
    assert_fails(result, code, *needles)
    assert snapshot(repo / ".taskstore") == before


def test_cli_existing_needs_the_option(tmp_path: Path) -> None:
    legacy = write(tmp_path / "loops.jsonl", b'{"id": "a"}\n')
    result = cli("import", str(legacy), "--existing", "keep", cwd=tmp_path)
    assert_fails(result, 2, "--existing goes with --last-line-wins")


# --- the consumer's size ------------------------------------------------------------------


@pytest.mark.slow
def test_32000_legacy_lines_over_four_collections(tmp_path: Path) -> None:
    folder = tmp_path / "legacy"
    files = {
        name: legacy_data(seed, lines=8000, ids=2000)
        for seed, name in enumerate(["loops", "signals", "events", "jobs"], 10)
    }
    for name, legacy in files.items():
        write(folder / f"{name}.jsonl", legacy)
    repo = init_repo(tmp_path / "repo")
    started = time.perf_counter()
    report = data(cli("import", str(folder), "--last-line-wins", "--json", cwd=repo))
    took = time.perf_counter() - started
    assert report["lines"] == sum(last_lines(legacy)[2] for legacy in files.values())
    assert took < 10, f"{took:.1f} s for 32,000 lines"
    with reopened_from_scratch(str(repo / ".taskstore")) as store:
        assert store.check() == []
        for name, legacy in files.items():
            assert_holds_last_lines(store, name, legacy)


def test_cli_a_folder_without_the_option_says_which_option(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo")
    write(repo / "legacy" / "loops.jsonl", b'{"id": "a"}\n')
    assert_fails(cli("import", "legacy", cwd=repo), 2, "folder", "--last-line-wins")


def test_cli_a_file_without_one_record_is_an_error(tmp_path: Path) -> None:
    """Found by review: a UTF-16 file (or one of integer ids) imported nothing, exit 0."""
    repo = init_repo(tmp_path / "repo")
    write(repo / "loops.jsonl", '{"id": "a"}\n{"id": "b"}\n'.encode("utf-16"))
    result = cli("import", "loops.jsonl", "--last-line-wins", cwd=repo)
    assert result.code == 1 and "Traceback" not in result.err
    assert result.err.splitlines()[-1].startswith("error: loops.jsonl: not one of its")
    assert "is it a JSONL file in UTF-8" in result.err


def test_cli_a_folder_names_what_it_does_not_import(tmp_path: Path) -> None:
    """Found by review: Events.JSONL, loops.jsonl.1 or a sub-folder were left in silence."""
    repo = init_repo(tmp_path / "repo")
    write(repo / "legacy" / "loops.jsonl", b'{"id": "a"}\n')
    write(repo / "legacy" / "Events.JSONL", b'{"id": "b"}\n')
    write(repo / "legacy" / "sub" / "jobs.jsonl", b'{"id": "c"}\n')
    result = ok(cli("import", "legacy", "--last-line-wins", cwd=repo))
    assert "Events.JSONL: not imported" in result.err and "sub: not imported" in result.err
