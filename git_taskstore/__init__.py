"""git-taskstore: a git-native store for structured records.

Records live in append-only JSONL files committed to git (the truth); a SQLite file beside
them is a disposable query cache.

    from git_taskstore import Store, Filter, Op
    with Store.open(".") as store:
        tasks = store.collection("tasks")
        tasks.put({"id": "t-1", "title": "Add OAuth", "status": "open"})
        tasks.list([Filter("status", Op.EQ, "open")])
"""

from __future__ import annotations

# Not typing's: this package is the first import of every hook and merge, and nothing else
# on the merge driver's path imports typing. mypy treats this name as typing's.
TYPE_CHECKING = False

__version__ = "0.1.0"

# Names are resolved on first use: the CLI, the hooks and the merge driver start as fresh
# processes, and `git taskstore --version` should not pay for sqlite3.
_EXPORTS = {
    "Store": "store",
    "Collection": "store",
    "Record": "records",
    "Filter": "records",
    "Op": "records",
    "Computed": "computed",
    "is_set": "computed",
    "is_unset": "computed",
    "first_set": "computed",
    "TaskstoreError": "errors",
    "ValidationError": "errors",
    "NotFoundError": "errors",
    "AlreadyExistsError": "errors",
    "ConflictMarkersError": "errors",
    "StorePathError": "errors",
    "StoreVersionError": "errors",
    "WriteError": "errors",
    "VersionConflictError": "errors",
}

__all__ = [
    "AlreadyExistsError",
    "Collection",
    "Computed",
    "ConflictMarkersError",
    "Filter",
    "NotFoundError",
    "Op",
    "Record",
    "Store",
    "StorePathError",
    "StoreVersionError",
    "TaskstoreError",
    "ValidationError",
    "VersionConflictError",
    "WriteError",
    "__version__",
    "first_set",
    "is_set",
    "is_unset",
]

if TYPE_CHECKING:
    from typing import Any

    from .computed import Computed, first_set, is_set, is_unset
    from .errors import (
        AlreadyExistsError,
        ConflictMarkersError,
        NotFoundError,
        StorePathError,
        StoreVersionError,
        TaskstoreError,
        ValidationError,
        VersionConflictError,
        WriteError,
    )
    from .records import Filter, Op, Record
    from .store import Collection, Store


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'git_taskstore' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
