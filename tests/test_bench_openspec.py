"""bench/bench_openspec.py runs once at a small size, so the script cannot rot.

Only that it runs and reports its figures is checked: timings belong to the benchmark's
own output, beside the floor measured in the same run, not to assertions here.
"""

from __future__ import annotations

import pytest
from testing import run_bench

# Each starts a whole benchmark run: CI runs them, the default loop skips them.
pytestmark = pytest.mark.slow


def test_bench_openspec_runs_at_a_small_size() -> None:
    report = run_bench("bench_openspec.py", "--changes", "20", "--sweeps", "3")
    assert report["params"] == {"changes": 20, "sweeps": 3, "runs": 3}
    assert {name: t["limit"] for name, t in report["targets"].items()} == {
        "initial_sync_vs_floor": 2.0,
        "sweep_ms": 50.0,
        "hook_pre_commit_ms": 100.0,
    }
    for target in report["targets"].values():
        assert target["value"] > 0 and isinstance(target["ok"], bool)
    figures = report["figures"]
    # Not timings: the script checks the floor wrote the sync's records, and that a
    # sweep and a second sync with nothing changed find nothing.
    assert figures["floor"]["records"] == {
        "openspec_changes": 20,
        "openspec_tasks": 200,
        "openspec_files": report["folders"]["files"],
        "openspec_sync_history": 20,
    }
    assert figures["sweep"]["changed"] == 0
    assert figures["second_sync"]["states"] == {"in_sync": 20}
    assert figures["initial_sync"]["floor_ratio"] > 0
    assert figures["sweep"]["stat_floor_ratio"] > 0
    for part in ("initial_sync", "sweep"):
        assert figures[part]["breakdown"]["total"] > 0
    assert report["folders"]["files"] > 3 * 20
