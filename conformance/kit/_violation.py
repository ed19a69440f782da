"""A failure that carries the rules it breaks as data, and how a failure's blame is read.

A contract test's plain `assert` breaks the rules the test is tagged with. A test that
checks several rules (a state machine, say) raises `RuleViolation` naming the rules
one check breaks; the report blames those, never a parse of the message. Hypothesis
may find several distinct failures at once and raise them as an `ExceptionGroup`:
the blame is the union of its members'.

    raise RuleViolation("DEL-3", f"detached child {child!r} keeps its parent")
    expect(found == wanted, "THR-2", f"load_thread gives {found!r}, expected {wanted!r}")
    stamp = present(found.metadata.updated_at, "DEL-3", "detached child has no updated_at")
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["RuleViolation", "blamed_rules", "expect", "present"]

_T = TypeVar("_T")


class RuleViolation(AssertionError):
    """A contract check that failed, with the IDs of the rules it breaks in `rules`.

    `rules` may be empty: the failure then breaks the rules its test is tagged with
    (a store call that returned the wrong type, say). The message reads
    `DEL-3: detached child 'c' keeps its parent`.
    """

    __module__ = "conformance"  # its public home: failures read `conformance.RuleViolation: DEL-3: ...`

    def __init__(self, rules: str | tuple[str, ...], message: str) -> None:
        self.rules: tuple[str, ...] = (rules,) if isinstance(rules, str) else tuple(rules)
        self.detail = message
        prefix = ", ".join(self.rules)
        super().__init__(f"{prefix}: {message}" if prefix else message)


def expect(condition: object, rules: str | tuple[str, ...], message: str) -> None:
    """Raise `RuleViolation(rules, message)` unless `condition` holds."""
    __tracebackhide__ = True
    if not condition:
        raise RuleViolation(rules, message)


def present(value: _T | None, rules: str | tuple[str, ...], message: str) -> _T:
    """`value`, unless it is None: then raise `RuleViolation(rules, message)`."""
    __tracebackhide__ = True
    if value is None:
        raise RuleViolation(rules, message)
    return value


def blamed_rules(tagged: tuple[str, ...], error: BaseException | None) -> tuple[str, ...]:
    """The rules a test tagged with `tagged` breaks by failing with `error`, in `tagged` order.

    A `RuleViolation` blames its own rules that the test is tagged with (all the tags
    when it names none of them); an exception group blames the union of its members;
    any other failure (a plain `assert`, an unexpected error, a timeout) blames every tag.
    """
    found = _named(error)
    named = [rule_id for rule_id in tagged if rule_id in found]
    return tuple(named) or tagged


def _named(error: BaseException | None) -> set[str]:
    if isinstance(error, BaseExceptionGroup):
        members = [_named(member) for member in error.exceptions]
        # A member that names no rule blames every tag: the group then names none either.
        return set().union(*members) if all(members) else set()
    if isinstance(error, RuleViolation):
        return set(error.rules)
    return set()
