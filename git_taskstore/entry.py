"""The ``git-taskstore`` console script: answers ``--version`` before importing click.

Every process start counts (git runs hooks and scripts often), and click is half of a
bare start-up.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--version"], ["-V"]):
        from . import __version__

        sys.stdout.write(f"git-taskstore, version {__version__}\n")
        return 0
    from .cli import main as cli_main

    return cli_main(args)
