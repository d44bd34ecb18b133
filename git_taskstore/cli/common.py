"""What every command shares: options, opening the store, output, --where parsing."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
import orjson

if TYPE_CHECKING:
    from ..records import Filter
    from ..store import Store

F = TypeVar("F", bound=Callable[..., Any])


# --limit and --offset: whole numbers SQLite takes (64-bit), refused by click beyond.
WINDOW = click.IntRange(min=0, max=2**63 - 1)


def store_option(fn: F) -> F:
    return click.option(
        "--store",
        "store_dir",
        metavar="DIR",
        envvar="TASKSTORE_DIR",
        help="The store folder (default: .taskstore at the top of the git work tree, "
        "or ./.taskstore outside git). Also TASKSTORE_DIR.",
    )(fn)


def json_option(fn: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document on stdout."
    )(fn)


def source_name(handle: IO[bytes]) -> str:
    """How errors name what a click.File argument opened: its path, or stdin for -."""
    name = getattr(handle, "name", None)
    return name if isinstance(name, str) and not name.startswith("<") else "stdin"


def read_text(handle: IO[bytes]) -> str:
    """The whole of a click.File("rb") as UTF-8 text, its bytes as they are."""
    from ..errors import ValidationError

    try:
        return handle.read().decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(f"{source_name(handle)} is not UTF-8 text") from None


def open_store(
    store_dir: str | None, *, create: bool = False, debounce_ms: int | None = None
) -> Store:
    """The store a command works on; only `init` (and writes) create a missing one.
    ``debounce_ms=0`` writes at once whatever $TASKSTORE_DEBOUNCE_MS says."""
    from ..errors import StorePathError
    from ..paths import default_store_dir, display_path
    from ..store import Store

    path = default_store_dir(explicit=store_dir)
    if store_dir and not create and not os.path.lexists(path):
        # The folder was named: init needs the same name (plain `init` makes the default).
        raise StorePathError(
            f"no store at {display_path(path)}: check the path, or create it with "
            f"`git taskstore init --store {store_dir}`"
        )
    return Store.open_dir(path, create=create, debounce_ms=debounce_ms)


def creates_store(store_dir: str | None) -> bool:
    """Whether a write may create a missing store: only the default one (`.taskstore` at
    the top of the work tree). A folder named with --store or TASKSTORE_DIR must exist,
    so that a typo is an error, not a new empty store beside the real one."""
    return store_dir is None


def emit_json(value: Any) -> None:
    click.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode())


def format_value(key: str, value: Any, width: int = 48) -> str:
    """A cell for people: readable times, compact JSON, long text cut with an ellipsis."""
    if value is None:
        text = ""
    elif key.endswith("_at") and isinstance(value, int) and not isinstance(value, bool):
        text = format_ms(value)
    elif isinstance(value, str):
        text = value
    else:
        text = orjson.dumps(value).decode()
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def format_ms(ms: int) -> str:
    try:
        stamp = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return str(ms)
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Aligned columns with a header; times in UTC. Scripts should use --json."""
    header = [c.upper() for c in columns]
    cells = [[format_value(c, row.get(c)) for c in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    for line in [header, *cells]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())


def default_columns(rows: Sequence[dict[str, Any]], limit: int = 5) -> list[str]:
    """id, the first few short scalar fields of the records, then updated_at."""
    columns = ["id"]
    for row in rows[:50]:
        for key, value in row.items():
            if len(columns) > limit:
                break
            if key in columns or key.endswith("_at") or key == "deleted":
                continue
            if isinstance(value, str | int | float | bool) or value is None:
                columns.append(key)
    if any("updated_at" in row for row in rows):
        columns.append("updated_at")
    return columns


# --- --where -------------------------------------------------------------------------------

_WHERE_RE = re.compile(r"\s*([A-Za-z0-9_]+)\s*(!=|>=|<=|=|>|<|~)(.*)\Z", re.S)


def parse_value(text: str) -> Any:
    """A --where value: JSON when it parses (3, 2.5, true, null, "quoted", [..]), else text.

    Text is stripped like JSON is: the pattern allows blanks around the operator, and
    `status = open` used to look for " open" and silently match nothing. Quote a value
    to keep blanks at its ends (title~" x").
    """
    stripped = text.strip()
    if not stripped:
        return text
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return stripped


def parse_where(expressions: Iterable[str]) -> list[Filter]:
    from ..errors import ValidationError
    from ..records import Filter, Op

    ops = {
        "=": Op.EQ,
        "!=": Op.NE,
        ">": Op.GT,
        ">=": Op.GTE,
        "<": Op.LT,
        "<=": Op.LTE,
        "~": Op.CONTAINS,
    }
    filters = []
    for expr in expressions:
        match = _WHERE_RE.match(expr)
        if not match:
            raise click.BadParameter(
                f"{expr!r} is not FIELD OP VALUE: use =, !=, >, >=, <, <= or ~ "
                "(contains), e.g. status=active, count>=3, title~oauth",
                param_hint="--where",
            )
        field, op_text, raw = match.groups()
        if raw.lstrip().startswith(("=", ">", "<")) and not raw.lstrip().startswith('"'):
            # `status==open` matched `=` and looked for "=open": nothing, silently.
            raise click.BadParameter(
                f"{expr!r}: {op_text + raw.lstrip()[:1]!r} is not an operator; use =, !=, "
                '>, >=, <, <= or ~ (quote a value that starts with one: status="=x")',
                param_hint="--where",
            )
        value = parse_value(raw)
        op = ops[op_text]
        if isinstance(value, list):
            if op is not Op.EQ:
                raise click.BadParameter(
                    f'{expr!r}: a list of values goes with = only (field=["a","b"])',
                    param_hint="--where",
                )
            op = Op.IN
        elif isinstance(value, dict):
            raise click.BadParameter(
                f"{expr!r}: cannot compare with an object", param_hint="--where"
            )
        try:
            filters.append(Filter(field, op, value))
        except ValidationError as exc:
            raise click.BadParameter(f"{expr!r}: {exc}", param_hint="--where") from None
    return filters
