"""What the package says in passing (notes and warnings), through ``logging`` once it speaks.

Importing logging costs ~20 M instructions, a fifth of what a hook or a merge costs to
start, and most runs never say anything: the ``git_taskstore`` logger is looked up on the
first message. Applications configure it as any logger (``logging.getLogger
("git_taskstore")``); the CLI installs its handler through :func:`configure`.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's own costs more than the logging this module spares
if TYPE_CHECKING:
    import logging
    from collections.abc import Callable

NAME = "git_taskstore"

_logger: logging.Logger | None = None
_configure: Callable[[logging.Logger], None] | None = None


def configure(fn: Callable[[logging.Logger], None]) -> None:
    """Have ``fn`` set the logger up before its first message (now, if it has had one)."""
    global _configure
    _configure = fn
    if _logger is not None:
        fn(_logger)


def logger() -> logging.Logger:
    global _logger
    if _logger is None:
        import logging

        _logger = logging.getLogger(NAME)
        if _configure is not None:
            _configure(_logger)
    return _logger


def info(message: str, *args: object) -> None:
    logger().info(message, *args)


def warning(message: str, *args: object) -> None:
    logger().warning(message, *args)
