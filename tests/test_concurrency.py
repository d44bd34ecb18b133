"""Several real processes on one store, and writers killed with SIGKILL mid-flight."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from git_taskstore import Store
from git_taskstore.jsonl import parse_line

WRITERS = 8
RECORDS_PER_WRITER = 500
KILLS = 20

# Opens the store, says "ready", waits for a line on stdin, then writes its records.
PARALLEL_WRITER = """
import sys
from git_taskstore import Store

store_dir, writer, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Store.open_dir(store_dir) as store:
    tasks = store.collection("tasks")
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        tasks.put({"id": f"w{writer}-{i}", "writer": writer, "i": i})
print("done", flush=True)
"""

# Writes records for ever, printing each id once its write has returned. Every third
# record is 2 MB: a kill can then land inside its write() and leave a torn last line
# (seen in about a third of the runs), which the next writer must not glue onto.
ENDLESS_WRITER = """
import sys
from git_taskstore import Store

store_dir, run = sys.argv[1], int(sys.argv[2])
big = "x" * 2_000_000
store = Store.open_dir(store_dir)
tasks = store.collection("tasks")
print("ready", flush=True)
i = 0
while True:
    record_id = f"k{run}-{i}"
    tasks.put({"id": record_id, "run": run, "i": i, "pad": big if i % 3 == 0 else ""})
    print(record_id, flush=True)
    i += 1
"""


def start_python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if first != "ready\n":
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"writer did not start: {first!r}\n{err}")


def file_lines(path: Path) -> list[tuple[int, bytes]]:
    """(1-based number, bytes) of every non-blank line."""
    return [
        (number, raw) for number, raw in enumerate(path.read_bytes().split(b"\n"), 1) if raw.strip()
    ]


@pytest.mark.slow
def test_eight_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    store_dir = tmp_path / ".taskstore"
    Store.open_dir(store_dir).close()
    procs = [
        start_python(PARALLEL_WRITER, str(store_dir), str(n), str(RECORDS_PER_WRITER))
        for n in range(WRITERS)
    ]
    for proc in procs:
        wait_ready(proc)
    for proc in procs:  # let them all go at once
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out == "done\n", err

    expected = {f"w{n}-{i}" for n in range(WRITERS) for i in range(RECORDS_PER_WRITER)}
    with Store.open_dir(store_dir) as store:
        tasks = store.collection("tasks")
        assert {r["id"] for r in tasks.list()} == expected
        assert tasks.count() == WRITERS * RECORDS_PER_WRITER
        assert store.check() == []
    lines = file_lines(store_dir / "tasks.jsonl")
    assert len(lines) == WRITERS * RECORDS_PER_WRITER
    for number, raw in lines:
        assert isinstance(parse_line(raw), dict), f"line {number}: {raw[:200]!r}"
    # Each writer's records are in the file in the order it wrote them.
    for n in range(WRITERS):
        mine = [parse_line(raw) for _, raw in lines if raw.startswith(b'{"id":"w%d-' % n)]
        assert [r["i"] for r in mine] == list(range(RECORDS_PER_WRITER))  # type: ignore[index]


@pytest.mark.slow
def test_writers_killed_at_random_moments_leave_a_usable_store(tmp_path: Path) -> None:
    store_dir = tmp_path / ".taskstore"
    Store.open_dir(store_dir).close()
    rng = random.Random()
    confirmed: set[str] = set()
    delays: list[float] = []
    for run in range(KILLS):
        proc = start_python(ENDLESS_WRITER, str(store_dir), str(run))
        wait_ready(proc)
        delay = rng.uniform(0.05, 0.3)
        delays.append(delay)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, f"run {run} died on its own:\n{err}"
        # Only whole lines count: the kill may cut the last print short.
        confirmed.update(out.split("\n")[:-1])
    assert confirmed, f"no write ever completed (delays {delays})"

    with Store.open_dir(store_dir) as store:
        tasks = store.collection("tasks")
        present = {r["id"] for r in tasks.list()}
        missing = confirmed - present
        assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]} (delays {delays})"
        bad_line_numbers = {p.line for p in store.check()}
        # The store still takes writes, and they are read back.
        tasks.put({"id": "after-the-kills"})
        assert tasks.get("after-the-kills") is not None

    for number, raw in file_lines(store_dir / "tasks.jsonl"):
        assert raw.count(b'"id"') <= 1, f"line {number} holds two records: {raw[:120]!r}..."
        if not isinstance(parse_line(raw), dict):
            assert number in bad_line_numbers, f"line {number} is bad but check() missed it"
    assert not [n for n in os.listdir(store_dir) if n.endswith(".tmp")]
    shutil.rmtree(store_dir)  # about 100 MB; kept only when the test fails
