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

from .errors import (
    AlreadyExistsError,
    ConflictMarkersError,
    NotFoundError,
    StorePathError,
    StoreVersionError,
    TaskstoreError,
    ValidationError,
)
from .records import Filter, Op, Record
from .store import Collection, Store

__version__ = "0.1.0"

__all__ = [
    "AlreadyExistsError",
    "Collection",
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
    "__version__",
]
