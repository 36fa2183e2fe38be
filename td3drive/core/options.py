"""Declared, validated options: how a config section or a backend's options dataclass states its keys.

A key is a field of a frozen dataclass made with :func:`leaf`: its default, what is allowed (a :data:`Check`,
the predicate and the words that name it) and what it means (units and range), in one place, so that the
check, the error message and the README's reference all come from it. :func:`build` turns a mapping into
the dataclass, raising :class:`~td3drive.core.errors.ConfigError` with one line that names the key, the
value and what is allowed. Only the standard library: every layer may declare options.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import field
from functools import cache
from typing import Any, Callable, Mapping

from td3drive.core.errors import ConfigError

# A constraint: (predicate, what it allows in words).
Check = tuple[Callable[[Any], bool], str]


def positive() -> Check:
    return (lambda v: v > 0, "a number > 0")


def non_negative() -> Check:
    return (lambda v: v >= 0, "a number >= 0")


def at_least(low: int) -> Check:
    return (lambda v: v >= low, f"an integer >= {low}")


def unit_open_closed() -> Check:
    return (lambda v: 0 < v <= 1, "a number in (0, 1]")


def unit_closed_open() -> Check:
    return (lambda v: 0 <= v < 1, "a number in [0, 1)")


def one_of(*choices: Any) -> Check:
    return (lambda v: v in choices, "one of " + ", ".join(repr(c) for c in choices))


def opt(check: Check) -> Check:
    pred, text = check
    return (lambda v: v is None or pred(v), f"{text}, or null")


def leaf(default: Any, check: Check | None = None, doc: str = "", flag: bool = False, fixed: bool = False) -> Any:
    """A key: its default, what is allowed, what it means; ``flag``: also a command-line flag of the commands
    that build a config (``--carla-host`` for ``carla_host``); ``fixed``: a resumed run cannot change it (it
    shapes the networks, the replay or the env the checkpoint holds)."""
    return field(default=default, metadata={"check": check, "doc": doc, "flag": flag, "fixed": fixed})


# The value types a key may have; ``X | None`` of each is allowed too.
_TYPES: dict[type, Callable[[Any], bool]] = {
    bool: lambda v: isinstance(v, bool),
    int: lambda v: isinstance(v, int) and not isinstance(v, bool),
    float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    str: lambda v: isinstance(v, str),
}


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def value_type(cls: type, name: str) -> tuple[type | None, bool]:
    """(the value type of key ``name`` of ``cls``, whether it may be null); ``(None, False)`` for a section or
    another field that is not a plain key."""
    hint = _hints(cls)[name]
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union \
        else (hint,)
    nullable = type(None) in args
    base = [a for a in args if a is not type(None)]
    return (base[0], nullable) if len(base) == 1 and base[0] in _TYPES else (None, False)


def type_name(cls: type, name: str) -> str:
    base, nullable = value_type(cls, name)
    return f"{base.__name__}{' | None' if nullable else ''}" if base else "?"


def is_section(f: dataclasses.Field) -> bool:
    """A field holding a nested options dataclass (built from a mapping of its own)."""
    return f.default_factory is not dataclasses.MISSING  # type: ignore[misc]


def check_value(cls: type, name: str, value: Any, key: str) -> Any:
    """``value`` for key ``name`` of ``cls`` (``key``: its dotted name in messages), type- and range-checked; an
    int given for a float key becomes a float. Raises ConfigError naming the key, the value and what is allowed."""
    base, nullable = value_type(cls, name)
    if base is None:
        raise TypeError(f"{cls.__name__}.{name}: a key must be bool, int, float or str (or | None)")
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"config key '{key}' = None: must be of type {type_name(cls, name)}")
    if not _TYPES[base](value):
        raise ConfigError(f"config key '{key}' = {value!r}: must be of type {type_name(cls, name)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"config key '{key}' = {value!r}: must be a finite number")
    check = {f.name: f for f in dataclasses.fields(cls)}[name].metadata.get("check")
    if check is not None and not check[0](value):
        raise ConfigError(f"config key '{key}' = {value!r}: must be {check[1]}")
    return float(value) if base is float else value


def is_key(f: dataclasses.Field) -> bool:
    """A plain key (not a section, nor a field that holds other options, as ``EnvConfig.options``)."""
    return f.init and not is_section(f) and not f.metadata.get("options")


def keys(cls: type) -> list[str]:
    """The plain keys of ``cls``, in declaration order."""
    return [f.name for f in dataclasses.fields(cls) if is_key(f)]


def build(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """``cls`` from ``data`` (missing keys take their defaults; sections are built from their own mappings).
    ``prefix``: the dotted path of ``data`` in messages (``"agent."``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config key '{prefix.rstrip('.')}' = {data!r}: must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key '{prefix}{unknown[0]}': allowed keys here are "
                          f"{', '.join(sorted(fields)) or 'none'}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if is_section(f):
            kwargs[name] = build(f.default_factory, data.get(name, {}), f"{prefix}{name}.")  # type: ignore[misc]
        elif name in data:
            kwargs[name] = check_value(cls, name, data[name], prefix + name)
    return cls(**kwargs)


def allowed_text(cls: type, name: str) -> str:
    """What key ``name`` of ``cls`` allows, in words (the reference's "allowed" column)."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    check = f.metadata.get("check")
    if check:
        return check[1]
    base, nullable = value_type(cls, name)
    if base is bool:
        return "true or false"
    return f"{'a string' if base is str else type_name(cls, name)}{', or null' if nullable else ''}"


def describe(cls: type, prefix: str) -> list[tuple[str, Any, str, str]]:
    """(dotted key, default, allowed, meaning) of every plain key of ``cls``."""
    return [(prefix + f.name, f.default, allowed_text(cls, f.name), f.metadata.get("doc", ""))
            for f in dataclasses.fields(cls) if is_key(f)]
