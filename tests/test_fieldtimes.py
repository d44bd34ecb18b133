"""fieldtimes.py: each new version records when its fields last changed, and the merge
goes by those times, whatever order the merges happen in.

The store's write path and the merge driver write the times; the cases here write lines
with the same function the store calls (``with_times``), at chosen times, and merge them
with ``merge_records``, as git runs the driver.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from git_taskstore import Store, jsonl
from git_taskstore.fieldtimes import (
    LIFE,
    TIMES_KEY,
    life_of,
    public,
    recorded,
    time_of,
    tombstone_after,
    with_times,
)
from git_taskstore.merge import merge_records


def line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


def current(data: bytes) -> dict[str, dict[str, Any]]:
    winners, bad = jsonl.reduce_lines(data)
    assert not bad
    return {rid: orjson.loads(w.raw) for rid, w in winners.items()}


def write(data: bytes, rid: str, at: int, **changes: Any) -> bytes:
    """Append the version of ``rid`` the store would write at ``at`` with these changes
    (a value of None removes the field)."""
    previous = current(data)[rid]
    record = {k: v for k, v in previous.items() if k != TIMES_KEY}
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    record["updated_at"] = at
    return data + line(with_times(previous, record))


def merged(base: bytes, ours: bytes, theirs: bytes) -> bytes:
    result = merge_records(base, ours, theirs)
    assert result.clean, result.conflicts
    return result.data


def values(data: bytes) -> dict[str, dict[str, Any]]:
    return {rid: public(r) for rid, r in current(data).items()}


# --- the times a version records ------------------------------------------------------------


def test_a_first_version_records_no_times() -> None:
    assert with_times(None, {"id": "x", "f": 1, "updated_at": 5, TIMES_KEY: {"f": 1}}) == {
        "id": "x",
        "f": 1,
        "updated_at": 5,
    }
    # After a delete: a new life, marked with the delete it follows.
    tomb = jsonl.tombstone("x", 4)
    assert with_times(tomb, {"id": "x", "f": 1, "updated_at": 5})[TIMES_KEY] == {LIFE: 4}


def test_changed_fields_take_the_version_and_the_others_keep_their_time() -> None:
    first = {"id": "x", "f": "a", "g": "a", "h": "a", "created_at": 100, "updated_at": 100}
    second = with_times(first, {**first, "f": "b", "updated_at": 200})
    assert second[TIMES_KEY] == {"f": 200}  # g and h date from created_at: not listed
    third = with_times(second, {**public(dict(second)), "g": "b", "updated_at": 300})
    assert third[TIMES_KEY] == {"f": 200, "g": 300}
    times = recorded(third)
    assert [time_of(third, k, times) for k in ("f", "g", "h", "nope")] == [200, 300, 100, 0]


def test_a_removed_field_keeps_its_removal_time_and_a_value_set_back_is_a_change() -> None:
    first = {"id": "x", "f": "a", "g": "a", "created_at": 100, "updated_at": 100}
    gone = with_times(first, {"id": "x", "g": "a", "created_at": 100, "updated_at": 200})
    assert gone[TIMES_KEY] == {"f": 200}
    later = with_times(gone, {"id": "x", "g": "b", "created_at": 100, "updated_at": 300})
    assert later[TIMES_KEY] == {"f": 200, "g": 300}  # still removed, still at 200
    back = with_times(later, {"id": "x", "g": "a", "created_at": 100, "updated_at": 400})
    assert back[TIMES_KEY]["g"] == 400  # a -> b -> a: changed at 400, not "unchanged"


def test_a_line_without_times_dates_its_fields_from_its_version() -> None:
    legacy = {"id": "x", "f": "a", "updated_at": 150}
    assert time_of(legacy, "f", recorded(legacy)) == 150
    assert time_of(legacy, "g", recorded(legacy)) == 0
    for bad in ([1], {"f": "soon"}, {"f": True}, {"f": -1}, "x"):
        assert recorded({**legacy, TIMES_KEY: bad}) is None


# --- the store writes them, readers do not see them -------------------------------------


def test_the_store_writes_times_on_new_versions_and_reads_hide_them(tmp_path: Path) -> None:
    with Store.open_dir(tmp_path / ".taskstore") as store:
        tasks = store.collection("tasks")
        tasks.put({"id": "t1", "title": "a", "status": "todo"})
        tasks.put({**tasks.get("t1"), "status": "done"})  # type: ignore[dict-item]
        tasks.put({"id": "t1", "status": "review"}, merge=True)
        with store.batch():
            tasks.put({"id": "t1", "title": "b", "status": "review", TIMES_KEY: {"x": 1}})
        lines = [orjson.loads(x) for x in Path(store.file_path("tasks")).read_bytes().splitlines()]
        assert TIMES_KEY not in lines[0]  # a first version
        assert set(lines[1][TIMES_KEY]) == {"status"}
        assert set(lines[2][TIMES_KEY]) == {"status"}
        assert lines[2][TIMES_KEY]["status"] == lines[2]["updated_at"]
        # The caller's own _times is replaced: title changed now, status carried.
        assert lines[3][TIMES_KEY] == {
            "title": lines[3]["updated_at"],
            "status": lines[2]["updated_at"],
        }
        assert TIMES_KEY not in tasks.get("t1")  # type: ignore[operator]
        assert all(TIMES_KEY not in r for r in tasks.list())


# --- merges go by the times -----------------------------------------------------------------

BASE = line({"id": "x", "f": "v0", "g": "v0", "created_at": 100, "updated_at": 100})


def test_a_side_that_merged_before_does_not_make_an_older_write_win() -> None:
    # The issue's case: ours wrote f at 200 and then merged a clone that wrote g at 400;
    # theirs wrote f at 300. The newest write of f is theirs'.
    ours = write(BASE, "x", 200, f="a")
    other = write(BASE, "x", 400, g="b")
    ours = merged(BASE, ours, other)
    theirs = write(BASE, "x", 300, f="c")
    one = values(merged(BASE, ours, theirs))["x"]
    two = values(merged(BASE, theirs, ours))["x"]
    assert one == two
    assert (one["f"], one["g"]) == ("c", "b")


def test_three_clones_merged_in_any_order_give_the_same_record() -> None:
    a = write(BASE, "x", 200, f="a")
    b = write(write(BASE, "x", 300, g="b"), "x", 350, f="b")
    c = write(BASE, "x", 400, h="c")
    ab_c = merged(BASE, merged(BASE, a, b), c)
    ac_b = merged(BASE, merged(BASE, a, c), b)
    a_bc = merged(BASE, a, merged(BASE, b, c))
    assert values(ab_c) == values(ac_b) == values(a_bc)
    assert values(ab_c)["x"] | {"updated_at": 0} == {
        "id": "x",
        "f": "b",
        "g": "b",
        "h": "c",
        "created_at": 100,
        "updated_at": 0,
    }


def test_a_value_set_back_is_a_write_that_wins_over_an_older_one() -> None:
    # ours: f v0 -> a -> v0 (at 500); theirs: f -> c at 300. By value ours is unchanged;
    # by time its write of v0 is the newest.
    ours = write(write(BASE, "x", 200, f="a"), "x", 500, f="v0")
    theirs = write(BASE, "x", 300, f="c")
    assert values(merged(BASE, ours, theirs))["x"]["f"] == "v0"
    assert values(merged(BASE, theirs, ours))["x"]["f"] == "v0"


def test_a_removal_is_a_write_with_its_time() -> None:
    ours = write(BASE, "x", 300, f=None)
    theirs = write(BASE, "x", 200, f="c")
    assert "f" not in values(merged(BASE, ours, theirs))["x"]
    theirs = write(BASE, "x", 400, f="c")
    assert values(merged(BASE, ours, theirs))["x"]["f"] == "c"


def test_equal_times_with_different_values_are_a_conflict() -> None:
    ours = write(BASE, "x", 300, f="a")
    theirs = write(BASE, "x", 300, f="c")
    result = merge_records(BASE, ours, theirs)
    assert [(c.id, c.fields) for c in result.conflicts] == [("x", ["f"])]


# --- deletes and new lives ------------------------------------------------------------------


def delete(data: bytes, rid: str, at: int) -> bytes:
    """Append the tombstone the store would write at ``at``."""
    return data + line(tombstone_after(current(data)[rid], jsonl.tombstone(rid, at)))


def recreate(data: bytes, rid: str, at: int, **fields: Any) -> bytes:
    """Write ``rid`` again after its delete, as the store would."""
    record = {"id": rid, **fields, "created_at": at, "updated_at": at}
    return data + line(with_times(current(data)[rid], record))


def rebase(base: bytes, onto: bytes, commits: list[bytes]) -> bytes:
    """Replay ``commits`` (each a file, the first's parent ``base``) onto ``onto``, as git
    rebase runs the driver: the branch built so far is ours, the replayed commit theirs."""
    parent, result = base, onto
    for commit in commits:
        result = merged(parent, result, commit)
        parent = commit
    return result


def live(data: bytes) -> dict[str, dict[str, Any]]:
    return {rid: r for rid, r in values(data).items() if not jsonl.is_tombstone(r)}


def test_a_delete_wins_over_an_edit_made_beside_it_even_a_later_one() -> None:
    ours = delete(BASE, "x", 200)
    theirs = write(BASE, "x", 300, f="c")
    assert live(merged(BASE, ours, theirs)) == live(merged(BASE, theirs, ours)) == {}


def test_a_record_written_again_after_a_delete_is_a_new_life_without_old_edits() -> None:
    # ours deletes x and writes it again; theirs, not having seen the delete, edits x.
    ours = recreate(delete(BASE, "x", 200), "x", 400, f="new")
    theirs = write(BASE, "x", 300, g="edited")
    for result in (merged(BASE, ours, theirs), merged(BASE, theirs, ours)):
        assert public(live(result)["x"]) | {"updated_at": 0} == {
            "id": "x",
            "f": "new",
            "created_at": 400,
            "updated_at": 0,
        }  # theirs' g does not ride into the new life


def test_rebase_and_merge_agree_around_deletes_and_new_lives() -> None:
    # The issue's case: a delete then a new life on one branch, an edit on the other.
    t1 = delete(BASE, "x", 200)
    t2 = recreate(t1, "x", 400, f="new")
    ours = write(BASE, "x", 300, g="edited")
    by_merge = live(merged(BASE, ours, t2))
    by_rebase = live(rebase(BASE, ours, [t1, t2]))
    assert by_merge == by_rebase
    assert by_merge["x"]["f"] == "new" and "g" not in by_merge["x"]
    # And the other way round: ours rebased onto the branch with the delete.
    assert live(rebase(BASE, t2, [ours])) == by_merge


def test_a_delete_ends_only_the_life_it_saw() -> None:
    # ours: delete, new life. theirs: the same delete (a cherry-pick) and nothing else.
    t1 = delete(BASE, "x", 200)
    ours = recreate(t1, "x", 400, f="new")
    assert live(merged(BASE, ours, t1))["x"]["f"] == "new"
    assert live(merged(BASE, t1, ours))["x"]["f"] == "new"
    # A delete of the new life ends it, and the merged tombstone says which life it ended.
    gone = delete(ours, "x", 500)
    result = merged(BASE, gone, t1)
    assert live(result) == {}
    assert life_of(current(result)["x"]) == 200


def test_the_store_marks_lives_and_tombstones(tmp_path: Path) -> None:
    with Store.open_dir(tmp_path / ".taskstore") as store:
        tasks = store.collection("tasks")
        tasks.put({"id": "t1", "title": "a"})
        tasks.delete("t1")
        tasks.put({"id": "t1", "title": "b"})
        tasks.put({"id": "t1", "title": "c"})
        tasks.delete("t1")
        lines = [orjson.loads(x) for x in Path(store.file_path("tasks")).read_bytes().splitlines()]
    first_delete = lines[1]["updated_at"]
    assert [life_of(r) for r in lines] == [0, 0, first_delete, first_delete, first_delete]
    assert lines[4]["deleted"] is True


def test_history_shows_records_without_times(tmp_path: Path) -> None:
    from testing import commit_all, init_repo

    from git_taskstore.history import record_log

    repo = init_repo(tmp_path / "repo")
    with Store.open(repo) as store:
        tasks = store.collection("tasks")
        tasks.put({"id": "t1", "status": "open"})
        commit_all(repo, "one")
        tasks.put({"id": "t1", "status": "done"})
        commit_all(repo, "two")
    entries = record_log(str(repo), None, "t1", "tasks")
    assert len(entries) == 2
    assert all(e.record is not None and TIMES_KEY not in e.record for e in entries)
    assert sorted(entries[0].changes.changed) == ["status", "updated_at"]  # newest first
