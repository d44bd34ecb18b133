"""Pausing Python's cycle collector while a big write or read holds ~10^5 acyclic objects.

Each collection would walk all of them, again and again as they grow (measured: 260 ms of
a 1.4 s rebuild, 0.17 s of 100,000 put() calls in a batch). Pauses are counted, so that
one ending cannot turn the collector back on under another that is still running, in
this thread or another.
"""

from __future__ import annotations

import _thread
import gc
from collections.abc import Iterator
from contextlib import contextmanager


class _CollectorPause:
    """Pauses of the cycle collector, counted: it runs again when the last one ends, and
    only if it ran when the first began (a rebuild inside a batch inside another thread's
    batch must not turn it back on under the others, nor on for a caller who had it off).
    """

    def __init__(self) -> None:
        # _thread, not threading: jsonl imports this module, and the merge driver, a
        # fresh process on every merge, never needs threading (~1 ms to import).
        self._lock = _thread.allocate_lock()
        self._count = 0
        self._was_enabled = False

    def begin(self) -> None:
        with self._lock:
            if self._count == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._count += 1

    def end(self) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0 and self._was_enabled:
                gc.enable()


gc_pause = _CollectorPause()


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cycle collector paused for the duration of the block."""
    gc_pause.begin()
    try:
        yield
    finally:
        gc_pause.end()
