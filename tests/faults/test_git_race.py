"""Writers racing git in one work tree (stress/git_race.py, at a small scale): no
acknowledged write is lost, git never fails for our sake, the cache holds no phantom row.

Mutation: `GitGuard.busy` always False (writes neither wait for git nor see it replace
their file) lost 436 and 499 of ~13,000 acknowledged writes in two runs of this test. The
subtler gaps (a stash between its two processes; the quiet period) show at the stress
command's scale: `python -m stress.git_race --seconds 60 --writers 6`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stress import git_race

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("venv_first_on_path")]


def test_writers_beside_commit_checkout_merge_reset_and_stash_lose_nothing(tmp_path: Path) -> None:
    report = git_race.run(tmp_path, seconds=8, writers=3)
    summary = report.as_dict()
    assert report.acknowledged > 500, summary
    assert report.lost == 0, summary
    assert not report.writer_errors and not report.reader_errors, summary
    assert report.phantom_rows == 0 and report.missing_rows == 0, summary
    assert report.git_runs["stash"] > 5, summary
    unexpected = [kind for kind in report.git_failures if not kind.endswith("(expected)")]
    assert not unexpected, summary
