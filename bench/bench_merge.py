"""How fast the record-level merge is, beside a floor and git's own text merge.

    python bench/bench_merge.py [--lines N] [--json]

Two cases. The append case: a shared base of N lines (task records, N/2 ids with two
versions each, in time order as an append log holds them) and two sides that each append
about 1% more lines: edits of existing ids (a fifth of theirs on ids ours edited too,
changing other fields or the same field at another time), a few deletes, and new records.
The rewrite case: a base of N records, one line each, and two sides that rewrite many of
them: ours appends a new version (a whole line, newer updated_at, with the field times
the store writes) of half the records, theirs of a third; a fifth of theirs' ids are ids
ours rewrote too, two thirds of those with other fields changed, one third with the same
field changed at another time. Then measures:

- merge: ``merge_records(base, ours, theirs)`` in this process on the three texts
  (best of 3), checked to be clean and to keep every line;
- the floor, in the same run: read the three files and ``orjson.loads`` every line of all
  three (what any record-level merge has to do at least), best of 3;
- the peer: ``git merge-file -p`` on the same three files, whole process, best of 3 (a
  line merge: it knows nothing of records, and conflicts where both sides appended);
- rewrite merge: on the rewrite case, read the three files, ``merge_records``, write the
  result to a file (what the driver does, minus start-up and fsync), best of 3;
- rewrite floor, in the same run: read the three files, split them into lines,
  ``orjson.loads`` every line, and write the union of the lines (ours, then theirs' lines
  in neither the base nor ours) to a file: what any line-level merge must at least do;
- rewrite driver: ``git-taskstore-merge`` as a whole process on the rewrite case, best of 3;
- the driver as git runs it: ``git-taskstore-merge BASE OURS THEIRS 7 PATH`` as a whole
  process on a small file (10 lines a side), median of 20, beside ``python -c pass`` with
  the same interpreter, median of 20.

Progress goes to stderr; stdout holds the table, or one JSON object with --json. The exit
code is 0 whether or not the targets are met: they are figures, not assertions.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from common import STATUSES, TAGS, WORDS, clock, environment, progress_for, targets_footer
from common import fmt_s as _fmt_s
from common import fmt_x as _x
from common import ratio as _ratio

from git_taskstore import jsonl
from git_taskstore.fieldtimes import with_times
from git_taskstore.merge import merge_records

RUNS = 3
PROCESS_RUNS = 20
SEED = 20240101
BASE_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
SIDE_SHARE = 0.01  # each side appends this share of N
OVERLAP = 0.2  # share of theirs' edits on ids ours edited too
DRIVER_LINES = 10

# Targets: a merge of two sides of 100,000 lines each under 2 s in-process; the driver
# process on a small file under 100 ms (git starts it once per merged file).
TARGET_MERGE_S = 2.0
TARGET_DRIVER_S = 0.100
TARGET_DRIVER_RATIO = 3.0  # the driver process against python -c pass, same run
# The rewrite case: within 1.5x its floor, in-process and as the driver process.
TARGET_REWRITE_RATIO = 1.5
REWRITE_OURS = 1 / 2  # share of the records ours rewrites
REWRITE_THEIRS = 1 / 3  # share theirs rewrites
REWRITE_OVERLAP = 0.2  # share of theirs' ids that ours rewrote too

progress = progress_for("bench_merge")


# --- the data set ------------------------------------------------------------------------


@dataclass
class Dataset:
    base: bytes
    ours: bytes
    theirs: bytes
    base_lines: int
    ours_added: int
    theirs_added: int
    overlapping_ids: int


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def _person(rng: random.Random) -> str:
    return f"user-{rng.randrange(1000):04d}"


def _new_record(rng: random.Random, rid: str, at: int) -> dict[str, Any]:
    return {
        "id": rid,
        "title": _words(rng, 3, 7).capitalize(),
        "status": rng.choice(STATUSES),
        "owner": _person(rng),
        "priority": rng.randrange(5),
        "tags": rng.sample(TAGS, rng.randrange(4)),
        "description": _words(rng, 8, 20),
        "created_at": at,
        "updated_at": at,
    }


def generate(lines: int, seed: int = SEED) -> Dataset:
    rng = random.Random(seed)
    ids = max(1, lines // 2)
    span = ids * 60_000  # a task a minute
    events: list[tuple[int, int, int]] = []  # (time, id index, version)
    for i in range(ids):
        created = BASE_MS + rng.randrange(span)
        events.append((created, i, 0))
        if len(events) < lines:
            events.append((created + 1 + rng.randrange(span), i, 1))
    events.sort()
    events = events[:lines]
    current: dict[str, dict[str, Any]] = {}
    out: list[bytes] = []
    for at, i, version in events:
        rid = f"tsk-{i:07d}"
        if version == 0:
            record = _new_record(rng, rid, at)
        else:
            record = dict(current[rid], status=rng.choice(STATUSES), updated_at=at)
        current[rid] = record
        out.append(orjson.dumps(record))
    last = max((e[0] for e in events), default=BASE_MS)
    base = b"".join(line + b"\n" for line in out)

    per_side = max(2, round(lines * SIDE_SHARE))
    known = sorted(current)
    ours_edited: list[str] = []

    def side(name: str, parity: int) -> tuple[bytes, int, int]:
        added: list[bytes] = []
        overlap = 0
        state = {rid: dict(r) for rid, r in current.items()}
        for k in range(per_side):
            at = last + 2 * (k + 1) + parity  # ours even, theirs odd: no ties, so clean
            roll = rng.random()
            if roll < 0.15:  # a new record
                rid = f"tsk-{name}-{k:06d}"
                record = _new_record(rng, rid, at)
            else:
                if name == "theirs" and ours_edited and rng.random() < OVERLAP:
                    rid = rng.choice(ours_edited)
                    overlap += 1
                else:
                    rid = rng.choice(known)
                old = state.get(rid)
                if roll < 0.18 or old is None or jsonl.is_tombstone(old):
                    record = jsonl.tombstone(rid, at)
                elif name == "ours":
                    record = dict(old, status=rng.choice(STATUSES), updated_at=at)
                    ours_edited.append(rid)
                else:  # theirs mostly reassigns; now and then it changes status too
                    record = dict(old, owner=_person(rng), updated_at=at)
                    if rng.random() < 0.3:
                        record["status"] = rng.choice(STATUSES)
            state[rid] = record
            added.append(orjson.dumps(record))
        return base + b"".join(line + b"\n" for line in added), len(added), overlap

    ours, ours_added, _ = side("ours", 0)
    theirs, theirs_added, overlap = side("theirs", 1)
    return Dataset(base, ours, theirs, len(out), ours_added, theirs_added, overlap)


def generate_rewrite(records: int, seed: int = SEED) -> Dataset:
    """A base of ``records`` records, one line each, and two sides that rewrite many."""
    rng = random.Random(seed + 2)
    base_records = [_new_record(rng, f"tsk-{i:07d}", BASE_MS + i * 1000) for i in range(records)]
    base = b"".join(orjson.dumps(r) + b"\n" for r in base_records)
    last = BASE_MS + records * 1000
    ours_ids = rng.sample(range(records), round(records * REWRITE_OURS))
    ours_set = set(ours_ids)
    theirs_count = round(records * REWRITE_THEIRS)
    shared = rng.sample(ours_ids, min(len(ours_ids), round(theirs_count * REWRITE_OVERLAP)))
    others = [i for i in range(records) if i not in ours_set]
    theirs_ids = shared + rng.sample(others, min(len(others), theirs_count - len(shared)))
    rng.shuffle(theirs_ids)
    shared_set = set(shared)

    ours_lines = []
    for k, i in enumerate(ours_ids):  # ours: status and description, at even times
        record = dict(base_records[i], status=rng.choice(STATUSES))
        record["description"] = _words(rng, 8, 20)
        record["updated_at"] = last + 2 * (k + 1)
        ours_lines.append(orjson.dumps(with_times(base_records[i], record)))
    theirs_lines = []
    for k, i in enumerate(theirs_ids):  # theirs: owner and priority, at odd times
        record = dict(base_records[i], owner=_person(rng), priority=rng.randrange(5))
        if i in shared_set and rng.random() < 1 / 3:
            record["status"] = rng.choice(STATUSES)  # the same field as ours, another time
        record["updated_at"] = last + 2 * (k + 1) + 1
        theirs_lines.append(orjson.dumps(with_times(base_records[i], record)))
    ours = base + b"".join(line + b"\n" for line in ours_lines)
    theirs = base + b"".join(line + b"\n" for line in theirs_lines)
    return Dataset(base, ours, theirs, records, len(ours_lines), len(theirs_lines), len(shared))


def small_dataset() -> Dataset:
    """10 lines a side: 8 shared, 2 appended on each, one id edited on both."""
    rng = random.Random(SEED + 1)
    records = [_new_record(rng, f"tsk-{i:07d}", BASE_MS + i) for i in range(DRIVER_LINES - 2)]
    base = b"".join(orjson.dumps(r) + b"\n" for r in records)
    at = BASE_MS + 100
    ours = base + b"".join(
        orjson.dumps(r) + b"\n"
        for r in (dict(records[0], status="done", updated_at=at), _new_record(rng, "o", at))
    )
    theirs = base + b"".join(
        orjson.dumps(r) + b"\n"
        for r in (
            dict(records[0], owner="user-9999", updated_at=at + 1),
            jsonl.tombstone(records[1]["id"], at + 1),
        )
    )
    return Dataset(base, ours, theirs, len(records), 2, 2, 1)


# --- measurements ------------------------------------------------------------------------


def best_of(fn: Callable[[], Any], runs: int = RUNS) -> tuple[float, list[float], Any]:
    times = []
    result = None
    for _ in range(runs):
        gc.collect()
        t0 = clock()
        result = fn()
        times.append(clock() - t0)
    return min(times), times, result


def bench_merge(ds: Dataset) -> dict[str, Any]:
    seconds, runs, result = best_of(lambda: merge_records(ds.base, ds.ours, ds.theirs))
    if not result.clean:
        raise RuntimeError(f"the merge has {len(result.conflicts)} conflicts; expected none")
    out = result.data.count(b"\n")
    ours_lines = ds.ours.count(b"\n")
    added_by_theirs = ds.theirs_added
    appended = out - ours_lines - added_by_theirs
    if appended < 0 or not result.data.startswith(ds.ours):
        raise RuntimeError("the merge dropped or reordered lines of ours")
    winners, bad = jsonl.reduce_lines(result.data)
    if bad:
        raise RuntimeError(f"the merge result has {len(bad)} bad lines")
    return {
        "seconds": seconds,
        "runs": runs,
        "lines_out": out,
        "lines_appended": appended,
        "ids": len(winners),
        "bytes_in": len(ds.base) + len(ds.ours) + len(ds.theirs),
    }


def bench_floor(paths: list[str]) -> dict[str, Any]:
    def floor() -> int:
        loads = orjson.loads
        count = 0
        for path in paths:
            with open(path, "rb") as handle:
                data = handle.read()
            for line in data.split(b"\n"):
                if line:
                    loads(line)
                    count += 1
        return count

    seconds, runs, count = best_of(floor)
    return {"seconds": seconds, "runs": runs, "lines": count}


def read_all(paths: list[str]) -> list[bytes]:
    out = []
    for path in paths:
        with open(path, "rb") as handle:
            out.append(handle.read())
    return out


def write(path: str, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def bench_rewrite_merge(ds: Dataset, paths: list[str], out: str) -> dict[str, Any]:
    def run() -> Any:
        base, ours, theirs = read_all(paths)
        result = merge_records(base, ours, theirs)
        write(out, result.data)
        return result

    seconds, runs, result = best_of(run)
    if not result.clean:
        raise RuntimeError(f"the rewrite merge has {len(result.conflicts)} conflicts")
    if not result.data.startswith(ds.ours):
        raise RuntimeError("the rewrite merge dropped or reordered lines of ours")
    appended = result.data.count(b"\n") - ds.ours.count(b"\n") - ds.theirs_added
    # Only ids both sides rewrote need a merged line (nearly all of them do).
    if not 0 < appended <= ds.overlapping_ids:
        raise RuntimeError(f"{appended} merged lines appended, {ds.overlapping_ids} at most")
    return {"seconds": seconds, "runs": runs, "lines_appended": appended}


def bench_rewrite_floor(paths: list[str], out: str) -> dict[str, Any]:
    def floor() -> int:
        loads = orjson.loads
        sides = []
        for data in read_all(paths):
            lines = [line for line in data.split(b"\n") if line]
            for line in lines:
                loads(line)
            sides.append(lines)
        base, ours, theirs = sides
        seen = set(base)
        seen.update(ours)
        union = ours + [line for line in theirs if line not in seen]
        write(out, b"".join(line + b"\n" for line in union))
        return len(union)

    seconds, runs, lines = best_of(floor)
    return {"seconds": seconds, "runs": runs, "lines_out": lines}


def bench_rewrite_driver(ds: Dataset, paths: list[str]) -> dict[str, Any]:
    args = [*driver_command(), *paths, "7", ".taskstore/tasks.jsonl"]

    def run() -> int:
        write(paths[1], ds.ours)  # the driver writes its result into OURS
        proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise RuntimeError(f"the driver exited {proc.returncode}: {proc.stderr!r}")
        return proc.returncode

    seconds, runs, _ = best_of(run)
    write(paths[1], ds.ours)
    return {"seconds": seconds, "runs": runs}


def bench_git(paths: list[str]) -> dict[str, Any] | None:
    git = shutil.which("git")
    if git is None:
        progress("git not found: no peer figure")
        return None
    base, ours, theirs = paths
    args = [git, "merge-file", "-p", ours, base, theirs]

    def run() -> int:
        proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if proc.returncode < 0 or proc.returncode > 127:
            raise RuntimeError(f"git merge-file failed: {proc.stderr.decode(errors='replace')}")
        return proc.returncode  # the number of conflicts

    seconds, runs, conflicts = best_of(run)
    return {"seconds": seconds, "runs": runs, "conflicts": conflicts}


def driver_command() -> list[str]:
    """git-taskstore-merge beside this interpreter, as git would find it; else -m."""
    script = os.path.join(os.path.dirname(sys.executable), "git-taskstore-merge")
    if os.access(script, os.X_OK):
        return [script]
    return [sys.executable, "-m", "git_taskstore.driver"]


def median_process(args: list[str], before: Callable[[], None] | None = None) -> dict[str, Any]:
    times = []
    codes = set()
    for _ in range(PROCESS_RUNS):
        if before is not None:
            before()
        t0 = clock()
        proc = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(clock() - t0)
        codes.add(proc.returncode)
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{args[0]} failed: {proc.stderr.decode(errors='replace')}")
    return {"seconds": statistics.median(times), "min": min(times), "codes": sorted(codes)}


def bench_driver(work: str) -> dict[str, Any]:
    ds = small_dataset()
    paths = [os.path.join(work, f"small-{n}") for n in ("base", "ours", "theirs")]
    for path, data in zip(paths, (ds.base, ds.ours, ds.theirs), strict=True):
        with open(path, "wb") as handle:
            handle.write(data)

    def reset_ours() -> None:  # the driver writes its result into OURS
        with open(paths[1], "wb") as handle:
            handle.write(ds.ours)

    command = driver_command()
    figures = median_process([*command, *paths, "7", ".taskstore/tasks.jsonl"], reset_ours)
    if figures["codes"] != [0]:
        raise RuntimeError(f"the driver exited {figures['codes']} on a clean merge")
    with open(paths[1], "rb") as handle:
        if handle.read() != merge_records(ds.base, ds.ours, ds.theirs).data:
            raise RuntimeError("the driver's result differs from merge_records'")
    python = median_process([sys.executable, "-c", "pass"])
    return {
        "command": " ".join(os.path.basename(c) for c in command),
        "seconds": figures["seconds"],
        "min": figures["min"],
        "python_seconds": python["seconds"],
        "lines_per_side": DRIVER_LINES,
    }


# --- report ------------------------------------------------------------------------------


def build_report(
    params: dict[str, Any], ds: Dataset, rw: Dataset, f: dict[str, Any]
) -> dict[str, Any]:
    targets: dict[str, dict[str, Any]] = {
        "merge_seconds": {"value": f["merge"]["seconds"], "limit": TARGET_MERGE_S},
        "driver_process_seconds": {"value": f["driver"]["seconds"], "limit": TARGET_DRIVER_S},
    }
    targets["driver_python_ratio"] = {
        "value": _ratio(f["driver"]["seconds"], f["driver"]["python_seconds"]),
        "limit": TARGET_DRIVER_RATIO,
    }
    rewrite_floor = f["rewrite_floor"]["seconds"]
    for name in ("rewrite_merge", "rewrite_driver"):
        f[name]["floor_ratio"] = _ratio(f[name]["seconds"], rewrite_floor)
        targets[f"{name}_vs_floor"] = {
            "value": f[name]["floor_ratio"],
            "limit": TARGET_REWRITE_RATIO,
        }
    for target in targets.values():
        target["ok"] = target["value"] is not None and target["value"] <= target["limit"]
    git = f["git_merge_file"]
    f["merge"]["floor_ratio"] = _ratio(f["merge"]["seconds"], f["floor"]["seconds"])
    f["merge"]["peer_ratio"] = _ratio(f["merge"]["seconds"], git["seconds"] if git else None)
    f["driver"]["python_ratio"] = _ratio(f["driver"]["seconds"], f["driver"]["python_seconds"])
    return {
        "params": params,
        "files": {
            "base_lines": ds.base_lines,
            "ours_lines": ds.base_lines + ds.ours_added,
            "theirs_lines": ds.base_lines + ds.theirs_added,
            "ours_added": ds.ours_added,
            "theirs_added": ds.theirs_added,
            "overlapping_edits": ds.overlapping_ids,
            "bytes": [len(ds.base), len(ds.ours), len(ds.theirs)],
        },
        "rewrite_files": {
            "base_records": rw.base_lines,
            "ours_rewritten": rw.ours_added,
            "theirs_rewritten": rw.theirs_added,
            "rewritten_on_both": rw.overlapping_ids,
            "bytes": [len(rw.base), len(rw.ours), len(rw.theirs)],
        },
        "environment": environment(orjson=orjson.__version__),
        "figures": f,
        "targets": targets,
        "ok": all(t["ok"] for t in targets.values()),
    }


def render_table(report: dict[str, Any]) -> str:
    f, t, files = report["figures"], report["targets"], report["files"]
    m, floor, git, d = f["merge"], f["floor"], f["git_merge_file"], f["driver"]
    rw, rm, rf, rd = (
        report["rewrite_files"],
        f["rewrite_merge"],
        f["rewrite_floor"],
        f["rewrite_driver"],
    )

    def ok(name: str) -> str:
        return "ok" if t[name]["ok"] else "MISSED"

    rows: list[tuple[str, ...]] = [
        ("figure", "value", "floor / peer", "ratio", "target", ""),
        (
            f"merge_records, sides of {files['ours_lines']} lines",
            _fmt_s(m["seconds"]),
            f"floor {_fmt_s(floor['seconds'])}",
            _x(m["floor_ratio"]),
            f"< {TARGET_MERGE_S:g} s",
            ok("merge_seconds"),
        ),
        (
            f"  {m['lines_appended']} merged lines appended",
            "",
            f"git merge-file {_fmt_s(git['seconds'] if git else None)}",
            _x(m["peer_ratio"]),
            "",
            "",
        ),
        (
            "floor: read + orjson.loads all 3 files",
            _fmt_s(floor["seconds"]),
            f"{floor['lines']} lines",
            "",
            "",
            "",
        ),
        (
            "peer: git merge-file -p (process)",
            _fmt_s(git["seconds"] if git else None),
            f"{git['conflicts']} conflict(s)" if git else "git not found",
            "",
            "",
            "",
        ),
        (
            f"driver process, {d['lines_per_side']} lines a side",
            _fmt_s(d["seconds"]),
            f"python -c pass {_fmt_s(d['python_seconds'])}",
            _x(d["python_ratio"]),
            f"< {TARGET_DRIVER_S * 1000:.0f} ms, < {TARGET_DRIVER_RATIO:g}x",
            " ".join(sorted({ok("driver_process_seconds"), ok("driver_python_ratio")})),
        ),
        (f"  ({d['command']}, median of {PROCESS_RUNS})", "", "", "", "", ""),
        (
            f"rewrite: merge_records on {rw['base_records']} records",
            _fmt_s(rm["seconds"]),
            f"floor {_fmt_s(rf['seconds'])}",
            _x(rm["floor_ratio"]),
            f"< {TARGET_REWRITE_RATIO:g}x floor",
            ok("rewrite_merge_vs_floor"),
        ),
        (
            f"  ours rewrote {rw['ours_rewritten']}, theirs {rw['theirs_rewritten']}, "
            f"both {rw['rewritten_on_both']}",
            "",
            "",
            "",
            "",
            "",
        ),
        (
            "rewrite: driver process",
            _fmt_s(rd["seconds"]),
            f"floor {_fmt_s(rf['seconds'])}",
            _x(rd["floor_ratio"]),
            f"< {TARGET_REWRITE_RATIO:g}x floor",
            ok("rewrite_driver_vs_floor"),
        ),
        (
            "rewrite floor: read, loads every line, write the union",
            _fmt_s(rf["seconds"]),
            f"{rf['lines_out']} lines out",
            "",
            "",
            "",
        ),
    ]
    widths = [max(len(row[i]) if i < len(row) else 0 for row in rows) for i in range(6)]
    out = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        out.append("  ".join(cells).rstrip())
    head = (
        f"base {files['base_lines']} lines; ours +{files['ours_added']}, theirs "
        f"+{files['theirs_added']} ({files['overlapping_edits']} on ids ours edited too)"
    )
    missed = [name for name, target in t.items() if not target["ok"]]
    return head + "\n\n" + "\n".join(out) + "\n\n" + targets_footer(missed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--lines",
        type=int,
        default=100_000,
        help="lines in the base of the append case, records in the base of the rewrite case",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.lines < 2:
        parser.error("--lines must be at least 2")
    params = {"lines": args.lines, "runs": RUNS, "process_runs": PROCESS_RUNS, "seed": SEED}
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as work:
        progress(f"generating a base of {args.lines} lines and two sides")
        ds = generate(args.lines)
        paths = [os.path.join(work, f"{n}.jsonl") for n in ("base", "ours", "theirs")]
        for path, data in zip(paths, (ds.base, ds.ours, ds.theirs), strict=True):
            with open(path, "wb") as handle:
                handle.write(data)
        figures: dict[str, Any] = {}
        progress("merge_records, best of 3")
        figures["merge"] = bench_merge(ds)
        progress("floor: read and parse the three files, best of 3")
        figures["floor"] = bench_floor(paths)
        progress("peer: git merge-file, best of 3")
        figures["git_merge_file"] = bench_git(paths)
        progress(f"driver process and python -c pass, median of {PROCESS_RUNS} each")
        figures["driver"] = bench_driver(work)
        progress(f"rewrite case: a base of {args.lines} records, sides rewriting many")
        rw = generate_rewrite(args.lines)
        rw_paths = [os.path.join(work, f"rewrite-{n}.jsonl") for n in ("base", "ours", "theirs")]
        for path, data in zip(rw_paths, (rw.base, rw.ours, rw.theirs), strict=True):
            write(path, data)
        out = os.path.join(work, "rewrite-out.jsonl")
        progress("rewrite merge (read, merge_records, write), best of 3")
        figures["rewrite_merge"] = bench_rewrite_merge(rw, rw_paths, out)
        progress("rewrite floor (read, loads every line, write the union), best of 3")
        figures["rewrite_floor"] = bench_rewrite_floor(rw_paths, out)
        progress("rewrite driver process, best of 3")
        figures["rewrite_driver"] = bench_rewrite_driver(rw, rw_paths)
    report = build_report(params, ds, rw, figures)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
