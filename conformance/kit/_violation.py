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

__all__ = [
    "BrokenCall",
    "RuleViolation",
    "StoreLifecycleError",
    "blame_call",
    "blamed_rules",
    "expect",
    "present",
]

#: The attribute by which an error a store call raised records that call's rules (`blame_call`).
_CALL_RULES = "__conformance_call_rules__"

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

    def __init__(self, rules: str | tuple[str, ...], message: str, *, related: tuple[str, ...] = ()) -> None:
        # With related rules, which rule the failure breaks depends on the test: the message names none.
        super().__init__(() if related else rules, message)
        self.rules = (rules,) if isinstance(rules, str) else tuple(rules)
        #: Rules of the called method that, when the failing test is tagged with any of them,
        #: take the blame instead of `rules` (a `ValueError` from `save_thread` in a test of
        #: MOD-2 breaks MOD-2, elsewhere THR-2).
        self.related = related


class StoreLifecycleError(Exception):
    """Opening or closing the store (its factory, `__aenter__`, `aclose()`) failed or hung.

    No contract rule covers a store's lifecycle: the failure is reported on its own line
    and in the JSON report, makes the run partial, and is never blamed on a rule.
    """

    __module__ = "conformance"


def blame_call(error: BaseException, rules: tuple[str, ...]) -> None:
    """Record on `error`, raised by a store call, the rules that call answers to: if the error
    escapes the test, it blames those (of the test's tags) rather than every tag."""
    if rules and not isinstance(error, RuleViolation) and getattr(error, _CALL_RULES, None) is None:
        try:
            setattr(error, _CALL_RULES, rules)
        except AttributeError:  # an exception type with __slots__: the test's tags take the blame
            return


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
    when it names none of them); a `BrokenCall` blames its related rules the test is
    tagged with, else its own rules, tagged or not; an error a store call raised
    (`blame_call`) blames the rules that call answers to, of the tags; an exception
    group blames the union of its members; any other failure (a plain `assert`, an
    unexpected error) blames every tag.
    """
    found, calls = _named(error, frozenset(tagged))
    outside = sorted(calls - set(tagged), key=_spec_order)
    if found is None:  # some failure names no rule: it blames every tag
        return (*tagged, *outside)
    named = [rule_id for rule_id in tagged if rule_id in found or rule_id in calls]
    return (*named, *outside) if named or outside else tagged


def _named(error: BaseException | None, tagged: frozenset[str]) -> tuple[set[str] | None, set[str]]:
    """The rules `error` names within the test's tags (None: every tag), and those its broken calls name."""
    if isinstance(error, BaseExceptionGroup):
        members = [_named(member, tagged) for member in error.exceptions]
        calls: set[str] = set().union(*(member_calls for _, member_calls in members))
        # A member that names no rule blames every tag: the group then names none either.
        if any(found is None for found, _ in members):
            return None, calls
        return set().union(*(found for found, _ in members if found is not None)), calls
    if isinstance(error, BrokenCall):
        about = set(error.rules + error.related) & tagged if error.related else set()
        return (about, set()) if about else (set(), set(error.rules))
    if isinstance(error, RuleViolation) and error.rules:
        return set(error.rules), set()
    answered = set(getattr(error, _CALL_RULES, None) or ()) & tagged
    if answered:
        return answered, set()
    return None, set()


def _spec_order(rule_id: str) -> int:
    order = list(RULES)
    return order.index(rule_id) if rule_id in order else len(order)
