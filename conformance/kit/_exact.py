"""Type-exact comparison of what a store gives back with what it was given (MOD-5).

Python's `==` holds `1 == 1.0 == True` and `0.0 == -0.0`, and a dataclass's `==`
compares its fields with it: a store that reads an integer back as a float, a flag
as `1` or `-0.0` as `0.0` would pass every `==` check, though serde on the other side
tells them apart (an `int` field refuses `1.0`; `-0.0` is written `-0.0`).
`difference` compares types at every depth, floats by `repr`, and names the first
place where the two values part:

    >>> difference({"n": 1.0}, {"n": 1})
    "['n'] read back as float 1.0, expected int 1"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from conformance.kit._violation import RuleViolation

__all__ = ["difference", "expect_same", "same"]


def _shown(value: object) -> str:
    """`value` as a failure shows it: its type and a repr cut at 80 characters."""
    if value is None:
        return "None"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _at(path: str, step: str) -> str:
    """The path of a field (`metadata.title`) or an item (`custom['k']`, `content[0]`) below `path`."""
    if step.startswith("["):
        return path + step
    return f"{path}.{step}" if path else step


def _read_back(path: str, found: object, expected: object) -> str:
    return f"{path + ' ' if path else ''}read back as {_shown(found)}, expected {_shown(expected)}"


def _parting(found: str, expected: str) -> str:
    """Where two texts part, shown by `ascii()` so that look-alikes read apart: `at character 2, 'cd' for '\\x00cd'`."""
    pairs = enumerate(zip(found, expected, strict=False))
    at = next((i for i, (x, y) in pairs if x != y), min(len(found), len(expected)))
    return f"at character {at}, {found[at : at + 10]!a} for {expected[at : at + 10]!a}"


def _mapping(found: Mapping[object, object], expected: Mapping[object, object], path: str) -> str | None:
    where = path or "the value"
    missing = [key for key in expected if key not in found]
    if missing:
        return f"{where} lacks the key {missing[0]!r} (expected {_shown(expected[missing[0]])})"
    extra = [key for key in found if key not in expected]
    if extra:
        return f"{where} has the key {extra[0]!r} ({_shown(found[extra[0]])}), which was not written"
    for key, value in expected.items():
        found_difference = difference(found[key], value, _at(path, f"[{key!r}]"))
        if found_difference is not None:
            return found_difference
    return None


def _sequence(found: Sequence[object], expected: Sequence[object], path: str) -> str | None:
    if len(found) != len(expected):
        return f"{path or 'the value'} has {len(found)} items, expected {len(expected)}"
    for index, (item, wanted) in enumerate(zip(found, expected, strict=True)):
        found_difference = difference(item, wanted, _at(path, f"[{index}]"))
        if found_difference is not None:
            return found_difference
    return None


def difference(found: object, expected: object, path: str = "") -> str | None:
    """Where `found` differs from `expected` in value or type, in words; `None` when they are the same.

    Types must match exactly at every depth (`bool` is not `int`, `float` is not
    `int`, a `Thread` is not a dict); floats compare by `repr`, so `-0.0` differs
    from `0.0`; dicts compare their keys as a set (order is free, as in JSON
    objects), then each value; lists and tuples item by item; dataclasses field by
    field. `path` prefixes the place named (`"metadata.custom['n']"`).

    >>> difference([1, True], [1, 1])
    '[1] read back as bool True, expected int 1'
    """
    if type(found) is not type(expected):
        return _read_back(path, found, expected)
    if isinstance(found, float):
        return None if repr(found) == repr(expected) else _read_back(path, found, expected)
    if dataclasses.is_dataclass(found) and not isinstance(found, type):
        for spec in dataclasses.fields(found):
            found_difference = difference(getattr(found, spec.name), getattr(expected, spec.name), _at(path, spec.name))
            if found_difference is not None:
                return found_difference
        return None
    if isinstance(found, Mapping) and isinstance(expected, Mapping):
        return _mapping(found, expected, path)
    if isinstance(found, (list, tuple)) and isinstance(expected, (list, tuple)):
        return _sequence(found, expected, path)
    if isinstance(found, str) and isinstance(expected, str) and found != expected:
        return f"{_read_back(path, found, expected)}; {_parting(found, expected)}"
    return None if found == expected else _read_back(path, found, expected)


def same(found: object, expected: object) -> bool:
    """True when `found` equals `expected` in value and in type, at every depth (see `difference`)."""
    return difference(found, expected) is None


def expect_same(found: object, expected: object, rules: str | tuple[str, ...], what: str) -> None:
    """Raise `RuleViolation(rules, ...)` naming the first place `found` differs from `expected`.

    `what` names the read (`"load_thread('t')"`); the message reads
    `load_thread('t'): metadata.custom['n'] read back as float 1.0, expected int 1`.
    """
    __tracebackhide__ = True
    found_difference = difference(found, expected)
    if found_difference is not None:
        raise RuleViolation(rules, f"{what}: {found_difference}")
