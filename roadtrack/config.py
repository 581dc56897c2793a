"""Config sections as dataclasses: a parsed YAML mapping in, a checked dataclass out.

Every section of a config (the run config's, the tracker's, the event stage's) is a dataclass:
its annotations give each key's type (``int``, ``float``, ``str``, ``bool``, ``list[int]``,
``float | None``, a nested section) and its ``__post_init__`` checks ranges and choices with the
helpers below, which raise :class:`BadValue`. :func:`section_from_dict` builds such a dataclass
from a mapping and turns every problem into one :class:`~roadtrack.errors.UserError` naming the
dotted key and the file: an unknown key (with the closest known one), a wrong type, a value out of
range. No torch here: the tracker loads its settings through this module.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import re
import reprlib
import types
import typing
from pathlib import Path

import yaml

from .errors import UserError

SEED_MAX = 2**32 - 1  # numpy's seeds
# YAML 1.1 reads ``1e-4`` (no dot) as a string: such strings pass as numbers
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class BadValue(ValueError):
    """A value out of range: ``key`` (dotted, relative to its section) and the problem."""

    def __init__(self, key: str, problem: str):
        self.key, self.problem = key, problem
        super().__init__(f"{key}: {problem}")


_SHORT = reprlib.Repr()  # a few levels and items: YAML aliases can nest a list a billion times
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring = 3, 4, 4, 40


def show(value, limit: int = 60) -> str:
    """``repr(value)`` on one line, shortened to about ``limit`` characters."""
    text = _SHORT.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- range checks for __post_init__ -------------------------------------------------------------


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kind(value) -> str:
    return "an integer" if isinstance(value, int) else "a number"


def at_least(section, bound, *names: str) -> None:
    """Each field in ``names`` must be a number >= ``bound``."""
    for name in names:
        value = getattr(section, name)
        if not (_number(value) and value >= bound):
            raise BadValue(name, f"must be {_kind(value)} >= {bound}, got {show(value)}")


def above(section, bound, *names: str) -> None:
    """Each field in ``names`` must be a number > ``bound``."""
    for name in names:
        value = getattr(section, name)
        if not (_number(value) and value > bound):
            raise BadValue(name, f"must be a number > {bound}, got {show(value)}")


def within(section, low, high, *names: str, low_open: bool = False,
           high_open: bool = False) -> None:
    """Each field in ``names`` must be a number in [low, high] (ends open as asked)."""
    for name in names:
        value = getattr(section, name)
        ok = _number(value) and (value > low if low_open else value >= low) \
            and (value < high if high_open else value <= high)
        if not ok:
            span = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise BadValue(name, f"must be {_kind(value)} in {span}, got {show(value)}")


def one_of(section, name: str, *choices: str) -> None:
    value = getattr(section, name)
    if value not in choices:
        raise BadValue(name, f"must be one of {', '.join(choices)}, got {show(value)}")


# -- types from the annotations -----------------------------------------------------------------


@functools.cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


_WORDS = {int: ("an integer", "integers"), float: ("a number", "numbers"),
          str: ("a string", "strings"), bool: ("true or false", "true/false values"),
          dict: ("a mapping", "mappings"), list: ("a list", "lists")}


def describe(hint, plural: bool = False) -> str:
    """A type annotation in words: ``list[int]`` -> 'a list of integers'."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe(a, plural) for a in args)
    if typing.get_origin(hint) is list and args:
        return f"a list of {describe(args[0], plural=True)}"
    return _WORDS.get(hint, (getattr(hint, "__name__", str(hint)),) * 2)[plural]


_MISSING = object()


def convert(value, hint):
    """``value`` as type ``hint`` (ints pass as floats, finite numbers only), or ``_MISSING``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            got = convert(value, arg)
            if got is not _MISSING:
                return got
        return _MISSING
    if hint is type(None):
        return None if value is None else _MISSING
    if hint is dict and value is None:  # a section left empty (``track:``)
        return {}
    if hint is bool or hint is str or hint is dict:
        return value if type(value) is hint else _MISSING
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _MISSING
    if hint is float:
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            value = float(value)
        if not _number(value):
            return _MISSING
        try:
            value = float(value)
        except OverflowError:  # an int beyond any float
            return _MISSING
        return value if math.isfinite(value) else _MISSING
    if origin is list or hint is list:
        if not isinstance(value, list):
            return _MISSING
        items = [convert(v, args[0]) for v in value] if args else list(value)
        return _MISSING if any(v is _MISSING for v in items) else items
    return value


# -- loading ------------------------------------------------------------------------------------


def unknown_key(key, known, prefix: str = "") -> str:
    """'unknown config key ...' with the closest known key when one is close."""
    text = key if isinstance(key, str) else show(key)
    close = difflib.get_close_matches(text, list(known), n=1) if isinstance(key, str) else []
    hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
    return f"unknown config key {show(prefix + text)}{hint}"


def section_from_dict(cls, data, prefix: str = "", path: str | Path | None = None):
    """Dataclass ``cls`` from ``data``: missing keys keep their defaults, nested sections too.

    ``prefix`` is the section's dotted name plus a dot ('' at the top); any problem raises
    UserError naming the key and ``path``.
    """
    data = {} if data is None else data
    where = prefix.rstrip(".") or "the config"
    if not isinstance(data, dict):
        raise UserError(f"{where}: must be a mapping of keys to values, got {show(data)}", path)
    hints = _hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise UserError(unknown_key(key, fields, prefix), path)
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = section_from_dict(hint, value, f"{prefix}{name}.", path)
            continue
        got = convert(value, hint)
        if isinstance(got, str) and "\x00" in got:  # no file name or label holds one
            raise UserError(f"{prefix}{name}: must not contain NUL characters", path)
        if got is _MISSING:
            raise UserError(f"{prefix}{name}: must be {describe(hint)}, got {show(value)}", path)
        values[name] = got
    try:
        return cls(**values)
    except BadValue as err:
        raise UserError(f"{prefix}{err.key}: {err.problem}", path) from None


def read_yaml(path: str | Path, what: str = "config"):
    """The parsed YAML file at ``path``; an unreadable file or bad YAML raises UserError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UserError(f"cannot read {what}: {err.strerror or err}", path) from None
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text", path) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or (str(err).splitlines() or ["?"])[0]
        mark = getattr(err, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise UserError(f"not valid YAML: {problem}{at}", path) from None
    except RecursionError:
        raise UserError("not valid YAML: nested too deeply", path) from None
    except (ValueError, TypeError, OverflowError) as err:  # e.g. a date such as 2001-02-30
        first = (str(err).splitlines() or [type(err).__name__])[0]
        raise UserError(f"not valid YAML: {first[:100]}", path) from None
