"""SIGKILL at random moments of every write path (stress/kills.py, a few kills a mode):
no acknowledged write lost, no line glued onto another.

Mutation: `Store._export_orphans` doing nothing (a dead writer's debounced writes never
reach the file) lost the newest acknowledged write of all 30 ids in the debounced mode.
The full run is `python -m stress.kills --kills 1000`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stress import kills

pytestmark = [pytest.mark.slow]


def test_kills_in_every_write_path_lose_nothing_acknowledged(tmp_path: Path) -> None:
    report = kills.run(tmp_path, kills=3 * len(kills.MODES), seed=7)
    rows = report.rows()
    assert not report.errors, report.errors
    assert {row["mode"] for row in rows} == set(kills.MODES)
    for row in rows:
        assert row["kills"] == 3 and int(row["acknowledged writes"]) > 0, rows
        assert row["lost"] == 0 and row["glued lines"] == 0, rows
