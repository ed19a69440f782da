"""How the kit races store calls: warm the store, start every racer at once, repeat the race.

A race run once proves little. A store whose check-then-write window opens in one
race of five passes a single race four times in five; a store behind a cold
connection pool finishes its first caller's whole transaction while the others are
still connecting, so its racers never overlap. So every race of the kit

- warms the store first (`warm`): as many concurrent reads as there will be racers,
  on each store object, so that a pool holds a connection for every racer;
- starts the racers on a barrier (`race`): each waits on one anyio `Event`, set by
  the last racer to get ready, so none starts its call before all can (no sleeps);
- runs `ROUNDS` rounds on the same store, each on fresh ids, so that a window that
  opens in one round of five stays shut in all of them with chance
  `0.8 ** ROUNDS` (below 0.001).

    for number in range(ROUNDS):
        await warm([store], WRITERS)
        await race([partial(writer, number, w) for w in range(WRITERS)])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

import anyio

from conformance.contract._stores import ThreadRunStore

__all__ = ["ROUNDS", "WRITERS", "miss_chance", "race", "round_name", "warm"]

#: Rounds of each race, on the same store: 0.8 ** 32 < 0.001 (see `miss_chance`).
ROUNDS = 32
#: Writers in each round: few, so that 32 rounds of every race stay fast (CON-1..3, DUR-2).
WRITERS = 8
#: The id `warm` reads: no test writes it.
WARM_UP_ID = "warm-up"


def miss_chance(opens: float, rounds: int = ROUNDS) -> float:
    """The chance that a race window opening in a fraction `opens` of the rounds stays shut in all `rounds`.

    >>> round(miss_chance(0.2), 5)
    0.00079
    """
    return (1.0 - opens) ** rounds


def round_name(number: int) -> str:
    """`round 3 of 32` for the 0-based round `number`, as failures name it."""
    return f"round {number + 1} of {ROUNDS}"


async def race(racers: Sequence[Callable[[], Awaitable[object]]]) -> None:
    """Run every racer in its own task; each calls its store only once all are ready.

    Every task starts, counts itself ready and waits on one `anyio.Event`, which the
    last one to get ready sets: no racer's call starts while another racer's task is
    still being started. Returns when every racer has returned; a racer that raises
    cancels the others and the error propagates (as from a task group).
    """
    go = anyio.Event()
    waiting = len(racers)

    async def start(racer: Callable[[], Awaitable[object]]) -> None:
        nonlocal waiting
        waiting -= 1
        if not waiting:
            go.set()
        await go.wait()
        await racer()

    async with anyio.create_task_group() as group:
        for racer in racers:
            group.start_soon(start, racer)


async def warm(stores: Sequence[ThreadRunStore], readers: int = WRITERS) -> None:
    """`readers` concurrent reads on each store object, started at once, so its pool holds that many connections.

    A store with a connection pool opens connections on demand: without this the
    first racer may finish before the others have connected, and the race never
    happens. The reads (`load_thread` of an id no test writes) change nothing.
    """
    await race([partial(store.load_thread, WARM_UP_ID) for store in stores for _ in range(readers)])
