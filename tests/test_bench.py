"""Each benchmark runs once at a small size, so the scripts cannot rot.

Only that they run and report every figure is checked: timings belong to the benchmark's
own output (beside a floor measured in the same run), not to assertions on a shared machine.
"""

from __future__ import annotations

import pytest
from testing import run_bench

# Each starts a whole benchmark run: CI runs them, the default loop skips them.
pytestmark = pytest.mark.slow


def test_bench_sync_runs_at_a_small_size() -> None:
    report = run_bench("bench_sync.py", "--records", "2000")
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
