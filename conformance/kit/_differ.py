"""How a value a store gave back differs from the one due, field by field, in words.

A failed `assert found == expected` on two runs shows two long reprs; `diff` names
what differs instead, grouped by the record it belongs to:

    >>> diff(replace(run("r1", "t"), updated_at=5), run("r1", "t", updated_at=7))
    "run 'r1': updated_at is 5, expected 7"

Lists of records are matched by id (a run by `run_id`, a message record by its
message's id), so a missing, extra or reordered record is named as such rather than
as every field of every later item. Values compare as `_exact` compares them: by
type at every depth and floats by `repr`, so `1.0` for `1` and `True` for `1` are
named too. The check stays the caller's: `diff` only words it.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence

from conformance.contract._models import Message, MessageRecord, Thread, ToolCall
from conformance.contract._runs import RunRecord
from conformance.kit._exact import same
from conformance.kit._scenarios import Snapshot

__all__ = ["diff", "diff_fields", "named", "shown"]

#: At most this many differences are named; the rest are counted.
_SHOWN = 6

#: What a snapshot's fields hold, as a failure names one entry (`run 'r1'`, `log of 't'`).
_SNAPSHOT_PARTS = {
    "threads": "thread {!r}",
    "logs": "log of {!r}",
    "states": "state of {!r}",
    "runs": "run {!r}",
    "latest": "latest run of {!r}",
}


def shown(value: object) -> str:
    """`value` as a failure shows it: a repr cut at 60 characters, an enum by its value (`'done'`)."""
    text = repr(value.value) if isinstance(value, enum.Enum) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed(value: object) -> str:
    """`value` with its type (`float 1.0`), unless its repr names the type already (a model's)."""
    text = shown(value)
    name = type(value).__name__
    return text if value is None or text.startswith(name) else f"{name} {text}"


def _label(value: object) -> str | None:
    """The record `value` is, in words (`run 'r1'`), or None for a value that has no id."""
    if isinstance(value, RunRecord):
        return f"run {value.run_id!r}"
    if isinstance(value, Thread):
        return f"thread {value.id!r}"
    if isinstance(value, MessageRecord):
        return f"record {value.message_id!r}"
    if isinstance(value, Message) and value.id is not None:
        return f"message {value.id!r}"
    if isinstance(value, ToolCall):
        return f"tool call {value.id!r}"
    return None


def named(value: object) -> str:
    """A record by its label (`run 'r1'`), any other value by its type and repr (`int 5`)."""
    return _label(value) or _typed(value)


def _at(path: str, step: str) -> str:
    if step.startswith("["):
        return path + step
    return f"{path}.{step}" if path else step


def _is(path: str, found: object, expected: object) -> str:
    """`path is 5, expected 7`; without a path, `is 5, expected 7` for the caller to name."""
    typed = type(found) is not type(expected) and found is not None and expected is not None
    shown_found, shown_expected = (_typed(found), _typed(expected)) if typed else (shown(found), shown(expected))
    return f"{path + ' ' if path else ''}is {shown_found}, expected {shown_expected}"


def _within(owner: str, found: object, expected: object) -> list[str]:
    """The differences inside one record, prefixed with the record's label (`run 'r1': status is ...`)."""
    inner = _walk(found, expected, "")
    if not inner:
        return []
    first = f"{owner} {inner[0]}" if inner[0].startswith("is ") else f"{owner}: {inner[0]}"
    return [first, *inner[1:]]


def _mapping(found: Mapping[object, object], expected: Mapping[object, object], path: str) -> list[str]:
    where = path or "the value"
    found_keys = [key for key in found if key not in expected]
    lost_keys = [key for key in expected if key not in found]
    out = [f"{where} lacks the key {key!r} (expected {shown(expected[key])})" for key in lost_keys]
    out += [f"{where} has the key {key!r} ({shown(found[key])}), not expected" for key in found_keys]
    for key, value in expected.items():
        if key in found:
            out += _walk(found[key], value, _at(path, f"[{key!r}]"))
    return out


def _ids(items: Sequence[object]) -> str:
    return "[" + ", ".join(_label(item) or shown(item) for item in items) + "]"


def _records(found: Sequence[object], expected: Sequence[object], path: str) -> list[str]:
    """Two lists of records, matched by label: which are missing, extra or moved, then each one's fields."""
    labels = [_label(item) or "" for item in found]
    wanted = [_label(item) or "" for item in expected]
    out = [] if labels == wanted else [f"{path or 'the list'} holds {_ids(found)}, expected {_ids(expected)}"]
    by_label = dict(zip(labels, found, strict=True))
    for label, item in zip(wanted, expected, strict=True):
        if label in by_label:
            out += _within(label, by_label[label], item)
    return out


def _sequence(found: Sequence[object], expected: Sequence[object], path: str) -> list[str]:
    if all(_label(item) is not None for item in [*found, *expected]):
        return _records(found, expected, path)
    if len(found) != len(expected):
        where = path or "the list"
        return [f"{where} is {shown(list(found))} ({len(found)} items), expected {shown(list(expected))}"]
    out: list[str] = []
    for index, (item, due) in enumerate(zip(found, expected, strict=True)):
        out += _walk(item, due, _at(path, f"[{index}]"))
    return out


def _brief(entry: object, verb: str) -> str:
    """A snapshot entry in a few words after its label: a log by its message ids, a record by nothing more."""
    if _label(entry) is not None:
        return ""
    return f" ({verb} {_ids(entry) if isinstance(entry, list) else shown(entry)})"


def _snapshot(found: Snapshot, expected: Snapshot) -> list[str]:
    out: list[str] = []
    for part, label in _SNAPSHOT_PARTS.items():
        now: dict[str, object] = getattr(found, part)
        was: dict[str, object] = getattr(expected, part)
        out += [f"{label.format(key)} is new{_brief(now[key], 'holding')}" for key in now if key not in was]
        out += [f"{label.format(key)} is gone{_brief(was[key], 'was')}" for key in was if key not in now]
        for key, value in was.items():
            if key in now and not same(now[key], value):
                out += _within(label.format(key), now[key], value)
    return out


def _walk(found: object, expected: object, path: str) -> list[str]:
    if same(found, expected):
        return []
    if isinstance(found, Snapshot) and isinstance(expected, Snapshot):
        return _snapshot(found, expected)
    if type(found) is not type(expected):
        return [_is(path, found, expected)]
    if dataclasses.is_dataclass(found) and not isinstance(found, type):
        out: list[str] = []
        for spec in dataclasses.fields(found):
            out += _walk(getattr(found, spec.name), getattr(expected, spec.name), _at(path, spec.name))
        return out
    if isinstance(found, Mapping) and isinstance(expected, Mapping):
        return _mapping(found, expected, path)
    if isinstance(found, (list, tuple)) and isinstance(expected, (list, tuple)):
        return _sequence(found, expected, path)
    return [_is(path, found, expected)]


def diff(found: object, expected: object) -> str:
    """Where `found` differs from `expected`, in words: each differing field with both values.

    Records are named by id (`run 'r1': status is 'done', expected 'running';
    updated_at is 5, expected 7`), nested fields by path (`metadata.custom['n']`),
    and a value of the wrong type with both types (`int 1` for `float 1.0`). Two
    snapshots name each thread, log, state or run that is new, gone or changed.
    At most six differences are named, then how many more there are. Gives
    "no difference" for values that are the same in value and type.

    >>> diff([run("r1", "t")], [])
    "the list holds [run 'r1'], expected []"
    >>> diff(None, run("r1", "t"))
    "got None, expected run 'r1'"
    """
    if type(found) is not type(expected) or _label(found) != _label(expected):
        return f"got {named(found)}, expected {named(expected)}"
    label = _label(expected)
    lines = _within(label, found, expected) if label else _walk(found, expected, "")
    if not lines:
        return "no difference"
    if lines[0].startswith("is "):  # two plain values: `got 5, expected 7`
        lines[0] = "got " + lines[0].removeprefix("is ")
    more = f"; and {len(lines) - _SHOWN} more" if len(lines) > _SHOWN else ""
    return "; ".join(lines[:_SHOWN]) + more


def diff_fields(names: Sequence[str], found: Sequence[object], expected: Sequence[object]) -> str:
    """How two tuples of the fields `names` differ, each field by its name, as `diff` words them.

    >>> diff_fields(("active_run_id", "open_run_id"), ("r1", "r1"), (None, "r1"))
    "active_run_id is 'r1', expected None"
    """
    if len(found) != len(expected):
        return f"got {shown(found)}, expected {shown(expected)}"
    lines = [line for name, item, due in zip(names, found, expected, strict=False) for line in _walk(item, due, name)]
    return "; ".join(lines) or "no difference"
