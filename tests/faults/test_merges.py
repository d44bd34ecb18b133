"""Clones of one bare remote pulling (merge or rebase) and pushing (stress/merges.py, at a
small scale): every field ends at its newest write, in every clone.

The same run with git's ``merge=union`` is the peer, and shows the oracle can fail: with
union, whole versions compete and edits of other fields are lost. Mutation: the merge
without field times (``recorded`` ignored in ``_merge_fields``) left 3 fields wrong after
3 of this run's pulls.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stress import merges

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("venv_first_on_path")]


def test_every_field_ends_at_its_newest_write(tmp_path: Path) -> None:
    report = merges.run(tmp_path, clones=4, rounds=4, ids=4, union=False, seed=7)
    assert report.writes == 32 and report.merge_commits > 0, report
    assert report.wrong_after_pulls == 0, report
    assert report.wrong_fields == 0 and report.clones_disagree == 0, report
    assert report.stopped_pulls == 0, report


def test_merge_union_is_the_peer_that_loses_writes(tmp_path: Path) -> None:
    report = merges.run(tmp_path, clones=4, rounds=4, ids=4, union=True, seed=7)
    assert report.wrong_fields > 0, report
