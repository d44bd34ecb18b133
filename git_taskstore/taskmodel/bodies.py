"""Where a PRD's or task spec's markdown body lives: inside its folder of the store, or nowhere.

The ``file`` field arrives through git like any other: whoever can push can set it to
``../../.ssh/config`` or ``/etc/passwd``, or commit ``prds/x.md`` as a link out of the
store. A body path is used only if it resolves, links followed, to a file inside the
record's own folder (``prds/`` or ``task_specs/``).
"""

from __future__ import annotations

import os

from ..errors import ValidationError
from .models import PRD, TaskSpec

# The folder of the store that holds each model's bodies.
FOLDERS: dict[str, str] = {PRD.collection(): "prds", TaskSpec.collection(): "task_specs"}


def body_file(store_path: str, collection: str, record_id: str, relative: object) -> str:
    """The absolute path of a body named ``relative`` (a record's ``file``);
    ValidationError if it is not a relative path that stays inside its folder."""
    folder = FOLDERS[collection]
    inside = os.path.realpath(os.path.join(store_path, folder))
    if isinstance(relative, str) and relative and not os.path.isabs(relative):
        path = os.path.realpath(os.path.join(store_path, relative))
        if path.startswith(inside + os.sep):
            return path
    raise ValidationError(
        f"{collection}/{record_id}: its body file {relative!r} is not inside "
        f"{folder}/ of the store (a link or a path out of it): it is never read, written "
        f'or deleted; set "file" to a path under {folder}/'
    )
