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

from conformance.kit._rules import RULES

__all__ = ["BrokenCall", "RuleViolation", "blamed_rules", "expect", "present"]

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


class BrokenCall(RuleViolation):
    """A store call that broke a promise every call of its method keeps, whatever the test.

    The boundary raises it (`load_thread` raising `NotFoundError` breaks THR-1, in a
    test of DEL-3 as anywhere): it blames its own `rules`, even those the failing test
    is not tagged with, and not the test's rules, whose behaviour the test never got to.
    """

    __module__ = "conformance"


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
    """The rules a test tagged with `tagged` breaks by failing with `error`: `tagged` order, then spec order.

    A `RuleViolation` blames its own rules that the test is tagged with (all the tags
    when it names none of them); a `BrokenCall` blames its own rules, tagged or not;
    an exception group blames the union of its members; any other failure (a plain
    `assert`, an unexpected error, a timeout) blames every tag.
    """
    found, calls = _named(error)
    outside = sorted(calls - set(tagged), key=_spec_order)
    if found is None:  # some failure names no rule: it blames every tag
        return (*tagged, *outside)
    named = [rule_id for rule_id in tagged if rule_id in found or rule_id in calls]
    return (*named, *outside) if named or outside else tagged


def _named(error: BaseException | None) -> tuple[set[str] | None, set[str]]:
    """The rules `error` names within the test's tags (None: every tag), and those its broken calls name."""
    if isinstance(error, BaseExceptionGroup):
        members = [_named(member) for member in error.exceptions]
        calls: set[str] = set().union(*(member_calls for _, member_calls in members))
        # A member that names no rule blames every tag: the group then names none either.
        if any(found is None for found, _ in members):
            return None, calls
        return set().union(*(found for found, _ in members if found is not None)), calls
    if isinstance(error, BrokenCall):
        return set(), set(error.rules)
    if isinstance(error, RuleViolation) and error.rules:
        return set(error.rules), set()
    return None, set()


def _spec_order(rule_id: str) -> int:
    order = list(RULES)
    return order.index(rule_id) if rule_id in order else len(order)
