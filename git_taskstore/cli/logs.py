"""How the CLI shows what the core logs: one ``note:`` or ``warning:`` line on stderr.

Installed on the first message only (git_taskstore.log): most commands say nothing, and
importing logging is a fifth of their start-up.
"""

from __future__ import annotations

import logging
import sys


class _StderrHandler(logging.Handler):
    """Writes each record to sys.stderr as it is when the record is made, so that a caller
    that swaps sys.stderr (main() called in-process, by tests or another tool) gets it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # INFO is what the core says in passing (a rebuilt cache, a migration): a note.
        label = "note" if record.levelno < logging.WARNING else record.levelname.lower()
        return f"{label}: {record.getMessage()}"


def install(logger: logging.Logger) -> None:
    """Notes and warnings of the core as ``note: ...`` / ``warning: ...`` lines on stderr."""
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(_Formatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
