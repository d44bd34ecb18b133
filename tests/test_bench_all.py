"""bench/run_all.py runs every benchmark at a small size and reports each one's targets.

What is checked is that every script runs and shows up with its targets, not what the
timings are: those belong to the benchmarks' own output, beside floors measured in the
same run, not to assertions on a shared machine.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
RUN_ALL = BENCH / "run_all.py"

# The two slow tests share one run of every benchmark (the module fixture `small`): one
# worker runs them both.
pytestmark = pytest.mark.xdist_group("bench_all")

WRITES_TARGETS = {
    "batch_put_many_vs_floor",
    "batch_create_many_vs_floor",
    "batch_block_vs_floor",
    "debounced_speedup",
}


def _load_run_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run_all", RUN_ALL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN_ALL), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def small() -> dict[str, Any]:
    proc = _run("--size", "small", "--json")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary: dict[str, Any] = json.loads(proc.stdout)
    return summary


@pytest.mark.slow
def test_every_bench_script_runs_at_the_small_size_with_its_targets(
    small: dict[str, Any],
) -> None:
    run_all = _load_run_all()
    scripts = sorted(p.stem for p in BENCH.glob("bench_*.py"))
    assert "bench_writes" in scripts and "bench_sync" in scripts
    assert sorted(small["benchmarks"]) == scripts
    assert small["size"] == "small" and small["ok"] is True
    assert small["absent"] == [name for name in run_all.SIZES if name not in scripts]
    for name in scripts:
        entry = small["benchmarks"][name]
        assert entry["ok"] is True and entry["exit_code"] == 0 and entry["error"] is None, name
        assert entry["args"] == [*run_all.SIZES.get(name, {}).get("small", []), "--json"]
        targets = entry["targets"]
        assert targets, f"{name} reports no targets"
        for target_name, target in targets.items():
            assert "value" in target and isinstance(target["ok"], bool), (name, target_name)
            assert "limit" in target or "expected" in target, (name, target_name)
        # one row per target in the table, named after it
        figures = [row[1] for row in entry["rows"]]
        assert set(targets) <= set(figures), (name, figures)
        assert all(len(row) == len(small["columns"]) for row in entry["rows"])
    assert set(small["benchmarks"]["bench_writes"]["targets"]) == WRITES_TARGETS


@pytest.mark.slow
def test_the_small_run_shows_floors_peers_and_peak_memory(small: dict[str, Any]) -> None:
    writes = small["benchmarks"]["bench_writes"]
    rows = {row[1]: row for row in writes["rows"] if row[1]}
    # A batch figure is shown beside the floor measured in the same run, with the ratio.
    put_many = rows["batch_put_many_vs_floor"]
    assert put_many[3].startswith("floor ") and put_many[4].endswith("x")
    assert put_many[5].endswith("<= 1.50x")
    assert rows["debounced_speedup"][5].endswith(">= 5.00x")
    assert rows["debounced_speedup"][3].startswith("default mode ")
    assert writes["peak_memory"]["bytes"] > 0
    assert "floor" in writes["peak_memory"]["beside_path"]
    table = _load_run_all().render_table(small)
    for name in small["benchmarks"]:
        assert name in table
    assert table.splitlines()[2].split()[:2] == ["benchmark", "figure"]


FAKE_OK = """
import json, sys
assert sys.argv[1:] == ["--json"], sys.argv
print(json.dumps({
    "figures": {
        "thing": {"seconds": 0.5, "floor_ratio": 2.0, "peer_ratio": 0.5},
        "memory": {"peak_rss_bytes": 200 * 1048576, "floor": {"peak_rss_bytes": 100 * 1048576}},
    },
    "targets": {
        "thing_vs_floor": {"value": 2.0, "limit": 1.5, "ok": False},
        "other_ms": {"value": 3.0, "limit": 10, "ok": True},
    },
}))
"""

FAKE_FAIL = """
import sys
sys.stderr.write("working\\nboom: the disk is full\\n")
sys.exit(3)
"""


def test_a_failing_or_silent_script_is_shown_and_the_run_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "bench"
    folder.mkdir()
    (folder / "bench_fake_ok.py").write_text(textwrap.dedent(FAKE_OK))
    (folder / "bench_fake_fail.py").write_text(textwrap.dedent(FAKE_FAIL))
    (folder / "bench_fake_silent.py").write_text("print('no json here')\n")
    (folder / "bench_fake_notargets.py").write_text("print('{\"figures\": {}}')\n")
    proc = _run("--size", "small", "--bench-dir", str(folder), "--json", timeout=300)
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    entries = summary["benchmarks"]
    assert sorted(entries) == [
        "bench_fake_fail",
        "bench_fake_notargets",
        "bench_fake_ok",
        "bench_fake_silent",
    ]
    assert summary["ok"] is False
    assert entries["bench_fake_fail"]["exit_code"] == 3
    assert "boom: the disk is full" in entries["bench_fake_fail"]["error"]
    assert "no JSON" in entries["bench_fake_silent"]["error"]
    assert "targets" in entries["bench_fake_notargets"]["error"]
    ok = entries["bench_fake_ok"]
    assert ok["ok"] is True and ok["targets_met"] is None
    thing = ok["rows"][0]
    assert thing[1:] == ["thing_vs_floor", "500 ms", "floor 250 ms", "2.00x", "2.00x <= 1.50x",
                         "MISSED"]  # fmt: skip
    assert ok["rows"][1][3:5] == ["peer 1.000 s", "0.50x"]
    assert ok["peak_memory"] == {
        "path": "memory.peak_rss_bytes",
        "bytes": 200 * 1048576,
        "beside_path": "memory.floor.peak_rss_bytes",
        "beside_bytes": 100 * 1048576,
    }
    # The known scripts that are not in the folder are listed as absent, not failed.
    assert set(summary["absent"]) >= {"bench_sync", "bench_writes"}

    table = _run("--size", "small", "--bench-dir", str(folder), timeout=300)
    assert table.returncode == 1
    out = table.stdout
    assert "FAILED: bench_fake_fail, bench_fake_notargets, bench_fake_silent" in out
    assert "exit 3: working | boom: the disk is full" in out
    assert "bench_sync" in out and "(absent: not written yet)" in out
    assert "targets missed: bench_fake_ok:thing_vs_floor" in out
