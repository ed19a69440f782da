"""Contract tests: durability across reopen and store objects (DUR-1..2).

`reopen()` opens another store object on the test's location; leaving its
`async with` block closes it. The store objects are used one at a time, except in
the races of DUR-2, where the CON-1..3 writers are spread over two objects.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from conformance.contract._enums import ChildThreadDeleteStrategy, RunStatus
from conformance.contract._errors import StorageError
from conformance.contract._models import Thread, ThreadMetadata
from conformance.contract._queries import MessageQuery, RunQuery, ThreadParentFilter, ThreadQuery
from conformance.contract._runs import PersistedState
from conformance.contract._stores import ThreadRunStore
from conformance.kit._contract_tests.concurrency import (
    check_appends_kept,
    check_no_cycle,
    check_one_winner,
    committed_ids,
    delta,
    race_appends,
    race_checkpoint_appends,
    race_parents,
    winners,
)
from conformance.kit._contract_tests.fidelity import MESSAGES, RUNS, STATES, THREADS
from conformance.kit._exact import expect_same
from conformance.kit._races import ROUNDS, round_name
from conformance.kit._runner import Reopen, rule
from conformance.kit._scenarios import assistant, log, run, snapshot, system, thread, tool, tree, user
from conformance.kit._violation import BrokenCall, expect

#: Ids that own a log or a state without a thread record, or lost theirs.
UNLISTED = ("loose", "gone", "cascaded", "under-cascaded", "exact")


async def _write_everything(store: ThreadRunStore) -> None:
    """Threads in a hierarchy, logs of every message kind, states, runs with a latest-run tie, checkpoints."""
    await store.save_thread(
        Thread(
            id="root",
            resource_id="res",
            metadata=ThreadMetadata(created_at=1, updated_at=2, title="Root", custom={"n": 1.5, "l": [True, None]}),
        )
    )
    await tree(store, {"child": {"grandchild": {}}}, parent="root")
    await store.save_thread_validated(thread("validated", parent="child", updated_at=4))
    await store.update_thread_metadata("grandchild", ThreadMetadata(updated_at=3, title="renamed"))
    await log(store, "root", user("m1"), assistant("m2", calls=["c1", "c2"]), tool("m3", "c1"))
    await log(store, "root", tool("m4", "c2", internal=True), system("m5", summary_of=(1, 2)), user("m6", run_id="r-a"))
    await store.save_messages("loose", [user("l1"), user("l2")])
    await store.save_thread_state("root", PersistedState(revision=4, extensions={"plan": ["a", {"b": None}]}))
    await store.save_thread_state("loose", PersistedState(revision=1))
    await store.create_run(run("r-b", "root", RunStatus.WAITING, updated_at=5))
    await store.create_run(run("r-a", "root", RunStatus.DONE, updated_at=5))
    await store.checkpoint("child", [user("k1"), user("k2")], run("r-c", "child", RunStatus.RUNNING, updated_at=6))
    await store.checkpoint_append("child", [user("k3")], 2, run("r-c", "child", RunStatus.DONE, updated_at=7))
    await _write_edge_values(store)


async def _write_edge_values(store: ThreadRunStore) -> None:
    """The fidelity tests' edge values: u64 maxima, -0.0, 1.0, NUL text, null-valued keys, falsy optionals.

    A store that refuses one breaks MOD-5 (its fidelity tests say which value), and
    durability is not checked past it: the values never reached storage.
    """
    for name in ("u64-max-stamps", "custom-json"):
        await _edge(f"save_thread of the {name} thread", store.save_thread, replace(THREADS[name], id=f"exact-{name}"))
    messages = [replace(m, id=f"exact-{name}") for name, m in MESSAGES.items()]
    await _edge("appending the fidelity messages", store.append_message_records, "exact", messages)
    for name in ("u64-max-done", "falsy-optionals", "json-and-text"):
        await _edge(f"create_run of the {name} run", store.create_run, replace(RUNS[name], run_id=f"exact-{name}"))
    await _edge("saving the u64-max-revision state", store.save_thread_state, "exact", STATES["u64-max-revision"])


async def _edge(what: str, write: Callable[..., Awaitable[object]], *args: object) -> None:
    """`write(*args)`, a write of edge values: a `StorageError` from it breaks MOD-5 (`BrokenCall`)."""
    try:
        await write(*args)
    except StorageError as error:
        raise BrokenCall("MOD-5", f"{what} raised {error!r}; upstream's types hold every value in it") from error


async def _everything(store: ThreadRunStore) -> dict[str, object]:
    """What the store shows: the whole snapshot, the orders, the records, the queries and a checkpoint."""
    children = await store.list_child_threads("root")
    return {
        "snapshot": await snapshot(store, *UNLISTED),
        "list_threads": await store.list_threads(0, 50),
        "list_threads_query": (await store.list_threads_query(ThreadQuery(resource_id="res"))).items,
        "roots": (await store.list_threads_query(ThreadQuery(parent_filter=ThreadParentFilter.root()))).items,
        "list_child_threads": sorted(c.id for c in children),
        "records": await store.load_message_records("root"),
        "by_run": (await store.list_message_records("root", MessageQuery(run_id="r-a"))).records,
        "load_messages": await store.load_messages("root"),
        "load_checkpoint": await store.load_checkpoint("root"),
        # Sorted: the order of runs created in the same second is RUN-4's business, not durability's.
        "list_runs": sorted((await store.list_runs(RunQuery(limit=200))).items, key=lambda r: r.run_id),
    }


async def _delete_some(store: ThreadRunStore) -> None:
    """Threads and logs that are written, then deleted in every way."""
    await tree(store, {"gone": {}, "cascaded": {"under-cascaded": {}}, "detached-parent": {"detached": {}}})
    for thread_id in ("gone", "cascaded", "under-cascaded", "detached"):
        await log(store, thread_id, f"{thread_id}-m")
        await store.save_thread_state(thread_id, PersistedState(revision=1))
    await store.delete_thread("gone")
    await store.delete_thread_with_strategy("cascaded", ChildThreadDeleteStrategy.CASCADE)
    await store.delete_thread_with_strategy("detached-parent", ChildThreadDeleteStrategy.DETACH)
    await store.delete_messages("detached")


async def _written_then_reopened(reopen: Reopen, write: Callable[[ThreadRunStore], Awaitable[None]]) -> None:
    """Write through one store object and close it; a store opened afterwards shows the same."""
    async with reopen() as first:
        await write(first)
        shown = await _everything(first)
    async with reopen() as second:
        expect_same(await _everything(second), shown, "DUR-1", "what a reopened store shows")


class DurabilityRules:
    """DUR-1 (data survives close and reopen) and DUR-2 (two objects on one location are one store)."""

    @rule("DUR-1")
    async def test_everything_written_reads_back_after_close_and_reopen(self, reopen: Reopen) -> None:
        """Threads, logs, states and runs written before a close read back unchanged after reopening."""
        await _written_then_reopened(reopen, _write_everything)

    @rule("DUR-1")
    async def test_deletes_stay_deleted_after_close_and_reopen(self, reopen: Reopen) -> None:
        """Deleted threads, logs and states stay deleted, and detached children stay detached, after reopening."""
        await _written_then_reopened(reopen, _delete_some)

    @rule("DUR-1")
    async def test_store_opened_later_reads_what_was_written(self, store: ThreadRunStore, reopen: Reopen) -> None:
        """A store opened on the location after the writes shows exactly what the writing store shows."""
        await _write_everything(store)
        await _delete_some(store)
        async with reopen() as again:
            expect_same(await _everything(again), await _everything(store), "DUR-1", "what a store opened later shows")

    @rule("DUR-2")
    async def test_open_store_reads_what_another_writes(self, store: ThreadRunStore, reopen: Reopen) -> None:
        """A store opened (and read) before another object writes shows those writes once they return."""
        async with reopen() as other:
            await _everything(other)
            await _write_everything(store)
            await _delete_some(store)
            expect_same(await _everything(other), await _everything(store), "DUR-2", "what the other store shows")

    @rule("DUR-2")
    async def test_two_stores_writing_in_turn_keep_both_writes(self, store: ThreadRunStore, reopen: Reopen) -> None:
        """Writes made alternately through two objects all land: neither object overwrites the other's."""
        async with reopen() as other:
            await store.save_thread(thread("a"))
            await other.save_thread(thread("b"))
            await log(store, "a", "m1")
            await log(other, "a", "m2")
            await store.create_run(run("r1", "a"))
            await other.create_run(run("r2", "b"))
            for name, reader in (("the first store", store), ("the second store", other)):
                threads = sorted(await reader.list_threads(0, 10))
                assert threads == ["a", "b"], f"{name} lists threads {threads}; expected ['a', 'b'], one saved by each"
                ids = await committed_ids(reader, "a")
                assert ids == ["m1", "m2"], (
                    f"{name} reads log 'a' as {ids}; expected ['m1', 'm2'], one appended by each"
                )
                runs = sorted(r.run_id for r in (await reader.list_runs(RunQuery())).items)
                assert runs == ["r1", "r2"], f"{name} lists runs {runs}; expected ['r1', 'r2'], one created by each"

    @rule("DUR-2", requires="concurrent_writers")
    async def test_version_check_holds_across_two_stores(self, store: ThreadRunStore, reopen: Reopen) -> None:
        """CON-1 across objects: 8 same-version appends split over two stores, one wins, its delta alone lands."""
        async with reopen() as other:
            for number in range(ROUNDS):
                thread_id = f"t{number:02}"
                await log(store, thread_id, "m0")
                outcomes = await race_checkpoint_appends([store, other], thread_id, 1)
                check_one_winner("DUR-2", number, outcomes, 1, stores=2)
                expected = ["m0", *(m.id for writer in winners(outcomes) for m in delta(writer))]
                found = await committed_ids(other, thread_id)
                expect(
                    found == expected,
                    "DUR-2",
                    f"{round_name(number)}: the log of {thread_id!r} is {found}, expected m0 and the winner's delta",
                )

    @rule("DUR-2", requires="concurrent_writers")
    async def test_appends_through_two_stores_lose_nothing(self, store: ThreadRunStore, reopen: Reopen) -> None:
        """CON-2 across objects: 8 concurrent appends split over two stores all land once, seqs 1..17; 32 rounds."""
        async with reopen() as other:
            for number in range(ROUNDS):
                thread_id = f"t{number:02}"
                await log(store, thread_id, "m0")
                await race_appends([store, other], thread_id)
                check_appends_kept("DUR-2", number, thread_id, await committed_ids(other, thread_id))

    @rule("DUR-2", requires="concurrent_writers")
    async def test_crossed_parents_through_two_stores_make_no_cycle(
        self, store: ThreadRunStore, reopen: Reopen
    ) -> None:
        """CON-3 across objects: A under B through one store and B under A through the other, at once: no cycle."""
        async with reopen() as other:
            for number in range(ROUNDS):
                a, b = f"a{number:02}", f"b{number:02}"
                await store.save_thread(thread(a))
                await store.save_thread(thread(b))
                parents = {a: b, b: a}
                await check_no_cycle("DUR-2", number, other, await race_parents([store, other], parents), parents)
