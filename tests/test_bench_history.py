"""bench/bench_history.py runs once at a small size, so the script cannot rot.

Only that it runs and reports its figures is checked: timings belong to the benchmark's
own output, beside git's log measured in the same run, not to assertions here.
"""

from __future__ import annotations

import pytest
from testing import run_bench

# Each starts a whole benchmark run: CI runs them, the default loop skips them.
pytestmark = pytest.mark.slow


def test_bench_history_runs_at_a_small_size() -> None:
    report = run_bench("bench_history.py", "--commits", "30")
    assert set(report["targets"]) == {"log_seconds", "diff_seconds"}
    for target in report["targets"].values():
        assert target["value"] > 0 and target["limit"] > 0
        assert isinstance(target["ok"], bool)
    figures = report["figures"]
    # Not timings: the script checks the answers against what it generated.
    assert figures["log"]["versions"] == report["repository"]["target_versions"] == 30
    assert figures["peer"]["commits"] == 30
    assert sum(figures["diff"]["records"].values()) > 0
