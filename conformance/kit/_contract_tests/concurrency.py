"""Contract tests: concurrent writers (CON-1..3).

Every race starts all its writers in one anyio task group before any of them runs,
so each writer's first scheduling point lets all the others in: a store that reads,
awaits, then writes is caught on every run, not by luck. The race helpers take
several store objects and spread the writers over them, for DUR-2.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from conformance.contract._errors import ValidationError, VersionConflictError
from conformance.contract._models import Message, MessageRecord
from conformance.contract._queries import RunQuery
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._runner import rule
from conformance.kit._scenarios import log, run, thread, user
from conformance.kit._violation import BrokenCall

#: How many writers race at once.
WRITERS = 50


def delta(writer: int) -> list[Message]:
    """The two messages writer number `writer` appends."""
    return [user(f"w{writer:02}-a"), user(f"w{writer:02}-b")]


async def race_checkpoint_appends(
    stores: Sequence[ThreadRunStore], thread_id: str, expected_version: int | None
) -> dict[int, int | VersionConflictError]:
    """WRITERS concurrent `checkpoint_append` of `delta(i)` with run `r<i>`, spread over `stores`.

    Returns each writer's new version, or the `VersionConflictError` it raised.
    """
    outcomes: dict[int, int | VersionConflictError] = {}

    async def writer(number: int) -> None:
        store = stores[number % len(stores)]
        try:
            outcomes[number] = await store.checkpoint_append(
                thread_id, delta(number), expected_version, run(f"r{number:02}", thread_id)
            )
        except VersionConflictError as error:
            outcomes[number] = error

    async with anyio.create_task_group() as group:
        for number in range(WRITERS):
            group.start_soon(writer, number)
    return outcomes


async def race_appends(stores: Sequence[ThreadRunStore], thread_id: str) -> dict[int, list[MessageRecord]]:
    """WRITERS concurrent `append_message_records` of `delta(i)`, spread over `stores`; the records each got."""
    returned: dict[int, list[MessageRecord]] = {}

    async def writer(number: int) -> None:
        returned[number] = await stores[number % len(stores)].append_message_records(thread_id, delta(number))

    async with anyio.create_task_group() as group:
        for number in range(WRITERS):
            group.start_soon(writer, number)
    return returned


async def race_parents(stores: Sequence[ThreadRunStore], parents: dict[str, str]) -> dict[str, bool]:
    """Concurrent `save_thread_validated(thread(id, parent=...))` for each pair; True where it was saved.

    A refusal must be a `ValidationError`; any other exception fails the race.
    """
    saved: dict[str, bool] = {}

    async def writer(number: int, thread_id: str, parent: str) -> None:
        try:
            await stores[number % len(stores)].save_thread_validated(thread(thread_id, parent=parent))
        except ValidationError:
            saved[thread_id] = False
        else:
            saved[thread_id] = True

    async with anyio.create_task_group() as group:
        for number, (thread_id, parent) in enumerate(parents.items()):
            group.start_soon(writer, number, thread_id, parent)
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


def winners(outcomes: dict[int, int | VersionConflictError]) -> dict[int, int]:
    """The writers of a versioned race that got a version back."""
    return {number: version for number, version in outcomes.items() if isinstance(version, int)}


class ConcurrencyRules:
    """CON-1..3: version checks, appends and hierarchy checks hold under WRITERS concurrent writers."""

    @rule("CON-1")
    async def test_one_of_many_same_version_appends_wins(self, store: ThreadRunStore) -> None:
        """50 writers append at version 1 at once: one gets version 3, the other 49 a VersionConflictError."""
        await log(store, "t", "m0")
        outcomes = await race_checkpoint_appends([store], "t", 1)
        assert list(winners(outcomes).values()) == [3]
        conflicts = [(o.expected, o.actual) for o in outcomes.values() if isinstance(o, VersionConflictError)]
        assert conflicts == [(1, 3)] * (WRITERS - 1)

    @rule("CON-1")
    async def test_log_gains_only_the_winners_delta(self, store: ThreadRunStore) -> None:
        """After the race the log is the prior log plus exactly the winning writer's two messages."""
        await log(store, "t", "m0")
        outcomes = await race_checkpoint_appends([store], "t", 1)
        expected = ["m0", *(m.id for number in winners(outcomes) for m in delta(number))]
        assert len(expected) == 3
        assert await committed_ids(store, "t") == expected

    @rule("CON-1")
    async def test_losing_appends_store_no_run(self, store: ThreadRunStore) -> None:
        """Only the winner's run is stored; a writer that got a conflict changed nothing."""
        await log(store, "t", "m0")
        outcomes = await race_checkpoint_appends([store], "t", 1)
        page = await store.list_runs(RunQuery(thread_id="t", limit=200))
        assert [r.run_id for r in page.items] == [f"r{number:02}" for number in winners(outcomes)]

    @rule("CON-2")
    async def test_concurrent_appends_keep_every_message_once(self, store: ThreadRunStore) -> None:
        """50 writers append two messages each at once: the log holds all 101 messages once, seqs 1..101."""
        await log(store, "t", "m0")
        await race_appends([store], "t")
        expected = {"m0", *(m.id for number in range(WRITERS) for m in delta(number))}
        ids = await committed_ids(store, "t")
        assert sorted(ids, key=str) == sorted(expected, key=str)
        records = await store.load_message_records("t") or []
        assert [r.seq for r in records] == list(range(1, 2 * WRITERS + 2))

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
        await log(store, "t", "m0")
        returned = await race_appends([store], "t")
        records = await store.load_message_records("t") or []
        held = {r.message_id: r.seq for r in records}
        assert {r.message_id: r.seq for got in returned.values() for r in got} == {
            message_id: seq for message_id, seq in held.items() if message_id != "m0"
        }

    @rule("CON-2")
    async def test_concurrent_unversioned_checkpoint_appends_keep_every_message(self, store: ThreadRunStore) -> None:
        """50 checkpoint_append calls without expected_version at once: every message once, versions 3, 5, ... 101."""
        await log(store, "t", "m0")
        outcomes = await race_checkpoint_appends([store], "t", None)
        assert sorted(winners(outcomes).values()) == list(range(3, 2 * WRITERS + 2, 2))
        expected = {"m0", *(m.id for number in range(WRITERS) for m in delta(number))}
        ids = await committed_ids(store, "t")
        assert len(ids) == len(expected)
        assert set(ids) == expected

    @rule("CON-3")
    async def test_crossed_parents_at_once_make_no_cycle(self, store: ThreadRunStore) -> None:
        """A under B and B under A, requested at once: at most one is saved, and no cycle exists."""
        await store.save_thread(thread("a"))
        await store.save_thread(thread("b"))
        saved = await race_parents([store], {"a": "b", "b": "a"})
        assert sum(saved.values()) <= 1
        assert await cycle_among(store, ["a", "b"]) is None

    @rule("CON-3")
    @pytest.mark.parametrize("size", [3, WRITERS])
    async def test_ring_of_parents_at_once_makes_no_cycle(self, store: ThreadRunStore, size: int) -> None:
        """Each of N root threads given the next as parent, all at once: some are refused, no cycle exists."""
        ring = [f"t{number:02}" for number in range(size)]
        for thread_id in ring:
            await store.save_thread(thread(thread_id))
        saved = await race_parents([store], {ring[i]: ring[(i + 1) % size] for i in range(size)})
        assert not all(saved.values())
        assert await cycle_among(store, ring) is None
