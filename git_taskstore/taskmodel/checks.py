"""What ``git taskstore check`` asks of the task model: every body file a record names."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import ValidationError
from ..maintenance import Check, Problem
from ..paths import display_path
from ..records import Filter, Op
from ..store import Store
from .bodies import body_file
from .models import PRD, TaskSpec

# The collections whose records name a markdown body in ``file``. A field ``file`` of
# another collection is the user's own (a path into the repository, say).
BODY_COLLECTIONS = (PRD.collection(), TaskSpec.collection())


def missing_bodies(store: Store, collections: Sequence[str]) -> list[Problem]:
    """Records of PRDs and task specs whose ``file`` names a body file that is not there,
    or one outside their folder of the store (never read, written or deleted)."""
    problems = []
    for collection in BODY_COLLECTIONS:
        if collection not in collections:
            continue
        shown = display_path(store.file_path(collection))
        for record in store.collection(collection).list([Filter("file", Op.NE, None)]):
            relative = record["file"]
            try:
                path = body_file(store.path, collection, record["id"], relative)
            except ValidationError as exc:
                problems.append(Problem(shown, 0, str(exc)))
                continue
            if not os.path.exists(path):
                problems.append(
                    Problem(
                        shown,
                        0,
                        f"{record['id']}: its body file {relative} is missing "
                        "(restore it from git, or write it again)",
                    )
                )
    return problems


# The task model's checks, for Store.check(checks=...).
CHECKS: tuple[Check, ...] = (missing_bodies,)
