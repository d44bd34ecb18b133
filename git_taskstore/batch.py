"""A thread's open ``Store.batch()``: the requests it holds until the block ends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .engine import GC_PAUSE_MIN
from .gcpause import gc_pause
from .writes import Request


@dataclass(slots=True)
class Batch:
    """The requests of a batch and the time it began (the one stamp of its records)."""

    stamp: int
    requests: list[Request] = field(default_factory=list)
    held: int = 0  # records held
    paused_gc: bool = False  # whether it holds the cycle collector paused

    def expect(self, records: int) -> None:
        """About to hold this many more records: past GC_PAUSE_MIN in all, the cycle
        collector is paused until the batch is written, as a big write pauses it (each
        collection would walk every record held, again and again as they grow: 0.17 s of
        100,000 put() calls). A batch of a few records never pauses it."""
        if not self.paused_gc and self.held + records > GC_PAUSE_MIN:
            gc_pause.begin()
            self.paused_gc = True

    def hold(self, requests: list[Request]) -> None:
        for request in requests:
            self.expect(len(request.records))
            if self.requests and self.requests[-1].joins(request):
                self.requests[-1].extend(request)
            else:
                self.requests.append(request)
            self.held += len(request.records)

    def add(self, collection: str, mode: str, record: object) -> dict[str, Any] | None:
        """Hold one more record of a put, create or update, if it joins the request held
        last (the stamped copy then, else None): a loop of single puts, without a request
        per call."""
        last = self.requests[-1] if self.requests else None
        if (
            last is None
            or last.collection != collection
            or last.mode != mode
            or last.own_created is None
            or last.typed is not None
        ):
            return None
        self.expect(1)
        copy = last.add(record)
        self.held += 1
        return copy

    def mark(self) -> tuple[int, int]:
        """Where a nested block begins: (requests held, records in the last one)."""
        return len(self.requests), len(self.requests[-1].records) if self.requests else 0

    def discard_from(self, mark: tuple[int, int]) -> None:
        """Drop what was held after ``mark`` (a nested block raised)."""
        count, size = mark
        del self.requests[count:]
        if self.requests:  # the block's first writes may have joined the last request
            self.requests[-1].truncate(size)
        self.held = sum(len(request.records) for request in self.requests)

    def resume_gc(self) -> None:
        if self.paused_gc:
            gc_pause.end()
            self.paused_gc = False
