"""Contract tests: concurrent writers (CON-1..3).

Every race is run as `conformance.kit._races` says: the store is warmed with
concurrent reads (so a connection pool holds a connection per writer), the writers
start on a barrier, and the race is repeated for `ROUNDS` rounds on the same store,
each on fresh thread ids; a failure names its round. The race helpers take several
store objects and spread the writers over them, for DUR-2.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import pytest

from conformance.contract._errors import ValidationError, VersionConflictError
from conformance.contract._models import Message, MessageRecord
from conformance.contract._queries import RunQuery
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._races import ROUNDS, WRITERS, race, round_name, warm
from conformance.kit._runner import rule
from conformance.kit._scenarios import log, run, thread, user
from conformance.kit._violation import BrokenCall, expect

__all__ = [
    "ConcurrencyRules",
    "check_appends_kept",
    "check_no_cycle",
    "check_one_winner",
    "committed_ids",
    "cycle_among",
    "delta",
    "race_appends",
    "race_checkpoint_appends",
    "race_parents",
    "winners",
]

Outcomes = dict[int, "int | VersionConflictError"]


def delta(writer: int) -> list[Message]:
    """The two messages writer number `writer` appends."""
    return [user(f"w{writer}-a"), user(f"w{writer}-b")]


def run_id(thread_id: str, writer: int) -> str:
    """The run writer number `writer` checkpoints on `thread_id` (run ids are global: each round has its own)."""
    return f"{thread_id}-r{writer}"


async def race_checkpoint_appends(
    stores: Sequence[ThreadRunStore], thread_id: str, expected_version: int | None
) -> Outcomes:
    """WRITERS concurrent `checkpoint_append` of `delta(i)` with run `run_id(thread_id, i)`, spread over `stores`.

    Warms `stores` first and starts the writers on a barrier. Returns each writer's
    new version, or the `VersionConflictError` it raised.
    """
    outcomes: Outcomes = {}

    async def writer(number: int) -> None:
        store = stores[number % len(stores)]
        try:
            outcomes[number] = await store.checkpoint_append(
                thread_id, delta(number), expected_version, run(run_id(thread_id, number), thread_id)
            )
        except VersionConflictError as error:
            outcomes[number] = error

    await warm(stores)
    await race([partial(writer, number) for number in range(WRITERS)])
    return dict(sorted(outcomes.items()))


async def race_appends(stores: Sequence[ThreadRunStore], thread_id: str) -> dict[int, list[MessageRecord]]:
    """WRITERS concurrent `append_message_records` of `delta(i)`, spread over `stores`; the records each got.

    Warms `stores` first and starts the writers on a barrier.
    """
    returned: dict[int, list[MessageRecord]] = {}

    async def writer(number: int) -> None:
        returned[number] = await stores[number % len(stores)].append_message_records(thread_id, delta(number))

    await warm(stores)
    await race([partial(writer, number) for number in range(WRITERS)])
    return returned


async def race_parents(stores: Sequence[ThreadRunStore], parents: dict[str, str]) -> dict[str, bool]:
    """Concurrent `save_thread_validated(thread(id, parent=...))` for each pair; True where it was saved.

    Warms `stores` first and starts the writers on a barrier. A refusal must be a
    `ValidationError`; any other exception fails the race.
    """
    saved: dict[str, bool] = {}

    async def writer(number: int, thread_id: str, parent: str) -> None:
        try:
            await stores[number % len(stores)].save_thread_validated(thread(thread_id, parent=parent))
        except ValidationError:
            saved[thread_id] = False
        else:
            saved[thread_id] = True

    await warm(stores, len(parents))
    await race([partial(writer, number, *pair) for number, pair in enumerate(parents.items())])
    return saved


async def cycle_among(store: ThreadRunStore, thread_ids: Sequence[str]) -> list[str] | None:
    """The first parent chain from `thread_ids` that comes back to a thread it passed, or None."""
    for start in thread_ids:
        chain = [start]
        current = await store.load_thread(start)
        while current is not None and current.parent_thread_id is not None:
            if current.parent_thread_id in chain:
                return [*chain, current.parent_thread_id]
            chain.append(current.parent_thread_id)
            current = await store.load_thread(current.parent_thread_id)
    return None


async def committed_ids(store: ThreadRunStore, thread_id: str) -> list[str | None]:
    """The ids of the committed log, `[]` when there is none."""
    return [m.id for m in await store.load_committed_messages(thread_id) or []]


def winners(outcomes: Outcomes) -> dict[int, int]:
    """The writers of a versioned race that got a version back."""
    return {number: version for number, version in outcomes.items() if isinstance(version, int)}


def _told(outcomes: Outcomes) -> str:
    """What the writers got, in words: `writer 0 got version 3; writers 1, 2 got VersionConflictError(1, 3)`."""
    by_result: dict[str, list[int]] = {}
    for number, outcome in outcomes.items():
        if isinstance(outcome, int):
            told = f"version {outcome}"
        else:
            told = f"VersionConflictError({outcome.expected}, {outcome.actual})"
        by_result.setdefault(told, []).append(number)
    return "; ".join(
        f"writer{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))} got {told}"
        for told, numbers in by_result.items()
    )


def check_one_winner(rule_id: str, number: int, outcomes: Outcomes, at: int, stores: int = 1) -> None:
    """Exactly one writer of round `number` got version `at + 2`; every other `VersionConflictError(at, at + 2)`."""
    __tracebackhide__ = True
    won = list(winners(outcomes).values())
    conflicts = [(o.expected, o.actual) for o in outcomes.values() if isinstance(o, VersionConflictError)]
    spread = f" through {stores} store objects" if stores > 1 else ""
    expect(
        won == [at + 2] and conflicts == [(at, at + 2)] * (WRITERS - 1),
        rule_id,
        f"{round_name(number)}: {WRITERS} writers appended two messages each at version {at}{spread} at once: "
        f"{_told(outcomes)}; expected one to get version {at + 2} and the others "
        f"VersionConflictError({at}, {at + 2})",
    )


def check_appends_kept(rule_id: str, number: int, thread_id: str, ids: Sequence[str | None]) -> None:
    """The log of round `number` holds `m0` and every writer's delta, each message once."""
    __tracebackhide__ = True
    expected = {"m0", *(m.id for writer in range(WRITERS) for m in delta(writer))}
    lost = sorted(expected - set(ids), key=str)
    twice = sorted({i for i in ids if ids.count(i) > 1}, key=str)
    expect(
        len(ids) == len(expected) and not lost and not twice,
        rule_id,
        f"{round_name(number)}: after {WRITERS} concurrent appends of two messages to m0, the log of {thread_id!r} "
        f"holds {len(ids)} messages, expected {len(expected)}; lost {lost}, twice {twice}",
    )


async def check_no_cycle(
    rule_id: str, number: int, reader: ThreadRunStore, saved: dict[str, bool], parents: dict[str, str]
) -> None:
    """After round `number` of `race_parents(parents)`, not every save went through and no cycle exists."""
    __tracebackhide__ = True
    cycle = await cycle_among(reader, list(parents))
    went = sorted(thread_id for thread_id, ok in saved.items() if ok)
    request = ", ".join(f"{child} under {parent}" for child, parent in parents.items())
    expect(
        cycle is None and len(went) < len(parents),
        rule_id,
        f"{round_name(number)}: save_thread_validated of {request}, all at once, saved {went}; "
        + (f"the parents now form the cycle {' -> '.join(cycle)}" if cycle else "every save went through"),
    )


class ConcurrencyRules:
    """CON-1..3: version checks, appends and hierarchy checks hold under concurrent writers, round after round."""

    @rule("CON-1")
    async def test_one_of_many_same_version_appends_wins(self, store: ThreadRunStore) -> None:
        """8 writers append at version 1 at once: one gets version 3, the other 7 a VersionConflictError; 32 rounds."""
        for number in range(ROUNDS):
            thread_id = f"t{number:02}"
            await log(store, thread_id, "m0")
            check_one_winner("CON-1", number, await race_checkpoint_appends([store], thread_id, 1), 1)

    @rule("CON-1")
    async def test_log_gains_only_the_winners_delta(self, store: ThreadRunStore) -> None:
        """After each round's race the log is the prior log plus exactly the winning writer's two messages."""
        for number in range(ROUNDS):
            thread_id = f"t{number:02}"
            await log(store, thread_id, "m0")
            outcomes = await race_checkpoint_appends([store], thread_id, 1)
            expected = ["m0", *(m.id for writer in winners(outcomes) for m in delta(writer))]
            found = await committed_ids(store, thread_id)
            expect(
                len(expected) == 3 and found == expected,
                "CON-1",
                f"{round_name(number)}: {_told(outcomes)}; the log is {found}, expected m0 and one writer's delta",
            )

    @rule("CON-1")
    async def test_losing_appends_store_no_run(self, store: ThreadRunStore) -> None:
        """Only each round's winner's run is stored; a writer that got a conflict changed nothing."""
        for number in range(ROUNDS):
            thread_id = f"t{number:02}"
            await log(store, thread_id, "m0")
            outcomes = await race_checkpoint_appends([store], thread_id, 1)
            page = await store.list_runs(RunQuery(thread_id=thread_id, limit=200))
            found = sorted(r.run_id for r in page.items)
            expected = sorted(run_id(thread_id, writer) for writer in winners(outcomes))
            expect(
                found == expected,
                "CON-1",
                f"{round_name(number)}: {_told(outcomes)}; the runs of {thread_id!r} are {found}, expected {expected}",
            )

    @rule("CON-2")
    async def test_concurrent_appends_keep_every_message_once(self, store: ThreadRunStore) -> None:
        """8 writers append two messages each at once: the log holds all 17 messages once, seqs 1..17; 32 rounds."""
        for number in range(ROUNDS):
            thread_id = f"t{number:02}"
            await log(store, thread_id, "m0")
            await race_appends([store], thread_id)
            check_appends_kept("CON-2", number, thread_id, await committed_ids(store, thread_id))
            seqs = [r.seq for r in await store.load_message_records(thread_id) or []]
            expect(
                seqs == list(range(1, 2 * WRITERS + 2)),
                "CON-2",
                f"{round_name(number)}: the records of {thread_id!r} have seqs {seqs}, expected 1..{2 * WRITERS + 1}",
            )

    @rule("CON-2")
    async def test_concurrent_appends_return_the_seqs_their_messages_hold(self, store: ThreadRunStore) -> None:
        """Each writer's returned records carry the seqs at which its messages are read back.

        What one append returns, alone, is MSG-4's business: a store that numbers a lone
        append wrongly breaks that rule, which this test then blames; CON-2 is not checked
        past it (there is no race to judge).
        """
        await log(store, "alone", "a0")
        with answering("MSG-4"):
            alone = await store.append_message_records("alone", [user("a1"), user("a2")])
        numbered = [(r.message_id, r.seq) for r in alone]
        if numbered != [("a1", 2), ("a2", 3)]:
            raise BrokenCall("MSG-4", f"a lone append of a1, a2 after a0 returned {numbered}, not a1 at 2, a2 at 3")
        for number in range(ROUNDS):
            thread_id = f"t{number:02}"
            await log(store, thread_id, "m0")
            returned = await race_appends([store], thread_id)
            held = {r.message_id: r.seq for r in await store.load_message_records(thread_id) or []}
            got = {r.message_id: r.seq for records in returned.values() for r in records}
            wrong = {message_id: seq for message_id, seq in got.items() if held.get(message_id) != seq}
            expect(
                got.keys() == held.keys() - {"m0"} and not wrong,
                "CON-2",
                f"{round_name(number)}: appends returned {wrong or got} (message: seq), "
                f"but the log of {thread_id!r} holds {held}",
            )

    @rule("CON-2")
    async def test_concurrent_unversioned_checkpoint_appends_keep_every_message(self, store: ThreadRunStore) -> None:
        """8 checkpoint_append calls without expected_version at once: every message once, versions 3, 5, ... 17."""
        for number in range(ROUNDS):
            thread_id = f"t{number:02}"
            await log(store, thread_id, "m0")
            outcomes = await race_checkpoint_appends([store], thread_id, None)
            versions = sorted(winners(outcomes).values())
            expect(
                versions == list(range(3, 2 * WRITERS + 2, 2)),
                "CON-2",
                f"{round_name(number)}: {_told(outcomes)}; expected versions 3, 5, ... {2 * WRITERS + 1}, one each",
            )
            check_appends_kept("CON-2", number, thread_id, await committed_ids(store, thread_id))

    @rule("CON-3")
    async def test_crossed_parents_at_once_make_no_cycle(self, store: ThreadRunStore) -> None:
        """A under B and B under A, requested at once: at most one is saved, and no cycle exists; 32 rounds."""
        for number in range(ROUNDS):
            a, b = f"a{number:02}", f"b{number:02}"
            await store.save_thread(thread(a))
            await store.save_thread(thread(b))
            parents = {a: b, b: a}
            await check_no_cycle("CON-3", number, store, await race_parents([store], parents), parents)

    @rule("CON-3")
    @pytest.mark.parametrize("size", [3, WRITERS])
    async def test_ring_of_parents_at_once_makes_no_cycle(self, store: ThreadRunStore, size: int) -> None:
        """Each of N root threads given the next as parent, all at once: some are refused, no cycle exists."""
        for number in range(ROUNDS):
            ring = [f"ring{number:02}-{position}" for position in range(size)]
            for thread_id in ring:
                await store.save_thread(thread(thread_id))
            parents = {ring[i]: ring[(i + 1) % size] for i in range(size)}
            await check_no_cycle("CON-3", number, store, await race_parents([store], parents), parents)
