"""A record class's type hints, compiled once a class into what writes and reads run.

``dump`` checks a record's fields against their hints and gives the dict its line holds:
enum members as their values, nested dataclasses as objects, tuples as arrays, a field
that is None (and None by default) left out. ``load`` turns a line's fields back into the
declared types (members, dataclasses, floats) and raises, naming the field, where a value
does not fit. Both are generated Python, one statement a field: a check written as a
call a field cost a typed 100,000-record ``create_many`` a third more.

Supported hints: ``str``, ``int``, ``float`` (an int is accepted), ``bool``, ``None``,
unions of them (``X | None``), ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``,
``Literal[...]``, ``enum.Enum`` subclasses (``StrEnum``, ``IntEnum``), dataclasses, and
``Any``/``object`` (not checked). A hint that cannot be resolved (a name local to a
function, under ``from __future__ import annotations``) is not checked either.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Callable
from typing import Any, NamedTuple

from .errors import ValidationError


class Wrong(Exception):
    """A value that does not fit its hint; turned into a ValidationError naming the field."""


class Kind(NamedTuple):
    """One hint, compiled."""

    name: str  # as an error message shows it
    # An expression over ``{v}``, true when the value fits as it is (None: it needs dump).
    test: str | None
    dump: Callable[[Any], Any] | None  # fits and converts v, or raises Wrong
    load: Callable[[Any], Any] | None  # the declared value of a JSON value, or Wrong
    # For list[X] and dict[str, X] of an X with a test: (the container's type, X's test),
    # checked by a loop written into the dump (a call a record cost a tenth more).
    each: tuple[str, str] | None = None
    # The one type a fitting value has (a float field: float), asked of all such fields of
    # a record at once; a value of another type goes the long way, which may still take it.
    exact: type | None = None


ANY = Kind("Any", "True", None, None)


NONE = "{v} is None"
_SCALARS = {
    str: Kind("str", "type({v}) is str", None, None, exact=str),
    int: Kind("int", "type({v}) is int", None, None, exact=int),
    bool: Kind("bool", "type({v}) is bool", None, None, exact=bool),
    type(None): Kind("None", NONE, None, None),
}


def _fits(kind: Kind) -> Callable[[Any], bool]:
    """The kind's test as a function."""
    assert kind.test is not None
    return eval(f"lambda v: {kind.test.format(v='v')}")  # type: ignore[no-any-return]


def _float() -> Kind:
    def load(v: Any) -> float:
        if type(v) is float:
            return v
        if type(v) is int:
            return float(v)
        raise Wrong

    # An int is written as a float too: the line then reads back as it was written.
    return Kind("float", "type({v}) is float or type({v}) is int", load, load, exact=float)


def _enum(cls: type[enum.Enum]) -> Kind:
    if issubclass(cls, enum.Flag):
        raise TypeError(f"flags ({cls.__name__}) are not kept: use list[{cls.__name__}]")
    odd = [m for m in cls if type(m.value) not in (str, int, float, bool)]
    if odd:
        raise TypeError(
            f"{cls.__name__}.{odd[0].name} is {odd[0].value!r}: enum values are kept as JSON "
            "strings, numbers or booleans"
        )
    by_value = {member.value: member for member in cls}

    def member_of(v: Any) -> enum.Enum:
        """The member whose value is ``v`` (of the value's own type: True is not 1)."""
        if v.__class__ is cls:
            return v
        try:
            member = by_value.get(v)
        except TypeError:  # unhashable: a list, a dict
            member = None
        if member is None or type(v) is not type(member.value):
            raise Wrong
        return member

    # A value of the enum is accepted where a member is, and written as itself.
    return Kind(
        f"{cls.__name__} (one of {', '.join(str(m.value) for m in cls)})",
        None,
        lambda v: member_of(v)._value_,
        member_of,
        exact=cls,
    )


def _literal(values: tuple[Any, ...]) -> Kind:
    allowed = {(type(value), value) for value in values}

    def dump(v: Any) -> Any:
        try:
            if (type(v), v) in allowed:
                return v
        except TypeError:
            pass
        raise Wrong

    return Kind(f"one of {', '.join(map(repr, values))}", None, dump, dump)


def _union(kinds: list[Kind]) -> Kind:
    name = " | ".join(kind.name for kind in kinds)
    if all(kind.dump is None and kind.load is None for kind in kinds):
        tests = [kind.test for kind in kinds]
        return Kind(name, " or ".join(f"({test})" for test in tests), None, None)
    # A None in the union is tried first: the common Optional of a converted type.
    ordered = sorted(kinds, key=lambda kind: kind.test != NONE)
    fits_of = [None if kind.test is None else _fits(kind) for kind in ordered]

    def attempt(v: Any, loading: bool) -> Any:
        for kind, fits in zip(ordered, fits_of, strict=True):
            convert = kind.load if loading else kind.dump
            if convert is not None:
                try:
                    return convert(v)
                except Wrong:
                    continue
            elif fits is not None and fits(v):
                return v
        raise Wrong

    return Kind(name, None, lambda v: attempt(v, False), lambda v: attempt(v, True))


def _sequence(item: Kind, *, as_tuple: bool) -> Kind:
    name = f"tuple[{item.name}, ...]" if as_tuple else f"list[{item.name}]"
    fits = _fits(item) if item.test is not None else None
    container = tuple if as_tuple else list

    def convert(v: Any, given: Any, each: Callable[[Any], Any] | None, into: Any) -> Any:
        """A ``given`` sequence as an ``into`` one, each item fitting (and converted)."""
        if type(v) is not given:
            raise Wrong
        if each is None:
            if fits is not None and not all(map(fits, v)):
                raise Wrong
            return v if into is given else into(v)
        return into(map(each, v))

    # Written as a JSON array (a list), read back as the container declared.
    simple = not as_tuple and item.dump is None and item.test not in (None, "True")
    return Kind(
        name,
        None,
        lambda v: convert(v, container, item.dump, list),
        lambda v: convert(v, list, item.load, container),
        ("list", item.test) if simple else None,  # type: ignore[arg-type]
        exact=None if as_tuple else list,
    )


def _mapping(value: Kind) -> Kind:
    name = f"dict[str, {value.name}]"
    fits = _fits(value) if value.test is not None else None

    def convert(v: Any, each: Callable[[Any], Any] | None) -> Any:
        if type(v) is not dict or not all(type(key) is str for key in v):
            raise Wrong
        if each is None:
            if fits is not None and not all(map(fits, v.values())):
                raise Wrong
            return v
        return {key: each(x) for key, x in v.items()}

    simple = value.dump is None and value.test not in (None, "True")
    return Kind(
        name,
        None,
        lambda v: convert(v, value.dump),
        lambda v: convert(v, value.load),
        ("dict", value.test) if simple else None,  # type: ignore[arg-type]
        exact=dict,
    )


def _dataclass(cls: type) -> Kind:
    def dump(v: Any) -> Any:
        if not isinstance(v, cls):
            raise Wrong
        return compiled(cls).dump(v)

    def load(v: Any) -> Any:
        if type(v) is not dict:
            raise Wrong
        return compiled(cls).build(v)

    return Kind(cls.__name__, None, dump, load, exact=cls)


def kind_of(hint: Any) -> Kind:
    """The compiled form of one type hint; ValidationError for one the store cannot keep."""
    if hint is Any or hint is object:
        return ANY
    if hint in _SCALARS:
        return _SCALARS[hint]
    if hint is float:
        return _float()
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return _union([kind_of(arg) for arg in args])
    if origin is typing.Literal:
        return _literal(args)
    if origin is list or hint is list:
        return _sequence(kind_of(args[0]) if args else ANY, as_tuple=False)
    if origin is tuple or hint is tuple:
        if args and (len(args) != 2 or args[1] is not Ellipsis):
            raise TypeError("fixed-length tuples are not kept: use tuple[X, ...] or a dataclass")
        return _sequence(kind_of(args[0]) if args else ANY, as_tuple=True)
    if origin is dict or hint is dict:
        if args and args[0] is not str:
            raise TypeError("JSON object keys are strings: use dict[str, X]")
        return _mapping(kind_of(args[1]) if args else ANY)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint)
    raise TypeError(f"{getattr(hint, '__name__', hint)!s} is not a type the store can keep")


class Compiled(NamedTuple):
    """What a dataclass's writes and reads run, made once a class."""

    fields: tuple[str, ...]  # the fields written, in the order declared
    dump: Callable[[Any], dict[str, Any]]
    build: Callable[[dict[str, Any]], Any]  # an instance from a JSON object's fields
    nullable: tuple[str, ...]  # fields left out of the line while None


_COMPILED: dict[type, Compiled] = {}

# A record's own fields that the store checks itself: the id as every id is (the
# message says what is wrong with it), and the timestamps are the store's to set (a
# created_at that is not a positive int is replaced, updated_at always is). Checking
# them here again cost a third of the check of a typical record.
STORE_FIELDS = frozenset(("id", "created_at", "updated_at"))


def compiled(cls: type) -> Compiled:
    found = _COMPILED.get(cls)
    if found is None:
        found = _COMPILED[cls] = _compile(cls)
    return found


def _hints(cls: type) -> dict[str, Any]:
    """The class's resolved hints; a field whose hint does not resolve is Any."""
    try:
        return typing.get_type_hints(cls)
    except Exception:  # any failure to evaluate a hint: each is tried alone below
        pass
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        namespace = vars(sys.modules.get(klass.__module__, object()))
        for name, hint in vars(klass).get("__annotations__", {}).items():
            try:
                # The class author's own annotation, evaluated as get_type_hints would.
                hints[name] = (
                    eval(hint, dict(namespace), dict(vars(klass)))
                    if isinstance(hint, str)
                    else hint
                )
            except Exception:
                hints[name] = Any
    return hints


def _compile(cls: type) -> Compiled:
    hints = _hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.name != "extra_fields"]
    has_extra = any(f.name == "extra_fields" for f in dataclasses.fields(cls))
    kinds: dict[str, Kind] = {}
    for f in fields:
        if has_extra and f.name in STORE_FIELDS:
            kinds[f.name] = ANY
            continue
        try:
            kinds[f.name] = kind_of(hints.get(f.name, Any))
        except TypeError as exc:
            raise ValidationError(f"{cls.__name__}.{f.name}: {exc}") from None
    write_nulls = getattr(cls, "write_nulls", True)
    nullable = tuple(
        f.name
        for f in fields
        if not write_nulls and f.default is None and kinds[f.name].test != NONE
    )
    checked = _dump_source(cls, fields, kinds, nullable, has_extra)
    return Compiled(
        tuple(f.name for f in fields),
        _quick_dump(fields, kinds, nullable, has_extra, checked) if has_extra else checked,
        _build_source(cls, fields, kinds, has_extra),
        nullable,
    )


def _dump_source(
    cls: type,
    fields: list[dataclasses.Field[Any]],
    kinds: dict[str, Kind],
    nullable: tuple[str, ...],
    has_extra: bool,
) -> Callable[[Any], dict[str, Any]]:
    env: dict[str, Any] = {"wrong": _wrong_value(cls), "Wrong": Wrong}
    lines = ["def dump(r):"]
    for n, f in enumerate(fields):
        kind, name, v = kinds[f.name], f.name, f"v{n}"
        lines.append(f"    {v} = r.{name}")
        check: list[str] = []
        if kind.each is not None:
            container, test = kind.each
            values = f"{v}.values()" if container == "dict" else v
            check += [f"if type({v}) is not {container}: wrong({name!r}, {v})"]
            if container == "dict":
                check += [f"if not all(type(k) is str for k in {v}): wrong({name!r}, {v})"]
            check += [
                f"for x in {values}:",
                f"    if not ({test.format(v='x')}): wrong({name!r}, {v})",
            ]
        elif kind.dump is not None:
            env[f"d{n}"] = kind.dump
            check += [f"try: {v} = d{n}({v})", f"except Wrong: wrong({name!r}, {v})"]
        elif kind.test != "True":
            assert kind.test is not None
            env[f"m{n}"] = _member_value(kind, name, env["wrong"])
            check += [f"if not ({kind.test.format(v=v)}): {v} = m{n}({v})"]
        if name in nullable and check:
            lines.append(f"    if {v} is not None:")
            lines += [f"        {line}" for line in check]
        else:
            lines += [f"    {line}" for line in check]
    # One dict display: a tenth of the cost of setting the keys one by one.
    lines.append(
        "    out = {"
        + ", ".join(f"{f.name!r}: v{n}" for n, f in enumerate(fields) if f.name not in nullable)
        + "}"
    )
    for n, f in enumerate(fields):
        if f.name in nullable:
            lines += [f"    if v{n} is not None:", f"        out[{f.name!r}] = v{n}"]
    lines += ["    extra = r.extra_fields", *_EXTRA] if has_extra else ["    return out"]
    return _define(lines, env)  # type: ignore[no-any-return]


def _quick_dump(
    fields: list[dataclasses.Field[Any]],
    kinds: dict[str, Kind],
    nullable: tuple[str, ...],
    has_extra: bool,
    checked: Callable[[Any], dict[str, Any]],
) -> Callable[[Any], dict[str, Any]]:
    """The dump of a record whose fields are all set (by __init__, in the order declared)
    and of the very types declared: the types of those fields compared in one step, the
    instance's dict copied (a fifth of the cost of reading each field). Anything else, it
    leaves to ``checked``, which accepts what fits and raises naming what does not."""
    exact = [f.name for f in fields if kinds[f.name].exact is not None]
    env: dict[str, Any] = {"checked": checked, "Wrong": Wrong}
    for n, name in enumerate(exact):
        env[f"t{n}"] = kinds[name].exact
    size = len(fields) + (1 if has_extra else 0)
    # The types as defaults: local names, read faster than globals.
    bound = "".join(f", t{n}=t{n}" for n in range(len(exact)))
    lines = [
        f"def dump(r{bound}):",
        "    d = r.__dict__",
        f"    if len(d) != {size}:",
        "        return checked(r)",
    ]
    if exact:
        # One test a field, read from the dict: the fastest check Python has (a tuple of
        # the types compared at once costs twice as much, map() calling type()).
        tests = " or ".join(f"type(d[{name!r}]) is not t{n}" for n, name in enumerate(exact))
        lines += [
            "    try:",
            f"        if {tests}:",
            "            return checked(r)",
            "    except KeyError:",
            "        return checked(r)",
        ]
    lines += ["    out = d.copy()"]
    if has_extra:
        lines += ["    extra = out.pop('extra_fields')"]
    for n, f in enumerate(fields):
        kind, name = kinds[f.name], f.name
        if kind.each is not None:
            container, test = kind.each
            values = "v.values()" if container == "dict" else "v"
            lines += [f"    v = out[{name!r}]"]
            if container == "dict":
                lines += ["    for k in v:", "        if type(k) is not str: return checked(r)"]
            lines += [
                f"    for x in {values}:",
                f"        if not ({test.format(v='x')}): return checked(r)",
            ]
        elif kind.exact is not None and issubclass(kind.exact, enum.Enum):
            lines += [f"    out[{name!r}] = out[{name!r}]._value_"]
        elif kind.dump is not None:
            env[f"d{n}"] = kind.dump
            lines += [
                "    try:",
                f"        out[{name!r}] = d{n}(out[{name!r}])",
                "    except Wrong:",
                "        return checked(r)",
            ]
        elif kind.exact is None and kind.test != "True":
            assert kind.test is not None
            lines += [f"    if not ({kind.test.format(v=f'out[{name!r}]')}): return checked(r)"]
        if name in nullable:
            lines += [f"    if out[{name!r}] is None: del out[{name!r}]"]
    lines += _EXTRA if has_extra else ["    return out"]
    return _define(lines, env)  # type: ignore[no-any-return]


# The end of a dump: the fields on disk the class does not declare, after its own.
_EXTRA = [
    "    if extra:",
    "        for key, value in extra.items():",
    "            out.setdefault(key, value)",
    "    return out",
]


def _define(lines: list[str], env: dict[str, Any]) -> Any:
    """The function the source ``lines`` define, with the names of ``env``."""
    exec("\n".join(lines), env)  # the source is made from field names the class declares
    return env[lines[0].split()[1].split("(")[0]]


def _build_source(
    cls: type,
    fields: list[dataclasses.Field[Any]],
    kinds: dict[str, Kind],
    has_extra: bool,
) -> Callable[[dict[str, Any]], Any]:
    init = {f.name for f in fields if f.init}
    env: dict[str, Any] = {
        "cls": cls,
        "known": frozenset(init),
        "wrong": _wrong_read(cls),
        "Wrong": Wrong,
    }
    lines = [
        "def build(data):",
        "    kwargs = {k: v for k, v in data.items() if k in known}",
    ]
    for number, f in enumerate(fields):
        kind, name = kinds[f.name], f.name
        if name not in init or (kind.load is None and kind.test == "True"):
            continue
        lines.append(f"    if {name!r} in kwargs:")
        lines.append(f"        v = kwargs[{name!r}]")
        if kind.load is not None:
            env[f"l{number}"] = kind.load
            lines.append(f"        try: kwargs[{name!r}] = l{number}(v)")
            lines.append(f"        except Wrong: wrong(data, {name!r}, v)")
        else:
            assert kind.test is not None
            lines.append(f"        if not ({kind.test.format(v='v')}): wrong(data, {name!r}, v)")
    lines += [
        "    try:",
        "        record = cls(**kwargs)",
        "    except TypeError as exc:",  # a field without a default is missing
        "        wrong(data, None, exc)" if has_extra else "        raise Wrong from None",
        "    if len(kwargs) < len(data):",
        # Kept and written back; a nested dataclass has nowhere to keep them.
        "        extra = {k: v for k, v in data.items() if k not in known}"
        if has_extra
        else "        raise Wrong",
    ]
    if has_extra:
        lines.append("        record.extra_fields = extra")
    lines.append("    return record")
    return _define(lines, env)  # type: ignore[no-any-return]


def value_for(cls: type, name: str, value: Any) -> Any:
    """``value`` as the field ``name`` of ``cls`` holds it (an enum's value as its member);
    ValidationError, as a write of it would give, where it does not fit."""
    kind = kind_of(_hints(cls).get(name, Any))
    try:
        if kind.load is not None:
            return kind.load(value)
    except Wrong:
        pass
    else:
        if kind.test is None or _fits(kind)(value):
            return value
    _wrong_value(cls)(name, value)


def _member_value(kind: Kind, name: str, wrong: Callable[[str, Any], None]) -> Callable[[Any], Any]:
    """For a value that fails ``kind``'s test: the value of a StrEnum or IntEnum member
    where that fits (written as its string or number, as it was before hints were
    checked), else the field's error."""
    fits = _fits(kind)

    def member_value(v: Any) -> Any:
        # A member that is a str or an int itself (StrEnum, IntEnum): type checkers take
        # it for one. A plain Enum's member is not its value.
        if isinstance(v, enum.Enum) and isinstance(v, str | int) and fits(v._value_):
            return v._value_
        wrong(name, v)

    return member_value


def _given(value: Any) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} {shown}"


def _wrong_value(cls: type) -> Callable[[str, Any], None]:
    def wrong(name: str, value: Any) -> None:
        kind = kind_of(_hints(cls).get(name, Any))
        raise ValidationError(
            f"{cls.__name__}.{name} must be {kind.name}, got {_given(value)}: nothing was written"
        )

    return wrong


def _wrong_read(cls: type) -> Callable[[dict[str, Any], str | None, Any], None]:
    def wrong(data: dict[str, Any], name: str | None, value: Any) -> None:
        where = f"{cls.__name__} {data.get('id')!r}"
        if name is None:
            raise ValidationError(f"{where}: {value}")
        kind = kind_of(_hints(cls).get(name, Any))
        raise ValidationError(f"{where}: {name} holds {_given(value)}, not {kind.name}")

    return wrong
