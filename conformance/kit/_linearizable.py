"""Linearizability: are the results of concurrent calls those of some one-at-a-time order?

A history is a list of calls, each with the values of one counter at its invocation
and at its response (the counter is incremented at every start and every end: it
orders events, it measures no time) and the result it got. The history is
linearizable against a sequential model when some order of all its calls

- keeps real time: a call that returned before another was invoked comes first, and
- explains every result: applying the calls to the model in that order, from the
  state before them, gives each call the result it got,

and, when asked, ends in an accepted state (what the store shows once they all
returned). `linearize` searches as Wing and Gong did, with Lowe's memo: depth first,
trying next only the calls that no pending call precedes in real time, and never
exploring a (calls done, model state) pair twice. Histories of a handful of calls
are searched in microseconds.

    verdict = linearize(calls, initial, step)
    for dead_end in verdict.dead_ends:  # none when an order was found
        print(dead_end.explained, dead_end.stuck)  # the calls explained, and those that could not follow
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["MAX_DEAD_ENDS", "Call", "DeadEnd", "Verdict", "linearize"]

_Op = TypeVar("_Op")
_State = TypeVar("_State", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Call(Generic[_Op]):
    """One call of a history: what was asked (`op`), when (`invoked`, `returned`: counter values), what came back."""

    op: _Op
    invoked: int
    returned: int
    result: Hashable


@dataclass(frozen=True, slots=True)
class DeadEnd(Generic[_State]):
    """Where one attempt got stuck: the calls it explained (indices, in order), the state after them, and the
    calls that may come next there, none of which the model gives the result it got (empty when every call was
    explained but the end state was not accepted)."""

    explained: tuple[int, ...]
    state: _State
    stuck: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Verdict(Generic[_State]):
    """What `linearize` found: an order of the calls (their indices), or where the deepest attempts got stuck.

    When `order` is None, `dead_ends` lists every attempt that explained the most
    calls before it got stuck (at most `MAX_DEAD_ENDS`): which call broke the history
    depends on the order, and each of these orders is as good as the others.
    """

    order: tuple[int, ...] | None
    dead_ends: tuple[DeadEnd[_State], ...] = ()


#: The most dead ends a `Verdict` keeps.
MAX_DEAD_ENDS = 8


def linearize(
    calls: Sequence[Call[_Op]],
    initial: _State,
    step: Callable[[_State, _Op], tuple[Hashable, _State]],
    accept: Callable[[_State], bool] = lambda state: True,
) -> Verdict[_State]:
    """Find an order of `calls` that keeps real time and that `step` explains from `initial`, ending in `accept`.

    `step(state, op)` is the sequential model: the result `op` gets in `state` and
    the state after it. Returns a `Verdict` whose `order` lists the calls' indices,
    or is None when no order explains the history (then the verdict says where the
    deepest attempts got stuck).

    >>> calls = [Call("inc", 1, 4, 1), Call("inc", 2, 3, 2)]
    >>> linearize(calls, 0, lambda n, op: (n + 1, n + 1)).order
    (1, 0)
    """
    everything = (1 << len(calls)) - 1
    seen: set[tuple[int, _State]] = set()
    path: list[int] = []
    deepest: list[DeadEnd[_State]] = []

    def search(done: int, state: _State) -> bool:
        stuck: list[int] = []
        if done == everything:
            if accept(state):
                return True
        else:
            if (done, state) in seen:
                return False
            seen.add((done, state))
            pending = [i for i in range(len(calls)) if not done >> i & 1]
            horizon = min(calls[i].returned for i in pending)
            for i in pending:
                if calls[i].invoked > horizon:
                    continue  # a pending call returned before this one was invoked: that call comes first
                result, after = step(state, calls[i].op)
                if result != calls[i].result:
                    stuck.append(i)
                    continue
                path.append(i)
                if search(done | 1 << i, after):
                    return True
                path.pop()
        if stuck or done == everything:
            if deepest and len(path) > len(deepest[0].explained):
                deepest.clear()
            if (not deepest or len(path) == len(deepest[0].explained)) and len(deepest) < MAX_DEAD_ENDS:
                deepest.append(DeadEnd(tuple(path), state, tuple(stuck)))
        return False

    if search(0, initial):
        return Verdict(order=tuple(path))
    return Verdict(order=None, dead_ends=tuple(deepest))
