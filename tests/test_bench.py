"""Each benchmark runs once at a small size, so the scripts cannot rot.

Only that they run and report every figure is checked: timings belong to the benchmark's
own output (beside a floor measured in the same run), not to assertions on a shared machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_bench_sync_runs_at_a_small_size() -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCH / "bench_sync.py"), "--records", "2000", "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert set(report["targets"]) >= {
        "rebuild_vs_floor",
        "catch_up_seconds",
        "indexed_query_seconds",
        "indexed_query_after_append_seconds",
        "memory_v8_vs_v2",
    }
    # Not a timing: the catch-up must read only the new lines at any size.
    assert report["targets"].pop("catch_up_action")["ok"]
    for target in report["targets"].values():
        assert target["value"] > 0 and target["limit"] > 0
