"""The linearizability search behind the concurrency machine, and the machine's sequential model.

Histories are written by hand: calls on a counter register (`inc` returns the new
value) and on the machine's `World`, with invocation and response stamps on one
counter, as the machine records them.
"""

from __future__ import annotations

from collections.abc import Hashable

from conformance.kit._linearizable import MAX_DEAD_ENDS, Call, linearize
from conformance.kit._machines.concurrency import ABSENT, Op, Planned, World, blame, blame_alone, one_at_a_time, step


def counter(value: int, op: str) -> tuple[Hashable, int]:
    """A register: `inc` adds one and returns the new value, `read` returns it."""
    return (value + 1, value + 1) if op == "inc" else (value, value)


def test_overlapping_calls_may_take_either_order() -> None:
    """Two increments that overlap in time may be ordered by their results, not by who started first."""
    calls = [Call("inc", 1, 4, 2), Call("inc", 2, 3, 1)]
    assert linearize(calls, 0, counter).order == (1, 0)


def test_a_call_that_returned_first_comes_first() -> None:
    """An increment that returned 2 before the other one started cannot be explained: no order fits real time."""
    calls = [Call("inc", 1, 2, 2), Call("inc", 3, 4, 1)]
    verdict = linearize(calls, 0, counter)
    assert verdict.order is None
    assert [(d.explained, d.stuck) for d in verdict.dead_ends] == [((), (0,))]


def test_dead_ends_are_the_deepest_attempts() -> None:
    """Three overlapping increments all returning 1: every order explains one, then is stuck on the other two."""
    calls = [Call("inc", 1, 4, 1), Call("inc", 2, 5, 1), Call("inc", 3, 6, 1)]
    verdict = linearize(calls, 0, counter)
    assert verdict.order is None
    assert sorted((d.explained, d.stuck) for d in verdict.dead_ends) == [
        ((0,), (1, 2)),
        ((1,), (0, 2)),
        ((2,), (0, 1)),
    ]


def test_the_end_state_must_be_accepted() -> None:
    """Results that fit an order still fail when the state they leave is not what was read afterwards."""
    calls = [Call("inc", 1, 2, 1)]
    assert linearize(calls, 0, counter, accept=lambda value: value == 1).order == (0,)
    verdict = linearize(calls, 0, counter, accept=lambda value: value == 5)
    assert verdict.order is None
    assert [(d.explained, d.state, d.stuck) for d in verdict.dead_ends] == [((0,), 1, ())]


def test_many_dead_ends_are_capped() -> None:
    """A long history nobody can explain keeps at most MAX_DEAD_ENDS of its deepest attempts."""
    calls = [Call("inc", n, 20 + n, 1) for n in range(MAX_DEAD_ENDS + 2)]
    verdict = linearize(calls, 0, counter)
    assert verdict.order is None
    assert len(verdict.dead_ends) == MAX_DEAD_ENDS


def _planned(op: Op, *ids: str, version: int | None = None) -> Planned:
    return Planned(1, op, ids, version)


def test_model_checks_the_version_before_the_delta() -> None:
    """CKP-3: a stale version with a committed id is a conflict; the right version with one is refused (MSG-5)."""
    world = World().appended("t1", ["m1"])
    stale = _planned(Op("checkpoint_append", "t1"), "m1", version=0)
    assert step(world, stale) == (("conflict", 0, 1), world)
    right = _planned(Op("checkpoint_append", "t1"), "m1", version=1)
    assert step(world, right) == (("refused",), world)
    fresh = _planned(Op("checkpoint_append", "t1"), "m2", "m3", version=1)
    assert step(world, fresh) == (("version", 3), world.appended("t1", ["m2", "m3"]))


def test_model_numbers_appended_records_after_the_log() -> None:
    """MSG-4: an append to a log of one returns records at seqs 2 and 3; a read of an empty log is None (MSG-1)."""
    world = World().appended("t2", ["m1"])
    result, after = step(world, _planned(Op("append_message_records", "t2"), "m2", "m3"))
    assert result == ("records", (("m2", 2), ("m3", 3)))
    assert step(after, _planned(Op("read", "t2")))[0] == ("log", ("m1", "m2", "m3"))
    assert step(after, _planned(Op("read", "t1")))[0] == ("log", None)


def test_model_refuses_the_parents_hie_refuses() -> None:
    """HIE-2..4: the thread itself, a missing thread, or a parent whose ancestors reach the thread is refused."""
    world = World().adopted("a", "b")
    for parent in ("c", "b", "a", "x"):
        result, after = step(world, _planned(Op("save_thread_validated", "b", parent=parent)))
        refused = parent in ("a", "b", "x")
        assert result == (("refused",) if refused else ("saved",)), parent
        assert after == (world if refused else world.adopted("b", parent))
    assert world.parent("x") == ABSENT


def test_a_race_is_blamed_on_the_rules_of_the_calls_that_could_not_follow() -> None:
    """Two overlapping appends at version 0 that both won: CON-1, the rule of versioned appends."""
    first = Planned(1, Op("checkpoint_append", "t1", "p", version=0), ("p",), 0)
    second = Planned(2, Op("checkpoint_append", "t1", "q", version=0), ("q",), 0)
    history = [Call(first, 1, 3, ("version", 1)), Call(second, 2, 4, ("version", 1))]
    observed = World().appended("t1", ["p", "q"])
    verdict = linearize(history, World(), step, accept=observed.__eq__)
    assert verdict.order is None
    assert not one_at_a_time(history)
    assert blame(history, verdict, observed) == ("CON-1",)


def test_calls_one_at_a_time_are_blamed_on_what_each_does_alone() -> None:
    """An append that returned before the next started, numbered from 1 after a committed message: MSG-4, no race."""
    world = World().appended("t1", ["m1"])
    append = Planned(1, Op("append_message_records", "t1", "p"), ("p",))
    read = Planned(2, Op("read", "t1"))
    history = [Call(append, 1, 2, ("records", (("p", 1),))), Call(read, 3, 4, ("log", ("m1", "p")))]
    verdict = linearize(history, world, step)
    assert verdict.order is None
    assert one_at_a_time(history)
    assert blame_alone(history, verdict) == ("MSG-4",)
